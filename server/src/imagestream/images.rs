//! Images (cluster-scoped, by digest) and ImageStreamImages (`stream@digest`, an image as one
//! stream holds it), and how a stored image renders as OpenShift's `Image`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::model::*;
use super::names::{repository, split_stream_image};
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{Action, Subject, Target};
use crate::kube::{
    ApiError, ApiResult, IMAGE_STREAM_IMAGES, IMAGES, List, ListMeta, ListParams, ObjectMeta, Page,
    ok,
};
use crate::oci::Digest;
use crate::registry::image_metadata::ImageMetadata;
use crate::storage::ImageRecord;

/// A deterministic UID for a content-addressed image.
fn image_uid(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl ImageStreamApi {
    /// The `Image` of a stored image, `reference` its pull spec (empty where none applies, as
    /// for a cluster-scoped Image).
    pub fn image_object(&self, record: &ImageRecord, reference: String) -> Image {
        let metadata = ImageMetadata::of(record);
        let mut annotations = metadata.annotations.clone();
        if !metadata.layers.is_empty() {
            annotations.insert(LAYERS_ORDER_ANNOTATION.into(), "ascending".into());
        }
        let run = metadata.run.clone().unwrap_or_default();
        let docker = DockerImage {
            kind: "DockerImage".into(),
            api_version: "image.openshift.io/1.0".into(),
            id: metadata
                .config
                .clone()
                .unwrap_or_else(|| record.digest.to_string()),
            created: metadata.created.clone().unwrap_or_default(),
            container_config: serde_json::json!({}),
            author: metadata.author.clone().unwrap_or_default(),
            config: metadata.run.as_ref().map(|_| DockerConfig {
                user: run.user.unwrap_or_default(),
                exposed_ports: run.exposed_ports.unwrap_or_default(),
                env: run.env.unwrap_or_default(),
                cmd: run.cmd.unwrap_or_default(),
                volumes: run.volumes.unwrap_or_default(),
                working_dir: run.working_dir.unwrap_or_default(),
                entrypoint: run.entrypoint.unwrap_or_default(),
                labels: run.labels.unwrap_or_default(),
                stop_signal: run.stop_signal.unwrap_or_default(),
            }),
            architecture: metadata.architecture.clone().unwrap_or_default(),
            os: metadata.os.clone().unwrap_or_default(),
            variant: metadata.variant.clone().unwrap_or_default(),
            size: metadata.size,
            history: metadata
                .history
                .iter()
                .map(|h| DockerHistory {
                    created: h.created.clone().unwrap_or_default(),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    author: h.author.clone().unwrap_or_default(),
                    comment: h.comment.clone().unwrap_or_default(),
                    empty_layer: h.empty_layer,
                })
                .collect(),
        };
        Image {
            kind: kinds::image(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: record.digest.to_string(),
                uid: image_uid(&record.digest),
                creation_timestamp: Some(record.created_at),
                annotations,
                ..ObjectMeta::default()
            },
            docker_image_reference: reference,
            docker_image_metadata: Some(docker),
            docker_image_metadata_version: "1.0".into(),
            docker_image_manifest_media_type: record.media_type.clone(),
            docker_image_layers: metadata
                .layers
                .iter()
                .map(|l| ImageLayer {
                    name: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect(),
            docker_image_manifests: metadata
                .manifests
                .iter()
                .map(|m| ImageManifest {
                    digest: m.digest.clone(),
                    media_type: m.media_type.clone(),
                    manifest_size: m.size,
                    architecture: m.architecture.clone().unwrap_or_default(),
                    os: m.os.clone().unwrap_or_default(),
                    variant: m.variant.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }

    pub async fn get_stream_image(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImageStreamImage> {
        let (stream, digest) = split_stream_image(name)?;
        self.auth.authorizer.require(
            who,
            Action::Pull,
            Target::stream(namespace, &stream),
            IMAGE_STREAM_IMAGES,
            name,
        )?;
        let repository = repository(namespace, &stream)?;
        let image = self
            .store
            .image_in_repository(&repository, &digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_STREAM_IMAGES, name))?;
        let reference = format!("{}/{repository}@{digest}", self.registry_host);
        let record = self.store.get_stream(namespace, &stream).await?;
        Ok(ImageStreamImage {
            kind: "ImageStreamImage",
            api_version: IMAGE_API_VERSION,
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: Some(namespace.to_owned()),
                uid: image_uid(&digest),
                resource_version: record
                    .map(|r| r.resource_version.to_string())
                    .unwrap_or_default(),
                creation_timestamp: Some(image.created_at),
                ..ObjectMeta::default()
            },
            image: self.image_object(&image, reference),
        })
    }

    /// Images are cluster-scoped, as in OpenShift: reading them takes a registry-wide role.
    pub async fn get_image(&self, who: &Subject, name: &str) -> ApiResult<Image> {
        self.auth
            .authorizer
            .require(who, Action::Pull, Target::REGISTRY, IMAGES, name)?;
        let digest = name
            .parse::<Digest>()
            .map_err(|_| ApiError::not_found(IMAGES, name))?;
        let image = self
            .store
            .get_image(&digest)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGES, name))?;
        Ok(self.image_object(&image, String::new()))
    }

    pub async fn list_images(&self, who: &Subject, page: &Page) -> ApiResult<List<Image>> {
        const LIST: &str = "images";
        self.auth
            .authorizer
            .require(who, Action::Pull, Target::REGISTRY, IMAGES, "")?;
        let after = self.continue_tokens.start(page, LIST, &who.key())?;
        let version = self.list_version().await?;
        let records = self.store.list_images(after.as_deref(), page.limit).await?;
        let more = records.len() >= page.limit as usize;
        let last = records.last().map(|r| r.digest.to_string());
        Ok(List {
            kind: "ImageList",
            api_version: IMAGE_API_VERSION,
            metadata: ListMeta {
                resource_version: version,
                continue_token: self.next_token(more, LIST, who, last.as_deref()),
                ..ListMeta::default()
            },
            items: records
                .iter()
                .map(|r| self.image_object(r, String::new()))
                .collect(),
        })
    }
}

pub(super) async fn get_stream_image(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api
        .get_stream_image(&caller.subject, &namespace, &name)
        .await)
}

pub(super) async fn list_images(
    State(api): Api,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        api.list_images(&caller.subject, &params.page()?).await
    };
    ok(result.await)
}

pub(super) async fn get_image(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    ok(api.get_image(&caller.subject, &name).await)
}
