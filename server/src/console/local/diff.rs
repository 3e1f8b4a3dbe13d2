//! Image diff inside Berth: the stream and its images read through the image stream API, so
//! each is refused as a pull of it would be.

use app::api::ConsoleResult;
use app::api::diff::{Comparison, DiffData};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::Subject;
use crate::console::diff::{ImageSource, compare};
use crate::console::session::caller;
use crate::imagestream::names::repository;
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES};
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
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let images = StreamImages {
            data: self,
            who: &who,
            namespace,
            stream,
            repository: repository(namespace, stream)?,
        };
        compare(&images, namespace, stream, &object, (from, to, platform)).await
    }
}
