//! [`TrustedKeyStore`] on SQLite.

use async_trait::async_trait;

use super::SqliteMetadata;
use crate::storage::StorageResult;
use crate::storage::trusted_keys::{TRUSTED_KEY_COLUMNS, TrustedKeyRecord, TrustedKeyStore};

#[async_trait]
impl TrustedKeyStore for SqliteMetadata {
    async fn put_trusted_key(&self, record: &TrustedKeyRecord) -> StorageResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO trusted_keys (namespace, name, uid, public_key, created_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(&record.namespace)
        .bind(&record.name)
        .bind(&record.uid)
        .bind(&record.public_key)
        .bind(record.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn trusted_keys(&self, namespace: &str) -> StorageResult<Vec<TrustedKeyRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {TRUSTED_KEY_COLUMNS} FROM trusted_keys WHERE namespace = ? ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_trusted_key(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("DELETE FROM trusted_keys WHERE namespace = ? AND name = ?")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}
