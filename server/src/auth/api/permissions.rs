//! "What may": the actions and role a subject (the caller, by default) holds at a namespace or
//! stream (`GET /apis/access.berth.io/v1/namespaces/{ns}/permissions`).

use axum::extract::{Path, State};
use axum::response::Response;

use super::{Access, AccessApi, ScopeQuery, access_api_version};
use crate::auth::http::Caller;
use crate::auth::{Action, Role, Subject, Target};
use crate::kube::ROLE_BINDINGS;
use crate::kube::{ApiError, ApiQuery, ApiResult, ok};

/// Parses `Kind:name` (`User:alice`, `Group:devs`, `ServiceAccount:ns:name`) into a subject
/// whose groups are what the store knows of them.
async fn named_subject(api: &AccessApi, text: &str) -> ApiResult<Subject> {
    let bad = || {
        ApiError::BadRequest(format!(
            "subject {text:?} is not User:NAME, Group:NAME or ServiceAccount:NAMESPACE:NAME"
        ))
    };
    let (kind, name) = text.split_once(':').ok_or_else(bad)?;
    match kind {
        "User" => {
            let groups = api
                .auth
                .store
                .user(name)
                .await?
                .map(|u| u.groups)
                .unwrap_or_default();
            Ok(Subject::User {
                name: name.to_owned(),
                groups,
            })
        }
        "Group" => Ok(Subject::User {
            name: String::new(),
            groups: vec![name.to_owned()],
        }),
        "ServiceAccount" => {
            let (namespace, name) = name.split_once(':').ok_or_else(bad)?;
            Ok(Subject::ServiceAccount {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        }
        _ => Err(bad()),
    }
}

/// `GET …/namespaces/{ns}/permissions[?imageStream=app][&subject=User:alice]`: what a subject
/// (the caller, by default) may do there.
pub(super) async fn permissions(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiQuery(scope): ApiQuery<ScopeQuery>,
) -> Response {
    let result = async {
        let target = Target {
            namespace: Some(&namespace),
            stream: scope.image_stream.as_deref(),
        };
        let subject = match &scope.subject {
            None => caller.subject.clone(),
            Some(text) => {
                api.auth.authorizer.require(
                    &caller.subject,
                    Action::ManageAccess,
                    target,
                    ROLE_BINDINGS,
                    "",
                )?;
                named_subject(&api, text).await?
            }
        };
        let authorizer = &api.auth.authorizer;
        let role = authorizer.role(&subject, target);
        let actions: Vec<&str> = Action::ALL
            .into_iter()
            .filter(|a| authorizer.allows(&subject, *a, target))
            .map(Action::as_str)
            .collect();
        Ok(serde_json::json!({
            "kind": "Permissions",
            "apiVersion": access_api_version(),
            "subject": subject.display_name(),
            "namespace": namespace,
            "imageStream": scope.image_stream,
            "role": role.map(Role::as_str),
            "actions": actions,
        }))
    };
    ok(result.await)
}
