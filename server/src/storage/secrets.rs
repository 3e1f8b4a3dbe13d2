//! What the metadata store keeps of registry credentials ("pull secrets"), and the
//! [`RegistrySecretStore`] trait. The store sees only ciphertext: encryption and the key are the
//! `secrets` module's, which this module does not import.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageResult;

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
