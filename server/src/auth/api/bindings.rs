//! Role bindings: a role for a user, group or service account on the registry, a namespace or one
//! image stream of it (`/apis/access.berth.io/v1/[namespaces/{ns}/]rolebindings`).

use crate::kube::ROLE_BINDINGS;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Access, AccessApi, ScopeQuery, access_api_version, list};
use crate::auth::http::Caller;
use crate::auth::identity::binding_name_part;
use crate::auth::names::{group_name_error, user_name_error};
use crate::auth::{Action, Role, Subject, Target};
use crate::kube::{
    ApiError, ApiJson, ApiQuery, ApiResult, FieldError, ObjectMeta, created, deleted, ok,
};
use crate::oci::RepositoryName;
use crate::storage::auth::BindingRecord;

/// The group of one namespace's service accounts is this and the namespace's name.
const SERVICE_ACCOUNT_GROUP_PREFIX: &str = "system:serviceaccounts:";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindingSubject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A role for one subject, on the registry, a namespace, or one image stream of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    #[serde(default = "role_binding_kind")]
    pub kind: String,
    #[serde(default = "access_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub role_ref: RoleRef,
    #[serde(default)]
    pub subject: BindingSubject,
    /// Only this image stream of the namespace, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_stream: Option<String>,
}

fn role_binding_kind() -> String {
    "RoleBinding".into()
}

fn binding_object(record: &BindingRecord) -> RoleBinding {
    RoleBinding {
        kind: role_binding_kind(),
        api_version: access_api_version(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: record.namespace.clone(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            name: record.role.clone(),
        },
        subject: BindingSubject {
            kind: record.subject_kind.clone(),
            name: record.subject_name.clone(),
            namespace: record.subject_namespace.clone(),
        },
        image_stream: record.stream.clone(),
    }
}

impl AccessApi {
    pub async fn list_bindings(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        stream: Option<&str>,
    ) -> ApiResult<Vec<RoleBinding>> {
        let target = Target { namespace, stream };
        self.auth
            .authorizer
            .require(who, Action::ManageAccess, target, ROLE_BINDINGS, "")?;
        if let Some(namespace) = namespace {
            self.require_namespace(namespace).await?;
        }
        let bindings = self.auth.store.list_bindings(namespace).await?;
        Ok(bindings
            .iter()
            .filter(|b| stream.is_none() || b.stream.as_deref() == stream)
            .map(binding_object)
            .collect())
    }

    pub async fn create_binding(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        body: RoleBinding,
    ) -> ApiResult<RoleBinding> {
        let invalid = |field: &str, message: String| {
            ApiError::invalid(
                ROLE_BINDINGS,
                &body.metadata.name,
                FieldError::new(field, message),
            )
        };
        let role = Role::parse(&body.role_ref.name).ok_or_else(|| {
            invalid(
                "roleRef.name",
                format!(
                    "{:?} is not one of viewer, editor, admin, cluster-admin",
                    body.role_ref.name
                ),
            )
        })?;
        if role == Role::ClusterAdmin && namespace.is_some() {
            return Err(invalid(
                "roleRef.name",
                "cluster-admin is bound on the whole registry only".into(),
            ));
        }
        let subject = &body.subject;
        match subject.kind.as_str() {
            "User" => {
                if let Some(message) = user_name_error(&subject.name) {
                    return Err(invalid("subject.name", message));
                }
            }
            "Group" => {
                if let Some(message) = group_name_error(&subject.name) {
                    return Err(invalid("subject.name", message));
                }
            }
            // Whether the account exists is checked as the binding is written.
            "ServiceAccount" if !subject.name.is_empty() => {
                if subject.namespace.is_none() && namespace.is_none() {
                    return Err(invalid(
                        "subject.namespace",
                        "a service account is named with its namespace".into(),
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "subject",
                    "a subject is a User, Group or ServiceAccount with a name".into(),
                ));
            }
        }
        if let (Some(namespace), Some(stream)) = (namespace, body.image_stream.as_deref())
            && RepositoryName::of_stream(namespace, stream).is_err()
        {
            return Err(invalid(
                "imageStream",
                format!("{stream:?} is not an image stream name"),
            ));
        }
        if body.image_stream.is_some() && namespace.is_none() {
            return Err(invalid(
                "imageStream",
                "a stream binding belongs to a namespace".into(),
            ));
        }
        if let Some(namespace) = namespace {
            self.require_namespace(namespace).await?;
        }
        let target = Target {
            namespace,
            stream: body.image_stream.as_deref(),
        };
        // Managing access, and no escalation: a binding grants at most the author's own role.
        self.auth.authorizer.require(
            who,
            Action::ManageAccess,
            target,
            ROLE_BINDINGS,
            &body.metadata.name,
        )?;
        if self
            .auth
            .authorizer
            .role(who, target)
            .is_none_or(|held| held < role)
        {
            return Err(ApiError::forbidden(
                &who.display_name(),
                "escalate",
                ROLE_BINDINGS,
                &body.metadata.name,
                namespace,
            ));
        }
        let name = if body.metadata.name.is_empty() {
            let scope = body
                .image_stream
                .as_deref()
                .map(|s| format!("{}-", binding_name_part(s)))
                .unwrap_or_default();
            format!(
                "{scope}{}-{}-{}",
                role.as_str(),
                subject.kind.to_ascii_lowercase(),
                binding_name_part(&subject.name)
            )
        } else {
            body.metadata.name.clone()
        };
        let record = BindingRecord {
            name: name.clone(),
            namespace: namespace.map(str::to_owned),
            stream: body.image_stream.clone(),
            role: role.as_str().to_owned(),
            subject_kind: subject.kind.clone(),
            subject_name: subject.name.clone(),
            subject_namespace: (subject.kind == "ServiceAccount")
                .then(|| {
                    subject
                        .namespace
                        .clone()
                        .or_else(|| namespace.map(str::to_owned))
                })
                .flatten(),
            created_at: Utc::now(),
        };
        let Some(created) = self.auth.store.create_binding(&record).await? else {
            if let (Some(account_namespace), "ServiceAccount") =
                (&record.subject_namespace, record.subject_kind.as_str())
                && self
                    .auth
                    .store
                    .service_account(account_namespace, &record.subject_name)
                    .await?
                    .is_none()
            {
                return Err(invalid(
                    "subject.name",
                    format!(
                        "service account {account_namespace}/{} does not exist",
                        record.subject_name
                    ),
                ));
            }
            if let ("Group", Some(accounts_of)) = (
                record.subject_kind.as_str(),
                record
                    .subject_name
                    .strip_prefix(SERVICE_ACCOUNT_GROUP_PREFIX),
            ) && self.streams.get_namespace(accounts_of).await?.is_none()
            {
                return Err(invalid(
                    "subject.name",
                    format!(
                        "namespace {accounts_of} does not exist: its service accounts cannot be bound"
                    ),
                ));
            }
            return Err(ApiError::AlreadyExists {
                resource: ROLE_BINDINGS,
                name,
            });
        };
        self.auth.authorizer.changed().await?;
        self.access_changed_in(namespace, "binding", &created.name)
            .await;
        self.auth
            .audit_change(
                who,
                "binding-create",
                format!("{}/{}", namespace.unwrap_or("-"), created.name),
                Some(format!(
                    "{} {}:{} on {target}",
                    created.role, created.subject_kind, created.subject_name
                )),
            )
            .await;
        Ok(binding_object(&created))
    }

    /// What a binding for `subject` should make its author check, as Kubernetes' `warnings`:
    /// a user with no account here (yet). The binding is kept, as OpenShift keeps one for a user
    /// who has not signed in yet, but a typo would otherwise grant nothing, silently.
    pub async fn binding_warnings(&self, subject: &BindingSubject) -> ApiResult<Vec<String>> {
        if subject.kind == "User" && self.auth.store.user(&subject.name).await?.is_none() {
            return Ok(vec![format!(
                "user {} does not exist here (yet): the binding takes effect once someone signs in under that name; check the spelling",
                subject.name
            )]);
        }
        Ok(Vec::new())
    }

    pub async fn delete_binding(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<()> {
        let bindings = self.auth.store.list_bindings(namespace).await?;
        let Some(binding) = bindings.iter().find(|b| b.name == name) else {
            // Only those who manage the namespace learn whether a binding exists there.
            self.auth.authorizer.require(
                who,
                Action::ManageAccess,
                Target {
                    namespace,
                    stream: None,
                },
                ROLE_BINDINGS,
                name,
            )?;
            return Err(ApiError::not_found(ROLE_BINDINGS, name));
        };
        let target = Target {
            namespace,
            stream: binding.stream.as_deref(),
        };
        self.auth
            .authorizer
            .require(who, Action::ManageAccess, target, ROLE_BINDINGS, name)?;
        self.auth.store.delete_binding(namespace, name).await?;
        self.auth.authorizer.changed().await?;
        self.access_changed_in(namespace, "binding", name).await;
        self.auth
            .audit_change(
                who,
                "binding-delete",
                format!("{}/{name}", namespace.unwrap_or("-")),
                Some(format!(
                    "{} {}:{} on {target}",
                    binding.role, binding.subject_kind, binding.subject_name
                )),
            )
            .await;
        Ok(())
    }
}

pub(super) async fn list_namespace_bindings(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiQuery(scope): ApiQuery<ScopeQuery>,
) -> Response {
    let result = async {
        api.list_bindings(
            &caller.subject,
            Some(&namespace),
            scope.image_stream.as_deref(),
        )
        .await
    };
    match result.await {
        Ok(items) => list("RoleBindingList", "access.berth.io/v1", items),
        Err(err) => err.into_response(),
    }
}

pub(super) async fn create_namespace_binding(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<RoleBinding>,
) -> Response {
    let subject = body.subject.clone();
    let made = api
        .create_binding(&caller.subject, Some(&namespace), body)
        .await;
    with_warnings(&api, &subject, made).await
}

/// A binding's `201 Created`, with a `Warning` header (`299 - "…"`, as Kubernetes sends its
/// `warnings`) for each of [`AccessApi::binding_warnings`].
async fn with_warnings(
    api: &AccessApi,
    subject: &BindingSubject,
    made: ApiResult<RoleBinding>,
) -> Response {
    let warnings = match &made {
        Ok(_) => api.binding_warnings(subject).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut response = created(made);
    for warning in warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

pub(super) async fn delete_namespace_binding(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = api
        .delete_binding(&caller.subject, Some(&namespace), &name)
        .await;
    ok(result.map(|()| deleted(ROLE_BINDINGS, &name)))
}

pub(super) async fn list_registry_bindings(State(api): Access, caller: Caller) -> Response {
    match api.list_bindings(&caller.subject, None, None).await {
        Ok(items) => list("RoleBindingList", "access.berth.io/v1", items),
        Err(err) => err.into_response(),
    }
}

pub(super) async fn create_registry_binding(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<RoleBinding>,
) -> Response {
    let subject = body.subject.clone();
    let made = api.create_binding(&caller.subject, None, body).await;
    with_warnings(&api, &subject, made).await
}

pub(super) async fn delete_registry_binding(
    State(api): Access,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    let result = api.delete_binding(&caller.subject, None, &name).await;
    ok(result.map(|()| deleted(ROLE_BINDINGS, &name)))
}
