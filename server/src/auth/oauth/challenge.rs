//! `oc login -u USER -p PASSWORD`: OpenShift's challenging client, `openshift-challenging-client`,
//! at the authorization endpoint. `oc` asks `GET /oauth/authorize` with `X-CSRF-Token` and no
//! credentials, is answered 401 with a Basic challenge, asks again with Basic credentials, and
//! is sent (302) to `{issuer}/oauth/token/implicit` with a code (`response_type=code`, bound to
//! its PKCE challenge, exchanged at the token endpoint without a client secret) or the token
//! itself in the fragment (`response_type=token`). No login page, no session: each request
//! carries the password, checked (and throttled) as every sign-in is.
//!
//! The `X-CSRF-Token` header is what a page cannot make a browser send to another site: without
//! it there is no challenge, so a browser is never led to ask for, cache or send a password here.
//! When people sign in through an external provider, there is no password to challenge for: the
//! refusal says where to get a token instead (the console's token page).

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::OAuthServer;
use super::authorize::AuthorizeRequest;
use super::error::{OAuthError, no_store};
use crate::auth::http::{Credentials, credentials};

/// The header `oc` sends with every request to the authorization endpoint.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The path of the challenging client's redirect URI (OpenShift's
/// `oauthdiscovery.OpenShiftOAuthTokenImplicitURL`), below the issuer.
pub const IMPLICIT_PATH: &str = "/oauth/token/implicit";

/// The path OpenShift sends people to for a token (`oc login` names `{token endpoint}/request`).
pub const REQUEST_PATH: &str = "/oauth/token/request";

impl OAuthServer {
    /// The challenging client's answer to one request of its flow.
    pub(super) async fn challenge(&self, parts: &Parts, request: &AuthorizeRequest) -> Response {
        let answer = match self.check_challenge(parts, request) {
            Ok(()) => self.challenged_sign_in(parts, request).await,
            Err(refused) => Err(refused),
        };
        match answer {
            // 302, as oc's loop reads only a `Found` as the flow's redirect.
            Ok(target) => {
                no_store((StatusCode::FOUND, [(header::LOCATION, target)]).into_response())
            }
            Err(refused) => refused.challenge_response(),
        }
    }

    /// The request's checks, before any credentials are read.
    fn check_challenge(&self, parts: &Parts, request: &AuthorizeRequest) -> Result<(), OAuthError> {
        if request.redirect_uri != format!("{}{IMPLICIT_PATH}", self.issuer) {
            return Err(OAuthError::UnregisteredRedirect);
        }
        match request.response_type.as_str() {
            // A public client: its code is only as good as the PKCE challenge it is bound to.
            "code"
                if request.code_challenge.is_empty() || request.code_challenge_method != "S256" =>
            {
                return Err(OAuthError::PkceRequired);
            }
            "code" | "token" => {}
            _ => return Err(OAuthError::UnsupportedResponseType),
        }
        let csrf = parts
            .headers
            .get(CSRF_HEADER)
            .is_some_and(|value| !value.is_empty());
        if !csrf {
            return Err(OAuthError::CsrfHeaderRequired);
        }
        if let Some(provider) = &self.external_provider {
            return Err(OAuthError::PasswordsNotChallenged {
                provider: provider.clone(),
                token_page: format!("{}/tokens", self.issuer),
            });
        }
        Ok(())
    }

    /// Checks the Basic credentials and answers with the redirect carrying the code or token.
    async fn challenged_sign_in(
        &self,
        parts: &Parts,
        request: &AuthorizeRequest,
    ) -> Result<String, OAuthError> {
        let Credentials::Basic { user, password } = credentials(&parts.headers) else {
            return Err(OAuthError::CredentialsRequired);
        };
        let address: Option<IpAddr> = crate::web::client_address(parts);
        let user = self
            .auth
            .login(&user, &password, address, "login")
            .await
            .map_err(OAuthError::from)?;
        if request.response_type == "code" {
            return self.issue_code_for(user.id, request).await;
        }
        let (token, lifetime) = self
            .access_token(&user, super::CHALLENGING_CLIENT_ID)
            .await?;
        let mut fragment = vec![
            ("access_token", token),
            ("expires_in", lifetime.to_string()),
            ("token_type", "Bearer".to_owned()),
        ];
        if !request.scope.is_empty() {
            fragment.push(("scope", request.scope.clone()));
        }
        if !request.state.is_empty() {
            fragment.push(("state", request.state.clone()));
        }
        Ok(format!(
            "{}#{}",
            request.redirect_uri,
            serde_urlencoded::to_string(fragment).unwrap_or_default()
        ))
    }
}

/// `GET /oauth/token/implicit`: where `oc`'s flow ends. `oc` reads the redirect and never comes
/// here; a person who does is told what the address is for.
pub(super) async fn implicit() -> Response {
    let mut response = axum::response::Html(super::page(
        "Signed in",
        "<h1>Signed in</h1><p>This address ends the sign-in of <code>oc login</code>, which reads its token from the redirect. Nothing more to do here.</p>",
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /oauth/token/request`: where `oc login` without a user name sends people for a token,
/// the console's token page.
pub(super) async fn request_token() -> Response {
    Redirect::to("/tokens").into_response()
}
