//! Sign-in through the cluster's OAuth server (OpenShift's, or another Berth's embedded one):
//! authorization code with PKCE and `state`, through the `oauth2` crate. The access token stays
//! in the server-side session and goes with every call to the cluster; the browser holds only
//! the session cookie. Who the token belongs to is the cluster's answer to `users/~`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{SESSION_TOKEN, UpstreamApi};
use crate::auth::console_login::{
    CallbackQuery, LoginError, LoginQuery, LogoutForm, end_session, safe_return, session_error,
    sign_in_here, start_session, take_pending,
};
use crate::auth::oauth::CONSOLE_CALLBACK;
use crate::web::Arrival;

const SESSION_LOGIN: &str = "upstream_login";

/// What the cluster's `/.well-known/oauth-authorization-server` says (RFC 8414).
#[derive(Debug, Clone, Deserialize)]
struct ServerMetadata {
    authorization_endpoint: String,
    token_endpoint: String,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct UpstreamLogin {
    pub api: Arc<UpstreamApi>,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// The console's base URL; the redirect URI is under it.
    pub base_url: String,
    metadata: tokio::sync::OnceCell<ServerMetadata>,
}

/// What the session keeps between the redirect to the cluster and the callback.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    verifier: String,
    then: String,
}

#[derive(Debug, Deserialize)]
struct Me {
    metadata: crate::kube::ObjectMeta,
}

impl UpstreamLogin {
    pub fn new(
        api: Arc<UpstreamApi>,
        client_id: String,
        client_secret: String,
        scopes: Vec<String>,
        base_url: String,
    ) -> Self {
        UpstreamLogin {
            api,
            client_id,
            client_secret,
            scopes,
            base_url,
            metadata: tokio::sync::OnceCell::new(),
        }
    }

    /// The OAuth server's endpoints, discovered from the API once.
    async fn metadata(&self) -> Result<&ServerMetadata, LoginError> {
        self.metadata
            .get_or_try_init(|| async {
                let bytes = self
                    .api
                    .oauth_metadata()
                    .await
                    .map_err(|err| LoginError::Provider(err.to_string()))?;
                serde_json::from_slice(&bytes).map_err(|err| {
                    LoginError::Provider(format!("the OAuth server's metadata: {err}"))
                })
            })
            .await
    }

    async fn client(&self) -> Result<Client, LoginError> {
        let metadata = self.metadata().await?;
        let invalid = |err: oauth2::url::ParseError| LoginError::Provider(err.to_string());
        Ok(BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(metadata.authorization_endpoint.clone()).map_err(invalid)?)
            .set_token_uri(TokenUrl::new(metadata.token_endpoint.clone()).map_err(invalid)?)
            .set_redirect_uri(
                RedirectUrl::new(format!("{}{CONSOLE_CALLBACK}", self.base_url))
                    .map_err(invalid)?,
            ))
    }
}

/// `GET /console/login`: sends the browser to the cluster's OAuth server.
async fn login(
    State(login): State<Arc<UpstreamLogin>>,
    session: Session,
    arrival: Arrival,
    Query(query): Query<LoginQuery>,
) -> Result<Response, LoginError> {
    if let Some(elsewhere) = sign_in_here(&login.base_url, &arrival, query.then.as_deref()) {
        return Ok(elsewhere);
    }
    let client = login.client().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(login.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    let pending = PendingLogin {
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
        then: safe_return(query.then.as_deref()),
    };
    session
        .insert(SESSION_LOGIN, pending)
        .await
        .map_err(session_error)?;
    Ok(Redirect::to(url.as_str()).into_response())
}

/// `GET /console/callback`: checks the answer, exchanges the code, asks the cluster who the
/// token belongs to and starts the session.
async fn callback(
    State(login): State<Arc<UpstreamLogin>>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, LoginError> {
    let pending: PendingLogin = take_pending(&session, SESSION_LOGIN).await?;
    let code = query.code(&pending.state)?;
    let client = login.client().await?;
    let answer = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&login.api.http)
        .await
        .map_err(crate::auth::console_login::exchange_error)?;
    let token = answer.access_token().secret().clone();
    let me: Me = login
        .api
        .get(&token, "/apis/user.openshift.io/v1/users/~")
        .await
        .map_err(|err| {
            LoginError::Refused(format!("the cluster does not say who you are: {err}"))
        })?;
    if me.metadata.name.is_empty() {
        return Err(LoginError::Refused(
            "the cluster does not say who you are".into(),
        ));
    }
    start_session(&session, &me.metadata.name, vec![(SESSION_TOKEN, token)]).await?;
    tracing::info!(user = %me.metadata.name, "signed in to the console through the upstream cluster");
    Ok(Redirect::to(&safe_return(Some(&pending.then))).into_response())
}

/// `POST /console/logout`: ends the session (and with it the only copy of the token here).
async fn logout(session: Session, axum::Form(form): axum::Form<LogoutForm>) -> Response {
    match end_session(&session, &form.csrf_token).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(refused) => refused,
    }
}

pub fn router(login_state: Arc<UpstreamLogin>) -> Router {
    Router::new()
        .route("/console/login", get(login))
        .route(CONSOLE_CALLBACK, get(callback))
        .route("/console/logout", post(logout))
        .with_state(login_state)
}
