//! Pull-through: a blob an import linked but did not copy is fetched from the other registry on
//! its first pull, streamed to that client while it is written to the blob store, and served
//! from here afterwards. Concurrent pulls of one blob share the one fetch: the first client
//! reads it as it arrives, the others wait for it to be stored and read it from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::importer::Importer;
use super::remote::RemoteReference;
use crate::registry::error::{RegistryError, RegistryResult};
use crate::registry::names::RepositoryName;
use crate::storage::{BoxError, ByteStream, Digest, StorageError, UploadId};

/// Chunks in flight between the remote, the blob store and the client: memory stays at a few
/// chunks whatever the blob's size.
const CHANNEL_CHUNKS: usize = 8;
/// The size of the pieces passed along (see [`coalesce`]).
const COALESCE_BYTES: usize = 256 * 1024;

/// Fetches under way, by digest: each says `Some(stored)` when it ends.
type InFlight = Arc<Mutex<HashMap<Digest, watch::Receiver<Option<bool>>>>>;

pub struct PullThrough {
    pub importer: Arc<Importer>,
    in_flight: InFlight,
}

impl PullThrough {
    pub fn new(importer: Arc<Importer>) -> Self {
        PullThrough {
            importer,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts the fetch of `digest`, or joins the one under way.
    fn join_or_lead(
        &self,
        digest: &Digest,
    ) -> Result<watch::Sender<Option<bool>>, watch::Receiver<Option<bool>>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(waiting) = in_flight.get(digest) {
            return Err(waiting.clone());
        }
        let (done, waiting) = watch::channel(None);
        in_flight.insert(digest.clone(), waiting);
        Ok(done)
    }

    fn finish(&self, digest: &Digest) {
        finish(&self.in_flight, digest);
    }
}

fn finish(in_flight: &InFlight, digest: &Digest) {
    in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(digest);
}

#[async_trait::async_trait]
impl crate::registry::PullThrough for PullThrough {
    async fn fetch(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> RegistryResult<Option<ByteStream>> {
        let metadata = &self.importer.metadata;
        let blobs = &self.importer.blobs;
        let Some(source) = metadata.remote_source(repository, digest).await? else {
            return Ok(None);
        };
        let done = match self.join_or_lead(digest) {
            Ok(done) => done,
            Err(mut waiting) => {
                // Another pull is fetching it: wait for the store, then read it from here.
                let stored = waiting
                    .wait_for(Option::is_some)
                    .await
                    .map(|state| *state == Some(true))
                    .unwrap_or(false);
                if !stored {
                    return Err(RegistryError::Storage(StorageError::BlobMissing(
                        digest.clone(),
                    )));
                }
                return Ok(Some(blobs.read(digest, 0, size).await?));
            }
        };
        let remote = match RemoteReference::parse(&source.repository) {
            Ok(remote) => remote,
            Err(err) => {
                self.finish(digest);
                let _ = done.send(Some(false));
                return Err(unavailable(digest, &err.to_string()));
            }
        };
        let response = async {
            let registry = self
                .importer
                .registry(repository.namespace(), &remote, source.insecure)
                .await
                .map_err(|err| err.to_string())?;
            registry
                .blob(&remote.repository, digest)
                .await
                .map_err(|err| err.to_string())
        }
        .await;
        let response = match response {
            Ok(response) => response,
            Err(why) => {
                self.finish(digest);
                let _ = done.send(Some(false));
                return Err(unavailable(digest, &why));
            }
        };

        // One task reads the remote and feeds both the store and this client; it finishes the
        // store even when the client goes away.
        let (to_store, store_input) =
            mpsc::channel::<Result<bytes::Bytes, BoxError>>(CHANNEL_CHUNKS);
        let (to_client, client_output) =
            mpsc::channel::<std::io::Result<bytes::Bytes>>(CHANNEL_CHUNKS);
        let blobs = blobs.clone();
        let digest = digest.clone();
        let repository = repository.clone();
        let in_flight = Arc::clone(&self.in_flight);
        tokio::spawn(async move {
            let id = UploadId::new();
            // Written unhashed as it passes, so the client is paced by the network and the
            // write only; the hash is taken from the stored file before the commit.
            let writer = {
                let blobs = blobs.clone();
                tokio::spawn(async move {
                    blobs
                        .write_upload_unhashed(id, 0, Box::pin(receiver_stream(store_input)))
                        .await
                })
            };
            let mut body = Box::pin(coalesce(response.bytes_stream()));
            let mut client = Some(to_client);
            let mut failure = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => {
                        if to_store.send(Ok(chunk.clone())).await.is_err() {
                            failure = Some("the blob store stopped taking the blob".to_owned());
                            break;
                        }
                        if let Some(sender) = &client
                            && sender.send(Ok(chunk)).await.is_err()
                        {
                            // The client left; the store still gets the whole blob.
                            client = None;
                        }
                    }
                    Err(err) => {
                        failure = Some(format!("reading from the other registry failed: {err}"));
                        let _ = to_store.send(Err(err.to_string().into())).await;
                        break;
                    }
                }
            }
            drop(to_store);
            if failure.is_none() {
                // The client has every byte (and checks the digest itself): its response ends
                // now, not after the store's fsync and commit.
                client = None;
            }
            let stored = match (failure, writer.await) {
                (None, Ok(Ok(written))) if written != size => Err(format!(
                    "the other registry sent {written} bytes, not the {size} of {digest}"
                )),
                (None, Ok(Ok(_))) => match hash_upload(blobs.as_ref(), id, size, &digest).await {
                    Ok(actual) if actual == digest => blobs
                        .commit_upload(id, size, &digest)
                        .await
                        .map_err(|err| err.to_string()),
                    Ok(actual) => Err(format!(
                        "the other registry sent content with digest {actual}, not {digest}"
                    )),
                    Err(err) => Err(err.to_string()),
                },
                (Some(why), _) => Err(why),
                (None, Ok(Err(err))) => Err(err.to_string()),
                (None, Err(err)) => Err(err.to_string()),
            };
            if let Err(why) = &stored {
                tracing::warn!(%repository, %digest, %why, "pull-through fetch failed");
                let _ = blobs.delete_upload(id).await;
                if let Some(sender) = &client {
                    let _ = sender.send(Err(std::io::Error::other(why.clone()))).await;
                }
            }
            finish(&in_flight, &digest);
            let _ = done.send(Some(stored.is_ok()));
        });
        Ok(Some(Box::pin(receiver_stream(client_output))))
    }
}

/// Network reads arrive in pieces of a few KiB; the store and the client are fed in pieces of
/// up to `COALESCE_BYTES`, which costs one copy and saves most per-chunk hops.
fn coalesce(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send {
    futures_util::stream::unfold((Box::pin(body), false), |(mut body, ended)| async move {
        if ended {
            return None;
        }
        let mut buffer = bytes::BytesMut::new();
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    if buffer.is_empty() && chunk.len() >= COALESCE_BYTES {
                        return Some((Ok(chunk), (body, false)));
                    }
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() >= COALESCE_BYTES {
                        return Some((Ok(buffer.freeze()), (body, false)));
                    }
                }
                Some(Err(err)) if buffer.is_empty() => return Some((Err(err), (body, true))),
                // The bytes so far go first; the error ends the stream next time.
                Some(Err(_)) | None if !buffer.is_empty() => {
                    return Some((Ok(buffer.freeze()), (body, false)));
                }
                _ => return None,
            }
        }
    })
}

/// The digest of an upload's first `size` bytes, read back from the store.
async fn hash_upload(
    blobs: &dyn crate::storage::BlobStore,
    id: UploadId,
    size: u64,
    digest: &Digest,
) -> crate::storage::StorageResult<Digest> {
    let mut hasher = digest.algorithm().hasher();
    let mut content = blobs.read_upload(id, size).await?;
    while let Some(chunk) = content.next().await {
        hasher.update(&chunk?);
    }
    Ok(hasher.finish())
}

/// A channel's receiving end as a stream.
fn receiver_stream<T: Send + 'static>(
    receiver: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

fn unavailable(digest: &Digest, why: &str) -> RegistryError {
    tracing::warn!(%digest, %why, "pull-through could not start");
    RegistryError::Storage(StorageError::BlobMissing(digest.clone()))
}
