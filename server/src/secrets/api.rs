//! The registry secrets' service: create, list, get and delete of pull secrets per namespace,
//! for the namespace's admin (`manage-access`, decided by the one authorizer through
//! [`ImageStreamApi::require`]), and [`RegistrySecrets::credentials_for`] for imports, which
//! checks no permission (the import checks the caller may import into the namespace). The
//! Docker config is stored sealed, the registries it has credentials for in the clear beside
//! it, so a lookup decrypts one secret only; the data is never shown again once stored.

use std::sync::Arc;

use chrono::Utc;

use super::docker_config::{Credentials, normalize_registry_host, parse_docker_config};
use super::key::SecretsKey;
use super::object::{DOCKER_CONFIG_JSON, is_valid_secret_name, secret_object, submitted_config};
use super::sealing::{Sealed, SealedFor, SealingError};
use crate::auth::{Action, Subject, Target};
use crate::imagestream::ImageStreamApi;
use crate::kube::{ApiError, ApiResult, FieldError, SECRETS, deleted};
use crate::kube::{CORE_API_VERSION, List, ListMeta, Secret, Status};
use crate::storage::StorageError;
use crate::storage::auth::NewAudit;
use crate::storage::secrets::{RegistrySecretRecord, RegistrySecretStore};

/// Why registry credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Sealing(#[from] SealingError),
    #[error("registry secret {namespace}/{name} is corrupt: {reason}")]
    Corrupt {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// For the API: a secret that cannot be read is the server's fault (a 500, its cause logged).
impl From<CredentialsError> for ApiError {
    fn from(err: CredentialsError) -> Self {
        match err {
            CredentialsError::Storage(err) => ApiError::internal(err),
            other => ApiError::internal(other),
        }
    }
}

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
        let (field, config) = submitted_config(&secret).map_err(invalid)?;
        let credentials =
            parse_docker_config(&config).map_err(|why| invalid(FieldError::new(&field, why)))?;
        let hosts: Vec<String> = credentials.into_keys().collect();
        let Sealed { nonce, ciphertext } = self.key.seal(
            SealedFor::RegistrySecret {
                namespace,
                name: &name,
            },
            &config,
        )?;
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
    ) -> Result<Option<Credentials>, CredentialsError> {
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
        let corrupt = |reason: String| CredentialsError::Corrupt {
            namespace: newest.namespace.clone(),
            name: newest.name.clone(),
            reason,
        };
        let config = self.key.open(
            SealedFor::RegistrySecret {
                namespace: &newest.namespace,
                name: &newest.name,
            },
            &newest.nonce,
            &newest.ciphertext,
        )?;
        let mut credentials = parse_docker_config(&config).map_err(corrupt)?;
        credentials
            .remove(&host)
            .map(Some)
            .ok_or_else(|| corrupt(format!("it is listed for {host}, its config.json is not")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::auth::credentials::RegistryTokens;
    use crate::auth::{AuthContext, Authorizer};
    use crate::config::auth::NamespaceCreation;
    use crate::kube::ObjectMeta;
    use crate::secrets::docker_config::tests::{basic, config_json};
    use crate::secrets::object::{DOCKER_CONFIG_KEY, REGISTRIES_ANNOTATION};
    use crate::storage::auth::{AuthStore, BindingRecord};
    use crate::storage::sqlite::SqliteMetadata;
    use crate::storage::{ImageStreamStore, Labels};

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
        let authorizer = Authorizer::load(
            auth.clone(),
            sqlite.clone(),
            NamespaceCreation::Authenticated,
        )
        .await
        .unwrap();
        let auth = Arc::new(AuthContext::new(
            auth,
            authorizer,
            RegistryTokens::new(&[0; 32], "berth"),
            Duration::from_secs(300),
            sqlite.clone(),
            10,
            sqlite.clone(),
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
            Err(CredentialsError::Sealing(
                SealingError::Undecryptable { .. }
            ))
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
