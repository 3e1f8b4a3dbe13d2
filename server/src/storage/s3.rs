//! The S3 blob store: blobs at `PREFIX/blobs/<algorithm>/<xx>/<hex>` in an S3-compatible bucket,
//! and each upload's data under `PREFIX/uploads/<uuid>/`, so that any replica can continue an
//! upload that another one began (through object_store's `AmazonS3`).
//!
//! An upload is a run of part objects, `data/<offset>`, one per `write_upload` (a PATCH, a
//! monolithic upload, a pull-through fetch), each holding what was written from that offset; a
//! part's bytes count up to where the next part starts. A write first removes what the upload
//! held from its offset on (an unrecorded write's data), then streams its body into its part
//! object: one PUT when shorter than [`PART_SIZE`], else a multipart upload of `PART_SIZE`
//! parts with at most [`PARTS_IN_FLIGHT`] being sent while the next fills, so a write holds a
//! few dozen MiB at most whatever its size. S3 parts must be at least 5 MiB but PATCHes may be
//! smaller: part objects have no minimum. Committing copies the one part object a monolithic or
//! single-PATCH push leaves to the blob's key on the server side, or streams the parts into a
//! multipart upload at the blob's key; either way the blob appears whole or not at all.
//!
//! object_store cannot list incomplete multipart uploads (it has no ListMultipartUploads), so
//! each one Berth opens is recorded, as soon as S3 has named it, by an object
//! `pending/<offset>-<uuid>` (or `pending/commit-<uuid>`) holding its key and id, and removed
//! once it completes or is aborted. What a killed process leaves open is aborted when the upload
//! is written again from that offset, deleted, or swept as an orphan
//! ([`super::sweep_orphan_uploads`]). A bucket lifecycle rule (AbortIncompleteMultipartUpload)
//! covers the instant between S3 naming an upload and its record being written.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    Certificate, ClientConfigKey, ClientOptions, GetOptions, GetRange, MultipartId, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use tokio::task::JoinSet;

use super::{
    BlobStore, ByteStream, Derived, IncomingStream, StorageError, StorageResult, UploadId,
};
use crate::config::storage::S3Config;
use crate::oci::{Digest, DigestHasher};

/// Bytes in each part of a multipart upload, and the most one PUT carries. S3 wants parts of at
/// least 5 MiB but the last (some stores want them all equal) and at most 10,000 parts: 80 GiB
/// an object at this size.
const PART_SIZE: usize = 8 << 20;
/// Parts being sent while the next one fills.
const PARTS_IN_FLIGHT: usize = 2;
/// The largest object S3's CopyObject copies; a larger upload is streamed into its blob.
const COPY_MAX: u64 = 5 << 30;
/// How long a redirect's presigned URL lets a client start its download.
const REDIRECT_EXPIRY: Duration = Duration::from_secs(300);

pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    /// The same bucket with few retries, for readiness: a probe must answer quickly, and a
    /// wrong address must stop Berth at start rather than minutes later.
    probe: AmazonS3,
    /// `PREFIX/`, or empty for the bucket's root.
    prefix: String,
    /// Whether blob GETs are redirected to a presigned URL.
    redirect: bool,
}

/// object_store's builder: the standard `AWS_*` variables, then what the configuration says.
fn builder(bucket: &str, settings: &S3Config) -> StorageResult<AmazonS3Builder> {
    let mut trusted = ClientOptions::new();
    for certificate in settings
        .ca_certificates()
        .map_err(|err| StorageError::Unusable(err.to_string()))?
    {
        let certificate = Certificate::from_der(&certificate)
            .map_err(|err| StorageError::Unusable(format!("the S3 CA bundle: {err}")))?;
        trusted = trusted.with_root_certificate(certificate);
    }
    // As `AmazonS3Builder::from_env`, on options holding the CA bundle: setting the options
    // afterwards would drop those the variables give (`AWS_ALLOW_HTTP`, `AWS_PROXY_URL`, ...).
    let mut builder = AmazonS3Builder::new().with_client_options(trusted);
    for (name, value) in std::env::vars_os() {
        if let (Some(name), Some(value)) = (name.to_str(), value.to_str())
            && name.starts_with("AWS_")
            && let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(key, value);
        }
    }
    let mut builder = builder
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(!settings.path_style)
        // No overall request timeout (object_store's is 30 s): a client may take long to pull
        // a large blob; a response that stalls is caught by the read timeout instead.
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            "24 hours",
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
            "2 minutes",
        );
    if let Some(endpoint) = &settings.endpoint {
        let endpoint = if settings.path_style {
            endpoint.trim_end_matches('/').to_owned()
        } else {
            bucket_host(endpoint, bucket)?
        };
        // As the S3 endpoint too: `AWS_ENDPOINT_URL_S3` would win over the plain one.
        builder = builder
            .with_endpoint(&endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let plain_http = endpoint.is_some_and(|endpoint| endpoint.starts_with("http://"));
    builder = builder.with_allow_http(plain_http);
    if !plain_http {
        // TLS protects the bodies already: no second SHA-256 of every part for the signature.
        builder = builder.with_unsigned_payload(true);
    }
    Ok(builder)
}

/// `https://host` as `https://bucket.host`, for virtual-hosted-style requests.
fn bucket_host(endpoint: &str, bucket: &str) -> StorageResult<String> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|err| StorageError::Unusable(format!("the endpoint {endpoint:?}: {err}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|err| StorageError::Unusable(format!("the endpoint {endpoint:?}: {err}")))?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl S3BlobStore {
    /// Opens the blob store at `prefix` in `bucket`, and checks that the bucket answers.
    pub async fn open(
        bucket: &str,
        prefix: &str,
        settings: &S3Config,
        redirect: bool,
    ) -> StorageResult<Self> {
        // object_store's HTTP client (reqwest 0.13) is built without a TLS provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = builder(bucket, settings)?;
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
            .unwrap_or_else(|| "AWS S3".into());
        // With the causes: the top level says only "error sending request" when the
        // endpoint's certificate is refused.
        let unusable = |err: &(dyn std::error::Error + 'static)| {
            StorageError::Unusable(format!(
                "the bucket {bucket:?} at {endpoint} cannot be used: {}",
                crate::egress::error_chain(err)
            ))
        };
        let store = builder.clone().build().map_err(|err| unusable(&err))?;
        let probe = builder
            .with_retry(RetryConfig {
                max_retries: 1,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|err| unusable(&err))?;
        let prefix = prefix.trim_matches('/');
        let blobs = S3BlobStore {
            store: Arc::new(store),
            probe,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            redirect,
        };
        blobs.check().await.map_err(|err| unusable(&err))?;
        // And whether it takes writes (some stores make a missing bucket on the first write:
        // the listing comes first).
        blobs
            .probe
            .put(
                &blobs.key("berth-ready"),
                PutPayload::from_static(b"written by Berth at start\n"),
            )
            .await
            .map_err(|err| unusable(&err))?;
        Ok(blobs)
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn blob_key(&self, digest: &Digest) -> Path {
        // The digest grammar (fixed-length lowercase hex) keeps this inside the prefix.
        let hex = digest.hex();
        self.key(&format!(
            "blobs/{}/{}/{hex}",
            digest.algorithm().as_str(),
            &hex[..2]
        ))
    }

    fn derived_key(&self, digest: &Digest, kind: Derived) -> Path {
        self.key(&format!("{}/{}", Derived::dir_of(digest), kind.name()))
    }

    fn uploads(&self) -> Path {
        self.key("uploads")
    }

    fn upload_dir(&self, id: UploadId) -> Path {
        self.key(&format!("uploads/{id}"))
    }

    fn data_key(&self, id: UploadId, offset: u64) -> Path {
        self.key(&format!("uploads/{id}/data/{offset:020}"))
    }

    /// Where a multipart upload begun for `id` is recorded: `what` is the offset a write
    /// starts at, or `commit`.
    fn pending_key(&self, id: UploadId, what: &str) -> Path {
        self.key(&format!(
            "uploads/{id}/pending/{what}-{}",
            uuid::Uuid::new_v4()
        ))
    }

    /// An object's size, `None` when it is absent.
    async fn size_of(&self, key: &Path) -> StorageResult<Option<u64>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn upload_objects(&self, id: UploadId) -> StorageResult<UploadObjects> {
        let dir = self.upload_dir(id);
        let mut objects = UploadObjects::default();
        let mut listing = self.store.list(Some(&dir));
        while let Some(meta) = listing.try_next().await? {
            let Some(parts) = meta.location.prefix_match(&dir) else {
                continue;
            };
            let parts: Vec<String> = parts.map(|part| part.as_ref().to_owned()).collect();
            match parts.as_slice() {
                [kind, name] if kind == "data" => {
                    if let Ok(offset) = name.parse::<u64>() {
                        objects.data.push((offset, meta));
                    }
                }
                [kind, name] if kind == "pending" => {
                    let from = name.split_once('-').and_then(|(from, _)| from.parse().ok());
                    objects.pending.push((from, meta));
                }
                _ => {}
            }
        }
        objects.data.sort_by_key(|(offset, _)| *offset);
        Ok(objects)
    }

    /// Aborts the multipart upload a record names, then removes the record.
    async fn abort_recorded(&self, record: &Path) -> StorageResult<()> {
        let text = match self.store.get(record).await {
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let text = String::from_utf8_lossy(&text);
        if let Some((key, id)) = text.split_once('\n') {
            let key = Path::parse(key).map_err(object_store::Error::from)?;
            match self.store.abort_multipart(&key, &id.to_owned()).await {
                // Completed or aborted already.
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.delete_all(vec![record.clone()]).await
    }

    async fn delete_all(&self, keys: Vec<Path>) -> StorageResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(keys);
        while let Some(outcome) = deleted.next().await {
            match outcome {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Removes what an upload holds from `offset` on: part objects, and multipart uploads
    /// that writes from there left open.
    async fn drop_from(&self, objects: &UploadObjects, offset: u64) -> StorageResult<()> {
        for (from, record) in &objects.pending {
            if from.is_some_and(|from| from >= offset) {
                self.abort_recorded(&record.location).await?;
            }
        }
        let stale = objects
            .data
            .iter()
            .filter(|(start, _)| *start >= offset)
            .map(|(_, meta)| meta.location.clone())
            .collect();
        self.delete_all(stale).await
    }

    /// Streams `body` into the object `key`, through a multipart upload recorded at `record`
    /// when it is longer than one part. Returns how many bytes it held.
    async fn put_streamed(
        &self,
        key: &Path,
        record: Path,
        mut body: impl Stream<Item = StorageResult<Bytes>> + Send + Unpin,
        mut hasher: Option<&mut DigestHasher>,
    ) -> StorageResult<u64> {
        let mut part = PartBuffer::default();
        let mut multipart: Option<OpenMultipart> = None;
        let mut size = 0u64;
        let written: StorageResult<()> = async {
            while let Some(chunk) = body.next().await {
                let mut chunk = chunk?;
                if let Some(hasher) = hasher.as_deref_mut() {
                    hasher.update(&chunk);
                }
                size += chunk.len() as u64;
                while !chunk.is_empty() {
                    // Split where the part ends (no copy: `Bytes` share their buffer).
                    part.push(chunk.split_to(part.room().min(chunk.len())));
                    if part.is_full() {
                        let upload = match &mut multipart {
                            Some(upload) => upload,
                            None => multipart.insert(
                                OpenMultipart::start(&self.store, key, record.clone()).await?,
                            ),
                        };
                        upload.send(part.take()).await?;
                    }
                }
            }
            match &mut multipart {
                None => {
                    self.store.put(key, part.take()).await?;
                }
                Some(upload) => {
                    if !part.is_empty() {
                        upload.send(part.take()).await?;
                    }
                    upload.finish().await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = written {
            if let Some(mut upload) = multipart {
                upload.abort().await;
            }
            return Err(err);
        }
        Ok(size)
    }

    /// Writes `body` into upload `id` from `offset`, hashing when given a hasher.
    async fn write(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
        hasher: Option<&mut DigestHasher>,
    ) -> StorageResult<u64> {
        let objects = self.upload_objects(id).await?;
        if reach(&objects.data, offset).1 < offset {
            // The recorded progress is not in the bucket: the store lost it.
            return Err(StorageError::UploadDataMissing);
        }
        self.drop_from(&objects, offset).await?;
        let record = self.pending_key(id, &format!("{offset:020}"));
        let written = self
            .put_streamed(
                &self.data_key(id, offset),
                record,
                body.map_err(StorageError::Incoming),
                hasher,
            )
            .await?;
        Ok(offset + written)
    }

    /// The segments' bytes, one ranged GET after the other.
    fn stream_segments(&self, segments: Vec<Segment>) -> ByteStream {
        let store = Arc::clone(&self.store);
        let stream = futures_util::stream::iter(segments)
            .then(move |segment| {
                let store = Arc::clone(&store);
                async move {
                    let options = GetOptions {
                        range: Some(GetRange::Bounded(0..segment.len)),
                        ..GetOptions::default()
                    };
                    Ok::<_, object_store::Error>(
                        store.get_opts(&segment.key, options).await?.into_stream(),
                    )
                }
            })
            .try_flatten()
            .map_err(io::Error::from);
        Box::pin(stream)
    }
}

/// What the bucket holds of one upload.
#[derive(Default)]
struct UploadObjects {
    /// Part objects, by the offset each starts at, in order.
    data: Vec<(u64, ObjectMeta)>,
    /// Records of multipart uploads opened for it, with the offset their write starts at
    /// (`None` for a commit's).
    pending: Vec<(Option<u64>, ObjectMeta)>,
}

/// The first `len` bytes of one part object.
struct Segment {
    key: Path,
    len: u64,
    /// It is the whole object.
    whole: bool,
}

/// The upload's first `len` bytes as segments of its part objects (each counts up to where the
/// next starts), and how far they reach (less than `len` when the upload lacks bytes).
fn reach(data: &[(u64, ObjectMeta)], len: u64) -> (Vec<Segment>, u64) {
    let mut segments = Vec::new();
    let mut at = 0;
    for (i, (start, meta)) in data.iter().enumerate() {
        if at >= len || *start != at {
            break;
        }
        let next = data.get(i + 1).map_or(u64::MAX, |(next, _)| *next);
        let until = start.saturating_add(meta.size).min(next).min(len);
        if until > at {
            segments.push(Segment {
                key: meta.location.clone(),
                len: until - at,
                whole: until - at == meta.size,
            });
        }
        at = until;
    }
    (segments, at)
}

/// A part being filled from the body's chunks, kept as they came.
#[derive(Default)]
struct PartBuffer {
    chunks: Vec<Bytes>,
    len: usize,
}

impl PartBuffer {
    fn room(&self) -> usize {
        PART_SIZE - self.len
    }

    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    fn is_full(&self) -> bool {
        self.len >= PART_SIZE
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn take(&mut self) -> PutPayload {
        self.len = 0;
        std::mem::take(&mut self.chunks).into_iter().collect()
    }
}

/// A multipart upload in progress, recorded in the bucket until it completes or is aborted.
struct OpenMultipart {
    store: Arc<AmazonS3>,
    key: Path,
    id: MultipartId,
    record: Path,
    sending: JoinSet<(usize, object_store::Result<PartId>)>,
    parts: Vec<Option<PartId>>,
}

impl OpenMultipart {
    async fn start(store: &Arc<AmazonS3>, key: &Path, record: Path) -> StorageResult<Self> {
        let id = store.create_multipart(key).await?;
        if let Err(err) = store
            .put(&record, PutPayload::from(format!("{key}\n{id}")))
            .await
        {
            let _ = store.abort_multipart(key, &id).await;
            return Err(err.into());
        }
        Ok(OpenMultipart {
            store: Arc::clone(store),
            key: key.clone(),
            id,
            record,
            sending: JoinSet::new(),
            parts: Vec::new(),
        })
    }

    async fn send(&mut self, payload: PutPayload) -> StorageResult<()> {
        while self.sending.len() >= PARTS_IN_FLIGHT {
            self.one_sent().await?;
        }
        let index = self.parts.len();
        self.parts.push(None);
        let (store, key, id) = (Arc::clone(&self.store), self.key.clone(), self.id.clone());
        self.sending.spawn(async move {
            let sent = store.put_part(&key, &id, index, payload).await;
            (index, sent)
        });
        Ok(())
    }

    async fn one_sent(&mut self) -> StorageResult<()> {
        match self.sending.join_next().await {
            None => Ok(()),
            Some(Ok((index, Ok(part)))) => {
                self.parts[index] = Some(part);
                Ok(())
            }
            Some(Ok((_, Err(err)))) => Err(err.into()),
            Some(Err(join)) => Err(StorageError::Io(io::Error::other(join))),
        }
    }

    async fn finish(&mut self) -> StorageResult<()> {
        while !self.sending.is_empty() {
            self.one_sent().await?;
        }
        let parts = std::mem::take(&mut self.parts)
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StorageError::Io(io::Error::other("a part was never sent")))?;
        self.store
            .complete_multipart(&self.key, &self.id, parts)
            .await?;
        self.forget().await;
        Ok(())
    }

    async fn abort(&mut self) {
        self.sending.abort_all();
        match self.store.abort_multipart(&self.key, &self.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => self.forget().await,
            // The record stays, so that deleting or sweeping the upload tries again.
            Err(err) => tracing::warn!(key = %self.key, %err, "aborting a multipart upload failed"),
        }
    }

    async fn forget(&self) {
        if let Err(err) = self.store.delete(&self.record).await {
            // A stale record costs one abort of a finished upload later.
            tracing::warn!(record = %self.record, %err, "removing a multipart upload's record failed");
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        self.size_of(&self.blob_key(digest)).await
    }

    async fn read(&self, digest: &Digest, offset: u64, len: u64) -> StorageResult<ByteStream> {
        let missing = || StorageError::BlobMissing(digest.clone());
        let key = self.blob_key(digest);
        let end = offset.checked_add(len).ok_or_else(missing)?;
        // An object shorter than the range asked (damaged from outside) is missing, never
        // streamed short, as on the filesystem.
        let short = |size: u64| {
            tracing::error!(%digest, size, wanted = end, "blob object is shorter than its recorded size");
            missing()
        };
        if len == 0 {
            return match self.size_of(&key).await? {
                Some(size) if size >= offset => Ok(Box::pin(futures_util::stream::empty())),
                Some(size) => Err(short(size)),
                None => Err(missing()),
            };
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..end)),
            ..GetOptions::default()
        };
        match self.store.get_opts(&key, options).await {
            Ok(found) if found.meta.size >= end => {
                Ok(Box::pin(found.into_stream().map_err(io::Error::from)))
            }
            Ok(found) => Err(short(found.meta.size)),
            Err(object_store::Error::NotFound { .. }) => Err(missing()),
            // A range past the object's end is refused (416) as an error of its own.
            Err(err) => match self.size_of(&key).await {
                Ok(Some(size)) if size < end => Err(short(size)),
                Ok(None) => Err(missing()),
                _ => Err(err.into()),
            },
        }
    }

    async fn delete(&self, digest: &Digest) -> StorageResult<()> {
        let mut keys = vec![self.blob_key(digest)];
        keys.extend(Derived::ALL.map(|kind| self.derived_key(digest, kind)));
        self.delete_all(keys).await
    }

    async fn get_derived(&self, digest: &Digest, kind: Derived) -> StorageResult<Option<Bytes>> {
        match self.store.get(&self.derived_key(digest, kind)).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn put_derived(&self, digest: &Digest, kind: Derived, bytes: Bytes) -> StorageResult<()> {
        // One PUT: S3 shows an object whole or not at all.
        self.store
            .put(
                &self.derived_key(digest, kind),
                PutPayload::from_bytes(bytes),
            )
            .await?;
        Ok(())
    }

    async fn write_upload(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
        mut hasher: DigestHasher,
    ) -> StorageResult<(u64, DigestHasher)> {
        let size = self.write(id, offset, body, Some(&mut hasher)).await?;
        Ok((size, hasher))
    }

    async fn write_upload_unhashed(
        &self,
        id: UploadId,
        offset: u64,
        body: IncomingStream,
    ) -> StorageResult<u64> {
        self.write(id, offset, body, None).await
    }

    async fn read_upload(&self, id: UploadId, len: u64) -> StorageResult<ByteStream> {
        let objects = self.upload_objects(id).await?;
        let (segments, reached) = reach(&objects.data, len);
        if objects.data.is_empty() || reached < len {
            return Err(StorageError::UploadDataMissing);
        }
        Ok(self.stream_segments(segments))
    }

    async fn commit_upload(&self, id: UploadId, size: u64, digest: &Digest) -> StorageResult<()> {
        let blob = self.blob_key(digest);
        let objects = self.upload_objects(id).await?;
        let stored = self.size_of(&blob).await?;
        if objects.data.is_empty() {
            // Committed already: a crash between the commit and the session's end in the
            // metadata store leaves the session pointing here. The blob's name is its
            // verified digest, so the session may finish.
            return match stored {
                Some(stored) if stored == size => Ok(()),
                _ => Err(StorageError::UploadDataMissing),
            };
        }
        let (segments, reached) = reach(&objects.data, size);
        if reached < size {
            return Err(StorageError::UploadDataMissing);
        }
        // A blob of this digest and size holds these very bytes already.
        if stored != Some(size) {
            match segments.as_slice() {
                [one] if one.whole && size <= COPY_MAX => {
                    self.store.copy(&one.key, &blob).await?;
                }
                _ => {
                    let record = self.pending_key(id, "commit");
                    let content = self.stream_segments(segments).map_err(StorageError::Io);
                    self.put_streamed(&blob, record, content, None).await?;
                }
            }
        }
        self.delete_upload(id).await
    }

    async fn delete_upload(&self, id: UploadId) -> StorageResult<()> {
        let objects = self.upload_objects(id).await?;
        for (_, record) in &objects.pending {
            self.abort_recorded(&record.location).await?;
        }
        let data = objects
            .data
            .into_iter()
            .map(|(_, meta)| meta.location)
            .collect();
        self.delete_all(data).await
    }

    async fn idle_uploads(&self, idle: Duration) -> StorageResult<Vec<UploadId>> {
        let uploads = self.uploads();
        let mut last_written: HashMap<uuid::Uuid, DateTime<Utc>> = HashMap::new();
        let mut listing = self.store.list(Some(&uploads));
        while let Some(meta) = listing.try_next().await? {
            // Only upload data is named by a UUID; anything else here is not ours to judge.
            let Some(id) = meta
                .location
                .prefix_match(&uploads)
                .and_then(|mut parts| uuid::Uuid::parse_str(parts.next()?.as_ref()).ok())
            else {
                continue;
            };
            let latest = last_written.entry(id).or_insert(meta.last_modified);
            *latest = (*latest).max(meta.last_modified);
        }
        let now = Utc::now();
        Ok(last_written
            .into_iter()
            .filter(|(_, written)| (now - *written).to_std().is_ok_and(|age| age >= idle))
            .map(|(id, _)| UploadId(id))
            .collect())
    }

    async fn check(&self) -> StorageResult<()> {
        // A listing of a folder that stays empty: one cheap request that fails when the bucket
        // is missing or the credentials do not work.
        let mut listing = self.probe.list(Some(&self.key("berth-ready")));
        listing.try_next().await?;
        Ok(())
    }

    async fn redirect_url(&self, digest: &Digest) -> StorageResult<Option<String>> {
        if !self.redirect {
            return Ok(None);
        }
        let url = self
            .store
            .signed_url(Method::GET, &self.blob_key(digest), REDIRECT_EXPIRY)
            .await?;
        Ok(Some(url.to_string()))
    }
}

/// The blob store contract on S3 (SeaweedFS, or Garage with `BERTH_TEST_S3=garage`; metadata in
/// SQLite, as `Stores::open` makes them from an `s3://` storage URL), and what only object
/// storage has: multipart records, redirects, start-up errors.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::storage::StorageConfig;
    use crate::oci::Algorithm;
    use crate::storage::Stores;
    use crate::storage::contract::{body, chunked, collect, noise};
    use crate::storage::test_infra::s3 as test_s3;

    /// The test store's address, region and keys.
    fn settings() -> S3Config {
        let s3 = test_s3();
        S3Config {
            endpoint: Some(s3.endpoint.clone()),
            region: Some(s3.region.clone()),
            access_key_id: Some(s3.access_key_id.clone()),
            secret_access_key: Some(s3.secret_access_key.clone()),
            ..S3Config::default()
        }
    }

    /// A store on a fresh prefix of the test bucket.
    async fn store(redirect: bool) -> S3BlobStore {
        S3BlobStore::open(
            &test_s3().bucket,
            &test_s3().prefix(),
            &settings(),
            redirect,
        )
        .await
        .unwrap()
    }

    fn config(data_dir: &std::path::Path, url: String) -> Config {
        Config {
            data_dir: data_dir.to_owned(),
            storage: StorageConfig {
                url: Some(url),
                s3: settings(),
                ..StorageConfig::default()
            },
            ..Config::default()
        }
    }

    async fn stores() -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let s3 = test_s3();
        let url = format!("s3://{}/{}", s3.bucket, s3.prefix());
        let stores = Stores::open(&config(dir.path(), url)).await.unwrap();
        (dir, stores)
    }

    crate::storage::contract::blob_contract!(stores());
    crate::storage::contract::collection_contract!(stores());

    /// Whether S3 still takes parts for the multipart upload `id` at `key`.
    async fn open_upload(store: &S3BlobStore, key: &Path, id: &MultipartId) -> bool {
        store
            .store
            .put_part(key, id, 1, PutPayload::from_static(b"probe"))
            .await
            .is_ok()
    }

    /// A multipart upload with one part sent, then left as a killed process leaves it.
    async fn abandoned_multipart(
        store: &S3BlobStore,
        id: UploadId,
        offset: u64,
    ) -> (Path, MultipartId) {
        let key = store.data_key(id, offset);
        let record = store.pending_key(id, &format!("{offset:020}"));
        let mut upload = OpenMultipart::start(&store.store, &key, record)
            .await
            .unwrap();
        upload.send(noise(PART_SIZE).into()).await.unwrap();
        while !upload.sending.is_empty() {
            upload.one_sent().await.unwrap();
        }
        let multipart = upload.id.clone();
        drop(upload);
        assert!(open_upload(store, &key, &multipart).await);
        (key, multipart)
    }

    #[tokio::test]
    async fn multipart_uploads_a_killed_write_left_are_aborted_by_the_next_write_or_a_sweep() {
        let store = store(false).await;
        // A PATCH at 0 was cut off by a kill; the client sends it again (to another replica).
        let id = UploadId::new();
        let (key, multipart) = abandoned_multipart(&store, id, 0).await;
        let (size, _) = store
            .write_upload(id, 0, body(vec![b"again"]), Algorithm::Sha256.hasher())
            .await
            .unwrap();
        assert_eq!(size, 5);
        assert!(!open_upload(&store, &key, &multipart).await);
        let left = store.upload_objects(id).await.unwrap();
        assert_eq!(left.data.len(), 1);
        assert!(left.pending.is_empty());

        // A monolithic upload killed midway has no session: the orphan sweep aborts it.
        let orphan = UploadId::new();
        let (key, multipart) = abandoned_multipart(&store, orphan, 0).await;
        let idle = store.idle_uploads(Duration::ZERO).await.unwrap();
        assert!(idle.contains(&orphan), "{idle:?}");
        store.delete_upload(orphan).await.unwrap();
        assert!(!open_upload(&store, &key, &multipart).await);
        assert!(
            !store
                .idle_uploads(Duration::ZERO)
                .await
                .unwrap()
                .contains(&orphan)
        );
    }

    #[tokio::test]
    async fn large_writes_leave_one_part_object_and_no_record() {
        let store = store(false).await;
        let id = UploadId::new();
        let content = noise(2 * PART_SIZE + 5);
        let (size, hasher) = store
            .write_upload(
                id,
                0,
                chunked(&content, 0..content.len(), 100_000),
                Algorithm::Sha256.hasher(),
            )
            .await
            .unwrap();
        let objects = store.upload_objects(id).await.unwrap();
        assert_eq!(objects.data.len(), 1);
        assert_eq!(objects.data[0].1.size, size);
        assert!(objects.pending.is_empty());
        // One part object: committed by a copy on the server.
        let digest = hasher.finish();
        store.commit_upload(id, size, &digest).await.unwrap();
        assert!(store.upload_objects(id).await.unwrap().data.is_empty());
        assert!(collect(store.read(&digest, 0, size).await.unwrap()).await == content);
    }

    #[tokio::test]
    async fn redirects_are_presigned_urls_a_plain_client_can_fetch() {
        let store = store(true).await;
        let id = UploadId::new();
        let (size, hasher) = store
            .write_upload(
                id,
                0,
                body(vec![b"redirected ", b"bytes"]),
                Algorithm::Sha256.hasher(),
            )
            .await
            .unwrap();
        let digest = hasher.finish();
        store.commit_upload(id, size, &digest).await.unwrap();
        let url = store.redirect_url(&digest).await.unwrap().unwrap();
        assert!(url.starts_with(&test_s3().endpoint), "{url}");
        assert!(url.contains("X-Amz-Expires=300"), "{url}");
        let client = reqwest::Client::new();
        let whole = client.get(&url).send().await.unwrap();
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.bytes().await.unwrap(), "redirected bytes");
        let part = client
            .get(&url)
            .header("Range", "bytes=11-15")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.bytes().await.unwrap(), "bytes");
        // Unsigned, the same address is refused.
        let bare = url.split('?').next().unwrap();
        assert_eq!(client.get(bare).send().await.unwrap().status(), 403);
        // Without `redirect`, blobs stream through Berth.
        assert_eq!(
            store_without_redirect()
                .await
                .redirect_url(&digest)
                .await
                .unwrap(),
            None
        );
    }

    async fn store_without_redirect() -> S3BlobStore {
        store(false).await
    }

    #[tokio::test]
    async fn a_missing_bucket_or_a_wrong_address_stops_the_start_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = config(dir.path(), "s3://no-such-bucket/berth".into());
        let err = Stores::open(&missing).await.err().unwrap().to_string();
        assert!(
            err.contains("\"no-such-bucket\"") && err.contains(&test_s3().endpoint),
            "{err}"
        );
        let mut wrong_key = config(dir.path(), format!("s3://{}/berth", test_s3().bucket));
        wrong_key.storage.s3.secret_access_key = Some("not-the-secret".into());
        let err = Stores::open(&wrong_key).await.err().unwrap().to_string();
        assert!(err.contains("cannot be used"), "{err}");
        assert!(!err.contains("not-the-secret"), "{err}");
        let mut nobody = config(dir.path(), format!("s3://{}/berth", test_s3().bucket));
        nobody.storage.s3.endpoint = Some(format!(
            "http://127.0.0.1:{}",
            crate::storage::test_infra::free_port()
        ));
        let started = std::time::Instant::now();
        let err = Stores::open(&nobody).await.err().unwrap().to_string();
        assert!(err.contains("cannot be used"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
        if test_s3().name == "Garage" {
            // Garage checks the region a request is signed for (SeaweedFS takes any): S3's
            // default is refused, and its answer names the one it expects.
            let mut default_region = config(dir.path(), format!("s3://{}/berth", test_s3().bucket));
            default_region.storage.s3.region = None;
            let err = Stores::open(&default_region)
                .await
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("cannot be used") && err.contains(&test_s3().region),
                "{err}"
            );
        }
    }

    #[test]
    fn the_builder_takes_the_settings_with_plain_http_only_when_written() {
        let value = |builder: &AmazonS3Builder, key| builder.get_config_value(&key);
        let path_style = builder(
            "blobs",
            &S3Config {
                endpoint: Some("http://127.0.0.1:9000/".into()),
                region: Some("eu-west-3".into()),
                ..S3Config::default()
            },
        )
        .unwrap();
        for key in [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint] {
            assert_eq!(
                value(&path_style, key).as_deref(),
                Some("http://127.0.0.1:9000")
            );
        }
        assert_eq!(
            value(&path_style, AmazonS3ConfigKey::Region).as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(
            value(
                &path_style,
                AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)
            )
            .as_deref(),
            Some("true")
        );
        let hosted = builder(
            "blobs",
            &S3Config {
                endpoint: Some("https://s3.example.com:8443".into()),
                path_style: false,
                ..S3Config::default()
            },
        )
        .unwrap();
        assert_eq!(
            value(&hosted, AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("https://blobs.s3.example.com:8443")
        );
        assert_eq!(
            value(&hosted, AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
            Some("true")
        );
        assert_eq!(
            value(
                &hosted,
                AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)
            )
            .as_deref(),
            Some("false")
        );
        assert_eq!(
            value(&hosted, AmazonS3ConfigKey::UnsignedPayload).as_deref(),
            Some("true")
        );
    }

    #[test]
    fn segments_count_each_part_up_to_where_the_next_starts() {
        let meta = |start: u64, size: u64| {
            (
                start,
                ObjectMeta {
                    location: Path::from(format!("data/{start}")),
                    last_modified: Utc::now(),
                    size,
                    e_tag: None,
                    version: None,
                },
            )
        };
        let lens = |data: &[(u64, ObjectMeta)], len: u64| {
            let (segments, reached) = reach(data, len);
            (
                segments
                    .iter()
                    .map(|s| (s.len, s.whole))
                    .collect::<Vec<_>>(),
                reached,
            )
        };
        let parts = [meta(0, 3), meta(3, 7), meta(10, 5)];
        assert_eq!(
            lens(&parts, 15),
            (vec![(3, true), (7, true), (5, true)], 15)
        );
        assert_eq!(lens(&parts, 5), (vec![(3, true), (2, false)], 5));
        // A part longer than where the next starts (left by a lost race) is cut there.
        let overlapping = [meta(0, 8), meta(5, 5)];
        assert_eq!(lens(&overlapping, 10), (vec![(5, false), (5, true)], 10));
        // A gap ends the reach.
        let gap = [meta(0, 3), meta(4, 3)];
        assert_eq!(lens(&gap, 7).1, 3);
        assert_eq!(lens(&[], 0), (vec![], 0));
        assert_eq!(lens(&[meta(2, 3)], 5).1, 0);
    }
}
