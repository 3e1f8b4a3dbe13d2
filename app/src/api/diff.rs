//! Image diff: two images of a stream (each a tag or a digest) compared: their run
//! configuration, their layers (shared and different, in order) and their sizes; for an index,
//! one platform of each.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// The platform compared when an index offers it and none is asked for.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// Images of a stream offered in the compare form besides its tags, newest first.
pub const RECENT_IMAGES: usize = 50;

/// One image to pick in the compare form: a tag or an image of the stream's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefChoice {
    /// A tag name or a digest, as the address carries it.
    pub value: String,
    pub label: String,
    pub is_tag: bool,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSide {
    /// As asked: a tag or a digest.
    pub reference: String,
    /// The image the reference names (an index, or an image of one platform).
    pub digest: String,
    /// The image compared: `digest`, or the chosen platform's image of an index.
    pub compared: String,
    /// The platform of the image compared (`linux/amd64`), when it says.
    pub platform: Option<String>,
    /// Bytes of the image compared (config and layers).
    pub size: u64,
    pub created: Option<String>,
    /// The tags that name `digest` now.
    pub tags: Vec<String>,
}

/// Which part of the run configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigField {
    Entrypoint,
    Command,
    User,
    WorkingDir,
    Env,
    Ports,
    Volumes,
    Labels,
}

impl ConfigField {
    pub fn label(self) -> &'static str {
        match self {
            ConfigField::Entrypoint => "Entrypoint",
            ConfigField::Command => "Command",
            ConfigField::User => "User",
            ConfigField::WorkingDir => "Working directory",
            ConfigField::Env => "Environment",
            ConfigField::Ports => "Ports",
            ConfigField::Volumes => "Volumes",
            ConfigField::Labels => "Labels",
        }
    }
}

/// How something differs between the two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// One change of the run configuration: a field, or one key of it (an environment variable,
/// a label, a port), with its value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub field: ConfigField,
    /// The variable, label or port that changed; `None` for a whole field (the command).
    pub key: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl ConfigChange {
    pub fn change(&self) -> Change {
        match (&self.before, &self.after) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            _ => Change::Changed,
        }
    }
}

/// Where a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerPlace {
    /// In both images, at the same place in the stack below.
    Shared,
    OnlyFrom,
    OnlyTo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDiffRow {
    pub digest: String,
    pub size: u64,
    pub place: LayerPlace,
    /// Its position (from 1) in each image's stack.
    pub from_position: Option<usize>,
    pub to_position: Option<usize>,
}

/// Two images compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDiff {
    pub from: DiffSide,
    pub to: DiffSide,
    pub config: Vec<ConfigChange>,
    /// Both stacks merged in order: shared layers once, each image's own where they are.
    pub layers: Vec<LayerDiffRow>,
    /// `to`'s bytes less `from`'s.
    pub size_delta: i64,
}

/// The compare page: what can be picked, what was, and the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub namespace: String,
    pub stream: String,
    /// The stream's tags, then its recent images.
    pub choices: Vec<RefChoice>,
    /// The references compared (the ones asked for, or the defaults: the stream's newest image
    /// and the one before it).
    pub from: String,
    pub to: String,
    /// The platforms of the images, when either is an index.
    pub platforms: Vec<String>,
    pub platform: Option<String>,
    /// `None` when there is nothing to compare (the stream has fewer than two images).
    pub diff: Option<ImageDiff>,
}

/// Images of a stream compared.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait DiffData: Send + Sync {
    /// `from` and `to` are tags or digests of the stream; empty for the defaults.
    async fn compare(
        &self,
        namespace: &str,
        stream: &str,
        from: &str,
        to: &str,
        platform: &str,
    ) -> ConsoleResult<Comparison>;
}

#[server(prefix = "/console/api", endpoint = "compare", input = GetUrl)]
pub async fn compare_images(
    namespace: String,
    stream: String,
    from: String,
    to: String,
    platform: String,
) -> ConsoleResult<Comparison> {
    console_data()?
        .compare(&namespace, &stream, &from, &to, &platform)
        .await
}
