//! What Berth reads of an image at push time, from its manifest and config: layers, size,
//! platform, the run configuration, labels, annotations and build history; for an index, its
//! child images by platform. Stored with the manifest as JSON, shown by the image stream API.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};

use super::content::Document;
use crate::oci::{DOCKER_IMAGE_CONFIG, OCI_IMAGE_CONFIG};

/// The largest image config read for metadata (configs are a few KiB; history can grow).
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageMetadata {
    /// The config blob's digest (Docker's image ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_media_type: Option<String>,
    pub layers: Vec<Layer>,
    /// Config plus layers, in bytes (an index: the sum of its children's manifests).
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// An index's children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<ChildManifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl ImageMetadata {
    /// What was read of an image at push time; empty when nothing was (or it cannot be read).
    pub fn of(record: &crate::storage::ImageRecord) -> Self {
        record
            .image
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// The container run configuration (the config's `config` object), as the image defines it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    #[serde(rename = "User", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(rename = "ExposedPorts", skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "Env", skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Volumes", skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "WorkingDir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "StopSignal", skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildManifest {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

/// The parts of an OCI or Docker image config that Berth shows. Every field is optional:
/// a config that says little still describes an image.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ImageConfigDocument {
    created: Option<String>,
    author: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    config: Option<RunConfig>,
    history: Vec<HistoryEntry>,
}

fn layer(descriptor: &Descriptor) -> Layer {
    Layer {
        digest: descriptor.digest().to_string(),
        media_type: descriptor.media_type().to_string(),
        size: descriptor.size(),
    }
}

fn sorted(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    annotations
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Whether the config of `manifest` is an image config worth reading (not an artifact's).
pub fn wants_config(manifest: &ImageManifest) -> bool {
    let media_type = manifest.config().media_type().to_string();
    (media_type == OCI_IMAGE_CONFIG || media_type == DOCKER_IMAGE_CONFIG)
        && manifest.config().size() <= MAX_CONFIG_BYTES
}

fn describe_image(manifest: &ImageManifest, config: Option<&[u8]>) -> ImageMetadata {
    let layers: Vec<Layer> = manifest.layers().iter().map(layer).collect();
    let size =
        capped_sum(std::iter::once(manifest.config().size()).chain(layers.iter().map(|l| l.size)));
    let document: ImageConfigDocument = config
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    ImageMetadata {
        config: Some(manifest.config().digest().to_string()),
        config_media_type: Some(manifest.config().media_type().to_string()),
        layers,
        size,
        os: document.os,
        architecture: document.architecture,
        variant: document.variant,
        created: document.created,
        author: document.author,
        run: document.config,
        annotations: sorted(manifest.annotations().as_ref()),
        history: document.history,
        manifests: Vec::new(),
        artifact_type: manifest.artifact_type().as_ref().map(ToString::to_string),
    }
}

fn describe_index(index: &ImageIndex) -> ImageMetadata {
    let manifests: Vec<ChildManifest> = index
        .manifests()
        .iter()
        .map(|m| {
            let platform = m.platform().as_ref();
            ChildManifest {
                digest: m.digest().to_string(),
                media_type: m.media_type().to_string(),
                size: m.size(),
                os: platform.map(|p| p.os().to_string()),
                architecture: platform.map(|p| p.architecture().to_string()),
                variant: platform.and_then(|p| p.variant().clone()),
                annotations: sorted(m.annotations().as_ref()),
            }
        })
        .collect();
    ImageMetadata {
        size: capped_sum(manifests.iter().map(|m| m.size)),
        annotations: sorted(index.annotations().as_ref()),
        manifests,
        artifact_type: index.artifact_type().as_ref().map(ToString::to_string),
        ..ImageMetadata::default()
    }
}

/// The sum of declared sizes, at most what the store holds: foreign layers are not checked
/// against content, so their sizes may be anything up to that limit each.
fn capped_sum(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes
        .fold(0u64, u64::saturating_add)
        .min(super::content::MAX_DECLARED_SIZE)
}

/// Describes a pushed manifest; `config` is its config blob when it is an image manifest with
/// one worth reading.
pub fn describe(document: &Document, config: Option<&[u8]>) -> ImageMetadata {
    match document {
        Document::Image(manifest) => describe_image(manifest, config),
        Document::Index(index) => describe_index(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "created": "2024-05-01T10:00:00Z", "author": "someone", "architecture": "arm64",
        "os": "linux", "variant": "v8",
        "config": {"User": "1001", "ExposedPorts": {"8080/tcp": {}}, "Env": ["A=1"],
                   "Entrypoint": ["/app"], "Cmd": ["--serve"], "Volumes": {"/data": {}},
                   "WorkingDir": "/srv", "Labels": {"l": "v"}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": "2024-05-01T09:00:00Z", "created_by": "COPY app /app"},
                    {"created_by": "ENV A=1", "empty_layer": true}]
    }"#;

    fn manifest() -> ImageManifest {
        serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":100},
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9","size":1000},
                          {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","size":24}],
                "annotations":{"org.opencontainers.image.source":"https://example.org"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_manifest_and_config() {
        let manifest = manifest();
        assert!(wants_config(&manifest));
        let image = describe(
            &Document::Image(Box::new(manifest)),
            Some(CONFIG.as_bytes()),
        );
        assert_eq!(image.size, 1124);
        assert_eq!(image.layers.len(), 2);
        assert_eq!(
            (
                image.os.as_deref(),
                image.architecture.as_deref(),
                image.variant.as_deref()
            ),
            (Some("linux"), Some("arm64"), Some("v8"))
        );
        let run = image.run.unwrap();
        assert_eq!(run.entrypoint.unwrap(), ["/app"]);
        assert_eq!(
            run.exposed_ports.unwrap().keys().collect::<Vec<_>>(),
            ["8080/tcp"]
        );
        assert_eq!(image.history.len(), 2);
        assert!(image.history[1].empty_layer);
        assert_eq!(
            image.annotations["org.opencontainers.image.source"],
            "https://example.org"
        );
    }

    #[test]
    fn a_config_that_cannot_be_read_still_describes_the_layers() {
        let image = describe(&Document::Image(Box::new(manifest())), Some(b"not json"));
        assert_eq!(image.layers.len(), 2);
        assert!(image.run.is_none());
    }
}
