//! Layer files in front of a cluster: not available yet (indexing the cluster registry's blobs
//! with the user's token, and keeping the indexes, is still to do), so every call says so.

use app::api::layers::{FileListing, FileQuery, FileText, LayerData};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::UpstreamConsoleData;

const NOT_IN_FRONT: &str = "Layer files are not available in front of a cluster yet: pull the image and look inside it with podman or skopeo.";

#[async_trait]
impl LayerData for UpstreamConsoleData {
    async fn layer_files(
        &self,
        _namespace: &str,
        _stream: &str,
        _image: &str,
        _layer: &str,
        _query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        Err(ConsoleError::NotHere(NOT_IN_FRONT.into()))
    }

    async fn image_files(
        &self,
        _namespace: &str,
        _stream: &str,
        _image: &str,
        _query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        Err(ConsoleError::NotHere(NOT_IN_FRONT.into()))
    }

    async fn file_text(
        &self,
        _namespace: &str,
        _stream: &str,
        _image: &str,
        _layer: &str,
        _entry: usize,
    ) -> ConsoleResult<FileText> {
        Err(ConsoleError::NotHere(NOT_IN_FRONT.into()))
    }
}
