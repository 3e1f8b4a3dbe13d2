//! Image diff in front of a cluster: the stream and each image (`ImageStreamImage`, an
//! index's platform images too) read from the cluster's API with the user's token, so the
//! cluster decides as for the image's page. Files are compared over the merged views of the
//! two images' layers, read from the cluster's registry with that token into the console's
//! layer cache, as the file views read them (`layers.rs`), and compared as inside Berth.

use std::collections::HashMap;

use app::api::ConsoleResult;
use app::api::diff::{Comparison, DiffData, FileFilter, FilesDiff};
use async_trait::async_trait;

use super::images::{StreamImage, image_metadata};
use super::{Signed, UpstreamConsoleData, image_path};
use crate::console::diff::{ImageSource, compare, pick};
use crate::console::local::diff::files_compared;
use crate::console::local::layers::{digests_of, layer_digests};
use crate::imagestream::model::ImageStream;
use crate::oci::Digest;
use crate::registry::image_metadata::ImageMetadata;

/// The images of one stream, as the cluster lets the signed-in user read them.
struct ClusterImages<'a> {
    data: &'a UpstreamConsoleData,
    signed: &'a Signed,
    namespace: &'a str,
    stream: &'a str,
}

#[async_trait]
impl ImageSource for ClusterImages<'_> {
    async fn image(&self, digest: &Digest) -> ConsoleResult<ImageMetadata> {
        let path = image_path(
            self.namespace,
            "imagestreamimages",
            Some(&format!("{}@{digest}", self.stream)),
        );
        let found: StreamImage = self.data.get(self.signed, &path).await?;
        Ok(image_metadata(&found.image))
    }
}

#[async_trait]
impl DiffData for UpstreamConsoleData {
    async fn compare(
        &self,
        namespace: &str,
        stream: &str,
        from: &str,
        to: &str,
        platform: &str,
    ) -> ConsoleResult<Comparison> {
        let signed = self.signed().await?;
        let (object, images) = self.stream_images(&signed, namespace, stream).await?;
        compare(&images, namespace, stream, &object, (from, to, platform)).await
    }

    async fn compare_files(
        &self,
        namespace: &str,
        stream: &str,
        refs: (&str, &str, &str),
        filter: FileFilter,
    ) -> ConsoleResult<FilesDiff> {
        let signed = self.signed().await?;
        let (object, images) = self.stream_images(&signed, namespace, stream).await?;
        let picked = pick(&images, namespace, stream, &object, refs).await?;
        let Some([(from, _), (to, _)]) = picked.sides else {
            return Ok(FilesDiff::default());
        };
        // The compared images (an index's platform image) as the registry lets this user pull
        // them, and every layer of both held while the views are built.
        let (from, to) = tokio::try_join!(
            self.pullable(&signed.token, namespace, stream, &from.compared),
            self.pullable(&signed.token, namespace, stream, &to.compared),
        )?;
        let sizes: HashMap<&str, u64> = from
            .layers
            .iter()
            .chain(&to.layers)
            .map(|layer| (layer.digest.as_str(), layer.size))
            .collect();
        self.files.fits(sizes.values().sum())?;
        let _held = (self.hold_all(&from).await?, self.hold_all(&to).await?);
        let (from, to) = (
            layer_digests(digests_of(&from.layers))?,
            layer_digests(digests_of(&to.layers))?,
        );
        files_compared(self.files.layers(), &from, &to, &filter).await
    }
}

impl UpstreamConsoleData {
    /// The stream as the cluster lets the signed-in user read it, and its images.
    async fn stream_images<'a>(
        &'a self,
        signed: &'a Signed,
        namespace: &'a str,
        stream: &'a str,
    ) -> ConsoleResult<(ImageStream, ClusterImages<'a>)> {
        let object = self.stream_object(signed, namespace, stream).await?;
        let images = ClusterImages {
            data: self,
            signed,
            namespace,
            stream,
        };
        Ok((object, images))
    }
}
