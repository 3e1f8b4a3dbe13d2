//! Layers read from the cluster's registry for the console's file views, kept on this machine
//! with their file indexes (`crate::layers` over a filesystem `BlobStore` under
//! `<data_dir>/upstream-layers`), bounded in bytes: the least recently used layers go first,
//! with their derived indexes (`BlobStore::delete` removes both).
//!
//! The cache only holds bytes: who may see a layer is decided on every request by the
//! cluster's registry, with the requester's own token, before the cache is asked
//! (`console/layers.rs`). A layer being read is held ([`HeldLayer`]) and never evicted under
//! its reader; a layer is fetched once however many ask for it at the same time.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use app::api::{ConsoleError, ConsoleResult};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::layers::{Incomplete, LayerLimits, Layers};
use crate::oci::Digest;
use crate::storage::fs::FsBlobStore;
use crate::storage::{BlobStore, BoxError, Derived, IncomingStream, UploadId};

/// The folder of the cache under the data directory.
pub const CACHE_DIR: &str = "upstream-layers";

pub struct LayerCache {
    blobs: Arc<dyn BlobStore>,
    layers: Layers,
    bound: u64,
    state: Arc<Mutex<State>>,
    /// One lock per digest being fetched or deleted: a second reader of a layer waits for the
    /// first one's fetch instead of fetching it again.
    slots: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    fetches: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    kept: HashMap<Digest, Kept>,
    /// Bytes of the layers kept and of their indexes, and of fetches under way.
    total: u64,
    /// Counts uses: the smallest `used` is the least recently used layer.
    clock: u64,
}

#[derive(Debug)]
struct Kept {
    bytes: u64,
    used: u64,
    readers: usize,
}

/// A layer in the cache, kept there while this lives.
#[derive(Debug)]
pub struct HeldLayer {
    state: Arc<Mutex<State>>,
    digest: Digest,
}

impl Drop for HeldLayer {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if let Some(kept) = state.kept.get_mut(&self.digest) {
            kept.readers = kept.readers.saturating_sub(1);
        }
    }
}

/// Bytes counted for a fetch under way, until it ends.
struct Reserved {
    state: Arc<Mutex<State>>,
    bytes: u64,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.total = state.total.saturating_sub(self.bytes);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LayerCache {
    /// The cache at `dir`, emptied: what it holds is only known to the process that fetched it
    /// (its sizes and uses live in memory), so a restart starts afresh.
    pub async fn open(dir: &Path, bound: u64, limits: LayerLimits) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        match tokio::fs::remove_dir_all(dir).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("emptying {}", dir.display()));
            }
            _ => {}
        }
        let blobs: Arc<dyn BlobStore> = Arc::new(
            FsBlobStore::open(dir)
                .await
                .with_context(|| format!("opening the layer cache at {}", dir.display()))?,
        );
        Ok(Self::new(blobs, bound, limits))
    }

    pub fn new(blobs: Arc<dyn BlobStore>, bound: u64, limits: LayerLimits) -> Self {
        LayerCache {
            layers: Layers::new(blobs.clone(), limits),
            blobs,
            bound,
            state: Arc::default(),
            slots: Mutex::default(),
            fetches: AtomicU64::new(0),
        }
    }

    /// The kept layers' indexes and files; a layer must be held while it is read.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// How many layers this process fetched from the cluster.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Bytes kept now (layers and their indexes).
    pub fn kept_bytes(&self) -> u64 {
        lock(&self.state).total
    }

    /// Whether layer `digest` is kept now.
    pub fn holds(&self, digest: &Digest) -> bool {
        lock(&self.state).kept.contains_key(digest)
    }

    /// Layer `digest` of `size` bytes (as the manifest the caller was allowed to read says),
    /// fetched with `fetch` unless it is kept, and indexed; held until the answer is dropped.
    /// A layer larger than the layers' bounds or the cache is refused before any fetch. Once
    /// its bytes flow, storing them runs to its end even if the caller goes away, so the
    /// cache's count always matches what it holds.
    pub async fn hold<F, Fut>(
        self: &Arc<Self>,
        digest: &Digest,
        size: u64,
        fetch: F,
    ) -> ConsoleResult<HeldLayer>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ConsoleResult<IncomingStream>>,
    {
        self.refuse_too_large(size)?;
        let turn = self.slot(digest).lock_owned().await;
        if let Some(held) = self.held(digest) {
            return Ok(held);
        }
        let room = self.make_room(size)?;
        self.evict_detached().await;
        let body = fetch().await?;
        let cache = self.clone();
        let digest = digest.clone();
        let stored = tokio::spawn(async move {
            let held = cache.store(&digest, size, body).await;
            drop(room);
            drop(turn);
            cache.evict().await;
            held
        });
        stored.await.map_err(|err| {
            ConsoleError::Unavailable(format!("storing a layer in the cache failed: {err}"))
        })?
    }

    /// The bytes of a layer (as its manifest says) are more than the cache may take.
    fn refuse_too_large(&self, size: u64) -> ConsoleResult<()> {
        let limit = self.layers.limits().max_uncompressed_bytes;
        if size > limit {
            // A compressed layer this large expands to more still.
            return Err(ConsoleError::Invalid(
                Incomplete::TooLarge { limit }.message(),
            ));
        }
        self.fits(size)
    }

    /// Layers of `size` bytes together fit in the cache.
    pub fn fits(&self, size: u64) -> ConsoleResult<()> {
        if size > self.bound {
            return Err(ConsoleError::Invalid(format!(
                "this needs {size} bytes of layers, more than the console's layer cache holds (raise [upstream] layer_cache_bytes, now {})",
                self.bound
            )));
        }
        Ok(())
    }

    fn slot(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.slots).entry(digest.clone()).or_default().clone()
    }

    /// Layer `digest`, held and counted as used now, when it is kept.
    fn held(&self, digest: &Digest) -> Option<HeldLayer> {
        let mut state = lock(&self.state);
        state.clock += 1;
        let clock = state.clock;
        let kept = state.kept.get_mut(digest)?;
        kept.used = clock;
        kept.readers += 1;
        Some(HeldLayer {
            state: self.state.clone(),
            digest: digest.clone(),
        })
    }

    /// Counts `size` bytes about to be fetched (until the answer is dropped), when the kept
    /// layers nobody reads now can be evicted to make room for them.
    fn make_room(&self, size: u64) -> ConsoleResult<Reserved> {
        let mut state = lock(&self.state);
        let room = self.bound.saturating_sub(size);
        let evictable: u64 = state
            .kept
            .values()
            .filter(|kept| kept.readers == 0)
            .map(|kept| kept.bytes)
            .sum();
        if state.total.saturating_sub(evictable) > room {
            return Err(ConsoleError::Unavailable(
                "the console's layer cache is full of layers being read now; try again in a moment"
                    .into(),
            ));
        }
        state.total += size;
        Ok(Reserved {
            state: self.state.clone(),
            bytes: size,
        })
    }

    /// Writes `body` as layer `digest` (at most `size` bytes, checked against the digest
    /// before they become the blob), indexes it and keeps it, held.
    async fn store(
        &self,
        digest: &Digest,
        size: u64,
        body: IncomingStream,
    ) -> ConsoleResult<HeldLayer> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let stored = match self.write(digest, size, body).await {
            Ok(()) => self.index_bytes(digest).await,
            Err(err) => Err(err),
        };
        let index_bytes = match stored {
            Ok(index_bytes) => index_bytes,
            Err(err) => {
                let _ = self.blobs.delete(digest).await;
                return Err(err);
            }
        };
        let mut state = lock(&self.state);
        state.clock += 1;
        let kept = Kept {
            bytes: size + index_bytes,
            used: state.clock,
            readers: 1,
        };
        state.total += kept.bytes;
        state.kept.insert(digest.clone(), kept);
        Ok(HeldLayer {
            state: self.state.clone(),
            digest: digest.clone(),
        })
    }

    async fn write(&self, digest: &Digest, size: u64, body: IncomingStream) -> ConsoleResult<()> {
        let body = Box::pin(at_most(body, size));
        let id = UploadId::new();
        let written = self
            .blobs
            .write_upload(id, 0, body, digest.algorithm().hasher())
            .await;
        let checked = match written.map(|(written, hasher)| (written, hasher.finish())) {
            Ok((written, actual)) if written == size && actual == *digest => Ok(()),
            Ok(_) => Err(ConsoleError::Unavailable(format!(
                "the cluster's registry sent layer {digest} with other content than its digest says"
            ))),
            Err(crate::storage::StorageError::Incoming(err)) => Err(ConsoleError::Unavailable(
                format!("layer {digest} could not be read from the cluster's registry: {err}"),
            )),
            Err(err) => Err(err.into()),
        };
        let stored = match checked {
            Ok(()) => self
                .blobs
                .commit_upload(id, size, digest)
                .await
                .map_err(ConsoleError::from),
            Err(err) => Err(err),
        };
        let _ = self.blobs.delete_upload(id).await;
        stored
    }

    /// Indexes a fetched layer now (what every reader needs first) and says how many bytes its
    /// stored index takes.
    async fn index_bytes(&self, digest: &Digest) -> ConsoleResult<u64> {
        self.layers.index(digest).await?;
        Ok(self
            .blobs
            .get_derived(digest, Derived::LayerIndex)
            .await?
            .map_or(0, |index| index.len() as u64))
    }

    /// [`Self::evict`], run to its end even if the caller goes away (a layer taken off the
    /// count is always deleted).
    async fn evict_detached(self: &Arc<Self>) {
        let cache = self.clone();
        let _ = tokio::spawn(async move { cache.evict().await }).await;
    }

    /// Deletes the least recently used layers nobody reads while the cache holds more than
    /// its bound.
    async fn evict(&self) {
        let victims = {
            let mut state = lock(&self.state);
            let mut idle: Vec<(u64, Digest)> = state
                .kept
                .iter()
                .filter(|(_, kept)| kept.readers == 0)
                .map(|(digest, kept)| (kept.used, digest.clone()))
                .collect();
            idle.sort();
            let mut victims = Vec::new();
            for (_, digest) in idle {
                if state.total <= self.bound {
                    break;
                }
                if let Some(kept) = state.kept.remove(&digest) {
                    state.total = state.total.saturating_sub(kept.bytes);
                    victims.push(digest);
                }
            }
            victims
        };
        for digest in victims {
            let slot = self.slot(&digest);
            let _turn = slot.lock().await;
            // Fetched again meanwhile: the new copy stays.
            if self.holds(&digest) {
                continue;
            }
            if let Err(err) = self.blobs.delete(&digest).await {
                tracing::warn!(%digest, %err, "deleting a layer from the console's layer cache failed");
            }
            let mut slots = lock(&self.slots);
            // Nobody else waits on it (the map's and this function's).
            if slots
                .get(&digest)
                .is_some_and(|slot| Arc::strong_count(slot) <= 2)
            {
                slots.remove(&digest);
            }
        }
    }
}

/// `body`, ending in an error once more than `size` bytes came (a registry cannot make the
/// cache write more than the manifest says).
fn at_most(body: IncomingStream, size: u64) -> impl Stream<Item = Result<Bytes, BoxError>> + Send {
    let mut seen = 0u64;
    body.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > size {
            return Err(BoxError::from(format!(
                "the registry sent more than the {size} bytes the manifest says"
            )));
        }
        Ok(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, &[u8])]) -> Bytes {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *content).unwrap();
        }
        Bytes::from(builder.into_inner().unwrap())
    }

    fn body(bytes: Bytes) -> ConsoleResult<IncomingStream> {
        Ok(Box::pin(futures_util::stream::iter([Ok::<_, BoxError>(
            bytes,
        )])))
    }

    async fn cache(bound: u64) -> (tempfile::TempDir, Arc<LayerCache>) {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&dir.path().join(CACHE_DIR), bound, LayerLimits::default())
            .await
            .unwrap();
        (dir, Arc::new(cache))
    }

    #[tokio::test]
    async fn a_layer_is_fetched_once_for_concurrent_readers() {
        let (_dir, cache) = cache(1 << 20).await;
        let bytes = layer(&[("etc/hello", b"hi")]);
        let digest = Digest::sha256_of(&bytes);
        let size = bytes.len() as u64;
        let read = || async {
            let held = cache
                .hold(&digest, size, || async { body(bytes.clone()) })
                .await
                .unwrap();
            let index = cache.layers().index(&digest).await.unwrap();
            drop(held);
            index.entries.len()
        };
        let (a, b, c) = tokio::join!(read(), read(), read());
        assert_eq!((a, b, c), (1, 1, 1));
        assert_eq!(cache.fetches(), 1);
        assert!(cache.kept_bytes() > size, "the index counts too");
    }

    #[tokio::test]
    async fn the_least_recently_used_layers_go_when_over_the_bound() {
        let layers: Vec<Bytes> = (0..3)
            .map(|n| layer(&[(&format!("f{n}"), &vec![b'x'; 4000])]))
            .collect();
        let size = layers[0].len() as u64;
        // Room for two layers with their indexes, not three.
        let (_dir, cache) = cache(size * 2 + size / 2).await;
        let digests: Vec<Digest> = layers.iter().map(|l| Digest::sha256_of(l)).collect();
        for (bytes, digest) in layers.iter().zip(&digests).take(2) {
            drop(
                cache
                    .hold(digest, size, || async { body(bytes.clone()) })
                    .await
                    .unwrap(),
            );
        }
        // The first is used again: the second is now the least recent.
        drop(
            cache
                .hold(&digests[0], size, || async { unreachable!() })
                .await
                .unwrap(),
        );
        drop(
            cache
                .hold(&digests[2], size, || async { body(layers[2].clone()) })
                .await
                .unwrap(),
        );
        assert!(cache.holds(&digests[0]) && cache.holds(&digests[2]));
        assert!(!cache.holds(&digests[1]));
        assert!(cache.kept_bytes() <= size * 2 + size / 2);
        assert_eq!(cache.blobs.stat(&digests[1]).await.unwrap(), None);
        assert_eq!(
            cache
                .blobs
                .get_derived(&digests[1], Derived::LayerIndex)
                .await
                .unwrap(),
            None,
            "its index goes with it"
        );
    }

    #[tokio::test]
    async fn a_held_layer_stays_and_wrong_bytes_are_not_kept() {
        let first = layer(&[("a", b"a")]);
        let second = layer(&[("b", b"b")]);
        let size = first.len() as u64;
        let (_dir, cache) = cache(size + size / 2).await;
        let (d1, d2) = (Digest::sha256_of(&first), Digest::sha256_of(&second));
        let held = cache
            .hold(&d1, size, || async { body(first.clone()) })
            .await
            .unwrap();
        let busy = cache
            .hold(&d2, size, || async { body(second.clone()) })
            .await;
        assert!(
            matches!(busy, Err(ConsoleError::Unavailable(_))),
            "{busy:?}"
        );
        drop(held);
        // Another layer's bytes under this digest, or more than the manifest says.
        let wrong = cache
            .hold(&d2, size, || async { body(first.clone()) })
            .await;
        assert!(
            matches!(wrong, Err(ConsoleError::Unavailable(_))),
            "{wrong:?}"
        );
        let longer = cache
            .hold(&d2, size - 1, || async { body(second.clone()) })
            .await;
        assert!(longer.is_err());
        assert!(!cache.holds(&d2));
        assert_eq!(cache.blobs.stat(&d2).await.unwrap(), None);
        // Too large for the layers' bounds: refused before any fetch.
        let limits = LayerLimits {
            max_uncompressed_bytes: 10,
            ..LayerLimits::default()
        };
        let small = Arc::new(LayerCache::new(cache.blobs.clone(), 1 << 20, limits));
        let refused = small.hold(&d2, size, || async { unreachable!() }).await;
        assert!(
            matches!(&refused, Err(ConsoleError::Invalid(m)) if m.contains("max_uncompressed_bytes")),
            "{refused:?}"
        );
    }
}
