//! Pull-through: a blob that an import linked as remote is fetched from the other registry on
//! its first pull, hashed as it is written, and linked into the repository only when its size
//! and digest are the ones the import recorded; later pulls are served from the store.
//!
//! The pull that starts a fetch (a `GET` of the whole blob) gets the bytes as they arrive: each
//! chunk is one buffer, handed both to the writer and to the client. The last chunk reaches
//! the client only once the whole blob is verified; when it is not, the answer ends unfinished
//! (fewer bytes than its `Content-Length`), so no client holds a complete answer that is not
//! the blob named, and nothing is stored. Other pulls wait for the fetch and are served from
//! the store. On object storage the fetch writes to a local spool ([`Stores::spool`]) first and
//! uploads after, so the client is not paced by the upload.
//!
//! The fetch proves that the remote has the bytes, so it runs even when the blob is stored here
//! already (then the fetched copy is dropped): naming a digest in a manifest never gives access
//! to a copy that another repository uploaded. Concurrent pulls of one blob in one repository
//! share one fetch, on every replica: in a process they wait for one task, and that task fetches
//! only while it holds the lease `pull-through REPOSITORY@DIGEST`; the other replicas' tasks
//! wait for the holder's word through the notifier ([`Topic::PullThrough`]) and then read the
//! linked blob, or take the fetch over when the holder died (its lease expired). Each repository
//! fetches for itself, through its namespace's credentials and within its namespace's bound on
//! concurrent fetches.
//!
//! [`Stores::spool`]: crate::storage::Stores::spool

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};

use super::importer::Importer;
use super::remote::{RemoteError, RemoteReference};
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::registry::Pulled;
use crate::registry::error::{RegistryError, RegistryResult};
use crate::storage::coordination::{Coordination, LeaseError, LeaseTiming, Topic, hold_lease};
use crate::storage::{
    BlobStore, BoxError, ByteStream, IncomingStream, MetadataStore, RemoteBlob, UploadId,
};

/// How a fetch ended, as the pulls waiting for it see it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fetched {
    /// Verified, stored and linked: the blob's size.
    Linked(u64),
    /// The remote does not have it (or it is no remote link any more).
    Absent,
    /// The remote failed, sent something else, or took too long.
    Failed,
}

type Key = (RepositoryName, Digest);
type InFlight = Arc<Mutex<HashMap<Key, watch::Receiver<Option<Fetched>>>>>;

pub struct PullThrough {
    importer: Arc<Importer>,
    in_flight: InFlight,
    /// How long a fetch may take (its namespace's turn included), and so how long a pull
    /// waits for one.
    timeout: Duration,
    coordination: Coordination,
    /// Where a fetch writes before the blob store, when that is not the local disk.
    spool: Option<Arc<dyn BlobStore>>,
}

impl PullThrough {
    pub fn new(
        importer: Arc<Importer>,
        timeout: Duration,
        coordination: Coordination,
        spool: Option<Arc<dyn BlobStore>>,
    ) -> Self {
        PullThrough {
            importer,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            timeout,
            coordination,
            spool,
        }
    }

    /// The fetch of `key` under way, or a new one started for `remote` that relays its bytes
    /// to `relay` (dropped unused when a fetch is under way already).
    fn join_or_start(
        &self,
        key: Key,
        remote: RemoteBlob,
        relay: Option<Relay>,
    ) -> watch::Receiver<Option<Fetched>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(waiting) = in_flight.get(&key)
            // A fetch whose task is gone (it cannot be, but a stale entry must not hold
            // pulls forever) is started again.
            && waiting.has_changed().is_ok()
        {
            return waiting.clone();
        }
        let (done, waiting) = watch::channel(None);
        in_flight.insert(key.clone(), waiting.clone());
        let leader = Leader {
            done,
            key,
            in_flight: Arc::clone(&self.in_flight),
        };
        let importer = Arc::clone(&self.importer);
        let timeout = self.timeout;
        let coordination = self.coordination.clone();
        let spool = self.spool.clone();
        // A task of its own: a client that goes away does not cancel the fetch others wait for.
        tokio::spawn(async move {
            let (repository, digest) = &leader.key;
            // Only the first try relays: one taken over from a dead replica starts again.
            let relay = Mutex::new(relay);
            let fetch = || {
                let relay = relay
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .take();
                fetch_here(
                    &importer,
                    spool.as_deref(),
                    repository,
                    digest,
                    &remote,
                    relay,
                )
            };
            let coalesced = coalesce_across_replicas(
                &coordination,
                LeaseTiming::STANDARD,
                importer.metadata.as_ref(),
                &leader.key,
                fetch,
            );
            let fetched = tokio::time::timeout(timeout, coalesced)
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(%repository, %digest, "pull-through: not done within {} seconds", timeout.as_secs());
                    Fetched::Failed
                });
            leader.finish(fetched);
        });
        waiting
    }
}

/// This replica's fetch, as the pulls waiting for it see its end.
async fn fetch_here(
    importer: &Importer,
    spool: Option<&dyn BlobStore>,
    repository: &RepositoryName,
    digest: &Digest,
    remote: &RemoteBlob,
    relay: Option<Relay>,
) -> Fetched {
    match fetch_and_link(importer, spool, repository, digest, remote, relay).await {
        Ok(size) => Fetched::Linked(size),
        Err(FetchError::Absent(why)) => {
            tracing::info!(%repository, %digest, %why, "pull-through: not at the remote");
            Fetched::Absent
        }
        Err(FetchError::Failed(why)) => {
            tracing::warn!(%repository, %digest, %why, "pull-through fetch failed");
            Fetched::Failed
        }
    }
}

impl Fetched {
    fn word(&self) -> &'static str {
        match self {
            Fetched::Linked(_) => "linked",
            Fetched::Absent => "absent",
            Fetched::Failed => "failed",
        }
    }
}

/// What the store says of a fetch: linked (by this replica or another), or no remote link any
/// more; `None` while it is still to be fetched.
async fn settled(
    metadata: &dyn MetadataStore,
    (repository, digest): &Key,
) -> Result<Option<Fetched>, crate::storage::StorageError> {
    if let Some(size) = metadata.blob_size(repository, digest).await? {
        return Ok(Some(Fetched::Linked(size)));
    }
    Ok(metadata
        .remote_blob(repository, digest)
        .await?
        .is_none()
        .then_some(Fetched::Absent))
}

/// Runs `fetch` for `key` on one replica at a time: under the key's lease, whose holder tells
/// the others how it ended. A replica that finds the lease taken waits for that word (or a
/// renewal period, for a word it missed), reads what the store says, and takes the lease itself
/// when the holder gave it up or died without linking the blob.
async fn coalesce_across_replicas<F: Future<Output = Fetched>>(
    coordination: &Coordination,
    timing: LeaseTiming,
    metadata: &dyn MetadataStore,
    key: &Key,
    fetch: impl Fn() -> F,
) -> Fetched {
    let (repository, digest) = key;
    let subject = format!("{repository}@{digest}");
    let lease = format!("pull-through {subject}");
    let holder = coordination.replica();
    let mut words = coordination.notifier.subscribe(Topic::PullThrough);
    loop {
        match settled(metadata, key).await {
            Ok(Some(done)) => return done,
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, %subject, "pull-through: reading the repository failed");
                return Fetched::Failed;
            }
        }
        match hold_lease(
            coordination.leases.as_ref(),
            &lease,
            &holder,
            timing,
            fetch(),
        )
        .await
        {
            Ok(fetched) => {
                let word = format!("{subject} {}", fetched.word());
                if let Err(err) = coordination
                    .notifier
                    .publish(Topic::PullThrough, &word)
                    .await
                {
                    // The others read the store at their next look.
                    tracing::warn!(%err, %subject, "pull-through: telling other replicas failed");
                }
                return fetched;
            }
            Err(LeaseError::Taken(_)) => {}
            Err(err) => {
                tracing::warn!(%err, %subject, "pull-through: the fetch's lease failed");
                return Fetched::Failed;
            }
        }
        // Another replica fetches: its word, else a look at the store a period later.
        let heard = tokio::time::timeout(timing.renew_every, async {
            while let Some(notice) = words.next().await {
                if let crate::storage::coordination::Notice::Message { body, .. } = notice
                    && let Some(word) = body
                        .strip_prefix(&subject)
                        .and_then(|w| w.strip_prefix(' '))
                {
                    return Some(word.to_owned());
                }
            }
            None
        })
        .await;
        // A failure elsewhere fails the pulls here too, as it does the pulls waiting there;
        // the next pull tries again.
        if let Ok(Some(word)) = heard
            && word == "failed"
        {
            return Fetched::Failed;
        }
    }
}

/// The task that fetches: tells the waiting pulls how it ended and leaves the in-flight map,
/// also when it ends without saying (then as a failure).
struct Leader {
    done: watch::Sender<Option<Fetched>>,
    key: Key,
    in_flight: InFlight,
}

impl Leader {
    fn finish(self, fetched: Fetched) {
        self.done.send_replace(Some(fetched));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.done.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(Fetched::Failed);
                true
            } else {
                false
            }
        });
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if in_flight
            .get(&self.key)
            .is_some_and(|waiting| waiting.same_channel(&self.done.subscribe()))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[derive(Debug)]
enum FetchError {
    Absent(String),
    Failed(String),
}

/// Fetches `digest` from `remote`'s source, writes it (to the spool when there is one, else to
/// the blob store) while it hashes it and relays each chunk to `relay`, checks size and digest
/// and tells the relay so, stores it (or drops the copy when the store has the blob already)
/// and links it into `repository`.
async fn fetch_and_link(
    importer: &Importer,
    spool: Option<&dyn BlobStore>,
    repository: &RepositoryName,
    digest: &Digest,
    remote: &RemoteBlob,
    relay: Option<Relay>,
) -> Result<u64, FetchError> {
    let failed = |why: String| FetchError::Failed(why);
    let _turn = importer.limits.acquire(repository.namespace()).await;
    let reference =
        RemoteReference::parse(&remote.source.repository).map_err(|err| failed(err.to_string()))?;
    let registry = importer
        .registry(repository.namespace(), &reference, remote.source.insecure)
        .await
        .map_err(|err| failed(err.to_string()))?;
    let response = match registry.blob(&reference.repository, digest).await {
        Ok(response) => response,
        Err(err @ RemoteError::NotFound(_)) => return Err(FetchError::Absent(err.to_string())),
        Err(err) => return Err(failed(err.to_string())),
    };
    let expected = remote.size;
    if let Some(length) = response.content_length()
        && length != expected
    {
        return Err(failed(format!(
            "the remote announces {length} bytes, not the {expected} the import recorded"
        )));
    }
    if let Some(relay) = &relay {
        relay.send(Relayed::Started).await;
    }
    // Hashed here, as the bytes pass, and written unhashed: the pull learns that its blob is
    // verified as soon as the last byte has passed, not after the write is durable.
    let body: IncomingStream = Box::pin(verifying(
        response.bytes_stream(),
        digest.clone(),
        expected,
        relay,
    ));
    let blobs = importer.blobs.as_ref();
    let first = spool.unwrap_or(blobs);
    let id = UploadId::new();
    let size = match first.write_upload_unhashed(id, 0, body).await {
        Ok(size) => size,
        Err(err) => {
            let _ = first.delete_upload(id).await;
            // The remote's failure (or wrong bytes) as such, not as a client's body ending.
            let why = match err {
                crate::storage::StorageError::Incoming(remote) => remote.to_string(),
                other => other.to_string(),
            };
            return Err(failed(why));
        }
    };
    // Claimed before the bytes are stored: no collection deletes them before the link.
    let stored = match importer.metadata.claim_blob(digest).await {
        Ok(()) => store_verified(blobs, spool, id, size, digest).await,
        Err(err) => Err(err),
    };
    let _ = first.delete_upload(id).await;
    stored.map_err(|err| failed(err.to_string()))?;
    match importer
        .metadata
        .link_fetched_blob(repository, digest, size)
        .await
    {
        Ok(true) => Ok(size),
        Ok(false) => Err(FetchError::Absent(
            "the repository's remote link went away during the fetch".into(),
        )),
        Err(err) => Err(failed(err.to_string())),
    }
}

/// Makes verified upload `id` (in the spool when there is one, else in `blobs`) the blob
/// `digest`, unless `blobs` has it already (the digest says the bytes are the same).
async fn store_verified(
    blobs: &dyn BlobStore,
    spool: Option<&dyn BlobStore>,
    id: UploadId,
    size: u64,
    digest: &Digest,
) -> Result<(), crate::storage::StorageError> {
    if blobs.stat(digest).await?.is_some() {
        return Ok(());
    }
    let Some(spool) = spool else {
        return blobs.commit_upload(id, size, digest).await;
    };
    let data: IncomingStream = Box::pin(
        spool
            .read_upload(id, size)
            .await?
            .map(|chunk| chunk.map_err(BoxError::from)),
    );
    let upload = UploadId::new();
    let stored = async {
        match blobs.write_upload_unhashed(upload, 0, data).await? {
            written if written == size => blobs.commit_upload(upload, size, digest).await,
            written => Err(crate::storage::StorageError::Corrupt(format!(
                "the spool gave {written} bytes of {digest}, not {size}"
            ))),
        }
    }
    .await;
    let _ = blobs.delete_upload(upload).await;
    stored
}

/// What a fetch tells the pull that started it.
enum Relayed {
    /// The remote answered with the size expected: its bytes follow.
    Started,
    Bytes(Bytes),
    /// Every byte arrived and they are the blob named.
    Verified,
}

/// Chunks on their way to the client: the bound on what a fetch holds for a slow one.
const RELAY_DEPTH: usize = 16;
/// How long a fetch waits for its client to take one chunk before it goes on without it (and
/// that client's answer fails): a stalled client must not hold a fetch that others wait for.
const RELAY_PATIENCE: Duration = Duration::from_secs(30);

/// The fetch's end of a relay to the pull that started it; it closes for good when that pull
/// is gone or too slow.
#[derive(Clone)]
struct Relay(Arc<Mutex<Option<mpsc::Sender<Relayed>>>>);

impl Relay {
    /// A relay and the pull's end of it.
    fn new() -> (Relay, mpsc::Receiver<Relayed>) {
        let (sender, receiver) = mpsc::channel(RELAY_DEPTH);
        (Relay(Arc::new(Mutex::new(Some(sender)))), receiver)
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Relayed>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send(&self, message: Relayed) {
        let Some(sender) = self.sender().clone() else {
            return;
        };
        let sent = tokio::time::timeout(RELAY_PATIENCE, sender.send(message)).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.sender().take();
        }
    }
}

/// The remote's `body`, hashed as it passes and each chunk also relayed (the same buffer,
/// counted twice). It ends in an error once more than `expected` bytes arrive (a remote cannot
/// make Berth write more than the size it expects), or at its end when fewer came or their
/// digest is not `digest`; else the relay hears that the blob is verified. A relay not told so
/// closes unverified.
fn verifying(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    digest: Digest,
    expected: u64,
    relay: Option<Relay>,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send {
    struct Passing<S> {
        body: std::pin::Pin<Box<S>>,
        digest: Digest,
        hasher: crate::oci::DigestHasher,
        size: u64,
        relay: Option<Relay>,
    }
    let passing = Passing {
        body: Box::pin(body),
        hasher: digest.algorithm().hasher(),
        digest,
        size: 0,
        relay,
    };
    futures_util::stream::unfold(Some(passing), move |passing| async move {
        let mut passing = passing?;
        let wrong: BoxError = match passing.body.next().await {
            Some(Ok(bytes)) => {
                passing.size = passing.size.saturating_add(bytes.len() as u64);
                if passing.size > expected {
                    let more = format!("the remote sent more than the {expected} bytes expected");
                    return Some((Err(more.into()), None));
                }
                passing.hasher.update(&bytes);
                if let Some(relay) = &passing.relay {
                    relay.send(Relayed::Bytes(bytes.clone())).await;
                }
                return Some((Ok(bytes), Some(passing)));
            }
            Some(Err(err)) => Box::new(err),
            None if passing.size != expected => format!(
                "the remote sent {} bytes, not the {expected} the import recorded",
                passing.size
            )
            .into(),
            None => match passing.hasher.finish() {
                actual if actual != passing.digest => {
                    format!("the remote sent content with digest {actual}").into()
                }
                _ => {
                    if let Some(relay) = passing.relay {
                        relay.send(Relayed::Verified).await;
                    }
                    return None;
                }
            },
        };
        Some((Err(wrong), None))
    })
}

/// The pull's end of a relay as an answer's body of `size` bytes: each chunk as it comes but
/// the last, held until the fetch says the blob is verified (and all `size` bytes came); an
/// error instead when the relay closes before that.
fn relayed_body(receiver: mpsc::Receiver<Relayed>, size: u64) -> ByteStream {
    struct Reading {
        receiver: mpsc::Receiver<Relayed>,
        held: Option<Bytes>,
        received: u64,
    }
    let reading = Reading {
        receiver,
        held: None,
        received: 0,
    };
    Box::pin(futures_util::stream::unfold(
        Some(reading),
        move |reading| async move {
            let mut reading = reading?;
            loop {
                match reading.receiver.recv().await {
                    Some(Relayed::Bytes(bytes)) => {
                        reading.received += bytes.len() as u64;
                        if let Some(previous) = reading.held.replace(bytes) {
                            return Some((Ok(previous), Some(reading)));
                        }
                    }
                    Some(Relayed::Started) => {}
                    Some(Relayed::Verified) if reading.received == size => {
                        return reading.held.take().map(|last| (Ok(last), None));
                    }
                    Some(Relayed::Verified) | None => {
                        let unfinished = std::io::Error::other(
                            "the fetch from the remote failed or its bytes are not the blob named",
                        );
                        return Some((Err(unfinished), None));
                    }
                }
            }
        },
    ))
}

impl PullThrough {
    /// Waits for the fetch `waiting` follows to end, within the bound on a fetch.
    async fn outcome(
        &self,
        mut waiting: watch::Receiver<Option<Fetched>>,
        digest: &Digest,
    ) -> RegistryResult<u64> {
        let ended = tokio::time::timeout(self.timeout, waiting.wait_for(Option::is_some)).await;
        match ended {
            Ok(Ok(state)) => match state.clone() {
                Some(Fetched::Linked(size)) => Ok(size),
                Some(Fetched::Absent) => Err(RegistryError::BlobUnknown(digest.clone())),
                Some(Fetched::Failed) | None => Err(RegistryError::BlobUnavailable(digest.clone())),
            },
            // The fetch's task ended without a word, or this pull waited its whole bound.
            Ok(Err(_)) | Err(_) => Err(RegistryError::BlobUnavailable(digest.clone())),
        }
    }

    /// The repository's remote link of `digest`; `Err(size)` when a fetch that ended since the
    /// caller looked has linked the blob.
    async fn remote_link(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> RegistryResult<Result<RemoteBlob, u64>> {
        let metadata = &self.importer.metadata;
        if let Some(remote) = metadata.remote_blob(repository, digest).await? {
            return Ok(Ok(remote));
        }
        match metadata.blob_size(repository, digest).await? {
            Some(size) => Ok(Err(size)),
            None => Err(RegistryError::BlobUnknown(digest.clone())),
        }
    }
}

#[async_trait::async_trait]
impl crate::registry::PullThrough for PullThrough {
    async fn fetch(&self, repository: &RepositoryName, digest: &Digest) -> RegistryResult<u64> {
        let remote = match self.remote_link(repository, digest).await? {
            Ok(remote) => remote,
            Err(size) => return Ok(size),
        };
        let waiting = self.join_or_start((repository.clone(), digest.clone()), remote, None);
        self.outcome(waiting, digest).await
    }

    async fn fetch_streaming(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> RegistryResult<Pulled> {
        let remote = match self.remote_link(repository, digest).await? {
            Ok(remote) => remote,
            Err(size) => return Ok(Pulled::Stored(size)),
        };
        let size = remote.size;
        let (relay, mut relayed) = Relay::new();
        let key = (repository.clone(), digest.clone());
        let waiting = self.join_or_start(key, remote, Some(relay));
        // The relay closes unused when this pull joined a fetch under way, or when the fetch
        // ended (or went to another replica) before the remote answered.
        if let Ok(Some(Relayed::Started)) = tokio::time::timeout(self.timeout, relayed.recv()).await
        {
            let body = relayed_body(relayed, size);
            return Ok(Pulled::Streaming { size, body });
        }
        self.outcome(waiting, digest).await.map(Pulled::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteMetadata;
    use crate::storage::{Referenced, RemoteSource};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Two replicas of one database, each with a repository that links a blob as remote.
    async fn replicas(dir: &tempfile::TempDir) -> [Arc<SqliteMetadata>; 2] {
        let path = dir.path().join("berth.db");
        let first = Arc::new(SqliteMetadata::open(&path).await.unwrap());
        let second = Arc::new(SqliteMetadata::open(&path).await.unwrap());
        let (repository, digest) = key();
        first
            .link_remote_blobs(
                &repository,
                &[Referenced { digest, size: 5 }],
                &RemoteSource {
                    repository: "remote.example/team/app".into(),
                    insecure: false,
                },
            )
            .await
            .unwrap();
        [first, second]
    }

    fn key() -> Key {
        ("team/app".parse().unwrap(), Digest::sha256_of(b"layer"))
    }

    fn coordination(store: &Arc<SqliteMetadata>) -> Coordination {
        Coordination::new(store.clone(), store.clone())
    }

    const TIMING: LeaseTiming = LeaseTiming {
        ttl: Duration::from_millis(600),
        renew_every: Duration::from_millis(100),
    };

    /// Renewals far apart: a replica that waited for one, instead of hearing the holder's word,
    /// would take seconds.
    const SLOW_RENEWAL: LeaseTiming = LeaseTiming {
        ttl: Duration::from_secs(10),
        renew_every: Duration::from_secs(5),
    };

    /// A fetch that takes `after`, counted, and links the blob.
    async fn fetch(store: &SqliteMetadata, fetches: &AtomicUsize, after: Duration) -> Fetched {
        fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(after).await;
        let (repository, digest) = key();
        assert!(
            store
                .link_fetched_blob(&repository, &digest, 5)
                .await
                .unwrap()
        );
        Fetched::Linked(5)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_pulling_one_blob_fetch_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = replicas(&dir).await;
        let fetches = AtomicUsize::new(0);
        let key = key();
        let pulls = replicas.iter().map(|store| {
            let (fetches, key) = (&fetches, &key);
            async move {
                coalesce_across_replicas(
                    &coordination(store),
                    SLOW_RENEWAL,
                    store.as_ref(),
                    key,
                    || fetch(store, fetches, Duration::from_millis(300)),
                )
                .await
            }
        });
        let started = std::time::Instant::now();
        let outcomes = futures_util::future::join_all(pulls).await;
        assert_eq!(outcomes, [Fetched::Linked(5), Fetched::Linked(5)]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // The waiting replica heard the word: waiting out a renewal period would take 5 s.
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fetch_whose_replica_died_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let [first, second] = replicas(&dir).await;
        let fetches = Arc::new(AtomicUsize::new(0));
        let key = key();
        // The first replica starts fetching, then dies mid-fetch.
        let dying = tokio::spawn({
            let (first, fetches, key) = (first.clone(), fetches.clone(), key.clone());
            async move {
                coalesce_across_replicas(
                    &coordination(&first),
                    TIMING,
                    first.as_ref(),
                    &key,
                    || fetch(&first, &fetches, Duration::from_secs(60)),
                )
                .await
            }
        });
        while fetches.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        dying.abort();
        let started = std::time::Instant::now();
        let outcome = coalesce_across_replicas(
            &coordination(&second),
            TIMING,
            second.as_ref(),
            &key,
            || fetch(&second, &fetches, Duration::ZERO),
        )
        .await;
        assert_eq!(outcome, Fetched::Linked(5));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // Once the dead holder's lease expired.
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|part| Ok(bytes::Bytes::from_static(part)))
                .collect::<Vec<_>>(),
        )
    }

    /// What a relayed body gives after the fetch sent `messages` and closed the relay.
    async fn relayed(messages: Vec<Relayed>, size: u64) -> Vec<Result<Bytes, String>> {
        let (relay, receiver) = Relay::new();
        let body = relayed_body(receiver, size);
        for message in messages {
            relay.send(message).await;
        }
        drop(relay);
        body.map(|chunk| chunk.map_err(|err| err.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_relayed_body_ends_whole_only_once_verified() {
        let chunks = || {
            vec![
                Relayed::Started,
                Relayed::Bytes(Bytes::from_static(b"abc")),
                Relayed::Bytes(Bytes::from_static(b"def")),
            ]
        };
        let mut verified = chunks();
        verified.push(Relayed::Verified);
        assert_eq!(
            relayed(verified, 6).await,
            [
                Ok(Bytes::from_static(b"abc")),
                Ok(Bytes::from_static(b"def"))
            ]
        );
        // The fetch failed (the relay closed unverified): the last chunk never comes.
        let failed = relayed(chunks(), 6).await;
        assert_eq!(failed[0], Ok(Bytes::from_static(b"abc")));
        assert!(failed[1].is_err(), "{failed:?}");
        assert_eq!(failed.len(), 2);
        // Verified, but fewer bytes came than the answer announced.
        let mut short = chunks();
        short.push(Relayed::Verified);
        let short = relayed(short, 7).await;
        assert!(short[1].is_err(), "{short:?}");
    }

    #[tokio::test]
    async fn a_body_longer_than_expected_ends_in_an_error() {
        let whole = chunks(&[b"abc", b"def"]);
        let read: Vec<_> = verifying(whole, Digest::sha256_of(b"abcdef"), 6, None)
            .collect()
            .await;
        assert!(read.iter().all(Result::is_ok));
        let longer = chunks(&[b"abc", b"defg"]);
        let read: Vec<_> = verifying(longer, Digest::sha256_of(b"abcdefg"), 6, None)
            .collect()
            .await;
        assert!(read[0].is_ok());
        assert!(read[1].is_err(), "the seventh byte is refused");
    }
}
