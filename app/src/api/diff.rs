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

/// File changes shown at once; the rest a page further.
pub const FILE_CHANGES_PER_PAGE: usize = 200;

/// What differs in a file present in both images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileAspect {
    Kind,
    Size,
    Mode,
    Owner,
    Content,
    LinkTarget,
}

impl FileAspect {
    pub fn label(self) -> &'static str {
        match self {
            FileAspect::Kind => "type",
            FileAspect::Size => "size",
            FileAspect::Mode => "mode",
            FileAspect::Owner => "owner",
            FileAspect::Content => "content",
            FileAspect::LinkTarget => "link target",
        }
    }
}

/// A path of an image's merged view, as far as a comparison looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSide {
    /// `file`, `dir`, `symlink`, `hardlink`, `other`.
    pub kind: String,
    pub mode: u32,
    pub size: u64,
    pub uid: u64,
    pub gid: u64,
    /// `sha256:…` of a regular file's content.
    pub content_digest: Option<String>,
    pub link_target: Option<String>,
    /// The layer it comes from (0 = the base layer).
    pub layer: usize,
}

/// A path added, removed or changed between the two images' merged views (what a container of
/// each sees). Modification times are not compared: a rebuild changes them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub before: Option<FileSide>,
    pub after: Option<FileSide>,
    /// For a changed path, what differs.
    pub differs: Vec<FileAspect>,
}

/// Which file changes a page shows: of one kind (`added`, `removed`, `changed`, or all), with
/// `path` in their path, from `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileFilter {
    pub change: String,
    pub path: String,
    pub offset: usize,
}

/// The files of two images compared, a page of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FilesDiff {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// Changes that pass the filter; `files` is `offset..` of them, at most
    /// [`FILE_CHANGES_PER_PAGE`].
    pub matched: usize,
    pub offset: usize,
    pub files: Vec<FileChange>,
    /// Layers whose index stopped early (too many files, too large): their files are partly
    /// compared.
    pub notes: Vec<String>,
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

    /// The files of the same two images compared, over their merged views.
    async fn compare_files(
        &self,
        namespace: &str,
        stream: &str,
        refs: (&str, &str, &str),
        filter: FileFilter,
    ) -> ConsoleResult<FilesDiff>;
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

#[server(prefix = "/console/api", endpoint = "compare-files", input = GetUrl)]
#[allow(clippy::too_many_arguments)]
pub async fn compare_files(
    namespace: String,
    stream: String,
    from: String,
    to: String,
    platform: String,
    change: String,
    path: String,
    offset: usize,
) -> ConsoleResult<FilesDiff> {
    let filter = FileFilter {
        change,
        path,
        offset,
    };
    console_data()?
        .compare_files(&namespace, &stream, (&from, &to, &platform), filter)
        .await
}
