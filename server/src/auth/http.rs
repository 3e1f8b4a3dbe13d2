//! Credentials on HTTP requests: the `Authorization` header (Basic with a password or a token,
//! Bearer with a token or a registry token), and [`Caller`], the extractor every API handler
//! takes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::identity::{AuthContext, AuthError};
use super::model::Subject;
use crate::web::client_address;

/// What the `Authorization` header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// A header that is neither: refused rather than ignored.
    Malformed,
}

pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Credentials::Bearer(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            };
        }
    }
    Credentials::Malformed
}

/// The authentication context, as every router holds it (an extension of every request).
pub fn auth_context(parts: &Parts) -> Option<Arc<AuthContext>> {
    parts.extensions.get::<Arc<AuthContext>>().cloned()
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    None,
    /// A token, with its expiry: what it makes can live no longer.
    Token {
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    Password,
    Session,
}

impl Proof {
    /// When the credentials of this proof stop being valid, when they do.
    pub fn expires_at(self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Proof::Token { expires_at } => expires_at,
            _ => None,
        }
    }
}

/// The subject of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: Subject,
    pub proof: Proof,
}

/// Why a request's credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsRejected {
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("the Authorization header is neither Basic nor Bearer credentials")]
    Malformed,
    #[error("a Bearer token must be a Berth token (berth_...)")]
    UnknownBearer,
    #[error("identity services are not available")]
    Unavailable,
    #[error(
        "the CSRF token is missing or wrong: send the session's token in the X-CSRF-Token header"
    )]
    Csrf,
}

/// Requests that change nothing need no CSRF token.
fn is_safe(method: &axum::http::Method) -> bool {
    matches!(
        *method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    )
}

/// The user of the browser session, if any. Changes made with a session cookie must carry the
/// session's CSRF token (the console's server functions check theirs themselves).
async fn session_caller(
    auth: &AuthContext,
    parts: &Parts,
) -> Result<Option<Caller>, CredentialsRejected> {
    use super::sign_in::{SESSION_CSRF, SESSION_USER};
    let Some(session) = parts.extensions.get::<tower_sessions::Session>() else {
        return Ok(None);
    };
    let Ok(Some(name)) = session.get::<String>(SESSION_USER).await else {
        return Ok(None);
    };
    let Some(user) = auth
        .store
        .user(&name)
        .await
        .map_err(|err| CredentialsRejected::Auth(AuthError::Storage(err)))?
        .filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    if !is_safe(&parts.method) && !parts.uri.path().starts_with("/console/api/") {
        let expected: Option<String> = session.get(SESSION_CSRF).await.ok().flatten();
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !expected.is_some_and(|e| super::credentials::same_secret(given, &e)) {
            return Err(CredentialsRejected::Csrf);
        }
    }
    Ok(Some(Caller {
        subject: super::identity::user_subject(&user),
        proof: Proof::Session,
    }))
}

/// Authenticates the `Authorization` header of a request: a token (Bearer, or as a Basic
/// password) or a user's password; no header is the anonymous subject.
pub async fn authenticate(parts: &Parts) -> Result<Caller, CredentialsRejected> {
    let auth = auth_context(parts).ok_or(CredentialsRejected::Unavailable)?;
    match credentials(&parts.headers) {
        Credentials::None => Ok(session_caller(&auth, parts).await?.unwrap_or(Caller {
            subject: Subject::Anonymous,
            proof: Proof::None,
        })),
        Credentials::Malformed => Err(CredentialsRejected::Malformed),
        Credentials::Bearer(token) => {
            if !token.starts_with(super::credentials::TOKEN_PREFIX) {
                return Err(CredentialsRejected::UnknownBearer);
            }
            let (subject, expires_at) = auth.token(&token).await?;
            Ok(Caller {
                subject,
                proof: Proof::Token { expires_at },
            })
        }
        Credentials::Basic { password, .. }
            if password.starts_with(super::credentials::TOKEN_PREFIX) =>
        {
            let (subject, expires_at) = auth.token(&password).await?;
            Ok(Caller {
                subject,
                proof: Proof::Token { expires_at },
            })
        }
        Credentials::Basic { user, password } => Ok(Caller {
            subject: auth.basic(&user, &password, client_address(parts)).await?,
            proof: Proof::Password,
        }),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = crate::kube::ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(parts)
            .await
            .map_err(crate::kube::ApiError::from)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// For the Kubernetes-style APIs: a refused credential as a `Status`.
impl From<CredentialsRejected> for crate::kube::ApiError {
    fn from(err: CredentialsRejected) -> Self {
        use crate::auth::AuthError;
        use crate::kube::ApiError;
        use CredentialsRejected as R;
        match err {
            R::Auth(AuthError::Throttled { retry_after }) => {
                ApiError::throttled(retry_after.as_secs().max(1))
            }
            R::Auth(AuthError::Storage(err)) => ApiError::internal(err),
            R::Csrf => ApiError::CsrfRejected(R::Csrf.to_string()),
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_the_authorization_header() {
        assert_eq!(credentials(&HeaderMap::new()), Credentials::None);
        assert_eq!(
            credentials(&with("Basic YWxpY2U6czNjcmV0")),
            Credentials::Basic {
                user: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            credentials(&with("Bearer berth_abc")),
            Credentials::Bearer("berth_abc".into())
        );
        assert_eq!(credentials(&with("Basic !!!")), Credentials::Malformed);
        assert_eq!(credentials(&with("Digest x")), Credentials::Malformed);
    }
}
