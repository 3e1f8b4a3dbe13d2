//! The embedded server's token endpoint: `POST /oauth/token` exchanges a code (once, before it
//! expires, with the PKCE verifier matching its challenge) for an access token (a Berth token)
//! and an OpenID Connect ID token (HS256 with the client's secret).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::error::{OAuthError, no_store};
use super::{OAuthClient, OAuthServer};
use crate::auth::credentials::{new_token_secret, pkce_challenge, same_secret, secret_hash};
use crate::storage::auth::{NewAudit, TokenKind, TokenOwner, UserRecord};

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
    use crate::auth::http::{Credentials, credentials};
    if let Credentials::Basic { user, password } = credentials(headers) {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        return Some((decode(&user), decode(&password)));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

/// `POST /oauth/token`.
pub(super) async fn token(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    match server.exchange(&headers, &form).await {
        Ok(tokens) => no_store(axum::Json(tokens).into_response()),
        Err(refused) => refused.token_response(),
    }
}

impl OAuthServer {
    /// The token response for a valid code exchange.
    async fn exchange(
        &self,
        headers: &HeaderMap,
        form: &TokenForm,
    ) -> Result<serde_json::Value, OAuthError> {
        if form.grant_type != "authorization_code" {
            return Err(OAuthError::UnsupportedGrantType);
        }
        let (client_id, client_secret) =
            client_credentials(headers, form).ok_or(OAuthError::ClientAuthenticationRequired)?;
        let client = self
            .client(&client_id)
            .filter(|c| same_secret(&c.secret, &client_secret))
            .ok_or(OAuthError::WrongClientSecret)?;
        let store = &self.auth.store;
        let code = store
            .take_oauth_code(&secret_hash(&form.code))
            .await
            .map_err(|source| OAuthError::Storage {
                what: "reading an authorization code",
                source,
            })?
            .ok_or(OAuthError::UnknownCode)?;
        if code.client_id != client.id || code.redirect_uri != form.redirect_uri {
            return Err(OAuthError::CodeOfAnotherClient);
        }
        if code.expires_at < Utc::now() {
            return Err(OAuthError::CodeExpired);
        }
        if form.code_verifier.is_empty()
            || !same_secret(&pkce_challenge(&form.code_verifier), &code.code_challenge)
        {
            return Err(OAuthError::WrongVerifier);
        }
        let user = store
            .user_by_id(code.user_id)
            .await
            .map_err(|source| OAuthError::Storage {
                what: "reading a user",
                source,
            })?
            .filter(|user| !user.disabled)
            .ok_or(OAuthError::UserGone)?;
        let (secret, _) = self.access_token(&user, &client.id).await?;
        let mut answer = serde_json::json!({
            "access_token": secret,
            "token_type": "Bearer",
            "expires_in": self.access_token_seconds,
            "scope": code.scope,
        });
        // A public client (`oc`'s, without a secret) gets no ID token: there is no key to sign
        // it with that the client could check.
        if !client.secret.is_empty() {
            let id_token = self.id_token(&user, client, code.nonce.as_deref())?;
            answer["id_token"] = serde_json::json!(id_token);
        }
        Ok(answer)
    }

    /// An OpenID Connect ID token for `user`, signed with the client's secret (HS256).
    fn id_token(
        &self,
        user: &UserRecord,
        client: &OAuthClient,
        nonce: Option<&str>,
    ) -> Result<String, OAuthError> {
        let now = Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "sub": user.name,
            "aud": client.id,
            "exp": now + self.access_token_seconds,
            "iat": now,
            "auth_time": now,
            "preferred_username": user.name,
            "groups": user.groups,
        });
        if let Some(name) = &user.full_name {
            claims["name"] = serde_json::json!(name);
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = serde_json::json!(nonce);
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(client.secret.as_bytes()),
        )
        .map_err(OAuthError::IdTokenSigning)
    }

    /// A new access token (a Berth token of the OAuth kind) for `user`, issued to `client_id`
    /// and audited: its secret, shown once, and its lifetime in seconds.
    pub(super) async fn access_token(
        &self,
        user: &UserRecord,
        client_id: &str,
    ) -> Result<(String, i64), OAuthError> {
        let secret = new_token_secret();
        let expires_at = Utc::now() + chrono::Duration::seconds(self.access_token_seconds);
        self.auth
            .store
            .create_token(
                TokenKind::OAuth,
                &TokenOwner::User(user.id),
                &format!("oauth {client_id}"),
                &secret_hash(&secret),
                Some(expires_at),
            )
            .await
            .map_err(|source| OAuthError::Storage {
                what: "storing an access token",
                source,
            })?;
        self.auth
            .audit(NewAudit {
                actor: user.name.clone(),
                action: "token-create",
                target: format!("oauth access token for {client_id}"),
                success: true,
                address: None,
                detail: None,
            })
            .await;
        Ok((secret, self.access_token_seconds))
    }
}
