//! [`RegistrySecretStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{SqliteMetadata, json_array};
use crate::storage::secrets::{RegistrySecretRecord, RegistrySecretStore};
use crate::storage::{StorageError, StorageResult};

/// A registry secret as `registry_secrets` keeps it: its hosts as a JSON array.
#[derive(sqlx::FromRow)]
struct SecretRow {
    namespace: String,
    name: String,
    #[sqlx(rename = "type")]
    secret_type: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    hosts: String,
    created_at: DateTime<Utc>,
}

const SECRET_COLUMNS: &str = "namespace, name, type, nonce, ciphertext, hosts, created_at";

impl SecretRow {
    fn into_record(self) -> StorageResult<RegistrySecretRecord> {
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
