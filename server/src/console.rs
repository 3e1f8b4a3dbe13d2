//! The console's data source inside Berth: [`app::api::ConsoleData`] answered by the services
//! behind the HTTP APIs ([`ImageStreams`], [`AccessApi`], personal tokens), so that every
//! decision is the one the APIs make for the same caller. This module only converts their
//! answers into the console's views, and their errors into [`ConsoleError`] (in one place).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use app::api::{
    AccessView, BindingRow, BuildStep, ConsoleData, ConsoleError, ConsoleResult, DeliveryRow,
    HistoryItem, ImageDetail, ImportOutcome, ImportRequest, LayerRow, NamespaceList,
    NamespaceSummary, NewToken, Permissions, PlatformRow, PullSecretRow, ReferrerRow,
    RunConfigView, ServiceAccountRow, SessionInfo, StreamDetail, StreamPage, StreamSort,
    StreamSummary, TagRow, TokenRow, WebhookRow, WhoCanRow,
};
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use leptos::prelude::use_context;
use leptos::server_fn::error::SERVER_FN_ERROR_HEADER;

use crate::auth::api::{AccessApi, BindingSubject, RoleBinding, RoleRef};
use crate::auth::credentials::same_secret;
use crate::auth::http::Caller;
use crate::auth::routes::{
    access_api_version, create_personal_token, personal_tokens, revoke_personal_token,
};
use crate::auth::sign_in::{SESSION_CSRF, SESSION_USER};
use crate::auth::{Action, Identities, Subject, Target, Visible};
use crate::imagestream::ImageStreams;
use crate::imagestream::image::{ChildManifest, ImageMetadata, MAX_CONFIG_BYTES};
use crate::imagestream::model::{
    ImageLookupPolicy, ImageStream, ImageStreamImport, ImageStreamImportSpec, ImageStreamTag,
    NamedTagEventList, TagImportPolicy, TagReference, kinds,
};
use crate::imagestream::service::{repository, split_stream_image};
use crate::kube::MAX_PAGE;
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES, SECRETS};
use crate::kube::{Namespace, NamespaceSpec, NamespaceStatus, ObjectMeta, ObjectReference};
use crate::oci::Digest;
use crate::storage::auth::TokenRecord;
use crate::storage::{BlobStore, MetadataStore, StorageError, SummarySort, read_blob};

/// Index annotations (BuildKit's) marking a child as an attestation of another child.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION: &str = "attestation-manifest";

pub struct LocalConsoleData {
    pub image_streams: Arc<ImageStreams>,
    pub access: Arc<AccessApi>,
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub identities: Arc<Identities>,
    pub importer: Arc<crate::import::importer::Importer>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub secrets: Arc<crate::import::secrets::RegistrySecrets>,
}

/// The one mapping of the services' errors to what the console shows.
impl From<ApiError> for ConsoleError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::NotFound { .. } | ApiError::NoSuchResource(_) => {
                ConsoleError::NotFound(err.to_string())
            }
            ApiError::Forbidden { .. } | ApiError::Refused(_) => {
                ConsoleError::Forbidden(err.to_string())
            }
            ApiError::CsrfRejected(_) => ConsoleError::Csrf,
            ApiError::Unauthorized(_) => ConsoleError::SignInRequired,
            ApiError::Invalid { .. }
            | ApiError::BadRequest(_)
            | ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::NotNow { .. }
            | ApiError::MethodNotAllowed
            | ApiError::Gone { .. }
            | ApiError::ContinueExpired => ConsoleError::Invalid(err.to_string()),
            ApiError::TooManyRequests { .. } => ConsoleError::TooManyRequests(err.to_string()),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "a console request failed");
                ConsoleError::Unavailable("storage failed; the server log has the cause".into())
            }
        }
    }
}

impl From<StorageError> for ConsoleError {
    fn from(err: StorageError) -> Self {
        ApiError::internal(err).into()
    }
}

/// Gives the console's errors their HTTP status. Server functions answer every error with 500,
/// which would count (and log) a refusal as a failure of the server; the body, the error as
/// the pages decode it, is unchanged.
pub async fn error_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(error) = serde_json::from_slice::<ConsoleError>(&bytes) {
        parts.status = match error {
            ConsoleError::NotFound(_) | ConsoleError::NotHere(_) => StatusCode::NOT_FOUND,
            ConsoleError::Forbidden(_) | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Invalid(_) | ConsoleError::Request(_) => StatusCode::BAD_REQUEST,
            ConsoleError::SignInRequired => StatusCode::UNAUTHORIZED,
            ConsoleError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The request being served (a page render or a server function).
pub(crate) fn request() -> ConsoleResult<Parts> {
    use_context::<Parts>()
        .ok_or_else(|| ConsoleError::Request("the console was called outside of a request".into()))
}

/// Who the request comes from, authenticated as the APIs do (token, password or session).
async fn caller() -> ConsoleResult<Subject> {
    Ok(authenticated().await?.subject)
}

/// The caller with how they signed in (what a token may make depends on it).
async fn authenticated() -> ConsoleResult<Caller> {
    let mut parts = request()?;
    Ok(Caller::from_request_parts(&mut parts, &()).await?)
}

/// The browser session of the request, when it has one.
pub(crate) fn session() -> Option<tower_sessions::Session> {
    use_context::<Parts>()?
        .extensions
        .get::<tower_sessions::Session>()
        .cloned()
}

pub(crate) async fn session_value(
    session: &tower_sessions::Session,
    key: &str,
) -> ConsoleResult<Option<String>> {
    session.get::<String>(key).await.map_err(|err| {
        tracing::error!(%err, "reading the console session failed");
        ConsoleError::Unavailable(
            "the session could not be read; the server log has the cause".into(),
        )
    })
}

/// Who is signed in to the request's session, and the session's CSRF token.
pub(crate) async fn signed_in_user() -> ConsoleResult<(Option<String>, Option<String>)> {
    match session() {
        Some(session) => Ok((
            session_value(&session, SESSION_USER).await?,
            session_value(&session, SESSION_CSRF).await?,
        )),
        None => Ok((None, None)),
    }
}

/// Checks a change's CSRF token against the session's.
pub(crate) async fn check_session_csrf(
    session: &tower_sessions::Session,
    token: &str,
) -> ConsoleResult<()> {
    match session_value(session, SESSION_CSRF).await? {
        Some(expected) if same_secret(token, &expected) => Ok(()),
        _ => Err(ConsoleError::Csrf),
    }
}

pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn permissions(identities: &Identities, who: &Subject, target: Target<'_>) -> Permissions {
    let allows = |action| identities.authorizer.allows(who, action, target);
    Permissions {
        pull: allows(Action::Pull),
        push: allows(Action::Push),
        delete: allows(Action::Delete),
        manage_access: allows(Action::ManageAccess),
        // Pull secrets are the namespace admins' (`require_namespace_admin`).
        manage_secrets: allows(Action::ManageAccess),
    }
}

fn token_row(record: &TokenRecord) -> TokenRow {
    TokenRow {
        uid: record.uid.clone(),
        name: record.name.clone(),
        created: time(record.created_at),
        expires: record.expires_at.map(time),
        last_used: record.last_used_at.map(time),
        revoked: record.revoked_at.is_some(),
    }
}

/// JSON as people read it; `None` when the bytes are not JSON.
pub(crate) fn pretty_json(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
}

/// The child of an index that an attestation is attached to, when `child` is one.
fn attestation_for(child: &ChildManifest) -> Option<String> {
    (child.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION)).then(|| {
        child
            .annotations
            .get(REFERENCE_DIGEST)
            .cloned()
            .unwrap_or_default()
    })
}

/// `linux/arm64/v8`.
fn platform_name(
    os: Option<&str>,
    architecture: Option<&str>,
    variant: Option<&str>,
) -> Option<String> {
    let (os, architecture) = (
        os.filter(|o| !o.is_empty())?,
        architecture.filter(|a| !a.is_empty())?,
    );
    Some(match variant.filter(|v| !v.is_empty()) {
        Some(variant) => format!("{os}/{architecture}/{variant}"),
        None => format!("{os}/{architecture}"),
    })
}

/// What was read of some images at push time, with their children's (for an index's size).
#[derive(Default)]
pub(crate) struct Images(pub(crate) HashMap<String, ImageMetadata>);

impl Images {
    fn get(&self, digest: &str) -> Option<&ImageMetadata> {
        self.0.get(digest)
    }

    /// Bytes of an image and of its children, as the stream listing counts them.
    fn size(&self, digest: &str) -> Option<u64> {
        let image = self.get(digest)?;
        Some(
            image
                .manifests
                .iter()
                .filter_map(|child| self.get(&child.digest))
                .fold(image.size, |total, child| total.saturating_add(child.size)),
        )
    }

    /// The platforms an image runs on: its own, or its children's (attestations are not).
    fn platforms(&self, digest: &str) -> Vec<String> {
        let Some(image) = self.get(digest) else {
            return Vec::new();
        };
        if image.manifests.is_empty() {
            return platform_name(
                image.os.as_deref(),
                image.architecture.as_deref(),
                image.variant.as_deref(),
            )
            .into_iter()
            .collect();
        }
        image
            .manifests
            .iter()
            .filter(|child| attestation_for(child).is_none())
            .filter_map(|child| {
                platform_name(
                    child.os.as_deref(),
                    child.architecture.as_deref(),
                    child.variant.as_deref(),
                )
            })
            .collect()
    }
}

/// The images that a stream's status names, current first.
pub(crate) fn current_digests(stream: &ImageStream) -> Vec<Digest> {
    stream
        .status
        .tags
        .iter()
        .filter_map(|tag| tag.items.first())
        .filter_map(|item| item.image.parse().ok())
        .collect()
}

fn pull_repository(stream: &ImageStream) -> String {
    if stream.status.public_docker_image_repository.is_empty() {
        stream.status.docker_image_repository.clone()
    } else {
        stream.status.public_docker_image_repository.clone()
    }
}

/// A tag's history, newest first, with the time of each item (for merging).
fn history(status: &NamedTagEventList) -> Vec<(DateTime<Utc>, HistoryItem)> {
    status
        .items
        .iter()
        .map(|item| {
            (
                item.created,
                HistoryItem {
                    tag: status.tag.clone(),
                    image: item.image.clone(),
                    pull_spec: item.docker_image_reference.clone(),
                    created: time(item.created),
                    generation: item.generation,
                },
            )
        })
        .collect()
}

fn tag_row(stream: &ImageStream, name: &str, images: &Images) -> TagRow {
    let status = stream.status.tags.iter().find(|t| t.tag == name);
    let spec = stream.spec.tags.iter().find(|t| t.name == name);
    let current = status.and_then(|s| s.items.first());
    let digest = current
        .map(|item| item.image.clone())
        .filter(|image| !image.is_empty());
    TagRow {
        name: name.to_owned(),
        size: digest.as_deref().and_then(|d| images.size(d)),
        platforms: digest
            .as_deref()
            .map(|d| images.platforms(d))
            .unwrap_or_default(),
        digest,
        updated: current.map(|item| time(item.created)),
        from: spec.and_then(|s| s.from.as_ref()).map(|from| {
            if from.namespace.is_empty() {
                format!("{} {}", from.kind, from.name)
            } else {
                format!("{} {}/{}", from.kind, from.namespace, from.name)
            }
        }),
        warning: status.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.condition_type == "ImportSuccess" && c.status == "False")
                .map(|c| {
                    if c.message.is_empty() {
                        c.reason.clone()
                    } else {
                        c.message.clone()
                    }
                })
        }),
        history: status
            .map(|s| history(s).into_iter().map(|(_, item)| item).collect())
            .unwrap_or_default(),
    }
}

/// Where `oc tag` takes an image from: `other:tag`, `stream@sha256:…`, or a bare digest (an
/// image of this stream, as a rollback names it).
pub(crate) fn tag_source(stream: &str, from: &str) -> Result<ObjectReference, ApiError> {
    let from = from.trim();
    let (kind, name) = if from.contains('@') {
        ("ImageStreamImage", from.to_owned())
    } else if from.parse::<Digest>().is_ok() {
        ("ImageStreamImage", format!("{stream}@{from}"))
    } else if from.contains(':') {
        ("ImageStreamTag", from.to_owned())
    } else if !from.is_empty() {
        ("ImageStreamTag", format!("{stream}:{from}"))
    } else {
        return Err(ApiError::BadRequest(
            "say which image to tag: a tag of this stream, <stream>:<tag>, <stream>@<digest> or a digest".into(),
        ));
    };
    Ok(ObjectReference {
        kind: kind.into(),
        namespace: String::new(),
        name,
    })
}

/// A binding's subject as the console shows it: a service account of another namespace is
/// `namespace:name`.
fn binding_row(binding: RoleBinding, namespace: &str) -> BindingRow {
    let subject_name = match &binding.subject.namespace {
        Some(other) if binding.subject.kind == "ServiceAccount" && other != namespace => {
            format!("{other}:{}", binding.subject.name)
        }
        _ => binding.subject.name,
    };
    BindingRow {
        name: binding.metadata.name,
        role: binding.role_ref.name,
        subject_kind: binding.subject.kind,
        subject_name,
        stream: binding.image_stream,
    }
}

/// A stream's page: its tags (spec and status), each tag's history and the stream's.
pub(crate) fn stream_detail(
    namespace: &str,
    stream: &str,
    object: &ImageStream,
    images: &Images,
    permissions: Permissions,
) -> StreamDetail {
    let names: BTreeSet<&str> = object
        .spec
        .tags
        .iter()
        .map(|t| t.name.as_str())
        .chain(object.status.tags.iter().map(|t| t.tag.as_str()))
        .collect();
    let tags = names
        .into_iter()
        .map(|name| tag_row(object, name, images))
        .collect();
    let mut merged: Vec<(DateTime<Utc>, HistoryItem)> =
        object.status.tags.iter().flat_map(history).collect();
    merged.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
    StreamDetail {
        namespace: namespace.to_owned(),
        name: stream.to_owned(),
        pull_repository: pull_repository(object),
        tags,
        history: merged.into_iter().map(|(_, item)| item).collect(),
        permissions,
    }
}

/// What an image's page is made of, however it was read.
pub(crate) struct ImageParts<'a> {
    pub namespace: &'a str,
    pub stream: &'a str,
    pub digest: &'a str,
    pub media_type: String,
    pub image: &'a ImageMetadata,
    /// The image and its children, for sizes.
    pub images: &'a Images,
    /// The stream, for the tags that name the image and its pull address.
    pub object: &'a ImageStream,
    pub referrers: Vec<ReferrerRow>,
    pub raw_manifest: String,
    pub raw_config: Option<String>,
}

/// An image's page: summary, platforms, layers, run configuration, build history.
pub(crate) fn image_detail(parts: ImageParts<'_>) -> ImageDetail {
    let ImageParts {
        namespace,
        stream,
        digest,
        media_type,
        image,
        images,
        object,
        referrers,
        raw_manifest,
        raw_config,
    } = parts;
    let tags = object
        .status
        .tags
        .iter()
        .filter(|t| t.items.first().is_some_and(|i| i.image == digest))
        .map(|t| t.tag.clone())
        .collect();
    let platforms = image
        .manifests
        .iter()
        .map(|child| PlatformRow {
            digest: child.digest.clone(),
            os: child.os.clone().unwrap_or_default(),
            architecture: child.architecture.clone().unwrap_or_default(),
            variant: child.variant.clone().filter(|v| !v.is_empty()),
            size: images.size(&child.digest).unwrap_or(child.size),
            attestation_for: attestation_for(child),
        })
        .collect();
    let config = image.run.as_ref().map(|run| RunConfigView {
        env: run.env.clone().unwrap_or_default(),
        entrypoint: run.entrypoint.clone().unwrap_or_default(),
        cmd: run.cmd.clone().unwrap_or_default(),
        ports: run
            .exposed_ports
            .iter()
            .flat_map(|ports| ports.keys().cloned())
            .collect(),
        volumes: run
            .volumes
            .iter()
            .flat_map(|volumes| volumes.keys().cloned())
            .collect(),
        labels: run
            .labels
            .iter()
            .flat_map(|labels| labels.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect(),
        user: run.user.clone().filter(|u| !u.is_empty()),
        working_dir: run.working_dir.clone().filter(|w| !w.is_empty()),
    });
    ImageDetail {
        namespace: namespace.to_owned(),
        stream: stream.to_owned(),
        size: images.size(digest).unwrap_or(image.size),
        digest: digest.to_owned(),
        media_type,
        created: image.created.clone(),
        author: image.author.clone(),
        os: image.os.clone(),
        architecture: image.architecture.clone(),
        variant: image.variant.clone(),
        platforms,
        layers: image
            .layers
            .iter()
            .map(|l| LayerRow {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
            .collect(),
        config,
        annotations: image
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        history: image
            .history
            .iter()
            .map(|h| BuildStep {
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
            })
            .collect(),
        referrers,
        tags,
        pull_repository: pull_repository(object),
        raw_manifest,
        raw_config,
    }
}

/// As `oc tag` does without --alias: a tag made from another tag takes that tag's current
/// image (`current`), and stays there when the source moves on.
pub(crate) fn pin_to_image(
    stream: &str,
    source: ObjectReference,
    current: Option<crate::imagestream::model::Image>,
) -> ConsoleResult<ObjectReference> {
    let (source_stream, _) = source.name.split_once(':').unwrap_or((stream, ""));
    let image = current
        .map(|image| image.metadata.name)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ConsoleError::Invalid(format!("{} has no image yet", source.name)))?;
    Ok(ObjectReference {
        kind: "ImageStreamImage".into(),
        namespace: String::new(),
        name: format!("{source_stream}@{image}"),
    })
}

/// `oc tag`'s body: the tag takes its image from `source`.
pub(crate) fn tag_body(source: ObjectReference) -> ImageStreamTag {
    ImageStreamTag {
        kind: kinds::image_stream_tag(),
        api_version: kinds::image_api(),
        metadata: ObjectMeta::default(),
        tag: Some(TagReference {
            from: Some(source),
            ..TagReference::default()
        }),
        generation: 0,
        lookup_policy: ImageLookupPolicy::default(),
        conditions: Vec::new(),
        image: None,
    }
}

pub(crate) fn namespace_body(name: &str) -> Namespace {
    Namespace {
        kind: crate::kube::kinds::namespace(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: name.trim().to_owned(),
            ..ObjectMeta::default()
        },
        spec: NamespaceSpec::default(),
        status: NamespaceStatus::default(),
    }
}

/// A pull secret's row: its name, registries and age, never its data.
pub(crate) fn pull_secret_row(secret: &crate::kube::Secret) -> PullSecretRow {
    PullSecretRow {
        name: secret.metadata.name.clone(),
        registries: crate::import::secrets::secret_registries(secret),
        created: secret
            .metadata
            .creation_timestamp
            .map(time)
            .unwrap_or_default(),
    }
}

/// The `ImageStreamImport` the import dialog asks for.
pub(crate) fn import_body(request: &ImportRequest) -> ImageStreamImport {
    let tag = request.tag.trim();
    let spec = ImageStreamImportSpec::new(
        &request.from,
        (!tag.is_empty()).then_some(tag),
        request.all_tags,
        TagImportPolicy {
            insecure: request.insecure,
            scheduled: request.scheduled,
            import_mode: String::new(),
        },
        request.local,
        true,
    );
    ImageStreamImport::new(request.stream.trim(), spec)
}

/// An import's answer as one outcome per tag; a repository that could not be read at all is
/// the error.
pub(crate) fn import_outcomes(answer: ImageStreamImport) -> ConsoleResult<Vec<ImportOutcome>> {
    if let Some(repository) = &answer.status.repository
        && repository.status.status != "Success"
    {
        return Err(ConsoleError::Invalid(repository.status.message.clone()));
    }
    let images = answer.status.images.into_iter().chain(
        answer
            .status
            .repository
            .into_iter()
            .flat_map(|repository| repository.images),
    );
    Ok(images
        .map(|image| {
            let failed = image.status.status != "Success";
            ImportOutcome {
                tag: image.tag,
                digest: image.image.map(|i| i.metadata.name),
                error: failed
                    .then(|| format!("{} ({})", image.status.message, image.status.reason)),
            }
        })
        .collect())
}

impl LocalConsoleData {
    async fn images(&self, digests: &[Digest]) -> ConsoleResult<Images> {
        let store = &self.image_streams.store;
        let mut images: HashMap<String, ImageMetadata> = store
            .get_images(digests)
            .await?
            .iter()
            .map(|record| (record.digest.to_string(), ImageMetadata::of(record)))
            .collect();
        let children: Vec<Digest> = images
            .values()
            .flat_map(|image| image.manifests.iter())
            .filter(|child| !images.contains_key(&child.digest))
            .filter_map(|child| child.digest.parse().ok())
            .collect();
        if !children.is_empty() {
            for record in store.get_images(&children).await? {
                images.insert(record.digest.to_string(), ImageMetadata::of(&record));
            }
        }
        Ok(Images(images))
    }

    /// The config of an image as stored, pretty-printed, when it is a JSON document of a
    /// readable size in the repository.
    async fn raw_config(
        &self,
        repository: &crate::oci::RepositoryName,
        image: &ImageMetadata,
    ) -> ConsoleResult<Option<String>> {
        let Some(digest) = image
            .config
            .as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        match self.metadata.blob_size(repository, &digest).await? {
            Some(size) if size <= MAX_CONFIG_BYTES => {
                let bytes = read_blob(self.blobs.as_ref(), &digest, size).await?;
                Ok(pretty_json(&bytes))
            }
            _ => Ok(None),
        }
    }
}

/// A webhook delivery as the delivery log shows it.
fn delivery_row(delivery: crate::webhooks::WebhookDelivery) -> DeliveryRow {
    DeliveryRow {
        id: delivery.id,
        event: delivery.event,
        state: delivery.state.to_owned(),
        created: delivery.creation_timestamp.to_rfc3339(),
        attempts: delivery
            .attempts
            .iter()
            .map(|attempt| match (&attempt.status_code, &attempt.error) {
                (Some(code), _) => format!("{}: HTTP {code}", attempt.number),
                (None, Some(error)) => format!("{}: {error}", attempt.number),
                (None, None) => attempt.number.to_string(),
            })
            .collect(),
        redelivery_of: delivery.redelivery_of,
    }
}

#[async_trait]
impl ConsoleData for LocalConsoleData {
    async fn session(&self) -> ConsoleResult<SessionInfo> {
        let registry_host = self
            .image_streams
            .public_host
            .clone()
            .unwrap_or_else(|| self.image_streams.registry_host.clone());
        let (user, csrf_token) = signed_in_user().await?;
        Ok(SessionInfo {
            user,
            csrf_token,
            registry_host,
            upstream: None,
        })
    }

    async fn check_csrf(&self, token: &str) -> ConsoleResult<()> {
        let Some(session) = session() else {
            return Err(ConsoleError::SignInRequired);
        };
        if session_value(&session, SESSION_USER).await?.is_none() {
            return Err(ConsoleError::SignInRequired);
        }
        check_session_csrf(&session, token).await
    }

    async fn namespaces(&self) -> ConsoleResult<NamespaceList> {
        let who = caller().await?;
        let authorizer = &self.identities.authorizer;
        let visible = authorizer.visible_namespaces(&who);
        let namespaces = self
            .image_streams
            .store
            .namespace_usage()
            .await?
            .into_iter()
            .filter(|usage| visible.contains(&usage.name))
            .map(|usage| NamespaceSummary {
                can_delete: authorizer.allows(&who, Action::Delete, Target::namespace(&usage.name)),
                name: usage.name,
                streams: Some(usage.streams),
                size: Some(usage.size),
                created: time(usage.created_at),
            })
            .collect();
        Ok(NamespaceList {
            namespaces,
            can_create: authorizer.may_create_namespace(&who),
        })
    }

    async fn create_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .create_namespace(&who, namespace_body(name))
            .await?;
        Ok(())
    }

    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams.delete_namespace(&who, name).await?;
        Ok(())
    }

    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage> {
        let who = caller().await?;
        // As the API lists streams: refused when none could be seen, then not found.
        let visible = self.image_streams.visible_streams(&who, namespace)?;
        self.image_streams.require_namespace(namespace).await?;
        let only: Option<Vec<String>> = match visible {
            Visible::All => None,
            Visible::Only(names) => Some(names.into_iter().collect()),
        };
        let sort = match sort {
            StreamSort::Name => SummarySort::Name,
            StreamSort::Updated => SummarySort::Updated,
            StreamSort::Size => SummarySort::Size,
        };
        let (page, total) = self
            .image_streams
            .store
            .stream_summaries(
                namespace,
                filter.trim(),
                only.as_deref(),
                sort,
                offset,
                limit.clamp(1, MAX_PAGE),
            )
            .await?;
        Ok(StreamPage {
            namespace: namespace.to_owned(),
            streams: page
                .into_iter()
                .map(|s| StreamSummary {
                    name: s.name,
                    tags: s.tags,
                    size: Some(s.size),
                    updated: s.updated.map(time),
                    latest_tag: s.latest_tag,
                })
                .collect(),
            total,
            offset,
            permissions: permissions(&self.identities, &who, Target::namespace(namespace)),
        })
    }

    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail> {
        let who = caller().await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let images = self.images(&current_digests(&object)).await?;
        Ok(stream_detail(
            namespace,
            stream,
            &object,
            &images,
            permissions(&self.identities, &who, Target::stream(namespace, stream)),
        ))
    }

    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        let mut source = tag_source(stream, from)?;
        if source.kind == "ImageStreamTag" {
            let current = self
                .image_streams
                .get_tag(&who, namespace, &source.name)
                .await?;
            source = pin_to_image(stream, source, current.image)?;
        }
        // As the API's PUT: the tag is created, or moved when it exists.
        self.image_streams
            .put_tag(
                &who,
                namespace,
                &format!("{stream}:{}", tag.trim()),
                tag_body(source),
                false,
            )
            .await?;
        Ok(())
    }

    async fn import(&self, request: ImportRequest) -> ConsoleResult<Vec<ImportOutcome>> {
        let who = caller().await?;
        let answer = self
            .importer
            .import(&who, request.namespace.trim(), import_body(&request))
            .await?;
        import_outcomes(answer)
    }

    async fn webhooks(&self, namespace: &str) -> ConsoleResult<Vec<WebhookRow>> {
        let who = caller().await?;
        let mut rows = Vec::new();
        for webhook in self.webhooks.list(&who, namespace).await?.items {
            let name = webhook.metadata.name;
            let deliveries = self
                .webhooks
                .deliveries(&who, namespace, &name, 20)
                .await?
                .items
                .into_iter()
                .map(delivery_row)
                .collect();
            rows.push(WebhookRow {
                name,
                url: webhook.spec.url,
                events: webhook.spec.events,
                format: webhook.spec.format,
                deliveries,
            });
        }
        Ok(rows)
    }

    async fn create_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<Option<String>> {
        let who = caller().await?;
        let webhook = crate::webhooks::Webhook {
            metadata: ObjectMeta {
                name: name.trim().to_owned(),
                ..ObjectMeta::default()
            },
            spec: crate::webhooks::WebhookSpec {
                url: url.trim().to_owned(),
                events: events
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                format: format.to_owned(),
                secret: None,
            },
            ..crate::webhooks::Webhook::default()
        };
        let created = self.webhooks.create(&who, namespace, webhook).await?;
        Ok(created.spec.secret)
    }

    async fn delete_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.webhooks.delete(&who, namespace, name).await?;
        Ok(())
    }

    async fn redeliver_webhook(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ConsoleResult<DeliveryRow> {
        let who = caller().await?;
        let made = self.webhooks.redeliver(&who, namespace, name, id).await?;
        Ok(delivery_row(made))
    }

    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>> {
        let who = caller().await?;
        Ok(self
            .secrets
            .list(&who, namespace)
            .await?
            .items
            .iter()
            .map(pull_secret_row)
            .collect())
    }

    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow> {
        let who = caller().await?;
        // Refused before the form is read, as the API refuses before it reads a body.
        self.image_streams
            .require_namespace_admin(&who, namespace, SECRETS, name.trim())
            .await?;
        let secret = crate::import::secrets::pull_secret(name, registry, username, password)?;
        let stored = self.secrets.create(&who, namespace, secret).await?;
        Ok(pull_secret_row(&stored))
    }

    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.secrets.delete(&who, namespace, name).await?;
        Ok(())
    }

    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_tag(&who, namespace, &format!("{stream}:{tag}"))
            .await?;
        Ok(())
    }

    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_stream(&who, namespace, stream)
            .await?;
        Ok(())
    }

    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail> {
        let who = caller().await?;
        let name = format!("{stream}@{digest}");
        // The API's decision (and not found), then what the page shows of the image.
        self.image_streams
            .get_stream_image(&who, namespace, &name)
            .await?;
        let (_, digest) = split_stream_image(&name)?;
        let repository = repository(namespace, stream)?;
        let record = self
            .image_streams
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, &name))?;
        let image = ImageMetadata::of(&record);
        let images = self.images(std::slice::from_ref(&digest)).await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let digest_text = digest.to_string();
        let referrers = self
            .metadata
            .referrers(&repository, &digest)
            .await?
            .into_iter()
            .map(|r| ReferrerRow {
                digest: r.digest.to_string(),
                artifact_type: r.artifact_type.unwrap_or(r.media_type),
                size: r.size,
            })
            .collect();
        let raw_manifest = self
            .metadata
            .manifest_by_digest(&repository, &digest)
            .await?
            .map(|m| {
                pretty_json(&m.content)
                    .unwrap_or_else(|| String::from_utf8_lossy(&m.content).into_owned())
            })
            .unwrap_or_default();
        let raw_config = self.raw_config(&repository, &image).await?;
        Ok(image_detail(ImageParts {
            namespace,
            stream,
            digest: &digest_text,
            media_type: record.media_type,
            image: &image,
            images: &images,
            object: &object,
            referrers,
            raw_manifest,
            raw_config,
        }))
    }

    async fn access(&self, namespace: &str, stream: Option<&str>) -> ConsoleResult<AccessView> {
        let who = caller().await?;
        let bindings = self
            .access
            .list_bindings(&who, Some(namespace), stream)
            .await?
            .into_iter()
            .map(|b| binding_row(b, namespace))
            .collect();
        let target = Target {
            namespace: Some(namespace),
            stream,
        };
        let who_can = |subjects: Vec<(String, String, crate::auth::Role)>| {
            subjects
                .into_iter()
                .map(|(kind, name, role)| WhoCanRow {
                    // As the bindings name subjects: `User:alice`, `ServiceAccount:ci:robot`.
                    subject: format!("{kind}:{name}"),
                    role: role.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
        };
        let who_can_pull = who_can(self.access.who_can(&who, Action::Pull, target).await?);
        let who_can_push = who_can(self.access.who_can(&who, Action::Push, target).await?);
        // Service accounts belong to the namespace: its page shows them, a stream's does not.
        let mut service_accounts = Vec::new();
        if stream.is_none() {
            for account in self.access.service_accounts(&who, namespace).await? {
                let tokens = self
                    .access
                    .service_account_tokens(&who, namespace, &account.name)
                    .await?;
                service_accounts.push(ServiceAccountRow {
                    name: account.name,
                    tokens: tokens.iter().map(token_row).collect(),
                });
            }
        }
        Ok(AccessView {
            namespace: namespace.to_owned(),
            stream: stream.map(str::to_owned),
            bindings,
            who_can_pull,
            who_can_push,
            service_accounts,
        })
    }

    async fn add_binding(
        &self,
        namespace: &str,
        stream: Option<&str>,
        role: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        let subject_kind = subject_kind.trim();
        let subject_name = subject_name.trim();
        // A service account is of this namespace unless named `namespace:name` (or
        // `system:serviceaccount:namespace:name`).
        let subject = if subject_kind == "ServiceAccount" {
            let name = subject_name
                .strip_prefix("system:serviceaccount:")
                .unwrap_or(subject_name);
            let (account_namespace, name) = name.split_once(':').unwrap_or((namespace, name));
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: name.to_owned(),
                namespace: Some(account_namespace.to_owned()),
            }
        } else {
            BindingSubject {
                kind: subject_kind.to_owned(),
                name: subject_name.to_owned(),
                namespace: None,
            }
        };
        let body = RoleBinding {
            kind: "RoleBinding".into(),
            api_version: access_api_version(),
            // No name: the API names it after its role and subject.
            metadata: ObjectMeta::default(),
            role_ref: RoleRef {
                name: role.trim().to_owned(),
            },
            subject,
            image_stream: stream
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        self.access
            .create_binding(&who, Some(namespace), body)
            .await?;
        Ok(())
    }

    async fn remove_binding(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .delete_binding(&who, Some(namespace), name)
            .await?;
        Ok(())
    }

    async fn create_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .create_service_account(&who, namespace, name.trim())
            .await?;
        Ok(())
    }

    async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) = self
            .access
            .create_service_account_token(&who, namespace, account, "", None)
            .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        uid: &str,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        self.access
            .revoke_service_account_token(&who, namespace, account, uid)
            .await?;
        Ok(())
    }

    async fn tokens(&self) -> ConsoleResult<Vec<TokenRow>> {
        let who = caller().await?;
        Ok(personal_tokens(&self.identities, &who)
            .await?
            .iter()
            .map(token_row)
            .collect())
    }

    async fn create_token(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> ConsoleResult<NewToken> {
        let who = authenticated().await?;
        let (record, secret) =
            create_personal_token(&self.identities, &who, name, expires_in_days.map(u64::from))
                .await?;
        Ok(NewToken {
            token: token_row(&record),
            secret,
        })
    }

    async fn revoke_token(&self, uid: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        revoke_personal_token(&self.identities, &who, uid).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn child(digest: &str, platform: (&str, &str), annotations: &[(&str, &str)]) -> ChildManifest {
        ChildManifest {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 500,
            os: Some(platform.0.into()),
            architecture: Some(platform.1.into()),
            variant: None,
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn an_index_runs_on_its_children_but_not_its_attestations() {
        let amd = child("sha256:a", ("linux", "amd64"), &[]);
        let attestation = child(
            "sha256:b",
            ("unknown", "unknown"),
            &[
                (REFERENCE_TYPE, ATTESTATION),
                (REFERENCE_DIGEST, "sha256:a"),
            ],
        );
        assert_eq!(attestation_for(&amd), None);
        assert_eq!(attestation_for(&attestation).as_deref(), Some("sha256:a"));
        let index = ImageMetadata {
            size: 1000,
            manifests: vec![amd, attestation],
            ..ImageMetadata::default()
        };
        let leaf = ImageMetadata {
            size: 4000,
            os: Some("linux".into()),
            architecture: Some("arm64".into()),
            variant: Some("v8".into()),
            ..ImageMetadata::default()
        };
        let images = Images(HashMap::from([
            ("sha256:index".to_owned(), index),
            (
                "sha256:a".to_owned(),
                ImageMetadata {
                    size: 300,
                    ..ImageMetadata::default()
                },
            ),
            ("sha256:leaf".to_owned(), leaf),
        ]));
        assert_eq!(images.platforms("sha256:index"), ["linux/amd64"]);
        assert_eq!(images.platforms("sha256:leaf"), ["linux/arm64/v8"]);
        assert!(images.platforms("sha256:absent").is_empty());
        // An index's bytes count the children that are known.
        assert_eq!(images.size("sha256:index"), Some(1300));
        assert_eq!(images.size("sha256:absent"), None);
    }

    #[test]
    fn oc_tag_sources() {
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let source = |from: &str| tag_source("app", from).map(|r| (r.kind, r.name));
        assert_eq!(
            source("other:v1").unwrap(),
            ("ImageStreamTag".into(), "other:v1".into())
        );
        assert_eq!(
            source(&format!("other@{digest}")).unwrap(),
            ("ImageStreamImage".into(), format!("other@{digest}"))
        );
        assert_eq!(
            source(digest).unwrap(),
            ("ImageStreamImage".into(), format!("app@{digest}"))
        );
        // A bare name is a tag of this stream, as `oc tag latest stable` reads it.
        assert_eq!(
            source("latest").unwrap(),
            ("ImageStreamTag".into(), "app:latest".into())
        );
        assert!(source("  ").is_err());
    }

    #[test]
    fn errors_map_once() {
        use crate::kube::{IMAGE_STREAMS, Resource};
        assert!(matches!(
            ConsoleError::from(ApiError::not_found(IMAGE_STREAMS, "app")),
            ConsoleError::NotFound(message) if message.contains("app")
        ));
        assert!(matches!(
            ConsoleError::from(ApiError::Forbidden {
                resource: IMAGE_STREAMS,
                name: "app".into(),
                who: "User \"bob\"".into(),
                verb: "get",
                namespace: Some("ns".into()),
            }),
            ConsoleError::Forbidden(_)
        ));
        assert_eq!(
            ConsoleError::from(ApiError::Unauthorized("no".into())),
            ConsoleError::SignInRequired
        );
        assert!(matches!(
            ConsoleError::from(ApiError::AlreadyExists {
                resource: Resource {
                    plural: "namespaces",
                    group: ""
                },
                name: "ns".into()
            }),
            ConsoleError::Invalid(_)
        ));
        // A Conflict with its cause (a pending delivery sent again) says the cause.
        assert!(matches!(
            ConsoleError::from(ApiError::NotNow {
                resource: crate::kube::WEBHOOK_DELIVERIES,
                name: "7".into(),
                why: "the delivery is still pending".into(),
            }),
            ConsoleError::Invalid(message)
                if message == "Operation cannot be fulfilled on webhookdeliveries.berth.io \"7\": the delivery is still pending"
        ));
        let hidden = ConsoleError::from(StorageError::Corrupt("secret detail".into()));
        assert!(
            matches!(&hidden, ConsoleError::Unavailable(message) if !message.contains("secret")),
            "{hidden:?}"
        );
    }
}
