//! The embedded metadata store: SQLite in WAL mode through sqlx, migrated at start.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions so that concurrent writers queue on SQLite's
//! write lock (with a busy timeout) instead of failing when a read lock cannot be upgraded.
//! `registry.rs` implements [`super::MetadataStore`], `streams.rs` [`super::ImageStreamStore`],
//! `auth.rs` [`super::auth::AuthStore`], `secrets.rs` [`super::secrets::RegistrySecretStore`],
//! `webhooks.rs` [`super::webhooks::WebhookStore`], `coordination.rs` the notifier, leases and
//! sign-in throttling ([`super::coordination`]);
//! the primitives several need (streams, tags, history, events) are here.
//!
//! A row is read into a `#[derive(sqlx::FromRow)]` struct named for it (`StreamRow`, `TagRow`)
//! whose `into_record` makes the record and holds the checks (digests by [`parse_digest`],
//! sizes by [`size_from_db`], JSON columns); a record whose fields are its columns as they are
//! (a binding, an audit entry) is read directly.

mod auth;
mod coordination;
mod registry;
mod secrets;
mod streams;
mod webhooks;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use super::{
    EventKind, EventType, Labels, SpecTagRecord, StatusTagRecord, StorageError, StorageResult,
    StreamRecord, TagItem,
};
use crate::oci::Digest;
use crate::oci::RepositoryName;

pub struct SqliteMetadata {
    pool: SqlitePool,
    /// Bumped after every committed change, to wake watchers of the event log.
    changes: tokio::sync::watch::Sender<u64>,
    /// This process's subscribers, shared by every store open on the same file here.
    hub: std::sync::Arc<super::coordination::LocalHub>,
    /// This store's name as a replica (see [`super::coordination::new_replica_name`]).
    replica: std::sync::Arc<str>,
}

impl SqliteMetadata {
    /// Opens (creating and migrating where needed) the database at `path`.
    pub async fn open(path: &Path) -> StorageResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The pool's check before each use is a round trip to the connection's worker
            // thread; an in-process database cannot have dropped the connection.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteMetadata {
            pool,
            changes: tokio::sync::watch::Sender::new(0),
            hub: coordination::hub_for(path),
            replica: super::coordination::new_replica_name(),
        })
    }

    /// The connection pool, for components that keep their own tables (console sessions).
    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    async fn begin_write(&self) -> StorageResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Commits a transaction that may have appended events, and wakes watchers.
    async fn commit(&self, tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> StorageResult<()> {
        tx.commit().await?;
        self.changes.send_modify(|count| *count += 1);
        Ok(())
    }
}

fn parse_digest(text: &str) -> StorageResult<Digest> {
    Digest::from_str(text).map_err(|err| StorageError::Corrupt(err.to_string()))
}

fn size_from_db(size: i64) -> StorageResult<u64> {
    u64::try_from(size).map_err(|_| StorageError::Corrupt(format!("negative size {size}")))
}

fn size_to_db(size: u64) -> StorageResult<i64> {
    i64::try_from(size).map_err(|_| StorageError::Corrupt(format!("size {size} is too large")))
}

fn labels_from_db(text: Option<String>) -> StorageResult<Labels> {
    match text {
        None => Ok(Labels::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|err| StorageError::Corrupt(format!("labels: {err}"))),
    }
}

fn labels_to_db(labels: &Labels) -> Option<String> {
    (!labels.is_empty())
        .then(|| serde_json::to_string(labels).ok())
        .flatten()
}

fn json_array<T: serde::Serialize>(items: &[T]) -> StorageResult<String> {
    to_json(&items)
}

fn to_json<T: serde::Serialize>(value: &T) -> StorageResult<String> {
    serde_json::to_string(value).map_err(|err| StorageError::Corrupt(format!("encoding: {err}")))
}

/// The id of repository `name`, created if needed.
async fn ensure_repository(
    conn: &mut SqliteConnection,
    name: &RepositoryName,
) -> StorageResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name
         RETURNING id",
    )
    .bind(name.as_str())
    .bind(Utc::now())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// An event to append to the log.
struct NewEvent<'a> {
    kind: EventKind,
    event_type: EventType,
    namespace: &'a str,
    name: &'a str,
    reason: &'a str,
    tag: Option<&'a str>,
    old_image: Option<String>,
    new_image: Option<String>,
    object: Option<String>,
}

impl<'a> NewEvent<'a> {
    fn namespace(event_type: EventType, name: &'a str, reason: &'a str) -> Self {
        NewEvent {
            kind: EventKind::Namespace,
            event_type,
            namespace: name,
            name,
            reason,
            tag: None,
            old_image: None,
            new_image: None,
            object: None,
        }
    }

    fn stream(event_type: EventType, repository: &'a RepositoryName, reason: &'a str) -> Self {
        NewEvent {
            kind: EventKind::ImageStream,
            event_type,
            namespace: repository.namespace(),
            name: repository.stream(),
            reason,
            tag: None,
            old_image: None,
            new_image: None,
            object: None,
        }
    }
}

/// Appends an event; returns its id, the new resourceVersion.
async fn append_event(conn: &mut SqliteConnection, event: NewEvent<'_>) -> StorageResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO events (kind, type, namespace, name, reason, tag, old_image, new_image, object, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(event.kind.as_str())
    .bind(event.event_type.as_str())
    .bind(event.namespace)
    .bind(event.name)
    .bind(event.reason)
    .bind(event.tag)
    .bind(event.old_image)
    .bind(event.new_image)
    .bind(event.object)
    .bind(Utc::now())
    .fetch_one(conn)
    .await?)
}

/// Appends an event about a stream and makes its id the stream's resourceVersion.
async fn record_stream_event(
    conn: &mut SqliteConnection,
    repository_id: i64,
    event: NewEvent<'_>,
) -> StorageResult<i64> {
    let id = append_event(conn, event).await?;
    sqlx::query("UPDATE image_streams SET resource_version = ? WHERE repository_id = ?")
        .bind(id)
        .bind(repository_id)
        .execute(conn)
        .await?;
    Ok(id)
}

/// Makes namespace `name` and logs its ADDED event, whose id becomes its resourceVersion;
/// returns its id, or `None` when the namespace exists.
async fn add_namespace(
    conn: &mut SqliteConnection,
    name: &str,
    labels: &Labels,
    annotations: &Labels,
) -> StorageResult<Option<i64>> {
    let Some(id) = sqlx::query_scalar::<_, i64>(
        "INSERT INTO namespaces (name, uid, resource_version, labels, annotations, created_at)
         VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(labels_to_db(labels))
    .bind(labels_to_db(annotations))
    .bind(Utc::now())
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    forget_earlier_namespace(conn, name).await?;
    let version = append_event(conn, NewEvent::namespace(EventType::Added, name, "create")).await?;
    sqlx::query("UPDATE namespaces SET resource_version = ? WHERE id = ?")
        .bind(version)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(Some(id))
}

/// The namespace's id, made (with its event) when missing.
async fn ensure_namespace(conn: &mut SqliteConnection, name: &str) -> StorageResult<i64> {
    if let Some(id) = add_namespace(conn, name, &Labels::new(), &Labels::new()).await? {
        return Ok(id);
    }
    Ok(
        sqlx::query_scalar("SELECT id FROM namespaces WHERE name = ?")
            .bind(name)
            .fetch_one(conn)
            .await?,
    )
}

/// Deletes the event log of an earlier namespace of this name, as one is made: whoever makes
/// it now (another tenant, perhaps) must not read, watch or be sent by webhook what happened in
/// the deleted one. Until then only registry-wide roles could see those events, since the
/// namespace's bindings went with it.
async fn forget_earlier_namespace(conn: &mut SqliteConnection, name: &str) -> StorageResult<()> {
    sqlx::query("DELETE FROM events WHERE namespace = ?")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a change to a stream checks and bumps: its repository id (the stream's key), its
/// generation and its resourceVersion.
#[derive(sqlx::FromRow)]
struct StreamState {
    repository_id: i64,
    generation: i64,
    resource_version: i64,
}

/// The stream's [`StreamState`], when the stream exists.
async fn stream_state(
    conn: &mut SqliteConnection,
    repository: &RepositoryName,
) -> StorageResult<Option<StreamState>> {
    Ok(sqlx::query_as(
        "SELECT s.repository_id, s.generation, s.resource_version
         FROM image_streams s JOIN repositories r ON r.id = s.repository_id
         WHERE r.name = ?",
    )
    .bind(repository.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Creates the stream (and its namespace and repository) without recording its event; returns
/// the repository id. The caller records the ADDED event.
async fn create_stream_row(
    conn: &mut SqliteConnection,
    repository: &RepositoryName,
) -> StorageResult<i64> {
    let namespace_id = ensure_namespace(conn, repository.namespace()).await?;
    let repository_id = ensure_repository(conn, repository).await?;
    sqlx::query(
        "INSERT INTO image_streams (repository_id, namespace_id, name, uid, generation, resource_version, created_at)
         VALUES (?, ?, ?, ?, 1, 0, ?)",
    )
    .bind(repository_id)
    .bind(namespace_id)
    .bind(repository.stream())
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(Utc::now())
    .execute(conn)
    .await?;
    Ok(repository_id)
}

/// Where a tag points after a move.
struct TagPoint<'a> {
    digest: Option<&'a Digest>,
    external_reference: Option<&'a str>,
    generation: i64,
}

/// Where a tag points now: a row of `tags`.
#[derive(sqlx::FromRow)]
struct TagRow {
    digest: Option<String>,
    external_reference: Option<String>,
    generation: i64,
}

impl TagRow {
    /// The tag's row, when the stream has the tag.
    async fn find(
        conn: &mut SqliteConnection,
        repository_id: i64,
        tag: &str,
    ) -> StorageResult<Option<TagRow>> {
        Ok(sqlx::query_as(
            "SELECT digest, external_reference, generation FROM tags WHERE repository_id = ? AND name = ?",
        )
        .bind(repository_id)
        .bind(tag)
        .fetch_optional(conn)
        .await?)
    }

    /// The image it names, as events say it: the digest, else the external reference.
    fn into_image(self) -> Option<String> {
        self.digest.or(self.external_reference)
    }
}

/// Points a tag at an image, adding a history item when it is not already there. Returns the
/// image it named before (`Some(None)` for a new tag), or `None` when nothing changed.
async fn move_tag(
    conn: &mut SqliteConnection,
    repository_id: i64,
    tag: &str,
    point: &TagPoint<'_>,
) -> StorageResult<Option<Option<String>>> {
    let current = TagRow::find(conn, repository_id, tag).await?;
    let digest = point.digest.map(Digest::to_string);
    let external = point.external_reference.map(str::to_owned);
    if let Some(old) = &current
        && old.digest == digest
        && old.external_reference == external
        && (digest.is_some() || external.is_some())
    {
        if old.generation == point.generation {
            return Ok(None);
        }
        // The same image for a newer spec: as OpenShift does, the newest item takes the new
        // generation instead of a duplicate item being added.
        sqlx::query("UPDATE tags SET generation = ?, conditions = NULL WHERE repository_id = ? AND name = ?")
            .bind(point.generation)
            .bind(repository_id)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE tag_history SET generation = ? WHERE id =
                 (SELECT max(id) FROM tag_history WHERE repository_id = ? AND tag = ?)",
        )
        .bind(point.generation)
        .bind(repository_id)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
        return Ok(Some(current.and_then(TagRow::into_image)));
    }
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO tags (repository_id, name, digest, external_reference, generation, conditions, updated_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?)
         ON CONFLICT (repository_id, name) DO UPDATE SET
             digest = excluded.digest, external_reference = excluded.external_reference,
             generation = excluded.generation, conditions = NULL, updated_at = excluded.updated_at",
    )
    .bind(repository_id)
    .bind(tag)
    .bind(&digest)
    .bind(&external)
    .bind(point.generation)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO tag_history (repository_id, tag, digest, external_reference, generation, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(repository_id)
    .bind(tag)
    .bind(&digest)
    .bind(&external)
    .bind(point.generation)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(Some(current.and_then(TagRow::into_image)))
}

/// After a tag of a stream moved to `digest`, moves the spec tags of the same stream that
/// track it (`from: ImageStreamTag <stream>:<tag>`, not `reference`) along, as OpenShift does.
async fn move_tracking_tags(
    conn: &mut SqliteConnection,
    repository: &RepositoryName,
    repository_id: i64,
    tag: &str,
    digest: &Digest,
) -> StorageResult<Vec<String>> {
    /// A spec tag that tracks the moved one, with the generation of its last change.
    #[derive(sqlx::FromRow)]
    struct TrackingTag {
        name: String,
        generation: i64,
    }
    let tracking: Vec<TrackingTag> = sqlx::query_as(
        "SELECT name, generation FROM spec_tags
         WHERE repository_id = ? AND name <> ?
           AND json_extract(reference, '$.from.kind') = 'ImageStreamTag'
           AND json_extract(reference, '$.from.name') IN (?, ?)
           AND coalesce(json_extract(reference, '$.from.namespace'), '') IN ('', ?)
           AND coalesce(json_extract(reference, '$.reference'), 0) = 0",
    )
    .bind(repository_id)
    .bind(tag)
    .bind(format!("{}:{tag}", repository.stream()))
    .bind(format!(":{tag}"))
    .bind(repository.namespace())
    .fetch_all(&mut *conn)
    .await?;
    let mut moved = Vec::new();
    for tracking in tracking {
        let point = TagPoint {
            digest: Some(digest),
            external_reference: None,
            generation: tracking.generation,
        };
        if move_tag(conn, repository_id, &tracking.name, &point)
            .await?
            .is_some()
        {
            moved.push(tracking.name);
        }
    }
    Ok(moved)
}

/// Links image `digest` of repository `from` (with its child manifests and all their blobs)
/// into repository `to`. False when `from` does not have it. Each blob goes as `from` holds
/// it: a link as a link, a remote link as a remote link (never a link: nobody verified those
/// bytes for `from`, and the stored copy could be another tenant's).
async fn link_image(
    conn: &mut SqliteConnection,
    from: i64,
    to: i64,
    digest: &Digest,
) -> StorageResult<bool> {
    let present: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM repository_manifests WHERE repository_id = ? AND digest = ?",
    )
    .bind(from)
    .bind(digest.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if present.is_none() {
        return Ok(false);
    }
    if from == to {
        return Ok(true);
    }
    // Numbered parameters throughout: sqlx counts unnumbered ones apart from numbered ones.
    let closure = "WITH RECURSIVE closure(digest) AS (
             SELECT ?1 UNION
             SELECT r.child FROM manifest_references r JOIN closure c ON r.digest = c.digest
             WHERE r.kind = 'manifest')";
    let now = Utc::now();
    sqlx::query(&format!(
        "{closure}
         INSERT INTO repository_blobs (repository_id, digest, created_at)
         SELECT DISTINCT ?2, r.child, ?4 FROM closure c
         JOIN manifest_references r ON r.digest = c.digest AND r.kind = 'blob'
         JOIN repository_blobs held ON held.repository_id = ?3 AND held.digest = r.child
         WHERE true ON CONFLICT DO NOTHING"
    ))
    .bind(digest.to_string())
    .bind(to)
    .bind(from)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "{closure}
         INSERT INTO remote_blobs (repository_id, digest, source, insecure, size)
         SELECT DISTINCT ?2, r.child, held.source, held.insecure, held.size FROM closure c
         JOIN manifest_references r ON r.digest = c.digest AND r.kind = 'blob'
         JOIN remote_blobs held ON held.repository_id = ?3 AND held.digest = r.child
         WHERE NOT EXISTS (SELECT 1 FROM repository_blobs l
                           WHERE l.repository_id = ?2 AND l.digest = r.child)
         ON CONFLICT DO NOTHING"
    ))
    .bind(digest.to_string())
    .bind(to)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "{closure}
         INSERT INTO repository_manifests (repository_id, digest, subject, created_at)
         SELECT ?2, m.digest, m.subject, ?3 FROM closure c JOIN manifests m ON m.digest = c.digest
         WHERE true ON CONFLICT DO NOTHING"
    ))
    .bind(digest.to_string())
    .bind(to)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(true)
}

/// A stream's row with its namespace's name ([`STREAM_COLUMNS`]); its tags are read apart.
#[derive(sqlx::FromRow)]
struct StreamRow {
    repository_id: i64,
    namespace: String,
    name: String,
    uid: String,
    generation: i64,
    resource_version: i64,
    labels: Option<String>,
    annotations: Option<String>,
    lookup_local: bool,
    created_at: DateTime<Utc>,
}

impl StreamRow {
    fn into_record(
        self,
        spec_tags: Vec<SpecTagRecord>,
        status_tags: Vec<StatusTagRecord>,
    ) -> StorageResult<StreamRecord> {
        Ok(StreamRecord {
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            generation: self.generation,
            resource_version: self.resource_version,
            labels: labels_from_db(self.labels)?,
            annotations: labels_from_db(self.annotations)?,
            lookup_local: self.lookup_local,
            created_at: self.created_at,
            spec_tags,
            status_tags,
        })
    }
}

const STREAM_COLUMNS: &str =
    "s.repository_id, n.name AS namespace, s.name, s.uid, s.generation, s.resource_version,
     s.labels, s.annotations, s.lookup_local, s.created_at";

/// A stream's spec tags or tag history as one JSON array (`tags`), built by SQLite.
#[derive(sqlx::FromRow)]
struct StreamTagsJson {
    repository_id: i64,
    tags: String,
}

/// A tag with conditions, or with no image ([`load_streams_with_tags`] reads these as rows).
#[derive(sqlx::FromRow)]
struct TagConditionsRow {
    repository_id: i64,
    name: String,
    conditions: Option<String>,
}

/// Loads streams (with spec and status tags) in three queries, whatever their number. SQLite
/// builds each stream's tags as one JSON array, so a stream with many tags is one row, not one
/// row per history item.
async fn load_streams(
    conn: &mut SqliteConnection,
    rows: Vec<StreamRow>,
) -> StorageResult<Vec<StreamRecord>> {
    load_streams_with_tags(conn, rows, None).await
}

/// As [`load_streams`], keeping only the tags named in `only` (a JSON array) when given.
async fn load_streams_with_tags(
    conn: &mut SqliteConnection,
    rows: Vec<StreamRow>,
    only: Option<&str>,
) -> StorageResult<Vec<StreamRecord>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.repository_id).collect();
    let ids_json = json_array(&ids)?;
    // Separate statements with and without the filter, so that each uses its index.
    let filter = |column: &str| match only {
        Some(_) => format!("AND {column} IN (SELECT value FROM json_each(?2))"),
        None => String::new(),
    };
    let spec_rows: Vec<StreamTagsJson> = sqlx::query_as(&format!(
        "SELECT repository_id,
                json_group_array(json_array(name, reference, generation) ORDER BY name) AS tags
         FROM spec_tags
         WHERE repository_id IN (SELECT value FROM json_each(?1)) {}
         GROUP BY repository_id",
        filter("name")
    ))
    .bind(&ids_json)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    let history_rows: Vec<StreamTagsJson> = sqlx::query_as(&format!(
        "SELECT repository_id,
                json_group_array(json_array(tag, digest, external_reference, generation,
                                            CAST(unixepoch(created_at, 'subsec') * 1000 AS INTEGER))
                                 ORDER BY tag, id DESC) AS tags
         FROM tag_history
         WHERE repository_id IN (SELECT value FROM json_each(?1)) {}
         GROUP BY repository_id",
        filter("tag")
    ))
    .bind(&ids_json)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    // Tags with conditions, or with no image at all, are few: read them as rows. (A tag that
    // names an image has that image as its newest history item.)
    let tag_rows: Vec<TagConditionsRow> = sqlx::query_as(&format!(
        "SELECT repository_id, name, conditions FROM tags
         WHERE repository_id IN (SELECT value FROM json_each(?1)) {}
           AND (conditions IS NOT NULL OR (digest IS NULL AND external_reference IS NULL))",
        filter("name")
    ))
    .bind(&ids_json)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;

    let corrupt =
        |what: &str, err: serde_json::Error| StorageError::Corrupt(format!("{what}: {err}"));
    let mut specs: HashMap<i64, Vec<SpecTagRecord>> = HashMap::new();
    for row in spec_rows {
        let entries: Vec<(String, String, i64)> =
            serde_json::from_str(&row.tags).map_err(|err| corrupt("spec tags", err))?;
        specs.insert(
            row.repository_id,
            entries
                .into_iter()
                .map(|(name, reference, generation)| SpecTagRecord {
                    name,
                    reference,
                    generation,
                })
                .collect(),
        );
    }
    type HistoryEntry = (String, Option<String>, Option<String>, i64, i64);
    let mut statuses: HashMap<i64, Vec<StatusTagRecord>> = HashMap::new();
    for row in history_rows {
        let entries: Vec<HistoryEntry> =
            serde_json::from_str(&row.tags).map_err(|err| corrupt("tag history", err))?;
        let tags = statuses.entry(row.repository_id).or_default();
        for (tag, digest, external_reference, generation, created) in entries {
            let item = TagItem {
                digest: digest.as_deref().map(parse_digest).transpose()?,
                external_reference,
                generation,
                created: DateTime::from_timestamp_millis(created).ok_or_else(|| {
                    StorageError::Corrupt(format!("timestamp {created} is out of range"))
                })?,
            };
            match tags.last_mut() {
                Some(last) if last.name == tag => last.items.push(item),
                _ => tags.push(StatusTagRecord {
                    name: tag,
                    items: vec![item],
                    conditions: None,
                }),
            }
        }
    }
    for TagConditionsRow {
        repository_id,
        name,
        conditions,
    } in tag_rows
    {
        let tags = statuses.entry(repository_id).or_default();
        match tags.iter_mut().find(|t| t.name == name) {
            Some(tag) => tag.conditions = conditions,
            None => {
                let at = tags.partition_point(|t| t.name < name);
                tags.insert(
                    at,
                    StatusTagRecord {
                        name,
                        items: Vec::new(),
                        conditions,
                    },
                );
            }
        }
    }

    rows.into_iter()
        .map(|row| {
            let id = row.repository_id;
            row.into_record(
                specs.remove(&id).unwrap_or_default(),
                statuses.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

/// One stream by repository id, as stored now (inside a transaction, after a change).
async fn load_stream(
    conn: &mut SqliteConnection,
    repository_id: i64,
) -> StorageResult<Option<StreamRecord>> {
    let rows: Vec<StreamRow> = sqlx::query_as(&format!(
        "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
         WHERE s.repository_id = ?"
    ))
    .bind(repository_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(load_streams(conn, rows).await?.into_iter().next())
}

/// A store in a new temporary folder, for tests: the folder goes with the returned guard.
#[cfg(test)]
async fn temp_store() -> (tempfile::TempDir, SqliteMetadata) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = SqliteMetadata::open(&dir.path().join("berth.db"))
        .await
        .expect("opening the store");
    (dir, store)
}

/// A database at `path` migrated up to `version` only, as an older Berth left it: for tests
/// of what a later migration does to existing rows.
#[cfg(test)]
async fn pool_at_migration(path: &Path, version: i64) -> SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePool::connect_with(options)
        .await
        .expect("opening the database");
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.migrations = std::borrow::Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
    );
    migrator.run(&pool).await.expect("migrating");
    pool
}
