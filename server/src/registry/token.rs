//! The Docker registry token endpoint (`/auth/token`): Basic credentials (a token, or a user's
//! password), or none, exchanged for a registry token granting the requested repository scopes
//! the subject holds, as the registry itself decides them ([`super::access::allows`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::access::{allows, docker_action, token_subject};
use crate::auth::credentials::{Access, RegistryClaims, TOKEN_PREFIX, new_nonce};
use crate::auth::http::{CredentialsRejected, authenticate};
use crate::auth::identity::AuthError;
use crate::auth::{Action, AuthContext, Subject};
use crate::kube::time;
use crate::oci::RepositoryName;
use crate::storage::MetadataStore;
use crate::web::client_address;

/// What the token endpoint needs.
pub struct TokenEndpoint {
    pub auth: Arc<AuthContext>,
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
        if asked && allows(&endpoint.auth, exists, subject, &repository, action) {
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
    let auth = &endpoint.auth;
    let mut access = Vec::new();
    for scope in scopes {
        if let Some(granted) = grant(endpoint, subject, scope).await {
            access.push(granted);
        }
    }
    let now = Utc::now();
    // The lifetime is bounded by the configuration's checks: a day and a year at most.
    let configured = i64::try_from(auth.registry_token_ttl.as_secs()).unwrap_or(0);
    let exp = parent_expiry
        .map_or(i64::MAX, |parent| parent.timestamp())
        .min(now.timestamp().saturating_add(configured));
    let ttl = std::time::Duration::from_secs(u64::try_from(exp - now.timestamp()).unwrap_or(0));
    let claims = RegistryClaims {
        iss: auth.registry_tokens.issuer.clone(),
        sub: subject.display_name(),
        aud: auth.registry_tokens.service.clone(),
        exp,
        nbf: now.timestamp(),
        iat: now.timestamp(),
        jti: new_nonce(),
        access,
        berth: token_subject(subject),
    };
    match auth.registry_tokens.sign(&claims) {
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
    let auth = &endpoint.auth;
    let authenticated = if password.starts_with(TOKEN_PREFIX) {
        auth.token(&password).await
    } else {
        auth.basic(&user, &password, client_address(&parts))
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

pub fn router(auth: Arc<AuthContext>, metadata: Arc<dyn MetadataStore>) -> Router {
    let endpoint = Arc::new(TokenEndpoint { auth, metadata });
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
