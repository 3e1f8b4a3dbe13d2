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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagImportPolicy {
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub scheduled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub import_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TagReferencePolicy {
    #[serde(default, rename = "type")]
    pub policy_type: String,
}

/// A spec tag: where a tag comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagReference {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub annotations: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reference: bool,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub import_policy: TagImportPolicy,
    #[serde(default)]
    pub reference_policy: TagReferencePolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageLookupPolicy {
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    #[serde(default)]
    pub lookup_policy: ImageLookupPolicy,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_image_repository: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagReference>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    #[serde(with = "time")]
    #[schemars(with = "DateTime<Utc>")]
    pub created: DateTime<Utc>,
    pub docker_image_reference: String,
    pub image: String,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedTagEventList {
    pub tag: String,
    pub items: Vec<TagEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    #[serde(default)]
    pub docker_image_repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_docker_image_repository: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStream {
    #[serde(default = "kinds::image_stream")]
    pub kind: String,
    #[serde(default = "kinds::image_api")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImageStreamSpec,
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
