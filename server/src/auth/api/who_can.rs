//! "Who can": the subjects holding at least an action at a namespace or stream, with their role
//! (`GET /apis/access.berth.io/v1/namespaces/{ns}/whocan`).

use axum::extract::{Path, State};
use axum::response::Response;

use super::{Access, AccessApi, ScopeQuery, access_api_version};
use crate::auth::http::Caller;
use crate::auth::{Action, Role, Subject, Target};
use crate::kube::ROLE_BINDINGS;
use crate::kube::{ApiError, ApiQuery, ApiResult, ok};

impl AccessApi {
    /// The subjects holding at least `action` at a namespace or stream, with their role
    /// (`("User", "alice", Role::Editor)`); for those who manage access there.
    pub async fn who_can(
        &self,
        who: &Subject,
        action: Action,
        target: Target<'_>,
    ) -> ApiResult<Vec<(String, String, Role)>> {
        self.auth
            .authorizer
            .require(who, Action::ManageAccess, target, ROLE_BINDINGS, "")?;
        if let Some(namespace) = target.namespace {
            self.require_namespace(namespace).await?;
        }
        Ok(self
            .auth
            .authorizer
            .who_can(action, target)
            .into_iter()
            .map(|(key, role)| {
                let (kind, name) = key.split_once(':').unwrap_or(("", &key));
                (kind.to_owned(), name.to_owned(), role)
            })
            .collect())
    }
}

/// `GET …/namespaces/{ns}/whocan?action=pull[&imageStream=app]`: the subjects holding at
/// least that action there, with their role.
pub(super) async fn who_can_route(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiQuery(scope): ApiQuery<ScopeQuery>,
) -> Response {
    let result = async {
        let action_name = scope.action.as_deref().unwrap_or("pull");
        let action = Action::parse(action_name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "action {action_name:?} is not one of pull, push, delete, manage-access"
            ))
        })?;
        let target = Target {
            namespace: Some(&namespace),
            stream: scope.image_stream.as_deref(),
        };
        let subjects: Vec<serde_json::Value> = api
            .who_can(&caller.subject, action, target)
            .await?
            .into_iter()
            .map(|(kind, name, role)| {
                serde_json::json!({"kind": kind, "name": name, "role": role.as_str()})
            })
            .collect();
        Ok(serde_json::json!({
            "kind": "WhoCan",
            "apiVersion": access_api_version(),
            "namespace": namespace,
            "imageStream": scope.image_stream,
            "action": action.as_str(),
            "subjects": subjects,
        }))
    };
    ok(result.await)
}
