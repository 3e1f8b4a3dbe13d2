//! The rules of the image stream API: names, pagination, how a spec tag's `from` resolves to an
//! image, what a change does to generations, and how stored records render as OpenShift's
//! objects. Handlers call this; this calls the [`ImageStreamStore`].

use std::sync::Arc;

use super::image::ImageMetadata;
use super::model::*;
use crate::auth::{Action, Identities, Subject, Target, Visible};
use crate::kube::{
    ApiError, ApiResult, FieldError, IMAGE_STREAM_IMAGES, IMAGE_STREAM_IMPORTS,
    IMAGE_STREAM_MAPPINGS, IMAGE_STREAM_TAGS, IMAGE_STREAMS, IMAGES, NAMESPACES, Resource,
};
use crate::oci::Digest;
use crate::oci::ManifestKind;
use crate::oci::{RepositoryName, Tag, is_valid_namespace};
use crate::storage::{
    ImageRecord, ImageStreamStore, NamespaceRecord, Presence, SpecTagWrite, StatusTagRecord,
    StreamChange, StreamChangeError, StreamRecord, TagItem, TagTarget,
};

use crate::kube::{
    CORE_API_VERSION, List, ListMeta, Namespace, NamespaceSpec, NamespaceStatus, ObjectMeta, Status,
};
use crate::kube::{ContinueTokens, fill};
pub use crate::kube::{DEFAULT_PAGE, MAX_PAGE, Page};

const IMPORT_MODE_LEGACY: &str = "Legacy";
pub const IMPORT_MODE_PRESERVE: &str = "PreserveOriginal";
const REFERENCE_POLICY_SOURCE: &str = "Source";

/// The platform an index resolves to where one image must be chosen (`importMode: Legacy`).
const DEFAULT_OS: &str = "linux";
const DEFAULT_ARCHITECTURE: &str = "amd64";

pub struct ImageStreamApi {
    pub store: Arc<dyn ImageStreamStore>,
    /// Identity and access: the decision function, and what a namespace creator is granted.
    pub identities: Arc<Identities>,
    /// The registry's address in pull specs (`status.dockerImageRepository`).
    pub registry_host: String,
    /// The address outside the cluster, when different (`publicDockerImageRepository`).
    pub public_host: Option<String>,
    /// Seals and opens lists' `continue` tokens.
    pub continue_tokens: ContinueTokens,
    /// Open watches and event streams, and how long each runs.
    pub watches: std::sync::Arc<crate::limits::WatchLimits>,
}

fn stream_name_error(name: &str) -> FieldError {
    FieldError::new(
        "metadata.name",
        format!(
            "{name:?} is not a valid image stream name: lowercase letters, digits and the separators ., _, __, - and /"
        ),
    )
}

/// The repository of stream `name` in `namespace`, or the error for a bad name.
pub fn repository(namespace: &str, name: &str) -> ApiResult<RepositoryName> {
    if !is_valid_namespace(namespace) {
        return Err(ApiError::BadRequest(format!(
            "namespace {namespace:?} is invalid: a namespace is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit"
        )));
    }
    RepositoryName::of_stream(namespace, name)
        .map_err(|_| ApiError::BadRequest(stream_name_error(name).message))
}

/// Splits `stream:tag`.
pub fn split_stream_tag(name: &str) -> ApiResult<(String, Tag)> {
    let bad = || {
        ApiError::BadRequest(format!(
            "{name:?} is not an image stream tag name: use <stream>:<tag>"
        ))
    };
    let (stream, tag) = name.rsplit_once(':').ok_or_else(bad)?;
    if stream.is_empty() {
        return Err(bad());
    }
    let tag = tag
        .parse::<Tag>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok((stream.to_owned(), tag))
}

/// Splits `stream@digest`.
pub fn split_stream_image(name: &str) -> ApiResult<(String, Digest)> {
    let (stream, digest) = name.split_once('@').ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name:?} is not an image stream image name: use <stream>@<digest>"
        ))
    })?;
    let digest = digest
        .parse::<Digest>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok((stream.to_owned(), digest))
}

fn parse_digest(text: &str) -> ApiResult<Digest> {
    text.parse()
        .map_err(|err: crate::oci::DigestError| ApiError::BadRequest(err.to_string()))
}

/// A deterministic UID for a content-addressed image.
fn image_uid(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn resource_version(text: &str, resource: Resource, name: &str) -> ApiResult<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ApiError::invalid(
            resource,
            name,
            FieldError::new(
                "metadata.resourceVersion",
                format!("{text:?} is not a resourceVersion"),
            ),
        )
    })
}

fn change_error(err: StreamChangeError, resource: Resource, name: &str) -> ApiError {
    match err {
        StreamChangeError::NotFound => ApiError::not_found(IMAGE_STREAMS, name),
        StreamChangeError::AlreadyExists => ApiError::AlreadyExists {
            resource,
            name: name.into(),
        },
        StreamChangeError::Conflict { .. } => ApiError::Conflict {
            resource,
            name: name.into(),
        },
        StreamChangeError::SourceMissing { repository, digest } => ApiError::invalid(
            resource,
            name,
            FieldError::new("tag.from", format!("image {digest} is not in {repository}")),
        ),
    }
}

/// A spec tag as stored: validated, defaults filled, generation left to the store.
fn normalize(
    mut tag: TagReference,
    name: &str,
    resource: Resource,
    object: &str,
) -> ApiResult<TagReference> {
    let invalid = |field: &str, message: String| {
        ApiError::invalid(resource, object, FieldError::new(field, message))
    };
    tag.name = name.to_owned();
    tag.generation = None;
    if let Some(from) = &tag.from
        && !matches!(
            from.kind.as_str(),
            "DockerImage" | "ImageStreamTag" | "ImageStreamImage"
        )
    {
        return Err(invalid(
            "tag.from.kind",
            format!(
                "{:?} is not one of DockerImage, ImageStreamTag, ImageStreamImage",
                from.kind
            ),
        ));
    }
    if let Some(from) = &tag.from
        && from.name.is_empty()
    {
        return Err(invalid("tag.from.name", "required".into()));
    }
    match tag.import_policy.import_mode.as_str() {
        "" => tag.import_policy.import_mode = IMPORT_MODE_LEGACY.into(),
        IMPORT_MODE_LEGACY | IMPORT_MODE_PRESERVE => {}
        other => {
            return Err(invalid(
                "tag.importPolicy.importMode",
                format!("{other:?} is not one of Legacy, PreserveOriginal"),
            ));
        }
    }
    match tag.reference_policy.policy_type.as_str() {
        "" => tag.reference_policy.policy_type = REFERENCE_POLICY_SOURCE.into(),
        "Source" | "Local" => {}
        other => {
            return Err(invalid(
                "tag.referencePolicy.type",
                format!("{other:?} is not one of Source, Local"),
            ));
        }
    }
    Ok(tag)
}

fn stored_reference(tag: &TagReference) -> ApiResult<String> {
    serde_json::to_string(tag).map_err(|err| ApiError::BadRequest(err.to_string()))
}

impl ImageStreamApi {
    // ---- access -------------------------------------------------------------------------------

    /// The streams of a namespace `who` may see; refused when none could ever be.
    pub fn visible_streams(&self, who: &Subject, namespace: &str) -> ApiResult<Visible> {
        let visible = self.identities.authorizer.visible_streams(who, namespace);
        if visible == Visible::Only(Default::default()) {
            self.identities.authorizer.require(
                who,
                Action::Pull,
                Target::namespace(namespace),
                IMAGE_STREAMS,
                "",
            )?;
        }
        Ok(visible)
    }

    // ---- rendering ----------------------------------------------------------------------------

    fn repository_host(&self, host: &str, namespace: &str, name: &str) -> String {
        format!("{host}/{namespace}/{name}")
    }

    /// The pull spec of a status item.
    fn pull_spec(&self, namespace: &str, stream: &str, item: &TagItem) -> String {
        match (&item.external_reference, &item.digest) {
            (Some(reference), _) => reference.clone(),
            (None, Some(digest)) => format!(
                "{}@{digest}",
                self.repository_host(&self.registry_host, namespace, stream)
            ),
            (None, None) => String::new(),
        }
    }

    fn item_image(item: &TagItem) -> String {
        match (&item.digest, &item.external_reference) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(reference)) => reference
                .rsplit_once('@')
                .map(|(_, digest)| digest.to_owned())
                .unwrap_or_default(),
            (None, None) => String::new(),
        }
    }

    fn conditions(tag: &StatusTagRecord) -> Vec<TagEventCondition> {
        tag.conditions
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }

    fn spec_tag(record: &crate::storage::SpecTagRecord) -> TagReference {
        let mut tag: TagReference = serde_json::from_str(&record.reference).unwrap_or_default();
        tag.name = record.name.clone();
        tag.generation = Some(record.generation);
        tag
    }

    pub fn stream_object(&self, record: &StreamRecord) -> ImageStream {
        ImageStream {
            kind: kinds::image_stream(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: record.name.clone(),
                namespace: Some(record.namespace.clone()),
                uid: record.uid.clone(),
                resource_version: record.resource_version.to_string(),
                generation: record.generation,
                creation_timestamp: Some(record.created_at),
                labels: record.labels.clone(),
                annotations: record.annotations.clone(),
            },
            spec: ImageStreamSpec {
                lookup_policy: ImageLookupPolicy {
                    local: record.lookup_local,
                },
                docker_image_repository: String::new(),
                tags: record.spec_tags.iter().map(Self::spec_tag).collect(),
            },
            status: ImageStreamStatus {
                docker_image_repository: self.repository_host(
                    &self.registry_host,
                    &record.namespace,
                    &record.name,
                ),
                public_docker_image_repository: self
                    .public_host
                    .as_deref()
                    .map(|host| self.repository_host(host, &record.namespace, &record.name))
                    .unwrap_or_default(),
                tags: record
                    .status_tags
                    .iter()
                    .map(|tag| NamedTagEventList {
                        tag: tag.name.clone(),
                        items: tag
                            .items
                            .iter()
                            .map(|item| TagEvent {
                                created: item.created,
                                docker_image_reference: self.pull_spec(
                                    &record.namespace,
                                    &record.name,
                                    item,
                                ),
                                image: Self::item_image(item),
                                generation: item.generation,
                            })
                            .collect(),
                        conditions: Self::conditions(tag),
                    })
                    .collect(),
            },
        }
    }

    pub fn image_object(&self, record: &ImageRecord, reference: String) -> Image {
        let metadata = ImageMetadata::of(record);
        let mut annotations = metadata.annotations.clone();
        if !metadata.layers.is_empty() {
            annotations.insert(LAYERS_ORDER_ANNOTATION.into(), "ascending".into());
        }
        let run = metadata.run.clone().unwrap_or_default();
        let docker = DockerImage {
            kind: "DockerImage".into(),
            api_version: "image.openshift.io/1.0".into(),
            id: metadata
                .config
                .clone()
                .unwrap_or_else(|| record.digest.to_string()),
            created: metadata.created.clone().unwrap_or_default(),
            container_config: serde_json::json!({}),
            author: metadata.author.clone().unwrap_or_default(),
            config: metadata.run.as_ref().map(|_| DockerConfig {
                user: run.user.unwrap_or_default(),
                exposed_ports: run.exposed_ports.unwrap_or_default(),
                env: run.env.unwrap_or_default(),
                cmd: run.cmd.unwrap_or_default(),
                volumes: run.volumes.unwrap_or_default(),
                working_dir: run.working_dir.unwrap_or_default(),
                entrypoint: run.entrypoint.unwrap_or_default(),
                labels: run.labels.unwrap_or_default(),
                stop_signal: run.stop_signal.unwrap_or_default(),
            }),
            architecture: metadata.architecture.clone().unwrap_or_default(),
            os: metadata.os.clone().unwrap_or_default(),
            variant: metadata.variant.clone().unwrap_or_default(),
            size: metadata.size,
            history: metadata
                .history
                .iter()
                .map(|h| DockerHistory {
                    created: h.created.clone().unwrap_or_default(),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    author: h.author.clone().unwrap_or_default(),
                    comment: h.comment.clone().unwrap_or_default(),
                    empty_layer: h.empty_layer,
                })
                .collect(),
        };
        Image {
            kind: kinds::image(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: record.digest.to_string(),
                uid: image_uid(&record.digest),
                creation_timestamp: Some(record.created_at),
                annotations,
                ..ObjectMeta::default()
            },
            docker_image_reference: reference,
            docker_image_metadata: Some(docker),
            docker_image_metadata_version: "1.0".into(),
            docker_image_manifest_media_type: record.media_type.clone(),
            docker_image_layers: metadata
                .layers
                .iter()
                .map(|l| ImageLayer {
                    name: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect(),
            docker_image_manifests: metadata
                .manifests
                .iter()
                .map(|m| ImageManifest {
                    digest: m.digest.clone(),
                    media_type: m.media_type.clone(),
                    manifest_size: m.size,
                    architecture: m.architecture.clone().unwrap_or_default(),
                    os: m.os.clone().unwrap_or_default(),
                    variant: m.variant.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// An ImageStreamTag: the spec tag, and the tag's current image.
    fn tag_object(
        &self,
        stream: &StreamRecord,
        tag: &str,
        image: Option<&ImageRecord>,
    ) -> ImageStreamTag {
        let status = stream.status_tag(tag);
        let current = status.and_then(|s| s.items.first());
        ImageStreamTag {
            kind: kinds::image_stream_tag(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: format!("{}:{tag}", stream.name),
                namespace: Some(stream.namespace.clone()),
                uid: stream.uid.clone(),
                resource_version: stream.resource_version.to_string(),
                creation_timestamp: Some(current.map_or(stream.created_at, |c| c.created)),
                ..ObjectMeta::default()
            },
            tag: stream.spec_tag(tag).map(Self::spec_tag),
            generation: current.map_or(0, |c| c.generation),
            lookup_policy: ImageLookupPolicy {
                local: stream.lookup_local,
            },
            conditions: status.map(Self::conditions).unwrap_or_default(),
            image: image.map(|image| {
                let reference = current
                    .map(|c| self.pull_spec(&stream.namespace, &stream.name, c))
                    .unwrap_or_default();
                self.image_object(image, reference)
            }),
        }
    }

    pub fn namespace_object(record: &NamespaceRecord) -> Namespace {
        Namespace {
            kind: crate::kube::kinds::namespace(),
            api_version: crate::kube::kinds::core_api(),
            metadata: ObjectMeta {
                name: record.name.clone(),
                uid: record.uid.clone(),
                resource_version: record.resource_version.to_string(),
                creation_timestamp: Some(record.created_at),
                labels: record.labels.clone(),
                annotations: record.annotations.clone(),
                ..ObjectMeta::default()
            },
            spec: NamespaceSpec {
                finalizers: vec!["kubernetes".into()],
            },
            status: NamespaceStatus {
                phase: "Active".into(),
            },
        }
    }

    async fn audit(&self, who: &Subject, action: &'static str, target: &str) {
        self.identities
            .audit(crate::storage::auth::NewAudit {
                actor: who.display_name(),
                action,
                target: target.to_owned(),
                success: true,
                address: None,
                detail: None,
            })
            .await;
    }

    async fn list_version(&self) -> ApiResult<String> {
        Ok(self.store.latest_event_id().await?.to_string())
    }

    // ---- namespaces ---------------------------------------------------------------------------

    pub async fn list_namespaces(&self, who: &Subject, page: &Page) -> ApiResult<List<Namespace>> {
        const LIST: &str = "namespaces";
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let visible = self.identities.authorizer.visible_namespaces(who);
        let store = &self.store;
        let (records, more) = fill(
            page.limit,
            after,
            visible != Visible::All,
            |after: Option<String>, count| async move {
                Ok(store.list_namespaces(after.as_deref(), count).await?)
            },
            |r: &NamespaceRecord| r.name.clone(),
            |r| visible.contains(&r.name),
        )
        .await?;
        Ok(List {
            kind: "NamespaceList",
            api_version: CORE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    LIST,
                    who,
                    records.last().map(|r| r.name.as_str()),
                ),
                ..ListMeta::default()
            },
            items: records.iter().map(Self::namespace_object).collect(),
        })
    }

    /// The `continue` of a page of `list` for `who` that ended with the item keyed `last`, when
    /// more may follow.
    fn next_token(&self, more: bool, list: &str, who: &Subject, last: Option<&str>) -> String {
        match last {
            Some(last) if more => self.continue_tokens.seal(list, &who.key(), last),
            _ => String::new(),
        }
    }

    pub async fn get_namespace(&self, who: &Subject, name: &str) -> ApiResult<Namespace> {
        if !self
            .identities
            .authorizer
            .visible_namespaces(who)
            .contains(name)
        {
            self.identities.authorizer.require(
                who,
                Action::Pull,
                Target::namespace(name),
                NAMESPACES,
                name,
            )?;
        }
        self.store
            .get_namespace(name)
            .await?
            .map(|r| Self::namespace_object(&r))
            .ok_or_else(|| ApiError::not_found(NAMESPACES, name))
    }

    pub async fn create_namespace(&self, who: &Subject, body: Namespace) -> ApiResult<Namespace> {
        let name = body.metadata.name;
        if !self.identities.authorizer.may_create_namespace(who) {
            return Err(ApiError::forbidden(
                &who.display_name(),
                "create",
                NAMESPACES,
                &name,
                None,
            ));
        }
        if !is_valid_namespace(&name) {
            return Err(ApiError::invalid(
                NAMESPACES,
                &name,
                FieldError::new(
                    "metadata.name",
                    "a namespace is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit",
                ),
            ));
        }
        let record = self
            .store
            .create_namespace(&name, &body.metadata.labels, &body.metadata.annotations)
            .await?
            .ok_or(ApiError::AlreadyExists {
                resource: NAMESPACES,
                name: name.clone(),
            })?;
        self.identities.namespace_created(&name, who).await?;
        Ok(Self::namespace_object(&record))
    }

    pub async fn delete_namespace(&self, who: &Subject, name: &str) -> ApiResult<Status> {
        self.identities.authorizer.require(
            who,
            Action::Delete,
            Target::namespace(name),
            NAMESPACES,
            name,
        )?;
        if self.store.delete_namespace(name).await? {
            self.identities.authorizer.reload().await?;
            self.audit(who, "namespace-delete", name).await;
            Ok(crate::kube::deleted(NAMESPACES, name))
        } else {
            Err(ApiError::not_found(NAMESPACES, name))
        }
    }

    // ---- image streams ------------------------------------------------------------------------

    /// Not found unless the namespace exists.
    /// Refuses all but the namespace's admins (who manage its access, secrets and webhooks);
    /// then not found unless the namespace exists (so others do not learn which exist).
    pub async fn require_namespace_admin(
        &self,
        who: &Subject,
        namespace: &str,
        resource: Resource,
        name: &str,
    ) -> ApiResult<()> {
        self.identities.authorizer.require(
            who,
            Action::ManageAccess,
            Target::namespace(namespace),
            resource,
            name,
        )?;
        self.require_namespace(namespace).await
    }

    pub async fn require_namespace(&self, namespace: &str) -> ApiResult<()> {
        if !is_valid_namespace(namespace) || self.store.get_namespace(namespace).await?.is_none() {
            return Err(ApiError::not_found(NAMESPACES, namespace));
        }
        Ok(())
    }

    pub async fn list_streams(
        &self,
        who: &Subject,
        namespace: &str,
        page: &Page,
    ) -> ApiResult<List<ImageStream>> {
        let visible = self.visible_streams(who, namespace)?;
        self.require_namespace(namespace).await?;
        let list = format!("imagestreams/{namespace}");
        let after = self.continue_tokens.start(page, &list, &who.key())?;
        let from = after.as_deref();
        // The page, its version and (as Kubernetes gives for lists nothing was filtered from)
        // the count from the page's start, read at once.
        let count_from_start = async {
            match visible {
                Visible::All => self
                    .store
                    .count_streams_after(namespace, from.unwrap_or(""))
                    .await
                    .map(Some),
                Visible::Only(_) => Ok(None),
            }
        };
        let store = &self.store;
        let (version, (records, more), from_start) = tokio::try_join!(
            self.list_version(),
            fill(
                page.limit,
                after.clone(),
                visible != Visible::All,
                |after: Option<String>, count| async move {
                    Ok(store
                        .list_streams(namespace, after.as_deref(), count)
                        .await?)
                },
                |r: &StreamRecord| r.name.clone(),
                |r| visible.contains(&r.name),
            ),
            async { Ok::<_, ApiError>(count_from_start.await?) },
        )?;
        let count = records.len();
        let remaining_item_count = from_start
            .filter(|_| more)
            .map(|from_start| from_start.saturating_sub(count as u64));
        // A full last page needs no further (empty) one.
        let more = more && remaining_item_count != Some(0);
        let remaining_item_count = remaining_item_count.filter(|remaining| *remaining > 0);
        Ok(List {
            kind: "ImageStreamList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    &list,
                    who,
                    records.last().map(|r| r.name.as_str()),
                ),
                remaining_item_count,
            },
            items: records.iter().map(|r| self.stream_object(r)).collect(),
        })
    }

    /// Streams of every namespace `who` may see, paged by (namespace, name).
    pub async fn list_all_streams(
        &self,
        who: &Subject,
        page: &Page,
    ) -> ApiResult<List<ImageStream>> {
        const LIST: &str = "imagestreams";
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let key = |r: &StreamRecord| format!("{}/{}", r.namespace, r.name);
        let store = &self.store;
        let (records, more) = fill(
            page.limit,
            after,
            self.identities.authorizer.visible_namespaces(who) != Visible::All,
            |after: Option<String>, count| async move {
                let after = after.as_deref().and_then(|a| a.split_once('/'));
                Ok(store.list_all_streams(after, count).await?)
            },
            key,
            |r| {
                self.identities.authorizer.allows(
                    who,
                    Action::Pull,
                    Target::stream(&r.namespace, &r.name),
                )
            },
        )
        .await?;
        Ok(List {
            kind: "ImageStreamList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(
                    more,
                    LIST,
                    who,
                    records.last().map(key).as_deref(),
                ),
                ..ListMeta::default()
            },
            items: records.iter().map(|r| self.stream_object(r)).collect(),
        })
    }

    pub async fn stream_record(&self, namespace: &str, name: &str) -> ApiResult<StreamRecord> {
        repository(namespace, name)?;
        self.store
            .get_stream(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAMS, name))
    }

    pub async fn get_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStream> {
        self.identities.authorizer.require(
            who,
            Action::Pull,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        Ok(self.stream_object(&self.stream_record(namespace, name).await?))
    }

    /// The spec tags of `body` that differ from `current` (all of them for a new stream),
    /// resolved, and the names of those it drops.
    async fn spec_changes(
        &self,
        who: &Subject,
        namespace: &str,
        stream: &str,
        body: &[TagReference],
        current: Option<&StreamRecord>,
    ) -> ApiResult<(Vec<SpecTagWrite>, Vec<String>)> {
        let mut writes = Vec::new();
        for (i, tag) in body.iter().enumerate() {
            let field = format!("spec.tags[{i}].name");
            tag.name.parse::<Tag>().map_err(|err| {
                ApiError::invalid(
                    IMAGE_STREAMS,
                    stream,
                    FieldError::new(field, err.to_string()),
                )
            })?;
            let forced = tag.generation == Some(0);
            let normalized = normalize(tag.clone(), &tag.name, IMAGE_STREAMS, stream)?;
            let reference = stored_reference(&normalized)?;
            let unchanged = current
                .and_then(|c| c.spec_tag(&tag.name))
                .is_some_and(|existing| existing.reference == reference);
            if unchanged && !forced {
                continue;
            }
            let target = self
                .resolve(who, namespace, &normalized, IMAGE_STREAMS, stream)
                .await?;
            writes.push(SpecTagWrite {
                name: tag.name.clone(),
                reference,
                target,
            });
        }
        let removed = current
            .map(|c| {
                c.spec_tags
                    .iter()
                    .filter(|t| !body.iter().any(|b| b.name == t.name))
                    .map(|t| t.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok((writes, removed))
    }

    pub async fn create_stream(
        &self,
        who: &Subject,
        namespace: &str,
        body: ImageStream,
    ) -> ApiResult<ImageStream> {
        let name = body.metadata.name.clone();
        self.identities.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &name),
            IMAGE_STREAMS,
            &name,
        )?;
        if let Some(given) = body.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let repository = RepositoryName::of_stream(namespace, &name)
            .map_err(|_| ApiError::invalid(IMAGE_STREAMS, &name, stream_name_error(&name)))?;
        self.require_namespace(namespace).await?;
        let (writes, _) = self
            .spec_changes(who, namespace, &name, &body.spec.tags, None)
            .await?;
        let mut change = StreamChange::new(repository, Presence::Create, "create");
        change.metadata = Some((body.metadata.labels, body.metadata.annotations));
        change.lookup_local = Some(body.spec.lookup_policy.local);
        change.set_spec_tags = writes;
        let record = self
            .store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAMS, &name))?;
        Ok(self.stream_object(&record))
    }

    pub async fn update_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: ImageStream,
    ) -> ApiResult<ImageStream> {
        self.identities.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        if body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        let given = resource_version(&body.metadata.resource_version, IMAGE_STREAMS, name)?;
        // Without a resourceVersion the update applies to the stream as it is when written: the
        // changes are computed against a read, and computed again if the stream moved since.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.stream_record(namespace, name).await?;
            let (writes, removed) = self
                .spec_changes(who, namespace, name, &body.spec.tags, Some(&current))
                .await?;
            let mut change =
                StreamChange::new(repository(namespace, name)?, Presence::Update, "update");
            change.expected_resource_version = Some(given.unwrap_or(current.resource_version));
            if body.metadata.labels != current.labels
                || body.metadata.annotations != current.annotations
            {
                change.metadata = Some((
                    body.metadata.labels.clone(),
                    body.metadata.annotations.clone(),
                ));
            }
            if body.spec.lookup_policy.local != current.lookup_local {
                change.lookup_local = Some(body.spec.lookup_policy.local);
            }
            change.set_spec_tags = writes;
            change.remove_tags = removed;
            match self.store.change_stream(&change).await? {
                Ok(record) => return Ok(self.stream_object(&record)),
                Err(StreamChangeError::Conflict { .. }) if given.is_none() && attempts < 5 => {}
                Err(err) => return Err(change_error(err, IMAGE_STREAMS, name)),
            }
        }
    }

    pub async fn delete_stream(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        repository(namespace, name)?;
        self.identities.authorizer.require(
            who,
            Action::Delete,
            Target::stream(namespace, name),
            IMAGE_STREAMS,
            name,
        )?;
        if self.store.delete_stream(namespace, name).await? {
            self.audit(who, "imagestream-delete", &format!("{namespace}/{name}"))
                .await;
            Ok(crate::kube::deleted(IMAGE_STREAMS, name))
        } else {
            Err(ApiError::not_found(IMAGE_STREAMS, name))
        }
    }

    // ---- where a spec tag points --------------------------------------------------------------

    /// The image a spec tag names, or `None` when it names nothing (no `from`).
    async fn resolve(
        &self,
        who: &Subject,
        namespace: &str,
        tag: &TagReference,
        resource: Resource,
        object: &str,
    ) -> ApiResult<Option<TagTarget>> {
        let Some(from) = &tag.from else {
            return Ok(None);
        };
        let invalid = |message: String| {
            ApiError::invalid(resource, object, FieldError::new("tag.from.name", message))
        };
        let source_namespace = if from.namespace.is_empty() {
            namespace
        } else {
            from.namespace.as_str()
        };
        match from.kind.as_str() {
            "ImageStreamTag" => {
                let (source, source_tag) =
                    split_stream_tag(&from.name).map_err(|err| invalid(err.to_string()))?;
                // Tagging from a stream needs the right to pull from it.
                self.identities.authorizer.require(
                    who,
                    Action::Pull,
                    Target::stream(source_namespace, &source),
                    IMAGE_STREAMS,
                    &source,
                )?;
                let record = self
                    .store
                    .get_stream(source_namespace, &source)
                    .await?
                    .ok_or_else(|| {
                        invalid(format!(
                            "image stream {source_namespace}/{source} not found"
                        ))
                    })?;
                let item = record
                    .status_tag(source_tag.as_str())
                    .and_then(|t| t.items.first())
                    .ok_or_else(|| {
                        invalid(format!(
                            "image stream tag {source_namespace}/{source}:{source_tag} has no image"
                        ))
                    })?;
                Ok(Some(match (&item.digest, &item.external_reference) {
                    (Some(digest), None) => TagTarget::Local {
                        source: repository(source_namespace, &source)?,
                        digest: digest.clone(),
                    },
                    (digest, Some(reference)) => TagTarget::External {
                        reference: reference.clone(),
                        digest: digest.clone(),
                    },
                    (None, None) => return Err(invalid(format!("{} has no image", from.name))),
                }))
            }
            "ImageStreamImage" => {
                let (source, digest) =
                    split_stream_image(&from.name).map_err(|err| invalid(err.to_string()))?;
                let source = repository(source_namespace, &source)?;
                self.identities.authorizer.require(
                    who,
                    Action::Pull,
                    Target::stream(source.namespace(), source.stream()),
                    IMAGE_STREAMS,
                    source.stream(),
                )?;
                if self
                    .store
                    .image_in_repository(&source, &digest)
                    .await?
                    .is_none()
                {
                    return Err(invalid(format!("image {digest} is not in {source}")));
                }
                Ok(Some(TagTarget::Local { source, digest }))
            }
            _ => self
                .resolve_docker_image(who, &from.name, tag, &invalid)
                .await
                .map(Some),
        }
    }

    /// A `DockerImage` reference: an image of this registry resolves locally (choosing one
    /// platform of an index under `importMode: Legacy`); any other is kept by reference.
    async fn resolve_docker_image(
        &self,
        who: &Subject,
        reference: &str,
        tag: &TagReference,
        invalid: &(dyn Fn(String) -> ApiError + Sync),
    ) -> ApiResult<TagTarget> {
        let external = || TagTarget::External {
            reference: reference.to_owned(),
            digest: reference
                .rsplit_once('@')
                .and_then(|(_, digest)| digest.parse().ok()),
        };
        let Some(path) = reference
            .strip_prefix(&self.registry_host)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Ok(external());
        };
        let (name, image) = if let Some((name, digest)) = path.split_once('@') {
            let repository = name
                .parse::<RepositoryName>()
                .map_err(|err| invalid(err.to_string()))?;
            let digest = parse_digest(digest)?;
            let image = self.store.image_in_repository(&repository, &digest).await?;
            (repository, image)
        } else {
            let (name, tag_name) = path.rsplit_once(':').unwrap_or((path, "latest"));
            let repository = name
                .parse::<RepositoryName>()
                .map_err(|err| invalid(err.to_string()))?;
            let current = self
                .store
                .get_stream(repository.namespace(), repository.stream())
                .await?
                .and_then(|s| {
                    s.status_tag(tag_name)
                        .and_then(|t| t.items.first().cloned())
                });
            let image = match current.and_then(|item| item.digest) {
                Some(digest) => self.store.image_in_repository(&repository, &digest).await?,
                None => None,
            };
            (repository, image)
        };
        self.identities.authorizer.require(
            who,
            Action::Pull,
            Target::stream(name.namespace(), name.stream()),
            IMAGE_STREAMS,
            name.stream(),
        )?;
        let image = image.ok_or_else(|| invalid(format!("{reference} is not in this registry")))?;
        let mut digest = image.digest.clone();
        if tag.import_policy.import_mode != IMPORT_MODE_PRESERVE
            && crate::oci::kind_of(&image.media_type) == Some(ManifestKind::Index)
        {
            digest = self.legacy_platform(&image).unwrap_or(digest);
        }
        Ok(TagTarget::Local {
            source: name,
            digest,
        })
    }

    /// The child of an index that `importMode: Legacy` keeps: linux/amd64, else the first.
    fn legacy_platform(&self, index: &ImageRecord) -> Option<Digest> {
        let metadata: ImageMetadata = serde_json::from_str(index.image.as_deref()?).ok()?;
        let chosen = metadata
            .manifests
            .iter()
            .find(|m| {
                m.os.as_deref() == Some(DEFAULT_OS)
                    && m.architecture.as_deref() == Some(DEFAULT_ARCHITECTURE)
            })
            .or_else(|| metadata.manifests.first())?;
        chosen.digest.parse().ok()
    }

    // ---- image stream tags --------------------------------------------------------------------

    async fn current_image(
        &self,
        stream: &StreamRecord,
        tag: &str,
    ) -> ApiResult<Option<ImageRecord>> {
        let digest = stream
            .status_tag(tag)
            .and_then(|t| t.items.first())
            .and_then(|i| i.digest.clone());
        Ok(match digest {
            Some(digest) => self.store.get_image(&digest).await?,
            None => None,
        })
    }

    pub async fn get_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamTag> {
        let (stream, tag) = split_stream_tag(name)?;
        self.identities.authorizer.require(
            who,
            Action::Pull,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_TAGS,
            name,
        )?;
        let record = self
            .store
            .get_stream(namespace, &stream)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_TAGS, name))?;
        if record.status_tag(tag.as_str()).is_none() && record.spec_tag(tag.as_str()).is_none() {
            return Err(ApiError::not_found(IMAGE_STREAM_TAGS, name));
        }
        let image = self.current_image(&record, tag.as_str()).await?;
        Ok(self.tag_object(&record, tag.as_str(), image.as_ref()))
    }

    pub async fn list_tags(
        &self,
        who: &Subject,
        namespace: &str,
        page: &Page,
    ) -> ApiResult<List<ImageStreamTag>> {
        let visible = self.visible_streams(who, namespace)?;
        self.require_namespace(namespace).await?;
        let list = format!("imagestreamtags/{namespace}");
        let after = self.continue_tokens.start(page, &list, &who.key())?;
        let version = self.list_version().await?;
        let key = |(stream, tag): &(String, String)| format!("{stream}:{tag}");
        let store = &self.store;
        let (names, more) = fill(
            page.limit,
            after,
            visible != Visible::All,
            |after: Option<String>, count| async move {
                let after = after.as_deref().and_then(|a| a.rsplit_once(':'));
                Ok(store.list_stream_tags(namespace, after, count).await?)
            },
            key,
            |(stream, _)| visible.contains(stream),
        )
        .await?;
        // Each stream of the page, with only the page's tags.
        let mut streams: Vec<StreamRecord> = Vec::new();
        for (stream, _) in &names {
            if streams.iter().any(|s| &s.name == stream) {
                continue;
            }
            let wanted: Vec<String> = names
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, t)| t.clone())
                .collect();
            if let Some(record) = self
                .store
                .get_stream_tags(namespace, stream, &wanted)
                .await?
            {
                streams.push(record);
            }
        }
        let mut items = Vec::with_capacity(names.len());
        let digests: Vec<Digest> = streams
            .iter()
            .flat_map(|s| s.status_tags.iter())
            .filter_map(|t| t.items.first().and_then(|i| i.digest.clone()))
            .collect();
        let images = self.store.get_images(&digests).await?;
        for (stream, tag) in &names {
            let Some(record) = streams.iter().find(|s| &s.name == stream) else {
                continue;
            };
            let digest = record
                .status_tag(tag)
                .and_then(|t| t.items.first())
                .and_then(|i| i.digest.as_ref());
            let image = digest.and_then(|d| images.iter().find(|i| &i.digest == d));
            items.push(self.tag_object(record, tag, image));
        }
        Ok(List {
            kind: "ImageStreamTagList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(more, &list, who, names.last().map(key).as_deref()),
                ..ListMeta::default()
            },
            items,
        })
    }

    /// Creates (`create`: must be new) or updates a spec tag, pointing the tag where it says:
    /// how `oc tag` and a rollback to an earlier image work.
    pub async fn put_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: ImageStreamTag,
        create: bool,
    ) -> ApiResult<ImageStreamTag> {
        let (stream, tag) = split_stream_tag(name)?;
        self.identities.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_TAGS,
            name,
        )?;
        if !body.metadata.name.is_empty() && body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        let repository = repository(namespace, &stream)?;
        self.require_namespace(namespace).await?;
        let reference = body.tag.ok_or_else(|| {
            ApiError::invalid(IMAGE_STREAM_TAGS, name, FieldError::new("tag", "required"))
        })?;
        let normalized = normalize(reference, tag.as_str(), IMAGE_STREAM_TAGS, name)?;
        let current = self.store.get_stream(namespace, &stream).await?;
        if create
            && current.as_ref().is_some_and(|c| {
                c.spec_tag(tag.as_str()).is_some() || c.status_tag(tag.as_str()).is_some()
            })
        {
            return Err(ApiError::AlreadyExists {
                resource: IMAGE_STREAM_TAGS,
                name: name.into(),
            });
        }
        let target = self
            .resolve(who, namespace, &normalized, IMAGE_STREAM_TAGS, name)
            .await?;
        let mut change = StreamChange::new(repository, Presence::Ensure, "tag");
        change.expected_resource_version =
            resource_version(&body.metadata.resource_version, IMAGE_STREAM_TAGS, name)?;
        change.set_spec_tags = vec![SpecTagWrite {
            name: tag.as_str().to_owned(),
            reference: stored_reference(&normalized)?,
            target,
        }];
        let record = self
            .store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_TAGS, name))?;
        let image = self.current_image(&record, tag.as_str()).await?;
        Ok(self.tag_object(&record, tag.as_str(), image.as_ref()))
    }

    /// Records what an import brought for `tag`: the spec tag (when new or changed) and the
    /// image as the tag's newest item, or a failure as the tag's `ImportSuccess` condition,
    /// the tag keeping its image. A re-import of an unchanged spec moves the status only.
    pub async fn record_import(
        &self,
        namespace: &str,
        stream: &str,
        tag: &Tag,
        reference: TagReference,
        outcome: Result<Digest, (&str, String)>,
    ) -> ApiResult<StreamRecord> {
        let repository = repository(namespace, stream)?;
        let normalized = normalize(reference, tag.as_str(), IMAGE_STREAM_IMPORTS, stream)?;
        let stored = stored_reference(&normalized)?;
        let current = self.store.get_stream(namespace, stream).await?;
        let spec_unchanged = current
            .as_ref()
            .and_then(|c| c.spec_tag(tag.as_str()))
            .is_some_and(|existing| existing.reference == stored);
        let mut change = StreamChange::new(repository.clone(), Presence::Ensure, "import");
        let spec = |target| SpecTagWrite {
            name: tag.as_str().to_owned(),
            reference: stored.clone(),
            target,
        };
        match outcome {
            Ok(digest) => {
                let target = TagTarget::Local {
                    source: repository,
                    digest,
                };
                if spec_unchanged {
                    change.move_tags.push((tag.as_str().to_owned(), target));
                } else {
                    change.set_spec_tags.push(spec(Some(target)));
                }
                change.tag_conditions.push((tag.as_str().to_owned(), None));
            }
            Err((reason, message)) => {
                if !spec_unchanged {
                    change.set_spec_tags.push(spec(None));
                }
                let condition = TagEventCondition {
                    condition_type: "ImportSuccess".into(),
                    status: "False".into(),
                    last_transition_time: Some(chrono::Utc::now()),
                    reason: reason.to_owned(),
                    message,
                    generation: current.as_ref().map_or(1, |c| c.generation),
                };
                let conditions = serde_json::to_string(&[condition])
                    .map_err(|err| ApiError::BadRequest(err.to_string()))?;
                change
                    .tag_conditions
                    .push((tag.as_str().to_owned(), Some(conditions)));
            }
        }
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_IMPORTS, stream))
    }

    pub async fn delete_tag(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        let (stream, tag) = split_stream_tag(name)?;
        self.identities.authorizer.require(
            who,
            Action::Delete,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_TAGS,
            name,
        )?;
        let record = self
            .store
            .get_stream(namespace, &stream)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_TAGS, name))?;
        if record.status_tag(tag.as_str()).is_none() && record.spec_tag(tag.as_str()).is_none() {
            return Err(ApiError::not_found(IMAGE_STREAM_TAGS, name));
        }
        let mut change =
            StreamChange::new(repository(namespace, &stream)?, Presence::Update, "untag");
        change.remove_tags = vec![tag.as_str().to_owned()];
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_TAGS, name))?;
        self.audit(who, "imagestreamtag-delete", &format!("{namespace}/{name}"))
            .await;
        Ok(crate::kube::deleted(IMAGE_STREAM_TAGS, name))
    }

    // ---- images -------------------------------------------------------------------------------

    pub async fn get_stream_image(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamImage> {
        let (stream, digest) = split_stream_image(name)?;
        self.identities.authorizer.require(
            who,
            Action::Pull,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_IMAGES,
            name,
        )?;
        let repository = repository(namespace, &stream)?;
        let image = self
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, name))?;
        let reference = format!("{}/{repository}@{digest}", self.registry_host);
        let record = self.store.get_stream(namespace, &stream).await?;
        Ok(ImageStreamImage {
            kind: "ImageStreamImage",
            api_version: IMAGE_API_VERSION,
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: Some(namespace.to_owned()),
                uid: image_uid(&digest),
                resource_version: record
                    .map(|r| r.resource_version.to_string())
                    .unwrap_or_default(),
                creation_timestamp: Some(image.created_at),
                ..ObjectMeta::default()
            },
            image: self.image_object(&image, reference),
        })
    }

    /// Images are cluster-scoped, as in OpenShift: reading them takes a registry-wide role.
    pub async fn get_image(&self, who: &Subject, name: &str) -> ApiResult<Image> {
        self.identities
            .authorizer
            .require(who, Action::Pull, Target::REGISTRY, IMAGES, name)?;
        let digest = name
            .parse::<Digest>()
            .map_err(|_| ApiError::not_found(IMAGES, name))?;
        let image = self
            .store
            .get_image(&digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGES, name))?;
        Ok(self.image_object(&image, String::new()))
    }

    pub async fn list_images(&self, who: &Subject, page: &Page) -> ApiResult<List<Image>> {
        const LIST: &str = "images";
        self.identities
            .authorizer
            .require(who, Action::Pull, Target::REGISTRY, IMAGES, "")?;
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let records = self.store.list_images(after.as_deref(), page.limit).await?;
        let more = records.len() >= page.limit as usize;
        let last = records.last().map(|r| r.digest.to_string());
        Ok(List {
            kind: "ImageList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(more, LIST, who, last.as_deref()),
                ..ListMeta::default()
            },
            items: records
                .iter()
                .map(|r| self.image_object(r, String::new()))
                .collect(),
        })
    }

    /// Records that an image of the stream's repository is `tag` now, as a push does.
    pub async fn create_mapping(
        &self,
        who: &Subject,
        namespace: &str,
        body: ImageStreamMapping,
    ) -> ApiResult<Status> {
        let stream = body.metadata.name.clone();
        self.identities.authorizer.require(
            who,
            Action::Push,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_MAPPINGS,
            &stream,
        )?;
        let repository = repository(namespace, &stream).map_err(|_| {
            ApiError::invalid(IMAGE_STREAM_MAPPINGS, &stream, stream_name_error(&stream))
        })?;
        let tag = body.tag.parse::<Tag>().map_err(|err| {
            ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new("tag", err.to_string()),
            )
        })?;
        let digest = body.image.metadata.name.parse::<Digest>().map_err(|err| {
            ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new("image.metadata.name", err.to_string()),
            )
        })?;
        self.require_namespace(namespace).await?;
        if self
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                IMAGE_STREAM_MAPPINGS,
                &stream,
                FieldError::new(
                    "image.metadata.name",
                    format!("image {digest} is not in {repository}; push it first"),
                ),
            ));
        }
        let mut change = StreamChange::new(repository.clone(), Presence::Ensure, "push");
        change.move_tags = vec![(
            tag.as_str().to_owned(),
            TagTarget::Local {
                source: repository,
                digest,
            },
        )];
        self.store
            .change_stream(&change)
            .await?
            .map_err(|err| change_error(err, IMAGE_STREAM_MAPPINGS, &stream))?;
        let mut status = crate::kube::deleted(IMAGE_STREAM_MAPPINGS, &stream);
        status.code = 201;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::ObjectReference;

    #[test]
    fn names_of_tags_and_images() {
        let (stream, tag) = split_stream_tag("app:v1").unwrap();
        assert_eq!((stream.as_str(), tag.as_str()), ("app", "v1"));
        assert!(split_stream_tag("app").is_err());
        assert!(split_stream_tag(":v1").is_err());
        assert!(split_stream_tag("app:-bad").is_err());
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        assert_eq!(
            split_stream_image(&format!("app@{digest}")).unwrap().0,
            "app"
        );
        assert!(split_stream_image("app@sha256:x").is_err());
        assert!(repository("Bad", "app").is_err());
        assert!(repository("ns", "Bad").is_err());
    }

    #[test]
    fn spec_tags_are_validated_and_defaulted() {
        let tag = normalize(TagReference::default(), "v1", IMAGE_STREAM_TAGS, "s:v1").unwrap();
        assert_eq!(tag.import_policy.import_mode, "Legacy");
        assert_eq!(tag.reference_policy.policy_type, "Source");
        let bad = TagReference {
            from: Some(ObjectReference {
                kind: "Pod".into(),
                name: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(normalize(bad, "v1", IMAGE_STREAM_TAGS, "s:v1").is_err());
        let mut bad = TagReference::default();
        bad.import_policy.import_mode = "Whatever".into();
        assert!(normalize(bad, "v1", IMAGE_STREAM_TAGS, "s:v1").is_err());
    }
}
