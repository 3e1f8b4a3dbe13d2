//! The OCI Distribution API v1.1 at `/v2/`: blobs, resumable uploads, manifests, tags,
//! referrers and the catalog, over the [`crate::storage`] traits.
//!
//! Handlers are one file per resource; each reads its request, applies the rules and returns a
//! response or a [`RegistryError`], which `error.rs` renders in the spec's format.

pub mod access;
mod blobs;
mod catalog;
pub mod content;
pub mod error;
pub mod http;
pub mod image_metadata;
mod manifests;
mod pagination;
mod referrers;
pub mod routes;
mod tags;
pub mod token;
mod uploads;

use std::sync::Arc;

use axum::http::Uri;
use serde::de::DeserializeOwned;

pub use error::{RegistryError, RegistryResult};
pub use routes::router;

use crate::auth::AuthContext;
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::storage::coordination::{Coordination, LeaseError, LeaseTiming, hold_lease_waiting};
use crate::storage::{BlobStore, MetadataStore, StorageError, UploadId};

/// Limits the registry enforces on what clients send.
#[derive(Debug, Clone)]
pub struct RegistryLimits {
    pub max_manifest_bytes: usize,
}

/// The registry's shared state: storage, who may do what, and the locks that serialise writes
/// to one upload.
pub struct Registry {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<AuthContext>,
    pub limits: RegistryLimits,
    /// Where blobs an import linked but did not copy come from on their first pull.
    pub pull_through: Option<Arc<dyn PullThrough>>,
    upload_locks: Vec<tokio::sync::Mutex<()>>,
    /// With replicas sharing the stores: the leases that keep a write to an upload on one
    /// replica at a time.
    pub upload_leases: Option<Coordination>,
    /// Notes manifest pulls, written in batches (what retention's "pulled" rules read).
    pub pulls: Option<Arc<crate::storage::pulls::PullRecorder>>,
}

/// Blobs that an import linked into a repository as remote: another registry holds them.
#[async_trait::async_trait]
pub trait PullThrough: Send + Sync {
    /// Fetches the blob from where the import found it, verifies its size and digest, stores
    /// it and links it into the repository (one fetch per repository however many ask at
    /// once); returns its size. `BlobUnknown` when the repository has no remote link of it or
    /// the remote lacks it, `BlobUnavailable` when the fetch failed.
    async fn fetch(&self, repository: &RepositoryName, digest: &Digest) -> RegistryResult<u64>;

    /// As [`PullThrough::fetch`], for a `GET` of the whole blob: the pull that starts the
    /// fetch streams the bytes as they arrive.
    async fn fetch_streaming(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> RegistryResult<Pulled>;
}

/// What a pull of a remote blob gets.
pub enum Pulled {
    /// The blob is stored and linked now: serve it from the store.
    Stored(u64),
    /// The blob's `size` bytes as the fetch receives them. The last bytes come only once the
    /// whole blob is verified; when it is not, the stream ends in an error instead, so that
    /// the client never holds a complete answer that is not the blob named.
    Streaming {
        size: u64,
        body: crate::storage::ByteStream,
    },
}

/// Striped locks: two requests for one upload in this process take turns; across replicas the
/// metadata store's compare-and-set on the upload's size decides.
const UPLOAD_LOCK_STRIPES: usize = 64;

impl Registry {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        auth: Arc<AuthContext>,
        limits: RegistryLimits,
    ) -> Self {
        Registry {
            metadata,
            blobs,
            auth,
            limits,
            pull_through: None,
            upload_leases: None,
            pulls: None,
            upload_locks: (0..UPLOAD_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Runs `write` (a request that writes to upload `id` of `name`) as the upload's only
    /// writer: requests in this process take turns, and so do requests on different replicas
    /// (through the lease `upload ID`), else two writes at one offset would race in the blob
    /// store, where the later one wins whatever the session records. A request waits for
    /// another replica's write at most until a dead writer's lease expires, then is refused.
    async fn as_only_writer<T>(
        &self,
        name: &RepositoryName,
        id: UploadId,
        write: impl Future<Output = RegistryResult<T>>,
    ) -> RegistryResult<T> {
        let stripe = (id.0.as_u128() % UPLOAD_LOCK_STRIPES as u128) as usize;
        let _turn = self.upload_locks[stripe].lock().await;
        let Some(coordination) = &self.upload_leases else {
            return write.await;
        };
        let lease = format!("upload {id}");
        let timing = LeaseTiming::STANDARD;
        match hold_lease_waiting(
            coordination.leases.as_ref(),
            &lease,
            &coordination.replica(),
            timing,
            timing.ttl + timing.renew_every,
            write,
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(LeaseError::Taken(_)) => Err(RegistryError::UploadBusy {
                location: uploads::upload_location(name, id),
            }),
            Err(LeaseError::Storage(err)) => Err(err.into()),
            Err(lost @ LeaseError::Lost(_)) => {
                Err(StorageError::Io(std::io::Error::other(lost.to_string())).into())
            }
        }
    }
}

/// Parses a request's query string into `T`, with the failure in the registry's error format.
fn query<T: DeserializeOwned>(uri: &Uri) -> RegistryResult<T> {
    serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|err| RegistryError::Unsupported(format!("invalid query string: {err}")))
}
