//! HTTP endpoints of identity: the Docker registry token endpoint, personal access tokens, and
//! "who am I".

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::credentials::{
    Access, RegistryClaims, TOKEN_PREFIX, new_nonce, new_token_secret, secret_hash,
};
use super::http::{Caller, CredentialsRejected, Proof, authenticate};
use super::identity::AuthError;
use super::names::token_name_error;
use super::{Action, Identities, Subject};
use crate::imagestream::error::{ApiError, ApiResult, FieldError, Resource};
use crate::imagestream::model::{ObjectMeta, time};
use crate::registry::access::{decide, docker_action, token_subject};
use crate::registry::names::RepositoryName;
use crate::storage::MetadataStore;
use crate::storage::auth::{NewAudit, TokenKind, TokenOwner, TokenRecord};
use crate::web::client_address;

/// What the token endpoint needs.
pub struct TokenEndpoint {
    pub identities: Arc<Identities>,
    pub metadata: Arc<dyn MetadataStore>,
}

fn token_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({
            "errors": [{"code": code, "message": message}],
            "error": code.to_ascii_lowercase(),
            "error_description": message,
        })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"berth\""),
        );
    }
    response
}

fn refused(err: CredentialsRejected) -> Response {
    match err {
        CredentialsRejected::Auth(AuthError::Throttled { retry_after }) => {
            let mut response = token_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                &format!(
                    "too many login attempts; try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        CredentialsRejected::Auth(AuthError::Storage(err)) => {
            tracing::error!(%err, "token endpoint failed");
            token_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "internal error",
            )
        }
        other => token_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &other.to_string()),
    }
}

/// One `scope` parameter: `repository:NAME:ACTIONS` or `registry:catalog:*`.
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (resource_type, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let resource_type = resource_type.split('(').next().unwrap_or(resource_type);
    Some((
        resource_type.to_owned(),
        name.to_owned(),
        actions.split(',').map(str::to_owned).collect(),
    ))
}

/// The actions of a requested scope that the subject holds.
async fn grant(endpoint: &TokenEndpoint, subject: &Subject, scope: &str) -> Option<Access> {
    let (resource_type, name, actions) = parse_scope(scope)?;
    if resource_type == "registry" && name == "catalog" {
        return (!subject.is_anonymous()).then(|| Access {
            resource_type,
            name,
            actions: vec!["*".into()],
        });
    }
    if resource_type != "repository" {
        return None;
    }
    let repository = name.parse::<RepositoryName>().ok()?;
    let exists = endpoint
        .metadata
        .namespace_exists(repository.namespace())
        .await
        .unwrap_or(true);
    let mut granted = Vec::new();
    for action in [Action::Pull, Action::Push, Action::Delete] {
        let docker = docker_action(action);
        let asked = actions.iter().any(|a| a == docker || a == "*");
        if asked && decide(&endpoint.identities, exists, subject, &repository, action) {
            granted.push(docker.to_owned());
        }
    }
    Some(Access {
        resource_type,
        name,
        actions: granted,
    })
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: u64,
    #[serde(with = "time")]
    issued_at: DateTime<Utc>,
}

/// Signs a registry token for `subject` with the scopes it holds; it ends with the
/// credentials that asked for it (`parent_expiry`) when they end sooner than the configured
/// lifetime.
async fn issue(
    endpoint: &TokenEndpoint,
    subject: &Subject,
    scopes: &[String],
    parent_expiry: Option<DateTime<Utc>>,
) -> Response {
    let identities = &endpoint.identities;
    let mut access = Vec::new();
    for scope in scopes {
        if let Some(granted) = grant(endpoint, subject, scope).await {
            access.push(granted);
        }
    }
    let now = Utc::now();
    // The lifetime is bounded by the configuration's checks: a day and a year at most.
    let configured = i64::try_from(identities.registry_token_ttl.as_secs()).unwrap_or(0);
    let exp = parent_expiry
        .map_or(i64::MAX, |parent| parent.timestamp())
        .min(now.timestamp().saturating_add(configured));
    let ttl = std::time::Duration::from_secs(u64::try_from(exp - now.timestamp()).unwrap_or(0));
    let claims = RegistryClaims {
        iss: identities.registry_tokens.issuer.clone(),
        sub: subject.display_name(),
        aud: identities.registry_tokens.service.clone(),
        exp,
        nbf: now.timestamp(),
        iat: now.timestamp(),
        jti: new_nonce(),
        access,
        berth: token_subject(subject),
    };
    match identities.registry_tokens.sign(&claims) {
        Some(token) => axum::Json(TokenResponse {
            access_token: token.clone(),
            token,
            expires_in: ttl.as_secs(),
            issued_at: now,
        })
        .into_response(),
        None => token_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "signing the token failed",
        ),
    }
}

/// `GET /auth/token?service=…&scope=…`: the Docker token flow. Basic credentials (a token, or
/// a user's password) or none (anonymous); the token grants the requested actions the subject
/// holds, and no others.
async fn registry_token(State(endpoint): State<Arc<TokenEndpoint>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let scopes: Vec<String> = form_urlencoded(parts.uri.query().unwrap_or(""))
        .into_iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|scope| !scope.is_empty())
        .collect();
    match authenticate(&parts).await {
        Ok(caller) => {
            issue(
                &endpoint,
                &caller.subject,
                &scopes,
                caller.proof.expires_at(),
            )
            .await
        }
        Err(err) => refused(err),
    }
}

/// The largest form `POST /auth/token` reads.
const TOKEN_FORM_BYTES: usize = 64 * 1024;

/// Any other method on `/auth/token`, in the endpoint's error format (axum's own 405 has an
/// empty body).
async fn token_method_not_allowed(request: Request) -> Response {
    let mut response = token_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        &format!(
            "{} is not allowed on the token endpoint; use GET, or POST with a password grant",
            request.method()
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    response
}

/// Paths below `/auth/token`, which name nothing, in the endpoint's error format rather than
/// as a console page.
async fn token_path_unknown(request: Request) -> Response {
    token_error(
        StatusCode::NOT_FOUND,
        "UNSUPPORTED",
        &format!(
            "no token endpoint at {}; the endpoint is /auth/token",
            request.uri().path()
        ),
    )
}

/// `POST /auth/token`: the OAuth2 password grant some clients (containerd) try first.
async fn registry_token_post(
    State(endpoint): State<Arc<TokenEndpoint>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, TOKEN_FORM_BYTES).await else {
        return token_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            "the form is larger than 64 KiB, or could not be read",
        );
    };
    let form = form_urlencoded(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("grant_type").as_deref() != Some("password") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "only grant_type=password is supported here; or GET with Basic credentials",
        );
    }
    let (Some(user), Some(password)) = (field("username"), field("password")) else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "username and password are required",
        );
    };
    let scopes: Vec<String> = field("scope")
        .map(|s| s.split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    let identities = &endpoint.identities;
    let authenticated = if password.starts_with(TOKEN_PREFIX) {
        identities.token(&password).await
    } else {
        identities
            .basic(&user, &password, client_address(&parts))
            .await
            .map(|subject| (subject, None))
    };
    match authenticated {
        Ok((subject, expiry)) => issue(&endpoint, &subject, &scopes, expiry).await,
        Err(err) => refused(CredentialsRejected::Auth(err)),
    }
}

fn form_urlencoded(text: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(text).unwrap_or_default()
}

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
    crate::imagestream::routes::ApiJson(body): crate::imagestream::routes::ApiJson<PersonalToken>,
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
        Ok(()) => axum::Json(crate::imagestream::error::deleted(
            crate::imagestream::error::Resource {
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

pub fn router(identities: Arc<Identities>, metadata: Arc<dyn MetadataStore>) -> Router {
    let endpoint = Arc::new(TokenEndpoint {
        identities: identities.clone(),
        metadata,
    });
    Router::new()
        .route(
            "/auth/token",
            get(registry_token)
                .post(registry_token_post)
                .fallback(token_method_not_allowed),
        )
        .route("/auth/token/", axum::routing::any(token_path_unknown))
        .route(
            "/auth/token/{*rest}",
            axum::routing::any(token_path_unknown),
        )
        .with_state(endpoint)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                token_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal error",
                )
            },
        ))
        .merge(
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
                .with_state(identities),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:team/app:pull,push"),
            Some((
                "repository".into(),
                "team/app".into(),
                vec!["pull".into(), "push".into()]
            ))
        );
        assert_eq!(
            parse_scope("repository(plugin):a/b:pull"),
            Some(("repository".into(), "a/b".into(), vec!["pull".into()]))
        );
        assert_eq!(
            parse_scope("registry:catalog:*"),
            Some(("registry".into(), "catalog".into(), vec!["*".into()]))
        );
        assert_eq!(parse_scope("nonsense"), None);
    }
}
