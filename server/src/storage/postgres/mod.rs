//! The shared metadata store: PostgreSQL through sqlx, for any number of replicas.
//!
//! [`PostgresDatabase::open`] connects a pool (its size and a statement timeout from
//! [`PostgresSettings`]) and applies `migrations/postgres`, serialised across replicas by an
//! advisory lock ([`migrate`] does only that, for `berth migrate`). `registry.rs` implements
//! [`super::MetadataStore`], `streams.rs` [`super::ImageStreamStore`], `auth.rs`
//! [`super::auth::AuthStore`], `secrets.rs` [`super::secrets::RegistrySecretStore`],
//! `webhooks.rs` [`super::webhooks::WebhookStore`], `quotas.rs` [`super::quotas::QuotaStore`]
//! (with the quota rules' statements, `storage/quota_rules.rs`); the image stream rules are
//! `storage/stream_rules.rs`, run on the statements this module implements ([`StreamTx`] for
//! `PgConnection`), the access and webhook rules `storage/auth_rules.rs` and
//! `storage/webhook_rules.rs` (on `IdentityTx`, `BindingTx` and `WebhookTx`, implemented in
//! those files), and rows are read by `storage/rows.rs`, as on SQLite.
//!
//! Two things SQLite gives by having one writer are made explicit here:
//! - The event log commits in id order. Every transaction that may append an event (all the
//!   image stream writes) takes one transaction-scoped advisory lock ([`STREAM_WRITE_LOCK`])
//!   first, and [`StreamTx::append_event`] takes it again before its insert; it is released
//!   only once the commit is visible, so the next event's id is drawn after it, and a reader of
//!   the events after the last id it saw never skips one that committed late. The same lock
//!   makes the rules' read-then-write steps (a resourceVersion check, a tag move) atomic.
//! - Watchers on every replica wake: an appended event also sends `NOTIFY` on [`CHANNEL`]
//!   (delivered at commit), and each database relays what its listener hears to the receivers
//!   of [`super::ImageStreamStore::changes`].
//!
//! `collection.rs` holds garbage collection's review queue statements (claims and reviews, with
//! their lock order); `coordination.rs` implements the notifier, leases and sign-in throttling
//! ([`super::coordination`]); the notifier's channels are heard on the same listening
//! connection as [`CHANNEL`], one per process.

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

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use super::immutability::EnforcedRuleRow;
use super::rows::{
    NAMESPACE_COLUMNS, NamespaceRow, STREAM_COLUMNS, StreamRow, TagConditionsRow, assemble_streams,
    history_item, labels_to_db, like_escaped,
};
use super::stream_rules::{NewEvent, StreamState, StreamTx, TagPoint, TagRow};
use super::{Labels, NamespaceRecord, SpecTagRecord, StorageResult, StreamRecord};
use crate::oci::{Digest, RepositoryName};

/// The advisory lock key held while migrating ("berth" in ASCII), so that replicas starting
/// together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x62_6572_7468;

/// The advisory lock key of image stream writes ("berthev"): held by each transaction that
/// appends events, until it ends.
const STREAM_WRITE_LOCK: i64 = 0x62_6572_7468_6576;

/// The notification channel of the event log.
const CHANNEL: &str = "berth_events";

/// How to connect: pool size and the longest a statement may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    pub max_connections: u32,
    /// `statement_timeout` of every connection; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            max_connections: 16,
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Every metadata store on one PostgreSQL database.
pub struct PostgresDatabase {
    pool: PgPool,
    /// Bumped after every committed change here, and whenever the listener hears of one
    /// (from any replica), to wake watchers of the event log.
    changes: tokio::sync::watch::Sender<u64>,
    /// The task relaying notifications into `changes` and `hub`; stopped with the database.
    relay: tokio::task::AbortHandle,
    /// This process's subscribers of the notifier's topics.
    hub: std::sync::Arc<super::coordination::LocalHub>,
    /// This process's name among the replicas.
    replica: std::sync::Arc<str>,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl PostgresDatabase {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`), migrates it,
    /// and starts listening for changes made through other pools.
    pub async fn open(url: &str, settings: &PostgresSettings) -> StorageResult<Self> {
        let options = connect_options(url, settings)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .connect_with(options.clone())
            .await?;
        migrate_pool(&pool).await?;
        let changes = tokio::sync::watch::Sender::new(0);
        // The listener keeps a connection of its own, out of the pool's count. Listening
        // before `open` returns: a change committed after it wakes receivers. It hears the
        // event log's channel and the notifier's, one connection per process.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut listener = PgListener::connect_with(&listener_pool).await?;
        let channels = super::coordination::Topic::ALL.map(|topic| topic.channel());
        listener
            .listen_all(std::iter::once(CHANNEL).chain(channels))
            .await?;
        let hub = std::sync::Arc::new(super::coordination::LocalHub::default());
        let relay = tokio::spawn(relay_notifications(
            listener_pool,
            listener,
            changes.clone(),
            hub.clone(),
        ));
        Ok(PostgresDatabase {
            pool,
            changes,
            relay: relay.abort_handle(),
            hub,
            replica: super::coordination::new_replica_name(),
        })
    }

    /// The connection pool, for components that keep their own tables (console sessions).
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// Begins a transaction that a cancelled caller cannot leave open. sqlx 0.8 counts a
    /// transaction only once BEGIN's answer is read, so a future dropped in between (a client
    /// gone, a watch closed) returned the connection to the pool inside a transaction nothing
    /// ended: every later statement on it ran there, in a read-only snapshot or an aborted
    /// transaction, until the connection closed (sqlx issues 4385 and 4393, fixed after 0.8.6).
    /// BEGIN runs in a task of its own here; dropped unclaimed, its transaction rolls back as
    /// any other does.
    async fn begin(&self) -> StorageResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        super::begin_uncancellable(&self.pool, None).await
    }

    /// [`Self::begin`] of a read-only transaction on one snapshot.
    async fn begin_snapshot(&self) -> StorageResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        super::begin_uncancellable(
            &self.pool,
            Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        )
        .await
    }

    /// Begins a transaction that changes image streams (and so may append events), holding
    /// [`STREAM_WRITE_LOCK`] until it ends. Every transaction that runs a rule of
    /// `stream_rules` (`add_namespace` included) must begin here: taking the lock only at its
    /// first event, after writing rows another writer may wait for, could deadlock.
    async fn begin_stream_write(
        &self,
    ) -> StorageResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.begin().await?;
        lock_stream_writes(&mut tx).await?;
        Ok(tx)
    }

    /// Commits a transaction that may have appended events, and wakes this replica's watchers
    /// at once (other replicas' through the notification).
    async fn commit(&self, tx: sqlx::Transaction<'static, sqlx::Postgres>) -> StorageResult<()> {
        tx.commit().await?;
        self.changes.send_modify(|count| *count += 1);
        Ok(())
    }
}

async fn lock_stream_writes(conn: &mut PgConnection) -> StorageResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(STREAM_WRITE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Relays notifications of the event log into `changes`, and the notifier's into `hub`, until
/// the pool closes. A lost connection counts as a change (notifications sent meanwhile are
/// lost; watchers read from their last id, so a spurious wake costs one read) and tells every
/// subscriber that messages may have been lost; the listener reconnects by itself.
async fn relay_notifications(
    pool: PgPool,
    mut listener: PgListener,
    changes: tokio::sync::watch::Sender<u64>,
    hub: std::sync::Arc<super::coordination::LocalHub>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification))
                if coordination::deliver(&hub, notification.channel(), notification.payload()) => {}
            Ok(Some(_)) => changes.send_modify(|count| *count += 1),
            Ok(None) => {
                changes.send_modify(|count| *count += 1);
                hub.missed_all();
            }
            Err(_) if pool.is_closed() => return,
            Err(err) => {
                tracing::warn!("listening for changes in PostgreSQL failed: {err}");
                changes.send_modify(|count| *count += 1);
                hub.missed_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// How to connect to `url` with `settings`.
fn connect_options(url: &str, settings: &PostgresSettings) -> StorageResult<PgConnectOptions> {
    let options: PgConnectOptions = url.parse()?;
    Ok(match settings.statement_timeout {
        Some(timeout) => {
            options.options([("statement_timeout", format!("{}", timeout.as_millis()))])
        }
        None => options,
    })
}

/// Applies the migrations to the database at `url` and returns: `berth migrate`.
pub async fn migrate(url: &str, settings: &PostgresSettings) -> StorageResult<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect_options(url, settings)?)
        .await?;
    let migrated = migrate_pool(&pool).await;
    pool.close().await;
    migrated
}

/// Applies the migrations holding [`MIGRATION_LOCK`] on one connection: a replica that waited
/// finds them applied. Neither the wait nor a migration is cut by the statement timeout.
async fn migrate_pool(pool: &PgPool) -> StorageResult<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let migrated = sqlx::migrate!("./migrations/postgres")
        .run(&mut *conn)
        .await;
    // Unlocked whatever the outcome (the lock would otherwise go only with the connection).
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    // Back to the timeout the connection was opened with, before it returns to the pool.
    sqlx::query("RESET statement_timeout")
        .execute(&mut *conn)
        .await?;
    Ok(migrated?)
}

/// The id of repository `name`, created if needed.
async fn ensure_repository(conn: &mut PgConnection, name: &RepositoryName) -> StorageResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name
         RETURNING id",
    )
    .bind(name.as_str())
    .bind(Utc::now())
    .fetch_one(conn)
    .await?)
}

/// A spec tag as read, with its stream's repository id.
#[derive(sqlx::FromRow)]
struct SpecTagRow {
    repository_id: i64,
    name: String,
    reference: String,
    generation: i64,
}

/// A history item as read, with its stream's repository id and tag.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    repository_id: i64,
    tag: String,
    digest: Option<String>,
    external_reference: Option<String>,
    generation: i64,
    created_at: chrono::DateTime<Utc>,
    actor: Option<String>,
}

/// Loads streams (with spec and status tags) in three queries, whatever their number; only
/// the tags named in `only` when given.
async fn load_streams(
    conn: &mut PgConnection,
    rows: Vec<StreamRow>,
    only: Option<&[String]>,
) -> StorageResult<Vec<StreamRecord>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.repository_id).collect();
    // Separate statements with and without the filter, so that each uses its index.
    let filter = |column: &str| match only {
        Some(_) => format!("AND {column} = ANY($2)"),
        None => "AND $2::text[] IS NULL".to_owned(),
    };
    let specs: Vec<SpecTagRow> = sqlx::query_as(&format!(
        "SELECT repository_id, name, reference::text AS reference, generation FROM spec_tags
         WHERE repository_id = ANY($1) {} ORDER BY repository_id, name",
        filter("name")
    ))
    .bind(&ids)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    let history: Vec<HistoryRow> = sqlx::query_as(&format!(
        "SELECT repository_id, tag, digest, external_reference, generation, created_at, actor
         FROM tag_history WHERE repository_id = ANY($1) {}
         ORDER BY repository_id, tag, id DESC",
        filter("tag")
    ))
    .bind(&ids)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    // Tags with conditions, or with no image at all, are few.
    let conditions: Vec<TagConditionsRow> = sqlx::query_as(&format!(
        "SELECT repository_id, name, conditions FROM tags
         WHERE repository_id = ANY($1) {}
           AND (conditions IS NOT NULL OR (digest IS NULL AND external_reference IS NULL))",
        filter("name")
    ))
    .bind(&ids)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    assemble_streams(
        rows,
        specs.into_iter().map(|row| {
            (
                row.repository_id,
                SpecTagRecord {
                    name: row.name,
                    reference: row.reference,
                    generation: row.generation,
                },
            )
        }),
        history.into_iter().map(|row| {
            let item = history_item(
                row.digest,
                row.external_reference,
                row.generation,
                row.created_at,
                row.actor,
            )?;
            Ok((row.repository_id, row.tag, item))
        }),
        conditions,
    )
}

/// One stream by repository id, as stored now (inside a transaction, after a change).
async fn load_stream(
    conn: &mut PgConnection,
    repository_id: i64,
) -> StorageResult<Option<StreamRecord>> {
    let rows: Vec<StreamRow> = sqlx::query_as(&format!(
        "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
         WHERE s.repository_id = $1"
    ))
    .bind(repository_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(load_streams(conn, rows, None).await?.into_iter().next())
}

/// The rules' statements on PostgreSQL, inside a transaction that holds [`STREAM_WRITE_LOCK`].
#[async_trait]
impl StreamTx for PgConnection {
    async fn ensure_repository(&mut self, name: &RepositoryName) -> StorageResult<i64> {
        ensure_repository(self, name).await
    }

    async fn repository_id(&mut self, name: &RepositoryName) -> StorageResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(self)
                .await?,
        )
    }

    async fn delete_repository(&mut self, repository_id: i64) -> StorageResult<()> {
        sqlx::query("DELETE FROM repositories WHERE id = $1")
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
             VALUES ($1, $2, 0, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
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
            sqlx::query_scalar("SELECT id FROM namespaces WHERE name = $1")
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
        sqlx::query("UPDATE namespaces SET resource_version = $1 WHERE id = $2")
            .bind(version)
            .bind(namespace_id)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn delete_namespace_events(&mut self, name: &str) -> StorageResult<()> {
        sqlx::query("DELETE FROM events WHERE namespace = $1")
            .bind(name)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn namespace_record(&mut self, name: &str) -> StorageResult<Option<NamespaceRecord>> {
        let row: Option<NamespaceRow> = sqlx::query_as(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self)
        .await?;
        row.map(NamespaceRow::into_record).transpose()
    }

    async fn namespace_streams(&mut self, name: &str) -> StorageResult<Vec<(i64, StreamRecord)>> {
        let rows: Vec<StreamRow> = sqlx::query_as(&format!(
            "SELECT {STREAM_COLUMNS} FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
             WHERE n.name = $1 ORDER BY s.name"
        ))
        .bind(name)
        .fetch_all(&mut *self)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.repository_id).collect();
        let streams = load_streams(self, rows, None).await?;
        Ok(ids.into_iter().zip(streams).collect())
    }

    async fn delete_namespace_rows(&mut self, name: &str) -> StorageResult<()> {
        // Repositories of the namespace that never became streams (blobs only).
        sqlx::query("DELETE FROM repositories WHERE name LIKE $1 ESCAPE '\\'")
            .bind(format!("{}/%", like_escaped(name)))
            .execute(&mut *self)
            .await?;
        sqlx::query("DELETE FROM namespaces WHERE name = $1")
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
             WHERE r.name = $1",
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
             VALUES ($1, $2, $3, $4, 1, 0, $5)",
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
        sqlx::query("UPDATE image_streams SET resource_version = $1 WHERE repository_id = $2")
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
            "UPDATE image_streams SET generation = $1, lookup_local = coalesce($2, lookup_local)
             WHERE repository_id = $3",
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
        sqlx::query(
            "UPDATE image_streams SET labels = $1, annotations = $2 WHERE repository_id = $3",
        )
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
            "SELECT digest, external_reference, generation FROM tags
             WHERE repository_id = $1 AND name = $2",
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
             VALUES ($1, $2, $3, $4, $5, NULL, $6)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            "UPDATE tags SET generation = $1, conditions = NULL WHERE repository_id = $2 AND name = $3",
        )
        .bind(generation)
        .bind(repository_id)
        .bind(tag)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "UPDATE tag_history SET generation = $1 WHERE id =
                 (SELECT max(id) FROM tag_history WHERE repository_id = $2 AND tag = $3)",
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
             WHERE repository_id = $1 AND name <> $2
               AND reference->'from'->>'kind' = 'ImageStreamTag'
               AND reference->'from'->>'name' IN ($3, $4)
               AND coalesce(reference->'from'->>'namespace', '') IN ('', $5)
               AND (reference->>'reference') IS DISTINCT FROM 'true'",
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
            sqlx::query("DELETE FROM spec_tags WHERE repository_id = $1 AND name = $2")
                .bind(repository_id)
                .bind(tag)
                .execute(&mut *self)
                .await?
                .rows_affected()
                > 0;
        sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND name = $2")
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
            "INSERT INTO spec_tags (repository_id, name, reference, generation)
             VALUES ($1, $2, $3::json, $4)
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
                 VALUES ($1, $2, NULL, NULL, $3, $4, $5)
                 ON CONFLICT (repository_id, name) DO UPDATE SET conditions = excluded.conditions
                 WHERE tags.conditions IS DISTINCT FROM excluded.conditions",
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
                 WHERE repository_id = $1 AND name = $2 AND conditions IS NOT NULL",
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
            sqlx::query(
                "DELETE FROM repository_manifests WHERE repository_id = $1 AND digest = $2",
            )
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
        before: chrono::DateTime<Utc>,
        keep_newest_of: &[String],
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM tag_history
             WHERE repository_id = $1 AND id = ANY($2) AND created_at < $3
               AND NOT (tag = ANY($4)
                        AND id = (SELECT max(n.id) FROM tag_history n
                                  WHERE n.repository_id = $1 AND n.tag = tag_history.tag))
             RETURNING tag",
        )
        .bind(repository_id)
        .bind(ids)
        .bind(before)
        .bind(keep_newest_of)
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
             WHERE repository_id = $1 AND name = ANY($2)
               AND NOT EXISTS (SELECT 1 FROM tag_history h
                               WHERE h.repository_id = $1 AND h.tag = tags.name)
             RETURNING name",
        )
        .bind(repository_id)
        .bind(tags)
        .fetch_all(self)
        .await?)
    }

    async fn image_held(
        &mut self,
        repository_id: i64,
        digest: &Digest,
        since: chrono::DateTime<Utc>,
    ) -> StorageResult<bool> {
        let held: bool = sqlx::query_scalar(
            "SELECT
                    EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND digest = $2)
                 OR EXISTS (SELECT 1 FROM tag_history WHERE repository_id = $1 AND digest = $2)
                 OR EXISTS (SELECT 1 FROM repository_manifests
                            WHERE repository_id = $1 AND digest = $2
                              AND coalesce(pushed_at, created_at) >= $3)
                 OR EXISTS (SELECT 1 FROM repository_manifests
                            WHERE repository_id = $1 AND subject = $2)
                 OR EXISTS (SELECT 1 FROM manifest_references r
                            JOIN repository_manifests rm
                              ON rm.repository_id = $1 AND rm.digest = r.digest
                            WHERE r.child = $2 AND r.kind = 'manifest')",
        )
        .bind(repository_id)
        .bind(digest.to_string())
        .bind(since)
        .fetch_one(self)
        .await?;
        Ok(held)
    }

    async fn link_image(&mut self, from: i64, to: i64, digest: &Digest) -> StorageResult<bool> {
        let present: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM repository_manifests WHERE repository_id = $1 AND digest = $2",
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
        let closure = "WITH RECURSIVE closure(digest) AS (
                 SELECT $1::text COLLATE \"C\" UNION
                 SELECT r.child FROM manifest_references r JOIN closure c ON r.digest = c.digest
                 WHERE r.kind = 'manifest')";
        let now = Utc::now();
        sqlx::query(&format!(
            "{closure}
             INSERT INTO repository_blobs (repository_id, digest, created_at)
             SELECT DISTINCT $2::bigint, r.child, $4::timestamptz FROM closure c
             JOIN manifest_references r ON r.digest = c.digest AND r.kind = 'blob'
             JOIN repository_blobs held ON held.repository_id = $3 AND held.digest = r.child
             ON CONFLICT DO NOTHING"
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
             SELECT DISTINCT $2::bigint, r.child, held.source, held.insecure, held.size
             FROM closure c
             JOIN manifest_references r ON r.digest = c.digest AND r.kind = 'blob'
             JOIN remote_blobs held ON held.repository_id = $3 AND held.digest = r.child
             WHERE NOT EXISTS (SELECT 1 FROM repository_blobs l
                               WHERE l.repository_id = $2 AND l.digest = r.child)
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
             SELECT $2, m.digest, m.subject, $3 FROM closure c JOIN manifests m ON m.digest = c.digest
             ON CONFLICT DO NOTHING"
        ))
        .bind(digest.to_string())
        .bind(to)
        .bind(now)
        .execute(self)
        .await?;
        Ok(true)
    }

    async fn append_event(&mut self, event: &NewEvent<'_>) -> StorageResult<i64> {
        // Taken at the transaction's start already by every writer here; again for safety: the
        // id must be drawn under the lock.
        lock_stream_writes(self).await?;
        let id = sqlx::query_scalar(
            "INSERT INTO events (kind, type, namespace, name, reason, tag, old_image, new_image, object, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
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
        .fetch_one(&mut *self)
        .await?;
        // Delivered at commit; identical notifications of one transaction are sent once.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(self)
            .await?;
        Ok(id)
    }

    async fn immutability_rules(&mut self, namespace: &str) -> StorageResult<Vec<EnforcedRuleRow>> {
        Ok(sqlx::query_as(
            "SELECT uid, name, resource_version, repositories, tags FROM immutable_tag_rules
             WHERE namespace = $1 AND NOT disabled ORDER BY name",
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
                 SELECT name, digest FROM tags WHERE repository_id = $1 AND digest IS NOT NULL
                 UNION
                 SELECT h.tag, r.child FROM held h
                 JOIN manifest_references r ON r.digest = h.digest AND r.kind = 'manifest')
             SELECT DISTINCT tag FROM held WHERE digest = $2 ORDER BY tag",
        )
        .bind(repository_id)
        .bind(digest.to_string())
        .fetch_all(self)
        .await?)
    }
}

/// The store contracts (`storage/contract.rs`) of every store on PostgreSQL, on a fresh database
/// each; the blobs are the data folder's, in a temporary folder.
#[cfg(test)]
mod contracts {
    use std::sync::Arc;

    use super::*;
    use crate::storage::Stores;
    use crate::storage::fs::FsBlobStore;
    use crate::storage::test_infra::postgres;

    /// Every store on `database`; blobs in `folder`.
    async fn stores_on(database: Arc<PostgresDatabase>, folder: &std::path::Path) -> Stores {
        Stores {
            metadata: database.clone(),
            streams: database.clone(),
            auth: database.clone(),
            secrets: database.clone(),
            webhooks: database.clone(),
            lifecycle: database.clone(),
            immutability: database.clone(),
            trusted_keys: database.clone(),
            quotas: database.clone(),
            notifier: database.clone(),
            leases: database.clone(),
            throttle: database.clone(),
            sessions: crate::storage::sessions::ConsoleSessions::Postgres(
                tower_sessions_sqlx_store::PostgresStore::new(database.pool()),
            ),
            blobs: Arc::new(FsBlobStore::open(folder).await.unwrap()),
            spool: None,
        }
    }

    async fn open(url: &str) -> Arc<PostgresDatabase> {
        Arc::new(
            PostgresDatabase::open(url, &PostgresSettings::default())
                .await
                .unwrap(),
        )
    }

    async fn stores() -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores_on(open(&postgres().database()).await, dir.path()).await;
        (dir, stores)
    }

    crate::storage::contract::metadata_contract!(stores());
    crate::storage::contract::streams_contract!(stores());
    crate::storage::contract::webhooks_contract!(stores());
    crate::storage::contract::immutability_contract!(stores());
    crate::storage::contract::auth_contract!(stores());
    crate::storage::contract::secrets_contract!(stores());
    crate::storage::contract::collection_contract!(stores());
    crate::storage::contract::lifecycle_contract!(stores());
    crate::storage::contract::quotas_contract!(stores());
    crate::storage::contract::trusted_keys_contract!(stores());

    /// Two replicas: two databases (two pools, two listeners) on one PostgreSQL database.
    async fn replicas() -> (tempfile::TempDir, Stores, Stores) {
        let url = postgres().database();
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let first = stores_on(open(&url).await, &first).await;
        let second = stores_on(open(&url).await, &second).await;
        (dir, first, second)
    }

    crate::storage::contract::coordination_contract!(replicas());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_infra::postgres;

    #[tokio::test]
    async fn replicas_starting_together_migrate_once() {
        let url = postgres().database();
        let settings = PostgresSettings::default();
        let opened =
            futures_util::future::join_all((0..4).map(|_| PostgresDatabase::open(&url, &settings)))
                .await;
        let databases: Vec<PostgresDatabase> = opened.into_iter().map(Result::unwrap).collect();
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&databases[0].pool)
            .await
            .unwrap();
        // Each migration once.
        let migrations = sqlx::migrate!("./migrations/postgres").iter().count();
        assert_eq!(usize::try_from(applied).unwrap(), migrations);
        // Explicitly again: nothing left to do.
        migrate(&url, &settings).await.unwrap();
    }

    /// A transaction whose caller goes away while BEGIN is in flight leaves no transaction open
    /// on the pooled connection: with sqlx's own begin the next statement on it ran in the
    /// abandoned read-only transaction. (BEGIN is made slow to answer, so that the caller is
    /// dropped after sending it, whatever the polls it took to get a connection.)
    #[tokio::test]
    async fn a_begin_dropped_in_flight_leaves_no_transaction_open() {
        use std::future::Future as _;

        let url = postgres().database();
        let settings = PostgresSettings {
            max_connections: 1,
            ..PostgresSettings::default()
        };
        let database = PostgresDatabase::open(&url, &settings).await.unwrap();
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let mut begin = Box::pin(crate::storage::begin_uncancellable(
            &database.pool,
            Some("BEGIN READ ONLY; SELECT pg_sleep(0.5)"),
        ));
        for _ in 0..3 {
            assert!(begin.as_mut().poll(&mut context).is_pending());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(begin);
        let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
            .fetch_one(&database.pool)
            .await
            .unwrap();
        assert_eq!(
            read_only, "off",
            "a statement ran in an abandoned transaction"
        );
    }

    /// Two databases on one PostgreSQL database are two replicas: a push committed through
    /// one wakes the watchers of the other, which then reads the event.
    #[tokio::test]
    async fn a_change_through_one_replica_wakes_watchers_of_another() {
        use crate::storage::contract::{manifest, repo};
        use crate::storage::{EventFilter, ImageStreamStore, MetadataStore};

        let url = postgres().database();
        let settings = PostgresSettings::default();
        let a = PostgresDatabase::open(&url, &settings).await.unwrap();
        let b = PostgresDatabase::open(&url, &settings).await.unwrap();
        let mut changes = b.changes();
        let mut waits = Vec::new();
        for round in 0..20 {
            changes.mark_unchanged();
            let pushed = std::time::Instant::now();
            let content = format!("{{\"round\":{round}}}");
            a.put_manifest(
                &repo("team/app"),
                &manifest(&content, Vec::new(), None),
                Some(&"latest".parse().unwrap()),
            )
            .await
            .unwrap();
            tokio::time::timeout(Duration::from_secs(1), changes.changed())
                .await
                .expect("woken within a second")
                .unwrap();
            waits.push(pushed.elapsed());
            let latest = a.latest_event_id().await.unwrap();
            let (events, read_to) = b
                .events_after(latest - 1, &EventFilter::default(), 10)
                .await
                .unwrap();
            assert_eq!((events.len(), read_to), (1, latest));
        }
        waits.sort();
        eprintln!(
            "push on one replica to wake on another: median {:?}",
            waits[10]
        );
    }

    #[tokio::test]
    async fn a_statement_past_the_timeout_is_cancelled() {
        let url = postgres().database();
        let settings = PostgresSettings {
            // One connection: the one that migrated, its timeout restored.
            max_connections: 1,
            statement_timeout: Some(Duration::from_millis(200)),
        };
        let database = PostgresDatabase::open(&url, &settings).await.unwrap();
        let err = sqlx::query("SELECT pg_sleep(2)")
            .execute(&database.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("statement timeout"), "{err}");
    }
}
