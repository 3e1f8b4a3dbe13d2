//! Image diff inside Berth: the stream and its images read through the image stream API, so
//! each is refused as a pull of it would be.

use app::api::ConsoleResult;
use app::api::diff::{Comparison, DiffData, FileFilter, FilesDiff};
use async_trait::async_trait;

use super::LocalConsoleData;
use super::layers::{layer_digests, layers_notes, merged_with_indexes};
use crate::auth::Subject;
use crate::console::diff::{ImageSource, compare, file_changes, files_page, pick};
use crate::console::session::caller;
use crate::imagestream::model::ImageStream;
use crate::imagestream::names::repository;
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES};
use crate::layers::{Layers, MergedEntry};
use crate::oci::{Digest, RepositoryName};
use crate::registry::image_metadata::ImageMetadata;

/// The images of one stream, as `who` may read them.
struct StreamImages<'a> {
    data: &'a LocalConsoleData,
    who: &'a Subject,
    namespace: &'a str,
    stream: &'a str,
    repository: RepositoryName,
}

#[async_trait]
impl ImageSource for StreamImages<'_> {
    async fn image(&self, digest: &Digest) -> ConsoleResult<ImageMetadata> {
        let name = format!("{}@{digest}", self.stream);
        // The API's decision (and not found), as on the image's page.
        self.data
            .image_streams
            .get_stream_image(self.who, self.namespace, &name)
            .await?;
        let record = self
            .data
            .image_streams
            .store
            .image_in_repository(&self.repository, digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, &name))?;
        Ok(ImageMetadata::of(&record))
    }
}

#[async_trait]
impl DiffData for LocalConsoleData {
    async fn compare(
        &self,
        namespace: &str,
        stream: &str,
        from: &str,
        to: &str,
        platform: &str,
    ) -> ConsoleResult<Comparison> {
        let who = caller().await?;
        let (object, images) = self.stream_images(&who, namespace, stream).await?;
        compare(&images, namespace, stream, &object, (from, to, platform)).await
    }

    async fn compare_files(
        &self,
        namespace: &str,
        stream: &str,
        refs: (&str, &str, &str),
        filter: FileFilter,
    ) -> ConsoleResult<FilesDiff> {
        let who = caller().await?;
        let (object, images) = self.stream_images(&who, namespace, stream).await?;
        let picked = pick(&images, namespace, stream, &object, refs).await?;
        let Some([(_, from), (_, to)]) = picked.sides else {
            return Ok(FilesDiff::default());
        };
        let digests = |image: &ImageMetadata| {
            layer_digests(image.layers.iter().map(|layer| layer.digest.as_str()))
        };
        let (from, to) = (digests(&from)?, digests(&to)?);
        files_compared(&self.layers, &from, &to, &filter).await
    }
}

impl LocalConsoleData {
    /// The stream, once `who` may pull it, and its images as `who` may read them.
    async fn stream_images<'a>(
        &'a self,
        who: &'a Subject,
        namespace: &'a str,
        stream: &'a str,
    ) -> ConsoleResult<(ImageStream, StreamImages<'a>)> {
        let object = self
            .image_streams
            .get_stream(who, namespace, stream)
            .await?;
        let images = StreamImages {
            data: self,
            who,
            namespace,
            stream,
            repository: repository(namespace, stream)?,
        };
        Ok((object, images))
    }
}

/// A page of the file changes between the merged views of two images (their layers' digests,
/// base first), with what their indexes say of themselves.
pub(crate) async fn files_compared(
    layers: &Layers,
    from: &[Digest],
    to: &[Digest],
    filter: &FileFilter,
) -> ConsoleResult<FilesDiff> {
    let (from, to) = tokio::try_join!(
        merged_with_notes(layers, from, "From"),
        merged_with_notes(layers, to, "To")
    )?;
    let notes = from.1.into_iter().chain(to.1).collect();
    Ok(files_page(file_changes(&from.0, &to.0), filter, notes))
}

/// An image's merged view over `layers` (its layers' digests, base first), and what their
/// indexes say of themselves, each note headed by `side`.
async fn merged_with_notes(
    layers: &Layers,
    digests: &[Digest],
    side: &str,
) -> ConsoleResult<(Vec<MergedEntry>, Vec<String>)> {
    let (view, indexes) = merged_with_indexes(layers, digests).await?;
    let notes = layers_notes(&indexes)
        .into_iter()
        .map(|note| format!("{side}: {note}"))
        .collect();
    Ok((view, notes))
}
