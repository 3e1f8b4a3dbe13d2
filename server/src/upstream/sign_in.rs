//! The cluster as the console's sign-in provider (OpenShift's OAuth server, or another
//! Berth's embedded one), for the flow of `auth::sign_in`: the endpoints from the API's
//! `/.well-known/oauth-authorization-server` (RFC 8414), the configured scopes, the code
//! exchanged through the API's client. Who the token belongs to is the cluster's answer to
//! `users/~`; the token stays in the server-side session and goes with every call to the
//! cluster, the browser holding only the session cookie.

use std::sync::Arc;

use oauth2::{AuthUrl, AuthorizationRequest, Scope, TokenResponse, TokenUrl};
use openidconnect::Nonce;
use serde::Deserialize;

use super::{SESSION_TOKEN, UpstreamApi};
use crate::auth::sign_in::{
    ClientCredentials, Endpoints, Provider, SignInError, SignedIn, TokenAnswer,
};
use crate::egress::HttpClient;

/// What the cluster's `/.well-known/oauth-authorization-server` says (RFC 8414).
#[derive(Debug, Clone, Deserialize)]
struct ServerMetadata {
    authorization_endpoint: String,
    token_endpoint: String,
}

#[derive(Debug, Deserialize)]
struct Me {
    metadata: crate::kube::ObjectMeta,
}

pub struct Cluster {
    api: Arc<UpstreamApi>,
    scopes: Vec<String>,
    metadata: tokio::sync::OnceCell<ServerMetadata>,
}

impl Cluster {
    pub fn new(api: Arc<UpstreamApi>, scopes: Vec<String>) -> Self {
        Cluster {
            api,
            scopes,
            metadata: tokio::sync::OnceCell::new(),
        }
    }

    /// The OAuth server's endpoints, discovered from the API once.
    async fn metadata(&self) -> Result<&ServerMetadata, SignInError> {
        self.metadata
            .get_or_try_init(|| async {
                let bytes = self
                    .api
                    .oauth_metadata()
                    .await
                    .map_err(|err| SignInError::Provider(err.to_string()))?;
                serde_json::from_slice(&bytes).map_err(|err| {
                    SignInError::Provider(format!("the OAuth server's metadata: {err}"))
                })
            })
            .await
    }
}

#[async_trait::async_trait]
impl Provider for Cluster {
    fn http(&self) -> &HttpClient {
        &self.api.http
    }

    async fn endpoints(&self) -> Result<Endpoints, SignInError> {
        let metadata = self.metadata().await?;
        let invalid = |err: oauth2::url::ParseError| SignInError::Provider(err.to_string());
        Ok(Endpoints {
            authorization: AuthUrl::new(metadata.authorization_endpoint.clone())
                .map_err(invalid)?,
            token: Some(TokenUrl::new(metadata.token_endpoint.clone()).map_err(invalid)?),
        })
    }

    /// The configured scopes (`user:full`); no nonce, as the cluster sends no ID token.
    fn authorization<'a>(
        &self,
        request: AuthorizationRequest<'a>,
        _nonce: &Nonce,
    ) -> AuthorizationRequest<'a> {
        request.add_scopes(self.scopes.iter().cloned().map(Scope::new))
    }

    async fn identify(
        &self,
        _client: &ClientCredentials,
        tokens: &TokenAnswer,
        _nonce: &Nonce,
    ) -> Result<SignedIn, SignInError> {
        let token = tokens.access_token().secret().clone();
        let me: Me = self
            .api
            .get(&token, "/apis/user.openshift.io/v1/users/~")
            .await
            .map_err(|err| {
                SignInError::Refused(format!("the cluster does not say who you are: {err}"))
            })?;
        if me.metadata.name.is_empty() {
            return Err(SignInError::Refused(
                "the cluster does not say who you are".into(),
            ));
        }
        Ok(SignedIn {
            user: me.metadata.name,
            identity_provider: None,
            keep: vec![(SESSION_TOKEN, token)],
        })
    }

    async fn record_sign_in(&self, signed_in: &SignedIn) {
        tracing::info!(user = %signed_in.user, "signed in to the console through the upstream cluster");
    }

    /// The session, and with it the only copy of the token here, is gone: nothing to record.
    async fn record_sign_out(&self, _user: &str) {}
}
