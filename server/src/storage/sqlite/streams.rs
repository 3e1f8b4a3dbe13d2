//! [`ImageStreamStore`] on SQLite: namespaces, image streams, images and the event log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::registry::untag;
use super::{
    NewEvent, STREAM_COLUMNS, SqliteMetadata, StreamRow, TagPoint, TagRow, add_namespace,
    append_event, create_stream_row, json_array, labels_from_db, labels_to_db, link_image,
    load_stream, load_streams, load_streams_with_tags, move_tag, move_tracking_tags, parse_digest,
    record_stream_event, size_from_db, stream_state, to_json,
};
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::storage::{
    EventFilter, EventKind, EventRecord, EventType, ImageRecord, ImageStreamStore, Labels,
    NamespaceRecord, NamespaceUsage, Presence, StorageError, StorageResult, StreamChange,
    StreamChangeError, StreamRecord, StreamSummaryRecord, SummarySort, TagTarget,
};

/// A stream as the console lists it: its name, tag count, newest tag change, bytes and most
/// recently changed tag.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    name: String,
    tag_count: i64,
    updated: Option<DateTime<Utc>>,
    size: i64,
    latest: Option<String>,
}

impl SummaryRow {
    fn into_record(self) -> StorageResult<StreamSummaryRecord> {
        Ok(StreamSummaryRecord {
            name: self.name,
            tags: size_from_db(self.tag_count)?,
            size: size_from_db(self.size)?,
            updated: self.updated,
            latest_tag: self.latest,
        })
    }
}

/// A namespace with its stream count and the bytes of the images their tags name.
#[derive(sqlx::FromRow)]
struct UsageRow {
    name: String,
    created_at: DateTime<Utc>,
    streams: i64,
    size: i64,
}

impl UsageRow {
    fn into_record(self) -> StorageResult<NamespaceUsage> {
        Ok(NamespaceUsage {
            name: self.name,
            streams: size_from_db(self.streams)?,
            size: size_from_db(self.size)?,
            created_at: self.created_at,
        })
    }
}

/// A spec tag whose reference asks for scheduled imports, with its repository's name.
#[derive(sqlx::FromRow)]
struct ScheduledImportRow {
    repository: String,
    tag: String,
    reference: String,
}

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

#[derive(sqlx::FromRow)]
struct NamespaceRow {
    name: String,
    uid: String,
    resource_version: i64,
    labels: Option<String>,
    annotations: Option<String>,
    created_at: DateTime<Utc>,
}

const NAMESPACE_COLUMNS: &str = "name, uid, resource_version, labels, annotations, created_at";

impl NamespaceRow {
    fn into_record(self) -> StorageResult<NamespaceRecord> {
        Ok(NamespaceRecord {
            name: self.name,
            uid: self.uid,
            resource_version: self.resource_version,
            labels: labels_from_db(self.labels)?,
            annotations: labels_from_db(self.annotations)?,
            created_at: self.created_at,
        })
    }
}

/// A manifest as an image ([`IMAGE_COLUMNS`], or those of `m` where the query joins).
#[derive(sqlx::FromRow)]
struct ImageRow {
    digest: String,
    media_type: String,
    size: i64,
    image: Option<String>,
    created_at: DateTime<Utc>,
}

const IMAGE_COLUMNS: &str = "digest, media_type, size, image, created_at";

impl ImageRow {
    fn into_record(self) -> StorageResult<ImageRecord> {
        Ok(ImageRecord {
            digest: parse_digest(&self.digest)?,
            media_type: self.media_type,
            size: size_from_db(self.size)?,
            image: self.image,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    #[sqlx(rename = "type")]
    event_type: String,
    namespace: String,
    name: String,
    reason: String,
    tag: Option<String>,
    old_image: Option<String>,
    new_image: Option<String>,
    object: Option<String>,
    created_at: DateTime<Utc>,
}

impl EventRow {
    fn into_record(self) -> StorageResult<EventRecord> {
        let kind = match self.kind.as_str() {
            "Namespace" => EventKind::Namespace,
            "ImageStream" => EventKind::ImageStream,
            other => return Err(StorageError::Corrupt(format!("event kind {other}"))),
        };
        let event_type = EventType::parse(&self.event_type)
            .ok_or_else(|| StorageError::Corrupt(format!("event type {}", self.event_type)))?;
        Ok(EventRecord {
            id: self.id,
            kind,
            event_type,
            namespace: self.namespace,
            name: self.name,
            reason: self.reason,
            tag: self.tag,
            old_image: self.old_image,
            new_image: self.new_image,
            object: self.object,
            created_at: self.created_at,
        })
    }
}

/// Writes a tag's status for a target, linking a local image from its source repository.
async fn point_tag(
    conn: &mut SqliteConnection,
    repository_id: i64,
    tag: &str,
    target: &TagTarget,
    generation: i64,
) -> StorageResult<Result<Option<Option<String>>, StreamChangeError>> {
    let point = match target {
        TagTarget::Local { source, digest } => {
            let source_id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
                    .bind(source.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            let missing = || StreamChangeError::SourceMissing {
                repository: source.to_string(),
                digest: digest.to_string(),
            };
            let Some(source_id) = source_id else {
                return Ok(Err(missing()));
            };
            if !link_image(conn, source_id, repository_id, digest).await? {
                return Ok(Err(missing()));
            }
            TagPoint {
                digest: Some(digest),
                external_reference: None,
                generation,
            }
        }
        TagTarget::External { reference, .. } => TagPoint {
            digest: None,
            external_reference: Some(reference),
            generation,
        },
    };
    Ok(Ok(move_tag(conn, repository_id, tag, &point).await?))
}

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

/// Deletes a stream's repository (everything of it cascades) and logs its DELETED event.
async fn delete_stream_in(
    conn: &mut SqliteConnection,
    stream: &StreamRecord,
    repository_id: i64,
) -> StorageResult<()> {
    let object = to_json(stream)?;
    sqlx::query("DELETE FROM repositories WHERE id = ?")
        .bind(repository_id)
        .execute(&mut *conn)
        .await?;
    append_event(
        conn,
        NewEvent {
            kind: EventKind::ImageStream,
            event_type: EventType::Deleted,
            namespace: &stream.namespace,
            name: &stream.name,
            reason: "delete",
            tag: None,
            old_image: None,
            new_image: None,
            object: Some(object),
        },
    )
    .await?;
    Ok(())
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
        if add_namespace(&mut tx, name, labels, annotations)
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
        let Some(namespace) = sqlx::query_as::<_, NamespaceRow>(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let rows: Vec<StreamRow> = sqlx::query_as(&format!(
            "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ? ORDER BY s.name"
        ))
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.repository_id).collect();
        let streams = load_streams(&mut tx, rows).await?;
        for (stream, id) in streams.iter().zip(ids) {
            delete_stream_in(&mut tx, stream, id).await?;
        }
        // Repositories of the namespace that never became streams (blobs only).
        sqlx::query("DELETE FROM repositories WHERE name LIKE ? ESCAPE '\\'")
            .bind(format!(
                "{}/%",
                name.replace('%', "\\%").replace('_', "\\_")
            ))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM namespaces WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let mut event = NewEvent::namespace(EventType::Deleted, name, "delete");
        event.object = Some(to_json(&namespace.into_record()?)?);
        append_event(&mut tx, event).await?;
        self.commit(tx).await?;
        Ok(true)
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
            .map(|row| {
                let repository = row.repository.parse::<RepositoryName>().map_err(|err| {
                    StorageError::Corrupt(format!("repository {:?}: {err}", row.repository))
                })?;
                Ok((repository, row.tag, row.reference))
            })
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
        let existing = stream_state(&mut tx, &change.repository).await?;
        let (repository_id, generation, created) = match (existing, change.presence) {
            (Some(_), Presence::Create) => return Ok(Err(StreamChangeError::AlreadyExists)),
            (None, Presence::Update) => return Ok(Err(StreamChangeError::NotFound)),
            (Some(stream), _) => {
                if let Some(expected) = change.expected_resource_version
                    && expected != stream.resource_version
                {
                    return Ok(Err(StreamChangeError::Conflict {
                        current: stream.resource_version,
                    }));
                }
                (stream.repository_id, stream.generation, false)
            }
            (None, _) => (
                create_stream_row(&mut tx, &change.repository).await?,
                1,
                true,
            ),
        };

        let mut event = NewEvent::stream(
            if created {
                EventType::Added
            } else {
                EventType::Modified
            },
            &change.repository,
            change.reason,
        );
        let mut changed = created;
        if let Some((labels, annotations)) = &change.metadata {
            sqlx::query(
                "UPDATE image_streams SET labels = ?, annotations = ? WHERE repository_id = ?",
            )
            .bind(labels_to_db(labels))
            .bind(labels_to_db(annotations))
            .bind(repository_id)
            .execute(&mut *tx)
            .await?;
            changed = true;
        }
        let mut spec_removed = false;
        for tag in &change.remove_tags {
            let old = TagRow::find(&mut tx, repository_id, tag).await?;
            spec_removed |= untag(&mut tx, repository_id, tag).await?;
            changed = true;
            if change.remove_tags.len() == 1 {
                event.tag = Some(tag);
                event.old_image = old.and_then(TagRow::into_image);
            }
        }
        // Only the spec counts for the generation: removing a pushed (status-only) tag does not.
        let spec_changed =
            change.lookup_local.is_some() || !change.set_spec_tags.is_empty() || spec_removed;
        // A new stream starts at generation 1 with its spec.
        let generation = if spec_changed && !created {
            generation + 1
        } else {
            generation
        };
        if spec_changed {
            sqlx::query(
                "UPDATE image_streams SET generation = ?, lookup_local = coalesce(?, lookup_local)
                 WHERE repository_id = ?",
            )
            .bind(generation)
            .bind(change.lookup_local)
            .bind(repository_id)
            .execute(&mut *tx)
            .await?;
            changed = true;
        }
        for (tag, target) in &change.move_tags {
            match point_tag(&mut tx, repository_id, tag, target, generation).await? {
                Err(err) => return Ok(Err(err)),
                Ok(Some(before)) => {
                    if let TagTarget::Local { digest, .. } = target {
                        move_tracking_tags(&mut tx, &change.repository, repository_id, tag, digest)
                            .await?;
                    }
                    event.tag = Some(tag);
                    event.old_image = before;
                    event.new_image = match target {
                        TagTarget::Local { digest, .. } => Some(digest.to_string()),
                        TagTarget::External { reference, .. } => Some(reference.clone()),
                    };
                    changed = true;
                }
                Ok(None) => {}
            }
        }
        for spec in &change.set_spec_tags {
            sqlx::query(
                "INSERT INTO spec_tags (repository_id, name, reference, generation) VALUES (?, ?, ?, ?)
                 ON CONFLICT (repository_id, name)
                 DO UPDATE SET reference = excluded.reference, generation = excluded.generation",
            )
            .bind(repository_id)
            .bind(&spec.name)
            .bind(&spec.reference)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
            if let Some(target) = &spec.target {
                let moved =
                    point_tag(&mut tx, repository_id, &spec.name, target, generation).await?;
                if let (Ok(Some(_)), TagTarget::Local { digest, .. }) = (&moved, target) {
                    move_tracking_tags(
                        &mut tx,
                        &change.repository,
                        repository_id,
                        &spec.name,
                        digest,
                    )
                    .await?;
                }
                match moved {
                    Err(err) => return Ok(Err(err)),
                    Ok(Some(before)) if change.set_spec_tags.len() == 1 => {
                        event.tag = Some(&spec.name);
                        event.old_image = before;
                        event.new_image = match target {
                            TagTarget::Local { digest, .. } => Some(digest.to_string()),
                            TagTarget::External { reference, .. } => Some(reference.clone()),
                        };
                    }
                    Ok(_) => {}
                }
            }
        }
        for (tag, conditions) in &change.tag_conditions {
            let written = match conditions {
                Some(conditions) => sqlx::query(
                    "INSERT INTO tags (repository_id, name, digest, external_reference, generation, conditions, updated_at)
                     VALUES (?, ?, NULL, NULL, ?, ?, ?)
                     ON CONFLICT (repository_id, name) DO UPDATE SET conditions = excluded.conditions
                     WHERE conditions IS NOT excluded.conditions",
                )
                .bind(repository_id)
                .bind(tag)
                .bind(generation)
                .bind(conditions)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?,
                None => sqlx::query(
                    "UPDATE tags SET conditions = NULL
                     WHERE repository_id = ? AND name = ? AND conditions IS NOT NULL",
                )
                .bind(repository_id)
                .bind(tag)
                .execute(&mut *tx)
                .await?,
            };
            if written.rows_affected() > 0 {
                changed = true;
                event.tag.get_or_insert(tag);
            }
        }
        if changed {
            record_stream_event(&mut tx, repository_id, event).await?;
        }
        let stream = load_stream(&mut tx, repository_id)
            .await?
            .ok_or_else(|| StorageError::Corrupt("a changed stream vanished".into()))?;
        self.commit(tx).await?;
        Ok(Ok(stream))
    }

    async fn delete_stream(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        let Ok(repository) = RepositoryName::of_stream(namespace, name) else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let Some(state) = stream_state(&mut tx, &repository).await? else {
            return Ok(false);
        };
        let repository_id = state.repository_id;
        let stream = load_stream(&mut tx, repository_id)
            .await?
            .ok_or_else(|| StorageError::Corrupt("a stream vanished".into()))?;
        delete_stream_in(&mut tx, &stream, repository_id).await?;
        self.commit(tx).await?;
        Ok(true)
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
            "SELECT id, kind, type, namespace, name, reason, tag, old_image, new_image, object, created_at
             FROM events WHERE {} ORDER BY id LIMIT ?",
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
        let events = rows
            .into_iter()
            .map(EventRow::into_record)
            .collect::<StorageResult<Vec<_>>>()?;
        let scanned = if events.len() >= limit as usize {
            events.last().map_or(after, |e| e.id)
        } else {
            latest.max(after)
        };
        Ok((events, scanned))
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

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
