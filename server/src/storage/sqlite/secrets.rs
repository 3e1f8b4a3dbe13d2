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

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use super::*;
    use crate::storage::{ImageStreamStore, Labels};

    fn record(namespace: &str, name: &str, hosts: &[&str]) -> RegistrySecretRecord {
        RegistrySecretRecord {
            namespace: namespace.into(),
            name: name.into(),
            secret_type: "kubernetes.io/dockerconfigjson".into(),
            nonce: vec![1; 24],
            ciphertext: format!("sealed {name}").into_bytes(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            // Whole seconds: what is read back must equal what was written.
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    async fn namespace(store: &SqliteMetadata, name: &str) {
        store
            .create_namespace(name, &Labels::new(), &Labels::new())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn secrets_are_kept_per_namespace_by_name() {
        let (_dir, store) = temp_store().await;
        namespace(&store, "team").await;
        namespace(&store, "other").await;
        let quay = record("team", "quay", &["quay.io"]);
        assert!(store.put_registry_secret(&quay).await.unwrap());
        assert!(
            store
                .put_registry_secret(&record("team", "hub", &["docker.io", "ghcr.io"]))
                .await
                .unwrap()
        );
        assert!(
            store
                .put_registry_secret(&record("other", "quay", &["quay.io"]))
                .await
                .unwrap()
        );
        // A name is taken once per namespace, and the first secret stays as it was.
        let mut again = record("team", "quay", &["example.com"]);
        again.ciphertext = b"another".to_vec();
        assert!(!store.put_registry_secret(&again).await.unwrap());

        let listed = store.registry_secrets("team").await.unwrap();
        assert_eq!(
            listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["hub", "quay"]
        );
        assert_eq!(listed[0].hosts, ["docker.io", "ghcr.io"]);
        assert_eq!(
            store.registry_secret("team", "quay").await.unwrap(),
            Some(quay)
        );
        assert_eq!(store.registry_secret("team", "absent").await.unwrap(), None);
        assert!(store.registry_secrets("nobody").await.unwrap().is_empty());

        assert!(store.delete_registry_secret("team", "quay").await.unwrap());
        assert!(!store.delete_registry_secret("team", "quay").await.unwrap());
        assert_eq!(store.registry_secret("team", "quay").await.unwrap(), None);
        assert!(
            store
                .registry_secret("other", "quay")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn secrets_need_their_namespace_and_go_with_it() {
        let (_dir, store) = temp_store().await;
        assert!(
            store
                .put_registry_secret(&record("ghost", "quay", &["quay.io"]))
                .await
                .is_err()
        );
        namespace(&store, "team").await;
        namespace(&store, "other").await;
        store
            .put_registry_secret(&record("team", "quay", &["quay.io"]))
            .await
            .unwrap();
        store
            .put_registry_secret(&record("other", "quay", &["quay.io"]))
            .await
            .unwrap();
        assert!(store.delete_namespace("team").await.unwrap());
        namespace(&store, "team").await;
        // A namespace made again under the same name does not inherit the old secrets.
        assert!(store.registry_secrets("team").await.unwrap().is_empty());
        assert_eq!(store.registry_secrets("other").await.unwrap().len(), 1);
    }
}
