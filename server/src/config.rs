//! Configuration: embedded defaults, then an optional TOML file, then environment variables and
//! flags (clap reads both; a flag wins over its variable). Everything is checked at start, and a
//! bad value stops Berth with a message naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: an OCI container registry with image streams and a web console",
    long_about = "Berth: an OCI container registry with image streams and a web console.\n\n\
        Settings come from embedded defaults, then the TOML file given with --config, then \
        environment variables, then flags. Run `berth serve --help` for every option."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `berth` alone runs `berth serve`, with the same options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry and console (the default when no command is given).
    Serve(ServeArgs),
    /// Manage users (for operators; works on the data folder, with or without a running server).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tokens (for operators).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import images from another registry into an image stream of a running Berth, as
    /// `oc import-image` does (an ImageStreamImport through the API).
    ImportImage(ImportImageArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImportImageArgs {
    /// Where to import: NAMESPACE/STREAM[:TAG] (the tag defaults to the remote image's)
    pub target: String,
    /// The remote image: REGISTRY/REPOSITORY[:TAG|@DIGEST] (Docker Hub when no registry)
    #[arg(long)]
    pub from: String,
    /// Import every tag of the remote repository (into tags of the same names)
    #[arg(long)]
    pub all: bool,
    /// Reach the remote registry over plain HTTP
    #[arg(long)]
    pub insecure: bool,
    /// Import again on the server's schedule
    #[arg(long)]
    pub scheduled: bool,
    /// Serve pulls of the tag from Berth, fetching from the remote on first pull
    /// (referencePolicy Local) instead of pointing clients at the remote (Source)
    #[arg(long)]
    pub reference_policy_local: bool,
    /// Read the remote and show what would be imported, writing nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Berth's address
    #[arg(long, env = "BERTH_SERVER", default_value = "http://127.0.0.1:5000")]
    pub server: String,
    /// A token of a user or service account that may push to the stream
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Accept any certificate from Berth (a test server with a self-signed one)
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a local user.
    Add {
        name: String,
        /// The password; without it (and without --password-stdin) one is generated and printed.
        #[arg(long, env = "BERTH_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// Add the user to these groups.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Make the user a cluster administrator.
        #[arg(long)]
        cluster_admin: bool,
        #[command(flatten)]
        server: ServeArgs,
    },
    /// Set a user's password.
    Passwd {
        name: String,
        #[arg(long, env = "BERTH_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        #[command(flatten)]
        server: ServeArgs,
    },
    /// List users and their groups.
    List {
        #[command(flatten)]
        server: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal token for a user and print it (shown once).
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires; without it, it does not.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        server: ServeArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Flags (and their environment variables) of `berth serve`. Each overrides the same setting of
/// the configuration file.
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// TOML configuration file; its keys are those of the flags below (`listen`, `data_dir`,
    /// `[log] format`, ...).
    #[arg(long, short = 'c', env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to serve the registry, API and console on [default: 127.0.0.1:5000]
    #[arg(long, env = "BERTH_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Folder for the metadata database, blobs and uploads; created if missing [default: data]
    #[arg(long, env = "BERTH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format [default: human]
    #[arg(long, env = "BERTH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, in tracing's syntax (`info`, `berth=debug,tower_http=info`) [default: info]
    #[arg(long, env = "BERTH_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Largest manifest accepted, in bytes [default: 4194304]
    #[arg(long, env = "BERTH_MAX_MANIFEST_BYTES", value_name = "BYTES")]
    pub max_manifest_bytes: Option<usize>,

    /// The registry's host[:port] in pull specs and image stream status [default: the listen
    /// address]
    #[arg(long, env = "BERTH_REGISTRY_HOSTNAME", value_name = "HOST")]
    pub registry_hostname: Option<String>,

    /// The registry's host[:port] for clients outside, when it differs
    /// (publicDockerImageRepository)
    #[arg(long, env = "BERTH_PUBLIC_HOSTNAME", value_name = "HOST")]
    pub public_hostname: Option<String>,

    /// Folder of the console's built assets (cargo-leptos's site folder) [default: `site` beside
    /// the binary's folder, else target/site]
    #[arg(long, env = "BERTH_SITE_DIR", value_name = "DIR")]
    pub site_dir: Option<PathBuf>,

    /// Seconds to let requests in flight finish after a shutdown signal [default: 30]
    #[arg(long, env = "BERTH_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<u64>,

    /// Password of the bootstrap administrator, created on first start when there are no users
    /// [default: generated and printed once]
    #[arg(
        long,
        env = "BERTH_BOOTSTRAP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub bootstrap_password: Option<String>,

    /// An htpasswd file (bcrypt entries) whose users are added at start
    #[arg(long, env = "BERTH_HTPASSWD_FILE", value_name = "FILE")]
    pub htpasswd_file: Option<PathBuf>,

    /// The address people and clients reach Berth at (OAuth redirects, the registry token
    /// realm), such as https://registry.example.com [default: taken from each request]
    #[arg(long, env = "BERTH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// A proxy (address or network, such as 10.0.0.0/8) whose X-Forwarded-Proto,
    /// X-Forwarded-Host and X-Forwarded-For headers are believed; repeat it, or separate with
    /// commas [default: none]
    #[arg(
        long = "trusted-proxy",
        env = "BERTH_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// Seconds a client has to send a request's headers before its connection is closed
    /// (and how long an idle connection is kept) [default: 10]
    #[arg(long, env = "BERTH_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,

    /// Issuer URL of an OpenID Connect provider to sign people in with, instead of Berth's own
    #[arg(long, env = "BERTH_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,

    /// Client id registered for Berth at the OpenID Connect provider
    #[arg(long, env = "BERTH_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,

    /// Client secret registered for Berth at the OpenID Connect provider
    #[arg(
        long,
        env = "BERTH_OIDC_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<String>,

    /// PEM certificate chain to serve HTTPS with (with --tls-key); plain HTTP without
    #[arg(
        long,
        env = "BERTH_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of the certificate
    #[arg(
        long,
        env = "BERTH_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// File holding the key that encrypts registry credentials (32 bytes, base64)
    /// [default: <data_dir>/secrets.key, created on first start]
    #[arg(long, env = "BERTH_SECRETS_KEY_FILE", value_name = "FILE")]
    pub secrets_key_file: Option<PathBuf>,

    /// Seconds between scheduled imports of tags with `importPolicy.scheduled` [default: 900]
    #[arg(long, env = "BERTH_SCHEDULED_IMPORT_INTERVAL", value_name = "SECONDS")]
    pub scheduled_import_interval: Option<u64>,

    /// Milliseconds before a failed webhook delivery is first retried; each retry waits twice
    /// as long, up to 5 minutes [default: 1000]
    #[arg(
        long,
        env = "BERTH_WEBHOOK_RETRY_BASE_MILLIS",
        value_name = "MILLISECONDS"
    )]
    pub webhook_retry_base_millis: Option<u64>,

    /// The API address of an OpenShift-compatible cluster to put the console in front of
    /// (with --upstream-registry); Berth then runs no registry or store of its own
    #[arg(
        long,
        env = "BERTH_UPSTREAM_API",
        value_name = "URL",
        requires = "upstream_registry"
    )]
    pub upstream_api: Option<String>,

    /// The address of that cluster's registry
    #[arg(
        long,
        env = "BERTH_UPSTREAM_REGISTRY",
        value_name = "URL",
        requires = "upstream_api"
    )]
    pub upstream_registry: Option<String>,

    /// PEM CA bundle to trust for the upstream's API, registry and OAuth server
    #[arg(long, env = "BERTH_UPSTREAM_CA_FILE", value_name = "FILE")]
    pub upstream_ca_file: Option<PathBuf>,

    /// OAuth client id registered for the console at the upstream's OAuth server
    #[arg(long, env = "BERTH_UPSTREAM_CLIENT_ID", value_name = "ID")]
    pub upstream_client_id: Option<String>,

    /// That client's secret
    #[arg(
        long,
        env = "BERTH_UPSTREAM_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub upstream_client_secret: Option<String>,

    /// A network (CIDR, or one address) that Berth's outbound calls (imports, webhooks,
    /// sign-in) may reach although it is internal (loopback, private, link-local, ...);
    /// repeatable, comma-separated in the variable; replaces the file's `[egress] allow`
    #[arg(
        long = "egress-allow",
        env = "BERTH_EGRESS_ALLOW",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub egress_allow: Vec<String>,

    /// PEM CA bundle trusted for outbound HTTPS (imports, webhooks, sign-in) besides the
    /// built-in roots
    #[arg(long, env = "BERTH_EGRESS_CA_FILE", value_name = "FILE")]
    pub egress_ca_file: Option<PathBuf>,

    /// Longest a watch or the console's event stream runs, in seconds; a larger
    /// `timeoutSeconds` is lowered to it [default: 1800]
    #[arg(long, env = "BERTH_WATCH_MAX_SECONDS", value_name = "SECONDS")]
    pub watch_max_seconds: Option<u64>,

    /// Watches and event streams one user, service account or anonymous address may hold open
    /// at once [default: 32]
    #[arg(long, env = "BERTH_WATCHES_PER_SUBJECT", value_name = "COUNT")]
    pub watches_per_subject: Option<usize>,

    /// Watches and event streams the server holds open at once [default: 1000]
    #[arg(long, env = "BERTH_WATCHES_TOTAL", value_name = "COUNT")]
    pub watches_total: Option<usize>,
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

/// A trusted proxy as configured: a network, or one address (a network of one).
fn proxy_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a network such as 10.0.0.0/8"))
}

impl HttpConfig {
    /// The trusted proxies as networks (checked at start, so none is dropped here).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|text| proxy_network(text).ok())
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
    pub namespace_creation: crate::auth::NamespaceCreation,
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
    pub mapping_method: crate::storage::auth::MappingMethod,
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
            namespace_creation: crate::auth::NamespaceCreation::Authenticated,
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

/// The settings given as flags or variables, shaped like [`Config`]; absent ones are skipped so
/// they leave the file's values alone.
#[derive(Serialize)]
struct Overrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_timeout: Option<u64>,
    log: LogOverrides<'a>,
    http: HttpOverrides<'a>,
    registry: RegistryOverrides<'a>,
    console: ConsoleOverrides<'a>,
    auth: AuthOverrides<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsOverrides<'a>>,
    secrets: SecretsOverrides<'a>,
    import: ImportOverrides,
    webhooks: WebhooksOverrides,
    egress: EgressOverrides<'a>,
    limits: LimitsOverrides,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamOverrides<'a>>,
}

#[derive(Serialize)]
struct EgressOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    allow: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a Path>,
}

#[derive(Serialize)]
struct HttpOverrides<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    trusted_proxies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    header_read_timeout_seconds: Option<u64>,
}

#[derive(Serialize)]
struct LimitsOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    watch_max_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watches_per_subject: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watches_total: Option<usize>,
}

#[derive(Serialize)]
struct UpstreamOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

#[derive(Serialize)]
struct WebhooksOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_base_millis: Option<u64>,
}

#[derive(Serialize)]
struct ImportOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_interval_seconds: Option<u64>,
}

#[derive(Serialize)]
struct SecretsOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<&'a Path>,
}

#[derive(Serialize)]
struct TlsOverrides<'a> {
    cert: &'a Path,
    key: &'a Path,
}

#[derive(Serialize)]
struct AuthOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    htpasswd_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oidc: Option<OidcOverrides<'a>>,
}

#[derive(Serialize)]
struct OidcOverrides<'a> {
    issuer: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
}

#[derive(Serialize)]
struct LogOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
}

#[derive(Serialize)]
struct RegistryOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_manifest_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_hostname: Option<&'a str>,
}

#[derive(Serialize)]
struct ConsoleOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    site_dir: Option<&'a Path>,
}

impl<'a> From<&'a ServeArgs> for Overrides<'a> {
    fn from(args: &'a ServeArgs) -> Self {
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir.as_deref(),
            shutdown_timeout: args.shutdown_timeout,
            log: LogOverrides {
                format: args.log_format,
                level: args.log_level.as_deref(),
            },
            http: HttpOverrides {
                trusted_proxies: &args.trusted_proxies,
                header_read_timeout_seconds: args.header_read_timeout,
            },
            registry: RegistryOverrides {
                max_manifest_bytes: args.max_manifest_bytes,
                hostname: args.registry_hostname.as_deref(),
                public_hostname: args.public_hostname.as_deref(),
            },
            console: ConsoleOverrides {
                site_dir: args.site_dir.as_deref(),
            },
            auth: AuthOverrides {
                bootstrap_password: args.bootstrap_password.as_deref(),
                htpasswd_file: args.htpasswd_file.as_deref(),
                public_url: args.public_url.as_deref(),
                oidc: match (
                    &args.oidc_issuer,
                    &args.oidc_client_id,
                    &args.oidc_client_secret,
                ) {
                    (Some(issuer), Some(client_id), Some(client_secret)) => Some(OidcOverrides {
                        issuer,
                        client_id,
                        client_secret,
                    }),
                    _ => None,
                },
            },
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(TlsOverrides { cert, key }),
                _ => None,
            },
            secrets: SecretsOverrides {
                key_file: args.secrets_key_file.as_deref(),
            },
            import: ImportOverrides {
                scheduled_interval_seconds: args.scheduled_import_interval,
            },
            webhooks: WebhooksOverrides {
                retry_base_millis: args.webhook_retry_base_millis,
            },
            egress: EgressOverrides {
                allow: (!args.egress_allow.is_empty()).then_some(args.egress_allow.as_slice()),
                ca_file: args.egress_ca_file.as_deref(),
            },
            limits: LimitsOverrides {
                watch_max_seconds: args.watch_max_seconds,
                watches_per_subject: args.watches_per_subject,
                watches_total: args.watches_total,
            },
            // Only when some are given: an empty section would stand for a missing one.
            upstream: [
                args.upstream_api.is_some(),
                args.upstream_registry.is_some(),
                args.upstream_ca_file.is_some(),
                args.upstream_client_id.is_some(),
                args.upstream_client_secret.is_some(),
            ]
            .contains(&true)
            .then_some(UpstreamOverrides {
                api_url: args.upstream_api.as_deref(),
                registry_url: args.upstream_registry.as_deref(),
                ca_file: args.upstream_ca_file.as_deref(),
                client_id: args.upstream_client_id.as_deref(),
                client_secret: args.upstream_client_secret.as_deref(),
            }),
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

    /// Defaults, then the file named by `args.config`, then the flags and variables in `args`.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let oidc_flags = [
            &args.oidc_issuer,
            &args.oidc_client_id,
            &args.oidc_client_secret,
        ];
        if oidc_flags.iter().any(|f| f.is_some()) && !oidc_flags.iter().all(|f| f.is_some()) {
            return Err(ConfigError::Invalid {
                field: "auth.oidc",
                reason: "--oidc-issuer, --oidc-client-id and --oidc-client-secret go together"
                    .into(),
            });
        }
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &args.config {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.clone(),
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Serialized::defaults(Overrides::from(args)));
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
            proxy_network(proxy).map_err(|reason| ConfigError::Invalid {
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
        if let Some(reason) = crate::auth::names::user_name_error(&self.auth.bootstrap_admin) {
            return Err(ConfigError::Invalid {
                field: "auth.bootstrap_admin",
                reason,
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
            crate::egress::parse_network(entry).map_err(|reason| ConfigError::Invalid {
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

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/berth\"\n[log]\nformat = \"json\"\n",
        );
        let args = ServeArgs {
            config: Some(path),
            data_dir: Some("/tmp/override".into()),
            ..Default::default()
        };
        let config = Config::load(&args).unwrap();
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/override"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.registry.max_manifest_bytes, 4 * 1024 * 1024);
        assert_eq!(
            Config::load(&ServeArgs::default()).unwrap(),
            Config::default()
        );
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
            let args = ServeArgs {
                config: Some(write(&dir, text)),
                ..Default::default()
            };
            let err = Config::load(&args).unwrap_err().to_string();
            assert!(err.contains(field), "{text:?} gave {err:?}");
        }
        let missing = ServeArgs {
            config: Some(dir.path().join("absent.toml")),
            ..Default::default()
        };
        assert!(
            Config::load(&missing)
                .unwrap_err()
                .to_string()
                .contains("no such file")
        );
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[http]\ntrusted_proxies = [\"10.0.0.0/8\"]\n");
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let config = Config::load(&from_file).unwrap();
        assert_eq!(
            config.http.trusted_proxy_networks(),
            vec!["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]
        );
        assert_eq!(config.http.header_read_timeout_seconds, 10);
        let flags = ServeArgs {
            config: Some(path),
            trusted_proxies: vec!["192.0.2.7".into(), "fd00::/8".into()],
            header_read_timeout: Some(3),
            ..Default::default()
        };
        let config = Config::load(&flags).unwrap();
        assert_eq!(
            config.http.trusted_proxy_networks(),
            vec![
                "192.0.2.7/32".parse::<ipnet::IpNet>().unwrap(),
                "fd00::/8".parse().unwrap()
            ]
        );
        assert_eq!(config.http.header_read_timeout().as_secs(), 3);
    }

    #[test]
    fn the_egress_allow_list_comes_from_the_file_or_replaces_it_from_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "[egress]\nallow = [\"10.0.0.0/8\"]\ntoken_realm_hosts = [\"auth.example.com\"]\n",
        );
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let config = Config::load(&from_file).unwrap();
        assert_eq!(config.egress.allow, ["10.0.0.0/8"]);
        assert_eq!(config.egress.token_realm_hosts, ["auth.example.com"]);
        // Flags (repeated, or comma-separated as in BERTH_EGRESS_ALLOW) replace the file's list.
        let cli = Cli::try_parse_from([
            "berth",
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--egress-allow",
            "127.0.0.1/32,::1",
            "--egress-allow",
            "192.168.0.0/16",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("not serve");
        };
        let config = Config::load(&args).unwrap();
        assert_eq!(
            config.egress.allow,
            ["127.0.0.1/32", "::1", "192.168.0.0/16"]
        );
        assert_eq!(config.egress.token_realm_hosts, ["auth.example.com"]);
        assert!(Config::default().egress.allow.is_empty());
    }

    #[test]
    fn a_secrets_key_file_holds_32_bytes_in_base64() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secrets.key");
        let with_key = ServeArgs {
            secrets_key_file: Some(key.clone()),
            ..Default::default()
        };
        for (text, reason) in [
            ("not base64!", "does not hold base64"),
            ("c2hvcnQ=", "holds 5 bytes"),
            ("", "holds 0 bytes"),
        ] {
            std::fs::write(&key, text).unwrap();
            let err = Config::load(&with_key).unwrap_err().to_string();
            assert!(
                err.starts_with("secrets.key_file: ") && err.contains(reason),
                "{text:?} gave {err:?}"
            );
        }
        std::fs::remove_file(&key).unwrap();
        let err = Config::load(&with_key).unwrap_err().to_string();
        assert!(
            err.contains("secrets.key_file") && err.contains("cannot be read"),
            "{err}"
        );

        let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        std::fs::write(&key, format!("{encoded}\n")).unwrap();
        assert_eq!(Config::load(&with_key).unwrap().secrets_key_path(), key);
        let file = write(
            &dir,
            &format!("[secrets]\nkey_file = {:?}\n", key.display()),
        );
        let from_file = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert_eq!(Config::load(&from_file).unwrap().secrets_key_path(), key);
        assert_eq!(decode_secrets_key(&encoded), Ok([7u8; 32]));
        // Not configured: a key in the data folder.
        assert_eq!(
            Config::default().secrets_key_path(),
            Path::new("data").join("secrets.key")
        );
    }
}
