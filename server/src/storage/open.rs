//! Which backend keeps what: the one place that picks them, from the configuration. Metadata
//! (registry, image streams, access, secrets, webhooks, tag immutability rules, quotas and
//! console sessions) is in SQLite
//! (`[database] url`, by default the data folder's `berth.db`) or PostgreSQL; blobs with their
//! upload data are in the data folder, another folder, or an S3-compatible bucket
//! (`[storage] url`).

use std::sync::Arc;

use super::auth::AuthStore;
use super::coordination::{Coordination, LeaseStore, Notifier, ThrottleStore};
use super::fs::FsBlobStore;
use super::immutability::ImmutableTagRuleStore;
use super::lifecycle::LifecycleStore;
use super::postgres::{PostgresDatabase, PostgresSettings};
use super::quotas::QuotaStore;
use super::s3::S3BlobStore;
use super::secrets::RegistrySecretStore;
use super::sessions::ConsoleSessions;
use super::sqlite::SqliteMetadata;
use super::trusted_keys::TrustedKeyStore;
use super::webhooks::WebhookStore;
use super::{BlobStore, ImageStreamStore, MetadataStore, StorageError, StorageResult};
use crate::config::Config;
use crate::config::database::Database;
use crate::config::storage::BlobLocation;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Every store, each behind its trait.
pub struct Stores {
    pub metadata: Arc<dyn MetadataStore>,
    pub streams: Arc<dyn ImageStreamStore>,
    pub auth: Arc<dyn AuthStore>,
    pub secrets: Arc<dyn RegistrySecretStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    /// What pruning and retention read and change, pull times, their objects.
    pub lifecycle: Arc<dyn LifecycleStore>,
    /// Tag immutability rules (enforced by the image stream and registry stores' writes).
    pub immutability: Arc<dyn ImmutableTagRuleStore>,
    /// The public keys each namespace trusts for signatures.
    pub trusted_keys: Arc<dyn TrustedKeyStore>,
    pub quotas: Arc<dyn QuotaStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Local disk that data is written to at disk speed before it goes to `blobs`, when
    /// `blobs` is not the local disk (object storage): pull-through streams a blob to its
    /// client at the remote's pace and stores it after. `None` when `blobs` is local.
    pub spool: Option<Arc<dyn BlobStore>>,
    /// Messages to every replica (this one included); its `replica()` names this process.
    pub notifier: Arc<dyn Notifier>,
    /// Work done by one replica at a time.
    pub leases: Arc<dyn LeaseStore>,
    /// Sign-in failures, counted for every replica.
    pub throttle: Arc<dyn ThrottleStore>,
    /// Console sessions, on the metadata database.
    pub sessions: ConsoleSessions,
}

/// A database that keeps every kind of metadata.
trait MetadataDatabase:
    MetadataStore
    + ImageStreamStore
    + AuthStore
    + RegistrySecretStore
    + WebhookStore
    + LifecycleStore
    + ImmutableTagRuleStore
    + TrustedKeyStore
    + QuotaStore
    + Notifier
    + LeaseStore
    + ThrottleStore
{
}

impl<D> MetadataDatabase for D where
    D: MetadataStore
        + ImageStreamStore
        + AuthStore
        + RegistrySecretStore
        + WebhookStore
        + LifecycleStore
        + ImmutableTagRuleStore
        + TrustedKeyStore
        + QuotaStore
        + Notifier
        + LeaseStore
        + ThrottleStore
{
}

impl Stores {
    /// Opens (and on first start makes) every store the configuration names.
    pub async fn open(config: &Config) -> StorageResult<Stores> {
        tokio::fs::create_dir_all(&config.data_dir).await?;
        let (blobs, spool) = open_blobs(config).await?;
        Ok(match database(config)? {
            Database::Sqlite(path) => {
                let database = Arc::new(open_sqlite(&path).await?);
                let sessions = ConsoleSessions::Sqlite(SqliteStore::new(database.pool()));
                Stores::on(database, sessions, blobs, spool)
            }
            Database::Postgres(url) => {
                let database =
                    Arc::new(PostgresDatabase::open(&url, &postgres_settings(config)).await?);
                let sessions = ConsoleSessions::Postgres(PostgresStore::new(database.pool()));
                Stores::on(database, sessions, blobs, spool)
            }
        })
    }

    fn on(
        database: Arc<impl MetadataDatabase>,
        sessions: ConsoleSessions,
        blobs: Arc<dyn BlobStore>,
        spool: Option<Arc<dyn BlobStore>>,
    ) -> Stores {
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
            throttle: database,
            blobs,
            spool,
            sessions,
        }
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
            || matches!(
                config.storage.location(&config.data_dir),
                Ok(BlobLocation::S3 { .. })
            )
    }

    /// Brings the database's schema up to date and closes it (`berth migrate`); on PostgreSQL,
    /// one replica at a time.
    pub async fn migrate(config: &Config) -> StorageResult<()> {
        match database(config)? {
            Database::Sqlite(path) => open_sqlite(&path).await.map(drop),
            Database::Postgres(url) => {
                super::postgres::migrate(&url, &postgres_settings(config)).await
            }
        }
    }
}

fn database(config: &Config) -> StorageResult<Database> {
    config
        .database
        .database(&config.data_dir)
        .map_err(|err| StorageError::Unusable(err.to_string()))
}

/// The blob store, and the spool beside it when it is not the local disk.
async fn open_blobs(
    config: &Config,
) -> StorageResult<(Arc<dyn BlobStore>, Option<Arc<dyn BlobStore>>)> {
    let location = config
        .storage
        .location(&config.data_dir)
        .map_err(|err| StorageError::Unusable(err.to_string()))?;
    Ok(match location {
        BlobLocation::Files(root) => (Arc::new(FsBlobStore::open(root).await?), None),
        BlobLocation::S3 { bucket, prefix } => {
            let blobs = S3BlobStore::open(
                &bucket,
                &prefix,
                &config.storage.s3,
                config.storage.redirect,
            )
            .await?;
            let spool = FsBlobStore::open(config.data_dir.join("spool")).await?;
            (Arc::new(blobs), Some(Arc::new(spool)))
        }
    })
}

fn postgres_settings(config: &Config) -> PostgresSettings {
    PostgresSettings {
        max_connections: config.database.pool_size,
        statement_timeout: Some(std::time::Duration::from_secs(
            config.database.statement_timeout_seconds,
        )),
    }
}

async fn open_sqlite(path: &std::path::Path) -> StorageResult<SqliteMetadata> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(folder).await?;
    }
    SqliteMetadata::open(path).await
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
    crate::storage::contract::collection_contract!(stores());
    crate::storage::contract::lifecycle_contract!(stores());
    crate::storage::contract::immutability_contract!(stores());
    crate::storage::contract::quotas_contract!(stores());
    crate::storage::contract::trusted_keys_contract!(stores());

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
