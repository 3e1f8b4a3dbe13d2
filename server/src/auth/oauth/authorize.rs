//! The embedded server's authorization endpoint: `GET /oauth/authorize` checks the request and
//! shows the login form, `POST /oauth/authorize` checks the password (throttled) and sends the
//! browser back to the client with a single-use code bound to the PKCE challenge.

use std::net::IpAddr;
use std::sync::Arc;

use app::format::escape_html;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::error::OAuthError;
use super::{OAuthServer, page};
use crate::auth::credentials::{new_nonce, same_secret, secret_hash};
use crate::storage::auth::OAuthCode;

const CODE_LIFETIME_MINUTES: i64 = 5;

/// The parameters of an authorization request, from the query or the login form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub(super) response_type: String,
    #[serde(default)]
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) redirect_uri: String,
    #[serde(default)]
    pub(super) scope: String,
    #[serde(default)]
    pub(super) state: String,
    #[serde(default)]
    pub(super) code_challenge: String,
    #[serde(default)]
    pub(super) code_challenge_method: String,
    #[serde(default)]
    pub(super) nonce: String,
}

impl OAuthServer {
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

    /// Checks an authorization request; the refusal is for a person, since a request whose
    /// client or redirect is wrong must not be redirected.
    fn check(&self, request: &AuthorizeRequest) -> Result<(), OAuthError> {
        let client = self
            .client(&request.client_id)
            .ok_or_else(|| OAuthError::UnknownClient(request.client_id.clone()))?;
        if client.id == super::CHALLENGING_CLIENT_ID {
            return Err(OAuthError::ChallengesOnly);
        }
        if request.redirect_uri != client.redirect_uri {
            return Err(OAuthError::UnregisteredRedirect);
        }
        if request.response_type != "code" {
            return Err(OAuthError::UnsupportedResponseType);
        }
        if request.code_challenge.is_empty() || request.code_challenge_method != "S256" {
            return Err(OAuthError::PkceRequired);
        }
        if request.state.is_empty() {
            return Err(OAuthError::StateRequired);
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

    /// The login form as an answer: new, or again after a refused sign-in (with its message,
    /// status and the name typed). Its post is answered with a redirect to the client's
    /// registered address, which the page's `form-action` must allow (never framed: the edge's
    /// headers).
    fn login_page(
        &self,
        request: &AuthorizeRequest,
        refused: Option<&OAuthError>,
        user: &str,
    ) -> Response {
        let status = refused.map_or(StatusCode::OK, OAuthError::status);
        let message = refused.map(ToString::to_string);
        let mut response = (
            status,
            Html(self.login_form(request, message.as_deref(), user)),
        )
            .into_response();
        if let Some(target) = crate::web::form_target(&request.redirect_uri) {
            response.extensions_mut().insert(target);
        }
        response
    }

    /// A signed-in user's single-use code, bound to the request's client, redirect URI and
    /// PKCE challenge: the address the browser is sent back to.
    async fn issue_code(
        &self,
        form: &LoginForm,
        address: Option<IpAddr>,
    ) -> Result<String, OAuthError> {
        let user = self
            .auth
            .login(&form.username, &form.password, address, "login")
            .await?;
        self.issue_code_for(user.id, &form.request).await
    }

    /// A single-use code for user `user_id`, bound to the request's client, redirect URI and
    /// PKCE challenge: the address the client is sent back to, with `state` when it sent one.
    pub(super) async fn issue_code_for(
        &self,
        user_id: i64,
        request: &AuthorizeRequest,
    ) -> Result<String, OAuthError> {
        let code = new_nonce();
        let stored = OAuthCode {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_id,
            code_challenge: request.code_challenge.clone(),
            nonce: (!request.nonce.is_empty()).then(|| request.nonce.clone()),
            scope: request.scope.clone(),
            expires_at: Utc::now() + chrono::Duration::minutes(CODE_LIFETIME_MINUTES),
        };
        self.auth
            .store
            .put_oauth_code(&secret_hash(&code), &stored)
            .await
            .map_err(|source| OAuthError::Storage {
                what: "storing an authorization code",
                source,
            })?;
        let mut answer = vec![("code", code.as_str())];
        if !request.state.is_empty() {
            answer.push(("state", request.state.as_str()));
        }
        Ok(format!(
            "{}?{}",
            request.redirect_uri,
            serde_urlencoded::to_string(answer).unwrap_or_default()
        ))
    }
}

/// `GET /oauth/authorize`: the login form for a valid request; `oc`'s client is answered with
/// challenges instead ([`super::challenge`]).
pub(super) async fn authorize(
    State(server): State<Arc<OAuthServer>>,
    RawQuery(query): RawQuery,
    request: axum::extract::Request,
) -> Response {
    let query: AuthorizeRequest =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    if query.client_id == super::CHALLENGING_CLIENT_ID {
        let (parts, _) = request.into_parts();
        return server.challenge(&parts, &query).await;
    }
    let request = query;
    match server.check(&request) {
        Err(refused) => refused.page(),
        Ok(()) => server.login_page(&request, None, ""),
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
pub(super) async fn sign_in(
    State(server): State<Arc<OAuthServer>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let address: Option<IpAddr> = crate::web::client_address(&parts);
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return OAuthError::FormTooLarge.page();
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return OAuthError::UnreadableForm.page();
    };
    if let Err(refused) = server.check(&form.request) {
        return refused.page();
    }
    // A form this server did not make (cross-site, or altered) is refused.
    if !same_secret(&form.signature, &server.sign(&form.request)) {
        return OAuthError::ForgedForm.page();
    }
    match server.issue_code(&form, address).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(refused) if refused.shows_form_again() => {
            server.login_page(&form.request, Some(&refused), &form.username)
        }
        Err(failed) => failed.page(),
    }
}
