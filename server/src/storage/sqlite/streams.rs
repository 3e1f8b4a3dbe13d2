//! [`ImageStreamStore`] on SQLite: namespaces, image streams, images and the event log.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::{SqliteMetadata, json_array, load_streams, load_streams_with_tags, size_from_db};
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::storage::rows::{
    EVENT_COLUMNS, EventRow, ImageRow, NAMESPACE_COLUMNS, NamespaceRow, STREAM_COLUMNS,
    ScheduledImportRow, StreamRow, SummaryRow, UsageRow, events_page,
};
use crate::storage::{
    EventFilter, EventRecord, ImageRecord, ImageStreamStore, Labels, NamespaceRecord,
    NamespaceUsage, StorageResult, StreamChange, StreamChangeError, StreamRecord,
    StreamSummaryRecord, SummarySort, stream_rules,
};

/// The bytes of manifest `x`'s image: its config and layers (as read at push time), and for an
/// index, its children's too (an index's own `size` is only its children's manifests).
/// Sums are `total()` (floating point, which cannot overflow as SQLite's integer `sum()` does
/// on declared sizes near the limit) and clamped by [`clamped`] when read.
const IMAGE_SIZE: &str = "coalesce(json_extract(x.image, '$.size'), 0)
    + (SELECT total(json_extract(c.image, '$.size')) FROM manifest_references r
                JOIN manifests c ON c.digest = r.child
                WHERE r.digest = x.digest AND r.kind = 'manifest')";

/// A `total()` as an integer of at most `i64::MAX` (SQLite's cast clamps larger reals to it).
fn clamped(total: &str) -> String {
    format!("CAST(min({total}, 9223372036854775807.0) AS INTEGER)")
}

const IMAGE_COLUMNS: &str = "digest, media_type, size, image, created_at";

/// Stream `namespace/name` with its tags, only those named in `only` (a JSON array) when given.
async fn find_stream(
    conn: &mut SqliteConnection,
    namespace: &str,
    name: &str,
    only: Option<&str>,
) -> StorageResult<Option<StreamRecord>> {
    let rows: Vec<StreamRow> = sqlx::query_as(&format!(
        "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
         WHERE n.name = ? AND s.name = ?"
    ))
    .bind(namespace)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(load_streams_with_tags(conn, rows, only)
        .await?
        .into_iter()
        .next())
}

#[async_trait]
impl ImageStreamStore for SqliteMetadata {
    async fn list_namespaces(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<NamespaceRecord>> {
        let rows: Vec<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name > ? ORDER BY name LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(NamespaceRow::into_record).collect()
    }

    async fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRecord>> {
        let row: Option<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(NamespaceRow::into_record).transpose()
    }

    async fn create_namespace(
        &self,
        name: &str,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<Option<NamespaceRecord>> {
        let mut tx = self.begin_write().await?;
        if stream_rules::add_namespace(&mut *tx, name, labels, annotations)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        self.commit(tx).await?;
        self.get_namespace(name).await
    }

    async fn delete_namespace(&self, name: &str) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = stream_rules::delete_namespace(&mut *tx, name).await?;
        if deleted {
            self.commit(tx).await?;
        }
        Ok(deleted)
    }

    async fn list_streams(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<StreamRecord>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<StreamRow> = sqlx::query_as(&format!(
            "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ? AND s.name > ? ORDER BY s.name LIMIT ?"
        ))
        .bind(namespace)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        load_streams(&mut conn, rows).await
    }

    async fn count_streams_after(&self, namespace: &str, after: &str) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ? AND s.name > ?",
        )
        .bind(namespace)
        .bind(after)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn list_all_streams(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StorageResult<Vec<StreamRecord>> {
        let (after_namespace, after_name) = after.unwrap_or(("", ""));
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<StreamRow> = sqlx::query_as(&format!(
            "SELECT {STREAM_COLUMNS} FROM namespaces n JOIN image_streams s ON s.namespace_id = n.id
             WHERE n.name >= ?1 AND (n.name > ?1 OR s.name > ?2)
             ORDER BY n.name, s.name LIMIT ?3"
        ))
        .bind(after_namespace)
        .bind(after_name)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        load_streams(&mut conn, rows).await
    }

    async fn get_stream(&self, namespace: &str, name: &str) -> StorageResult<Option<StreamRecord>> {
        let mut conn = self.pool.acquire().await?;
        find_stream(&mut conn, namespace, name, None).await
    }

    async fn scheduled_imports(&self) -> StorageResult<Vec<(RepositoryName, String, String)>> {
        let rows: Vec<ScheduledImportRow> = sqlx::query_as(
            "SELECT r.name AS repository, s.name AS tag, s.reference FROM spec_tags s
             JOIN repositories r ON r.id = s.repository_id
             WHERE json_extract(s.reference, '$.importPolicy.scheduled') = 1
               AND json_extract(s.reference, '$.from.kind') = 'DockerImage'
             ORDER BY r.name, s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(ScheduledImportRow::into_record)
            .collect()
    }

    async fn stream_summaries(
        &self,
        namespace: &str,
        filter: &str,
        only: Option<&[String]>,
        sort: SummarySort,
        offset: u64,
        limit: u32,
    ) -> StorageResult<(Vec<StreamSummaryRecord>, u64)> {
        // Separate statements with and without `only`, so that each uses its index.
        let only_clause = if only.is_some() {
            "AND s.name IN (SELECT value FROM json_each(?3))"
        } else {
            "AND ?3 IS NULL"
        };
        let matching = format!(
            "SELECT s.repository_id, s.name FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ?1 AND (?2 = '' OR instr(s.name, ?2) > 0) {only_clause}"
        );
        let size = clamped(&format!("total({IMAGE_SIZE})"));
        let aggregates = format!(
            "(SELECT COUNT(*) FROM tags t WHERE t.repository_id = m.repository_id) AS tag_count,
             (SELECT max(t.updated_at) FROM tags t WHERE t.repository_id = m.repository_id) AS updated,
             (SELECT {size} FROM manifests x
                WHERE x.digest IN (SELECT t.digest FROM tags t WHERE t.repository_id = m.repository_id)) AS size,
             (SELECT t.name FROM tags t WHERE t.repository_id = m.repository_id
                ORDER BY t.updated_at DESC, t.name LIMIT 1) AS latest"
        );
        // By name the page is cut first and only its rows are measured; the other orders need
        // every matching row's measures. Times are stored as RFC 3339 in UTC with as many
        // fractional digits as needed, which order as text.
        let sql = match sort {
            SummarySort::Name => format!(
                "WITH m AS ({matching} ORDER BY s.name LIMIT ?4 OFFSET ?5)
                 SELECT m.name, {aggregates} FROM m ORDER BY m.name"
            ),
            SummarySort::Updated => format!(
                "WITH m AS ({matching})
                 SELECT m.name, {aggregates} FROM m ORDER BY updated DESC, m.name LIMIT ?4 OFFSET ?5"
            ),
            SummarySort::Size => format!(
                "WITH m AS ({matching})
                 SELECT m.name, {aggregates} FROM m ORDER BY size DESC, m.name LIMIT ?4 OFFSET ?5"
            ),
        };
        let only_json = only.map(json_array).transpose()?;
        // One snapshot for the page and its count.
        let mut tx = self.pool.begin().await?;
        let rows: Vec<SummaryRow> = sqlx::query_as(&sql)
            .bind(namespace)
            .bind(filter)
            .bind(&only_json)
            .bind(limit)
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({matching})"))
            .bind(namespace)
            .bind(filter)
            .bind(&only_json)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let summaries = rows
            .into_iter()
            .map(SummaryRow::into_record)
            .collect::<StorageResult<Vec<_>>>()?;
        Ok((summaries, size_from_db(total)?))
    }

    async fn namespace_usage(&self) -> StorageResult<Vec<NamespaceUsage>> {
        let size = clamped(&format!("total({IMAGE_SIZE})"));
        let rows: Vec<UsageRow> = sqlx::query_as(&format!(
            "SELECT n.name, n.created_at,
                    (SELECT COUNT(*) FROM image_streams s WHERE s.namespace_id = n.id) AS streams,
                    (SELECT {size} FROM manifests x
                       WHERE x.digest IN (SELECT t.digest FROM tags t JOIN image_streams s
                                            ON s.repository_id = t.repository_id
                                          WHERE s.namespace_id = n.id)) AS size
             FROM namespaces n ORDER BY n.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(UsageRow::into_record).collect()
    }

    async fn get_stream_tags(
        &self,
        namespace: &str,
        name: &str,
        tags: &[String],
    ) -> StorageResult<Option<StreamRecord>> {
        let only = json_array(tags)?;
        let mut conn = self.pool.acquire().await?;
        find_stream(&mut conn, namespace, name, Some(&only)).await
    }

    async fn change_stream(
        &self,
        change: &StreamChange,
    ) -> StorageResult<Result<StreamRecord, StreamChangeError>> {
        let mut tx = self.begin_write().await?;
        let changed = stream_rules::change_stream(&mut *tx, change).await?;
        if changed.is_ok() {
            self.commit(tx).await?;
        }
        Ok(changed)
    }

    async fn delete_stream(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = stream_rules::delete_stream(&mut *tx, namespace, name).await?;
        if deleted {
            self.commit(tx).await?;
        }
        Ok(deleted)
    }

    async fn list_stream_tags(
        &self,
        namespace: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StorageResult<Vec<(String, String)>> {
        let (after_stream, after_tag) = after.unwrap_or(("", ""));
        Ok(sqlx::query_as(
            "SELECT s.name, t.name FROM tags t
             JOIN image_streams s ON s.repository_id = t.repository_id
             JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ?1 AND s.name >= ?2 AND (s.name > ?2 OR t.name > ?3)
             ORDER BY s.name, t.name LIMIT ?4",
        )
        .bind(namespace)
        .bind(after_stream)
        .bind(after_tag)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_image(&self, digest: &Digest) -> StorageResult<Option<ImageRecord>> {
        let row: Option<ImageRow> = sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest = ?"
        ))
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ImageRow::into_record).transpose()
    }

    async fn get_images(&self, digests: &[Digest]) -> StorageResult<Vec<ImageRecord>> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ImageRow> = sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest IN (SELECT value FROM json_each(?))"
        ))
        .bind(json_array(digests)?)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ImageRow::into_record).collect()
    }

    async fn image_in_repository(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<ImageRecord>> {
        let row: Option<ImageRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.size, m.image, m.created_at
             FROM repository_manifests rm
             JOIN repositories r ON r.id = rm.repository_id
             JOIN manifests m ON m.digest = rm.digest
             WHERE r.name = ? AND rm.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ImageRow::into_record).transpose()
    }

    async fn list_images(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<ImageRecord>> {
        let rows: Vec<ImageRow> = sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest > ? ORDER BY digest LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ImageRow::into_record).collect()
    }

    async fn events_after(
        &self,
        after: i64,
        filter: &EventFilter,
        limit: u32,
    ) -> StorageResult<(Vec<EventRecord>, i64)> {
        // One statement per filter shape, so that each uses its index.
        let mut conditions = vec!["id > ?", "id <= ?"];
        if filter.kind.is_some() {
            conditions.push("kind = ?");
        }
        if filter.namespace.is_some() {
            conditions.push("namespace = ?");
        }
        if filter.name.is_some() {
            conditions.push("name = ?");
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY id LIMIT ?",
            conditions.join(" AND ")
        );
        // Read the newest id and the matching events from one snapshot: writers commit in id
        // order, so everything up to `latest` has been seen.
        let mut tx = self.pool.begin().await?;
        let latest: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let mut query = sqlx::query_as::<_, EventRow>(&sql).bind(after).bind(latest);
        if let Some(kind) = filter.kind {
            query = query.bind(kind.as_str());
        }
        if let Some(namespace) = &filter.namespace {
            query = query.bind(namespace);
        }
        if let Some(name) = &filter.name {
            query = query.bind(name);
        }
        let rows = query.bind(limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        events_page(rows, after, latest, limit)
    }

    async fn latest_event_id(&self) -> StorageResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn oldest_event_id(&self) -> StorageResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(min(id), 0) FROM events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn compact_events(
        &self,
        created_before: chrono::DateTime<chrono::Utc>,
        up_to: i64,
        limit: u32,
    ) -> StorageResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM events WHERE id IN
                 (SELECT id FROM events
                  WHERE created_at < ? AND id <= ? AND id < (SELECT max(id) FROM events)
                  ORDER BY id LIMIT ?)",
        )
        .bind(created_before)
        .bind(up_to)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
