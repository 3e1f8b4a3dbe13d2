//! Image diff in front of a cluster: the stream and each image (`ImageStreamImage`, an
//! index's platform images too) read from the cluster's API with the user's token, so the
//! cluster decides as for the image's page. Files are not compared here (layer files are not
//! read in front of a cluster yet).

use app::api::diff::{Comparison, DiffData, FileFilter, FilesDiff};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::images::{StreamImage, image_metadata};
use super::{Signed, UpstreamConsoleData, image_path};
use crate::console::diff::{ImageSource, compare};
use crate::oci::Digest;
use crate::registry::image_metadata::ImageMetadata;

/// Files are compared over the layers' indexes, which are not kept in front of a cluster (yet).
const FILES_NOT_IN_FRONT: &str = "Comparing files is not available in front of a cluster yet: the configuration and layers above are compared from the cluster's image metadata.";

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
        let object = self.stream_object(&signed, namespace, stream).await?;
        let images = ClusterImages {
            data: self,
            signed: &signed,
            namespace,
            stream,
        };
        compare(&images, namespace, stream, &object, (from, to, platform)).await
    }

    async fn compare_files(
        &self,
        _namespace: &str,
        _stream: &str,
        _refs: (&str, &str, &str),
        _filter: FileFilter,
    ) -> ConsoleResult<FilesDiff> {
        Err(ConsoleError::NotHere(FILES_NOT_IN_FRONT.into()))
    }
}
