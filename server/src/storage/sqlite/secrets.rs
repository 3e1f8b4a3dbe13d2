//! [`RegistrySecretStore`] on SQLite.

use async_trait::async_trait;

use super::{SqliteMetadata, json_array};
use crate::storage::StorageResult;
use crate::storage::secrets::{
    RegistrySecretRecord, RegistrySecretStore, SECRET_COLUMNS, SecretRow,
};

#[async_trait]
impl RegistrySecretStore for SqliteMetadata {
    async fn put_registry_secret(&self, record: &RegistrySecretRecord) -> StorageResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO registry_secrets (namespace, name, type, nonce, ciphertext, hosts, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(&record.namespace)
        .bind(&record.name)
        .bind(&record.secret_type)
        .bind(&record.nonce)
        .bind(&record.ciphertext)
        .bind(json_array(&record.hosts)?)
        .bind(record.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn registry_secrets(&self, namespace: &str) -> StorageResult<Vec<RegistrySecretRecord>> {
        let rows: Vec<SecretRow> = sqlx::query_as(&format!(
            "SELECT {SECRET_COLUMNS} FROM registry_secrets WHERE namespace = ? ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(SecretRow::into_record).collect()
    }

    async fn registry_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<RegistrySecretRecord>> {
        let row: Option<SecretRow> = sqlx::query_as(&format!(
            "SELECT {SECRET_COLUMNS} FROM registry_secrets WHERE namespace = ? AND name = ?"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(SecretRow::into_record).transpose()
    }

    async fn delete_registry_secret(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("DELETE FROM registry_secrets WHERE namespace = ? AND name = ?")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}
