//! `[auth]`: the bootstrap administrator, token and session lifetimes, sign-in throttling, the
//! embedded OAuth server's clients and an external OpenID Connect provider.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The console's own client id at the embedded OAuth server, registered by Berth itself.
pub const CONSOLE_CLIENT_ID: &str = "berth-console";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Name of the administrator created on first start.
    pub bootstrap_admin: String,
    pub bootstrap_password: Option<String>,
    pub htpasswd_file: Option<PathBuf>,
    /// Who may create a namespace (by pushing to it): `authenticated` users, or only
    /// `cluster-admin`s.
    pub namespace_creation: NamespaceCreation,
    /// Lifetime of registry tokens from the token endpoint, in seconds.
    pub registry_token_seconds: u64,
    /// Lifetime of access tokens from the OAuth server, in seconds (OpenShift's
    /// `accessTokenMaxAgeSeconds`, also a day by default).
    pub access_token_seconds: u64,
    /// Lifetime of a console session, in hours.
    pub session_hours: u64,
    /// Failed logins allowed per user and address each minute before more are refused (an
    /// address alone may fail five times as often; a user's failures from all addresses beyond
    /// five times this only slow further attempts).
    pub login_attempts_per_minute: u32,
    /// Days the audit log keeps an entry (0: for ever).
    pub audit_retention_days: u32,
    pub public_url: Option<String>,
    pub oidc: Option<OidcConfig>,
    /// More clients of the embedded OAuth server (the console is registered already).
    pub clients: Vec<OAuthClientConfig>,
}

/// How pushing to a namespace that does not exist yet is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamespaceCreation {
    /// Any signed-in user (not a service account) may create a namespace, and becomes its
    /// admin (OpenShift's self-provisioner).
    Authenticated,
    /// Only cluster administrators.
    ClusterAdmin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientConfig {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
}

/// An external OpenID Connect provider for people's sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The ID-token claim listing the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The ID-token claim used as the user name.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Scopes to ask for besides `openid` (a provider may need `groups` for the groups claim).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// How an identity of the provider that no user has yet becomes one, as OpenShift's
    /// `mappingMethod`: `claim` (a new user of the provider's user name, refused when that name
    /// is a user already), `lookup` (only identities an administrator linked), or `add` (linked
    /// to the user of that name, local ones included).
    #[serde(default)]
    pub mapping_method: MappingMethod,
}

/// How an identity of an external provider that no user has yet becomes one (OpenShift's
/// `mappingMethod`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingMethod {
    /// A new user of the provider's preferred name; refused when that name is a user already
    /// (one with a password, another identity, or of another provider).
    #[default]
    Claim,
    /// Only identities an administrator linked to a user beforehand.
    Lookup,
    /// Linked to the user of the preferred name, made when absent: the provider is trusted to
    /// name Berth's users, local ones included.
    Add,
}

impl MappingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingMethod::Claim => "claim",
            MappingMethod::Lookup => "lookup",
            MappingMethod::Add => "add",
        }
    }
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into()]
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_username_claim() -> String {
    "preferred_username".into()
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bootstrap_admin: "admin".into(),
            bootstrap_password: None,
            htpasswd_file: None,
            namespace_creation: NamespaceCreation::Authenticated,
            registry_token_seconds: 300,
            access_token_seconds: 86_400,
            session_hours: 12,
            login_attempts_per_minute: 10,
            audit_retention_days: 90,
            public_url: None,
            oidc: None,
            clients: Vec::new(),
        }
    }
}

/// An http or https URL, without the spaces and control characters a URL parser would drop.
fn web_url(text: &str) -> bool {
    (text.starts_with("http://") || text.starts_with("https://"))
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
        && reqwest::Url::parse(text).is_ok_and(|url| url.has_host())
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url
            && !web_url(url)
        {
            return Err(ConfigError::Invalid {
                field: "auth.public_url",
                reason: format!("{url:?} must be an http:// or https:// URL"),
            });
        }
        // Redirects are made from these addresses: a header must be able to carry them.
        if let Some(client) = self.clients.iter().find(|c| !web_url(&c.redirect_uri)) {
            return Err(ConfigError::Invalid {
                field: "auth.clients.redirect_uri",
                reason: format!(
                    "{:?} must be an http:// or https:// URL",
                    client.redirect_uri
                ),
            });
        }
        // The built-in client is found first: one configured under its id would never be used,
        // and every sign-in through it would fail on the redirect URI.
        if self.clients.iter().any(|c| c.id == CONSOLE_CLIENT_ID) {
            return Err(ConfigError::Invalid {
                field: "auth.clients.id",
                reason: format!(
                    "{CONSOLE_CLIENT_ID:?} is the console's own client, registered already: \
                     give the other client another id (and the same to its --upstream-client-id)"
                ),
            });
        }
        if self.registry_token_seconds == 0
            || self.session_hours == 0
            || self.access_token_seconds == 0
        {
            return Err(ConfigError::Invalid {
                field: "auth.registry_token_seconds",
                reason: "token and session lifetimes must be greater than 0".into(),
            });
        }
        // Lifetimes are turned into dates: bounded so that none overflows.
        for (field, value, max) in [
            (
                "auth.registry_token_seconds",
                self.registry_token_seconds,
                86_400 * 366,
            ),
            (
                "auth.access_token_seconds",
                self.access_token_seconds,
                86_400 * 3650,
            ),
            ("auth.session_hours", self.session_hours, 24 * 3650),
            (
                "auth.audit_retention_days",
                u64::from(self.audit_retention_days),
                36_500,
            ),
        ] {
            if value > max {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!("{value} is more than the largest allowed, {max}"),
                });
            }
        }
        if self.login_attempts_per_minute == 0 || self.login_attempts_per_minute > 10_000 {
            return Err(ConfigError::Invalid {
                field: "auth.login_attempts_per_minute",
                reason: "must be 1 to 10000".into(),
            });
        }
        Ok(())
    }
}
