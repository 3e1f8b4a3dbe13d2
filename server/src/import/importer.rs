//! `ImageStreamImport`: reads images from another registry into a stream. The manifests (an
//! index with all its children) and their configs are stored here, so the image's metadata is
//! read as for a push; layers are linked as remote blobs, fetched when first pulled. Each tag
//! records the remote reference as its spec and the image as its newest history item; a
//! failure becomes the tag's `ImportSuccess` condition and the tag keeps its image.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, FuturesUnordered};

use super::limits::NamespaceLimits;
use super::remote::{RemoteError, RemoteReference, RemoteRegistry};
use crate::auth::{Action, Subject, Target};
use crate::imagestream::ImageStreamApi;
use crate::imagestream::model::*;
use crate::imagestream::names::repository;
use crate::imagestream::spec_tags::IMPORT_MODE_PRESERVE;
use crate::kube::{ApiError, ApiResult, FieldError, IMAGE_STREAM_IMPORTS};
use crate::kube::{ObjectMeta, ObjectReference, Status};
use crate::oci::Digest;
use crate::oci::{RepositoryName, Tag};
use crate::registry::content::{self, Document};
use crate::registry::image_metadata;
use crate::secrets::api::{CredentialsError, RegistrySecrets};
use crate::storage::quotas::QuotaRefusal;
use crate::storage::{
    BlobStore, MetadataStore, PutManifestOutcome, Referenced, RemoteSource, StorageError, UploadId,
};

/// The most tags one repository import brings (OpenShift's default is 50 per import; a
/// registry with thousands of tags is imported a page at a time by scheduling).
const MAX_REPOSITORY_TAGS: usize = 200;
/// Scheduled tags imported at once across all namespaces (each namespace also has its own
/// bound, taken first, so one namespace holds at most that many of these).
const SCHEDULED_AT_ONCE: usize = 32;

pub struct Importer {
    pub image_streams: Arc<ImageStreamApi>,
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub secrets: Arc<RegistrySecrets>,
    /// Under the egress policy ([`crate::egress`]).
    pub http: crate::egress::HttpClient,
    /// Fetches from other registries at once per namespace (imports and pull-through).
    pub limits: Arc<NamespaceLimits>,
    /// How long one tag's import may take once its namespace's turn has come.
    pub tag_timeout: Duration,
}

/// Why one image could not be imported.
#[derive(Debug, thiserror::Error)]
enum ImageError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{0}")]
    Unusable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the import did not finish within {} seconds", .0.as_secs())]
    TimedOut(Duration),
    /// The image would take the namespace past a quota or limit range.
    #[error("{}", .0.api_message())]
    QuotaExceeded(QuotaRefusal),
}

impl ImageError {
    fn reason(&self) -> &'static str {
        match self {
            ImageError::Remote(err) => err.reason(),
            ImageError::Unusable(_) => "Invalid",
            ImageError::Storage(_) => "InternalError",
            ImageError::TimedOut(_) => "Timeout",
            ImageError::QuotaExceeded(_) => "Forbidden",
        }
    }

    fn code(&self) -> u16 {
        match self.reason() {
            "Unauthorized" => 401,
            "Forbidden" => 403,
            "NotFound" => 404,
            "Invalid" => 422,
            "Timeout" => 504,
            _ => 500,
        }
    }

    fn status(&self) -> Status {
        let mut status = crate::kube::success(IMAGE_STREAM_IMPORTS, "");
        status.status = "Failure".into();
        status.reason = self.reason().into();
        status.message = match self {
            ImageError::Storage(err) => {
                tracing::error!(%err, "storing an imported image failed");
                "internal error; the server log has the cause".into()
            }
            other => other.to_string(),
        };
        status.code = self.code();
        status.details = None;
        status
    }
}

/// One tag to import: from where, into which tag, and the spec tag to record.
struct Wanted {
    remote: RemoteReference,
    tag: Tag,
    reference: TagReference,
}

impl Wanted {
    fn new(
        remote: RemoteReference,
        tag: Tag,
        mut import_policy: TagImportPolicy,
        reference_policy: TagReferencePolicy,
    ) -> Self {
        if import_policy.import_mode.is_empty() {
            // Imports keep every platform of an index unless Legacy is asked for.
            import_policy.import_mode = IMPORT_MODE_PRESERVE.into();
        }
        let reference = TagReference {
            name: tag.as_str().to_owned(),
            from: Some(ObjectReference {
                kind: "DockerImage".into(),
                namespace: String::new(),
                name: remote.to_string(),
            }),
            import_policy,
            reference_policy,
            ..TagReference::default()
        };
        Wanted {
            remote,
            tag,
            reference,
        }
    }

    fn insecure(&self) -> bool {
        self.reference.import_policy.insecure
    }
}

impl Importer {
    /// `POST .../imagestreamimports`: imports (or with `spec.import` false, only reads) the
    /// images and repository the spec names into stream `metadata.name`.
    pub async fn import(
        &self,
        who: &Subject,
        namespace: &str,
        body: ImageStreamImport,
    ) -> ApiResult<ImageStreamImport> {
        let stream = body.metadata.name.clone();
        let invalid = |field: &str, message: String| {
            ApiError::invalid(
                IMAGE_STREAM_IMPORTS,
                &stream,
                FieldError::new(field, message),
            )
        };
        let repository = repository(namespace, &stream)?;
        self.image_streams.auth.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_IMPORTS,
            &stream,
        )?;
        self.image_streams.require_namespace(namespace).await?;
        if body.spec.images.is_empty() && body.spec.repository.is_none() {
            return Err(invalid(
                "spec",
                "name at least one image (spec.images) or a repository (spec.repository)".into(),
            ));
        }

        let mut images = Vec::new();
        for (i, spec) in body.spec.images.iter().enumerate() {
            let remote = docker_image(&spec.from)
                .map_err(|message| invalid(&format!("spec.images[{i}].from"), message))?;
            let tag_name = spec
                .to
                .as_ref()
                .map(|to| to.name.clone())
                .or_else(|| remote.tag.clone())
                .unwrap_or_else(|| "latest".to_owned());
            let tag = tag_name
                .parse::<Tag>()
                .map_err(|err| invalid(&format!("spec.images[{i}].to.name"), err.to_string()))?;
            images.push(Wanted::new(
                remote,
                tag,
                spec.import_policy.clone(),
                spec.reference_policy.clone(),
            ));
        }
        let mut status = ImageStreamImportStatus::default();
        for wanted in &images {
            status.images.push(
                self.import_tag(
                    namespace,
                    &stream,
                    &repository,
                    wanted,
                    body.spec.import,
                    None,
                )
                .await?,
            );
        }

        if let Some(spec) = &body.spec.repository {
            let remote = docker_image(&spec.from)
                .map_err(|message| invalid("spec.repository.from", message))?;
            let registry = self
                .registry(namespace, &remote, spec.import_policy.insecure)
                .await?;
            match registry.tags(&remote.repository).await {
                Err(err) => {
                    status.repository = Some(RepositoryImportStatus {
                        status: ImageError::from(err).status(),
                        images: Vec::new(),
                    });
                }
                Ok(mut tags) => {
                    tags.sort();
                    tags.truncate(MAX_REPOSITORY_TAGS);
                    let mut imported = Vec::new();
                    for remote_tag in tags {
                        let Ok(tag) = remote_tag.parse::<Tag>() else {
                            continue;
                        };
                        let wanted = Wanted::new(
                            remote.with_tag(&remote_tag),
                            tag,
                            spec.import_policy.clone(),
                            spec.reference_policy.clone(),
                        );
                        imported.push(
                            self.import_tag(
                                namespace,
                                &stream,
                                &repository,
                                &wanted,
                                body.spec.import,
                                None,
                            )
                            .await?,
                        );
                    }
                    status.repository = Some(RepositoryImportStatus {
                        status: crate::kube::success(IMAGE_STREAM_IMPORTS, &stream),
                        images: imported,
                    });
                }
            }
        }

        if body.spec.import {
            let record = self.image_streams.stream_record(namespace, &stream).await?;
            status.import = Some(self.image_streams.stream_object(&record));
        }
        Ok(ImageStreamImport {
            kind: "ImageStreamImport".into(),
            api_version: IMAGE_API_VERSION.into(),
            metadata: ObjectMeta {
                name: stream,
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec: body.spec,
            status,
        })
    }

    /// Imports again every spec tag whose `importPolicy.scheduled` is set (OpenShift's
    /// scheduled import): a new remote image becomes a new history item and an event; a
    /// failure sets the tag's condition and keeps its image. Tags are imported concurrently,
    /// each namespace within its own bound and each tag within its deadline, so a slow remote
    /// delays only its own namespace's tags.
    pub async fn reimport_scheduled(&self) -> ApiResult<usize> {
        let scheduled = self.image_streams.store.scheduled_imports().await?;
        let count = scheduled.len();
        let at_once = tokio::sync::Semaphore::new(SCHEDULED_AT_ONCE);
        let mut running: FuturesUnordered<_> = scheduled
            .into_iter()
            .filter_map(|(repository, tag, stored)| {
                let reference = serde_json::from_str::<TagReference>(&stored).ok()?;
                let tag = tag.parse::<Tag>().ok()?;
                let remote = match docker_image(reference.from.as_ref()?) {
                    Ok(remote) => remote,
                    Err(why) => {
                        tracing::warn!(%repository, %why, "a scheduled import names no remote image");
                        return None;
                    }
                };
                Some((
                    repository,
                    Wanted {
                        remote,
                        tag,
                        reference,
                    },
                ))
            })
            .map(|(repository, wanted)| {
                let at_once = &at_once;
                async move {
                    let result = self
                        .import_tag(
                            repository.namespace(),
                            repository.stream(),
                            &repository,
                            &wanted,
                            true,
                            Some(at_once),
                        )
                        .await;
                    if let Err(err) = result {
                        tracing::warn!(%repository, tag = wanted.tag.as_str(), %err, "scheduled import failed");
                    }
                }
            })
            .collect();
        while running.next().await.is_some() {}
        Ok(count)
    }

    /// Imports one tag; a remote or content failure is the tag's status (and, when writing,
    /// its condition), never the request's. The fetch takes a place in its namespace first,
    /// then in `shared` (a bound across namespaces) when given.
    async fn import_tag(
        &self,
        namespace: &str,
        stream: &str,
        repository: &RepositoryName,
        wanted: &Wanted,
        write: bool,
        shared: Option<&tokio::sync::Semaphore>,
    ) -> ApiResult<ImageImportStatus> {
        let fetched = {
            let _turn = self.limits.acquire(namespace).await;
            let _shared_turn = match shared {
                Some(shared) => shared.acquire().await.ok(),
                None => None,
            };
            // The deadline counts from the namespace's turn: the wait before it is bounded by
            // the deadlines of the fetches ahead.
            tokio::time::timeout(
                self.tag_timeout,
                self.fetch(namespace, repository, wanted, write),
            )
            .await
            .unwrap_or(Err(ImageError::TimedOut(self.tag_timeout)))
        };
        let reference = wanted.reference.clone();
        let outcome = match &fetched {
            Ok(digest) => Ok(digest.clone()),
            Err(err) => Err((err.reason(), err.to_string())),
        };
        if write {
            self.image_streams
                .record_import(namespace, stream, &wanted.tag, reference, outcome)
                .await?;
        }
        Ok(match fetched {
            Ok(digest) => {
                let image = if write {
                    self.image_streams
                        .store
                        .get_image(&digest)
                        .await?
                        .map(|record| {
                            self.image_streams.image_object(
                                &record,
                                format!("{}@{digest}", wanted.remote.repository_spec()),
                            )
                        })
                } else {
                    // A dry run names the image it read, as OpenShift's does, without storing it.
                    Some(Image {
                        kind: "Image".into(),
                        api_version: IMAGE_API_VERSION.into(),
                        metadata: ObjectMeta {
                            name: digest.to_string(),
                            ..ObjectMeta::default()
                        },
                        docker_image_reference: format!(
                            "{}@{digest}",
                            wanted.remote.repository_spec()
                        ),
                        docker_image_metadata: None,
                        docker_image_metadata_version: String::new(),
                        docker_image_manifest_media_type: String::new(),
                        docker_image_layers: Vec::new(),
                        docker_image_manifests: Vec::new(),
                    })
                };
                ImageImportStatus {
                    status: crate::kube::success(IMAGE_STREAM_IMPORTS, wanted.tag.as_str()),
                    image,
                    tag: wanted.tag.as_str().to_owned(),
                }
            }
            Err(err) => ImageImportStatus {
                status: err.status(),
                image: None,
                tag: wanted.tag.as_str().to_owned(),
            },
        })
    }

    /// The client for `remote`'s registry, with the namespace's credentials for it.
    pub(crate) async fn registry(
        &self,
        namespace: &str,
        remote: &RemoteReference,
        insecure: bool,
    ) -> ApiResult<RemoteRegistry> {
        let credentials = self
            .secrets
            .credentials_for(namespace, &remote.registry)
            .await
            .map_err(|err| match err {
                CredentialsError::Storage(err) => ApiError::internal(err),
                other => ApiError::BadRequest(other.to_string()),
            })?;
        Ok(RemoteRegistry::new(
            self.http.clone(),
            &remote.registry,
            insecure,
            credentials,
        ))
    }

    /// Reads the image `wanted` names and, when `write`, stores it in `repository`; returns
    /// the digest of what the tag is to name.
    async fn fetch(
        &self,
        namespace: &str,
        repository: &RepositoryName,
        wanted: &Wanted,
        write: bool,
    ) -> Result<Digest, ImageError> {
        let registry = self
            .registry(namespace, &wanted.remote, wanted.insecure())
            .await
            .map_err(|err| ImageError::Unusable(err.to_string()))?;
        let source = RemoteSource {
            repository: wanted.remote.repository_spec(),
            insecure: wanted.insecure(),
        };
        let top = parse(registry.manifest(&wanted.remote).await?)?;
        let digest = top.manifest.digest.clone();
        if !write {
            return Ok(digest);
        }
        if let Document::Index(_) = &top.document {
            for child in top.manifest.manifests.iter().map(|child| &child.digest) {
                let manifest = parse(registry.manifest(&wanted.remote.with_digest(child)).await?)?;
                if !matches!(manifest.document, Document::Image(_)) {
                    return Err(ImageError::Unusable(format!(
                        "{child} in the index is not an image manifest"
                    )));
                }
                self.store_manifest(repository, &registry, &wanted.remote, &source, manifest)
                    .await?;
            }
        }
        self.store_manifest(repository, &registry, &wanted.remote, &source, top)
            .await?;
        Ok(digest)
    }

    /// Stores one manifest with its config (read now) and its layers (linked as remote).
    async fn store_manifest(
        &self,
        repository: &RepositoryName,
        registry: &RemoteRegistry,
        remote: &RemoteReference,
        source: &RemoteSource,
        parsed: content::ParsedManifest,
    ) -> Result<(), ImageError> {
        let content::ParsedManifest {
            mut manifest,
            document,
        } = parsed;
        let mut config = None;
        if let Document::Image(image_manifest) = &document {
            let config_digest: Digest = image_manifest
                .config()
                .digest()
                .to_string()
                .parse()
                .map_err(|_| ImageError::Unusable("the config digest is not valid".into()))?;
            let config_size = image_manifest.config().size();
            if config_size <= image_metadata::MAX_CONFIG_BYTES {
                let bytes = registry
                    .blob_bytes(
                        &remote.repository,
                        &config_digest,
                        usize::try_from(config_size).unwrap_or(usize::MAX),
                    )
                    .await?;
                if bytes.len() as u64 != config_size {
                    return Err(ImageError::Unusable(format!(
                        "the config {config_digest} is {} bytes, not the {config_size} the manifest declares",
                        bytes.len()
                    )));
                }
                self.store_blob(repository, &config_digest, bytes.clone())
                    .await?;
                if image_metadata::wants_config(image_manifest) {
                    config = Some(bytes.to_vec());
                }
            } else {
                let config = Referenced {
                    digest: config_digest,
                    size: config_size,
                };
                self.metadata
                    .link_remote_blobs(repository, &[config], source)
                    .await?;
            }
            // Remote links only: the layers are fetched, and verified, when first pulled.
            let layers: Vec<Referenced> = image_manifest
                .layers()
                .iter()
                .filter_map(|layer| {
                    Some(Referenced {
                        digest: layer.digest().to_string().parse().ok()?,
                        size: layer.size(),
                    })
                })
                .collect();
            self.metadata
                .link_remote_blobs(repository, &layers, source)
                .await?;
        }
        manifest.image =
            serde_json::to_string(&image_metadata::describe(&document, config.as_deref())).ok();
        match self
            .metadata
            .put_manifest(repository, &manifest, None)
            .await?
        {
            PutManifestOutcome::Stored => Ok(()),
            PutManifestOutcome::MissingReferences(missing) => Err(ImageError::Unusable(format!(
                "the manifest refers to content that could not be linked: {}",
                missing
                    .iter()
                    .map(Digest::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            PutManifestOutcome::WrongSizes(mismatched) => {
                Err(ImageError::Unusable(content::wrong_sizes(&mismatched)))
            }
            PutManifestOutcome::QuotaExceeded(refusal) => Err(ImageError::QuotaExceeded(refusal)),
        }
    }

    /// Writes a small blob through the upload path (hashed as it is written) and links it.
    async fn store_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<(), ImageError> {
        let size = bytes.len() as u64;
        // Claimed before the bytes are looked at: no collection deletes them before the link.
        self.metadata.claim_blob(digest).await?;
        // A file of another size at the digest's place is damaged: written again (the rename
        // replaces it), not trusted.
        if self.blobs.stat(digest).await? != Some(size) {
            let id = UploadId::new();
            let body = Box::pin(stream::iter([Ok::<_, crate::storage::BoxError>(bytes)]));
            let (written, hasher) = self
                .blobs
                .write_upload(id, 0, body, digest.algorithm().hasher())
                .await?;
            if written != size || hasher.finish() != *digest {
                let _ = self.blobs.delete_upload(id).await;
                return Err(ImageError::Unusable(format!(
                    "blob {digest} does not match its digest"
                )));
            }
            self.blobs.commit_upload(id, size, digest).await?;
        }
        self.metadata.link_blob(repository, digest, size).await?;
        Ok(())
    }
}

/// A remote manifest read as a push is (OCI or Docker schema 2, image or index), under the
/// digest it was fetched by.
fn parse(fetched: super::remote::RemoteManifest) -> Result<content::ParsedManifest, ImageError> {
    let mut parsed = content::parse(fetched.content, fetched.content_type.as_deref())
        .map_err(|err| ImageError::Unusable(err.to_string()))?;
    parsed.manifest.digest = fetched.digest;
    Ok(parsed)
}

/// A `DockerImage` reference's pull spec, parsed.
fn docker_image(from: &ObjectReference) -> Result<RemoteReference, String> {
    if from.kind != "DockerImage" {
        return Err(format!(
            "{:?} is not DockerImage: imports read from other registries",
            from.kind
        ));
    }
    RemoteReference::parse(&from.name).map_err(|err| err.to_string())
}

/// `POST /apis/image.openshift.io/v1/namespaces/{namespace}/imagestreamimports`.
pub fn router(importer: Arc<Importer>) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::response::Response;

    use crate::auth::http::Caller;
    use crate::kube::{ApiJson, created};

    async fn import(
        State(importer): State<Arc<Importer>>,
        caller: Caller,
        Path(namespace): Path<String>,
        ApiJson(body): ApiJson<ImageStreamImport>,
    ) -> Response {
        created(importer.import(&caller.subject, &namespace, body).await)
    }

    axum::Router::new()
        .route(
            "/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreamimports",
            axum::routing::post(import),
        )
        .with_state(importer)
}

/// Runs the scheduled import every `interval`, on one replica at a time: the holder of the
/// `scheduled-imports` lease (a survivor takes it over when the holder dies, and starts its own
/// interval).
pub fn schedule(
    importer: Arc<Importer>,
    interval: std::time::Duration,
    coordination: &crate::storage::coordination::Coordination,
) {
    use crate::storage::coordination::LeaseTiming;
    coordination.spawn_leased("scheduled-imports", LeaseTiming::STANDARD, move || {
        let importer = importer.clone();
        async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: wait a whole interval after start instead.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match importer.reimport_scheduled().await {
                    Ok(count) if count > 0 => {
                        tracing::debug!(count, "scheduled imports checked")
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, "scheduled imports could not be listed"),
                }
            }
        }
    });
}
