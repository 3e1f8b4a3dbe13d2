//! Where console sessions are kept: tower-sessions' SQL store on the metadata database, so that
//! with PostgreSQL every replica reads the sessions any of them made.

use async_trait::async_trait;
use tower_sessions::ExpiredDeletion;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

#[derive(Debug, Clone)]
pub enum ConsoleSessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl ConsoleSessions {
    /// Makes the sessions table when missing.
    pub async fn migrate(&self) -> sqlx::Result<()> {
        match self {
            ConsoleSessions::Sqlite(store) => store.migrate().await,
            ConsoleSessions::Postgres(store) => store.migrate().await,
        }
    }

    /// Deletes expired sessions every `period`, until the process ends.
    pub async fn delete_expired_every(self, period: std::time::Duration) -> Result<()> {
        match self {
            ConsoleSessions::Sqlite(store) => store.continuously_delete_expired(period).await,
            ConsoleSessions::Postgres(store) => store.continuously_delete_expired(period).await,
        }
    }
}

#[async_trait]
impl SessionStore for ConsoleSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match self {
            ConsoleSessions::Sqlite(store) => store.create(record).await,
            ConsoleSessions::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        match self {
            ConsoleSessions::Sqlite(store) => store.save(record).await,
            ConsoleSessions::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self {
            ConsoleSessions::Sqlite(store) => store.load(id).await,
            ConsoleSessions::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            ConsoleSessions::Sqlite(store) => store.delete(id).await,
            ConsoleSessions::Postgres(store) => store.delete(id).await,
        }
    }
}
