//! [`LifecycleStore`] on PostgreSQL: the inventory of pruning and retention, content holders,
//! steps applied through the image stream rules, pulls recorded in batches, the scheduled
//! pruner's object and retention policies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresDatabase;
use crate::oci::{Digest, RepositoryName};
use crate::storage::lifecycle::{
    ChildRow, ContentHolders, HolderRow, ImageRow, Inventory, InventorySql, ItemRow,
    LifecycleStore, ObjectRow, PruneOutcome, PruneStep, SpecRow, StoredObject, StreamRow,
    assemble_inventory, group_holders, image_count_sql,
};
use crate::storage::rows::size_from_db;
use crate::storage::{StorageResult, stream_rules};

const OBJECT_COLUMNS: &str = "name, uid, spec, status, created_at, updated_at";

#[async_trait]
impl LifecycleStore for PostgresDatabase {
    async fn inventory(&self, namespace: Option<&str>) -> StorageResult<Inventory> {
        // One snapshot: the five statements see one state.
        let mut tx = self.begin_snapshot().await?;
        let sql = InventorySql::new("($1::text IS NULL OR n.name = $1)");
        let streams: Vec<StreamRow> = sqlx::query_as(&sql.streams)
            .bind(namespace)
            .fetch_all(&mut *tx)
            .await?;
        let items: Vec<ItemRow> = sqlx::query_as(&sql.items)
            .bind(namespace)
            .fetch_all(&mut *tx)
            .await?;
        let images: Vec<ImageRow> = sqlx::query_as(&sql.images)
            .bind(namespace)
            .fetch_all(&mut *tx)
            .await?;
        let children: Vec<ChildRow> = sqlx::query_as(&sql.children)
            .bind(namespace)
            .fetch_all(&mut *tx)
            .await?;
        let specs: Vec<SpecRow> = sqlx::query_as(&sql.specs)
            .bind(namespace)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        assemble_inventory(streams, items, images, children, specs)
    }

    async fn content_holders(&self, manifests: &[Digest]) -> StorageResult<Vec<ContentHolders>> {
        if manifests.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<HolderRow> = sqlx::query_as(
            "WITH wanted(digest) AS (SELECT unnest($1::text[])),
                  held(digest) AS (SELECT DISTINCT r.child FROM manifest_references r
                                   JOIN wanted w ON r.digest = w.digest WHERE r.kind = 'blob')
             SELECT h.digest AS content, b.size AS size, rm.repository_id, rm.digest AS holder
             FROM held h LEFT JOIN blobs b ON b.digest = h.digest
             JOIN manifest_references r ON r.child = h.digest AND r.kind = 'blob'
             JOIN repository_manifests rm ON rm.digest = r.digest",
        )
        .bind(manifests.iter().map(Digest::to_string).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        group_holders(rows)
    }

    async fn image_count(&self, namespace: &str) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar(&image_count_sql("$1"))
            .bind(namespace)
            .fetch_one(&self.pool)
            .await?;
        size_from_db(count)
    }

    async fn apply_prune(&self, step: &PruneStep) -> StorageResult<PruneOutcome> {
        let mut tx = self.begin_stream_write().await?;
        let outcome = stream_rules::prune_repository(&mut *tx, step).await?;
        self.commit(tx).await?;
        Ok(outcome)
    }

    async fn record_pulls(
        &self,
        pulls: &[(RepositoryName, Digest, DateTime<Utc>)],
    ) -> StorageResult<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (repository, digest, at) in pulls {
            sqlx::query(
                "UPDATE repository_manifests SET pulled_at = $3
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
                   AND digest = $2 AND (pulled_at IS NULL OR pulled_at < $3)",
            )
            .bind(repository.as_str())
            .bind(digest.to_string())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn image_pruner(&self, name: &str) -> StorageResult<Option<StoredObject>> {
        let row: Option<ObjectRow> = sqlx::query_as(&format!(
            "SELECT NULL::text AS namespace, {OBJECT_COLUMNS} FROM image_pruners WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ObjectRow::into_record))
    }

    async fn put_image_pruner(&self, name: &str, spec: &str) -> StorageResult<StoredObject> {
        let now = Utc::now();
        let row: ObjectRow = sqlx::query_as(&format!(
            "INSERT INTO image_pruners (name, uid, spec, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at
             RETURNING NULL::text AS namespace, {OBJECT_COLUMNS}"
        ))
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(spec)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into_record())
    }

    async fn set_image_pruner_status(&self, name: &str, status: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("UPDATE image_pruners SET status = $1 WHERE name = $2")
                .bind(status)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn retention_policies(&self, namespace: &str) -> StorageResult<Vec<StoredObject>> {
        let rows: Vec<ObjectRow> = sqlx::query_as(&format!(
            "SELECT namespace, {OBJECT_COLUMNS} FROM retention_policies
             WHERE namespace = $1 ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ObjectRow::into_record).collect())
    }

    async fn all_retention_policies(&self) -> StorageResult<Vec<StoredObject>> {
        let rows: Vec<ObjectRow> = sqlx::query_as(&format!(
            "SELECT namespace, {OBJECT_COLUMNS} FROM retention_policies ORDER BY namespace, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ObjectRow::into_record).collect())
    }

    async fn retention_policy(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<StoredObject>> {
        let row: Option<ObjectRow> = sqlx::query_as(&format!(
            "SELECT namespace, {OBJECT_COLUMNS} FROM retention_policies
             WHERE namespace = $1 AND name = $2"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ObjectRow::into_record))
    }

    async fn put_retention_policy(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        create: bool,
    ) -> StorageResult<bool> {
        let now = Utc::now();
        let written = if create {
            sqlx::query(
                "INSERT INTO retention_policies (namespace, name, uid, spec, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, $5 WHERE EXISTS (SELECT 1 FROM namespaces WHERE name = $1)
                 ON CONFLICT DO NOTHING",
            )
            .bind(namespace)
            .bind(name)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(spec)
            .bind(now)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE retention_policies SET spec = $3, updated_at = $4
                 WHERE namespace = $1 AND name = $2",
            )
            .bind(namespace)
            .bind(name)
            .bind(spec)
            .bind(now)
            .execute(&self.pool)
            .await?
        };
        Ok(written.rows_affected() > 0)
    }

    async fn delete_retention_policy(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("DELETE FROM retention_policies WHERE namespace = $1 AND name = $2")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn set_retention_status(
        &self,
        namespace: &str,
        name: &str,
        status: &str,
    ) -> StorageResult<bool> {
        Ok(sqlx::query(
            "UPDATE retention_policies SET status = $1 WHERE namespace = $2 AND name = $3",
        )
        .bind(status)
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }
}
