//! Settings: embedded defaults, then an optional TOML file, then the values the command line
//! gives ([`crate::cli`]). Everything is checked at start, and a bad value stops Berth with a
//! message naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object a line, for log collectors.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub shutdown_timeout: u64,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub registry: RegistryConfig,
    pub console: ConsoleConfig,
    pub auth: AuthConfig,
    /// Serve HTTPS with this certificate and key (`[tls] cert`, `key`).
    pub tls: Option<TlsConfig>,
    pub secrets: SecretsConfig,
    pub import: ImportConfig,
    pub webhooks: WebhooksConfig,
    /// Where Berth's own outbound calls may go (`[egress]`).
    pub egress: EgressConfig,
    pub limits: LimitsConfig,
    /// Serve the console in front of an OpenShift-compatible cluster (`[upstream]`) instead of
    /// running a registry here.
    pub upstream: Option<UpstreamConfig>,
}

/// The egress policy's settings: what outbound calls may reach besides the public internet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Networks (CIDRs such as `10.0.0.0/8`, or single addresses) that imports, webhooks and
    /// sign-in may reach although they are internal. A cloud metadata address opens only to an
    /// entry naming exactly that address.
    pub allow: Vec<String>,
    /// Hosts a registry's bearer challenge may name as its token realm besides the registry's
    /// own host and site (`auth.docker.io` for `registry-1.docker.io` needs no entry).
    pub token_realm_hosts: Vec<String>,
    /// PEM CA bundle trusted for outbound HTTPS besides the built-in roots.
    pub ca_file: Option<PathBuf>,
}

/// The HTTP edge: which proxies are believed, and how long a client may take to send headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Addresses or networks (`10.0.0.0/8`, `192.0.2.7`) of proxies whose `X-Forwarded-Proto`,
    /// `X-Forwarded-Host` and `X-Forwarded-For` are believed. From anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers (HTTP/1); a connection that stops
    /// mid-header, or stays idle that long between requests, is closed.
    pub header_read_timeout_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            trusted_proxies: Vec::new(),
            header_read_timeout_seconds: 10,
        }
    }
}

/// An http or https URL, without the spaces and control characters a URL parser would drop.
fn web_url(text: &str) -> bool {
    (text.starts_with("http://") || text.starts_with("https://"))
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
        && reqwest::Url::parse(text).is_ok_and(|url| url.has_host())
}

/// A network as configured (a trusted proxy, an egress exception): `10.0.0.0/8`, or one address
/// (`10.1.2.3`, `fd00::1`), a network of one.
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not a network (CIDR such as 10.0.0.0/8) or an address"))
}

impl HttpConfig {
    /// The trusted proxies as networks (checked at start, so none is dropped here).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|text| parse_network(text).ok())
            .collect()
    }

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout_seconds)
    }
}

/// An OpenShift-compatible cluster the console is put in front of: its API (image streams,
/// namespaces, access reviews), its registry, and its OAuth server (found from the API's
/// `/.well-known/oauth-authorization-server`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub api_url: String,
    pub registry_url: String,
    /// The registry's address in pull commands [default: the host of `registry_url`].
    #[serde(default)]
    pub registry_hostname: Option<String>,
    /// PEM CA bundle for the API, registry and OAuth server (besides the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The console's OAuth client at the upstream (an `OAuthClient` on OpenShift).
    #[serde(default = "default_upstream_client")]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// Scopes asked for at sign-in (`user:full`: the user's own permissions, as `oc login`).
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    /// The largest answer read from the upstream, in bytes.
    #[serde(default = "default_upstream_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_upstream_client() -> String {
    "berth-console".into()
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["user:full".into()]
}

fn default_upstream_response_bytes() -> usize {
    32 * 1024 * 1024
}

/// Webhook deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Milliseconds before a failed delivery is first retried; each retry waits twice as long,
    /// up to 5 minutes, for 8 attempts in all.
    pub retry_base_millis: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_base_millis: 1000,
        }
    }
}

/// Bounds on long-lived requests (watches and the console's event stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Longest a watch or event stream runs, in seconds (Kubernetes' `timeoutSeconds` is
    /// lowered to it; without one, a watch runs between half of it and all of it).
    pub watch_max_seconds: u64,
    /// Watches and event streams one subject may hold open at once (an anonymous client is
    /// counted by its address).
    pub watches_per_subject: usize,
    /// Watches and event streams open at once in all.
    pub watches_total: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            watch_max_seconds: 1800,
            watches_per_subject: 32,
            watches_total: 1000,
        }
    }
}

/// Imports from other registries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Seconds between re-imports of scheduled tags (OpenShift's
    /// `scheduledImageImportMinimumIntervalSeconds`, also 15 minutes by default).
    pub scheduled_interval_seconds: u64,
    /// Fetches from other registries (an imported tag, a pull-through blob) that run at once in
    /// one namespace; more wait their turn, without holding up other namespaces.
    pub namespace_concurrency: usize,
    /// Seconds one tag's import may take (waiting for its namespace's turn included) before it
    /// fails with a condition saying so.
    pub tag_timeout_seconds: u64,
    /// Seconds a pull-through fetch may take (waiting for its namespace's turn included); the
    /// pulls waiting for it fail after as long.
    pub pull_through_timeout_seconds: u64,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            scheduled_interval_seconds: 900,
            namespace_concurrency: 4,
            tag_timeout_seconds: 300,
            pull_through_timeout_seconds: 1800,
        }
    }
}

/// The key of registry credentials ("pull secrets"), kept apart from the database so that a
/// copy of the database alone reveals no credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// A file holding the key, 32 bytes in base64 (`openssl rand -base64 32`); when absent,
    /// `<data_dir>/secrets.key`, made on first start.
    pub key_file: Option<PathBuf>,
}

/// Reads a key file's text: 32 bytes in base64, surrounding whitespace ignored.
pub fn decode_secrets_key(text: &str) -> Result<[u8; 32], String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|err| format!("does not hold base64 ({err})"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "holds {} bytes; the key is 32 bytes in base64 (`openssl rand -base64 32`)",
            bytes.len()
        )
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    pub max_manifest_bytes: usize,
    /// The registry's address in pull specs; the listen address when absent.
    pub hostname: Option<String>,
    /// The address clients outside use, when it differs (`publicDockerImageRepository`).
    pub public_hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub site_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("data"),
            shutdown_timeout: 30,
            log: LogConfig::default(),
            http: HttpConfig::default(),
            registry: RegistryConfig::default(),
            console: ConsoleConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            secrets: SecretsConfig::default(),
            import: ImportConfig::default(),
            webhooks: WebhooksConfig::default(),
            egress: EgressConfig::default(),
            limits: LimitsConfig::default(),
            upstream: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_manifest_bytes: 4 * 1024 * 1024,
            hostname: None,
            public_hostname: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Value(Box<figment::Error>),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Config {
    /// `https` when Berth serves TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Defaults, then the TOML file `file`, then `overrides` (shaped like [`Config`]; what they
    /// leave out keeps the file's value), checked.
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Serialized::defaults(overrides));
        let config: Config = figment
            .extract()
            .map_err(|err| ConfigError::Value(Box::new(err)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(tls) = &self.tls {
            for (field, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if !path.is_file() {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!("{} is not a file", path.display()),
                    });
                }
            }
        }
        if self.registry.max_manifest_bytes == 0 {
            return Err(ConfigError::Invalid {
                field: "registry.max_manifest_bytes",
                reason: "must be greater than 0".into(),
            });
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::Invalid {
                field: "log.level",
                reason: format!("{:?} is not a valid log filter: {err}", self.log.level),
            });
        }
        if let Some(url) = &self.auth.public_url
            && !web_url(url)
        {
            return Err(ConfigError::Invalid {
                field: "auth.public_url",
                reason: format!("{url:?} must be an http:// or https:// URL"),
            });
        }
        // Redirects are made from these addresses: a header must be able to carry them.
        if let Some(client) = self.auth.clients.iter().find(|c| !web_url(&c.redirect_uri)) {
            return Err(ConfigError::Invalid {
                field: "auth.clients.redirect_uri",
                reason: format!(
                    "{:?} must be an http:// or https:// URL",
                    client.redirect_uri
                ),
            });
        }
        for proxy in &self.http.trusted_proxies {
            parse_network(proxy).map_err(|reason| ConfigError::Invalid {
                field: "http.trusted_proxies",
                reason,
            })?;
        }
        if self.http.header_read_timeout_seconds == 0 {
            return Err(ConfigError::Invalid {
                field: "http.header_read_timeout_seconds",
                reason: "must be greater than 0".into(),
            });
        }
        if self.auth.registry_token_seconds == 0
            || self.auth.session_hours == 0
            || self.auth.access_token_seconds == 0
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
                self.auth.registry_token_seconds,
                86_400 * 366,
            ),
            (
                "auth.access_token_seconds",
                self.auth.access_token_seconds,
                86_400 * 3650,
            ),
            ("auth.session_hours", self.auth.session_hours, 24 * 3650),
            (
                "auth.audit_retention_days",
                u64::from(self.auth.audit_retention_days),
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
        if self.auth.login_attempts_per_minute == 0 || self.auth.login_attempts_per_minute > 10_000
        {
            return Err(ConfigError::Invalid {
                field: "auth.login_attempts_per_minute",
                reason: "must be 1 to 10000".into(),
            });
        }
        for (field, value) in [
            (
                "import.scheduled_interval_seconds",
                self.import.scheduled_interval_seconds,
            ),
            (
                "import.tag_timeout_seconds",
                self.import.tag_timeout_seconds,
            ),
            (
                "import.pull_through_timeout_seconds",
                self.import.pull_through_timeout_seconds,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if !(1..=1024).contains(&self.import.namespace_concurrency) {
            return Err(ConfigError::Invalid {
                field: "import.namespace_concurrency",
                reason: "must be from 1 to 1024".into(),
            });
        }
        if self.webhooks.retry_base_millis == 0 {
            return Err(ConfigError::Invalid {
                field: "webhooks.retry_base_millis",
                reason: "must be greater than 0".into(),
            });
        }
        for (field, value) in [
            ("limits.watch_max_seconds", self.limits.watch_max_seconds),
            (
                "limits.watches_per_subject",
                self.limits.watches_per_subject as u64,
            ),
            ("limits.watches_total", self.limits.watches_total as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if let Some(path) = &self.secrets.key_file {
            let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Invalid {
                field: "secrets.key_file",
                reason: format!("{} cannot be read: {err}", path.display()),
            })?;
            decode_secrets_key(&text).map_err(|reason| ConfigError::Invalid {
                field: "secrets.key_file",
                reason: format!("{} {reason}", path.display()),
            })?;
        }
        for entry in &self.egress.allow {
            parse_network(entry).map_err(|reason| ConfigError::Invalid {
                field: "egress.allow",
                reason,
            })?;
        }
        if let Some(host) = self.egress.token_realm_hosts.iter().find(|host| {
            host.is_empty() || host.contains(['/', ':', '@', ' ']) || host.starts_with('.')
        }) {
            return Err(ConfigError::Invalid {
                field: "egress.token_realm_hosts",
                reason: format!("{host:?} is not a host name"),
            });
        }
        if let Some(path) = &self.egress.ca_file
            && !path.is_file()
        {
            return Err(ConfigError::Invalid {
                field: "egress.ca_file",
                reason: format!("{} is not a file", path.display()),
            });
        }
        if let Some(upstream) = &self.upstream {
            for (field, url) in [
                ("upstream.api_url", &upstream.api_url),
                ("upstream.registry_url", &upstream.registry_url),
            ] {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!("{url:?} must start with http:// or https://"),
                    });
                }
            }
            if let Some(path) = &upstream.ca_file
                && !path.is_file()
            {
                return Err(ConfigError::Invalid {
                    field: "upstream.ca_file",
                    reason: format!("{} is not a file", path.display()),
                });
            }
            if upstream.max_response_bytes == 0 {
                return Err(ConfigError::Invalid {
                    field: "upstream.max_response_bytes",
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                field: "data_dir",
                reason: "must not be empty".into(),
            });
        }
        Ok(())
    }

    /// The file of the key that encrypts registry credentials: the configured one, else
    /// `secrets.key` in the data folder.
    pub fn secrets_key_path(&self) -> PathBuf {
        self.secrets
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets.key"))
    }

    /// Where the console's built assets are: the configured folder, else `site` next to the
    /// binary's folder (as cargo-leptos lays out `target/release/berth` and `target/site`), else
    /// `target/site`.
    pub fn site_dir(&self) -> PathBuf {
        if let Some(dir) = &self.console.site_dir {
            return dir.clone();
        }
        let beside_binary = std::env::current_exe().ok().and_then(|exe| {
            let dir = exe.parent()?.parent()?.join("site");
            dir.is_dir().then_some(dir)
        });
        beside_binary.unwrap_or_else(|| Path::new("target").join("site"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No overrides: the defaults and the file alone.
    const NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("listen = \"nowhere\"", "listen"),
            (
                "[registry]\nmax_manifest_bytes = \"big\"",
                "registry.max_manifest_bytes",
            ),
            (
                "[registry]\nmax_manifest_bytes = 0",
                "registry.max_manifest_bytes",
            ),
            ("[log]\nformat = \"xml\"", "log.format"),
            (
                "[webhooks]\nretry_base_millis = 0",
                "webhooks.retry_base_millis",
            ),
            ("[limits]\nwatches_total = 0", "limits.watches_total"),
            (
                "[limits]\nwatches_per_subject = 0",
                "limits.watches_per_subject",
            ),
            (
                "[limits]\nwatch_max_seconds = 0",
                "limits.watch_max_seconds",
            ),
            ("[log]\nlevel = \"info,[\"", "log.level"),
            ("[egress]\nallow = [\"10.0.0.0/33\"]", "egress.allow"),
            ("[egress]\nallow = [\"intranet\"]", "egress.allow"),
            (
                "[egress]\ntoken_realm_hosts = [\"https://auth.example.com\"]",
                "egress.token_realm_hosts",
            ),
            (
                "[egress]\nca_file = \"/nonexistent/ca.pem\"",
                "egress.ca_file",
            ),
            (
                "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]",
                "http.trusted_proxies",
            ),
            (
                "[http]\nheader_read_timeout_seconds = 0",
                "http.header_read_timeout_seconds",
            ),
            ("[auth]\npublic_url = \"http://a\\n/\"", "auth.public_url"),
            (
                "[[auth.clients]]\nid = \"c\"\nsecret = \"s\"\nredirect_uri = \"http://a/\\r\\nx: y\"",
                "auth.clients.redirect_uri",
            ),
            ("colour = \"blue\"", "colour"),
            ("listen = ", "berth.toml"),
        ];
        for (text, field) in cases {
            let file = write(&dir, text);
            let err = Config::load(Some(&file), &NONE).unwrap_err().to_string();
            assert!(err.contains(field), "{text:?} gave {err:?}");
        }
        assert!(
            Config::load(Some(&dir.path().join("absent.toml")), &NONE)
                .unwrap_err()
                .to_string()
                .contains("no such file")
        );
    }

    #[test]
    fn defaults_then_file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "data_dir = \"/srv/berth\"\n[log]\nformat = \"json\"\n",
        );
        let overrides = serde_json::json!({ "data_dir": "/tmp/override", "log": {} });
        let config = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/override"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.listen, Config::default().listen);
        assert_eq!(Config::load(None, &NONE).unwrap(), Config::default());
    }

    #[test]
    fn networks_parse_as_cidrs_or_single_addresses() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network(" 10.1.2.3 ").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(parse_network("fd00::1").unwrap().to_string(), "fd00::1/128");
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }
}
