//! Credentials for other registries, per namespace ("pull secrets"): Kubernetes Secrets of type
//! `kubernetes.io/dockerconfigjson`, as `oc create secret docker-registry` makes them, served at
//! `/api/v1/namespaces/{ns}/secrets`.
//!
//! - At rest the Docker config.json is encrypted with XChaCha20-Poly1305 under a 32-byte key kept
//!   in a file apart from the database (`[secrets] key_file`, else `<data_dir>/secrets.key`,
//!   made on first start), with a random 24-byte nonce per secret and `namespace/name` as
//!   associated data, so a ciphertext copied to another secret does not decrypt. The registries
//!   a secret has credentials for are kept in the clear beside it, so a lookup decrypts one
//!   secret only.
//! - The data is never shown again once stored: the API answers with metadata, the type and the
//!   registries (annotation `berth.io/registries`).
//! - Managing secrets (list, get, create, delete) is the namespace admin's: `manage-access` on
//!   the namespace, decided by the one authorizer through [`ImageStreamApi::require`].
//! - Imports ask [`RegistrySecrets::credentials_for`] for a registry's user name and password;
//!   it checks no permission (the import checks the caller may import into the namespace).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target};
use crate::imagestream::ImageStreamApi;
use crate::kube::ApiJson;
use crate::kube::{ApiError, ApiResult, FieldError, SECRETS, deleted};
use crate::kube::{CORE_API_VERSION, List, ListMeta, ObjectMeta, Secret, Status};
use crate::storage::StorageError;
use crate::storage::auth::NewAudit;
use crate::storage::secrets::{RegistrySecretRecord, RegistrySecretStore};

/// The only secret type Berth keeps.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The key of the Docker config.json in `data` and `stringData`.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";
/// The annotation listing the registries a secret has credentials for: `"docker.io,quay.io"`.
pub const REGISTRIES_ANNOTATION: &str = "berth.io/registries";
/// Docker Hub, whatever name it is given (`index.docker.io`, `registry-1.docker.io`,
/// `https://index.docker.io/v1/`).
pub const DOCKER_HUB: &str = "docker.io";
/// Largest Docker config accepted, as Kubernetes limits a secret.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;
const NONCE_BYTES: usize = 24;

// ---- the key ----------------------------------------------------------------------------------

/// The 32-byte key of registry secrets. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

/// Why the key file cannot be used; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("secrets.key_file: {} {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("secrets.key_file: writing a new key to {} failed: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Self {
        let generated = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut key = [0u8; 32];
        key.copy_from_slice(&generated);
        SecretsKey(key)
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        SecretsKey(key)
    }

    /// Reads the key file at `path` (32 bytes in base64). When it does not exist and `create`
    /// is set, a new random key is written there first, readable by its owner only; if another
    /// process makes it at the same moment, theirs is kept and read.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, KeyFileError> {
        let invalid = |reason: String| KeyFileError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && create => {
                write_new_key(path).map_err(|source| KeyFileError::Write {
                    path: path.to_owned(),
                    source,
                })?;
                tracing::info!(path = %path.display(), "made a new key for registry secrets");
                std::fs::read_to_string(path)
                    .map_err(|err| invalid(format!("cannot be read: {err}")))?
            }
            Err(err) => return Err(invalid(format!("cannot be read: {err}"))),
        };
        warn_if_others_may_read(path);
        crate::config::decode_secrets_key(&text)
            .map(SecretsKey)
            .map_err(invalid)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Encrypts `plaintext` for secret `name` of `namespace`: (nonce, ciphertext).
    pub fn seal(
        &self,
        namespace: &str,
        name: &str,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), SecretsError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(namespace, name);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Encrypt)?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// Decrypts a stored secret; fails unless it was sealed with this key for this namespace
    /// and name.
    pub fn open(&self, record: &RegistrySecretRecord) -> Result<Vec<u8>, SecretsError> {
        if record.nonce.len() != NONCE_BYTES {
            return Err(SecretsError::Corrupt {
                namespace: record.namespace.clone(),
                name: record.name.clone(),
                reason: format!("a nonce of {} bytes", record.nonce.len()),
            });
        }
        let aad = associated_data(&record.namespace, &record.name);
        self.cipher()
            .decrypt(
                XNonce::from_slice(&record.nonce),
                Payload {
                    msg: &record.ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Undecryptable {
                namespace: record.namespace.clone(),
                name: record.name.clone(),
            })
    }
}

/// What binds a ciphertext to its secret (neither part can contain `/`).
fn associated_data(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Writes a new key to a file beside `path`, then links it into place, which fails when `path`
/// exists: a half-written key is never seen, and two processes agree on one key.
fn write_new_key(path: &Path) -> std::io::Result<()> {
    let key = SecretsKey::generate();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets.key".into());
    let temp = path.with_file_name(format!(".{file_name}.{}", uuid::Uuid::new_v4()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(format!("{}\n", STANDARD.encode(key.0)).as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = std::fs::File::open(folder).and_then(|f| f.sync_all());
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

fn warn_if_others_may_read(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the key of registry secrets is readable by others; `chmod 600` it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Why registry credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "registry secret {namespace}/{name} cannot be decrypted: it was stored under another key (secrets.key_file), or altered"
    )]
    Undecryptable { namespace: String, name: String },
    #[error("registry secret {namespace}/{name} is corrupt: {reason}")]
    Corrupt {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("encrypting a registry secret failed")]
    Encrypt,
}

/// For the API: a secret that cannot be read is the server's fault (a 500, its cause logged).
impl From<SecretsError> for ApiError {
    fn from(err: SecretsError) -> Self {
        match err {
            SecretsError::Storage(err) => ApiError::internal(err),
            other => ApiError::internal(other),
        }
    }
}

// ---- Docker config.json -----------------------------------------------------------------------

/// A registry's user name and password (or token).
pub type Credentials = (String, String);

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuthEntry>,
}

#[derive(Deserialize)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `host[:port]` of a registry as written in a config.json or a pull spec, lowercase, without
/// a scheme or path; Docker Hub's names become `docker.io`. `None` when it names no host.
pub fn normalize_registry_host(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or_default();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    if !valid {
        return None;
    }
    Some(match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        other => other.to_owned(),
    })
}

/// Base64 with or without padding, as tools write `auth`.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn entry_credentials(entry: &DockerAuthEntry) -> Result<Credentials, String> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let text = LENIENT_BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("\"auth\" is not base64 of user:password")?;
        let (user, password) = text
            .split_once(':')
            .ok_or("\"auth\" is not base64 of user:password")?;
        if user.is_empty() {
            return Err("\"auth\" has an empty user name".into());
        }
        return Ok((user.to_owned(), password.to_owned()));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) if !user.is_empty() => Ok((user.clone(), password.clone())),
        _ => Err(
            "has neither \"auth\" nor \"username\" and \"password\" (identity tokens and credential helpers are not supported)"
                .into(),
        ),
    }
}

/// The credentials of a Docker config.json (`{"auths": {"host": {"auth": base64(user:pass)}}}`,
/// or `{"username": ..., "password": ...}` in place of `auth`), by normalised registry host.
/// The error says what is wrong, for a field cause.
pub fn parse_docker_config(bytes: &[u8]) -> Result<BTreeMap<String, Credentials>, String> {
    let not_config = |err: String| format!("is not a Docker config.json: {err}");
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| not_config(err.to_string()))?;
    if !value.is_object() {
        return Err(not_config("not a JSON object".into()));
    }
    let config: DockerConfigFile =
        serde_json::from_value(value).map_err(|err| not_config(err.to_string()))?;
    if config.auths.is_empty() {
        return Err("has no credentials: \"auths\" is missing or empty".into());
    }
    let mut found = BTreeMap::new();
    for (registry, entry) in &config.auths {
        let host = normalize_registry_host(registry)
            .ok_or_else(|| format!("auths: {registry:?} is not a registry host"))?;
        let credentials =
            entry_credentials(entry).map_err(|why| format!("auths[{registry}] {why}"))?;
        if let Some(previous) = found.insert(host.clone(), credentials.clone())
            && previous != credentials
        {
            return Err(format!(
                "auths: {registry:?} names {host} again, with other credentials"
            ));
        }
    }
    Ok(found)
}

/// A pull secret as `oc create secret docker-registry NAME --docker-server=REGISTRY
/// --docker-username=USERNAME --docker-password=PASSWORD` makes it: a Docker config.json with
/// `auths.{host}.auth` = base64(`username:password`), the host normalised. The name is left to
/// whoever stores it to check; the field at fault is named as the console's form names it.
pub fn pull_secret(
    name: &str,
    registry: &str,
    username: &str,
    password: &str,
) -> ApiResult<Secret> {
    let name = name.trim();
    let invalid = |field: &str, message: String| {
        ApiError::invalid(SECRETS, name, FieldError::new(field, message))
    };
    let host = normalize_registry_host(registry).ok_or_else(|| {
        invalid(
            "registry",
            format!(
                "{:?} is not a registry host: a host name with an optional port, such as quay.io or 127.0.0.1:5000",
                registry.trim()
            ),
        )
    })?;
    let username = username.trim();
    if username.is_empty() {
        return Err(invalid("username", "Required value".into()));
    }
    if username.contains(':') {
        return Err(invalid(
            "username",
            "cannot contain ':' (the Docker config joins the user name and password with it)"
                .into(),
        ));
    }
    if password.is_empty() {
        return Err(invalid("password", "Required value".into()));
    }
    let config = serde_json::json!({
        "auths": {host: {"auth": STANDARD.encode(format!("{username}:{password}"))}}
    });
    Ok(Secret {
        kind: crate::kube::kinds::secret(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: name.to_owned(),
            ..ObjectMeta::default()
        },
        secret_type: DOCKER_CONFIG_JSON.to_owned(),
        data: BTreeMap::from([(
            DOCKER_CONFIG_KEY.to_owned(),
            STANDARD.encode(config.to_string()),
        )]),
        string_data: BTreeMap::new(),
    })
}

/// The registries a pull secret has credentials for: its `berth.io/registries` annotation when
/// it has one (Berth's answers), else the hosts of its config.json's `auths` (a cluster's
/// answers carry the data). Only host names are read out of the data; a config that cannot be
/// read names none.
pub fn secret_registries(secret: &Secret) -> Vec<String> {
    if let Some(listed) = secret.metadata.annotations.get(REGISTRIES_ANNOTATION) {
        return listed
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(str::to_owned)
            .collect();
    }
    #[derive(Deserialize)]
    struct Hosts {
        #[serde(default)]
        auths: BTreeMap<String, serde::de::IgnoredAny>,
    }
    let hosts = secret
        .data
        .get(DOCKER_CONFIG_KEY)
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|config| serde_json::from_slice::<Hosts>(&config).ok())
        .map(|config| config.auths)
        .unwrap_or_default();
    let hosts: std::collections::BTreeSet<String> = hosts
        .keys()
        .map(|key| normalize_registry_host(key).unwrap_or_else(|| key.clone()))
        .collect();
    hosts.into_iter().collect()
}

/// Kubernetes object names (DNS-1123 subdomains): dot-separated labels of lowercase letters,
/// digits and `-`, each starting and ending with a letter or digit, 253 characters at most.
fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The Docker config of a secret in a request, from `stringData` (which wins, as in
/// Kubernetes) or `data`, with the field it came from; or the field at fault and why.
fn docker_config(secret: &Secret) -> Result<(String, Vec<u8>), FieldError> {
    let data_field = format!("data[{DOCKER_CONFIG_KEY}]");
    let string_field = format!("stringData[{DOCKER_CONFIG_KEY}]");
    if let Some(key) = secret.data.keys().find(|k| *k != DOCKER_CONFIG_KEY) {
        return Err(FieldError::new(
            format!("data[{key}]"),
            format!("a {DOCKER_CONFIG_JSON} secret holds {DOCKER_CONFIG_KEY} only"),
        ));
    }
    if let Some(key) = secret.string_data.keys().find(|k| *k != DOCKER_CONFIG_KEY) {
        return Err(FieldError::new(
            format!("stringData[{key}]"),
            format!("a {DOCKER_CONFIG_JSON} secret holds {DOCKER_CONFIG_KEY} only"),
        ));
    }
    let (field, config) = match (
        secret.string_data.get(DOCKER_CONFIG_KEY),
        secret.data.get(DOCKER_CONFIG_KEY),
    ) {
        (Some(text), _) => (string_field, text.as_bytes().to_vec()),
        (None, Some(encoded)) => {
            let config = STANDARD.decode(encoded.trim()).map_err(|err| {
                FieldError::new(&data_field, format!("is not valid base64: {err}"))
            })?;
            (data_field, config)
        }
        (None, None) => {
            return Err(FieldError::new(
                data_field,
                "Required value: a Docker config.json in base64 (or as text in stringData)",
            ));
        }
    };
    if config.len() > MAX_CONFIG_BYTES {
        return Err(FieldError::new(
            field,
            format!("Too long: must have at most {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok((field, config))
}

/// A stored secret as the API shows it: never its data.
fn secret_object(record: &RegistrySecretRecord) -> Secret {
    Secret {
        kind: crate::kube::kinds::secret(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            creation_timestamp: Some(record.created_at),
            annotations: BTreeMap::from([(
                REGISTRIES_ANNOTATION.to_owned(),
                record.hosts.join(","),
            )]),
            ..ObjectMeta::default()
        },
        secret_type: record.secret_type.clone(),
        data: BTreeMap::new(),
        string_data: BTreeMap::new(),
    }
}

// ---- the service ------------------------------------------------------------------------------

/// Registry secrets of every namespace: the API's rules, and credentials for imports.
pub struct RegistrySecrets {
    store: Arc<dyn RegistrySecretStore>,
    key: SecretsKey,
    /// Namespaces, and the decision function with its Forbidden answer, as the image stream
    /// API has them.
    image_streams: Arc<ImageStreamApi>,
}

impl RegistrySecrets {
    pub fn new(
        store: Arc<dyn RegistrySecretStore>,
        key: SecretsKey,
        image_streams: Arc<ImageStreamApi>,
    ) -> Self {
        RegistrySecrets {
            store,
            key,
            image_streams,
        }
    }

    async fn require_admin(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<()> {
        self.image_streams
            .require_namespace_admin(who, namespace, SECRETS, name)
            .await
    }

    async fn audit(&self, who: &Subject, action: &'static str, target: String, detail: String) {
        self.image_streams
            .auth
            .audit(NewAudit {
                actor: who.display_name(),
                action,
                target,
                success: true,
                address: None,
                detail: Some(detail),
            })
            .await;
    }

    /// Stores a secret of type `kubernetes.io/dockerconfigjson`, encrypted; answers with the
    /// secret without its data, which is never shown again.
    pub async fn create(
        &self,
        who: &Subject,
        namespace: &str,
        secret: Secret,
    ) -> ApiResult<Secret> {
        let name = secret.metadata.name.clone();
        self.image_streams.auth.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            SECRETS,
            &name,
        )?;
        if let Some(given) = secret.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        self.image_streams.require_namespace(namespace).await?;
        let invalid = |cause: FieldError| ApiError::invalid(SECRETS, &name, cause);
        if !is_valid_secret_name(&name) {
            return Err(invalid(FieldError::new(
                "metadata.name",
                format!(
                    "{name:?} is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
                ),
            )));
        }
        if secret.secret_type != DOCKER_CONFIG_JSON {
            let given = if secret.secret_type.is_empty() {
                "Opaque"
            } else {
                &secret.secret_type
            };
            return Err(invalid(FieldError::new(
                "type",
                format!(
                    "Unsupported value: {given:?}: Berth keeps registry credentials only, of type {DOCKER_CONFIG_JSON:?}"
                ),
            )));
        }
        let (field, config) = docker_config(&secret).map_err(invalid)?;
        let credentials =
            parse_docker_config(&config).map_err(|why| invalid(FieldError::new(&field, why)))?;
        let hosts: Vec<String> = credentials.into_keys().collect();
        let (nonce, ciphertext) = self.key.seal(namespace, &name, &config)?;
        let record = RegistrySecretRecord {
            namespace: namespace.to_owned(),
            name: name.clone(),
            secret_type: DOCKER_CONFIG_JSON.to_owned(),
            nonce,
            ciphertext,
            hosts,
            created_at: Utc::now(),
        };
        if !self.store.put_registry_secret(&record).await? {
            return Err(ApiError::AlreadyExists {
                resource: SECRETS,
                name,
            });
        }
        self.audit(
            who,
            "secret-create",
            format!("{namespace}/{name}"),
            record.hosts.join(","),
        )
        .await;
        Ok(secret_object(&record))
    }

    /// The namespace's secrets, without their data.
    pub async fn list(&self, who: &Subject, namespace: &str) -> ApiResult<List<Secret>> {
        self.require_admin(who, namespace, "").await?;
        let records = self.store.registry_secrets(namespace).await?;
        Ok(List {
            kind: "SecretList",
            api_version: CORE_API_VERSION,
            metadata: ListMeta::default(),
            items: records.iter().map(secret_object).collect(),
        })
    }

    /// One secret, without its data.
    pub async fn get(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Secret> {
        self.require_admin(who, namespace, name).await?;
        self.store
            .registry_secret(namespace, name)
            .await?
            .map(|record| secret_object(&record))
            .ok_or_else(|| ApiError::not_found(SECRETS, name))
    }

    pub async fn delete(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Status> {
        self.require_admin(who, namespace, name).await?;
        if !self.store.delete_registry_secret(namespace, name).await? {
            return Err(ApiError::not_found(SECRETS, name));
        }
        self.audit(
            who,
            "secret-delete",
            format!("{namespace}/{name}"),
            String::new(),
        )
        .await;
        Ok(deleted(SECRETS, name))
    }

    /// The user name and password a secret of `namespace` holds for `registry_host` (a host
    /// with an optional port, scheme or path; Docker Hub by any of its names); the newest
    /// secret wins when several have some. Checks no permission: the import that asks does.
    pub async fn credentials_for(
        &self,
        namespace: &str,
        registry_host: &str,
    ) -> Result<Option<Credentials>, SecretsError> {
        let Some(host) = normalize_registry_host(registry_host) else {
            return Ok(None);
        };
        let secrets = self.store.registry_secrets(namespace).await?;
        let Some(newest) = secrets
            .iter()
            .filter(|s| s.hosts.contains(&host))
            .max_by_key(|s| s.created_at)
        else {
            return Ok(None);
        };
        let corrupt = |reason: String| SecretsError::Corrupt {
            namespace: newest.namespace.clone(),
            name: newest.name.clone(),
            reason,
        };
        let config = self.key.open(newest)?;
        let mut credentials = parse_docker_config(&config).map_err(corrupt)?;
        credentials
            .remove(&host)
            .map(Some)
            .ok_or_else(|| corrupt(format!("it is listed for {host}, its config.json is not")))
    }
}

// ---- routes -----------------------------------------------------------------------------------

type Secrets = State<Arc<RegistrySecrets>>;

fn respond<T: Serialize>(status: StatusCode, result: ApiResult<T>) -> Response {
    match result {
        Ok(value) => (status, axum::Json(value)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn list_secrets(
    State(secrets): Secrets,
    caller: Caller,
    axum::extract::Path(namespace): axum::extract::Path<String>,
) -> Response {
    respond(
        StatusCode::OK,
        secrets.list(&caller.subject, &namespace).await,
    )
}

async fn create_secret(
    State(secrets): Secrets,
    caller: Caller,
    axum::extract::Path(namespace): axum::extract::Path<String>,
    ApiJson(body): ApiJson<Secret>,
) -> Response {
    respond(
        StatusCode::CREATED,
        secrets.create(&caller.subject, &namespace, body).await,
    )
}

async fn get_secret(
    State(secrets): Secrets,
    caller: Caller,
    axum::extract::Path((namespace, name)): axum::extract::Path<(String, String)>,
) -> Response {
    respond(
        StatusCode::OK,
        secrets.get(&caller.subject, &namespace, &name).await,
    )
}

async fn delete_secret(
    State(secrets): Secrets,
    caller: Caller,
    axum::extract::Path((namespace, name)): axum::extract::Path<(String, String)>,
) -> Response {
    respond(
        StatusCode::OK,
        secrets.delete(&caller.subject, &namespace, &name).await,
    )
}

/// `GET/POST /api/v1/namespaces/{ns}/secrets`, `GET/DELETE /api/v1/namespaces/{ns}/secrets/{name}`.
pub fn router(secrets: Arc<RegistrySecrets>) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/secrets",
            get(list_secrets).post(create_secret),
        )
        .route(
            "/api/v1/namespaces/{namespace}/secrets/{name}",
            get(get_secret).delete(delete_secret),
        )
        .with_state(secrets)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::credentials::RegistryTokens;
    use crate::auth::{AuthContext, Authorizer};
    use crate::config::auth::NamespaceCreation;
    use crate::storage::auth::{AuthStore, BindingRecord};
    use crate::storage::sqlite::SqliteMetadata;
    use crate::storage::{ImageStreamStore, Labels};

    fn config_json(auths: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        STANDARD.encode(format!("{user}:{password}"))
    }

    #[test]
    fn registry_hosts_are_normalised() {
        for (written, host) in [
            ("quay.io", Some("quay.io")),
            ("Quay.IO", Some("quay.io")),
            ("https://quay.io", Some("quay.io")),
            ("http://localhost:5000/v2/", Some("localhost:5000")),
            (
                "registry.example.com:8443/some/path",
                Some("registry.example.com:8443"),
            ),
            ("[::1]:5000", Some("[::1]:5000")),
            ("docker.io", Some("docker.io")),
            ("index.docker.io", Some("docker.io")),
            ("registry-1.docker.io", Some("docker.io")),
            ("https://index.docker.io/v1/", Some("docker.io")),
            ("https://registry-1.docker.io/v2/", Some("docker.io")),
            // Docker Hub's names only: another port is another registry.
            ("docker.io:5000", Some("docker.io:5000")),
            ("", None),
            ("https://", None),
            ("user@quay.io", None),
            ("two words", None),
        ] {
            assert_eq!(
                normalize_registry_host(written).as_deref(),
                host,
                "{written:?}"
            );
        }
    }

    #[test]
    fn docker_configs_with_auth_or_username_and_password() {
        let config = config_json(serde_json::json!({
            "https://index.docker.io/v1/": {"auth": basic("hubuser", "hub:pass"), "email": "a@b.c"},
            "quay.io": {"username": "robot+ci", "password": "quay-token"},
            // Unpadded base64, as some tools write it.
            "http://localhost:5000": {"auth": STANDARD.encode("u:p").trim_end_matches('=')},
        }));
        let parsed = parse_docker_config(&config).unwrap();
        assert_eq!(
            parsed,
            BTreeMap::from([
                ("docker.io".into(), ("hubuser".into(), "hub:pass".into())),
                ("localhost:5000".into(), ("u".into(), "p".into())),
                ("quay.io".into(), ("robot+ci".into(), "quay-token".into())),
            ])
        );
        // `auth` wins over username and password, as in Docker.
        let both = config_json(serde_json::json!({
            "quay.io": {"auth": basic("a", "b"), "username": "c", "password": "d"},
        }));
        assert_eq!(
            parse_docker_config(&both).unwrap()["quay.io"],
            ("a".into(), "b".into())
        );

        for (bad, expected) in [
            (b"{not json".to_vec(), "is not a Docker config.json"),
            (b"[]".to_vec(), "is not a Docker config.json"),
            (b"{}".to_vec(), "has no credentials"),
            (config_json(serde_json::json!({})), "has no credentials"),
            (
                config_json(serde_json::json!({"quay.io": {"auth": "!!!"}})),
                "auths[quay.io] \"auth\" is not base64",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"auth": STANDARD.encode("nocolon")}})),
                "not base64 of user:password",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"identitytoken": "t"}})),
                "has neither",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"username": "u"}})),
                "has neither",
            ),
            (
                config_json(serde_json::json!({"not a host": {"auth": basic("u", "p")}})),
                "is not a registry host",
            ),
            (
                config_json(serde_json::json!({
                    "docker.io": {"auth": basic("u", "p")},
                    "index.docker.io": {"auth": basic("v", "q")},
                })),
                "names docker.io again",
            ),
        ] {
            let err = parse_docker_config(&bad).unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }

    #[test]
    fn the_console_form_makes_a_docker_config_and_rows_name_only_hosts() {
        let secret = pull_secret(" quay ", "https://Quay.io/v2/", "robot", "p:a:ss").unwrap();
        assert_eq!(secret.metadata.name, "quay");
        assert_eq!(secret.secret_type, DOCKER_CONFIG_JSON);
        let config = STANDARD.decode(&secret.data[DOCKER_CONFIG_KEY]).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(value["auths"]["quay.io"]["auth"], basic("robot", "p:a:ss"));
        assert_eq!(
            parse_docker_config(&config).unwrap()["quay.io"],
            ("robot".into(), "p:a:ss".into())
        );
        // A cluster's answer carries the data: the hosts are read from it, nothing else.
        assert_eq!(secret_registries(&secret), ["quay.io"]);
        let local = pull_secret("local", "127.0.0.1:5000", "u", "p").unwrap();
        assert_eq!(secret_registries(&local), ["127.0.0.1:5000"]);
        // Berth's answers have no data, and the annotation.
        let mut annotated = secret_object(&record("team", "quay", (vec![0; 24], Vec::new())));
        annotated
            .metadata
            .annotations
            .insert(REGISTRIES_ANNOTATION.into(), "docker.io, quay.io,".into());
        assert_eq!(secret_registries(&annotated), ["docker.io", "quay.io"]);
        let mut unreadable = secret.clone();
        unreadable
            .data
            .insert(DOCKER_CONFIG_KEY.into(), "not base64!".into());
        assert!(secret_registries(&unreadable).is_empty());

        for (registry, user, password, field) in [
            ("not a host", "u", "p", "registry: "),
            ("", "u", "p", "registry: "),
            ("quay.io", " ", "p", "username: Required"),
            ("quay.io", "a:b", "p", "username: cannot contain ':'"),
            ("quay.io", "u", "", "password: Required"),
        ] {
            let err = pull_secret("s", registry, user, password).unwrap_err();
            assert!(
                matches!(err, ApiError::Invalid { .. }) && err.to_string().contains(field),
                "{err} lacks {field:?}"
            );
        }
    }

    #[test]
    fn secret_names_are_kubernetes_names() {
        for good in ["quay", "quay-io", "pull.secret-2", "a"] {
            assert!(is_valid_secret_name(good), "{good}");
        }
        for bad in [
            "",
            "Quay",
            "-quay",
            "quay-",
            "a..b",
            "a/b",
            "a_b",
            &"a".repeat(254),
        ] {
            assert!(!is_valid_secret_name(bad), "{bad}");
        }
    }

    fn record(namespace: &str, name: &str, sealed: (Vec<u8>, Vec<u8>)) -> RegistrySecretRecord {
        RegistrySecretRecord {
            namespace: namespace.into(),
            name: name.into(),
            secret_type: DOCKER_CONFIG_JSON.into(),
            nonce: sealed.0,
            ciphertext: sealed.1,
            hosts: vec!["quay.io".into()],
            created_at: Utc::now(),
        }
    }

    #[test]
    fn sealed_secrets_open_only_as_themselves_under_their_key() {
        let key = SecretsKey::generate();
        let plaintext = b"{\"auths\":{}}";
        let sealed = key.seal("team", "quay", plaintext).unwrap();
        assert_eq!(sealed.0.len(), NONCE_BYTES);
        assert!(
            !sealed
                .1
                .windows(plaintext.len())
                .any(|w| w == plaintext.as_slice())
        );
        let stored = record("team", "quay", sealed.clone());
        assert_eq!(key.open(&stored).unwrap(), plaintext);

        // A fresh nonce every time: the same secret sealed twice differs.
        let again = key.seal("team", "quay", plaintext).unwrap();
        assert_ne!(again.0, sealed.0);
        assert_ne!(again.1, sealed.1);

        // The ciphertext copied to another name, or another namespace, does not open.
        for (namespace, name) in [("team", "other"), ("other", "quay"), ("team/quay", "")] {
            let moved = record(namespace, name, sealed.clone());
            assert!(
                matches!(key.open(&moved), Err(SecretsError::Undecryptable { .. })),
                "{namespace}/{name}"
            );
        }
        // Nor under another key, nor altered.
        assert!(matches!(
            SecretsKey::generate().open(&stored),
            Err(SecretsError::Undecryptable { .. })
        ));
        let mut altered = stored.clone();
        altered.ciphertext[0] ^= 1;
        assert!(matches!(
            key.open(&altered),
            Err(SecretsError::Undecryptable { .. })
        ));
        let mut short_nonce = stored;
        short_nonce.nonce.pop();
        assert!(matches!(
            key.open(&short_nonce),
            Err(SecretsError::Corrupt { .. })
        ));
        assert_eq!(format!("{key:?}"), "SecretsKey(..)");
    }

    #[test]
    fn the_key_file_is_made_once_for_its_owner_and_read_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let err = SecretsKey::load_or_create(&path, false).unwrap_err();
        assert!(err.to_string().starts_with("secrets.key_file: "), "{err}");

        let made = SecretsKey::load_or_create(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
        let read = SecretsKey::load_or_create(&path, true).unwrap();
        assert_eq!(made.0, read.0);

        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = SecretsKey::load_or_create(&path, true).unwrap_err();
        assert!(
            err.to_string().starts_with("secrets.key_file: ")
                && err.to_string().contains("holds 5 bytes"),
            "{err}"
        );
    }

    const ADMIN: &str = "root";

    /// The service over a real store in `dir`, with `root` a cluster administrator.
    async fn service(dir: &Path, key: SecretsKey) -> RegistrySecrets {
        let sqlite = Arc::new(SqliteMetadata::open(&dir.join("berth.db")).await.unwrap());
        let auth: Arc<dyn AuthStore> = sqlite.clone();
        auth.create_binding(&BindingRecord {
            name: "root".into(),
            namespace: None,
            stream: None,
            role: "cluster-admin".into(),
            subject_kind: "User".into(),
            subject_name: ADMIN.into(),
            subject_namespace: None,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
        let authorizer = Authorizer::load(auth.clone(), NamespaceCreation::Authenticated)
            .await
            .unwrap();
        let auth = Arc::new(AuthContext::new(
            auth,
            authorizer,
            RegistryTokens::new(&[0; 32], "berth"),
            Duration::from_secs(300),
            10,
        ));
        if sqlite.get_namespace("team").await.unwrap().is_none() {
            sqlite
                .create_namespace("team", &Labels::new(), &Labels::new())
                .await
                .unwrap();
        }
        let image_streams = Arc::new(ImageStreamApi {
            store: sqlite.clone(),
            auth,
            registry_host: "127.0.0.1:5000".into(),
            public_host: None,
            continue_tokens: crate::kube::ContinueTokens::new(b"test"),
            watches: crate::limits::WatchLimits::new(&Default::default()),
        });
        RegistrySecrets::new(sqlite, key, image_streams)
    }

    fn admin() -> Subject {
        Subject::User {
            name: ADMIN.into(),
            groups: Vec::new(),
        }
    }

    fn docker_registry_secret(name: &str, config: &[u8]) -> Secret {
        Secret {
            kind: crate::kube::kinds::secret(),
            api_version: crate::kube::kinds::core_api(),
            metadata: ObjectMeta {
                name: name.into(),
                ..ObjectMeta::default()
            },
            secret_type: DOCKER_CONFIG_JSON.into(),
            data: BTreeMap::from([(DOCKER_CONFIG_KEY.into(), STANDARD.encode(config))]),
            string_data: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn stored_secrets_decrypt_after_a_restart_with_the_same_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("secrets.key");
        let secrets = service(
            dir.path(),
            SecretsKey::load_or_create(&key_path, true).unwrap(),
        )
        .await;
        let config = config_json(serde_json::json!({
            "https://index.docker.io/v1/": {"auth": basic("hubuser", "hub-password")},
            "quay.io": {"username": "robot", "password": "quay-password"},
        }));
        let shown = secrets
            .create(&admin(), "team", docker_registry_secret("pull", &config))
            .await
            .unwrap();
        assert!(shown.data.is_empty() && shown.string_data.is_empty());
        assert_eq!(
            shown.metadata.annotations[REGISTRIES_ANNOTATION],
            "docker.io,quay.io"
        );
        let shown_text = serde_json::to_string(&shown).unwrap();
        assert!(!shown_text.contains("password"), "{shown_text}");

        let hub = Some(("hubuser".to_owned(), "hub-password".to_owned()));
        assert_eq!(
            secrets
                .credentials_for("team", "registry-1.docker.io")
                .await
                .unwrap(),
            hub
        );
        assert_eq!(
            secrets.credentials_for("team", "ghcr.io").await.unwrap(),
            None
        );
        assert_eq!(
            secrets.credentials_for("other", "quay.io").await.unwrap(),
            None
        );
        drop(secrets);

        // As after a restart: the store opened again, the key read from the same file.
        let again = service(
            dir.path(),
            SecretsKey::load_or_create(&key_path, true).unwrap(),
        )
        .await;
        assert_eq!(
            again.credentials_for("team", "docker.io").await.unwrap(),
            hub
        );
        assert_eq!(
            again
                .credentials_for("team", "https://quay.io/v2/")
                .await
                .unwrap(),
            Some(("robot".to_owned(), "quay-password".to_owned()))
        );
        assert_eq!(again.list(&admin(), "team").await.unwrap().items.len(), 1);

        // The newest secret for a registry wins.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = config_json(serde_json::json!({"quay.io": {"auth": basic("new", "newer")}}));
        again
            .create(&admin(), "team", docker_registry_secret("a-newer", &newer))
            .await
            .unwrap();
        assert_eq!(
            again.credentials_for("team", "quay.io").await.unwrap(),
            Some(("new".to_owned(), "newer".to_owned()))
        );
        drop(again);

        // Another key (a lost key file) cannot read them: an error, not wrong credentials.
        let other = service(dir.path(), SecretsKey::generate()).await;
        assert!(matches!(
            other.credentials_for("team", "docker.io").await,
            Err(SecretsError::Undecryptable { .. })
        ));
    }

    #[tokio::test]
    async fn only_the_namespace_admin_manages_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = service(dir.path(), SecretsKey::generate()).await;
        let config = config_json(serde_json::json!({"quay.io": {"auth": basic("u", "p")}}));
        let stranger = Subject::User {
            name: "eve".into(),
            groups: Vec::new(),
        };
        let refused = secrets
            .create(&stranger, "team", docker_registry_secret("pull", &config))
            .await
            .unwrap_err();
        assert!(matches!(refused, ApiError::Forbidden { .. }), "{refused}");
        assert!(matches!(
            secrets.list(&stranger, "team").await,
            Err(ApiError::Forbidden { .. })
        ));
        secrets
            .create(&admin(), "team", docker_registry_secret("pull", &config))
            .await
            .unwrap();
        assert!(matches!(
            secrets.get(&stranger, "team", "pull").await,
            Err(ApiError::Forbidden { .. })
        ));
        assert!(matches!(
            secrets.delete(&stranger, "team", "pull").await,
            Err(ApiError::Forbidden { .. })
        ));
        assert!(matches!(
            secrets
                .create(&admin(), "team", docker_registry_secret("pull", &config))
                .await,
            Err(ApiError::AlreadyExists { .. })
        ));
        assert!(matches!(
            secrets
                .create(&admin(), "nowhere", docker_registry_secret("pull", &config))
                .await,
            Err(ApiError::NotFound { .. })
        ));
        secrets.delete(&admin(), "team", "pull").await.unwrap();
        assert!(matches!(
            secrets.get(&admin(), "team", "pull").await,
            Err(ApiError::NotFound { .. })
        ));
    }
}

/// Properties over generated input: no config.json or host panics the parsers, hosts come out
/// in one normal form, and what the console's form writes reads back as the same credentials.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn hosts() -> impl Strategy<Value = String> {
        "(https?://)?[a-zA-Z0-9](?:[a-zA-Z0-9.-]{0,20}[a-zA-Z0-9])?(:[0-9]{1,5})?(/[a-z]{0,5})?"
    }

    fn auth_entries() -> impl Strategy<Value = Value> {
        let text = prop_oneof![".{0,16}", "[A-Za-z0-9+/=]{0,24}", Just(String::new())];
        let field = prop_oneof![
            text.clone().prop_map(Value::from),
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            Just(json!({})),
        ];
        proptest::collection::btree_map(
            prop_oneof![
                Just("auth"),
                Just("username"),
                Just("password"),
                Just("identitytoken")
            ],
            field,
            0..4,
        )
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    proptest! {
        #[test]
        fn any_host(text in any::<String>()) {
            if let Some(host) = normalize_registry_host(&text) {
                prop_assert!(!host.is_empty());
                prop_assert!(host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_:[]".contains(&b)), "{:?}", host);
                prop_assert_eq!(normalize_registry_host(&host), Some(host.clone()));
            }
        }

        #[test]
        fn hosts_as_people_write_them(text in hosts()) {
            let host = normalize_registry_host(&text);
            prop_assert!(host.is_some(), "{:?}", text);
            let host = host.unwrap();
            prop_assert!(!host.contains('/'));
            prop_assert_eq!(normalize_registry_host(&host), Some(host));
        }

        #[test]
        fn any_bytes_as_a_config(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_docker_config(&bytes);
        }

        #[test]
        fn any_config_shaped_json(
            auths in proptest::collection::btree_map(prop_oneof![hosts(), ".{0,10}"], auth_entries(), 0..4),
            wrap in any::<bool>(),
        ) {
            let config = if wrap { json!({"auths": auths}) } else { json!(auths) };
            if let Ok(found) = parse_docker_config(config.to_string().as_bytes()) {
                for (host, (user, _)) in &found {
                    prop_assert_eq!(normalize_registry_host(host), Some(host.clone()));
                    prop_assert!(!user.is_empty());
                }
            }
        }

        #[test]
        fn what_the_form_writes_reads_back(
            host in hosts(),
            username in "[^:\\s]{1,16}",
            password in ".{1,24}",
            plain_fields in any::<bool>(),
        ) {
            let expected = BTreeMap::from([(
                normalize_registry_host(&host).unwrap(),
                (username.clone(), password.clone()),
            )]);
            let secret = pull_secret("creds", &host, &username, &password).unwrap();
            let config = STANDARD.decode(&secret.data[DOCKER_CONFIG_KEY]).unwrap();
            prop_assert_eq!(parse_docker_config(&config), Ok(expected.clone()));
            if plain_fields {
                let config = json!({"auths": {host: {"username": username, "password": password}}});
                prop_assert_eq!(parse_docker_config(config.to_string().as_bytes()), Ok(expected));
            }
        }
    }
}
