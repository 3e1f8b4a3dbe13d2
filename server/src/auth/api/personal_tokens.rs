//! Personal access tokens (`/apis/access.berth.io/v1/personaltokens`): a user's own tokens,
//! made with a password or in the console, listed and revoked; and the shape every Berth token
//! is shown in.

use crate::kube::PERSONAL_TOKENS;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Access, AccessApi, access_api_version, list};
use crate::auth::http::{Caller, Proof};
use crate::auth::names::token_name_error;
use crate::auth::tokens::{
    create_token_for, lifetime_days, require_unused_token_name, token_expiry,
};
use crate::auth::{AccessChange, Subject};
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, ObjectMeta, created, deleted, ok, time,
};
use crate::storage::auth::{NewAudit, TokenKind, TokenOwner, TokenRecord};

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
    /// Days until it expires (1 to [`MAX_TOKEN_DAYS`](crate::auth::tokens::MAX_TOKEN_DAYS)); none: it does not, unless the
    /// credentials that make it do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u64>,
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

impl AccessApi {
    /// The signed-in user's own record (tokens are personal: a service account or anonymous caller
    /// has none).
    async fn own_user(&self, who: &Subject) -> ApiResult<(TokenOwner, String)> {
        let Subject::User { name, .. } = who else {
            return Err(ApiError::Unauthorized(
                "personal tokens belong to users: sign in as one".into(),
            ));
        };
        let user = self
            .auth
            .store
            .user(name)
            .await?
            .ok_or_else(|| ApiError::Unauthorized(format!("user {name} no longer exists")))?;
        Ok((TokenOwner::User(user.id), user.name))
    }

    /// The caller's personal tokens (revoked and expired ones too).
    pub async fn personal_tokens(&self, who: &Subject) -> ApiResult<Vec<TokenRecord>> {
        let (owner, _) = self.own_user(who).await?;
        let mut tokens = self.auth.store.list_tokens(&owner).await?;
        tokens.retain(|t| t.kind == TokenKind::Personal);
        Ok(tokens)
    }

    /// Creates a personal token for the caller, named by the time when no name is given. Only a
    /// password or the console session makes one: a token (a personal one, or an OAuth access
    /// token issued to another client) cannot make tokens of its own.
    pub async fn create_personal_token(
        &self,
        caller: &Caller,
        name: &str,
        expires_in_days: Option<u64>,
    ) -> ApiResult<(TokenRecord, String)> {
        let (owner, user) = self.own_user(&caller.subject).await?;
        let named = !name.trim().is_empty();
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
        if named {
            require_unused_token_name(
                &self.auth,
                &owner,
                TokenKind::Personal,
                &name,
                PERSONAL_TOKENS,
            )
            .await?;
        }
        match caller.proof {
            Proof::Password | Proof::Session => {}
            Proof::Token { .. } | Proof::None => {
                return Err(ApiError::Refused(
                    "personal tokens are made with your password or in the console: a token cannot make tokens".into(),
                ));
            }
        }
        let made = create_token_for(
            &self.auth,
            &owner,
            TokenKind::Personal,
            &name,
            token_expiry(Utc::now(), lifetime, caller.proof.expires_at()),
            &user,
        )
        .await?;
        self.personal_tokens_changed(user, &name).await;
        Ok(made)
    }

    /// Tells the user's open tokens pages (and only theirs) that their tokens changed.
    async fn personal_tokens_changed(&self, user: String, name: &str) {
        self.auth
            .access_changed(&AccessChange {
                namespace: None,
                user: Some(user),
                what: "token".into(),
                name: name.to_owned(),
            })
            .await;
    }

    /// Revokes one of the caller's personal tokens (recorded in the audit log, refused or not).
    pub async fn revoke_personal_token(&self, who: &Subject, uid: &str) -> ApiResult<()> {
        let (owner, user) = self.own_user(who).await?;
        let revoked = self.auth.store.revoke_token(&owner, uid).await?;
        self.auth
            .audit(NewAudit {
                actor: user.clone(),
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
        self.auth.credentials_changed(&format!("token {uid}")).await;
        self.personal_tokens_changed(user, uid).await;
        Ok(())
    }
}

pub(super) async fn list_personal_tokens(State(api): Access, caller: Caller) -> Response {
    match api.personal_tokens(&caller.subject).await {
        Ok(tokens) => list(
            "PersonalTokenList",
            &access_api_version(),
            tokens.iter().map(|t| token_object(t, None)).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

pub(super) async fn create_personal_token(
    State(api): Access,
    caller: Caller,
    ApiJson(body): ApiJson<PersonalToken>,
) -> Response {
    let result = api
        .create_personal_token(&caller, &body.metadata.name, body.spec.expires_in_days)
        .await;
    created(result.map(|(record, secret)| token_object(&record, Some(secret))))
}

pub(super) async fn revoke_personal_token(
    State(api): Access,
    caller: Caller,
    Path(uid): Path<String>,
) -> Response {
    let result = api.revoke_personal_token(&caller.subject, &uid).await;
    ok(result.map(|()| deleted(PERSONAL_TOKENS, &uid)))
}
