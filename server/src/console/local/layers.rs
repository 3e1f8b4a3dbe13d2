//! An image's files inside Berth: its layers' indexes (`crate::layers`) behind the same
//! decision as a pull of the image, listed a directory at a time or searched, a text file's
//! start, and the download route.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::api::layers::{
    FILES_PER_PAGE, FileListing, FileQuery, FileRow, FileText, LayerChoice, LayerData,
};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::LocalConsoleData;
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::console::session::caller;
use crate::imagestream::names::{repository, split_stream_image};
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES};
use crate::layers::{Entry, FileStream, LayerError, LayerIndex, Layers, MergedEntry, merged_view};
use crate::oci::Digest;
use crate::registry::image_metadata::ImageMetadata;

impl From<LayerError> for ConsoleError {
    fn from(err: LayerError) -> Self {
        match err {
            LayerError::Missing(_) => ConsoleError::NotFound(
                "this layer's bytes are not in Berth (an imported layer nobody has pulled yet)"
                    .into(),
            ),
            LayerError::NoEntry(_) => ConsoleError::NotFound(err.to_string()),
            LayerError::NotAFile { .. } | LayerError::Truncated(_) => {
                ConsoleError::Invalid(err.to_string())
            }
            LayerError::Storage(err) => err.into(),
        }
    }
}

/// An image's layers (base first), once `who` may pull it.
async fn image_layers(
    data: &LocalConsoleData,
    who: &Subject,
    namespace: &str,
    stream: &str,
    image: &str,
) -> ConsoleResult<Vec<LayerChoice>> {
    let name = format!("{stream}@{image}");
    // The API's decision (a pull of the stream) and not found.
    data.image_streams
        .get_stream_image(who, namespace, &name)
        .await?;
    let (_, digest) = split_stream_image(&name)?;
    let repository = repository(namespace, stream)?;
    let record = data
        .image_streams
        .store
        .image_in_repository(&repository, &digest)
        .await?
        .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, &name))?;
    Ok(ImageMetadata::of(&record)
        .layers
        .into_iter()
        .map(|layer| LayerChoice {
            digest: layer.digest,
            size: layer.size,
        })
        .collect())
}

/// The position and digest of `layer` among `layers`; not found when the image has no such
/// layer (whatever the blob store holds).
pub(crate) fn layer_of(layers: &[LayerChoice], layer: &str) -> ConsoleResult<(usize, Digest)> {
    let position = layers
        .iter()
        .position(|l| l.digest == layer)
        .ok_or_else(|| ConsoleError::NotFound(format!("this image has no layer {layer}")))?;
    let digest = layer
        .parse::<Digest>()
        .map_err(|_| ConsoleError::NotFound(format!("this image has no layer {layer}")))?;
    Ok((position, digest))
}

fn notes_of(index: &LayerIndex, position: Option<usize>) -> Vec<String> {
    let of = |text: String| match position {
        Some(at) => format!("Layer {}: {text}", at + 1),
        None => text,
    };
    let mut notes = Vec::new();
    if let Some(incomplete) = &index.incomplete {
        notes.push(of(incomplete.message()));
    }
    if index.omitted > 0 {
        notes.push(of(format!(
            "{} entries with a name longer or deeper than the bounds are not listed",
            index.omitted
        )));
    }
    notes
}

fn row_of_entry(entry: &Entry, at: usize, layer: usize, layer_digest: &str) -> FileRow {
    FileRow {
        entry: Some(at),
        name: base_name(&entry.path).to_string(),
        path: entry.path.clone(),
        stored_as: entry.stored_as.clone(),
        kind: entry.kind.as_str().to_string(),
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        owner: entry.user.clone(),
        size: entry.size,
        mtime: entry.mtime,
        link_target: entry.link_target.clone(),
        content_digest: entry.content_digest.clone(),
        layer,
        layer_digest: layer_digest.to_string(),
        truncated: entry.truncated,
    }
}

fn row_of_merged(merged: MergedEntry, index: &LayerIndex) -> FileRow {
    let entry = index.entries.get(merged.entry);
    FileRow {
        entry: Some(merged.entry),
        name: base_name(&merged.path).to_string(),
        stored_as: entry.and_then(|e| e.stored_as.clone()),
        owner: entry.and_then(|e| e.user.clone()),
        truncated: entry.is_some_and(|e| e.truncated),
        path: merged.path,
        kind: merged.kind.as_str().to_string(),
        mode: merged.mode,
        uid: merged.uid,
        gid: merged.gid,
        size: merged.size,
        mtime: merged.mtime,
        link_target: merged.link_target,
        content_digest: merged.content_digest,
        layer: merged.layer,
        layer_digest: merged.layer_digest,
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One page of `rows` as `query` asks: the children of `query.dir` (directories the layer has
/// no entry of appear from the paths under them), or every row whose path has `query.search`.
fn page_of(rows: Vec<FileRow>, query: &FileQuery) -> (usize, Vec<FileRow>) {
    let selected: Vec<FileRow> = if query.search.trim().is_empty() {
        let dir = query.dir.trim_matches('/');
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut children: BTreeMap<String, FileRow> = BTreeMap::new();
        for row in rows {
            let Some(rest) = row.path.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                None if !rest.is_empty() => {
                    children.insert(rest.to_string(), row);
                }
                Some((child, _)) => {
                    children
                        .entry(child.to_string())
                        .or_insert_with(|| FileRow {
                            entry: None,
                            path: format!("{prefix}{child}"),
                            name: child.to_string(),
                            stored_as: None,
                            kind: "dir".into(),
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            owner: None,
                            size: 0,
                            mtime: 0,
                            link_target: None,
                            content_digest: None,
                            layer: row.layer,
                            layer_digest: row.layer_digest.clone(),
                            truncated: false,
                        });
                }
                None => {}
            }
        }
        // Directories first, then the rest, each by name.
        let (mut dirs, files): (Vec<_>, Vec<_>) =
            children.into_values().partition(|row| row.kind == "dir");
        dirs.extend(files);
        dirs
    } else {
        let needle = query.search.trim().to_lowercase();
        rows.into_iter()
            .filter(|row| row.path.to_lowercase().contains(&needle))
            .collect()
    };
    let matched = selected.len();
    let page = selected
        .into_iter()
        .skip(query.offset)
        .take(FILES_PER_PAGE)
        .collect();
    (matched, page)
}

/// Which image a listing is of.
#[derive(Clone, Copy)]
pub(crate) struct ImageName<'a> {
    pub namespace: &'a str,
    pub stream: &'a str,
    pub image: &'a str,
}

impl ImageName<'_> {
    /// The page of `rows` that `query` asks, of all the rows of the image's files.
    fn listing(
        self,
        layers: Vec<LayerChoice>,
        rows: Vec<FileRow>,
        query: &FileQuery,
    ) -> FileListing {
        let total = rows.len();
        let (matched, rows) = page_of(rows, query);
        FileListing {
            namespace: self.namespace.into(),
            stream: self.stream.into(),
            image: self.image.into(),
            layer: None,
            layers,
            compression: None,
            total,
            matched,
            rows,
            notes: Vec::new(),
        }
    }
}

/// The entries of `layer` of an image whose layers are `layers` (the caller decided who may
/// see them), as `query` asks. Both console modes list through here.
pub(crate) async fn layer_listing(
    files: &Layers,
    of: ImageName<'_>,
    layers: Vec<LayerChoice>,
    layer: &str,
    query: FileQuery,
) -> ConsoleResult<FileListing> {
    let (position, digest) = layer_of(&layers, layer)?;
    let index = files.index(&digest).await?;
    let rows = index
        .entries
        .iter()
        .enumerate()
        .map(|(at, entry)| row_of_entry(entry, at, position, layer))
        .collect();
    Ok(FileListing {
        layer: Some((position, layer.into())),
        compression: Some(index.compression.as_str().into()),
        notes: notes_of(&index, None),
        ..of.listing(layers, rows, &query)
    })
}

/// The digests of an image's layers (base first), parsed.
pub(crate) fn layer_digests<'a>(
    digests: impl IntoIterator<Item = &'a str>,
) -> ConsoleResult<Vec<Digest>> {
    digests
        .into_iter()
        .map(str::parse::<Digest>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ConsoleError::Invalid("the image names a layer that is not a digest".into()))
}

/// The digests of layer choices.
pub(crate) fn digests_of(layers: &[LayerChoice]) -> impl Iterator<Item = &str> {
    layers.iter().map(|l| l.digest.as_str())
}

/// The merged view of an image whose layers are `digests` (base first), with each layer's
/// index.
pub(crate) async fn merged_with_indexes(
    files: &Layers,
    digests: &[Digest],
) -> ConsoleResult<(Vec<MergedEntry>, Vec<Arc<LayerIndex>>)> {
    let merged = merged_view(files, digests).await?;
    let mut indexes = Vec::with_capacity(digests.len());
    for digest in digests {
        indexes.push(files.index(digest).await?);
    }
    Ok((merged, indexes))
}

/// What the indexes of an image's layers say of themselves (one stopped early), each note
/// naming its layer.
pub(crate) fn layers_notes(indexes: &[Arc<LayerIndex>]) -> Vec<String> {
    indexes
        .iter()
        .enumerate()
        .flat_map(|(position, index)| notes_of(index, Some(position)))
        .collect()
}

/// The merged view of an image whose layers are `layers`, as `query` asks.
pub(crate) async fn merged_listing(
    files: &Layers,
    of: ImageName<'_>,
    layers: Vec<LayerChoice>,
    query: FileQuery,
) -> ConsoleResult<FileListing> {
    let digests = layer_digests(digests_of(&layers))?;
    let (merged, indexes) = merged_with_indexes(files, &digests).await?;
    let notes = layers_notes(&indexes);
    let rows = merged
        .into_iter()
        .filter_map(|m| {
            let index = indexes.get(m.layer)?.clone();
            Some(row_of_merged(m, &index))
        })
        .collect();
    Ok(FileListing {
        notes,
        ..of.listing(layers, rows, &query)
    })
}

/// The start of entry `entry` of layer `digest`, as text when it is.
pub(crate) async fn text_of(
    files: &Layers,
    digest: &Digest,
    entry: usize,
) -> ConsoleResult<FileText> {
    let max = files.limits().max_text_bytes;
    let read = files.read(digest, entry, max).await?;
    let index = files.index(digest).await?;
    let found = index.entries.get(entry).ok_or(LayerError::NoEntry(entry))?;
    Ok(FileText {
        path: found.path.clone(),
        size: found.size,
        text: as_text(&read.bytes, read.cut),
        cut: read.cut,
    })
}

#[async_trait]
impl LayerData for LocalConsoleData {
    async fn layer_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        let who = caller().await?;
        let layers = image_layers(self, &who, namespace, stream, image).await?;
        let of = ImageName {
            namespace,
            stream,
            image,
        };
        layer_listing(&self.layers, of, layers, layer, query).await
    }

    async fn image_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        let who = caller().await?;
        let layers = image_layers(self, &who, namespace, stream, image).await?;
        let of = ImageName {
            namespace,
            stream,
            image,
        };
        merged_listing(&self.layers, of, layers, query).await
    }

    async fn file_text(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        entry: usize,
    ) -> ConsoleResult<FileText> {
        let who = caller().await?;
        let layers = image_layers(self, &who, namespace, stream, image).await?;
        let (_, digest) = layer_of(&layers, layer)?;
        text_of(&self.layers, &digest, entry).await
    }
}

/// `bytes` as text when they are UTF-8 without NULs (a cut may split the last character).
fn as_text(bytes: &[u8], cut: bool) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.to_string()),
        Err(err) if cut && err.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    pub namespace: String,
    pub stream: String,
    pub image: String,
    pub layer: String,
    pub entry: usize,
}

/// `GET /console/api/layer-file`: a file of a layer as an attachment, never rendered by the
/// browser, behind the same decision as the listing.
pub async fn download(
    State(data): State<Arc<LocalConsoleData>>,
    caller: Caller,
    Query(query): Query<DownloadQuery>,
) -> Response {
    match download_file(&data, &caller.subject, &query).await {
        Ok(response) => response,
        Err(err) => crate::console::errors::plain_response(err),
    }
}

async fn download_file(
    data: &LocalConsoleData,
    who: &Subject,
    query: &DownloadQuery,
) -> ConsoleResult<Response> {
    let layers = image_layers(data, who, &query.namespace, &query.stream, &query.image).await?;
    let (_, digest) = layer_of(&layers, &query.layer)?;
    let file = data.layers.open(&digest, query.entry).await?;
    Ok(attachment(file))
}

/// A file of a layer as a download's answer (both console modes).
pub(crate) fn attachment(file: FileStream) -> Response {
    let name = attachment_name(base_name(&file.entry.path));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, file.entry.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        axum::body::Body::from_stream(file.body),
    )
        .into_response()
}

/// A file name safe inside a quoted header value: printable ASCII without quotes, backslashes
/// or path separators; anything else becomes `_`.
fn attachment_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '/' | ';' | '%') => c,
            _ => '_',
        })
        .collect();
    if safe.is_empty() { "file".into() } else { safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_stay_inside_their_quotes() {
        assert_eq!(attachment_name("a\"b\\c\r\nd"), "a_b_c__d");
        assert_eq!(attachment_name("caf\u{e9}.txt"), "caf_.txt");
        assert_eq!(attachment_name(""), "file");
    }

    #[test]
    fn text_is_utf8_without_nuls() {
        assert_eq!(as_text(b"hello", false).as_deref(), Some("hello"));
        assert_eq!(as_text(b"a\0b", false), None);
        assert_eq!(as_text(&[b'a', 0xc3], true).as_deref(), Some("a"));
        assert_eq!(as_text(&[b'a', 0xff], false), None);
    }
}
