//! The resource shapes of OpenShift's `image.openshift.io/v1` that Berth serves, with their field
//! names, so that OpenShift's documentation and scripts carry over.

use std::collections::BTreeMap;

use crate::kube::{LocalObjectReference, ObjectMeta, ObjectReference, Status, StringMap, time};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const IMAGE_API_VERSION: &str = "image.openshift.io/v1";
/// Layers of an image are listed oldest first.
pub const LAYERS_ORDER_ANNOTATION: &str = "image.openshift.io/dockerLayersOrder";

fn is_false(value: &bool) -> bool {
    !*value
}

/// How a tag that points at another registry is imported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagImportPolicy {
    /// Import from a registry without verifying its TLS certificate, or over plain HTTP.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Re-import the tag periodically, so that it follows the remote tag.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scheduled: bool,
    /// `Legacy` imports one platform of a manifest list; `PreserveOriginal` keeps the whole
    /// list.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub import_mode: String,
}

/// How pulls of the tag are directed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TagReferencePolicy {
    /// `Source` sends pulls to the image's original registry; `Local` serves them from this
    /// registry.
    #[serde(default, rename = "type")]
    pub policy_type: String,
}

/// A spec tag: where a tag of the image stream comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagReference {
    /// The name of the tag.
    #[serde(default)]
    pub name: String,
    /// Annotations of the tag.
    #[serde(default)]
    pub annotations: Option<StringMap>,
    /// Where the tag points: a `DockerImage` pull spec, an `ImageStreamTag` (`stream:tag`) or
    /// an `ImageStreamImage` (`stream@digest`); absent for a tag only pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    /// When true, the tag is not imported: it only records the reference in `from`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reference: bool,
    /// The stream generation at which the spec tag last changed; 0 forces a new import.
    #[serde(default)]
    pub generation: Option<i64>,
    /// How the tag is imported from another registry.
    #[serde(default)]
    pub import_policy: TagImportPolicy,
    /// How pulls of the tag are directed.
    #[serde(default)]
    pub reference_policy: TagReferencePolicy,
}

/// Whether workloads of the namespace may name the stream's tags directly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageLookupPolicy {
    /// When true, `stream:tag` resolves to the tag's image in this namespace.
    #[serde(default)]
    pub local: bool,
}

/// What the image stream should hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    /// Whether the stream's tags may be named directly by workloads of the namespace.
    #[serde(default)]
    pub lookup_policy: ImageLookupPolicy,
    /// Deprecated in OpenShift; kept for compatibility.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_image_repository: String,
    /// The spec tags: where each tag of the stream comes from. A patch merges them by `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-patch-merge-key" = "name",
        "x-kubernetes-patch-strategy" = "merge"
    ))]
    pub tags: Vec<TagReference>,
}

/// One image a tag has pointed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    /// When the tag moved to this image.
    #[serde(with = "time")]
    #[schemars(with = "DateTime<Utc>")]
    pub created: DateTime<Utc>,
    /// The pull spec of the image.
    pub docker_image_reference: String,
    /// The image's digest.
    pub image: String,
    /// The spec tag generation this image was brought by.
    pub generation: i64,
    /// Who moved the tag here, when Berth knows: not in OpenShift's API (never written out
    /// nor read), only for the in-process console.
    #[serde(skip)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEventCondition {
    #[serde(rename = "type")]
    pub condition_type: String,
    pub status: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub last_transition_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub generation: i64,
}

/// A tag's history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedTagEventList {
    /// The name of the tag.
    pub tag: String,
    /// The images the tag has pointed at, the current one first.
    pub items: Vec<TagEvent>,
    /// Why the tag could not be updated (a failed import), when it could not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

/// What the image stream holds, as the registry records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    /// Where the stream's images are pulled from and pushed to.
    #[serde(default)]
    pub docker_image_repository: String,
    /// The same repository at the registry's public address, when it has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_docker_image_repository: String,
    /// The history of each tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
}

/// An image stream: a repository of the registry (`namespace/name`), its tags and where each
/// comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStream {
    /// The kind of the object: `ImageStream`.
    #[serde(default = "kinds::image_stream")]
    pub kind: String,
    /// The API version of the object: `image.openshift.io/v1`.
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    /// The stream's name, namespace, labels and annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the stream should hold: its spec tags.
    #[serde(default)]
    pub spec: ImageStreamSpec,
    /// What the stream holds: each tag's images. Written by the registry only.
    #[serde(default)]
    pub status: ImageStreamStatus,
}

/// Defaults for `kind` and `apiVersion` of objects read from requests.
pub mod kinds {
    pub fn image_stream() -> String {
        "ImageStream".into()
    }
    pub fn image_stream_tag() -> String {
        "ImageStreamTag".into()
    }
    pub fn image_stream_mapping() -> String {
        "ImageStreamMapping".into()
    }
    pub fn image() -> String {
        "Image".into()
    }
    pub fn image_stream_import() -> String {
        "ImageStreamImport".into()
    }
    pub fn image_api() -> String {
        super::IMAGE_API_VERSION.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageLayer {
    pub name: String,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub digest: String,
    pub media_type: String,
    pub manifest_size: u64,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// `docker10.DockerConfig`: the run configuration, with Docker's capitalised names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DockerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "Env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: StringMap,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
}

/// One step of the image's build history (Berth's addition to `DockerImage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DockerHistory {
    #[serde(rename = "Created", default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    #[serde(
        rename = "CreatedBy",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    #[serde(rename = "Author", default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(rename = "Comment", default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(rename = "EmptyLayer", default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// `docker10.DockerImage`, with Berth's additions `Os`, `Variant` and `History` (OpenShift
/// clients ignore fields they do not know).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DockerImage {
    pub kind: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created", default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    #[serde(rename = "ContainerConfig", default)]
    pub container_config: serde_json::Value,
    #[serde(rename = "Author", default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(rename = "Config", default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DockerConfig>,
    #[serde(
        rename = "Architecture",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub architecture: String,
    #[serde(rename = "Os", default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(rename = "Variant", default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(rename = "Size", default)]
    pub size: u64,
    #[serde(rename = "History", default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DockerHistory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default = "kinds::image")]
    pub kind: String,
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_image_reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_metadata: Option<DockerImage>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_image_metadata_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_image_manifest_media_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_image_layers: Vec<ImageLayer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_image_manifests: Vec<ImageManifest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamTag {
    #[serde(default = "kinds::image_stream_tag")]
    pub kind: String,
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub tag: Option<TagReference>,
    #[serde(default)]
    pub generation: i64,
    #[serde(default)]
    pub lookup_policy: ImageLookupPolicy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamImage {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub metadata: ObjectMeta,
    pub image: Image,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamMapping {
    #[serde(default = "kinds::image_stream_mapping")]
    pub kind: String,
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub image: Image,
    #[serde(default)]
    pub tag: String,
}

/// `oc import-image`: images to read from other registries into a stream (`spec.images`, one
/// tag each), or every tag of a repository (`spec.repository`). With `spec.import` false
/// nothing is written and the status says what an import would bring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamImport {
    #[serde(default = "kinds::image_stream_import")]
    pub kind: String,
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImageStreamImportSpec,
    #[serde(default)]
    pub status: ImageStreamImportStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamImportSpec {
    #[serde(default)]
    pub import: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryImportSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageImportSpec>,
}

impl ImageStreamImport {
    /// An import into stream `name`.
    pub fn new(name: &str, spec: ImageStreamImportSpec) -> Self {
        ImageStreamImport {
            kind: kinds::image_stream_import(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: name.to_owned(),
                ..ObjectMeta::default()
            },
            spec,
            status: ImageStreamImportStatus::default(),
        }
    }
}

impl ImageStreamImportSpec {
    /// What `oc import-image` asks for: the remote image `from` into `tag` (the remote's own
    /// tag when `None`), or every tag of its repository; `local` serves pulls from here
    /// (`referencePolicy: Local`); `import` false only reads.
    pub fn new(
        from: &str,
        tag: Option<&str>,
        all_tags: bool,
        import_policy: TagImportPolicy,
        local: bool,
        import: bool,
    ) -> Self {
        let from = ObjectReference {
            kind: "DockerImage".into(),
            namespace: String::new(),
            name: from.trim().to_owned(),
        };
        let reference_policy = TagReferencePolicy {
            policy_type: if local { "Local" } else { "Source" }.into(),
        };
        if all_tags {
            return ImageStreamImportSpec {
                import,
                repository: Some(RepositoryImportSpec {
                    from,
                    import_policy,
                    reference_policy,
                }),
                images: Vec::new(),
            };
        }
        ImageStreamImportSpec {
            import,
            repository: None,
            images: vec![ImageImportSpec {
                from,
                to: tag.map(|name| LocalObjectReference { name: name.into() }),
                import_policy,
                reference_policy,
            }],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryImportSpec {
    pub from: ObjectReference,
    #[serde(default)]
    pub import_policy: TagImportPolicy,
    #[serde(default)]
    pub reference_policy: TagReferencePolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageImportSpec {
    pub from: ObjectReference,
    /// The tag to write (`to.name`); the remote tag when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<LocalObjectReference>,
    #[serde(default)]
    pub import_policy: TagImportPolicy,
    #[serde(default)]
    pub reference_policy: TagReferencePolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamImportStatus {
    /// The stream after the import (absent when nothing was written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImageStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryImportStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageImportStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryImportStatus {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageImportStatus>,
}

/// One image's outcome: a `Status` (Success, or Failure with the reason) and the image read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageImportStatus {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
}
