//! OpenID Connect providers of the console's sign-in: the embedded server (its metadata known,
//! its token endpoint reached at the listen address) or another, found by discovery. The
//! scope `openid` and a nonce are asked for; the ID token's signature, issuer, audience and
//! nonce are checked; the user is found by name at the embedded server and through the
//! identity (provider, subject) elsewhere, mapped by `mapping_method`, with the groups of a
//! configured claim. Metadata, keys and tokens go through the egress policy's client with the
//! configured origin trusted.

use std::sync::Arc;

use base64::Engine;
use oauth2::{AuthorizationRequest, Scope};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AuthUrl, EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeySetUrl, Nonce, ResponseTypes,
    TokenUrl,
};

use super::{ClientCredentials, Endpoints, Provider, SignInError, SignedIn, TokenAnswer};
use crate::auth::identity::AuthContext;
use crate::auth::names::{MAX_USER_NAME, managed_group_name_error, user_name_error};
use crate::config::auth::MappingMethod;
use crate::egress::HttpClient;
use crate::storage::auth::{ExternalIdentity, IdentityMapping, NewAudit};

/// Which OpenID Connect provider.
#[derive(Debug, Clone)]
pub enum Issuer {
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

pub struct Oidc {
    auth: Arc<AuthContext>,
    issuer: Issuer,
    /// Under the egress policy, trusting the provider's configured origin.
    http: HttpClient,
    metadata: tokio::sync::OnceCell<CoreProviderMetadata>,
}

impl Oidc {
    pub fn new(
        auth: Arc<AuthContext>,
        issuer: Issuer,
        egress: &Arc<crate::egress::EgressPolicy>,
    ) -> anyhow::Result<Self> {
        // The provider the operator configured is trusted at its origin (the embedded server
        // at the listen address); what its discovery names elsewhere goes through the policy.
        // No redirects are followed (SSRF).
        let configured = match &issuer {
            Issuer::Embedded { internal, .. } => internal,
            Issuer::External { issuer, .. } => issuer,
        };
        let http = egress
            .client(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .trust(configured)?
            .with(|builder| builder.timeout(std::time::Duration::from_secs(15)))
            .build()?;
        Ok(Oidc {
            auth,
            issuer,
            http,
            metadata: tokio::sync::OnceCell::new(),
        })
    }

    /// The provider's metadata: built for the embedded server, discovered for another.
    async fn metadata(&self) -> Result<&CoreProviderMetadata, SignInError> {
        self.metadata
            .get_or_try_init(|| async {
                let provider_error =
                    |err: &dyn std::fmt::Display| SignInError::Provider(err.to_string());
                match &self.issuer {
                    Issuer::Embedded { issuer, internal } => Ok(CoreProviderMetadata::new(
                        IssuerUrl::new(issuer.clone()).map_err(|e| provider_error(&e))?,
                        AuthUrl::new(format!("{issuer}/oauth/authorize"))
                            .map_err(|e| provider_error(&e))?,
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
                    ))),
                    Issuer::External { issuer, .. } => {
                        let issuer =
                            IssuerUrl::new(issuer.clone()).map_err(|e| provider_error(&e))?;
                        CoreProviderMetadata::discover_async(issuer, &self.http)
                            .await
                            .map_err(|e| SignInError::Provider(crate::egress::error_chain(&e)))
                    }
                }
            })
            .await
    }

    /// The claims naming the user's groups and the user.
    fn claim_names(&self) -> (&str, &str) {
        match &self.issuer {
            Issuer::Embedded { .. } => ("groups", "preferred_username"),
            Issuer::External {
                groups_claim,
                username_claim,
                ..
            } => (groups_claim, username_claim),
        }
    }

    /// The ID token's claims once its signature (HS256 with the client secret at the embedded
    /// server, the provider's keys elsewhere), issuer, audience, expiry and nonce are checked:
    /// the subject, and the raw claims for the configured ones.
    async fn verified_claims(
        &self,
        client: &ClientCredentials,
        tokens: &TokenAnswer,
        nonce: &Nonce,
    ) -> Result<(String, serde_json::Value), SignInError> {
        let invalid = |err: &dyn std::fmt::Display| SignInError::InvalidIdToken(err.to_string());
        let raw = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| invalid(&"the provider sent no ID token"))?;
        let id_token: CoreIdToken = raw.parse().map_err(|e: serde_json::Error| invalid(&e))?;
        let metadata = self.metadata().await?;
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            client.id.clone(),
            client.secret.clone(),
            metadata.issuer().clone(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(metadata.id_token_signing_alg_values_supported().clone());
        let claims = id_token.claims(&verifier, nonce).map_err(|e| invalid(&e))?;
        Ok((claims.subject().to_string(), raw_claims(raw)))
    }
}

/// An OpenID Connect authentication request (Core 1.0, 3.1.2.1): the scope `openid` first,
/// then the configured ones (`profile` at the embedded server), and the nonce; as the
/// `openidconnect` crate's client makes it.
fn authentication_request<'a>(
    issuer: &Issuer,
    request: AuthorizationRequest<'a>,
    nonce: &Nonce,
) -> AuthorizationRequest<'a> {
    let scopes = match issuer {
        Issuer::Embedded { .. } => vec![Scope::new("profile".into())],
        Issuer::External { scopes, .. } => scopes.iter().cloned().map(Scope::new).collect(),
    };
    request
        .add_scope(Scope::new("openid".into()))
        .add_scopes(scopes)
        .add_extra_param("nonce", nonce.secret().clone())
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

#[async_trait::async_trait]
impl Provider for Oidc {
    fn http(&self) -> &HttpClient {
        &self.http
    }

    async fn endpoints(&self) -> Result<Endpoints, SignInError> {
        let metadata = self.metadata().await?;
        Ok(Endpoints {
            authorization: metadata.authorization_endpoint().clone(),
            token: metadata.token_endpoint().cloned(),
        })
    }

    fn authorization<'a>(
        &self,
        request: AuthorizationRequest<'a>,
        nonce: &Nonce,
    ) -> AuthorizationRequest<'a> {
        authentication_request(&self.issuer, request, nonce)
    }

    async fn identify(
        &self,
        client: &ClientCredentials,
        tokens: &TokenAnswer,
        nonce: &Nonce,
    ) -> Result<SignedIn, SignInError> {
        let (subject, raw) = self.verified_claims(client, tokens, nonce).await?;
        let (groups_claim, username_claim) = self.claim_names();
        let name = raw
            .get(username_claim)
            .and_then(|v| v.as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| subject.clone());
        let store = &self.auth.store;
        let user = match &self.issuer {
            Issuer::Embedded { .. } => store
                .user(&name)
                .await?
                .ok_or_else(|| SignInError::UnknownUser(name.clone()))?,
            Issuer::External {
                issuer,
                mapping_method,
                ..
            } => {
                // The user is found through the identity (provider, subject), never through
                // the name the provider suggests: an "admin" there is not Berth's administrator.
                if let Some(reason) = user_name_error(&name) {
                    return Err(SignInError::InvalidName(
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
                    subject: &subject,
                    preferred_name: &name,
                    full_name: full_name.as_deref(),
                    groups: &groups,
                };
                match store.map_identity(&identity, *mapping_method).await? {
                    IdentityMapping::Mapped(user) => user,
                    IdentityMapping::NotMapped => {
                        self.audit_refusal(&name, "not linked to a user").await;
                        return Err(SignInError::NotMapped);
                    }
                    IdentityMapping::NameTaken => {
                        self.audit_refusal(&name, "the name is another user's")
                            .await;
                        return Err(SignInError::NameTaken(name));
                    }
                }
            }
        };
        if user.disabled {
            return Err(SignInError::UnknownUser(name));
        }
        Ok(SignedIn {
            user: user.name,
            identity_provider: Some(user.identity_provider),
            keep: Vec::new(),
        })
    }

    async fn record_sign_in(&self, signed_in: &SignedIn) {
        self.auth
            .audit(NewAudit {
                actor: signed_in.user.clone(),
                action: "login-console",
                target: "console".into(),
                success: true,
                address: None,
                detail: signed_in.identity_provider.clone(),
            })
            .await;
    }

    async fn record_sign_out(&self, user: &str) {
        self.auth
            .audit(NewAudit {
                actor: user.to_owned(),
                action: "logout",
                target: "console".into(),
                success: true,
                address: None,
                detail: None,
            })
            .await;
    }
}

impl Oidc {
    async fn audit_refusal(&self, name: &str, why: &str) {
        self.auth
            .audit(NewAudit {
                actor: name.to_owned(),
                action: "login-console",
                target: "console".into(),
                success: false,
                address: None,
                detail: Some(why.into()),
            })
            .await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::{ClientId, ClientSecret};

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
    fn the_authentication_request_is_the_one_the_openidconnect_client_makes() {
        use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
        use openidconnect::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl};
        let issuer = Issuer::External {
            issuer: "https://id.example".into(),
            groups_claim: "groups".into(),
            username_claim: "preferred_username".into(),
            scopes: vec!["profile".into(), "groups".into()],
            mapping_method: MappingMethod::default(),
        };
        let authorize = AuthUrl::new("https://id.example/authorize?tenant=a".into()).unwrap();
        let redirect = RedirectUrl::new("https://berth.example/console/callback".into()).unwrap();
        let challenge = || {
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
                "a-verifier-of-enough-length-to-be-valid-0123456789".into(),
            ))
        };
        let state = || CsrfToken::new("the state".into());
        let nonce = Nonce::new("the nonce".into());

        let ours = oauth2::basic::BasicClient::new(ClientId::new("berth".into()))
            .set_auth_uri(authorize.clone())
            .set_redirect_uri(redirect.clone());
        let request = ours.authorize_url(state).set_pkce_challenge(challenge());
        let (ours, _) = authentication_request(&issuer, request, &nonce).url();

        let theirs = CoreClient::new(
            ClientId::new("berth".into()),
            IssuerUrl::new("https://id.example".into()).unwrap(),
            openidconnect::JsonWebKeySet::new(vec![]),
        )
        .set_auth_uri(authorize)
        .set_redirect_uri(redirect);
        let nonce_again = nonce.clone();
        let (theirs, _, _) = theirs
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                state,
                move || nonce_again,
            )
            .add_scopes(["profile", "groups"].map(|s| Scope::new(s.into())))
            .set_pkce_challenge(challenge())
            .url();
        assert_eq!(ours.as_str(), theirs.as_str());
        assert!(
            ours.as_str().contains("scope=openid+profile+groups"),
            "{ours}"
        );
    }

    #[test]
    fn id_tokens_are_checked_for_signature_audience_issuer_and_nonce() {
        let issuer = "http://127.0.0.1:5000";
        let verifier = CoreIdTokenVerifier::new_confidential_client(
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
}
