//! The embedded OAuth 2.0 authorization server, the default identity provider (as OpenShift's
//! built-in one is): the authorization-code flow with PKCE (S256) and `state`, a login form
//! for local users ([`authorize`]), a token endpoint issuing an access token (a Berth token)
//! and an OpenID Connect ID token (HS256 with the client's secret) ([`token`]), their refusals
//! ([`error`]), `oc login`'s challenging client ([`challenge`]), and the server's metadata at
//! `/.well-known/oauth-authorization-server` (and `openid-configuration`).

use std::sync::Arc;

use app::format::escape_html;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::identity::AuthContext;

mod authorize;
pub mod challenge;
pub mod error;
mod token;

/// OpenShift's client for `oc login` (a public client: no secret, challenges, no login page).
pub const CHALLENGING_CLIENT_ID: &str = "openshift-challenging-client";

/// The console's client id at the embedded server.
pub use crate::config::auth::CONSOLE_CLIENT_ID;

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
    /// The external provider people sign in through, when there is one: then no password is
    /// challenged for (`oc login` is sent to the console's token page).
    pub external_provider: Option<String>,
}

impl OAuthServer {
    /// The server with its clients, `oc`'s challenging client first (so no configured client
    /// takes its id).
    pub fn new(
        auth: Arc<AuthContext>,
        issuer: String,
        clients: Vec<OAuthClient>,
        form_key: Vec<u8>,
        access_token_seconds: u64,
        external_provider: Option<String>,
    ) -> Self {
        let challenging = OAuthClient {
            id: CHALLENGING_CLIENT_ID.into(),
            secret: String::new(),
            redirect_uri: format!("{issuer}{}", challenge::IMPLICIT_PATH),
        };
        OAuthServer {
            auth,
            issuer,
            clients: std::iter::once(challenging).chain(clients).collect(),
            form_key,
            access_token_seconds: i64::try_from(access_token_seconds).unwrap_or(i64::MAX / 2),
            external_provider,
        }
    }

    fn client(&self, id: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.id == id)
    }
}

/// A page of the embedded server (the login form, or an error a person can read).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>{title} · Berth</title><link rel="icon" type="image/svg+xml" href="/favicon.svg"><link rel="stylesheet" href="{stylesheet}"></head><body><header class="topbar"><a class="brand" href="/">Berth</a><span class="tagline">container registry</span></header><main id="main"><section class="panel narrow">{body}</section></main></body></html>"#,
        title = escape_html(title),
        stylesheet = crate::assets::stylesheet(),
    )
}

/// The server's metadata (RFC 8414), also served as OpenID Connect discovery.
pub fn metadata(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "response_types_supported": ["code", "token"],
        "grant_types_supported": ["authorization_code", "implicit"],
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
        .route(
            "/oauth/authorize",
            get(authorize::authorize).post(authorize::sign_in),
        )
        .route("/oauth/token", axum::routing::post(token::token))
        .route(challenge::IMPLICIT_PATH, get(challenge::implicit))
        .route(challenge::REQUEST_PATH, get(challenge::request_token))
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
