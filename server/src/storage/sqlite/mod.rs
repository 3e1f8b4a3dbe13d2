//! The embedded metadata store: SQLite in WAL mode through sqlx, migrated at start.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions so that concurrent writers queue on SQLite's
//! write lock (with a busy timeout) instead of failing when a read lock cannot be upgraded.
//! `registry.rs` implements [`super::MetadataStore`], `streams.rs` [`super::ImageStreamStore`],
//! `auth.rs` [`super::auth::AuthStore`], `secrets.rs` [`super::secrets::RegistrySecretStore`],
//! `webhooks.rs` [`super::webhooks::WebhookStore`], `quotas.rs` [`super::quotas::QuotaStore`]
//! (with the quota rules' statements), `collection.rs` garbage collection's review queue, `coordination.rs` the notifier, leases and
//! sign-in throttling ([`super::coordination`]). The image stream rules (tag moves, tracking
//! tags, generations, events) are `storage/stream_rules.rs`, run on the statements this module
//! implements ([`StreamTx`] for `SqliteConnection`); rows and their checks are
//! `storage/rows.rs`, shared with PostgreSQL.

mod auth;
mod collection;
mod coordination;
mod immutability;
mod lifecycle;
mod quotas;
mod registry;
mod secrets;
mod streams;
mod trusted_keys;
mod webhooks;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use super::immutability::EnforcedRuleRow;
use super::rows::{
    NAMESPACE_COLUMNS, NamespaceRow, STREAM_COLUMNS, StreamRow, TagConditionsRow, assemble_streams,
    history_item, json_array, labels_to_db, like_escaped, size_from_db, size_to_db,
};
use super::stream_rules::{NewEvent, StreamState, StreamTx, TagPoint, TagRow};
use super::{Labels, NamespaceRecord, SpecTagRecord, StorageError, StorageResult, StreamRecord};
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
            // The pool's check before each use (a ping, queued on the connection's worker thread)
            // is kept: a transaction dropped without commit is rolled back by a command queued
            // on that thread, and without the ping the next user could get the connection
            // before the rollback ran, still inside the transaction ("begin_with at non-zero
            // transaction depth", and a write lock held meanwhile).
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

    /// A write transaction: the database's one writer until it ends.
    #[track_caller]
    fn begin_write(&self) -> impl Future<Output = StorageResult<WriteTx>> + Send + use<> {
        let place = std::panic::Location::caller();
        let pool = self.pool.clone();
        async move {
            let tx = super::begin_uncancellable(&pool, Some("BEGIN IMMEDIATE")).await?;
            Ok(WriteTx {
                tx: Some(tx),
                began: std::time::Instant::now(),
                place,
            })
        }
    }

    /// Commits a transaction that may have appended events, and wakes watchers.
    async fn commit(&self, tx: WriteTx) -> StorageResult<()> {
        tx.commit().await?;
        self.changes.send_modify(|count| *count += 1);
        Ok(())
    }
}

/// A transaction holding SQLite's write lock, which every other writer waits for: one held
/// longer than [`SLOW_WRITE`] is logged as it ends, with the place that began it.
pub(super) struct WriteTx {
    tx: Option<sqlx::Transaction<'static, sqlx::Sqlite>>,
    began: std::time::Instant,
    place: &'static std::panic::Location<'static>,
}

const SLOW_WRITE: Duration = Duration::from_secs(1);

impl WriteTx {
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        match self.tx.take() {
            Some(tx) => {
                let committed = tx.commit().await;
                self.report("committed");
                committed
            }
            None => Ok(()),
        }
    }

    pub(super) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        match self.tx.take() {
            Some(tx) => {
                let rolled_back = tx.rollback().await;
                self.report("rolled back");
                rolled_back
            }
            None => Ok(()),
        }
    }

    fn report(&self, end: &str) {
        let held = self.began.elapsed();
        if held > SLOW_WRITE {
            tracing::warn!(
                held_ms = held.as_millis() as u64,
                began_at = %self.place,
                "a write transaction held the database's write lock for over a second ({end})"
            );
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.report("dropped");
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        // Only `commit` and `rollback` take it, and they consume the transaction.
        self.tx.as_deref().expect("an ended transaction")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.tx.as_deref_mut().expect("an ended transaction")
    }
}

/// Whether repository ?1 still needs image ?2 (see `StreamTx::image_held`); ?3 is the time
/// from which a push keeps it.
const IMAGE_HELD: &str = "SELECT
        EXISTS (SELECT 1 FROM tags WHERE repository_id = ?1 AND digest = ?2)
     OR EXISTS (SELECT 1 FROM tag_history WHERE repository_id = ?1 AND digest = ?2)
     OR EXISTS (SELECT 1 FROM repository_manifests
                WHERE repository_id = ?1 AND digest = ?2
                  AND coalesce(pushed_at, created_at) >= ?3)
     OR EXISTS (SELECT 1 FROM repository_manifests WHERE repository_id = ?1 AND subject = ?2)
     OR EXISTS (SELECT 1 FROM manifest_references r
                JOIN repository_manifests rm ON rm.repository_id = ?1 AND rm.digest = r.digest
                WHERE r.child = ?2 AND r.kind = 'manifest')";

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

/// Loads streams (with spec and status tags) in three queries, whatever their number. SQLite
/// builds each stream's tags as one JSON array, so a stream with many tags is one row, not one
/// row per history item.
async fn load_streams(
    conn: &mut SqliteConnection,
    rows: Vec<StreamRow>,
) -> StorageResult<Vec<StreamRecord>> {
    load_streams_with_tags(conn, rows, None).await
}

/// A stream's spec tags or tag history as one JSON array (`tags`), built by SQLite.
#[derive(sqlx::FromRow)]
struct StreamTagsJson {
    repository_id: i64,
    tags: String,
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
                                            CAST(unixepoch(created_at, 'subsec') * 1000 AS INTEGER),
                                            actor)
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
    // Tags with conditions, or with no image at all, are few: read them as rows.
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
    let mut specs = Vec::new();
    for row in spec_rows {
        let entries: Vec<(String, String, i64)> =
            serde_json::from_str(&row.tags).map_err(|err| corrupt("spec tags", err))?;
        specs.extend(entries.into_iter().map(|(name, reference, generation)| {
            (
                row.repository_id,
                SpecTagRecord {
                    name,
                    reference,
                    generation,
                },
            )
        }));
    }
    type HistoryEntry = (
        String,
        Option<String>,
        Option<String>,
        i64,
        i64,
        Option<String>,
    );
    let mut history = Vec::new();
    for row in history_rows {
        let entries: Vec<HistoryEntry> =
            serde_json::from_str(&row.tags).map_err(|err| corrupt("tag history", err))?;
        history.extend(entries.into_iter().map(
            |(tag, digest, external_reference, generation, created, actor)| {
                let created = DateTime::from_timestamp_millis(created).ok_or_else(|| {
                    StorageError::Corrupt(format!("timestamp {created} is out of range"))
                })?;
                let item = history_item(digest, external_reference, generation, created, actor)?;
                Ok((row.repository_id, tag, item))
            },
        ));
    }
    assemble_streams(rows, specs, history, tag_rows)
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

/// The rules' statements on SQLite, run inside a `BEGIN IMMEDIATE` transaction: writers are
/// serialised by SQLite's write lock, so events commit in id order.
#[async_trait]
impl StreamTx for SqliteConnection {
    async fn ensure_repository(&mut self, name: &RepositoryName) -> StorageResult<i64> {
        ensure_repository(self, name).await
    }

    async fn repository_id(&mut self, name: &RepositoryName) -> StorageResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
                .bind(name.as_str())
                .fetch_optional(self)
                .await?,
        )
    }

    async fn delete_repository(&mut self, repository_id: i64) -> StorageResult<()> {
        sqlx::query("DELETE FROM repositories WHERE id = ?")
            .bind(repository_id)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn insert_namespace(
        &mut self,
        name: &str,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO namespaces (name, uid, resource_version, labels, annotations, created_at)
             VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(labels_to_db(labels))
        .bind(labels_to_db(annotations))
        .bind(Utc::now())
        .fetch_optional(self)
        .await?)
    }

    async fn namespace_id(&mut self, name: &str) -> StorageResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM namespaces WHERE name = ?")
                .bind(name)
                .fetch_optional(self)
                .await?,
        )
    }

    async fn set_namespace_version(
        &mut self,
        namespace_id: i64,
        version: i64,
    ) -> StorageResult<()> {
        sqlx::query("UPDATE namespaces SET resource_version = ? WHERE id = ?")
            .bind(version)
            .bind(namespace_id)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn delete_namespace_events(&mut self, name: &str) -> StorageResult<()> {
        sqlx::query("DELETE FROM events WHERE namespace = ?")
            .bind(name)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn namespace_record(&mut self, name: &str) -> StorageResult<Option<NamespaceRecord>> {
        let row: Option<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(self)
        .await?;
        row.map(NamespaceRow::into_record).transpose()
    }

    async fn namespace_streams(&mut self, name: &str) -> StorageResult<Vec<(i64, StreamRecord)>> {
        let rows: Vec<StreamRow> = sqlx::query_as(&format!(
            "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = ? ORDER BY s.name"
        ))
        .bind(name)
        .fetch_all(&mut *self)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.repository_id).collect();
        let streams = load_streams(self, rows).await?;
        Ok(ids.into_iter().zip(streams).collect())
    }

    async fn delete_namespace_rows(&mut self, name: &str) -> StorageResult<()> {
        // Repositories of the namespace that never became streams (blobs only).
        sqlx::query("DELETE FROM repositories WHERE name LIKE ? ESCAPE '\\'")
            .bind(format!("{}/%", like_escaped(name)))
            .execute(&mut *self)
            .await?;
        sqlx::query("DELETE FROM namespaces WHERE name = ?")
            .bind(name)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn stream_state(
        &mut self,
        repository: &RepositoryName,
    ) -> StorageResult<Option<StreamState>> {
        Ok(sqlx::query_as(
            "SELECT s.repository_id, s.generation, s.resource_version
             FROM image_streams s JOIN repositories r ON r.id = s.repository_id
             WHERE r.name = ?",
        )
        .bind(repository.as_str())
        .fetch_optional(self)
        .await?)
    }

    async fn insert_stream(
        &mut self,
        repository_id: i64,
        namespace_id: i64,
        name: &str,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO image_streams (repository_id, namespace_id, name, uid, generation, resource_version, created_at)
             VALUES (?, ?, ?, ?, 1, 0, ?)",
        )
        .bind(repository_id)
        .bind(namespace_id)
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(Utc::now())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_stream_version(&mut self, repository_id: i64, version: i64) -> StorageResult<()> {
        sqlx::query("UPDATE image_streams SET resource_version = ? WHERE repository_id = ?")
            .bind(version)
            .bind(repository_id)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn set_stream_spec(
        &mut self,
        repository_id: i64,
        generation: i64,
        lookup_local: Option<bool>,
    ) -> StorageResult<()> {
        sqlx::query(
            "UPDATE image_streams SET generation = ?, lookup_local = coalesce(?, lookup_local)
             WHERE repository_id = ?",
        )
        .bind(generation)
        .bind(lookup_local)
        .bind(repository_id)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_stream_metadata(
        &mut self,
        repository_id: i64,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<()> {
        sqlx::query("UPDATE image_streams SET labels = ?, annotations = ? WHERE repository_id = ?")
            .bind(labels_to_db(labels))
            .bind(labels_to_db(annotations))
            .bind(repository_id)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn load_stream(&mut self, repository_id: i64) -> StorageResult<Option<StreamRecord>> {
        load_stream(self, repository_id).await
    }

    async fn find_tag(&mut self, repository_id: i64, tag: &str) -> StorageResult<Option<TagRow>> {
        Ok(sqlx::query_as(
            "SELECT digest, external_reference, generation FROM tags WHERE repository_id = ? AND name = ?",
        )
        .bind(repository_id)
        .bind(tag)
        .fetch_optional(self)
        .await?)
    }

    async fn write_tag(
        &mut self,
        repository_id: i64,
        tag: &str,
        point: &TagPoint<'_>,
    ) -> StorageResult<()> {
        let digest = point.digest.map(Digest::to_string);
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
        .bind(point.external_reference)
        .bind(point.generation)
        .bind(now)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO tag_history (repository_id, tag, digest, external_reference, generation, created_at, actor)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(repository_id)
        .bind(tag)
        .bind(&digest)
        .bind(point.external_reference)
        .bind(point.generation)
        .bind(now)
        .bind(point.actor)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_tag_generation(
        &mut self,
        repository_id: i64,
        tag: &str,
        generation: i64,
    ) -> StorageResult<()> {
        sqlx::query(
            "UPDATE tags SET generation = ?, conditions = NULL WHERE repository_id = ? AND name = ?",
        )
        .bind(generation)
        .bind(repository_id)
        .bind(tag)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "UPDATE tag_history SET generation = ? WHERE id =
                 (SELECT max(id) FROM tag_history WHERE repository_id = ? AND tag = ?)",
        )
        .bind(generation)
        .bind(repository_id)
        .bind(tag)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn tracking_tags(
        &mut self,
        repository: &RepositoryName,
        repository_id: i64,
        tag: &str,
    ) -> StorageResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
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
        .fetch_all(self)
        .await?)
    }

    async fn remove_tag(&mut self, repository_id: i64, tag: &str) -> StorageResult<bool> {
        let spec_removed =
            sqlx::query("DELETE FROM spec_tags WHERE repository_id = ? AND name = ?")
                .bind(repository_id)
                .bind(tag)
                .execute(&mut *self)
                .await?
                .rows_affected()
                > 0;
        sqlx::query("DELETE FROM tags WHERE repository_id = ? AND name = ?")
            .bind(repository_id)
            .bind(tag)
            .execute(self)
            .await?;
        Ok(spec_removed)
    }

    async fn put_spec_tag(
        &mut self,
        repository_id: i64,
        name: &str,
        reference: &str,
        generation: i64,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO spec_tags (repository_id, name, reference, generation) VALUES (?, ?, ?, ?)
             ON CONFLICT (repository_id, name)
             DO UPDATE SET reference = excluded.reference, generation = excluded.generation",
        )
        .bind(repository_id)
        .bind(name)
        .bind(reference)
        .bind(generation)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_tag_conditions(
        &mut self,
        repository_id: i64,
        tag: &str,
        conditions: Option<&str>,
        generation: i64,
    ) -> StorageResult<bool> {
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
            .execute(self)
            .await?,
            None => sqlx::query(
                "UPDATE tags SET conditions = NULL
                 WHERE repository_id = ? AND name = ? AND conditions IS NOT NULL",
            )
            .bind(repository_id)
            .bind(tag)
            .execute(self)
            .await?,
        };
        Ok(written.rows_affected() > 0)
    }

    async fn unlink_manifest(
        &mut self,
        repository_id: i64,
        digest: &Digest,
    ) -> StorageResult<bool> {
        // Tags naming it, and history items of it, go with it (ON DELETE CASCADE).
        Ok(
            sqlx::query("DELETE FROM repository_manifests WHERE repository_id = ? AND digest = ?")
                .bind(repository_id)
                .bind(digest.to_string())
                .execute(self)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn delete_history_items(
        &mut self,
        repository_id: i64,
        ids: &[i64],
        before: DateTime<Utc>,
        keep_newest_of: &[String],
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM tag_history
             WHERE repository_id = ?1 AND id IN (SELECT value FROM json_each(?2)) AND created_at < ?3
               AND NOT (tag IN (SELECT value FROM json_each(?4))
                        AND id = (SELECT max(n.id) FROM tag_history n
                                  WHERE n.repository_id = ?1 AND n.tag = tag_history.tag))
             RETURNING tag",
        )
        .bind(repository_id)
        .bind(json_array(ids)?)
        .bind(before)
        .bind(json_array(keep_newest_of)?)
        .fetch_all(self)
        .await?)
    }

    async fn drop_empty_status_tags(
        &mut self,
        repository_id: i64,
        tags: &[String],
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM tags
             WHERE repository_id = ?1 AND name IN (SELECT value FROM json_each(?2))
               AND NOT EXISTS (SELECT 1 FROM tag_history h
                               WHERE h.repository_id = ?1 AND h.tag = tags.name)
             RETURNING name",
        )
        .bind(repository_id)
        .bind(json_array(tags)?)
        .fetch_all(self)
        .await?)
    }

    async fn image_held(
        &mut self,
        repository_id: i64,
        digest: &Digest,
        since: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let held: bool = sqlx::query_scalar(IMAGE_HELD)
            .bind(repository_id)
            .bind(digest.to_string())
            .bind(since)
            .fetch_one(self)
            .await?;
        Ok(held)
    }

    async fn link_image(&mut self, from: i64, to: i64, digest: &Digest) -> StorageResult<bool> {
        let present: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM repository_manifests WHERE repository_id = ? AND digest = ?",
        )
        .bind(from)
        .bind(digest.to_string())
        .fetch_optional(&mut *self)
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
        .execute(&mut *self)
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
        .execute(&mut *self)
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
        .execute(self)
        .await?;
        Ok(true)
    }

    async fn append_event(&mut self, event: &NewEvent<'_>) -> StorageResult<i64> {
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
        .bind(&event.old_image)
        .bind(&event.new_image)
        .bind(&event.object)
        .bind(Utc::now())
        .fetch_one(self)
        .await?)
    }

    async fn immutability_rules(&mut self, namespace: &str) -> StorageResult<Vec<EnforcedRuleRow>> {
        Ok(sqlx::query_as(
            "SELECT uid, name, resource_version, repositories, tags FROM immutable_tag_rules
             WHERE namespace = ? AND NOT disabled ORDER BY name",
        )
        .bind(namespace)
        .fetch_all(self)
        .await?)
    }

    async fn tags_holding(
        &mut self,
        repository_id: i64,
        digest: &Digest,
    ) -> StorageResult<Vec<String>> {
        // Down from each tag's image through index children (the references' key), rather
        // than up from the digest, which no index serves.
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE held(tag, digest) AS (
                 SELECT name, digest FROM tags WHERE repository_id = ?1 AND digest IS NOT NULL
                 UNION
                 SELECT h.tag, r.child FROM held h
                 JOIN manifest_references r ON r.digest = h.digest AND r.kind = 'manifest')
             SELECT DISTINCT tag FROM held WHERE digest = ?2 ORDER BY tag",
        )
        .bind(repository_id)
        .bind(digest.to_string())
        .fetch_all(self)
        .await?)
    }
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
