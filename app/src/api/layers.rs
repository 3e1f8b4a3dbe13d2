//! An image's files: one layer's entries, or the merged view of all its layers (what a
//! container sees, each file with the layer it comes from), listed a directory at a time or
//! searched by path; a text file's content. Downloads are a plain route
//! ([`file_download_url`]).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// What a listing shows at most in one page.
pub const FILES_PER_PAGE: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileQuery {
    /// The directory whose children are listed ("" for the root).
    pub dir: String,
    /// A part of the path (any case): every entry that has it, instead of one directory.
    pub search: String,
    /// Rows to skip (pages of [`FILES_PER_PAGE`]).
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    /// Its position in its layer's index: what reads and downloads name (a path may not be
    /// UTF-8, or may be shared with others once shown lossily). `None` for a directory that
    /// the layer holds no entry of (only things under it).
    pub entry: Option<usize>,
    pub path: String,
    /// The last component, what a directory listing shows.
    pub name: String,
    /// The name as the layer stores it, when it differs (`../x`, `/abs`, not UTF-8).
    pub stored_as: Option<String>,
    /// `file`, `dir`, `symlink`, `hardlink`, `whiteout`, `opaque`, `other`.
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub owner: Option<String>,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    pub link_target: Option<String>,
    pub content_digest: Option<String>,
    /// The layer (its position in the image and digest) the row comes from.
    pub layer: usize,
    pub layer_digest: String,
    /// Its content cannot be read (the layer ends early).
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileListing {
    pub namespace: String,
    pub stream: String,
    pub image: String,
    /// The layer listed (its position and digest); `None` for the merged view.
    pub layer: Option<(usize, String)>,
    /// The image's layers, base first.
    pub layers: Vec<LayerChoice>,
    pub compression: Option<String>,
    /// Entries (or merged paths) in all.
    pub total: usize,
    /// Rows that match the query, of which `rows` is one page.
    pub matched: usize,
    pub rows: Vec<FileRow>,
    /// Why the listing is not whole (a bound met, a damaged layer), in words.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileText {
    pub path: String,
    pub size: u64,
    /// The content when it is UTF-8 text; `None` for binary content.
    pub text: Option<String>,
    /// Only the first bytes are shown (the console's bound).
    pub cut: bool,
}

#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait LayerData: Send + Sync {
    /// The entries of one layer of an image, as `query` asks.
    async fn layer_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing>;

    /// The merged view of an image's layers, as `query` asks.
    async fn image_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing>;

    /// The start of entry `entry` of a layer, as text when it is.
    async fn file_text(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        entry: usize,
    ) -> ConsoleResult<FileText>;
}

#[server(prefix = "/console/api", endpoint = "layer-files", input = GetUrl)]
pub async fn get_layer_files(
    namespace: String,
    stream: String,
    image: String,
    layer: String,
    dir: String,
    search: String,
    offset: usize,
) -> ConsoleResult<FileListing> {
    let query = FileQuery {
        dir,
        search,
        offset,
    };
    console_data()?
        .layer_files(&namespace, &stream, &image, &layer, query)
        .await
}

#[server(prefix = "/console/api", endpoint = "image-files", input = GetUrl)]
pub async fn get_image_files(
    namespace: String,
    stream: String,
    image: String,
    dir: String,
    search: String,
    offset: usize,
) -> ConsoleResult<FileListing> {
    let query = FileQuery {
        dir,
        search,
        offset,
    };
    console_data()?
        .image_files(&namespace, &stream, &image, query)
        .await
}

#[server(prefix = "/console/api", endpoint = "file-text", input = GetUrl)]
pub async fn get_file_text(
    namespace: String,
    stream: String,
    image: String,
    layer: String,
    entry: usize,
) -> ConsoleResult<FileText> {
    console_data()?
        .file_text(&namespace, &stream, &image, &layer, entry)
        .await
}

/// The address that downloads entry `entry` of `layer` (an attachment, whatever its content).
pub const FILE_DOWNLOAD_PATH: &str = "/console/api/layer-file";

pub fn file_download_url(
    namespace: &str,
    stream: &str,
    image: &str,
    layer: &str,
    entry: usize,
) -> String {
    use crate::format::encode;
    format!(
        "{FILE_DOWNLOAD_PATH}?namespace={}&stream={}&image={}&layer={}&entry={entry}",
        encode(namespace),
        encode(stream),
        encode(image),
        encode(layer)
    )
}
