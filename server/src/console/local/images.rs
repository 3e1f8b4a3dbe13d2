//! Images inside Berth: one image of a stream as the API decides it may be seen, with what the
//! store holds of it (referrers, the manifest and config as stored).

use app::api::ConsoleResult;
use app::api::images::{ImageData, ImageDetail, ReferrerRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::{ImageParts, image_detail, stored_json};
use crate::imagestream::names::{repository, split_stream_image};
use crate::kube::{ApiError, IMAGE_STREAM_IMAGES};
use crate::oci::Digest;
use crate::registry::image_metadata::{ImageMetadata, MAX_CONFIG_BYTES};
use crate::storage::read_blob;

impl LocalConsoleData {
    /// The config of an image as stored, when it is a JSON document of a readable size in the
    /// repository.
    async fn raw_config(
        &self,
        repository: &crate::oci::RepositoryName,
        image: &ImageMetadata,
    ) -> ConsoleResult<Option<String>> {
        let Some(digest) = image
            .config
            .as_deref()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        match self.metadata.blob_size(repository, &digest).await? {
            Some(size) if size <= MAX_CONFIG_BYTES => {
                let bytes = read_blob(self.blobs.as_ref(), &digest, size).await?;
                Ok(stored_json(&bytes))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl ImageData for LocalConsoleData {
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail> {
        let who = caller().await?;
        let name = format!("{stream}@{digest}");
        // The API's decision (and not found), then what the page shows of the image.
        self.image_streams
            .get_stream_image(&who, namespace, &name)
            .await?;
        let (_, digest) = split_stream_image(&name)?;
        let repository = repository(namespace, stream)?;
        let record = self
            .image_streams
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, &name))?;
        let image = ImageMetadata::of(&record);
        let images = self.images(std::slice::from_ref(&digest)).await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let digest_text = digest.to_string();
        let listed = self.metadata.referrers(&repository, &digest).await?;
        // A referrer's size as its own page gives it (its config and layers), not the size of
        // its manifest that the referrers index lists.
        let referrer_images = self
            .images(&listed.iter().map(|r| r.digest.clone()).collect::<Vec<_>>())
            .await?;
        let referrers = listed
            .into_iter()
            .map(|r| {
                let digest = r.digest.to_string();
                ReferrerRow {
                    size: referrer_images.size(&digest).unwrap_or(r.size),
                    digest,
                    artifact_type: r.artifact_type.unwrap_or(r.media_type),
                }
            })
            .collect();
        let raw_manifest = self
            .metadata
            .manifest_by_digest(&repository, &digest)
            .await?
            .map(|m| {
                stored_json(&m.content)
                    .unwrap_or_else(|| String::from_utf8_lossy(&m.content).into_owned())
            })
            .unwrap_or_default();
        let raw_config = self.raw_config(&repository, &image).await?;
        Ok(image_detail(ImageParts {
            namespace,
            stream,
            digest: &digest_text,
            media_type: record.media_type,
            image: &image,
            images: &images,
            object: &object,
            referrers,
            raw_manifest,
            raw_config,
        }))
    }
}
