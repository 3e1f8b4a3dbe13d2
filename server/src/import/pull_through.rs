//! Pull-through: a blob that an import linked as remote is fetched from the other registry on
//! its first pull, hashed as it is written, and linked into the repository only when its size
//! and digest are the ones the import recorded; the pull is then served from the store. No
//! byte reaches a client before it is verified: a remote (or whatever it redirects to) cannot
//! have Berth hand out content that is not the blob named.
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::importer::Importer;
use super::remote::{RemoteError, RemoteReference};
use crate::oci::Digest;
use crate::oci::RepositoryName;
use crate::registry::error::{RegistryError, RegistryResult};
use crate::storage::coordination::{Coordination, LeaseError, LeaseTiming, Topic, hold_lease};
use crate::storage::{BoxError, IncomingStream, MetadataStore, RemoteBlob, UploadId};

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
}

impl PullThrough {
    pub fn new(importer: Arc<Importer>, timeout: Duration, coordination: Coordination) -> Self {
        PullThrough {
            importer,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            timeout,
            coordination,
        }
    }

    /// The fetch of `key` under way, or a new one started for `remote`.
    fn join_or_start(&self, key: Key, remote: RemoteBlob) -> watch::Receiver<Option<Fetched>> {
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
        // A task of its own: a client that goes away does not cancel the fetch others wait for.
        tokio::spawn(async move {
            let (repository, digest) = &leader.key;
            let fetch = || fetch_here(&importer, repository, digest, &remote);
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
    repository: &RepositoryName,
    digest: &Digest,
    remote: &RemoteBlob,
) -> Fetched {
    match fetch_and_link(importer, repository, digest, remote).await {
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

/// Fetches `digest` from `remote`'s source, writes it hashed, checks size and digest, stores
/// it (or drops the copy when the store has the blob already) and links it into `repository`.
async fn fetch_and_link(
    importer: &Importer,
    repository: &RepositoryName,
    digest: &Digest,
    remote: &RemoteBlob,
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
    let body: IncomingStream = Box::pin(at_most(response.bytes_stream(), expected));
    let blobs = &importer.blobs;
    let id = UploadId::new();
    let written = blobs
        .write_upload(id, 0, body, digest.algorithm().hasher())
        .await;
    let verified = match written {
        Ok((size, _)) if size != expected => Err(failed(format!(
            "the remote sent {size} bytes, not the {expected} the import recorded"
        ))),
        Ok((size, hasher)) => match hasher.finish() {
            actual if actual == *digest => Ok(size),
            actual => Err(failed(format!(
                "the remote sent content with digest {actual}"
            ))),
        },
        Err(err) => Err(failed(err.to_string())),
    };
    let size = match verified {
        Ok(size) => size,
        Err(err) => {
            let _ = blobs.delete_upload(id).await;
            return Err(err);
        }
    };
    let stored = async {
        if blobs.stat(digest).await?.is_some() {
            // The same bytes are stored already (the digest says so): keep that copy.
            blobs.delete_upload(id).await
        } else {
            blobs.commit_upload(id, size, digest).await
        }
    }
    .await;
    if let Err(err) = stored {
        let _ = blobs.delete_upload(id).await;
        return Err(failed(err.to_string()));
    }
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

/// The body's bytes, ending with an error once more than `limit` arrive: a remote cannot make
/// Berth write more than the size it expects.
fn at_most(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    limit: u64,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, BoxError>> + Send {
    let mut seen: u64 = 0;
    body.map(move |chunk| {
        let chunk = chunk.map_err(|err| Box::new(err) as BoxError)?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            return Err(format!("the remote sent more than the {limit} bytes expected").into());
        }
        Ok(chunk)
    })
}

#[async_trait::async_trait]
impl crate::registry::PullThrough for PullThrough {
    async fn fetch(&self, repository: &RepositoryName, digest: &Digest) -> RegistryResult<u64> {
        let metadata = &self.importer.metadata;
        let Some(remote) = metadata.remote_blob(repository, digest).await? else {
            // A fetch that ended since the caller looked has turned the remote link into a link.
            return match metadata.blob_size(repository, digest).await? {
                Some(size) => Ok(size),
                None => Err(RegistryError::BlobUnknown(digest.clone())),
            };
        };
        let mut waiting = self.join_or_start((repository.clone(), digest.clone()), remote);
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
                coalesce_across_replicas(&coordination(store), TIMING, store.as_ref(), key, || {
                    fetch(store, fetches, Duration::from_millis(300))
                })
                .await
            }
        });
        let started = std::time::Instant::now();
        let outcomes = futures_util::future::join_all(pulls).await;
        assert_eq!(outcomes, [Fetched::Linked(5), Fetched::Linked(5)]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // The waiting replica heard the word, rather than waiting out a renewal period more.
        assert!(
            started.elapsed() < Duration::from_millis(390),
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

    #[tokio::test]
    async fn a_body_longer_than_expected_ends_in_an_error() {
        let read: Vec<_> = at_most(chunks(&[b"abc", b"def"]), 6).collect().await;
        assert!(read.iter().all(Result::is_ok));
        let read: Vec<_> = at_most(chunks(&[b"abc", b"defg"]), 6).collect().await;
        assert!(read[0].is_ok());
        assert!(read[1].is_err(), "the seventh byte is refused");
    }
}
