//! Images: one image of a stream as its page shows it (platforms, layers, run config, build
//! history, referrers, the raw manifest and config).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRow {
    pub digest: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub size: u64,
    /// An attestation (provenance, SBOM) attached to another child, not a platform.
    pub attestation_for: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunConfigView {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStep {
    pub created: Option<String>,
    pub created_by: String,
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrerRow {
    pub digest: String,
    pub artifact_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    pub namespace: String,
    pub stream: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub created: Option<String>,
    pub author: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub platforms: Vec<PlatformRow>,
    pub layers: Vec<LayerRow>,
    pub config: Option<RunConfigView>,
    pub annotations: Vec<(String, String)>,
    pub history: Vec<BuildStep>,
    pub referrers: Vec<ReferrerRow>,
    pub tags: Vec<String>,
    pub pull_repository: String,
    pub raw_manifest: String,
    pub raw_config: Option<String>,
    /// Who brought the image into this stream first, and when (`pushed by USER at TIME`):
    /// known to Berth, not in front of a cluster.
    #[serde(default)]
    pub pushed: Option<PushedBy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedBy {
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// The images of a namespace's streams.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ImageData: Send + Sync {
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail>;
}

#[server(prefix = "/console/api", endpoint = "image", input = GetUrl)]
pub async fn get_image(
    namespace: String,
    stream: String,
    digest: String,
) -> ConsoleResult<ImageDetail> {
    console_data()?.image(&namespace, &stream, &digest).await
}
