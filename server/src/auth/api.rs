//! The access API: role bindings per registry, namespace or stream; "who can" and "what may";
//! service accounts and their tokens; users and groups; the audit log. Every change is decided
//! by the same function as everything else, and a binding can grant no more than its author
//! holds.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::http::Caller;
use super::identity::binding_name_part;
use super::names::{
    group_name_error, managed_group_name_error, service_account_name_error, token_name_error,
    user_name_error,
};
use super::reviews::{
    self, AccessReviewSpec, AccessReviewStatus, NonResourceAttributes, ResourceAttributes,
    RulesReviewSpec,
};
use super::routes::{
    MAX_TOKEN_DAYS, access_api_version, create_token_for, token_expiry, token_object,
};
use super::{Action, Identities, Role, Subject, Target};
use crate::kube::ApiJson;
use crate::kube::{
    ApiError, ApiResult, FieldError, NAMESPACES, Resource, created, deleted, ok, parse_query,
};
use crate::kube::{ObjectMeta, time};
use crate::oci::{RepositoryName, is_valid_namespace};
use crate::storage::ImageStreamStore;
use crate::storage::auth::{
    BindingRecord, IdentityRecord, LinkOutcome, NewAudit, ServiceAccountRecord, TokenKind,
    TokenOwner, TokenRecord,
};

pub const ROLE_BINDINGS: Resource = Resource {
    plural: "rolebindings",
    group: "access.berth.io",
};
const SERVICE_ACCOUNTS: Resource = Resource {
    plural: "serviceaccounts",
    group: "",
};
const AUDIT_EVENTS: Resource = Resource {
    plural: "auditevents",
    group: "access.berth.io",
};
/// The group of one namespace's service accounts is this and the namespace's name.
const SERVICE_ACCOUNT_GROUP_PREFIX: &str = "system:serviceaccounts:";

const USERS: Resource = Resource {
    plural: "users",
    group: "user.openshift.io",
};
const GROUPS: Resource = Resource {
    plural: "groups",
    group: "user.openshift.io",
};

pub struct AccessApi {
    pub identities: Arc<Identities>,
    pub streams: Arc<dyn ImageStreamStore>,
}

type Access = State<Arc<AccessApi>>;

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

fn list<T: Serialize>(kind: &str, api_version: &str, items: Vec<T>) -> Response {
    axum::Json(serde_json::json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }))
    .into_response()
}

impl AccessApi {
    async fn require_namespace(&self, namespace: &str) -> ApiResult<()> {
        if is_valid_namespace(namespace) && self.streams.get_namespace(namespace).await?.is_some() {
            Ok(())
        } else {
            Err(ApiError::not_found(NAMESPACES, namespace))
        }
    }

    async fn audit(
        &self,
        who: &Subject,
        action: &'static str,
        target: String,
        detail: Option<String>,
    ) {
        self.identities
            .audit(NewAudit {
                actor: who.display_name(),
                action,
                target,
                success: true,
                address: None,
                detail,
            })
            .await;
    }

    // ---- role bindings ------------------------------------------------------------------------

    pub async fn list_bindings(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        stream: Option<&str>,
    ) -> ApiResult<Vec<RoleBinding>> {
        let target = Target { namespace, stream };
        self.identities
            .authorizer
            .require(who, Action::ManageAccess, target, ROLE_BINDINGS, "")?;
        if let Some(namespace) = namespace {
            self.require_namespace(namespace).await?;
        }
        let bindings = self.identities.store.list_bindings(namespace).await?;
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
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            target,
            ROLE_BINDINGS,
            &body.metadata.name,
        )?;
        if self
            .identities
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
        let Some(created) = self.identities.store.create_binding(&record).await? else {
            if let (Some(account_namespace), "ServiceAccount") =
                (&record.subject_namespace, record.subject_kind.as_str())
                && self
                    .identities
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
        self.identities.authorizer.reload().await?;
        self.audit(
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

    pub async fn delete_binding(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<()> {
        let bindings = self.identities.store.list_bindings(namespace).await?;
        let Some(binding) = bindings.iter().find(|b| b.name == name) else {
            // Only those who manage the namespace learn whether a binding exists there.
            self.identities.authorizer.require(
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
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            target,
            ROLE_BINDINGS,
            name,
        )?;
        self.identities
            .store
            .delete_binding(namespace, name)
            .await?;
        self.identities.authorizer.reload().await?;
        self.audit(
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

    /// The subjects holding at least `action` at a namespace or stream, with their role
    /// (`("User", "alice", Role::Editor)`); for those who manage access there.
    pub async fn who_can(
        &self,
        who: &Subject,
        action: Action,
        target: Target<'_>,
    ) -> ApiResult<Vec<(String, String, Role)>> {
        self.identities
            .authorizer
            .require(who, Action::ManageAccess, target, ROLE_BINDINGS, "")?;
        if let Some(namespace) = target.namespace {
            self.require_namespace(namespace).await?;
        }
        Ok(self
            .identities
            .authorizer
            .who_can(action, target)
            .into_iter()
            .map(|(key, role)| {
                let (kind, name) = key.split_once(':').unwrap_or(("", &key));
                (kind.to_owned(), name.to_owned(), role)
            })
            .collect())
    }

    // ---- service accounts ---------------------------------------------------------------------

    pub async fn service_accounts(
        &self,
        who: &Subject,
        namespace: &str,
    ) -> ApiResult<Vec<ServiceAccountRecord>> {
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            SERVICE_ACCOUNTS,
            "",
        )?;
        self.require_namespace(namespace).await?;
        Ok(self
            .identities
            .store
            .list_service_accounts(namespace)
            .await?)
    }

    pub async fn create_service_account(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ServiceAccountRecord> {
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            SERVICE_ACCOUNTS,
            name,
        )?;
        self.require_namespace(namespace).await?;
        if let Some(message) = service_account_name_error(name) {
            return Err(ApiError::invalid(
                SERVICE_ACCOUNTS,
                name,
                FieldError::new("metadata.name", message),
            ));
        }
        let account = self
            .identities
            .store
            .create_service_account(namespace, name)
            .await?
            .ok_or(ApiError::AlreadyExists {
                resource: SERVICE_ACCOUNTS,
                name: name.to_owned(),
            })?;
        self.audit(
            who,
            "serviceaccount-create",
            format!("{namespace}/{name}"),
            None,
        )
        .await;
        Ok(account)
    }

    /// A service account of a namespace, for those who manage access there.
    pub async fn service_account(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ServiceAccountRecord> {
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            SERVICE_ACCOUNTS,
            name,
        )?;
        self.identities
            .store
            .service_account(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(SERVICE_ACCOUNTS, name))
    }

    pub async fn service_account_tokens(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Vec<TokenRecord>> {
        let account = self.service_account(who, namespace, name).await?;
        Ok(self
            .identities
            .store
            .list_tokens(&TokenOwner::ServiceAccount(account.id))
            .await?)
    }

    /// A new token of a service account, living `lifetime` (checked by the caller) but never
    /// longer than the credentials that make it; the secret is in this answer only.
    pub async fn create_service_account_token(
        &self,
        who: &Caller,
        namespace: &str,
        name: &str,
        token_name: &str,
        lifetime: Option<TimeDelta>,
    ) -> ApiResult<(TokenRecord, String)> {
        let account = self.service_account(&who.subject, namespace, name).await?;
        let token_name = if token_name.is_empty() {
            format!("{name}-token")
        } else {
            token_name.to_owned()
        };
        if let Some(message) = token_name_error(&token_name) {
            return Err(ApiError::invalid(
                SERVICE_ACCOUNTS,
                name,
                FieldError::new("metadata.name", message),
            ));
        }
        create_token_for(
            &self.identities,
            &TokenOwner::ServiceAccount(account.id),
            TokenKind::ServiceAccount,
            &token_name,
            token_expiry(Utc::now(), lifetime, who.proof.expires_at()),
            &who.subject.display_name(),
        )
        .await
    }

    pub async fn revoke_service_account_token(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> ApiResult<()> {
        let account = self.service_account(who, namespace, name).await?;
        if !self
            .identities
            .store
            .revoke_token(&TokenOwner::ServiceAccount(account.id), uid)
            .await?
        {
            return Err(ApiError::NoSuchResource(format!("token {uid}")));
        }
        self.identities.forget_credentials();
        self.audit(
            who,
            "token-revoke",
            format!("serviceaccount token {uid}"),
            None,
        )
        .await;
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeQuery {
    image_stream: Option<String>,
    action: Option<String>,
    subject: Option<String>,
}

async fn list_namespace_bindings(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let scope: ScopeQuery = parse_query(raw.as_deref())?;
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

async fn create_namespace_binding(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<RoleBinding>,
) -> Response {
    created(
        api.create_binding(&caller.subject, Some(&namespace), body)
            .await,
    )
}

async fn delete_namespace_binding(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = api
        .delete_binding(&caller.subject, Some(&namespace), &name)
        .await;
    ok(result.map(|()| deleted(ROLE_BINDINGS, &name)))
}

async fn list_registry_bindings(State(api): Access, caller: Caller) -> Response {
    match api.list_bindings(&caller.subject, None, None).await {
        Ok(items) => list("RoleBindingList", "access.berth.io/v1", items),
        Err(err) => err.into_response(),
    }
}

async fn create_registry_binding(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<RoleBinding>,
) -> Response {
    created(api.create_binding(&caller.subject, None, body).await)
}

async fn delete_registry_binding(
    State(api): Access,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    let result = api.delete_binding(&caller.subject, None, &name).await;
    ok(result.map(|()| deleted(ROLE_BINDINGS, &name)))
}

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
                .identities
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

/// `GET …/namespaces/{ns}/whocan?action=pull[&imageStream=app]`: the subjects holding at
/// least that action there, with their role.
async fn who_can_route(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let scope: ScopeQuery = parse_query(raw.as_deref())?;
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

/// `GET …/namespaces/{ns}/permissions[?imageStream=app][&subject=User:alice]`: what a subject
/// (the caller, by default) may do there.
async fn permissions(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let scope: ScopeQuery = parse_query(raw.as_deref())?;
        let target = Target {
            namespace: Some(&namespace),
            stream: scope.image_stream.as_deref(),
        };
        let subject = match &scope.subject {
            None => caller.subject.clone(),
            Some(text) => {
                api.identities.authorizer.require(
                    &caller.subject,
                    Action::ManageAccess,
                    target,
                    ROLE_BINDINGS,
                    "",
                )?;
                named_subject(&api, text).await?
            }
        };
        let authorizer = &api.identities.authorizer;
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

// ---- service accounts ------------------------------------------------------------------------

fn service_account_object(record: &ServiceAccountRecord) -> serde_json::Value {
    serde_json::json!({
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            uid: record.uid.clone(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
    })
}

async fn list_service_accounts(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
) -> Response {
    match api.service_accounts(&caller.subject, &namespace).await {
        Ok(accounts) => list(
            "ServiceAccountList",
            "v1",
            accounts.iter().map(service_account_object).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NamedObject {
    #[serde(default)]
    metadata: ObjectMeta,
}

async fn create_service_account(
    State(api): Access,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<NamedObject>,
) -> Response {
    let result = api
        .create_service_account(&caller.subject, &namespace, &body.metadata.name)
        .await;
    created(result.map(|account| service_account_object(&account)))
}

async fn get_service_account(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = api
        .service_account(&caller.subject, &namespace, &name)
        .await;
    ok(result.map(|a| service_account_object(&a)))
}

async fn delete_service_account(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = async {
        api.service_account(&caller.subject, &namespace, &name)
            .await?;
        api.identities
            .store
            .delete_service_account(&namespace, &name)
            .await?;
        // Its bindings went with it.
        api.identities.authorizer.reload().await?;
        api.identities.forget_credentials();
        api.audit(
            &caller.subject,
            "serviceaccount-delete",
            format!("{namespace}/{name}"),
            None,
        )
        .await;
        Ok(deleted(SERVICE_ACCOUNTS, &name))
    };
    ok(result.await)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequestSpec {
    expiration_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: TokenRequestSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequestStatus {
    token: String,
    #[serde(with = "time::option", skip_serializing_if = "Option::is_none")]
    expiration_timestamp: Option<DateTime<Utc>>,
}

/// The shortest lifetime a TokenRequest may ask for, as Kubernetes' (ten minutes).
const MIN_TOKEN_REQUEST_SECONDS: u64 = 600;

/// A TokenRequest's `expirationSeconds`, checked: ten minutes to [`MAX_TOKEN_DAYS`].
fn token_request_lifetime(seconds: u64) -> Result<TimeDelta, String> {
    let max = MAX_TOKEN_DAYS * 86_400;
    if !(MIN_TOKEN_REQUEST_SECONDS..=max).contains(&seconds) {
        return Err(format!(
            "must be between {MIN_TOKEN_REQUEST_SECONDS} and {max} seconds ({MAX_TOKEN_DAYS} days)"
        ));
    }
    i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .ok_or_else(|| format!("{seconds} seconds is not a lifetime"))
}

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: Kubernetes' TokenRequest, made
/// by the namespace's admins; the token is in this answer only.
async fn create_service_account_token_route(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Response {
    let result = async {
        let lifetime = body
            .spec
            .expiration_seconds
            .map(token_request_lifetime)
            .transpose()
            .map_err(|message| {
                ApiError::invalid(
                    SERVICE_ACCOUNTS,
                    &name,
                    FieldError::new("spec.expirationSeconds", message),
                )
            })?;
        let (record, secret) = api
            .create_service_account_token(&caller, &namespace, &name, &body.metadata.name, lifetime)
            .await?;
        Ok::<_, ApiError>(serde_json::json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "uid": record.uid},
            "spec": {"expirationSeconds": body.spec.expiration_seconds},
            "status": TokenRequestStatus {
                token: secret,
                expiration_timestamp: record.expires_at,
            },
        }))
    };
    created(result.await)
}

async fn list_service_account_tokens(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match api
        .service_account_tokens(&caller.subject, &namespace, &name)
        .await
    {
        Ok(tokens) => list(
            "ServiceAccountTokenList",
            "access.berth.io/v1",
            tokens.iter().map(|t| token_object(t, None)).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

async fn revoke_service_account_token_route(
    State(api): Access,
    caller: Caller,
    Path((namespace, name, uid)): Path<(String, String, String)>,
) -> Response {
    let result = api
        .revoke_service_account_token(&caller.subject, &namespace, &name, &uid)
        .await;
    ok(result.map(|()| {
        deleted(
            Resource {
                plural: "tokens",
                group: "access.berth.io",
            },
            &uid,
        )
    }))
}

// ---- users, groups and the audit log (cluster administrators) --------------------------------

/// Users, groups and the audit log are the cluster administrators' alone: a registry-wide
/// `admin` who managed groups could join one bound to cluster-admin and so become one.
fn require_cluster_admin(api: &AccessApi, who: &Subject, resource: Resource) -> ApiResult<()> {
    if api.identities.authorizer.role(who, Target::REGISTRY) == Some(Role::ClusterAdmin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            &who.display_name(),
            Action::ManageAccess.verb(),
            resource,
            "",
            None,
        ))
    }
}

async fn list_users(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, USERS)?;
        let store = &api.identities.store;
        Ok::<_, ApiError>((store.list_users().await?, store.list_identities().await?))
    };
    match result.await {
        Ok((users, identities)) => list(
            "UserList",
            "user.openshift.io/v1",
            users
                .iter()
                .map(|u| {
                    // A password is an identity of its own provider (`local:admin`); external
                    // ones are (provider, subject).
                    let identities: Vec<String> = u
                        .password_hash
                        .is_some()
                        .then(|| format!("{}:{}", u.identity_provider, u.name))
                        .into_iter()
                        .chain(
                            identities
                                .iter()
                                .filter(|i| i.user == u.name)
                                .map(|i| format!("{}:{}", i.provider, i.subject)),
                        )
                        .collect();
                    serde_json::json!({
                        "kind": "User",
                        "apiVersion": "user.openshift.io/v1",
                        "metadata": {
                            "name": u.name,
                            "uid": u.uid,
                            "creationTimestamp": u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        },
                        "fullName": u.full_name,
                        "identities": identities,
                        "groups": u.groups,
                    })
                })
                .collect(),
        ),
        Err(err) => err.into_response(),
    }
}

async fn list_groups(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, GROUPS)?;
        Ok::<_, ApiError>(api.identities.store.list_groups().await?)
    };
    match result.await {
        Ok(groups) => list(
            "GroupList",
            "user.openshift.io/v1",
            groups
                .iter()
                .map(|g| {
                    serde_json::json!({
                        "kind": "Group",
                        "apiVersion": "user.openshift.io/v1",
                        "metadata": {"name": g.name},
                        "users": g.members,
                    })
                })
                .collect(),
        ),
        Err(err) => err.into_response(),
    }
}

const IDENTITIES: Resource = Resource {
    plural: "identities",
    group: "user.openshift.io",
};

fn identity_object(record: &IdentityRecord) -> serde_json::Value {
    serde_json::json!({
        "kind": "Identity",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {
            "name": format!("{}:{}", record.provider, record.subject),
            "creationTimestamp": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "providerName": record.provider,
        "providerUserName": record.subject,
        "user": {"name": record.user},
    })
}

/// `GET /apis/user.openshift.io/v1/identities`: every external identity and its user.
async fn list_identities(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, IDENTITIES)?;
        Ok::<_, ApiError>(api.identities.store.list_identities().await?)
    };
    match result.await {
        Ok(identities) => list(
            "IdentityList",
            "user.openshift.io/v1",
            identities.iter().map(identity_object).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityBody {
    #[serde(default)]
    provider_name: String,
    #[serde(default)]
    provider_user_name: String,
    #[serde(default)]
    user: RoleRef,
}

/// `POST /apis/user.openshift.io/v1/identities` with `providerName`, `providerUserName` (the
/// provider's subject) and `user.name`: links an identity to a user, as OpenShift's Identity
/// with a UserIdentityMapping (what `mappingMethod: lookup` signs in with).
async fn create_identity(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<IdentityBody>,
) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, IDENTITIES)?;
        let name = format!("{}:{}", body.provider_name, body.provider_user_name);
        let invalid = |field: &str, message: &str| {
            ApiError::invalid(IDENTITIES, &name, FieldError::new(field, message))
        };
        for (field, value) in [
            ("providerName", &body.provider_name),
            ("providerUserName", &body.provider_user_name),
        ] {
            if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
                return Err(invalid(
                    field,
                    "1 to 1024 characters, none of them control characters",
                ));
            }
        }
        match api
            .identities
            .store
            .link_identity(
                &body.provider_name,
                &body.provider_user_name,
                &body.user.name,
            )
            .await?
        {
            LinkOutcome::Linked => {}
            LinkOutcome::NoSuchUser => {
                return Err(invalid("user.name", "no such user"));
            }
            LinkOutcome::Taken => {
                return Err(ApiError::AlreadyExists {
                    resource: IDENTITIES,
                    name,
                });
            }
        }
        api.audit(
            &caller.subject,
            "identity-link",
            name.clone(),
            Some(format!("to user {}", body.user.name)),
        )
        .await;
        Ok(identity_object(&IdentityRecord {
            provider: body.provider_name,
            subject: body.provider_user_name,
            user: body.user.name,
            created_at: Utc::now(),
        }))
    };
    created(result.await)
}

#[derive(Debug, Default, Deserialize)]
struct GroupBody {
    #[serde(default)]
    users: Vec<String>,
}

/// `PUT /apis/user.openshift.io/v1/groups/{name}` with `{"users": [...]}`: sets the members.
async fn put_group(
    State(api): Access,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, GROUPS)?;
        if let Some(message) = managed_group_name_error(&name) {
            return Err(ApiError::invalid(
                GROUPS,
                &name,
                FieldError::new("metadata.name", message),
            ));
        }
        let store = &api.identities.store;
        let current = store
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.members)
            .unwrap_or_default();
        for user in body.users.iter().filter(|u| !current.contains(u)) {
            if store.user(user).await?.is_none() {
                return Err(ApiError::invalid(
                    GROUPS,
                    &name,
                    FieldError::new("users", format!("user {user} does not exist")),
                ));
            }
            store.add_group_member(&name, user).await?;
        }
        for user in current.iter().filter(|u| !body.users.contains(u)) {
            store.remove_group_member(&name, user).await?;
        }
        api.identities.forget_credentials();
        api.audit(
            &caller.subject,
            "group-update",
            name.clone(),
            Some(body.users.join(",")),
        )
        .await;
        Ok(serde_json::json!({
            "kind": "Group",
            "apiVersion": "user.openshift.io/v1",
            "metadata": {"name": name},
            "users": body.users,
        }))
    };
    ok(result.await)
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn audit_events(State(api): Access, caller: Caller, RawQuery(raw): RawQuery) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, AUDIT_EVENTS)?;
        let params: AuditQuery = parse_query(raw.as_deref())?;
        Ok::<_, ApiError>(
            api.identities
                .store
                .list_audit(params.before, params.limit.unwrap_or(100).min(1000))
                .await?,
        )
    };
    match result.await {
        Ok(entries) => list("AuditEventList", "access.berth.io/v1", entries),
        Err(err) => err.into_response(),
    }
}

// ---- access reviews (Kubernetes' authorization.k8s.io) ----------------------------------------

const RULES_REVIEWS: Resource = Resource {
    plural: "selfsubjectrulesreviews",
    group: "authorization.k8s.io",
};
const ACCESS_REVIEWS: Resource = Resource {
    plural: "selfsubjectaccessreviews",
    group: "authorization.k8s.io",
};

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A review as Kubernetes answers it: the object asked with its status.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Review<S, T> {
    kind: &'static str,
    api_version: &'static str,
    metadata: JsonObject,
    spec: S,
    status: T,
}

fn invalid_field(resource: Resource, path: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(resource, "", FieldError::new(path, message))
}

/// Takes an object field out of `object`; absent or null is `None`.
fn object_field(
    object: &mut JsonObject,
    field: &str,
    path: &str,
    resource: Resource,
) -> ApiResult<Option<JsonObject>> {
    match object.remove(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(invalid_field(resource, path, "must be an object")),
    }
}

/// A string field of `object`; absent or null is empty.
fn text_field(
    object: &JsonObject,
    field: &str,
    path: &str,
    resource: Resource,
) -> ApiResult<String> {
    match object.get(field) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(invalid_field(resource, path, "must be a string")),
    }
}

/// The metadata and spec of a review's body, whose `kind` and `apiVersion`, when given, must be
/// the review's.
fn review_body(
    body: serde_json::Value,
    kind: &str,
    resource: Resource,
) -> ApiResult<(JsonObject, JsonObject)> {
    let serde_json::Value::Object(mut body) = body else {
        return Err(ApiError::BadRequest(format!(
            "the request body is not a {kind} object"
        )));
    };
    for (field, expected) in [("kind", kind), ("apiVersion", reviews::API_VERSION)] {
        match body.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(given)) if given == expected => {}
            Some(given) => {
                return Err(ApiError::BadRequest(format!(
                    "{field} is {given}; this endpoint takes {expected:?}"
                )));
            }
        }
    }
    let metadata = object_field(&mut body, "metadata", "metadata", resource)?.unwrap_or_default();
    let spec = object_field(&mut body, "spec", "spec", resource)?.unwrap_or_default();
    Ok((metadata, spec))
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews` with `spec.namespace`: what
/// the caller may do there, as RBAC rules (see [`reviews::resource_rules`]).
async fn self_subject_rules_review(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Response {
    let result = (|| {
        let (metadata, spec) = review_body(body, "SelfSubjectRulesReview", RULES_REVIEWS)?;
        let namespace = text_field(&spec, "namespace", "spec.namespace", RULES_REVIEWS)?;
        if namespace.is_empty() {
            return Err(invalid_field(
                RULES_REVIEWS,
                "spec.namespace",
                "a namespace is required",
            ));
        }
        if !is_valid_namespace(&namespace) {
            return Err(invalid_field(
                RULES_REVIEWS,
                "spec.namespace",
                format!("{namespace:?} is not a namespace name"),
            ));
        }
        let status = reviews::review_rules(&api.identities.authorizer, &caller.subject, &namespace);
        Ok(Review {
            kind: "SelfSubjectRulesReview",
            api_version: reviews::API_VERSION,
            metadata,
            spec: RulesReviewSpec { namespace },
            status,
        })
    })();
    created(result)
}

fn resource_attributes(attributes: &JsonObject) -> ApiResult<ResourceAttributes> {
    let field = |name: &str| {
        text_field(
            attributes,
            name,
            &format!("spec.resourceAttributes.{name}"),
            ACCESS_REVIEWS,
        )
    };
    let attributes = ResourceAttributes {
        namespace: field("namespace")?,
        verb: field("verb")?,
        group: field("group")?,
        version: field("version")?,
        resource: field("resource")?,
        subresource: field("subresource")?,
        name: field("name")?,
    };
    for (name, value) in [
        ("verb", &attributes.verb),
        ("resource", &attributes.resource),
    ] {
        if value.is_empty() {
            return Err(invalid_field(
                ACCESS_REVIEWS,
                &format!("spec.resourceAttributes.{name}"),
                "required",
            ));
        }
    }
    Ok(attributes)
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` with
/// `spec.resourceAttributes`: may the caller do this (see [`reviews::request_of`])?
async fn self_subject_access_review(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Response {
    let result = (|| {
        let (metadata, mut spec) = review_body(body, "SelfSubjectAccessReview", ACCESS_REVIEWS)?;
        let resource = object_field(
            &mut spec,
            "resourceAttributes",
            "spec.resourceAttributes",
            ACCESS_REVIEWS,
        )?;
        let non_resource = object_field(
            &mut spec,
            "nonResourceAttributes",
            "spec.nonResourceAttributes",
            ACCESS_REVIEWS,
        )?;
        let (spec, status) = match (resource, non_resource) {
            (Some(attributes), None) => {
                let attributes = resource_attributes(&attributes)?;
                let status = reviews::review_access(
                    &api.identities.authorizer,
                    &caller.subject,
                    &attributes,
                );
                let spec = AccessReviewSpec {
                    resource_attributes: Some(attributes),
                    non_resource_attributes: None,
                };
                (spec, status)
            }
            (None, Some(attributes)) => {
                let field = |name: &str| {
                    text_field(
                        &attributes,
                        name,
                        &format!("spec.nonResourceAttributes.{name}"),
                        ACCESS_REVIEWS,
                    )
                };
                let attributes = NonResourceAttributes {
                    path: field("path")?,
                    verb: field("verb")?,
                };
                let spec = AccessReviewSpec {
                    resource_attributes: None,
                    non_resource_attributes: Some(attributes),
                };
                let status = AccessReviewStatus {
                    allowed: false,
                    reason: "Berth grants no access to non-resource URLs".into(),
                };
                (spec, status)
            }
            _ => {
                return Err(invalid_field(
                    ACCESS_REVIEWS,
                    "spec.resourceAttributes",
                    "exactly one of resourceAttributes and nonResourceAttributes is required",
                ));
            }
        };
        Ok(Review {
            kind: "SelfSubjectAccessReview",
            api_version: reviews::API_VERSION,
            metadata,
            spec,
            status,
        })
    })();
    created(result)
}

pub fn router(api: Arc<AccessApi>) -> Router {
    const ACCESS: &str = "/apis/access.berth.io/v1";
    Router::new()
        .route(
            &format!("{ACCESS}/rolebindings"),
            get(list_registry_bindings).post(create_registry_binding),
        )
        .route(
            &format!("{ACCESS}/rolebindings/{{name}}"),
            delete(delete_registry_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/rolebindings"),
            get(list_namespace_bindings).post(create_namespace_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/rolebindings/{{name}}"),
            delete(delete_namespace_binding),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/whocan"),
            get(who_can_route),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/permissions"),
            get(permissions),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/serviceaccounts/{{name}}/tokens"),
            get(list_service_account_tokens),
        )
        .route(
            &format!("{ACCESS}/namespaces/{{namespace}}/serviceaccounts/{{name}}/tokens/{{uid}}"),
            delete(revoke_service_account_token_route),
        )
        .route(&format!("{ACCESS}/auditevents"), get(audit_events))
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts",
            get(list_service_accounts).post(create_service_account),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
            get(get_service_account).delete(delete_service_account),
        )
        .route(
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            post(create_service_account_token_route),
        )
        .route("/apis/user.openshift.io/v1/users", get(list_users))
        .route("/apis/user.openshift.io/v1/groups", get(list_groups))
        .route(
            "/apis/user.openshift.io/v1/identities",
            get(list_identities).post(create_identity),
        )
        .route(
            "/apis/user.openshift.io/v1/groups/{name}",
            axum::routing::put(put_group),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            post(self_subject_rules_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(self_subject_access_review),
        )
        .with_state(api)
}
