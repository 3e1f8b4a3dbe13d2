//! Storage: content-addressed blobs ([`BlobStore`]) and registry metadata ([`MetadataStore`]).
//!
//! Both are traits so that object storage and PostgreSQL can replace the embedded filesystem and
//! SQLite implementations without touching the HTTP handlers. Upload state, the running hash
//! included, lives in the metadata store, never in process memory, so any replica can continue
//! an upload that another one started.

use crate::oci::{Algorithm, Digest, DigestHasher};
pub mod auth;
mod auth_rules;
mod collection;
#[cfg(test)]
pub(crate) mod contract;
pub mod coordination;
pub mod fs;
pub mod immutability;
pub mod lifecycle;
mod open;
pub mod postgres;
pub mod pulls;
mod quota_rules;
pub mod quotas;
mod rows;
pub mod s3;
pub mod secrets;
pub mod sessions;
pub mod sqlite;
mod stream_rules;
mod streams;
/// PostgreSQL, SeaweedFS and HAProxy started by tests (shared with the integration tests).
#[cfg(test)]
#[path = "../../tests/common/infra.rs"]
pub(crate) mod test_infra;
pub mod trusted_keys;
mod webhook_rules;
pub mod webhooks;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

pub use collection::*;
pub use open::Stores;
pub use streams::*;

use crate::oci::{RepositoryName, Tag};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Bytes arriving from a client; its errors are the client's (a dropped connection), not ours.
pub type IncomingStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("metadata migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("blob {0} is recorded but missing from the blob store")]
    BlobMissing(Digest),
    #[error("the upload's data is missing from the blob store")]
    UploadDataMissing,
    #[error("the request body ended early: {0}")]
    Incoming(BoxError),
    #[error("metadata is corrupt: {0}")]
    Corrupt(String),
    #[error("object storage failed: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// The configured store cannot be used at all (a wrong address, a missing bucket): said at
    /// start.
    #[error("{0}")]
    Unusable(String),
    /// A change to a tag that a tag immutability rule protects; nothing was written.
    #[error(transparent)]
    TagImmutable(#[from] immutability::ImmutableTag),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// For the Kubernetes-style APIs: a storage failure is the server's fault (a 500, its cause
/// logged); a change a tag immutability rule refuses is Forbidden, naming the tag and the rule.
impl From<StorageError> for crate::kube::ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::TagImmutable(refused) => crate::kube::ApiError::Refused(format!(
                "imagestreamtags.image.openshift.io \"{}:{}\" is forbidden: {refused}",
                refused.stream, refused.tag
            )),
            err => crate::kube::ApiError::internal(err),
        }
    }
}

/// Names an upload session; a UUID, so it is safe to use in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(pub Uuid);

impl UploadId {
    pub fn new() -> Self {
        UploadId(Uuid::new_v4())
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Content-addressed blob storage with resumable uploads.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of a stored blob, `None` when it is absent.
    async fn stat(&self, digest: &Digest) -> StorageResult<Option<u64>>;

    /// Streams `len` bytes of a blob from `offset`.
    async fn read(&self, digest: &Digest, offset: u64, len: u64) -> StorageResult<ByteStream>;

    async fn delete(&self, digest: &Digest) -> StorageResult<()>;

    /// Writes `body` into upload `id` from `offset`, dropping anything the upload held past
    /// `offset` (left by an interrupted write), and feeds every byte to `hasher`. Returns the
    /// new size and the hasher; the data is durable when this returns.
    async fn write_upload(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
        hasher: DigestHasher,
    ) -> StorageResult<(u64, DigestHasher)>;

    /// As `write_upload`, without hashing: for a writer that must not be paced by the hash
    /// (pull-through) and hashes afterwards with `read_upload`.
    async fn write_upload_unhashed(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
    ) -> StorageResult<u64>;

    /// Streams the first `len` bytes of an upload (to hash it with another algorithm).
    async fn read_upload(&self, id: UploadId, len: u64) -> StorageResult<ByteStream>;

    /// Makes the first `size` bytes of upload `id` the blob `digest`, atomically: readers see
    /// the whole blob or nothing.
    async fn commit_upload(&self, id: UploadId, size: u64, digest: &Digest) -> StorageResult<()>;

    async fn delete_upload(&self, id: UploadId) -> StorageResult<()>;

    /// Uploads whose data was last written more than `idle` ago: candidates for
    /// [`sweep_orphan_uploads`].
    async fn idle_uploads(&self, idle: std::time::Duration) -> StorageResult<Vec<UploadId>>;

    /// Fails when the store cannot take writes (readiness).
    async fn check(&self) -> StorageResult<()>;

    /// The object `kind` derived from blob `digest` (a layer's file index), `None` when none
    /// was stored. Derived objects are deleted with their blob by [`BlobStore::delete`].
    async fn get_derived(&self, digest: &Digest, kind: Derived) -> StorageResult<Option<Bytes>>;

    /// Stores the object `kind` derived from blob `digest`, whole (a reader sees the old one,
    /// the new one or none, never a part).
    async fn put_derived(&self, digest: &Digest, kind: Derived, bytes: Bytes) -> StorageResult<()>;

    /// Where a client may fetch the blob by itself (a short-lived presigned URL of the object)
    /// when the store is set to redirect blob GETs; `None` streams it through Berth.
    async fn redirect_url(&self, _digest: &Digest) -> StorageResult<Option<String>> {
        Ok(None)
    }
}

/// Objects kept beside a blob and computed from it, at `indexes/<algorithm>/<xx>/<hex>/<name>`
/// (the name is Berth's, never anything read from the blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    /// A layer's file index (`crate::layers`).
    LayerIndex,
}

impl Derived {
    pub const ALL: [Derived; 1] = [Derived::LayerIndex];

    pub fn name(self) -> &'static str {
        match self {
            Derived::LayerIndex => "layer-files.v1",
        }
    }

    /// The folder of `digest`'s derived objects, relative to the store's root; the digest
    /// grammar (fixed-length lowercase hex) keeps it there.
    pub fn dir_of(digest: &Digest) -> String {
        let hex = digest.hex();
        format!(
            "indexes/{}/{}/{hex}",
            digest.algorithm().as_str(),
            &hex[..2]
        )
    }
}

/// How long upload data without a session must have lain untouched before it is removed. The
/// data of a monolithic upload, an import or a pull-through fetch in progress has no session
/// row; a day keeps it safe from a sweep by another replica sharing the data folder.
pub const ORPHAN_UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes upload data that no session owns and nobody has written for `idle`: what a crash
/// in the middle of a monolithic upload, an import or a pull-through fetch, or between a
/// cancel's two deletes, leaves behind. Returns how many were removed.
pub async fn sweep_orphan_uploads(
    metadata: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    idle: std::time::Duration,
) -> StorageResult<usize> {
    let mut removed = 0;
    for id in blobs.idle_uploads(idle).await? {
        if !metadata.upload_exists(id).await? {
            blobs.delete_upload(id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Begins a transaction (with `statement`, else a plain BEGIN) that a cancelled caller cannot
/// leave open. In sqlx 0.8 a future dropped after the database began the transaction but before
/// the `Transaction` exists returns the connection to the pool inside a transaction nothing
/// ends: on PostgreSQL every later statement on it ran there (sqlx issues 4385 and 4393); on
/// SQLite, whose custom BEGIN awaits the connection's lock after it ran, the connection kept
/// `BEGIN IMMEDIATE`'s write lock, so every writer waited out its busy timeout and the next
/// `begin_with` on it failed ("non-zero transaction depth"). The BEGIN runs in a task of its
/// own here; dropped unclaimed, its transaction rolls back as any other does.
pub(crate) async fn begin_uncancellable<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    statement: Option<&'static str>,
) -> StorageResult<sqlx::Transaction<'static, DB>> {
    let pool = pool.clone();
    let begun = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    })
    .await;
    match begun {
        Ok(transaction) => Ok(transaction?),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // The runtime is stopping: the pool goes with it.
        Err(_) => Err(sqlx::Error::PoolClosed.into()),
    }
}

/// A duration in whole milliseconds, as the review queue counts time.
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Reads a whole blob of `len` bytes into memory: for small documents (image configs) only.
pub async fn read_blob(blobs: &dyn BlobStore, digest: &Digest, len: u64) -> StorageResult<Vec<u8>> {
    use futures_util::StreamExt;
    let mut stream = blobs.read(digest, 0, len).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or_default());
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// An upload session as recorded between requests.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub id: UploadId,
    pub repository: RepositoryName,
    pub size: u64,
    pub hash_algorithm: Algorithm,
    pub hash_state: Vec<u8>,
    pub started_at: DateTime<Utc>,
}

/// Another registry's repository that an import read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    /// `registry/path`, the pull spec without tag or digest.
    pub repository: String,
    /// Plain HTTP, as the import asked.
    pub insecure: bool,
}

/// A blob a repository links only as remote: where an import found it, and the size the
/// imported manifest declares (which the fetched bytes must have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlob {
    pub source: RemoteSource,
    pub size: u64,
}

/// What a manifest's descriptor names: a digest and the size it declares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Referenced {
    pub digest: Digest,
    pub size: u64,
}

/// A descriptor whose declared size is not the size of what the repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeMismatch {
    pub digest: Digest,
    pub declared: u64,
    pub stored: u64,
}

/// A manifest about to be stored, with what it refers to.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
    /// `artifactType`, or the config media type of an artifact, for the referrers API.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// The manifest's annotations as JSON, for the referrers API.
    pub annotations: Option<String>,
    /// What the image stream API shows of the image (JSON), read at push time.
    pub image: Option<String>,
    /// Blobs (config and layers) that must be in the repository, with the declared sizes.
    pub blobs: Vec<Referenced>,
    /// Child manifests (of an index) that must be in the repository, with the declared sizes.
    pub manifests: Vec<Referenced>,
    /// Who pushes it, for the history item of the tag it moves.
    pub pushed_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// A manifest whose `subject` names another: one entry of a referrers response.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PutManifestOutcome {
    Stored,
    /// These references are not in the repository; nothing was written.
    MissingReferences(Vec<Digest>),
    /// These references declare another size than the repository's content has; nothing was
    /// written.
    WrongSizes(Vec<SizeMismatch>),
    /// The push would exceed a quota or limit range of the namespace; nothing was written.
    QuotaExceeded(quotas::QuotaRefusal),
}

/// A repository with the names of its tags, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositorySummary {
    pub name: String,
    pub tags: Vec<String>,
    pub manifest_count: u64,
}

/// Registry metadata: repositories, blob links, manifests, tags and upload sessions.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // Repositories.
    async fn repository_exists(&self, name: &RepositoryName) -> StorageResult<bool>;
    async fn namespace_exists(&self, namespace: &str) -> StorageResult<bool>;
    /// Names of repositories holding at least one manifest, after `last`, in order.
    async fn list_repositories(&self, last: Option<&str>, limit: u32)
    -> StorageResult<Vec<String>>;
    /// Repositories after `after` (by name), `limit` of them, with up to `tag_limit` tags each,
    /// for the console.
    async fn repository_summaries(
        &self,
        after: Option<&str>,
        limit: u32,
        tag_limit: u32,
    ) -> StorageResult<Vec<RepositorySummary>>;

    // Blobs linked into repositories. A link is made only for verified bytes (an upload, a
    // mount, a pull-through fetch); an import's links are remote links until then.
    /// The size of a blob the repository links (verified, stored here).
    async fn blob_size(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<u64>>;
    async fn link_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<()>;
    /// Links a blob that `from` links (not a remote link of it) into `to`; `None` when `from`
    /// lacks it.
    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<u64>>;
    /// Removes the repository's link of a blob, or its remote link; false when it had neither.
    async fn unlink_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool>;
    /// Records that `repository` may fetch these blobs from `source` (an import), with their
    /// declared sizes: remote links count as present for manifests, but serve nothing until a
    /// pull has fetched and verified the bytes ([`MetadataStore::link_fetched_blob`]). Blobs the
    /// repository already links are left as they are.
    async fn link_remote_blobs(
        &self,
        repository: &RepositoryName,
        blobs: &[Referenced],
        source: &RemoteSource,
    ) -> StorageResult<()>;
    /// The remote link of a blob the repository does not link yet.
    async fn remote_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<RemoteBlob>>;
    /// Turns a remote link into a link, once the bytes were fetched from its source and
    /// verified (`size` is theirs). False, and nothing linked, when the remote link is gone.
    async fn link_fetched_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<bool>;

    // Upload sessions.
    async fn create_upload(&self, session: &UploadSession) -> StorageResult<()>;
    async fn get_upload(
        &self,
        repository: &RepositoryName,
        id: UploadId,
    ) -> StorageResult<Option<UploadSession>>;
    /// Records progress if the session is still at `expected_size`; false when another
    /// request moved it first.
    async fn advance_upload(
        &self,
        id: UploadId,
        expected_size: u64,
        size: u64,
        hash_state: &[u8],
    ) -> StorageResult<bool>;
    /// Ends the session and links the finished blob, in one transaction.
    async fn finish_upload(
        &self,
        session: &UploadSession,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<()>;
    async fn delete_upload(&self, id: UploadId) -> StorageResult<bool>;
    /// Whether a session (of any repository) is named `id`.
    async fn upload_exists(&self, id: UploadId) -> StorageResult<bool>;
    async fn count_uploads(&self) -> StorageResult<u64>;
    /// Ends at most `limit` sessions last written before `written_before` (abandoned uploads)
    /// and returns their ids, whose data is the caller's to delete.
    async fn expire_uploads(
        &self,
        written_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StorageResult<Vec<UploadId>>;

    // Manifests and tags.
    /// Stores a manifest (and points `tag` at it) if every reference is in the repository.
    async fn put_manifest(
        &self,
        repository: &RepositoryName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StorageResult<PutManifestOutcome>;
    async fn manifest_by_tag(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> StorageResult<Option<StoredManifest>>;
    async fn manifest_by_digest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<StoredManifest>>;
    /// Removes a manifest and the tags pointing at it from a repository.
    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool>;
    async fn delete_tag(&self, repository: &RepositoryName, tag: &Tag) -> StorageResult<bool>;
    async fn list_tags(
        &self,
        repository: &RepositoryName,
        last: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<String>>;
    async fn referrers(
        &self,
        repository: &RepositoryName,
        subject: &Digest,
    ) -> StorageResult<Vec<Referrer>>;

    // Garbage collection of content (`gc::content`). Every writer of a blob's bytes claims the
    // digest first; the collector reviews queued digests once the grace period has passed.
    /// Postpones the review of blob `digest` (queuing it) before its bytes are stored and
    /// linked: `None` when claimed; `Some(left)` while a collector is deleting its bytes, for
    /// up to `left` more.
    async fn try_claim_blob(&self, digest: &Digest) -> StorageResult<Option<std::time::Duration>>;
    /// Claims blob `digest` ([`MetadataStore::try_claim_blob`]), waiting out a deletion of its
    /// bytes: afterwards no collection deletes them for a grace period.
    async fn claim_blob(&self, digest: &Digest) -> StorageResult<()> {
        while let Some(left) = self.try_claim_blob(digest).await? {
            tokio::time::sleep(left.min(std::time::Duration::from_millis(50))).await;
        }
        Ok(())
    }
    /// Whether blob `digest` waits for a review (a client that finds it linked claims it
    /// before relying on the link).
    async fn blob_under_review(&self, digest: &Digest) -> StorageResult<bool>;
    /// Queued digests whose grace period has passed (and blobs whose deletion was left
    /// unfinished), oldest first.
    async fn due_for_review(
        &self,
        grace: std::time::Duration,
        limit: u32,
    ) -> StorageResult<Vec<Candidate>>;
    /// Reviews a manifest: deletes it, in one transaction, when no repository holds it and no
    /// manifest refers to it.
    async fn review_manifest(
        &self,
        digest: &Digest,
        grace: std::time::Duration,
    ) -> StorageResult<ManifestReview>;
    /// Reviews a blob: removes its links that no image of their repository references and
    /// that are older than the grace period, and, when nothing references it then, deletes its
    /// row and marks its bytes as being deleted, in one transaction.
    async fn review_blob(
        &self,
        digest: &Digest,
        grace: std::time::Duration,
    ) -> StorageResult<BlobReview>;
    /// Ends a blob's collection once its bytes are deleted.
    async fn blob_collected(&self, digest: &Digest) -> StorageResult<()>;
    /// How many digests wait for a review.
    async fn review_queue_len(&self) -> StorageResult<u64>;

    /// Fails when the database does not answer (readiness).
    async fn check(&self) -> StorageResult<()>;
}
