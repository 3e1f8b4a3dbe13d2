//! The console signing people in as an OAuth client: one flow for every provider, and a
//! [`Provider`] for what differs between them.
//!
//! The flow: `GET /console/login` makes a new `state`, PKCE verifier (S256) and nonce, keeps
//! them in the server-side session with the page to return to (`then=`, this site's pages
//! only) and sends the browser to the provider's authorization endpoint; `GET
//! /console/callback` takes them back (once), checks that the answer carries this session's
//! `state` and is not a refusal, exchanges the code with the verifier at the token endpoint
//! through the provider's egress client, asks the provider who signed in, and starts a new
//! session (a new id, a CSRF token of its own).
//!
//! The providers: OpenID Connect, the embedded server or another ([`oidc`]: the ID token and
//! the user it names), and the OpenShift cluster in front of which the console runs
//! (`upstream::sign_in`: the user the cluster says the token is, the token kept in the
//! session).

pub mod oidc;

use std::sync::Arc;

use app::format::escape_html;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, AuthorizationRequest, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use openidconnect::Nonce;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::credentials::{new_nonce, same_secret};
use super::oauth::page;
use crate::egress::HttpClient;
use crate::web::Arrival;

/// Session keys.
pub const SESSION_USER: &str = "user";
pub const SESSION_CSRF: &str = "csrf";
const SESSION_PENDING: &str = "login";

/// Where the console receives codes, relative to its base URL (the redirect URI registered
/// with the provider).
pub const CONSOLE_CALLBACK: &str = "/console/callback";

/// A provider's endpoints.
pub struct Endpoints {
    pub authorization: AuthUrl,
    /// Missing only when a discovered provider names none: the callback then fails.
    pub token: Option<TokenUrl>,
}

/// The token endpoint's answer: OAuth's, and the ID token of OpenID Connect as it came (read
/// and checked only by a provider that asked for one).
pub type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for IdTokenField {}

/// The console's client at a provider.
pub struct ClientCredentials {
    pub id: ClientId,
    pub secret: ClientSecret,
}

/// Who signed in, as the provider says.
pub struct SignedIn {
    /// The session's user name.
    pub user: String,
    /// Where the user comes from, for the audit (their identity provider).
    pub identity_provider: Option<String>,
    /// What else the session keeps (the cluster's token).
    pub keep: Vec<(&'static str, String)>,
}

/// What differs between the places the console signs people in.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The client the code is exchanged through (under the egress policy, the provider's
    /// configured origin trusted).
    fn http(&self) -> &HttpClient;

    /// The authorization and token endpoints (found once).
    async fn endpoints(&self) -> Result<Endpoints, SignInError>;

    /// The authorization request with the provider's scopes, and the nonce when the provider
    /// checks one (OpenID Connect).
    fn authorization<'a>(
        &self,
        request: AuthorizationRequest<'a>,
        nonce: &Nonce,
    ) -> AuthorizationRequest<'a>;

    /// Who the tokens belong to (`nonce` is the one this sign-in sent), refused when they may
    /// not sign in.
    async fn identify(
        &self,
        client: &ClientCredentials,
        tokens: &TokenAnswer,
        nonce: &Nonce,
    ) -> Result<SignedIn, SignInError>;

    /// Records a sign-in, once the session has started.
    async fn record_sign_in(&self, signed_in: &SignedIn);

    /// Records a sign-out.
    async fn record_sign_out(&self, user: &str);
}

/// The one client type for every provider: authorization and token endpoints only.
type ProviderClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
>;

/// The console's sign-in through `provider`.
pub struct SignIn<P> {
    provider: P,
    client: ClientCredentials,
    /// The console's base URL; the redirect URI is under it.
    base_url: String,
}

/// What the session keeps between the redirect to the provider and the callback.
#[derive(Debug, Serialize, Deserialize)]
struct PendingSignIn {
    state: String,
    nonce: String,
    verifier: String,
    then: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in provider could not be reached: {0}")]
    Provider(String),
    #[error("the sign-in has expired or was started in another browser; sign in again")]
    NoPendingSignIn,
    #[error("the sign-in response does not belong to this sign-in (wrong state); sign in again")]
    WrongState,
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the provider's ID token is not valid: {0}")]
    InvalidIdToken(String),
    #[error("user {0:?} is not known to Berth")]
    UnknownUser(String),
    #[error(
        "your identity at the sign-in provider is not linked to a Berth user; ask an administrator to link it"
    )]
    NotMapped,
    #[error(
        "the user name {0:?} belongs to another Berth user; ask an administrator to link your identity to your user"
    )]
    NameTaken(String),
    #[error("the provider's user name {0:?} cannot be a Berth user name: {1}")]
    InvalidName(String, String),
    #[error("the session could not be saved: {0}")]
    Session(String),
    #[error("The CSRF token is missing or wrong; sign out from the console.")]
    SignOutRefused,
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl SignInError {
    fn status(&self) -> StatusCode {
        match self {
            SignInError::Provider(_) => StatusCode::BAD_GATEWAY,
            SignInError::Session(_) | SignInError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SignInError::UnknownUser(_)
            | SignInError::NotMapped
            | SignInError::NameTaken(_)
            | SignInError::InvalidName(..)
            | SignInError::SignOutRefused => StatusCode::FORBIDDEN,
            SignInError::NoPendingSignIn
            | SignInError::WrongState
            | SignInError::Refused(_)
            | SignInError::InvalidIdToken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The one rendering of the console's sign-in and sign-out refusals: a page with the status.
impl IntoResponse for SignInError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "console sign-in failed");
        }
        let (title, again) = match self {
            SignInError::SignOutRefused => ("Sign-out refused", ""),
            _ => (
                "Sign-in failed",
                r#"<p><a href="/console/login">Sign in again</a></p>"#,
            ),
        };
        let body = format!(
            r#"<h1>{title}</h1><p class="error" role="alert">{}</p>{again}"#,
            escape_html(&self.to_string())
        );
        (self.status(), Html(page(title, &body))).into_response()
    }
}

fn session_error(err: impl std::fmt::Display) -> SignInError {
    SignInError::Session(err.to_string())
}

/// A path of this site to return to after signing in, as the browser will read it; `/` for
/// anything else. The text is parsed as a URL relative to the site, as a browser does (which
/// drops tabs and newlines, so `/\t/evil.example` is `//evil.example`, another site), and only
/// an address of the same origin whose path starts with a single `/` is kept. Control
/// characters and backslashes are refused before parsing, and what is kept is the parsed URL's
/// own serialization (percent-encoded), so it is always a valid `Location` header.
fn safe_return(then: Option<&str>) -> String {
    then.and_then(same_site_path)
        .unwrap_or_else(|| "/".to_owned())
}

fn same_site_path(then: &str) -> Option<String> {
    if !then.starts_with('/')
        || then.starts_with("//")
        || then.contains('\\')
        || then.chars().any(char::is_control)
    {
        return None;
    }
    const SITE: &str = "http://berth.invalid";
    let site = reqwest::Url::parse(SITE).ok()?;
    let url = site.join(then).ok()?;
    if url.origin() != site.origin() || url.path().starts_with("//") {
        return None;
    }
    // The serialization is the origin, then the path, query and fragment.
    url.as_str().strip_prefix(SITE).map(str::to_owned)
}

/// Sign-in starts on the console's own address, so that the callback finds this session: a
/// request that came another way (`localhost` for `127.0.0.1`) is sent there first.
fn sign_in_here(base_url: &str, arrival: &Arrival, then: Option<&str>) -> Option<Response> {
    let expected_host = base_url.split("://").nth(1).unwrap_or_default();
    // The host the browser asked for (a trusted proxy's X-Forwarded-Host, else Host).
    let host = arrival.host().unwrap_or_default();
    if expected_host.is_empty() || host.eq_ignore_ascii_case(expected_host) {
        return None;
    }
    let then = safe_return(then);
    let target = format!(
        "{base_url}/console/login?{}",
        serde_urlencoded::to_string([("then", then.as_str())]).unwrap_or_default()
    );
    Some(Redirect::to(&target).into_response())
}

/// The provider's answer at the callback.
#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackQuery {
    /// The authorization code, once the answer is known to belong to this sign-in (its
    /// `state`) and is not a refusal.
    fn code(self, expected_state: &str) -> Result<String, SignInError> {
        if !same_secret(self.state.as_deref().unwrap_or_default(), expected_state) {
            return Err(SignInError::WrongState);
        }
        if let Some(error) = self.error {
            return Err(SignInError::Refused(format!(
                "{error}{}",
                self.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )));
        }
        self.code
            .ok_or_else(|| SignInError::Refused("no code in the answer".into()))
    }
}

/// A failed code exchange: the provider's refusal, or (logged, as the provider's fault) a token
/// endpoint that could not be reached or that the egress policy refuses.
fn exchange_error<E: std::error::Error + 'static>(err: E) -> SignInError {
    let unreachable = std::error::Error::source(&err)
        .is_some_and(|cause| cause.is::<crate::egress::OutboundError>());
    if unreachable {
        SignInError::Provider(crate::egress::error_chain(&err))
    } else {
        SignInError::Refused(crate::egress::error_chain(&err))
    }
}

impl<P: Provider> SignIn<P> {
    pub fn new(provider: P, client_id: String, client_secret: String, base_url: String) -> Self {
        SignIn {
            provider,
            client: ClientCredentials {
                id: ClientId::new(client_id),
                secret: ClientSecret::new(client_secret),
            },
            base_url,
        }
    }

    async fn client(&self) -> Result<ProviderClient, SignInError> {
        let endpoints = self.provider.endpoints().await?;
        let redirect = RedirectUrl::new(format!("{}{CONSOLE_CALLBACK}", self.base_url))
            .map_err(|err| SignInError::Provider(err.to_string()))?;
        Ok(oauth2::Client::new(self.client.id.clone())
            .set_client_secret(self.client.secret.clone())
            .set_auth_uri(endpoints.authorization)
            .set_token_uri_option(endpoints.token)
            .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new sign-in, whose `state`, PKCE verifier and
    /// nonce the session keeps with the page to return to.
    async fn start(&self, session: &Session, then: Option<&str>) -> Result<String, SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        let (url, state) = self.provider.authorization(request, &nonce).url();
        let pending = PendingSignIn {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            then: safe_return(then),
        };
        session
            .insert(SESSION_PENDING, pending)
            .await
            .map_err(session_error)?;
        Ok(url.into())
    }

    /// The callback: the sign-in the session started (taken: a callback is used once), the
    /// answer checked against it, the code exchanged, the provider's word on who signed in,
    /// and the session started for them. Answers the page to return to.
    async fn finish(&self, session: &Session, query: CallbackQuery) -> Result<String, SignInError> {
        let pending: PendingSignIn = session
            .remove(SESSION_PENDING)
            .await
            .map_err(session_error)?
            .ok_or(SignInError::NoPendingSignIn)?;
        let code = query.code(&pending.state)?;
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|err| SignInError::Provider(err.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(self.provider.http())
            .await
            .map_err(exchange_error)?;
        let signed_in = self
            .provider
            .identify(&self.client, &tokens, &Nonce::new(pending.nonce))
            .await?;
        start_session(session, &signed_in).await?;
        self.provider.record_sign_in(&signed_in).await;
        Ok(safe_return(Some(&pending.then)))
    }
}

/// Starts the signed-in session: a new session id (no fixation), the user, a CSRF token of
/// its own, and whatever else the provider keeps.
async fn start_session(session: &Session, signed_in: &SignedIn) -> Result<(), SignInError> {
    session.cycle_id().await.map_err(session_error)?;
    let values = [
        (SESSION_USER, signed_in.user.clone()),
        (SESSION_CSRF, new_nonce()),
    ];
    for (key, value) in values.iter().chain(&signed_in.keep) {
        session.insert(key, value).await.map_err(session_error)?;
    }
    Ok(())
}

/// Ends a session when `csrf_token` is its own; answers who was signed in.
async fn end_session(session: &Session, csrf_token: &str) -> Result<Option<String>, SignInError> {
    let expected: Option<String> = session.get(SESSION_CSRF).await.ok().flatten();
    let user: Option<String> = session.get(SESSION_USER).await.ok().flatten();
    match expected {
        Some(expected) if same_secret(csrf_token, &expected) => {}
        Some(_) | None if user.is_none() => return Ok(None),
        _ => return Err(SignInError::SignOutRefused),
    }
    if let Err(err) = session.delete().await {
        tracing::error!(%err, "ending a session failed");
    }
    Ok(user)
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    then: Option<String>,
}

/// `GET /console/login`: sends the browser to the provider.
async fn login<P: Provider>(
    State(sign_in): State<Arc<SignIn<P>>>,
    session: Session,
    arrival: Arrival,
    Query(query): Query<SignInQuery>,
) -> Result<Response, SignInError> {
    if let Some(elsewhere) = sign_in_here(&sign_in.base_url, &arrival, query.then.as_deref()) {
        return Ok(elsewhere);
    }
    let url = sign_in.start(&session, query.then.as_deref()).await?;
    Ok(Redirect::to(&url).into_response())
}

/// `GET /console/callback`: checks the answer, exchanges the code, finds who signed in and
/// starts the session.
async fn callback<P: Provider>(
    State(sign_in): State<Arc<SignIn<P>>>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, SignInError> {
    let then = sign_in.finish(&session, query).await?;
    Ok(Redirect::to(&then).into_response())
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /console/logout`: ends the session (the form carries the CSRF token).
async fn logout<P: Provider>(
    State(sign_in): State<Arc<SignIn<P>>>,
    session: Session,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Result<Response, SignInError> {
    if let Some(user) = end_session(&session, &form.csrf_token).await? {
        sign_in.provider.record_sign_out(&user).await;
    }
    Ok(Redirect::to("/").into_response())
}

pub fn router<P: Provider>(sign_in: Arc<SignIn<P>>) -> Router {
    Router::new()
        .route("/console/login", get(login::<P>))
        .route(CONSOLE_CALLBACK, get(callback::<P>))
        .route("/console/logout", post(logout::<P>))
        .with_state(sign_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_the_console() {
        assert_eq!(safe_return(Some("/ns/app")), "/ns/app");
        assert_eq!(safe_return(Some("//evil.example")), "/");
        assert_eq!(safe_return(Some("https://evil.example")), "/");
        assert_eq!(safe_return(Some("/\\evil")), "/");
        assert_eq!(safe_return(None), "/");
        // Browsers drop tabs and newlines: `/\t/evil.example` is `//evil.example`.
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\0",
            "/ns\nSet-Cookie: x=1",
            "/.//evil.example",
            "/./\\evil.example",
            "/x/..//evil.example",
            "https:evil.example",
            "",
            "ns/app",
        ] {
            assert_eq!(safe_return(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(
            safe_return(Some("/ns/app?q=a b#top")),
            "/ns/app?q=a%20b#top"
        );
        assert_eq!(safe_return(Some("/ns/é")), "/ns/%C3%A9");
        assert_eq!(safe_return(Some("/ns/../tokens")), "/tokens");
    }
}
