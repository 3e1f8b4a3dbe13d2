//! The filesystem blob store: `blobs/<algorithm>/<xx>/<hex>` and `uploads/<uuid>` under the data
//! folder.
//!
//! Uploads are written on a blocking thread fed through a bounded channel, so network reads,
//! hashing and disk writes overlap while memory stays at a few megabytes per upload. A finished
//! upload becomes a blob by one `rename`, so a crash never leaves a partial blob visible.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::{
    BlobStore, ByteStream, Derived, IncomingStream, StorageError, StorageResult, UploadId,
};
use crate::oci::{Digest, DigestHasher};

/// Chunks queued between the network and the writer thread (hyper yields chunks of up to a few
/// hundred KiB, so this bounds an upload's buffered data to a few MiB).
const WRITE_QUEUE: usize = 16;
const WRITE_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 256 * 1024;

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Writes an upload from `offset`, hashing on the way when given a hasher.
    async fn write_upload_with(
        &self,
        id: UploadId,
        offset: u64,
        mut body: IncomingStream,
        mut hasher: Option<DigestHasher>,
    ) -> StorageResult<(u64, Option<DigestHasher>)> {
        let path = self.upload_path(id);
        let (sender, mut receiver) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer =
            tokio::task::spawn_blocking(move || -> StorageResult<(u64, Option<DigestHasher>)> {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)?;
                if file.metadata()?.len() < offset {
                    // The recorded progress is not on disk: the data folder lost it.
                    return Err(StorageError::UploadDataMissing);
                }
                file.set_len(offset)?;
                file.seek(SeekFrom::Start(offset))?;
                let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
                let mut size = offset;
                while let Some(chunk) = receiver.blocking_recv() {
                    if let Some(hasher) = &mut hasher {
                        hasher.update(&chunk);
                    }
                    out.write_all(&chunk)?;
                    size += chunk.len() as u64;
                }
                let file = out.into_inner().map_err(|err| err.into_error())?;
                file.sync_data()?;
                Ok((size, hasher))
            });

        let mut incoming_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    if sender.send(chunk).await.is_err() {
                        break; // The writer stopped; its error is reported below.
                    }
                }
                Err(err) => {
                    incoming_error = Some(err);
                    break;
                }
            }
        }
        drop(sender);
        let written = writer
            .await
            .map_err(|join| StorageError::Io(io::Error::other(join)))??;
        match incoming_error {
            Some(err) => Err(StorageError::Incoming(err)),
            None => Ok(written),
        }
    }

    /// Opens (creating where needed) a blob store under `root`.
    pub async fn open(root: impl Into<PathBuf>) -> StorageResult<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("blobs")).await?;
        tokio::fs::create_dir_all(root.join("uploads")).await?;
        Ok(FsBlobStore { root })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // The digest grammar (fixed-length lowercase hex) keeps this inside `root`.
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_path(&self, id: UploadId) -> PathBuf {
        self.root.join("uploads").join(id.0.to_string())
    }
}

fn not_found_as(err: io::Error, missing: StorageError) -> StorageError {
    if err.kind() == io::ErrorKind::NotFound {
        missing
    } else {
        StorageError::Io(err)
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| StorageError::Io(io::Error::other(join)))?
}

/// Opens `path` positioned at `offset` and streams `len` bytes of it.
async fn stream_file(path: &Path, offset: u64, len: u64) -> io::Result<ByteStream> {
    let mut file = tokio::fs::File::open(path).await?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset)).await?;
    }
    Ok(Box::pin(ReaderStream::with_capacity(
        file.take(len),
        READ_CHUNK,
    )))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn read(&self, digest: &Digest, offset: u64, len: u64) -> StorageResult<ByteStream> {
        let missing = || StorageError::BlobMissing(digest.clone());
        let path = self.blob_path(digest);
        // Blobs arrive whole by a rename, but a file damaged from outside (a restore, a full
        // disk elsewhere) must not be sent as if it held the bytes asked for: shorter than the
        // range, it counts as missing (a pull-through blob is then fetched again).
        let on_disk = tokio::fs::metadata(&path)
            .await
            .map_err(|err| not_found_as(err, missing()))?
            .len();
        if offset.checked_add(len).is_none_or(|end| end > on_disk) {
            tracing::error!(%digest, on_disk, wanted = offset.saturating_add(len), "blob file is shorter than its recorded size");
            return Err(missing());
        }
        stream_file(&path, offset, len)
            .await
            .map_err(|err| not_found_as(err, missing()))
    }

    async fn delete(&self, digest: &Digest) -> StorageResult<()> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        match tokio::fs::remove_dir_all(self.root.join(Derived::dir_of(digest))).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    async fn get_derived(&self, digest: &Digest, kind: Derived) -> StorageResult<Option<Bytes>> {
        let path = self.root.join(Derived::dir_of(digest)).join(kind.name());
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn put_derived(&self, digest: &Digest, kind: Derived, bytes: Bytes) -> StorageResult<()> {
        let dir = self.root.join(Derived::dir_of(digest));
        blocking(move || {
            std::fs::create_dir_all(&dir)?;
            // Written aside, then renamed over: readers see a whole object.
            let temporary = dir.join(format!(".{}.{}", kind.name(), uuid::Uuid::new_v4()));
            let written = (|| -> io::Result<()> {
                let mut file = File::create(&temporary)?;
                file.write_all(&bytes)?;
                file.sync_data()?;
                std::fs::rename(&temporary, dir.join(kind.name()))
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&temporary);
            }
            Ok(written?)
        })
        .await
    }

    async fn write_upload(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
        hasher: DigestHasher,
    ) -> StorageResult<(u64, DigestHasher)> {
        let (size, hasher) = self
            .write_upload_with(id, offset, body, Some(hasher))
            .await?;
        let hasher = hasher.ok_or_else(|| StorageError::Corrupt("the hasher was lost".into()))?;
        Ok((size, hasher))
    }

    async fn write_upload_unhashed(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
    ) -> StorageResult<u64> {
        Ok(self.write_upload_with(id, offset, body, None).await?.0)
    }

    async fn read_upload(&self, id: UploadId, len: u64) -> StorageResult<ByteStream> {
        stream_file(&self.upload_path(id), 0, len)
            .await
            .map_err(|err| not_found_as(err, StorageError::UploadDataMissing))
    }

    async fn commit_upload(&self, id: UploadId, size: u64, digest: &Digest) -> StorageResult<()> {
        let upload = self.upload_path(id);
        let blob = self.blob_path(digest);
        blocking(move || {
            let file = match OpenOptions::new().write(true).open(&upload) {
                Ok(file) => file,
                // Committed already: a crash between this rename and the session's end in the
                // metadata store leaves the session pointing here. The blob's name is its
                // verified digest, so the session may finish.
                Err(err)
                    if err.kind() == io::ErrorKind::NotFound
                        && std::fs::metadata(&blob).is_ok_and(|m| m.len() == size) =>
                {
                    return Ok(());
                }
                Err(err) => return Err(not_found_as(err, StorageError::UploadDataMissing)),
            };
            let on_disk = file.metadata()?.len();
            if on_disk < size {
                return Err(StorageError::UploadDataMissing);
            }
            if on_disk > size {
                // Left by an interrupted write after the last recorded chunk.
                file.set_len(size)?;
                file.sync_data()?;
            }
            drop(file);
            let dir = blob.parent().ok_or_else(|| {
                StorageError::Io(io::Error::other("blob path has no parent folder"))
            })?;
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&upload, &blob)?;
            sync_dir(dir)?;
            Ok(())
        })
        .await
    }

    async fn delete_upload(&self, id: UploadId) -> StorageResult<()> {
        match tokio::fs::remove_file(self.upload_path(id)).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    async fn idle_uploads(&self, idle: std::time::Duration) -> StorageResult<Vec<UploadId>> {
        let folder = self.root.join("uploads");
        blocking(move || {
            let now = std::time::SystemTime::now();
            let mut found = Vec::new();
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                // Only upload data is named by a UUID; anything else here is not ours to judge.
                let Some(id) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| uuid::Uuid::parse_str(name).ok())
                else {
                    continue;
                };
                let modified = entry.metadata()?.modified()?;
                if now.duration_since(modified).is_ok_and(|age| age >= idle) {
                    found.push(UploadId(id));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn check(&self) -> StorageResult<()> {
        // One name per probe: with a shared name, two concurrent probes remove each other's
        // file and one reports the store broken.
        let probe = self
            .root
            .join("uploads")
            .join(format!(".ready-probe-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Algorithm;
    use crate::storage::contract::{body, collect};

    #[tokio::test]
    async fn a_blob_file_shorter_than_asked_is_missing_not_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let id = UploadId::new();
        let (size, hasher) = store
            .write_upload(id, 0, body(vec![b"0123456789"]), Algorithm::Sha256.hasher())
            .await
            .unwrap();
        let digest = hasher.finish();
        store.commit_upload(id, size, &digest).await.unwrap();
        // Damaged from outside: half of it is gone.
        std::fs::OpenOptions::new()
            .write(true)
            .open(store.blob_path(&digest))
            .unwrap()
            .set_len(5)
            .unwrap();
        assert_eq!(
            collect(store.read(&digest, 0, 5).await.unwrap()).await,
            b"01234"
        );
        for (offset, len) in [(0, 10), (5, 1), (u64::MAX, 2)] {
            assert!(
                matches!(
                    store.read(&digest, offset, len).await,
                    Err(StorageError::BlobMissing(_))
                ),
                "{offset}+{len}"
            );
        }
    }

    /// (The contract checks idleness and deletion; this, what else the folder may hold.)
    #[tokio::test]
    async fn idle_uploads_are_upload_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let id = UploadId::new();
        store
            .write_upload_unhashed(id, 0, body(vec![b"left behind"]))
            .await
            .unwrap();
        std::fs::write(dir.path().join("uploads").join("not-an-upload"), b"x").unwrap();
        assert_eq!(
            store.idle_uploads(std::time::Duration::ZERO).await.unwrap(),
            vec![id]
        );
    }
}
