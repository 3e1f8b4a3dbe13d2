//! Which backend keeps what: the one place that picks them, from the configuration. Today the
//! data folder holds everything: the SQLite database (metadata, image streams, access, secrets,
//! webhooks and console sessions) and the blobs with their upload data.

use std::sync::Arc;

use super::auth::AuthStore;
use super::coordination::{Coordination, LeaseStore, Notifier, ThrottleStore};
use super::fs::FsBlobStore;
use super::secrets::RegistrySecretStore;
use super::sessions::ConsoleSessions;
use super::sqlite::SqliteMetadata;
use super::webhooks::WebhookStore;
use super::{BlobStore, ImageStreamStore, MetadataStore, StorageError, StorageResult};
use crate::config::Config;
use crate::config::database::Database;
use tower_sessions_sqlx_store::SqliteStore;

/// Every store, each behind its trait.
pub struct Stores {
    pub metadata: Arc<dyn MetadataStore>,
    pub streams: Arc<dyn ImageStreamStore>,
    pub auth: Arc<dyn AuthStore>,
    pub secrets: Arc<dyn RegistrySecretStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Messages to every replica (this one included); its `replica()` names this process.
    pub notifier: Arc<dyn Notifier>,
    /// Work done by one replica at a time.
    pub leases: Arc<dyn LeaseStore>,
    /// Sign-in failures, counted for every replica.
    pub throttle: Arc<dyn ThrottleStore>,
    /// Console sessions, on the metadata database.
    pub sessions: ConsoleSessions,
}

impl Stores {
    /// Opens (and on first start makes) every store the configuration names.
    pub async fn open(config: &Config) -> StorageResult<Stores> {
        tokio::fs::create_dir_all(&config.data_dir).await?;
        let database = Arc::new(open_sqlite(&database(config)?).await?);
        let blobs = Arc::new(FsBlobStore::open(&config.data_dir).await?);
        Ok(Stores {
            metadata: database.clone(),
            streams: database.clone(),
            auth: database.clone(),
            secrets: database.clone(),
            webhooks: database.clone(),
            notifier: database.clone(),
            leases: database.clone(),
            throttle: database.clone(),
            sessions: ConsoleSessions::Sqlite(SqliteStore::new(database.pool())),
            blobs,
        })
    }

    /// The notifier and leases, for components that work with other replicas, with a new
    /// set of leased work: call once per process (see [`Coordination`]).
    pub fn coordination(&self) -> Coordination {
        Coordination::new(self.notifier.clone(), self.leases.clone())
    }

    /// Whether the stores are services shared with other replicas (that may come up later than
    /// this one) rather than files of this machine.
    pub fn shared(config: &Config) -> bool {
        matches!(database(config), Ok(Database::Postgres(_)))
    }

    /// Brings the database's schema up to date and closes it (`berth migrate`).
    pub async fn migrate(config: &Config) -> StorageResult<()> {
        open_sqlite(&database(config)?).await?;
        Ok(())
    }
}

fn database(config: &Config) -> StorageResult<Database> {
    config
        .database
        .database(&config.data_dir)
        .map_err(|err| StorageError::Config(err.to_string()))
}

async fn open_sqlite(database: &Database) -> StorageResult<SqliteMetadata> {
    match database {
        Database::Sqlite(path) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(folder).await?;
            }
            SqliteMetadata::open(path).await
        }
        Database::Postgres(_) => Err(StorageError::Config(
            "PostgreSQL is not supported by this build".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_data_folder_is_made_and_its_stores_answer() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let stores = Stores::open(&config).await.unwrap();
        assert!(config.data_dir.join("berth.db").is_file());
        assert!(config.data_dir.join("blobs").is_dir());
        assert_eq!(
            stores.metadata.list_repositories(None, 10).await.unwrap(),
            Vec::<String>::new()
        );
        assert!(stores.auth.list_users().await.unwrap().is_empty());
        // Opened again, the same database.
        drop(stores);
        Stores::open(&config).await.unwrap();
    }
}

/// Every store contract (`storage/contract.rs`), run on the stores `Stores::open` makes (SQLite
/// and the data folder), in a temporary data folder each.
#[cfg(test)]
mod contracts {
    use super::*;

    async fn stores() -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let stores = Stores::open(&config).await.unwrap();
        (dir, stores)
    }

    crate::storage::contract::metadata_contract!(stores());
    crate::storage::contract::blob_contract!(stores());
    crate::storage::contract::streams_contract!(stores());
    crate::storage::contract::auth_contract!(stores());
    crate::storage::contract::secrets_contract!(stores());
    crate::storage::contract::webhooks_contract!(stores());

    /// Two replicas: two `Stores` opened on one data folder.
    async fn replicas() -> (tempfile::TempDir, Stores, Stores) {
        let (dir, a) = stores().await;
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let b = Stores::open(&config).await.unwrap();
        (dir, a, b)
    }

    crate::storage::contract::coordination_contract!(replicas());
}

#[cfg(test)]
mod test_services {
    #[test]
    fn postgres_seaweedfs_and_haproxy_start_on_loopback() {
        let pg = crate::storage::test_infra::postgres();
        let url = pg.database();
        assert!(url.starts_with("postgres://"));
        let s3 = crate::storage::test_infra::seaweedfs();
        assert!(s3.endpoint.starts_with("http://127.0.0.1:"));
        let proxy = crate::storage::test_infra::Haproxy::start(&[&s3.endpoint[7..]]);
        assert!(proxy.port > 0);
    }
}
