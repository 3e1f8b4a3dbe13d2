//! The console as an OAuth client, through `openidconnect` (built on the `oauth2` crate): of the
//! embedded provider by default, or of any OpenID Connect provider. One code path for both:
//! authorization code with PKCE, `state` and `nonce`; the ID token's signature, issuer,
//! audience and nonce checked; the user's groups from a configured claim. The signed-in user
//! lives in a server-side session (tower-sessions, in the metadata database).

use std::sync::Arc;

use app::format::escape_html;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyAdditionalProviderMetadata,
    IssuerUrl, JsonWebKeySetUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    ResponseTypes, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::credentials::{new_nonce, same_secret};
use super::identity::AuthContext;
use super::names::{MAX_USER_NAME, managed_group_name_error, user_name_error};
use super::oauth::{CONSOLE_CALLBACK, page};
use crate::config::auth::MappingMethod;
use crate::storage::auth::{ExternalIdentity, IdentityMapping, NewAudit};
use crate::web::Arrival;

/// Session keys.
pub const SESSION_USER: &str = "user";
pub const SESSION_CSRF: &str = "csrf";
const SESSION_LOGIN: &str = "login";

/// Where the console signs people in.
#[derive(Debug, Clone)]
pub enum Provider {
    /// The embedded server: its metadata is known, and the server reaches its own token
    /// endpoint at `internal` (its listen address), the browser its pages at the issuer.
    Embedded { issuer: String, internal: String },
    /// An OpenID Connect provider, found by discovery.
    External {
        issuer: String,
        groups_claim: String,
        username_claim: String,
        scopes: Vec<String>,
        /// How an identity nobody has yet becomes a user.
        mapping_method: MappingMethod,
    },
}

pub struct ConsoleLogin {
    pub auth: Arc<AuthContext>,
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: String,
    /// The console's base URL; the redirect URI is under it.
    pub base_url: String,
    /// Under the egress policy, trusting the provider's configured origin.
    http: crate::egress::HttpClient,
    metadata: tokio::sync::OnceCell<CoreProviderMetadata>,
}

/// What the session keeps between the redirect to the provider and the callback.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    then: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the sign-in provider could not be reached: {0}")]
    Provider(String),
    #[error("the sign-in has expired or was started in another browser; sign in again")]
    NoPendingLogin,
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
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl LoginError {
    fn status(&self) -> StatusCode {
        match self {
            LoginError::Provider(_) => StatusCode::BAD_GATEWAY,
            LoginError::Session(_) | LoginError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            LoginError::UnknownUser(_)
            | LoginError::NotMapped
            | LoginError::NameTaken(_)
            | LoginError::InvalidName(..) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "console sign-in failed");
        }
        let body = format!(
            r#"<h1>Sign-in failed</h1><p class="error" role="alert">{}</p><p><a href="/console/login">Sign in again</a></p>"#,
            escape_html(&self.to_string())
        );
        (self.status(), Html(page("Sign-in failed", &body))).into_response()
    }
}

pub(crate) fn session_error(err: impl std::fmt::Display) -> LoginError {
    LoginError::Session(err.to_string())
}

/// A path of this site to return to after signing in, as the browser will read it; `/` for
/// anything else. The text is parsed as a URL relative to the site, as a browser does (which
/// drops tabs and newlines, so `/\t/evil.example` is `//evil.example`, another site), and only
/// an address of the same origin whose path starts with a single `/` is kept. Control
/// characters and backslashes are refused before parsing, and what is kept is the parsed URL's
/// own serialization (percent-encoded), so it is always a valid `Location` header.
pub(crate) fn safe_return(then: Option<&str>) -> String {
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

impl ConsoleLogin {
    pub fn new(
        auth: Arc<AuthContext>,
        provider: Provider,
        client_id: String,
        client_secret: String,
        base_url: String,
        egress: &Arc<crate::egress::EgressPolicy>,
    ) -> anyhow::Result<Self> {
        // The provider the operator configured is trusted at its origin (the embedded server
        // at the listen address); what its discovery names elsewhere goes through the policy.
        // No redirects are followed (SSRF).
        let configured = match &provider {
            Provider::Embedded { internal, .. } => internal,
            Provider::External { issuer, .. } => issuer,
        };
        let http = egress
            .client(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .trust(configured)?
            .with(|builder| builder.timeout(std::time::Duration::from_secs(15)))
            .build()?;
        Ok(ConsoleLogin {
            auth,
            provider,
            client_id,
            client_secret,
            base_url,
            http,
            metadata: tokio::sync::OnceCell::new(),
        })
    }

    fn redirect_uri(&self) -> String {
        format!("{}{CONSOLE_CALLBACK}", self.base_url)
    }

    /// The provider's metadata: built for the embedded server, discovered for another.
    async fn metadata(&self) -> Result<&CoreProviderMetadata, LoginError> {
        self.metadata
            .get_or_try_init(|| async {
                let provider_error =
                    |err: &dyn std::fmt::Display| LoginError::Provider(err.to_string());
                match &self.provider {
                    Provider::Embedded { issuer, internal } => {
                        let url = |text: String| url_error(AuthUrl::new(text));
                        Ok(CoreProviderMetadata::new(
                            IssuerUrl::new(issuer.clone()).map_err(|e| provider_error(&e))?,
                            url(format!("{issuer}/oauth/authorize"))?,
                            JsonWebKeySetUrl::new(format!("{internal}/oauth/jwks"))
                                .map_err(|e| provider_error(&e))?,
                            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
                            vec![CoreSubjectIdentifierType::Public],
                            vec![CoreJwsSigningAlgorithm::HmacSha256],
                            EmptyAdditionalProviderMetadata {},
                        )
                        .set_token_endpoint(Some(
                            TokenUrl::new(format!("{internal}/oauth/token"))
                                .map_err(|e| provider_error(&e))?,
                        )))
                    }
                    Provider::External { issuer, .. } => {
                        let issuer =
                            IssuerUrl::new(issuer.clone()).map_err(|e| provider_error(&e))?;
                        CoreProviderMetadata::discover_async(issuer, &self.http)
                            .await
                            .map_err(|e| LoginError::Provider(crate::egress::error_chain(&e)))
                    }
                }
            })
            .await
    }

    fn client(&self, metadata: &CoreProviderMetadata) -> Result<ClientFor, LoginError> {
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(self.redirect_uri())
                .map_err(|e| LoginError::Provider(e.to_string()))?,
        ))
    }

    fn claims_config(&self) -> (&str, &str) {
        match &self.provider {
            Provider::Embedded { .. } => ("groups", "preferred_username"),
            Provider::External {
                groups_claim,
                username_claim,
                ..
            } => (groups_claim, username_claim),
        }
    }
}

type ClientFor = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn url_error<T>(result: Result<T, openidconnect::url::ParseError>) -> Result<T, LoginError> {
    result.map_err(|e| LoginError::Provider(e.to_string()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    pub then: Option<String>,
}

/// Sign-in starts on the console's own address, so that the callback finds this session: a
/// request that came another way (`localhost` for `127.0.0.1`) is sent there first.
pub(crate) fn sign_in_here(
    base_url: &str,
    arrival: &Arrival,
    then: Option<&str>,
) -> Option<Response> {
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

/// `GET /console/login`: sends the browser to the provider.
async fn login(
    State(login): State<Arc<ConsoleLogin>>,
    session: Session,
    arrival: Arrival,
    Query(query): Query<LoginQuery>,
) -> Result<Response, LoginError> {
    if let Some(elsewhere) = sign_in_here(&login.base_url, &arrival, query.then.as_deref()) {
        return Ok(elsewhere);
    }
    let metadata = login.metadata().await?;
    let client = login.client(metadata)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let scopes = match &login.provider {
        Provider::Embedded { .. } => vec![Scope::new("profile".into())],
        Provider::External { scopes, .. } => scopes.iter().cloned().map(Scope::new).collect(),
    };
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scopes(scopes)
        .set_pkce_challenge(challenge)
        .url();
    let pending = PendingLogin {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        then: safe_return(query.then.as_deref()),
    };
    session
        .insert(SESSION_LOGIN, pending)
        .await
        .map_err(session_error)?;
    Ok(Redirect::to(url.as_str()).into_response())
}

/// The provider's answer at the callback.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackQuery {
    /// The authorization code, once the answer is known to belong to this sign-in (its
    /// `state`) and is not a refusal.
    pub(crate) fn code(self, expected_state: &str) -> Result<String, LoginError> {
        if !same_secret(self.state.as_deref().unwrap_or_default(), expected_state) {
            return Err(LoginError::WrongState);
        }
        if let Some(error) = self.error {
            return Err(LoginError::Refused(format!(
                "{error}{}",
                self.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )));
        }
        self.code
            .ok_or_else(|| LoginError::Refused("no code in the answer".into()))
    }
}

/// What the session kept between the redirect and the callback (taken: a callback is used
/// once).
pub(crate) async fn take_pending<T: serde::de::DeserializeOwned>(
    session: &Session,
    key: &str,
) -> Result<T, LoginError> {
    session
        .remove(key)
        .await
        .map_err(session_error)?
        .ok_or(LoginError::NoPendingLogin)
}

/// Starts the signed-in session: a new session id (no fixation), the user, a CSRF token of
/// its own, and whatever else the sign-in keeps.
pub(crate) async fn start_session(
    session: &Session,
    user: &str,
    more: Vec<(&str, String)>,
) -> Result<(), LoginError> {
    session.cycle_id().await.map_err(session_error)?;
    let values = [(SESSION_USER, user.to_owned()), (SESSION_CSRF, new_nonce())];
    for (key, value) in values.into_iter().chain(more) {
        session.insert(key, value).await.map_err(session_error)?;
    }
    Ok(())
}

/// A failed code exchange: the provider's refusal, or (logged, as the provider's fault) a token
/// endpoint that could not be reached or that the egress policy refuses.
pub(crate) fn exchange_error<E: std::error::Error + 'static>(err: E) -> LoginError {
    let unreachable = std::error::Error::source(&err)
        .is_some_and(|cause| cause.is::<crate::egress::OutboundError>());
    if unreachable {
        LoginError::Provider(crate::egress::error_chain(&err))
    } else {
        LoginError::Refused(crate::egress::error_chain(&err))
    }
}

/// The claims of an ID token, raw: read only after the token was verified.
fn raw_claims(id_token: &str) -> serde_json::Value {
    id_token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// `GET /console/callback`: checks the answer, exchanges the code, verifies the ID token and
/// starts the session.
async fn callback(
    State(login): State<Arc<ConsoleLogin>>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, LoginError> {
    let pending: PendingLogin = take_pending(&session, SESSION_LOGIN).await?;
    let code = query.code(&pending.state)?;
    let metadata = login.metadata().await?;
    let client = login.client(metadata)?;
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| LoginError::Provider(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&login.http)
        .await
        .map_err(exchange_error)?;
    let id_token = response
        .id_token()
        .ok_or_else(|| LoginError::InvalidIdToken("the provider sent no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
    let raw = raw_claims(&id_token.to_string());
    let (groups_claim, username_claim) = login.claims_config();
    let name = raw
        .get(username_claim)
        .and_then(|v| v.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| claims.subject().to_string());
    let store = &login.auth.store;
    let user = match &login.provider {
        Provider::Embedded { .. } => store
            .user(&name)
            .await?
            .ok_or_else(|| LoginError::UnknownUser(name.clone()))?,
        Provider::External {
            issuer,
            mapping_method,
            ..
        } => {
            // The user is found through the identity (provider, subject), never through the
            // name the provider suggests: an "admin" there is not Berth's administrator.
            if let Some(reason) = user_name_error(&name) {
                return Err(LoginError::InvalidName(
                    name.chars().take(MAX_USER_NAME).collect(),
                    reason,
                ));
            }
            let groups = claimed_groups(raw.get(groups_claim));
            let full_name = raw
                .get("name")
                .and_then(|v| v.as_str())
                .map(|n| n.chars().take(256).collect::<String>());
            let provider = format!("oidc:{issuer}");
            let identity = ExternalIdentity {
                provider: &provider,
                subject: claims.subject().as_str(),
                preferred_name: &name,
                full_name: full_name.as_deref(),
                groups: &groups,
            };
            match store.map_identity(&identity, *mapping_method).await? {
                IdentityMapping::Mapped(user) => user,
                IdentityMapping::NotMapped => {
                    audit_refusal(&login.auth, &name, "not linked to a user").await;
                    return Err(LoginError::NotMapped);
                }
                IdentityMapping::NameTaken => {
                    audit_refusal(&login.auth, &name, "the name is another user's").await;
                    return Err(LoginError::NameTaken(name));
                }
            }
        }
    };
    if user.disabled {
        return Err(LoginError::UnknownUser(name));
    }
    start_session(&session, &user.name, Vec::new()).await?;
    login
        .auth
        .audit(NewAudit {
            actor: user.name.clone(),
            action: "login-console",
            target: "console".into(),
            success: true,
            address: None,
            detail: Some(user.identity_provider.clone()),
        })
        .await;
    Ok(Redirect::to(&safe_return(Some(&pending.then))).into_response())
}

/// The most groups kept from a provider's claim.
const MAX_CLAIMED_GROUPS: usize = 100;

/// The groups of a provider's claim that are group names (others could never be bound), at
/// most [`MAX_CLAIMED_GROUPS`]; Berth's own `system:` groups are never taken from a provider.
fn claimed_groups(claim: Option<&serde_json::Value>) -> Vec<String> {
    let mut groups: Vec<String> = claim
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str())
        .filter(|g| managed_group_name_error(g).is_none())
        .take(MAX_CLAIMED_GROUPS)
        .map(str::to_owned)
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

async fn audit_refusal(auth: &AuthContext, name: &str, why: &str) {
    auth.audit(NewAudit {
        actor: name.to_owned(),
        action: "login-console",
        target: "console".into(),
        success: false,
        address: None,
        detail: Some(why.into()),
    })
    .await;
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// `POST /console/logout`: ends the session (the form carries the CSRF token).
async fn logout(
    State(login): State<Arc<ConsoleLogin>>,
    session: Session,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Response {
    match end_session(&session, &form.csrf_token).await {
        Ok(Some(user)) => {
            login
                .auth
                .audit(NewAudit {
                    actor: user,
                    action: "logout",
                    target: "console".into(),
                    success: true,
                    address: None,
                    detail: None,
                })
                .await;
        }
        Ok(None) => {}
        Err(refused) => return refused,
    }
    Redirect::to("/").into_response()
}

/// Ends a session when `csrf_token` is its own; answers who was signed in, or the refusal.
pub(crate) async fn end_session(
    session: &Session,
    csrf_token: &str,
) -> Result<Option<String>, Response> {
    let expected: Option<String> = session.get(SESSION_CSRF).await.ok().flatten();
    let user: Option<String> = session.get(SESSION_USER).await.ok().flatten();
    match expected {
        Some(expected) if same_secret(csrf_token, &expected) => {}
        Some(_) | None if user.is_none() => return Ok(None),
        _ => {
            return Err((
                StatusCode::FORBIDDEN,
                Html(page("Sign-out refused", r#"<h1>Sign-out refused</h1><p class="error" role="alert">The CSRF token is missing or wrong; sign out from the console.</p>"#)),
            )
                .into_response());
        }
    }
    if let Err(err) = session.delete().await {
        tracing::error!(%err, "ending a session failed");
    }
    Ok(user)
}

pub fn router(console: Arc<ConsoleLogin>) -> Router {
    Router::new()
        .route("/console/login", get(login))
        .route(CONSOLE_CALLBACK, get(callback))
        .route("/console/logout", post(logout))
        .with_state(console)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::core::CoreIdToken;

    fn token(secret: &[u8], audience: &str, nonce: &str, issuer: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({"iss": issuer, "sub": "alice", "aud": audience, "exp": now + 60, "iat": now, "nonce": nonce}),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn id_tokens_are_checked_for_signature_audience_issuer_and_nonce() {
        let issuer = "http://127.0.0.1:5000";
        let verifier = openidconnect::IdTokenVerifier::<openidconnect::core::CoreJsonWebKey>::new_confidential_client(
            ClientId::new("berth-console".into()),
            ClientSecret::new("secret".into()),
            IssuerUrl::new(issuer.into()).unwrap(),
            openidconnect::JsonWebKeySet::new(vec![]),
        )
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::HmacSha256]);
        let check = |raw: String, nonce: &str| -> Result<(), String> {
            let parsed: CoreIdToken = raw.parse().map_err(|e: serde_json::Error| e.to_string())?;
            parsed
                .claims(&verifier, &Nonce::new(nonce.into()))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(check(token(b"secret", "berth-console", "n", issuer), "n").is_ok());
        assert!(
            check(token(b"forged", "berth-console", "n", issuer), "n").is_err(),
            "forged signature"
        );
        assert!(
            check(token(b"secret", "another-client", "n", issuer), "n").is_err(),
            "foreign audience"
        );
        assert!(
            check(token(b"secret", "berth-console", "n", "http://evil"), "n").is_err(),
            "foreign issuer"
        );
        assert!(
            check(token(b"secret", "berth-console", "old", issuer), "n").is_err(),
            "replayed nonce"
        );
    }

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
