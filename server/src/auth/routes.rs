//! HTTP endpoints of identity: personal access tokens and "who am I".

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::credentials::{new_token_secret, secret_hash};
use super::http::{Caller, Proof};
use super::names::token_name_error;
use super::{Identities, Subject};
use crate::kube::{ApiError, ApiResult, FieldError, Resource};
use crate::kube::{ObjectMeta, time};
use crate::storage::auth::{NewAudit, TokenKind, TokenOwner, TokenRecord};

// ---- personal access tokens ----------------------------------------------------------------------

/// A personal access token as the API shows it; `token` only in the answer to its creation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalToken {
    #[serde(default = "personal_token_kind")]
    pub kind: String,
    #[serde(default = "access_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PersonalTokenSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PersonalTokenStatus>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalTokenSpec {
    /// Days until it expires (1 to [`MAX_TOKEN_DAYS`]); none: it does not, unless the
    /// credentials that make it do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u64>,
}

/// The longest lifetime a token can be given, in days (ten years): every lifetime is checked
/// against it before any time is computed, so no input overflows a date.
pub const MAX_TOKEN_DAYS: u64 = 3650;

/// A lifetime in days, checked: 1 to [`MAX_TOKEN_DAYS`].
pub fn lifetime_days(days: u64) -> Result<TimeDelta, String> {
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(format!(
            "must be between 1 and {MAX_TOKEN_DAYS} days, or absent for a token that does not expire"
        ));
    }
    i64::try_from(days)
        .ok()
        .and_then(TimeDelta::try_days)
        .ok_or_else(|| format!("{days} days is not a lifetime"))
}

/// When a token made now for `lifetime` expires: never later than `cap`, the expiry of the
/// credentials that make it (a token cannot outlive its parent).
pub fn token_expiry(
    now: DateTime<Utc>,
    lifetime: Option<TimeDelta>,
    cap: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let wanted = lifetime.map(|lifetime| {
        now.checked_add_signed(lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    });
    match (wanted, cap) {
        (Some(wanted), Some(cap)) => Some(wanted.min(cap)),
        (wanted, cap) => wanted.or(cap),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalTokenStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    pub revoked_at: Option<DateTime<Utc>>,
}

fn personal_token_kind() -> String {
    "PersonalToken".into()
}

pub fn access_api_version() -> String {
    "access.berth.io/v1".into()
}

pub fn token_object(record: &TokenRecord, secret: Option<String>) -> PersonalToken {
    PersonalToken {
        kind: personal_token_kind(),
        api_version: access_api_version(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            uid: record.uid.clone(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
        spec: PersonalTokenSpec::default(),
        status: Some(PersonalTokenStatus {
            token: secret,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }),
    }
}

/// The signed-in user's own record (tokens are personal: a service account or anonymous caller
/// has none).
async fn own_user(identities: &Identities, who: &Subject) -> ApiResult<(TokenOwner, String)> {
    let Subject::User { name, .. } = who else {
        return Err(ApiError::Unauthorized(
            "personal tokens belong to users: sign in as one".into(),
        ));
    };
    let user = identities
        .store
        .user(name)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("user {name} no longer exists")))?;
    Ok((TokenOwner::User(user.id), user.name))
}

/// The caller's personal tokens (revoked and expired ones too).
pub async fn personal_tokens(
    identities: &Identities,
    who: &Subject,
) -> ApiResult<Vec<TokenRecord>> {
    let (owner, _) = own_user(identities, who).await?;
    let mut tokens = identities.store.list_tokens(&owner).await?;
    tokens.retain(|t| t.kind == TokenKind::Personal);
    Ok(tokens)
}

const PERSONAL_TOKENS: Resource = Resource {
    plural: "personaltokens",
    group: "access.berth.io",
};

/// Creates a personal token for the caller, named by the time when no name is given. Only a
/// password or the console session makes one: a token (a personal one, or an OAuth access
/// token issued to another client) cannot make tokens of its own.
pub async fn create_personal_token(
    identities: &Identities,
    caller: &Caller,
    name: &str,
    expires_in_days: Option<u64>,
) -> ApiResult<(TokenRecord, String)> {
    let (owner, user) = own_user(identities, &caller.subject).await?;
    let name = if name.trim().is_empty() {
        format!("token-{}", Utc::now().format("%Y%m%d-%H%M%S"))
    } else {
        name.trim().to_owned()
    };
    if let Some(message) = token_name_error(&name) {
        return Err(ApiError::invalid(
            PERSONAL_TOKENS,
            "",
            FieldError::new("metadata.name", message),
        ));
    }
    let lifetime = expires_in_days
        .map(lifetime_days)
        .transpose()
        .map_err(|message| {
            ApiError::invalid(
                PERSONAL_TOKENS,
                &name,
                FieldError::new("spec.expiresInDays", message),
            )
        })?;
    match caller.proof {
        Proof::Password | Proof::Session => {}
        Proof::Token { .. } | Proof::None => {
            return Err(ApiError::Refused(
                "personal tokens are made with your password or in the console: a token cannot make tokens".into(),
            ));
        }
    }
    create_token_for(
        identities,
        &owner,
        TokenKind::Personal,
        &name,
        token_expiry(Utc::now(), lifetime, caller.proof.expires_at()),
        &user,
    )
    .await
}

pub async fn revoke_personal_token(
    identities: &Identities,
    who: &Subject,
    uid: &str,
) -> ApiResult<()> {
    let (owner, user) = own_user(identities, who).await?;
    let revoked = identities.store.revoke_token(&owner, uid).await?;
    identities
        .audit(NewAudit {
            actor: user,
            action: "token-revoke",
            target: format!("personal token {uid}"),
            success: revoked,
            address: None,
            detail: None,
        })
        .await;
    if !revoked {
        return Err(ApiError::NoSuchResource(format!("personal token {uid}")));
    }
    identities.forget_credentials();
    Ok(())
}

async fn list_personal_tokens_route(
    State(identities): State<Arc<Identities>>,
    caller: Caller,
) -> Response {
    match personal_tokens(&identities, &caller.subject).await {
        Ok(tokens) => axum::Json(serde_json::json!({
            "kind": "PersonalTokenList",
            "apiVersion": access_api_version(),
            "metadata": {},
            "items": tokens.iter().map(|t| token_object(t, None)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

/// Creates a token for an owner; the secret is in this answer and nowhere else, ever.
pub async fn create_token_for(
    identities: &Identities,
    owner: &TokenOwner,
    kind: TokenKind,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
) -> ApiResult<(TokenRecord, String)> {
    let secret = new_token_secret();
    let record = identities
        .store
        .create_token(kind, owner, name, &secret_hash(&secret), expires_at)
        .await?;
    identities
        .audit(NewAudit {
            actor: actor.to_owned(),
            action: "token-create",
            target: format!("{} token {}", kind.as_str(), record.uid),
            success: true,
            address: None,
            detail: Some(name.to_owned()),
        })
        .await;
    Ok((record, secret))
}

async fn create_personal_token_route(
    State(identities): State<Arc<Identities>>,
    caller: Caller,
    crate::kube::ApiJson(body): crate::kube::ApiJson<PersonalToken>,
) -> Response {
    match create_personal_token(
        &identities,
        &caller,
        &body.metadata.name,
        body.spec.expires_in_days,
    )
    .await
    {
        Ok((record, secret)) => (
            StatusCode::CREATED,
            axum::Json(token_object(&record, Some(secret))),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn revoke_personal_token_route(
    State(identities): State<Arc<Identities>>,
    caller: Caller,
    Path(uid): Path<String>,
) -> Response {
    match revoke_personal_token(&identities, &caller.subject, &uid).await {
        Ok(()) => axum::Json(crate::kube::deleted(
            crate::kube::Resource {
                plural: "personaltokens",
                group: "access.berth.io",
            },
            &uid,
        ))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

/// `GET /apis/user.openshift.io/v1/users/~`: who the caller is, as `oc whoami` asks.
async fn whoami(caller: Caller) -> Response {
    let (name, groups) = match &caller.subject {
        Subject::Anonymous => {
            return ApiError::Unauthorized("no credentials: sign in, or send a token".into())
                .into_response();
        }
        Subject::User { name, groups } => (name.clone(), groups.clone()),
        account @ Subject::ServiceAccount { .. } => (account.display_name(), Vec::new()),
    };
    axum::Json(serde_json::json!({
        "kind": "User",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {"name": name},
        "groups": groups,
    }))
    .into_response()
}

pub fn router(identities: Arc<Identities>) -> Router {
    Router::new()
        .route(
            "/apis/access.berth.io/v1/personaltokens",
            get(list_personal_tokens_route).post(create_personal_token_route),
        )
        .route(
            "/apis/access.berth.io/v1/personaltokens/{uid}",
            delete(revoke_personal_token_route),
        )
        .route("/apis/user.openshift.io/v1/users/~", get(whoami))
        .with_state(identities)
}
