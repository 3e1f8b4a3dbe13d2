//! What the metadata store keeps of registry credentials ("pull secrets"), the
//! [`RegistrySecretStore`] trait, and the row the SQL backends read a secret from. The store
//! sees only ciphertext: encryption and the key are the `secrets` module's, which this module
//! does not import.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StorageError, StorageResult};

/// A namespace's registry secret as stored: its Docker config encrypted, and the registries it
/// has credentials for in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySecretRecord {
    pub namespace: String,
    pub name: String,
    /// The Kubernetes secret type (`kubernetes.io/dockerconfigjson`).
    pub secret_type: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// Normalised registry hosts (`host[:port]`, Docker Hub as `docker.io`), sorted.
    pub hosts: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Registry secrets per namespace; they are deleted with their namespace.
#[async_trait]
pub trait RegistrySecretStore: Send + Sync + 'static {
    /// Stores a secret; false when the namespace has one of that name already. The namespace
    /// must exist.
    async fn put_registry_secret(&self, record: &RegistrySecretRecord) -> StorageResult<bool>;
    /// The namespace's secrets, by name.
    async fn registry_secrets(&self, namespace: &str) -> StorageResult<Vec<RegistrySecretRecord>>;
    async fn registry_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<RegistrySecretRecord>>;
    /// Deletes a secret; false when there was none.
    async fn delete_registry_secret(&self, namespace: &str, name: &str) -> StorageResult<bool>;
}

/// A registry secret as the SQL backends' `registry_secrets` keeps it: its hosts as a JSON
/// array.
#[derive(sqlx::FromRow)]
pub(super) struct SecretRow {
    namespace: String,
    name: String,
    #[sqlx(rename = "type")]
    secret_type: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    hosts: String,
    created_at: DateTime<Utc>,
}

pub(super) const SECRET_COLUMNS: &str =
    "namespace, name, type, nonce, ciphertext, hosts, created_at";

impl SecretRow {
    pub fn into_record(self) -> StorageResult<RegistrySecretRecord> {
        let hosts = serde_json::from_str(&self.hosts).map_err(|err| {
            StorageError::Corrupt(format!(
                "hosts of registry secret {}/{}: {err}",
                self.namespace, self.name
            ))
        })?;
        Ok(RegistrySecretRecord {
            namespace: self.namespace,
            name: self.name,
            secret_type: self.secret_type,
            nonce: self.nonce,
            ciphertext: self.ciphertext,
            hosts,
            created_at: self.created_at,
        })
    }
}
