//! [`QuotaStore`] on PostgreSQL, and the statements of the quota rules ([`QuotaTx`] for
//! `PgConnection`). What a namespace uses is kept by the triggers of migration 0008.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::PostgresDatabase;
use crate::oci::RepositoryName;
use crate::storage::StorageResult;
use crate::storage::quota_rules::{self, Bounded, Measured, MeasuredRow, QuotaTx};
use crate::storage::quotas::{QuotaKind, QuotaObject, QuotaStore, QuotaUsage, QuotaWrite};
use crate::storage::rows::{QUOTA_OBJECT_COLUMNS, QuotaObjectRow, labels_to_db, to_json};

#[async_trait]
impl QuotaTx for PgConnection {
    async fn namespace_limits(&mut self, namespace: &str) -> StorageResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT name, limits FROM quota_objects WHERE namespace = $1")
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
                 CASE WHEN $3 THEN coalesce(
                     (SELECT bytes FROM namespace_usage WHERE namespace = $1), 0) END,
                 CASE WHEN $4 THEN (SELECT count(*) FROM image_streams s
                                    JOIN namespaces n ON n.id = s.namespace_id
                                    WHERE n.name = $1) END,
                 CASE WHEN $5 THEN
                     (SELECT count(DISTINCT h.digest) FROM tag_history h
                      WHERE h.repository_id = r.id AND h.digest IS NOT NULL)
                   + (SELECT count(DISTINCT h.external_reference) FROM tag_history h
                      WHERE h.repository_id = r.id AND h.digest IS NULL) END,
                 CASE WHEN $6 THEN
                     (SELECT count(*) FROM tags t WHERE t.repository_id = r.id)
                   + (SELECT count(*) FROM spec_tags p
                      WHERE p.repository_id = r.id
                        AND NOT EXISTS (SELECT 1 FROM tags t
                                        WHERE t.repository_id = p.repository_id
                                          AND t.name = p.name)) END
             FROM (SELECT 1) one LEFT JOIN repositories r ON r.name = $2",
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
        Ok(sqlx::query_scalar("SELECT nextval('quota_versions')")
            .fetch_one(self)
            .await?)
    }

    async fn quota_namespace_exists(&mut self, namespace: &str) -> StorageResult<bool> {
        // Held until the transaction ends: the namespace cannot be deleted under the insert.
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT id FROM namespaces WHERE name = $1 FOR KEY SHARE")
                .bind(namespace)
                .fetch_optional(self)
                .await?
                .is_some(),
        )
    }

    async fn insert_quota_object(&mut self, object: &QuotaObject) -> StorageResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO quota_objects
                 (namespace, kind, name, uid, resource_version, labels, annotations, spec, limits,
                  created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
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
        let row: Option<QuotaObjectRow> = sqlx::query_as(&format!(
            "SELECT {QUOTA_OBJECT_COLUMNS} FROM quota_objects
             WHERE namespace = $1 AND kind = $2 AND name = $3 FOR UPDATE"
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
             SET resource_version = $1, labels = $2, annotations = $3, spec = $4, limits = $5
             WHERE namespace = $6 AND kind = $7 AND name = $8",
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
impl QuotaStore for PostgresDatabase {
    async fn create_quota_object(&self, object: &QuotaObject) -> StorageResult<QuotaWrite> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
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
        let deleted = sqlx::query(
            "DELETE FROM quota_objects WHERE namespace = $1 AND kind = $2 AND name = $3",
        )
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
             WHERE namespace = $1 AND kind = $2 ORDER BY name"
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
        // Outside a transaction, the row lock ends with the statement.
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
