//! [`QuotaStore`] on SQLite, and the statements of the quota rules ([`QuotaTx`] for
//! `SqliteConnection`). What a namespace uses is kept by the triggers of migration 0018.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::SqliteMetadata;
use crate::oci::RepositoryName;
use crate::storage::StorageResult;
use crate::storage::quota_rules::{self, Bounded, Measured, MeasuredRow, QuotaTx};
use crate::storage::quotas::{QuotaKind, QuotaObject, QuotaStore, QuotaUsage, QuotaWrite};
use crate::storage::rows::{QUOTA_OBJECT_COLUMNS, QuotaObjectRow, labels_to_db, to_json};

#[async_trait]
impl QuotaTx for SqliteConnection {
    async fn namespace_limits(&mut self, namespace: &str) -> StorageResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT name, limits FROM quota_objects WHERE namespace = ?")
                .bind(namespace)
                .fetch_all(self)
                .await?,
        )
    }

    async fn measure_usage(
        &mut self,
        repository: &RepositoryName,
        bounded: Bounded,
    ) -> StorageResult<Measured> {
        // Each count only when bounded (CASE runs its subquery only then); a stream not made
        // yet has none of its own.
        let row: MeasuredRow = sqlx::query_as(
            "SELECT
                 CASE WHEN ?3 THEN coalesce(
                     (SELECT bytes FROM namespace_usage WHERE namespace = ?1), 0) END,
                 CASE WHEN ?4 THEN (SELECT count(*) FROM image_streams s
                                    JOIN namespaces n ON n.id = s.namespace_id
                                    WHERE n.name = ?1) END,
                 CASE WHEN ?5 THEN
                     (SELECT count(DISTINCT h.digest) FROM tag_history h
                      WHERE h.repository_id = r.id AND h.digest IS NOT NULL)
                   + (SELECT count(DISTINCT h.external_reference) FROM tag_history h
                      WHERE h.repository_id = r.id AND h.digest IS NULL) END,
                 CASE WHEN ?6 THEN
                     (SELECT count(*) FROM tags t WHERE t.repository_id = r.id)
                   + (SELECT count(*) FROM spec_tags p
                      WHERE p.repository_id = r.id
                        AND NOT EXISTS (SELECT 1 FROM tags t
                                        WHERE t.repository_id = p.repository_id
                                          AND t.name = p.name)) END
             FROM (SELECT 1) LEFT JOIN repositories r ON r.name = ?2",
        )
        .bind(repository.namespace())
        .bind(repository.as_str())
        .bind(bounded.storage)
        .bind(bounded.streams)
        .bind(bounded.images)
        .bind(bounded.tags)
        .fetch_one(self)
        .await?;
        Measured::from_db(row)
    }

    async fn next_quota_version(&mut self) -> StorageResult<i64> {
        Ok(
            sqlx::query_scalar("UPDATE quota_versions SET last = last + 1 RETURNING last")
                .fetch_one(self)
                .await?,
        )
    }

    async fn quota_namespace_exists(&mut self, namespace: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?)")
                .bind(namespace)
                .fetch_one(self)
                .await?,
        )
    }

    async fn insert_quota_object(&mut self, object: &QuotaObject) -> StorageResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO quota_objects
                 (namespace, kind, name, uid, resource_version, labels, annotations, spec, limits,
                  created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&object.namespace)
        .bind(object.kind.as_str())
        .bind(&object.name)
        .bind(&object.uid)
        .bind(object.resource_version)
        .bind(labels_to_db(&object.labels))
        .bind(labels_to_db(&object.annotations))
        .bind(&object.spec)
        .bind(to_json(&object.limits)?)
        .bind(object.created_at)
        .execute(self)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn stored_quota_object(
        &mut self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<QuotaObject>> {
        // The write transaction holds the database: no other writer until it ends.
        let row: Option<QuotaObjectRow> = sqlx::query_as(&format!(
            "SELECT {QUOTA_OBJECT_COLUMNS} FROM quota_objects
             WHERE namespace = ? AND kind = ? AND name = ?"
        ))
        .bind(namespace)
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(self)
        .await?;
        row.map(QuotaObjectRow::into_record).transpose()
    }

    async fn update_quota_object(&mut self, object: &QuotaObject) -> StorageResult<()> {
        sqlx::query(
            "UPDATE quota_objects
             SET resource_version = ?, labels = ?, annotations = ?, spec = ?, limits = ?
             WHERE namespace = ? AND kind = ? AND name = ?",
        )
        .bind(object.resource_version)
        .bind(labels_to_db(&object.labels))
        .bind(labels_to_db(&object.annotations))
        .bind(&object.spec)
        .bind(to_json(&object.limits)?)
        .bind(&object.namespace)
        .bind(object.kind.as_str())
        .bind(&object.name)
        .execute(self)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl QuotaStore for SqliteMetadata {
    async fn create_quota_object(&self, object: &QuotaObject) -> StorageResult<QuotaWrite> {
        let mut tx = self.begin_write().await?;
        let written = quota_rules::create_object(&mut *tx, object).await?;
        if matches!(written, QuotaWrite::Written(_)) {
            tx.commit().await?;
        }
        Ok(written)
    }

    async fn replace_quota_object(
        &self,
        object: &QuotaObject,
        expected_version: Option<i64>,
    ) -> StorageResult<QuotaWrite> {
        let mut tx = self.begin_write().await?;
        let written = quota_rules::replace_object(&mut *tx, object, expected_version).await?;
        if matches!(written, QuotaWrite::Written(_)) {
            tx.commit().await?;
        }
        Ok(written)
    }

    async fn delete_quota_object(
        &self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<bool> {
        let deleted =
            sqlx::query("DELETE FROM quota_objects WHERE namespace = ? AND kind = ? AND name = ?")
                .bind(namespace)
                .bind(kind.as_str())
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn quota_objects(
        &self,
        kind: QuotaKind,
        namespace: &str,
    ) -> StorageResult<Vec<QuotaObject>> {
        let rows: Vec<QuotaObjectRow> = sqlx::query_as(&format!(
            "SELECT {QUOTA_OBJECT_COLUMNS} FROM quota_objects
             WHERE namespace = ? AND kind = ? ORDER BY name"
        ))
        .bind(namespace)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(QuotaObjectRow::into_record).collect()
    }

    async fn quota_object(
        &self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<QuotaObject>> {
        let mut conn = self.pool.acquire().await?;
        conn.stored_quota_object(kind, namespace, name).await
    }

    async fn quota_usage(&self, namespace: &str) -> StorageResult<QuotaUsage> {
        // Any stream of the namespace will do: only its namespace is looked at.
        let Ok(repository) = RepositoryName::of_stream(namespace, "any") else {
            return Ok(QuotaUsage::default());
        };
        let bounded = Bounded {
            storage: true,
            streams: true,
            ..Bounded::default()
        };
        let mut conn = self.pool.acquire().await?;
        let measured = conn.measure_usage(&repository, bounded).await?;
        Ok(QuotaUsage {
            image_streams: measured.streams.unwrap_or(0),
            storage_bytes: measured.storage.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_earlier_versions_stored_is_counted_once_per_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            // The schema before migration 0018, with two images sharing a layer in two streams
            // of one namespace, one of them in another namespace too, and an imported layer.
            let pool = super::super::pool_at_migration(&path, 17).await;
            for statement in [
                "INSERT INTO repositories (id, name, created_at)
                 VALUES (1, 'team/app', 'now'), (2, 'team/web', 'now'), (3, 'other/app', 'now')",
                "INSERT INTO blobs (digest, size, created_at)
                 VALUES ('sha256:base', 100, 'now'), ('sha256:app', 20, 'now')",
                "INSERT INTO remote_blobs (repository_id, digest, source, insecure, size)
                 VALUES (2, 'sha256:imported', 'remote.example/x', 0, 7)",
                "INSERT INTO manifests (digest, media_type, size, content, created_at)
                 VALUES ('sha256:one', 'm', 3, x'00', 'now'), ('sha256:two', 'm', 5, x'00', 'now')",
                "INSERT INTO manifest_references (digest, child, kind)
                 VALUES ('sha256:one', 'sha256:base', 'blob'), ('sha256:one', 'sha256:app', 'blob'),
                        ('sha256:two', 'sha256:base', 'blob'),
                        ('sha256:two', 'sha256:imported', 'blob')",
                "INSERT INTO repository_manifests (repository_id, digest, created_at)
                 VALUES (1, 'sha256:one', 'now'), (2, 'sha256:two', 'now'),
                        (3, 'sha256:one', 'now')",
            ] {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        let store = SqliteMetadata::open(&path).await.unwrap();
        let used = |namespace: &'static str| {
            let store = &store;
            async move { store.quota_usage(namespace).await.unwrap().storage_bytes }
        };
        assert_eq!(used("team").await, 3 + 5 + 100 + 20 + 7);
        assert_eq!(used("other").await, 3 + 100 + 20);
        // And the counts go on from there: the shared layer stays while one image has it.
        sqlx::query("DELETE FROM repository_manifests WHERE repository_id = 1")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(used("team").await, 5 + 100 + 7);
    }
}
