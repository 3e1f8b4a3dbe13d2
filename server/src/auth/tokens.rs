//! Making Berth tokens (personal, service account): the secret shown once and stored only as its
//! hash, lifetimes checked against [`MAX_TOKEN_DAYS`], and never outliving the credentials that
//! make them.

use chrono::{DateTime, TimeDelta, Utc};

use super::AuthContext;
use super::credentials::{new_token_secret, secret_hash};
use crate::kube::{ApiError, ApiResult, Resource};
use crate::storage::auth::{NewAudit, TokenKind, TokenOwner, TokenRecord};

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

/// Refuses `name` for a new token of `owner` when one of its tokens in use has it already: a
/// name is the owner's handle on a token (lists show no secret). `AlreadyExists` of `resource`.
/// Names made up by Berth (a token asked for without one) need no check.
pub async fn require_unused_token_name(
    auth: &AuthContext,
    owner: &TokenOwner,
    kind: TokenKind,
    name: &str,
    resource: Resource,
) -> ApiResult<()> {
    let now = Utc::now();
    let taken = auth
        .store
        .list_tokens(owner)
        .await?
        .iter()
        .any(|token| token.kind == kind && token.name == name && token.is_valid_at(now));
    if taken {
        return Err(ApiError::AlreadyExists {
            resource,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Creates a token for an owner; the secret is in this answer and nowhere else, ever.
pub async fn create_token_for(
    auth: &AuthContext,
    owner: &TokenOwner,
    kind: TokenKind,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
) -> ApiResult<(TokenRecord, String)> {
    let secret = new_token_secret();
    let record = auth
        .store
        .create_token(kind, owner, name, &secret_hash(&secret), expires_at)
        .await?;
    auth.audit(NewAudit {
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
