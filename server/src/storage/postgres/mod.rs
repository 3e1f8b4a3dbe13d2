//! The shared metadata store: PostgreSQL through sqlx, for any number of replicas.
//!
//! [`PostgresDatabase::open`] connects a pool (its size and a statement timeout from
//! [`PostgresSettings`]) and applies `migrations/postgres`, serialised across replicas by an
//! advisory lock ([`migrate`] does only that, for `berth migrate`).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StorageResult;

/// The advisory lock key held while migrating ("berth" in ASCII), so that replicas starting
/// together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x62_6572_7468;

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
}

impl PostgresDatabase {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`) and migrates it.
    pub async fn open(url: &str, settings: &PostgresSettings) -> StorageResult<Self> {
        let pool = connect(url, settings).await?;
        migrate_pool(&pool).await?;
        Ok(PostgresDatabase { pool })
    }

    /// The connection pool, for components that keep their own tables (console sessions).
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }
}

/// A pool on `url` with `settings`, not migrated.
async fn connect(url: &str, settings: &PostgresSettings) -> StorageResult<PgPool> {
    let mut options: PgConnectOptions = url.parse()?;
    if let Some(timeout) = settings.statement_timeout {
        options = options.options([("statement_timeout", format!("{}", timeout.as_millis()))]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .connect_with(options)
        .await?)
}

/// Applies the migrations to the database at `url` and returns: `berth migrate`.
pub async fn migrate(url: &str, settings: &PostgresSettings) -> StorageResult<()> {
    let pool = connect(url, settings).await?;
    let migrated = migrate_pool(&pool).await;
    pool.close().await;
    migrated
}

/// Applies the migrations holding [`MIGRATION_LOCK`] on one connection: a replica that waited
/// finds them applied.
async fn migrate_pool(pool: &PgPool) -> StorageResult<()> {
    let mut conn = pool.acquire().await?;
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
    Ok(migrated?)
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
        assert_eq!(applied, 1);
        // Explicitly again: nothing left to do.
        migrate(&url, &settings).await.unwrap();
    }

    #[tokio::test]
    async fn a_statement_past_the_timeout_is_cancelled() {
        let url = postgres().database();
        let settings = PostgresSettings {
            max_connections: 2,
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
