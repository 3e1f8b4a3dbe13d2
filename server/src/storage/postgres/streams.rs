//! [`ImageStreamStore`] on PostgreSQL: namespaces, image streams, images and the event log.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::{PostgresDatabase, load_streams};
use crate::oci::{Digest, RepositoryName};
use crate::storage::rows::{
    EVENT_COLUMNS, EventRow, ImageRow, NAMESPACE_COLUMNS, NamespaceRow, STREAM_COLUMNS,
    ScheduledImportRow, StreamRow, SummaryRow, UsageRow, events_page, size_from_db,
};
use crate::storage::{
    EventFilter, EventRecord, ImageRecord, ImageStreamStore, Labels, NamespaceRecord,
    NamespaceUsage, StorageResult, StreamChange, StreamChangeError, StreamRecord,
    StreamSummaryRecord, SummarySort, stream_rules,
};

/// The bytes of the images `x` ranges over, summed: each image's config and layers (as read
/// at push time), and for an index, its children's too (an index's own `size` is only its
/// children's manifests). Summed as `numeric` and capped at `i64::MAX` (sizes are declared by
/// clients).
const IMAGES_SIZE: &str = "LEAST(coalesce(sum(
        coalesce((x.image->>'size')::numeric, 0)
        + coalesce((SELECT sum((c.image->>'size')::numeric) FROM manifest_references r
                    JOIN manifests c ON c.digest = r.child
                    WHERE r.digest = x.digest AND r.kind = 'manifest'), 0)
    ), 0), 9223372036854775807)::bigint";

const IMAGE_COLUMNS: &str = "digest, media_type, size, image::text AS image, created_at";

/// Stream `namespace/name` with its tags, only those named in `only` when given.
async fn find_stream(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
    only: Option<&[String]>,
) -> StorageResult<Option<StreamRecord>> {
    let rows: Vec<StreamRow> = sqlx::query_as(&format!(
        "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
         WHERE n.name = $1 AND s.name = $2"
    ))
    .bind(namespace)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(load_streams(conn, rows, only).await?.into_iter().next())
}

#[async_trait]
impl ImageStreamStore for PostgresDatabase {
    async fn list_namespaces(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<NamespaceRecord>> {
        let rows: Vec<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name > $1 ORDER BY name LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(NamespaceRow::into_record).collect()
    }

    async fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRecord>> {
        let row: Option<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = $1"
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
        let mut tx = self.begin_stream_write().await?;
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
        let mut tx = self.begin_stream_write().await?;
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
             WHERE n.name = $1 AND s.name > $2 ORDER BY s.name LIMIT $3"
        ))
        .bind(namespace)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        load_streams(&mut conn, rows, None).await
    }

    async fn count_streams_after(&self, namespace: &str, after: &str) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = $1 AND s.name > $2",
        )
        .bind(namespace)
        .bind(after)
        .fetch_one(&self.pool)
        .await?;
        size_from_db(count)
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
             WHERE n.name >= $1 AND (n.name > $1 OR s.name > $2)
             ORDER BY n.name, s.name LIMIT $3"
        ))
        .bind(after_namespace)
        .bind(after_name)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        load_streams(&mut conn, rows, None).await
    }

    async fn get_stream(&self, namespace: &str, name: &str) -> StorageResult<Option<StreamRecord>> {
        let mut conn = self.pool.acquire().await?;
        find_stream(&mut conn, namespace, name, None).await
    }

    async fn scheduled_imports(&self) -> StorageResult<Vec<(RepositoryName, String, String)>> {
        let rows: Vec<ScheduledImportRow> = sqlx::query_as(
            "SELECT r.name AS repository, s.name AS tag, s.reference::text AS reference
             FROM spec_tags s JOIN repositories r ON r.id = s.repository_id
             WHERE s.reference->'importPolicy'->>'scheduled' = 'true'
               AND s.reference->'from'->>'kind' = 'DockerImage'
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
            "AND s.name = ANY($3)"
        } else {
            "AND $3::text[] IS NULL"
        };
        let matching = format!(
            "SELECT s.repository_id, s.name FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = $1 AND ($2 = '' OR strpos(s.name, $2) > 0) {only_clause}"
        );
        let aggregates = format!(
            "(SELECT COUNT(*) FROM tags t WHERE t.repository_id = m.repository_id) AS tag_count,
             (SELECT max(t.updated_at) FROM tags t WHERE t.repository_id = m.repository_id) AS updated,
             (SELECT {IMAGES_SIZE} FROM manifests x
                WHERE x.digest IN (SELECT t.digest FROM tags t WHERE t.repository_id = m.repository_id)) AS size,
             (SELECT t.name FROM tags t WHERE t.repository_id = m.repository_id
                ORDER BY t.updated_at DESC, t.name LIMIT 1) AS latest"
        );
        // By name the page is cut first and only its rows are measured; the other orders need
        // every matching row's measures. Streams without tags come last by update, as on SQLite.
        let sql = match sort {
            SummarySort::Name => format!(
                "WITH m AS ({matching} ORDER BY s.name LIMIT $4 OFFSET $5)
                 SELECT m.name, {aggregates} FROM m ORDER BY m.name"
            ),
            SummarySort::Updated => format!(
                "WITH m AS ({matching})
                 SELECT m.name, {aggregates} FROM m
                 ORDER BY updated DESC NULLS LAST, m.name LIMIT $4 OFFSET $5"
            ),
            SummarySort::Size => format!(
                "WITH m AS ({matching})
                 SELECT m.name, {aggregates} FROM m ORDER BY size DESC, m.name LIMIT $4 OFFSET $5"
            ),
        };
        // One snapshot for the page and its count.
        let mut tx = self.begin_snapshot().await?;
        let rows: Vec<SummaryRow> = sqlx::query_as(&sql)
            .bind(namespace)
            .bind(filter)
            .bind(only)
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({matching}) m"))
            .bind(namespace)
            .bind(filter)
            .bind(only)
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
        let rows: Vec<UsageRow> = sqlx::query_as(&format!(
            "SELECT n.name, n.created_at,
                    (SELECT COUNT(*) FROM image_streams s WHERE s.namespace_id = n.id) AS streams,
                    (SELECT {IMAGES_SIZE} FROM manifests x
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
        let mut conn = self.pool.acquire().await?;
        find_stream(&mut conn, namespace, name, Some(tags)).await
    }

    async fn change_stream(
        &self,
        change: &StreamChange,
    ) -> StorageResult<Result<StreamRecord, StreamChangeError>> {
        let mut tx = self.begin_stream_write().await?;
        let changed = stream_rules::change_stream(&mut *tx, change).await?;
        if changed.is_ok() {
            self.commit(tx).await?;
        }
        Ok(changed)
    }

    async fn delete_stream(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        let mut tx = self.begin_stream_write().await?;
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
             WHERE n.name = $1 AND s.name >= $2 AND (s.name > $2 OR t.name > $3)
             ORDER BY s.name, t.name LIMIT $4",
        )
        .bind(namespace)
        .bind(after_stream)
        .bind(after_tag)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_image(&self, digest: &Digest) -> StorageResult<Option<ImageRecord>> {
        let row: Option<ImageRow> = sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest = $1"
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
        let digests: Vec<String> = digests.iter().map(Digest::to_string).collect();
        let rows: Vec<ImageRow> = sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest = ANY($1)"
        ))
        .bind(&digests)
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
            "SELECT m.digest, m.media_type, m.size, m.image::text AS image, m.created_at
             FROM repository_manifests rm
             JOIN repositories r ON r.id = rm.repository_id
             JOIN manifests m ON m.digest = rm.digest
             WHERE r.name = $1 AND rm.digest = $2",
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
            "SELECT {IMAGE_COLUMNS} FROM manifests WHERE digest > $1 ORDER BY digest LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
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
        let mut conditions = vec!["id > $1".to_owned(), "id <= $2".to_owned()];
        let mut column = |name: &str| {
            conditions.push(format!("{name} = ${}", conditions.len() + 1));
        };
        if filter.kind.is_some() {
            column("kind");
        }
        if filter.namespace.is_some() {
            column("namespace");
        }
        if filter.name.is_some() {
            column("name");
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY id LIMIT ${}",
            conditions.join(" AND "),
            conditions.len() + 1
        );
        // The newest id and the matching events from one snapshot: events commit in id order
        // (appends are serialised), so everything up to `latest` is in it.
        let mut tx = self.begin_snapshot().await?;
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
        let rows = query.bind(i64::from(limit)).fetch_all(&mut *tx).await?;
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
                  WHERE created_at < $1 AND id <= $2 AND id < (SELECT max(id) FROM events)
                  ORDER BY id LIMIT $3)",
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
