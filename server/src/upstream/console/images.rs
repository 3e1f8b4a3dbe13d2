//! Images in front of a cluster: the cluster's `ImageStreamImage` read as Berth reads an image
//! at push time, and the manifest, config and referrers from the cluster's registry, asked at
//! once.

use app::api::images::{ImageData, ImageDetail, ReferrerRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use serde::Deserialize;

use super::{Signed, UpstreamConsoleData, image_path};
use crate::console::views::{ImageParts, Images, image_detail, stored_json};
use crate::imagestream::model::Image;
use crate::import::remote::{
    ReferrerDescriptor, RemoteError, RemoteManifest, RemoteReference, RemoteResult,
};
use crate::oci::Digest;
use crate::registry::image_metadata::{ImageMetadata, MAX_CONFIG_BYTES};
use crate::upstream::UpstreamError;

#[derive(Debug, Deserialize)]
pub(super) struct StreamImage {
    pub(super) image: Image,
}

/// What is read of an image as the cluster describes it (the inverse of what Berth's API
/// renders from what it read at push time).
pub(super) fn image_metadata(image: &Image) -> ImageMetadata {
    use crate::registry::image_metadata::{ChildManifest, HistoryEntry, Layer, RunConfig};
    let docker = image.docker_image_metadata.clone().unwrap_or_default();
    let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let mut annotations = image.metadata.annotations.clone();
    annotations.remove(crate::imagestream::model::LAYERS_ORDER_ANNOTATION);
    ImageMetadata {
        config: some(&docker.id).filter(|id| *id != image.metadata.name),
        config_media_type: None,
        layers: image
            .docker_image_layers
            .iter()
            .map(|layer| Layer {
                digest: layer.name.clone(),
                media_type: layer.media_type.clone(),
                size: layer.size,
            })
            .collect(),
        size: docker.size,
        os: some(&docker.os),
        architecture: some(&docker.architecture),
        variant: some(&docker.variant),
        created: some(&docker.created),
        author: some(&docker.author),
        run: docker.config.map(|config| RunConfig {
            user: some(&config.user),
            exposed_ports: Some(config.exposed_ports).filter(|p| !p.is_empty()),
            env: Some(config.env).filter(|e| !e.is_empty()),
            entrypoint: Some(config.entrypoint).filter(|e| !e.is_empty()),
            cmd: Some(config.cmd).filter(|c| !c.is_empty()),
            volumes: Some(config.volumes).filter(|v| !v.is_empty()),
            working_dir: some(&config.working_dir),
            labels: Some(config.labels).filter(|l| !l.is_empty()),
            stop_signal: some(&config.stop_signal),
        }),
        annotations,
        history: docker
            .history
            .iter()
            .map(|h| HistoryEntry {
                created: some(&h.created),
                created_by: some(&h.created_by),
                author: some(&h.author),
                comment: some(&h.comment),
                empty_layer: h.empty_layer,
            })
            .collect(),
        manifests: image
            .docker_image_manifests
            .iter()
            .map(|m| ChildManifest {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                size: m.manifest_size,
                os: some(&m.os),
                architecture: some(&m.architecture),
                variant: some(&m.variant),
                annotations: Default::default(),
            })
            .collect(),
        artifact_type: None,
    }
}

impl UpstreamConsoleData {
    /// What the cluster's registry answered for an image's page; a registry that cannot answer
    /// leaves the metadata page standing, saying why.
    async fn registry_views(
        &self,
        signed: &Signed,
        manifest: RemoteResult<RemoteManifest>,
        config: Option<RemoteResult<bytes::Bytes>>,
        referrers: RemoteResult<Vec<ReferrerDescriptor>>,
    ) -> ConsoleResult<(String, Option<String>, Vec<ReferrerRow>)> {
        if let Err(RemoteError::Unauthorized(_)) = &manifest {
            return self.answer(signed, Err(UpstreamError::Unauthorized)).await;
        }
        let raw_manifest = match manifest {
            Ok(manifest) => stored_json(&manifest.content)
                .unwrap_or_else(|| String::from_utf8_lossy(&manifest.content).into_owned()),
            Err(err) => format!("(the cluster's registry could not be read: {err})"),
        };
        let raw_config = config
            .and_then(Result::ok)
            .and_then(|bytes| stored_json(&bytes));
        let referrers = referrers
            .unwrap_or_default()
            .into_iter()
            .map(|r| ReferrerRow {
                artifact_type: r.artifact_type.unwrap_or(r.media_type),
                digest: r.digest,
                size: r.size,
            })
            .collect();
        Ok((raw_manifest, raw_config, referrers))
    }
}

#[async_trait]
impl ImageData for UpstreamConsoleData {
    async fn image(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<ImageDetail> {
        let signed = self.signed().await?;
        let parsed: Digest = digest
            .parse()
            .map_err(|_| ConsoleError::NotFound(format!("{digest:?} is not an image digest")))?;
        let image_path = image_path(
            namespace,
            "imagestreamimages",
            Some(&format!("{stream}@{digest}")),
        );
        let repository = format!("{namespace}/{stream}");
        let reference =
            RemoteReference::parse(&format!("{}/{repository}@{digest}", self.api.registry_host))
                .map_err(|err| ConsoleError::Invalid(err.to_string()))?;
        let registry = self.api.registry(&signed.token);
        // The registry decides with the same token as the API, so every section is asked at
        // once; only the config waits, for the image's word on which blob it is.
        let image_and_config = async {
            let found = self.get::<StreamImage>(&signed, &image_path).await?;
            let image = image_metadata(&found.image);
            let config = match image
                .config
                .as_deref()
                .and_then(|c| c.parse::<Digest>().ok())
            {
                Some(config) => Some(
                    registry
                        .blob_bytes(&repository, &config, MAX_CONFIG_BYTES as usize)
                        .await,
                ),
                None => None,
            };
            Ok::<_, ConsoleError>((found, image, config))
        };
        let (image_and_config, object, manifest, referrers) = tokio::join!(
            image_and_config,
            self.stream_object(&signed, namespace, stream),
            registry.manifest(&reference),
            registry.referrers(&repository, &parsed),
        );
        let ((found, image, config), object) = (image_and_config?, object?);
        let (raw_manifest, raw_config, referrers) = self
            .registry_views(&signed, manifest, config, referrers)
            .await?;
        Ok(image_detail(ImageParts {
            namespace,
            stream,
            digest,
            media_type: found.image.docker_image_manifest_media_type.clone(),
            image: &image,
            images: &Images::default(),
            object: &object,
            referrers,
            raw_manifest,
            raw_config,
        }))
    }
}
