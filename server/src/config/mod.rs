//! Settings: embedded defaults, then an optional TOML file, then the values the command line
//! gives (`cli.rs`). Everything is checked at start, and a bad value stops Berth with a
//! message naming the field. The larger sections are in files of their own (`auth`, `database`,
//! `http`, `egress`, `upstream`), each with its checks; the small ones are here.

pub mod auth;
pub mod database;
pub mod egress;
pub mod http;
pub mod storage;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use auth::AuthConfig;
use database::DatabaseConfig;
use egress::EgressConfig;
use http::HttpConfig;
use storage::StorageConfig;
use upstream::UpstreamConfig;

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
    /// Where blobs live (`[storage]`): the data folder, another folder or a bucket.
    pub storage: StorageConfig,
    pub shutdown_timeout: u64,
    /// Where metadata is kept (`[database]`).
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub registry: RegistryConfig,
    pub console: ConsoleConfig,
    pub auth: AuthConfig,
    /// Serve HTTPS with this certificate and key (`[tls] cert`, `key`).
    pub tls: Option<TlsConfig>,
    pub secrets: SecretsConfig,
    pub import: ImportConfig,
    /// What Berth frees by itself (`[gc]`).
    pub gc: GcConfig,
    /// The scheduled pruner and retention policies, and pull times (`[prune]`).
    pub prune: PruneConfig,
    pub webhooks: WebhooksConfig,
    /// Where Berth's own outbound calls may go (`[egress]`).
    pub egress: EgressConfig,
    pub limits: LimitsConfig,
    /// The bounds of reading a layer's files for the console (`[layers]`).
    pub layers: LayersConfig,
    /// Serve the console in front of an OpenShift-compatible cluster (`[upstream]`) instead of
    /// running a registry here.
    pub upstream: Option<UpstreamConfig>,
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

/// Every entry of a list of networks is one ([`parse_network`]).
fn check_networks(field: &'static str, entries: &[String]) -> Result<(), ConfigError> {
    for entry in entries {
        parse_network(entry).map_err(|reason| ConfigError::Invalid { field, reason })?;
    }
    Ok(())
}

/// A configured file (a certificate, a CA bundle) is there.
fn check_file(field: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            reason: format!("{} is not a file", path.display()),
        })
    }
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

/// A layer's file index (`server/src/layers/`): how far indexing goes before it stops with a
/// message saying which bound it met, and how often it leaves a checkpoint to read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayersConfig {
    /// Entries (files, directories, links) one layer's listing holds at most.
    pub max_entries: u64,
    /// Uncompressed bytes indexing reads at most (a decompression bomb stops here).
    pub max_uncompressed_bytes: u64,
    /// Seconds indexing one layer may take.
    pub max_index_seconds: u64,
    /// Entries whose name is longer (bytes) or deeper (components) are left out and counted.
    pub max_path_bytes: usize,
    pub max_path_depth: usize,
    /// Uncompressed bytes between two checkpoints into a compressed layer: a file read decodes
    /// at most about this much before its first byte.
    pub checkpoint_spacing_bytes: u64,
    /// Bytes of a text file the console shows in the page (the rest is a download).
    pub max_text_bytes: u64,
    /// Entries of all the indexes kept in memory together.
    pub cache_entries: u64,
}

impl Default for LayersConfig {
    fn default() -> Self {
        LayersConfig {
            max_entries: 250_000,
            max_uncompressed_bytes: 16 << 30,
            max_index_seconds: 300,
            max_path_bytes: 4096,
            max_path_depth: 256,
            checkpoint_spacing_bytes: 4 << 20,
            max_text_bytes: 256 * 1024,
            cache_entries: 1_000_000,
        }
    }
}

/// Garbage collection: what Berth frees by itself, online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Seconds a blob or manifest must have been unreferenced (and unclaimed by a push) before
    /// it is deleted: longer than any push takes between uploading a layer and putting the
    /// manifest that references it (`--gc-grace`).
    pub grace_seconds: u64,
    /// Seconds after its last write that an upload session is abandoned: it ends and its data
    /// is deleted (`upload_ttl` also names it).
    #[serde(alias = "upload_ttl")]
    pub upload_ttl_seconds: u64,
    /// Seconds the event log keeps a change: a watch (or the console's feed) resumes from a
    /// resourceVersion within it; older ones get 410 Gone and list again. Events webhooks have
    /// not read yet are kept however old.
    pub event_retention_seconds: u64,
    /// Seconds a finished (delivered or failed) webhook delivery is kept, with its attempts.
    pub webhook_delivery_retention_seconds: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_seconds: 3600,
            upload_ttl_seconds: 24 * 3600,
            event_retention_seconds: 7 * 24 * 3600,
            webhook_delivery_retention_seconds: 30 * 24 * 3600,
        }
    }
}

/// Pruning and retention (`server/src/prune/`): how often their schedules are looked at, and
/// how often recorded pulls are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneConfig {
    /// Seconds between looks at the image pruner's and retention policies' schedules (on the
    /// replica holding the `image-pruner` lease).
    pub schedule_check_seconds: u64,
    /// Seconds between writes of the pull times noted in memory (what a crash loses at most).
    pub pull_flush_seconds: u64,
    /// Seconds during which a pushed image is never removed by a retention policy (a push in
    /// progress uploads by digest before it tags).
    pub retention_grace_seconds: u64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            schedule_check_seconds: 30,
            pull_flush_seconds: 60,
            retention_grace_seconds: 3600,
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
            storage: StorageConfig::default(),
            shutdown_timeout: 30,
            log: LogConfig::default(),
            http: HttpConfig::default(),
            registry: RegistryConfig::default(),
            console: ConsoleConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            secrets: SecretsConfig::default(),
            database: DatabaseConfig::default(),
            import: ImportConfig::default(),
            gc: GcConfig::default(),
            prune: PruneConfig::default(),
            webhooks: WebhooksConfig::default(),
            egress: EgressConfig::default(),
            limits: LimitsConfig::default(),
            layers: LayersConfig::default(),
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

    /// Where people reach Berth: the configured public address, else the listen address.
    pub fn base_url(&self, address: SocketAddr) -> String {
        self.auth
            .public_url
            .clone()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{}://{address}", self.scheme()))
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
            check_file("tls.cert", &tls.cert)?;
            check_file("tls.key", &tls.key)?;
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
        self.auth.validate()?;
        self.http.validate()?;
        self.database.validate(&self.data_dir)?;
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
            ("gc.grace_seconds", self.gc.grace_seconds),
            ("gc.upload_ttl_seconds", self.gc.upload_ttl_seconds),
            (
                "gc.event_retention_seconds",
                self.gc.event_retention_seconds,
            ),
            (
                "gc.webhook_delivery_retention_seconds",
                self.gc.webhook_delivery_retention_seconds,
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
        self.egress.validate()?;
        self.storage.validate(&self.data_dir)?;
        if let Some(upstream) = &self.upstream {
            upstream.validate()?;
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
pub(crate) mod tests {
    use super::*;

    /// No overrides: the defaults and the file alone.
    const NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

    /// `berth.toml` in `dir`, holding `text` (for the command line's tests too).
    pub(crate) fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
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
            (
                "[[auth.clients]]\nid = \"berth-console\"\nsecret = \"s\"\nredirect_uri = \"http://127.0.0.1:5001/console/callback\"",
                "\"berth-console\" is the console's own client",
            ),
            ("[storage]\nurl = \"gs://bucket\"", "storage.url"),
            ("[storage]\nredirect = true", "storage.redirect"),
            (
                "[storage.s3]\nendpoint = \"ftp://s3.example\"",
                "storage.s3.endpoint",
            ),
            (
                "[storage.s3]\nendpoint = \"https://key:secret@s3.example\"",
                "storage.s3.endpoint",
            ),
            ("[storage.s3]\nregion = \"\"", "storage.s3.region"),
            ("[storage.s3]\naccess_key_id = \"AKID\"", "storage.s3"),
            ("[storage.s3]\nbucket = \"b\"", "bucket"),
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

/// The settings shipped with the Kubernetes manifests load as they are.
#[cfg(test)]
mod deploy {
    use super::*;

    #[test]
    fn the_kubernetes_config_map_is_a_valid_configuration() {
        let manifest = include_str!("../../../deploy/kubernetes/config.yaml");
        let (_, toml) = manifest
            .split_once("berth.toml: |\n")
            .expect("config.yaml has berth.toml");
        let toml: String = toml
            .lines()
            .map(|line| line.strip_prefix("    ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        // The key file is mounted from the Secret in a pod; here, one of the right form.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secrets.key");
        std::fs::write(&key, format!("{}=\n", "A".repeat(43))).unwrap();
        let toml = toml.replace("/etc/berth/secrets/secrets.key", &key.display().to_string());
        let config = Config::load(Some(&tests::write(&dir, &toml)), &serde_json::json!({}))
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(config.listen.port(), 5000);
        assert!(
            config
                .storage
                .url
                .as_deref()
                .is_some_and(|url| url.starts_with("s3://"))
        );
        assert_eq!(config.database.pool_size, 16);
    }
}
