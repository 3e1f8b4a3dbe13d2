//! Layer files in front of a cluster: on every request the image's manifest is read from the
//! cluster's registry with the signed-in user's token (the same decision as their pull), and
//! only a layer it lists is shown. The layer's bytes come from the registry with that token
//! into the console's bounded layer cache (`upstream::layer_cache`), once, and are listed,
//! merged and read by the same functions as inside Berth (`console::local::layers`).

use std::sync::Arc;

use app::api::layers::{FileListing, FileQuery, FileText, LayerChoice, LayerData};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::{StreamExt, TryStreamExt};

use super::UpstreamConsoleData;
use crate::console::local::layers::{
    DownloadQuery, ImageName, attachment, digests_of, layer_digests, layer_listing, layer_of,
    merged_listing, text_of,
};
use crate::console::session::session_value;
use crate::import::remote::{RemoteError, RemoteReference, RemoteRegistry};
use crate::oci::Digest;
use crate::registry::content;
use crate::registry::image_metadata::describe;
use crate::storage::{BoxError, IncomingStream};
use crate::upstream::SESSION_TOKEN;
use crate::upstream::layer_cache::HeldLayer;

/// The registry's refusal as the console shows it: a 401 or 403 of the registry is this
/// user's pull refused (their session stays: the API decides when it ends).
fn registry_answer(err: RemoteError) -> ConsoleError {
    match err {
        RemoteError::Unauthorized(message) => ConsoleError::Forbidden(message),
        RemoteError::NotFound(message) => ConsoleError::NotFound(message),
        RemoteError::InvalidReference(message) => ConsoleError::Invalid(message),
        other => ConsoleError::Unavailable(other.to_string()),
    }
}

/// An image of the cluster as the token's owner may pull it: its repository, the registry as
/// them, and its layers (base first) as its manifest lists them.
pub(super) struct Pullable {
    repository: String,
    registry: RemoteRegistry,
    pub(super) layers: Vec<LayerChoice>,
}

impl UpstreamConsoleData {
    pub(super) async fn pullable(
        &self,
        token: &str,
        namespace: &str,
        stream: &str,
        image: &str,
    ) -> ConsoleResult<Pullable> {
        let digest: Digest = image
            .parse()
            .map_err(|_| ConsoleError::NotFound(format!("{image:?} is not an image digest")))?;
        let repository = format!("{namespace}/{stream}");
        let reference =
            RemoteReference::parse(&format!("{}/{repository}@{digest}", self.api.registry_host))
                .map_err(|err| ConsoleError::Invalid(err.to_string()))?;
        let registry = self.api.registry(token);
        let manifest = registry
            .manifest(&reference)
            .await
            .map_err(registry_answer)?;
        let parsed =
            content::parse(manifest.content, manifest.content_type.as_deref()).map_err(|err| {
                ConsoleError::Unavailable(format!("the image's manifest cannot be read: {err}"))
            })?;
        let layers = describe(&parsed.document, None)
            .layers
            .into_iter()
            .map(|layer| LayerChoice {
                digest: layer.digest,
                size: layer.size,
            })
            .collect();
        Ok(Pullable {
            repository,
            registry,
            layers,
        })
    }

    /// Layer `digest` of `image` in the cache, fetched with the puller's token when it is not.
    async fn hold(&self, image: &Pullable, digest: &Digest, size: u64) -> ConsoleResult<HeldLayer> {
        self.files
            .hold(digest, size, || async {
                let response = image
                    .registry
                    .blob(&image.repository, digest)
                    .await
                    .map_err(registry_answer)?;
                let body: IncomingStream =
                    Box::pin(response.bytes_stream().map_err(BoxError::from));
                Ok(body)
            })
            .await
    }

    /// One layer of the image, held, with its position among the image's layers.
    async fn hold_layer(
        &self,
        image: &Pullable,
        layer: &str,
    ) -> ConsoleResult<(Digest, HeldLayer)> {
        let (position, digest) = layer_of(&image.layers, layer)?;
        let size = image.layers.get(position).map_or(0, |l| l.size);
        let held = self.hold(image, &digest, size).await?;
        Ok((digest, held))
    }

    /// Every layer of the image, held (while a view over all of them is built), base first.
    pub(super) async fn hold_all(&self, image: &Pullable) -> ConsoleResult<Vec<HeldLayer>> {
        let digests = layer_digests(digests_of(&image.layers))?;
        let mut held = Vec::with_capacity(digests.len());
        for (digest, layer) in digests.iter().zip(&image.layers) {
            held.push(self.hold(image, digest, layer.size).await?);
        }
        Ok(held)
    }

    async fn token(&self) -> ConsoleResult<String> {
        Ok(self.signed().await?.token)
    }
}

#[async_trait]
impl LayerData for UpstreamConsoleData {
    async fn layer_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        let token = self.token().await?;
        let pullable = self.pullable(&token, namespace, stream, image).await?;
        let (_, _held) = self.hold_layer(&pullable, layer).await?;
        let of = ImageName {
            namespace,
            stream,
            image,
        };
        layer_listing(self.files.layers(), of, pullable.layers, layer, query).await
    }

    async fn image_files(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        query: FileQuery,
    ) -> ConsoleResult<FileListing> {
        let token = self.token().await?;
        let pullable = self.pullable(&token, namespace, stream, image).await?;
        self.files
            .fits(pullable.layers.iter().map(|l| l.size).sum())?;
        let _held = self.hold_all(&pullable).await?;
        let of = ImageName {
            namespace,
            stream,
            image,
        };
        merged_listing(self.files.layers(), of, pullable.layers, query).await
    }

    async fn file_text(
        &self,
        namespace: &str,
        stream: &str,
        image: &str,
        layer: &str,
        entry: usize,
    ) -> ConsoleResult<FileText> {
        let token = self.token().await?;
        let pullable = self.pullable(&token, namespace, stream, image).await?;
        let (digest, _held) = self.hold_layer(&pullable, layer).await?;
        text_of(self.files.layers(), &digest, entry).await
    }
}

/// `GET /console/api/layer-file` in front of a cluster: as inside Berth, with the session's
/// token at the cluster deciding.
pub async fn download(
    State(data): State<Arc<UpstreamConsoleData>>,
    session: tower_sessions::Session,
    Query(query): Query<DownloadQuery>,
) -> Response {
    match download_file(&data, &session, &query).await {
        Ok(response) => response,
        Err(err) => crate::console::errors::plain_response(err),
    }
}

async fn download_file(
    data: &UpstreamConsoleData,
    session: &tower_sessions::Session,
    query: &DownloadQuery,
) -> ConsoleResult<Response> {
    let token = session_value(session, SESSION_TOKEN)
        .await?
        .ok_or(ConsoleError::SignInRequired)?;
    let pullable = data
        .pullable(&token, &query.namespace, &query.stream, &query.image)
        .await?;
    let (digest, held) = data.hold_layer(&pullable, &query.layer).await?;
    let mut file = data.files.layers().open(&digest, query.entry).await?;
    // The layer stays in the cache until the last byte is sent.
    file.body = Box::pin(file.body.map(move |chunk| {
        let _held = &held;
        chunk
    }));
    Ok(attachment(file))
}
