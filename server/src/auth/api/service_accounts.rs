//! Service accounts of a namespace (`/api/v1/namespaces/{ns}/serviceaccounts`) and their tokens:
//! Kubernetes' TokenRequest to make one, and Berth's list and revocation of those made.

use crate::kube::SERVICE_ACCOUNTS;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::personal_tokens::token_object;
use super::{Access, AccessApi, list};
use crate::auth::http::Caller;
use crate::auth::names::{service_account_name_error, token_name_error};
use crate::auth::tokens::{
    MAX_TOKEN_DAYS, create_token_for, require_unused_token_name, token_expiry,
};
use crate::auth::{Action, Subject, Target};
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, ObjectMeta, Resource, created, deleted, ok, time,
};
use crate::storage::auth::{ServiceAccountRecord, TokenKind, TokenOwner, TokenRecord};

impl AccessApi {
    /// A namespace's service accounts are managed by those who manage access there.
    fn require_managing(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<()> {
        self.auth.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            SERVICE_ACCOUNTS,
            name,
        )
    }

    pub async fn service_accounts(
        &self,
        who: &Subject,
        namespace: &str,
    ) -> ApiResult<Vec<ServiceAccountRecord>> {
        self.require_managing(who, namespace, "")?;
        self.require_namespace(namespace).await?;
        Ok(self.auth.store.list_service_accounts(namespace).await?)
    }

    pub async fn create_service_account(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ServiceAccountRecord> {
        self.require_managing(who, namespace, name)?;
        self.require_namespace(namespace).await?;
        if let Some(message) = service_account_name_error(name) {
            return Err(ApiError::invalid(
                SERVICE_ACCOUNTS,
                name,
                FieldError::new("metadata.name", message),
            ));
        }
        let account = self
            .auth
            .store
            .create_service_account(namespace, name)
            .await?
            .ok_or(ApiError::AlreadyExists {
                resource: SERVICE_ACCOUNTS,
                name: name.to_owned(),
            })?;
        self.access_changed_in(Some(namespace), "serviceaccount", name)
            .await;
        self.auth
            .audit_change(
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
        self.require_managing(who, namespace, name)?;
        self.auth
            .store
            .service_account(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(SERVICE_ACCOUNTS, name))
    }

    /// Deletes a service account, and with it its tokens and bindings.
    pub async fn delete_service_account(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<()> {
        self.service_account(who, namespace, name).await?;
        self.auth
            .store
            .delete_service_account(namespace, name)
            .await?;
        // Its bindings went with it.
        self.auth.authorizer.changed().await?;
        self.auth
            .credentials_changed(&format!("service account {namespace}/{name}"))
            .await;
        self.access_changed_in(Some(namespace), "serviceaccount", name)
            .await;
        self.auth
            .audit_change(
                who,
                "serviceaccount-delete",
                format!("{namespace}/{name}"),
                None,
            )
            .await;
        Ok(())
    }

    pub async fn service_account_tokens(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Vec<TokenRecord>> {
        let account = self.service_account(who, namespace, name).await?;
        Ok(self
            .auth
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
        let named = !token_name.is_empty();
        let token_name = if named {
            token_name.to_owned()
        } else {
            format!("{name}-token")
        };
        if let Some(message) = token_name_error(&token_name) {
            return Err(ApiError::invalid(
                SERVICE_ACCOUNTS,
                name,
                FieldError::new("metadata.name", message),
            ));
        }
        if named {
            require_unused_token_name(
                &self.auth,
                &TokenOwner::ServiceAccount(account.id),
                TokenKind::ServiceAccount,
                &token_name,
                SERVICE_ACCOUNTS,
            )
            .await?;
        }
        let made = create_token_for(
            &self.auth,
            &TokenOwner::ServiceAccount(account.id),
            TokenKind::ServiceAccount,
            &token_name,
            token_expiry(Utc::now(), lifetime, who.proof.expires_at()),
            &who.subject.display_name(),
        )
        .await?;
        self.access_changed_in(Some(namespace), "token", name).await;
        Ok(made)
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
            .auth
            .store
            .revoke_token(&TokenOwner::ServiceAccount(account.id), uid)
            .await?
        {
            return Err(ApiError::NoSuchResource(format!("token {uid}")));
        }
        self.auth
            .credentials_changed(&format!("service account token {uid}"))
            .await;
        self.access_changed_in(Some(namespace), "token", name).await;
        self.auth
            .audit_change(
                who,
                "token-revoke",
                format!("serviceaccount token {uid}"),
                None,
            )
            .await;
        Ok(())
    }
}

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

pub(super) async fn list_service_accounts(
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
pub(super) struct NamedObject {
    #[serde(default)]
    metadata: ObjectMeta,
}

pub(super) async fn create_service_account(
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

pub(super) async fn get_service_account(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = api
        .service_account(&caller.subject, &namespace, &name)
        .await;
    ok(result.map(|a| service_account_object(&a)))
}

pub(super) async fn delete_service_account(
    State(api): Access,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = api
        .delete_service_account(&caller.subject, &namespace, &name)
        .await;
    ok(result.map(|()| deleted(SERVICE_ACCOUNTS, &name)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequestSpec {
    expiration_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TokenRequest {
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
pub(super) async fn create_service_account_token_route(
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

pub(super) async fn list_service_account_tokens(
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

pub(super) async fn revoke_service_account_token_route(
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
