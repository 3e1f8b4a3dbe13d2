//! What is inside an image's layers: each layer's file index ([`LayerIndex`], built once and
//! kept beside the blob through [`BlobStore`]'s derived objects), a file's bytes read from the
//! nearest checkpoint, and the merged view of an image's layers ([`merged_view`]).
//!
//! Nothing read from a layer is ever used as a name on the server's filesystem: entries are
//! data in the index, and a file is named by its layer and its position in the index. Who may
//! see a layer is the callers' question (the console asks the same as a pull).

pub mod decode;
pub mod index;
pub mod merged;

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::io::{StreamReader, SyncIoBridge};

pub use self::decode::Compression;
pub use self::index::{Entry, EntryKind, Incomplete, LayerIndex};
pub use self::merged::{MergedEntry, merge};
pub use crate::config::LayersConfig as LayerLimits;
use crate::oci::Digest;
use crate::storage::{BlobStore, ByteStream, Derived, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {0} is not in the blob store")]
    Missing(Digest),
    #[error("this layer has no entry {0}")]
    NoEntry(usize),
    #[error("{path} is a {kind}, not a file: it has no content to read")]
    NotAFile { path: String, kind: &'static str },
    #[error("{0} cannot be read: the layer ends before its declared size")]
    Truncated(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type LayerResult<T> = Result<T, LayerError>;

/// Bytes of a file, read whole or up to a bound.
#[derive(Debug, Clone)]
pub struct FileBytes {
    pub bytes: Vec<u8>,
    /// The file has more than `bytes`.
    pub cut: bool,
    /// Where in the tar stream decoding started (a checkpoint's offset; 0 from the start).
    pub decoded_from: u64,
}

/// A file's bytes as they stream out, and where decoding started.
pub struct FileStream {
    pub entry: Entry,
    pub body: ByteStream,
    pub decoded_from: u64,
}

/// Layers' indexes: built once per layer (concurrent openers wait for the one build), kept in
/// the blob store, and the most recent held in memory up to `cache_entries` entries.
pub struct Layers {
    blobs: Arc<dyn BlobStore>,
    limits: LayerLimits,
    cache: Mutex<Cache>,
    builds: AtomicU64,
}

type Cell = Arc<OnceCell<Arc<LayerIndex>>>;

#[derive(Default)]
struct Cache {
    cells: HashMap<Digest, Cell>,
    /// Oldest first.
    order: VecDeque<Digest>,
}

impl Layers {
    pub fn new(blobs: Arc<dyn BlobStore>, limits: LayerLimits) -> Self {
        Layers {
            blobs,
            limits,
            cache: Mutex::new(Cache::default()),
            builds: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> &LayerLimits {
        &self.limits
    }

    /// How many layers this process has decoded whole to index them.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The index of layer `digest`: from memory, from the store, or built now.
    pub async fn index(&self, digest: &Digest) -> LayerResult<Arc<LayerIndex>> {
        let cell = self.cell(digest);
        let index = cell
            .get_or_try_init(|| self.load_or_build(digest))
            .await?
            .clone();
        self.evict();
        Ok(index)
    }

    fn cell(&self, digest: &Digest) -> Cell {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cell) = cache.cells.get(digest) {
            return cell.clone();
        }
        let cell = Cell::default();
        cache.cells.insert(digest.clone(), cell.clone());
        cache.order.push_back(digest.clone());
        cell
    }

    /// Drops the oldest indexes while those held have more entries than the bound (the newest
    /// stays, however large).
    fn evict(&self) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = |cell: &Cell| cell.get().map_or(0, |index| index.entries.len() as u64);
        let mut total: u64 = cache.cells.values().map(held).sum();
        while total > self.limits.cache_entries && cache.order.len() > 1 {
            let Some(oldest) = cache.order.pop_front() else {
                break;
            };
            if let Some(cell) = cache.cells.remove(&oldest) {
                total -= held(&cell);
            }
        }
    }

    async fn load_or_build(&self, digest: &Digest) -> LayerResult<Arc<LayerIndex>> {
        if let Some(stored) = self.blobs.get_derived(digest, Derived::LayerIndex).await? {
            let decoded = blocking(move || Ok(LayerIndex::decode(&stored))).await?;
            if let Some(index) = decoded {
                return Ok(Arc::new(index));
            }
        }
        let size = self
            .blobs
            .stat(digest)
            .await?
            .ok_or_else(|| LayerError::Missing(digest.clone()))?;
        let input = self.blobs.read(digest, 0, size).await?;
        let limits = self.limits.clone();
        self.builds.fetch_add(1, Ordering::Relaxed);
        let index = blocking(move || {
            let mut input = io::BufReader::with_capacity(256 * 1024, sync_reader(input));
            let compression = Compression::sniff(input.fill_buf()?);
            Ok(index::build(compression, input, &limits))
        })
        .await?;
        let index = Arc::new(index);
        // A bound met because the machine was busy is not kept: a later open tries again.
        if !matches!(index.incomplete, Some(Incomplete::TooSlow { .. })) {
            let encoded = {
                let index = index.clone();
                blocking(move || index.encode()).await?
            };
            self.blobs
                .put_derived(digest, Derived::LayerIndex, Bytes::from(encoded))
                .await?;
        }
        Ok(index)
    }

    /// The bytes of entry `at` of layer `digest`, decoded from the checkpoint before it.
    pub async fn open(&self, digest: &Digest, at: usize) -> LayerResult<FileStream> {
        let index = self.index(digest).await?;
        let entry = index
            .entries
            .get(at)
            .ok_or(LayerError::NoEntry(at))?
            .clone();
        if !matches!(entry.kind, EntryKind::File) {
            return Err(LayerError::NotAFile {
                path: entry.path,
                kind: entry.kind.as_str(),
            });
        }
        if entry.truncated {
            return Err(LayerError::Truncated(entry.path));
        }
        if index.compression == Compression::None {
            let body = self.blobs.read(digest, entry.offset, entry.size).await?;
            return Ok(FileStream {
                entry,
                body,
                decoded_from: 0,
            });
        }
        let start = index
            .checkpoint_before(entry.offset)
            .cloned()
            .unwrap_or(decode::Checkpoint::at(0));
        let size = self
            .blobs
            .stat(digest)
            .await?
            .ok_or_else(|| LayerError::Missing(digest.clone()))?;
        let input = self
            .blobs
            .read(
                digest,
                start.compressed,
                size.saturating_sub(start.compressed),
            )
            .await?;
        let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(4);
        let decoded_from = start.uncompressed;
        let (skip, len) = (entry.offset - start.uncompressed, entry.size);
        tokio::task::spawn_blocking(move || {
            let window = index.window(&start);
            let decoder =
                decode::Decoder::resume(index.compression, sync_reader(input), &start, window);
            if let Err(err) = send_range(decoder, skip, len, &sender) {
                let _ = sender.blocking_send(Err(err));
            }
        });
        let body: ByteStream = Box::pin(tokio_stream_of(receiver));
        Ok(FileStream {
            entry,
            body,
            decoded_from,
        })
    }

    /// Up to `max` bytes of entry `at` of layer `digest`.
    pub async fn read(&self, digest: &Digest, at: usize, max: u64) -> LayerResult<FileBytes> {
        let FileStream {
            entry,
            mut body,
            decoded_from,
        } = self.open(digest, at).await?;
        let mut bytes = Vec::new();
        let want = entry.size.min(max);
        while (bytes.len() as u64) < want {
            let Some(chunk) = body.try_next().await.map_err(StorageError::Io)? else {
                break;
            };
            let room = (want - bytes.len() as u64) as usize;
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok(FileBytes {
            cut: entry.size > bytes.len() as u64,
            bytes,
            decoded_from,
        })
    }
}

/// The merged view of an image whose layers are `layers`, base first: what a container sees,
/// each path with the layer it comes from (see [`merged`]). The indexes that stopped early
/// contribute what they hold; [`Layers::index`] tells which did.
pub async fn merged_view(layers: &Layers, digests: &[Digest]) -> LayerResult<Vec<MergedEntry>> {
    let mut indexes = Vec::with_capacity(digests.len());
    for digest in digests {
        indexes.push((digest.to_string(), layers.index(digest).await?));
    }
    Ok(merge(&indexes))
}

/// Skips `skip` bytes of `decoded`, then sends the next `len` to `sender`, until it is closed.
fn send_range(
    mut decoded: impl Read,
    skip: u64,
    len: u64,
    sender: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let skipped = io::copy(&mut (&mut decoded).take(skip), &mut io::sink())?;
    if skipped < skip {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    let mut rest = decoded.take(len);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = rest.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        if sender
            .blocking_send(Ok(Bytes::copy_from_slice(&buffer[..n])))
            .is_err()
        {
            return Ok(()); // The reader went away.
        }
    }
}

fn sync_reader(stream: ByteStream) -> impl Read {
    SyncIoBridge::new(StreamReader::new(stream))
}

fn tokio_stream_of(
    mut receiver: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> LayerResult<T> {
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| StorageError::Io(io::Error::other(join)))?;
    Ok(done.map_err(StorageError::Io)?)
}
