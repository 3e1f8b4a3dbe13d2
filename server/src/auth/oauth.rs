//! The embedded OAuth 2.0 authorization server, the default identity provider (as OpenShift's
//! built-in one is): the authorization-code flow with PKCE (S256) and `state`, a login form
//! for local users, a token endpoint issuing an access token (a Berth token) and an OpenID
//! Connect ID token (HS256 with the client's secret), and its metadata at
//! `/.well-known/oauth-authorization-server` (and `openid-configuration`).

use std::net::IpAddr;
use std::sync::Arc;

use app::format::escape_html;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::credentials::{new_nonce, new_token_secret, pkce_challenge, same_secret, secret_hash};
use super::identity::{AuthContext, AuthError};
use crate::storage::auth::{NewAudit, OAuthCode, TokenKind, TokenOwner};

/// The console's client id at the embedded server.
pub const CONSOLE_CLIENT_ID: &str = "berth-console";
/// Where the console receives codes, relative to the server's base URL.
pub const CONSOLE_CALLBACK: &str = "/console/callback";
const CODE_LIFETIME_MINUTES: i64 = 5;

/// A client registered with the embedded server.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
}

pub struct OAuthServer {
    pub auth: Arc<AuthContext>,
    /// The issuer: the server's base URL as people reach it.
    pub issuer: String,
    pub clients: Vec<OAuthClient>,
    /// Signs the login form's hidden fields, so that a posted form is one this server made.
    form_key: Vec<u8>,
    /// How long an access token lasts (OpenShift's `accessTokenMaxAgeSeconds`).
    pub access_token_seconds: i64,
}

impl OAuthServer {
    pub fn new(
        auth: Arc<AuthContext>,
        issuer: String,
        clients: Vec<OAuthClient>,
        form_key: Vec<u8>,
        access_token_seconds: u64,
    ) -> Self {
        OAuthServer {
            auth,
            issuer,
            clients,
            form_key,
            access_token_seconds: i64::try_from(access_token_seconds).unwrap_or(i64::MAX / 2),
        }
    }

    fn client(&self, id: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// An HMAC over the authorization request, carried by the login form.
    fn sign(&self, request: &AuthorizeRequest) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(&self.form_key);
        for part in [
            &request.client_id,
            &request.redirect_uri,
            &request.state,
            &request.code_challenge,
            &request.nonce,
            &request.scope,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }
}

/// The parameters of an authorization request, from the query or the login form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    nonce: String,
}

/// A page of the embedded server (the login form, or an error a person can read).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>{title} · Berth</title><link rel="stylesheet" href="{stylesheet}"></head><body><header class="topbar"><a class="brand" href="/">Berth</a><span class="tagline">container registry</span></header><main id="main"><section class="panel narrow">{body}</section></main></body></html>"#,
        title = escape_html(title),
        stylesheet = crate::assets::stylesheet(),
    )
}

/// A problem with a request, shown as a page (the browser flow) with its status.
fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Html(page(
            title,
            &format!(
                "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
                escape_html(title),
                escape_html(message)
            ),
        )),
    )
        .into_response()
}

impl OAuthServer {
    /// Checks an authorization request; the error is for a person, since a request whose
    /// client or redirect is wrong must not be redirected.
    fn check(&self, request: &AuthorizeRequest) -> Result<(), String> {
        let client = self
            .client(&request.client_id)
            .ok_or_else(|| format!("unknown client {:?}", request.client_id))?;
        if request.redirect_uri != client.redirect_uri {
            return Err("the redirect URI is not the one registered for this client".into());
        }
        if request.response_type != "code" {
            return Err("only response_type=code is supported".into());
        }
        if request.code_challenge.is_empty() || request.code_challenge_method != "S256" {
            return Err(
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            );
        }
        if request.state.is_empty() {
            return Err("state is required".into());
        }
        Ok(())
    }

    fn login_form(&self, request: &AuthorizeRequest, error: Option<&str>, user: &str) -> String {
        let hidden: String = [
            ("response_type", &request.response_type),
            ("client_id", &request.client_id),
            ("redirect_uri", &request.redirect_uri),
            ("scope", &request.scope),
            ("state", &request.state),
            ("code_challenge", &request.code_challenge),
            ("code_challenge_method", &request.code_challenge_method),
            ("nonce", &request.nonce),
        ]
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape_html(value)
            )
        })
        .collect();
        let error = error
            .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape_html(e)))
            .unwrap_or_default();
        page(
            "Sign in",
            &format!(
                r#"<h1>Sign in to Berth</h1>{error}<form method="post" action="/oauth/authorize" class="login">{hidden}<input type="hidden" name="signature" value="{signature}"><label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus value="{user}"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required><button type="submit" class="primary">Sign in</button></form>"#,
                signature = self.sign(request),
                user = escape_html(user),
            ),
        )
    }
}

/// The login form as an answer. Its post is answered with a redirect to the client's
/// registered address, which the page's `form-action` must allow (never framed: the edge's
/// headers).
fn login_page(
    status: StatusCode,
    server: &OAuthServer,
    request: &AuthorizeRequest,
    error: Option<&str>,
    user: &str,
) -> Response {
    let mut response = (status, Html(server.login_form(request, error, user))).into_response();
    if let Some(target) = crate::web::form_target(&request.redirect_uri) {
        response.extensions_mut().insert(target);
    }
    response
}

/// `GET /oauth/authorize`: the login form for a valid request.
async fn authorize(State(server): State<Arc<OAuthServer>>, RawQuery(query): RawQuery) -> Response {
    let request: AuthorizeRequest =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    match server.check(&request) {
        Err(message) => problem(StatusCode::BAD_REQUEST, "Sign-in request refused", &message),
        Ok(()) => login_page(StatusCode::OK, &server, &request, None, ""),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(flatten)]
    request: AuthorizeRequest,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /oauth/authorize`: checks the password (throttled), then sends the browser back to
/// the client with a single-use code bound to the PKCE challenge.
async fn sign_in(
    State(server): State<Arc<OAuthServer>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let address: Option<IpAddr> = crate::web::client_address(&parts);
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Sign-in request refused",
            "the form is too large",
        );
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            "the form could not be read",
        );
    };
    if let Err(message) = server.check(&form.request) {
        return problem(StatusCode::BAD_REQUEST, "Sign-in request refused", &message);
    }
    // A form this server did not make (cross-site, or altered) is refused.
    if !same_secret(&form.signature, &server.sign(&form.request)) {
        return problem(
            StatusCode::FORBIDDEN,
            "Sign-in request refused",
            "the sign-in form was not issued by this server (missing or wrong CSRF token); start again",
        );
    }
    let user = match server
        .auth
        .login(&form.username, &form.password, address, "login")
        .await
    {
        Ok(user) => user,
        Err(AuthError::Throttled { retry_after }) => {
            let message = format!(
                "Too many attempts; try again in {} seconds.",
                retry_after.as_secs().max(1)
            );
            return login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &server,
                &form.request,
                Some(&message),
                &form.username,
            );
        }
        Err(AuthError::Storage(err)) => {
            tracing::error!(%err, "sign-in failed");
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                "internal error; the server log has the cause",
            );
        }
        Err(_) => {
            return login_page(
                StatusCode::UNAUTHORIZED,
                &server,
                &form.request,
                Some("Invalid user name or password."),
                &form.username,
            );
        }
    };
    let code = new_nonce();
    let stored = OAuthCode {
        client_id: form.request.client_id.clone(),
        redirect_uri: form.request.redirect_uri.clone(),
        user_id: user.id,
        code_challenge: form.request.code_challenge.clone(),
        nonce: (!form.request.nonce.is_empty()).then(|| form.request.nonce.clone()),
        scope: form.request.scope.clone(),
        expires_at: Utc::now() + chrono::Duration::minutes(CODE_LIFETIME_MINUTES),
    };
    if let Err(err) = server
        .auth
        .store
        .put_oauth_code(&secret_hash(&code), &stored)
        .await
    {
        tracing::error!(%err, "storing an authorization code failed");
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in failed",
            "internal error; the server log has the cause",
        );
    }
    let target = format!(
        "{}?{}",
        form.request.redirect_uri,
        serde_urlencoded::to_string([
            ("code", code.as_str()),
            ("state", form.request.state.as_str())
        ])
        .unwrap_or_default()
    );
    Redirect::to(&target).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// The client's credentials: HTTP Basic (client_secret_basic) or form fields (client_secret_post).
fn client_credentials(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    if let super::http::Credentials::Basic { user, password } = super::http::credentials(headers) {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        return Some((decode(&user), decode(&password)));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

/// `POST /oauth/token`: exchanges a code (once, before it expires, with the PKCE verifier
/// matching its challenge) for an access token and an ID token.
async fn token(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.grant_type != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    let Some((client_id, client_secret)) = client_credentials(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication is required",
        );
    };
    let Some(client) = server
        .client(&client_id)
        .filter(|c| same_secret(&c.secret, &client_secret))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let store = &server.auth.store;
    let code = match store.take_oauth_code(&secret_hash(&form.code)).await {
        Ok(Some(code)) => code,
        Ok(None) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the code is unknown or was used already",
            );
        }
        Err(err) => {
            tracing::error!(%err, "reading an authorization code failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    if code.client_id != client.id || code.redirect_uri != form.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was issued to another client or redirect URI",
        );
    }
    if code.expires_at < Utc::now() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code has expired",
        );
    }
    if form.code_verifier.is_empty()
        || !same_secret(&pkce_challenge(&form.code_verifier), &code.code_challenge)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the PKCE code_verifier does not match the challenge",
        );
    }
    let user = match store.user_by_id(code.user_id).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the user no longer exists",
            );
        }
        Err(err) => {
            tracing::error!(%err, "reading a user failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    let secret = new_token_secret();
    let expires_at = Utc::now() + chrono::Duration::seconds(server.access_token_seconds);
    if let Err(err) = store
        .create_token(
            TokenKind::OAuth,
            &TokenOwner::User(user.id),
            &format!("oauth {}", client.id),
            &secret_hash(&secret),
            Some(expires_at),
        )
        .await
    {
        tracing::error!(%err, "storing an access token failed");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        );
    }
    let now = Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "iss": server.issuer,
        "sub": user.name,
        "aud": client.id,
        "exp": now + server.access_token_seconds,
        "iat": now,
        "auth_time": now,
        "preferred_username": user.name,
        "groups": user.groups,
    });
    if let Some(name) = &user.full_name {
        claims["name"] = serde_json::json!(name);
    }
    if let Some(nonce) = &code.nonce {
        claims["nonce"] = serde_json::json!(nonce);
    }
    let Ok(id_token) = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(client.secret.as_bytes()),
    ) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing the ID token failed",
        );
    };
    server
        .auth
        .audit(NewAudit {
            actor: user.name.clone(),
            action: "token-create",
            target: format!("oauth access token for {}", client.id),
            success: true,
            address: None,
            detail: None,
        })
        .await;
    let mut response = axum::Json(serde_json::json!({
        "access_token": secret,
        "token_type": "Bearer",
        "expires_in": server.access_token_seconds,
        "id_token": id_token,
        "scope": code.scope,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The server's metadata (RFC 8414), also served as OpenID Connect discovery.
pub fn metadata(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "preferred_username", "name", "groups"],
    })
}

async fn discovery(State(server): State<Arc<OAuthServer>>) -> Response {
    axum::Json(metadata(&server.issuer)).into_response()
}

/// ID tokens are signed with each client's secret (HS256): there are no public keys.
async fn jwks() -> Response {
    axum::Json(serde_json::json!({"keys": []})).into_response()
}

pub fn router(server: Arc<OAuthServer>) -> Router {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth/authorize", get(authorize).post(sign_in))
        .route("/oauth/token", axum::routing::post(token))
        .route("/oauth/jwks", get(jwks))
        .with_state(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
