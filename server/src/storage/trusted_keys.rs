//! What the metadata store keeps of the public keys a namespace trusts for signatures
//! ([`TrustedKeyRecord`], the [`TrustedKeyStore`] trait). Reading a key is the `signatures`
//! module's; the store keeps its PEM text as given.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageResult;

/// A namespace's trusted public key as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrustedKeyRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// A PEM `PUBLIC KEY` block.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

pub(super) const TRUSTED_KEY_COLUMNS: &str = "namespace, name, uid, public_key, created_at";

/// Trusted keys per namespace; they are deleted with their namespace.
#[async_trait]
pub trait TrustedKeyStore: Send + Sync + 'static {
    /// Stores a key; false when the namespace has one of that name already. The namespace must
    /// exist.
    async fn put_trusted_key(&self, record: &TrustedKeyRecord) -> StorageResult<bool>;
    /// The namespace's keys, by name.
    async fn trusted_keys(&self, namespace: &str) -> StorageResult<Vec<TrustedKeyRecord>>;
    /// Deletes a key; false when there was none.
    async fn delete_trusted_key(&self, namespace: &str, name: &str) -> StorageResult<bool>;
}
