//! The command line: `berth` and its subcommands (`serve`, `user`, `token`, `migrate`,
//! `import-image`, `adm prune images`), their flags and environment variables (clap reads both; a flag wins over
//! its variable), and how `serve`'s flags override the settings of [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{Config, ConfigError, LogFormat};

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
    /// Bring the metadata database's schema up to date, then exit (replicas also do it at
    /// start, one at a time; run this first to upgrade before starting them).
    Migrate(ServeArgs),
    /// Import images from another registry into an image stream of a running Berth, as
    /// `oc import-image` does (an ImageStreamImport through the API).
    ImportImage(ImportImageArgs),
    /// Cluster administration against a running Berth, as `oc adm` (`berth adm prune images`).
    #[command(subcommand)]
    Adm(AdmCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdmCommand {
    /// Remove old image revisions and unreferenced images.
    #[command(subcommand)]
    Prune(PruneCommand),
}

#[derive(Debug, Subcommand)]
pub enum PruneCommand {
    /// Remove image stream history beyond the newest revisions of each tag and the images no
    /// stream references, as `oc adm prune images` (a dry run unless --confirm); garbage
    /// collection frees their blobs.
    Images(PruneImagesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PruneImagesArgs {
    /// The newest revisions of each tag that stay [default: 3]
    #[arg(long)]
    pub keep_tag_revisions: Option<u32>,
    /// Streams, revisions and images younger than this stay (Go duration: 60m, 1h30m, 24h)
    /// [default: 60m]
    #[arg(long)]
    pub keep_younger_than: Option<String>,
    /// Instead: remove every revision and image larger than its namespace's LimitRange
    /// `openshift.io/Image` max storage, whatever its age
    #[arg(long, conflicts_with_all = ["keep_tag_revisions", "keep_younger_than"])]
    pub prune_over_size_limit: bool,
    /// Include images imported from other registries as candidates (--all=false keeps them)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub all: bool,
    /// Prune only this namespace (its admins may); without it, every namespace (cluster
    /// administrators only)
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Remove what is listed; without it, a dry run
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub confirm: bool,
    /// Berth's address
    #[arg(long, env = "BERTH_SERVER", default_value = "http://127.0.0.1:5000")]
    pub server: String,
    /// A token of a cluster administrator (or of the namespace's admin with --namespace)
    #[arg(long, env = "BERTH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Accept any certificate from Berth (a test server with a self-signed one)
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
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

    /// Metadata database: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE
    /// [default: the data folder's berth.db]
    #[arg(
        long,
        env = "BERTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Where blobs live: file://PATH, or s3://BUCKET/PREFIX reached as `[storage.s3]` and the
    /// standard AWS_* variables (AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, ...) say [default: the data folder]
    #[arg(long, env = "BERTH_STORAGE_URL", value_name = "URL")]
    pub storage_url: Option<String>,

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

    /// Seconds an image or blob must have been unreferenced before garbage collection deletes
    /// it [default: 3600]
    #[arg(long, env = "BERTH_GC_GRACE", value_name = "SECONDS")]
    pub gc_grace: Option<u64>,

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

/// The settings given as flags or variables, each at its dotted path in [`Config`]; absent ones
/// are left out, so they leave the file's values alone (and no empty section stands for a
/// missing one).
fn overrides(args: &ServeArgs) -> serde_json::Value {
    fn value(given: Option<impl Serialize>) -> Option<serde_json::Value> {
        given.and_then(|v| serde_json::to_value(v).ok())
    }
    let nonempty = |list: &[String]| (!list.is_empty()).then(|| list.to_vec());
    let both = args.tls_cert.is_some() && args.tls_key.is_some();
    let oidc = args.oidc_issuer.is_some()
        && args.oidc_client_id.is_some()
        && args.oidc_client_secret.is_some();
    let settings = [
        ("listen", value(args.listen)),
        ("data_dir", value(args.data_dir.as_deref())),
        ("storage.url", value(args.storage_url.as_deref())),
        ("shutdown_timeout", value(args.shutdown_timeout)),
        ("database.url", value(args.database_url.as_deref())),
        ("log.format", value(args.log_format)),
        ("log.level", value(args.log_level.as_deref())),
        (
            "http.trusted_proxies",
            value(nonempty(&args.trusted_proxies)),
        ),
        (
            "http.header_read_timeout_seconds",
            value(args.header_read_timeout),
        ),
        ("gc.grace_seconds", value(args.gc_grace)),
        (
            "registry.max_manifest_bytes",
            value(args.max_manifest_bytes),
        ),
        (
            "registry.hostname",
            value(args.registry_hostname.as_deref()),
        ),
        (
            "registry.public_hostname",
            value(args.public_hostname.as_deref()),
        ),
        ("console.site_dir", value(args.site_dir.as_deref())),
        (
            "auth.bootstrap_password",
            value(args.bootstrap_password.as_deref()),
        ),
        ("auth.htpasswd_file", value(args.htpasswd_file.as_deref())),
        ("auth.public_url", value(args.public_url.as_deref())),
        (
            "auth.oidc.issuer",
            value(args.oidc_issuer.as_deref().filter(|_| oidc)),
        ),
        (
            "auth.oidc.client_id",
            value(args.oidc_client_id.as_deref().filter(|_| oidc)),
        ),
        (
            "auth.oidc.client_secret",
            value(args.oidc_client_secret.as_deref().filter(|_| oidc)),
        ),
        ("tls.cert", value(args.tls_cert.as_deref().filter(|_| both))),
        ("tls.key", value(args.tls_key.as_deref().filter(|_| both))),
        ("secrets.key_file", value(args.secrets_key_file.as_deref())),
        (
            "import.scheduled_interval_seconds",
            value(args.scheduled_import_interval),
        ),
        (
            "webhooks.retry_base_millis",
            value(args.webhook_retry_base_millis),
        ),
        ("egress.allow", value(nonempty(&args.egress_allow))),
        ("egress.ca_file", value(args.egress_ca_file.as_deref())),
        ("limits.watch_max_seconds", value(args.watch_max_seconds)),
        (
            "limits.watches_per_subject",
            value(args.watches_per_subject),
        ),
        ("limits.watches_total", value(args.watches_total)),
        ("upstream.api_url", value(args.upstream_api.as_deref())),
        (
            "upstream.registry_url",
            value(args.upstream_registry.as_deref()),
        ),
        ("upstream.ca_file", value(args.upstream_ca_file.as_deref())),
        (
            "upstream.client_id",
            value(args.upstream_client_id.as_deref()),
        ),
        (
            "upstream.client_secret",
            value(args.upstream_client_secret.as_deref()),
        ),
    ];
    let mut root = serde_json::Map::new();
    for (path, given) in settings {
        let Some(given) = given else { continue };
        let (sections, key) = path.rsplit_once('.').unwrap_or(("", path));
        let mut table = &mut root;
        for section in sections.split('.').filter(|s| !s.is_empty()) {
            let entry = table
                .entry(section)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            let serde_json::Value::Object(inner) = entry else {
                unreachable!("only sections are made on the way")
            };
            table = inner;
        }
        table.insert(key.to_owned(), given);
    }
    serde_json::Value::Object(root)
}

impl ServeArgs {
    /// The settings: defaults, then the file named by `--config`, then these flags and
    /// variables.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let oidc_flags = [
            &self.oidc_issuer,
            &self.oidc_client_id,
            &self.oidc_client_secret,
        ];
        if oidc_flags.iter().any(|f| f.is_some()) && !oidc_flags.iter().all(|f| f.is_some()) {
            return Err(ConfigError::Invalid {
                field: "auth.oidc",
                reason: "--oidc-issuer, --oidc-client-id and --oidc-client-secret go together"
                    .into(),
            });
        }
        Config::load(self.config.as_deref(), &overrides(self))
    }
}

/// What `berth serve` prints once it listens at `addr`: where the console is and, when Berth is
/// the registry, how to sign in and push (anonymous pushes are refused, so the push lines only
/// work after the `podman login`, which skopeo reads too).
pub fn start_message(config: &Config, addr: SocketAddr) -> String {
    let scheme = config.scheme();
    let mut lines = vec![
        format!("Berth listening on {scheme}://{addr}/"),
        format!("  console:  {scheme}://{addr}/"),
    ];
    if let Some(upstream) = &config.upstream {
        lines.push(format!(
            "  in front of the cluster at {} (its registry: {})",
            upstream.api_url, upstream.registry_url
        ));
        return lines.join("\n");
    }
    let (podman, skopeo) = if scheme == "https" {
        lines.push(format!("  registry: {addr}"));
        ("", "")
    } else {
        lines.push(format!(
            "  registry: {addr} (plain HTTP: tell clients it is insecure)"
        ));
        ("--tls-verify=false ", "--dest-tls-verify=false ")
    };
    let admin = &config.auth.bootstrap_admin;
    lines.extend([
        format!("  sign in:  podman login {podman}-u {admin} {addr}   (or -u any -p <personal token>)"),
        format!("  push:     podman push {podman}IMAGE {addr}/myproject/app:latest"),
        format!("            skopeo copy {skopeo}docker://docker.io/library/busybox:latest docker://{addr}/myproject/busybox:latest"),
    ]);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_message_signs_in_before_it_pushes() {
        let config = Config::default();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let message = start_message(&config, addr);
        let login = message
            .find("podman login --tls-verify=false -u admin 127.0.0.1:5000")
            .expect("a sign-in line");
        let push = message
            .find("podman push --tls-verify=false IMAGE 127.0.0.1:5000/myproject/app:latest")
            .expect("a push line");
        assert!(login < push, "{message}");
    }
    use crate::config::decode_secrets_key;
    use crate::config::tests::write;

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
        let config = args.load_config().unwrap();
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/override"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.registry.max_manifest_bytes, 4 * 1024 * 1024);
        assert_eq!(
            ServeArgs::default().load_config().unwrap(),
            Config::default()
        );
    }

    #[test]
    fn every_flag_lands_in_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "");
        let key_file = dir.path().join("secrets.key");
        std::fs::write(&key_file, format!("{}=\n", "A".repeat(43))).unwrap();
        let given = |text: &str| Some(text.to_owned());
        let args = ServeArgs {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            data_dir: Some("/srv/data".into()),
            storage_url: given("s3://registry/berth"),
            shutdown_timeout: Some(7),
            database_url: given("postgres://berth@db.example/berth"),
            log_format: Some(LogFormat::Json),
            log_level: given("debug"),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            header_read_timeout: Some(11),
            gc_grace: Some(17),
            max_manifest_bytes: Some(12),
            registry_hostname: given("registry.example"),
            public_hostname: given("public.example"),
            site_dir: Some("/srv/site".into()),
            bootstrap_password: given("bootstrap-password"),
            htpasswd_file: Some(file.clone()),
            public_url: given("https://berth.example"),
            oidc_issuer: given("https://issuer.example"),
            oidc_client_id: given("berth"),
            oidc_client_secret: given("oidc-secret"),
            tls_cert: Some(file.clone()),
            tls_key: Some(file.clone()),
            secrets_key_file: Some(key_file.clone()),
            scheduled_import_interval: Some(13),
            webhook_retry_base_millis: Some(14),
            egress_allow: vec!["192.168.0.0/16".into()],
            egress_ca_file: Some(file.clone()),
            watch_max_seconds: Some(15),
            watches_per_subject: Some(16),
            watches_total: Some(17),
            upstream_api: given("https://api.cluster.example"),
            upstream_registry: given("https://registry.cluster.example"),
            upstream_ca_file: Some(file.clone()),
            upstream_client_id: given("console"),
            upstream_client_secret: given("upstream-secret"),
            ..Default::default()
        };
        let config = args.load_config().unwrap();
        let json = serde_json::to_value(&config).unwrap();
        let at = |path: &str| json.pointer(path).cloned().unwrap_or_default();
        let file = serde_json::json!(file);
        for (path, expected) in [
            ("/listen", serde_json::json!("127.0.0.1:7000")),
            ("/data_dir", serde_json::json!("/srv/data")),
            ("/storage/url", serde_json::json!("s3://registry/berth")),
            ("/shutdown_timeout", serde_json::json!(7)),
            (
                "/database/url",
                serde_json::json!("postgres://berth@db.example/berth"),
            ),
            ("/log/format", serde_json::json!("json")),
            ("/log/level", serde_json::json!("debug")),
            ("/http/trusted_proxies", serde_json::json!(["10.0.0.0/8"])),
            ("/http/header_read_timeout_seconds", serde_json::json!(11)),
            ("/gc/grace_seconds", serde_json::json!(17)),
            ("/registry/max_manifest_bytes", serde_json::json!(12)),
            ("/registry/hostname", serde_json::json!("registry.example")),
            (
                "/registry/public_hostname",
                serde_json::json!("public.example"),
            ),
            ("/console/site_dir", serde_json::json!("/srv/site")),
            (
                "/auth/bootstrap_password",
                serde_json::json!("bootstrap-password"),
            ),
            ("/auth/htpasswd_file", file.clone()),
            (
                "/auth/public_url",
                serde_json::json!("https://berth.example"),
            ),
            (
                "/auth/oidc/issuer",
                serde_json::json!("https://issuer.example"),
            ),
            ("/auth/oidc/client_id", serde_json::json!("berth")),
            ("/auth/oidc/client_secret", serde_json::json!("oidc-secret")),
            ("/tls/cert", file.clone()),
            ("/tls/key", file.clone()),
            ("/secrets/key_file", serde_json::json!(key_file)),
            ("/import/scheduled_interval_seconds", serde_json::json!(13)),
            ("/webhooks/retry_base_millis", serde_json::json!(14)),
            ("/egress/allow", serde_json::json!(["192.168.0.0/16"])),
            ("/egress/ca_file", file.clone()),
            ("/limits/watch_max_seconds", serde_json::json!(15)),
            ("/limits/watches_per_subject", serde_json::json!(16)),
            ("/limits/watches_total", serde_json::json!(17)),
            (
                "/upstream/api_url",
                serde_json::json!("https://api.cluster.example"),
            ),
            (
                "/upstream/registry_url",
                serde_json::json!("https://registry.cluster.example"),
            ),
            ("/upstream/ca_file", file.clone()),
            ("/upstream/client_id", serde_json::json!("console")),
            (
                "/upstream/client_secret",
                serde_json::json!("upstream-secret"),
            ),
        ] {
            assert_eq!(at(path), expected, "{path}");
        }
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[http]\ntrusted_proxies = [\"10.0.0.0/8\"]\n");
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let config = from_file.load_config().unwrap();
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
        let config = flags.load_config().unwrap();
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
        let config = from_file.load_config().unwrap();
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
        let config = args.load_config().unwrap();
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
            let err = with_key.load_config().unwrap_err().to_string();
            assert!(
                err.starts_with("secrets.key_file: ") && err.contains(reason),
                "{text:?} gave {err:?}"
            );
        }
        std::fs::remove_file(&key).unwrap();
        let err = with_key.load_config().unwrap_err().to_string();
        assert!(
            err.contains("secrets.key_file") && err.contains("cannot be read"),
            "{err}"
        );

        let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        std::fs::write(&key, format!("{encoded}\n")).unwrap();
        assert_eq!(with_key.load_config().unwrap().secrets_key_path(), key);
        let file = write(
            &dir,
            &format!("[secrets]\nkey_file = {:?}\n", key.display()),
        );
        let from_file = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert_eq!(from_file.load_config().unwrap().secrets_key_path(), key);
        assert_eq!(decode_secrets_key(&encoded), Ok([7u8; 32]));
        // Not configured: a key in the data folder.
        assert_eq!(
            Config::default().secrets_key_path(),
            std::path::Path::new("data").join("secrets.key")
        );
    }
}
