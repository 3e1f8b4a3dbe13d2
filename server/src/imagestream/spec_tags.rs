//! Spec tags: how one is checked and defaulted before it is stored, and where its `from`
//! points (an ImageStreamTag, an ImageStreamImage, or a DockerImage of this registry or
//! another), as streams, ImageStreamTags and imports write them.

use super::ImageStreamApi;
use super::model::TagReference;
use super::names::{repository, split_stream_image, split_stream_tag};
use crate::auth::{Action, Subject, Target};
use crate::kube::{ApiError, ApiResult, FieldError, IMAGE_STREAMS, Resource};
use crate::oci::{Digest, ManifestKind, RepositoryName};
use crate::registry::image_metadata::ImageMetadata;
use crate::storage::{ImageRecord, TagTarget};

const IMPORT_MODE_LEGACY: &str = "Legacy";
pub const IMPORT_MODE_PRESERVE: &str = "PreserveOriginal";
const REFERENCE_POLICY_SOURCE: &str = "Source";

/// The platform an index resolves to where one image must be chosen (`importMode: Legacy`).
const DEFAULT_OS: &str = "linux";
const DEFAULT_ARCHITECTURE: &str = "amd64";

fn parse_digest(text: &str) -> ApiResult<Digest> {
    text.parse()
        .map_err(|err: crate::oci::DigestError| ApiError::BadRequest(err.to_string()))
}

/// A spec tag as stored: validated, defaults filled, generation left to the store.
pub(super) fn normalize(
    mut tag: TagReference,
    name: &str,
    resource: Resource,
    object: &str,
) -> ApiResult<TagReference> {
    let invalid = |field: &str, message: String| {
        ApiError::invalid(resource, object, FieldError::new(field, message))
    };
    tag.name = name.to_owned();
    tag.generation = None;
    if let Some(from) = &tag.from
        && !matches!(
            from.kind.as_str(),
            "DockerImage" | "ImageStreamTag" | "ImageStreamImage"
        )
    {
        return Err(invalid(
            "tag.from.kind",
            format!(
                "{:?} is not one of DockerImage, ImageStreamTag, ImageStreamImage",
                from.kind
            ),
        ));
    }
    if let Some(from) = &tag.from
        && from.name.is_empty()
    {
        return Err(invalid("tag.from.name", "required".into()));
    }
    match tag.import_policy.import_mode.as_str() {
        "" => tag.import_policy.import_mode = IMPORT_MODE_LEGACY.into(),
        IMPORT_MODE_LEGACY | IMPORT_MODE_PRESERVE => {}
        other => {
            return Err(invalid(
                "tag.importPolicy.importMode",
                format!("{other:?} is not one of Legacy, PreserveOriginal"),
            ));
        }
    }
    match tag.reference_policy.policy_type.as_str() {
        "" => tag.reference_policy.policy_type = REFERENCE_POLICY_SOURCE.into(),
        "Source" | "Local" => {}
        other => {
            return Err(invalid(
                "tag.referencePolicy.type",
                format!("{other:?} is not one of Source, Local"),
            ));
        }
    }
    Ok(tag)
}

pub(super) fn stored_reference(tag: &TagReference) -> ApiResult<String> {
    serde_json::to_string(tag).map_err(|err| ApiError::BadRequest(err.to_string()))
}

impl ImageStreamApi {
    /// The image a spec tag names, or `None` when it names nothing (no `from`).
    pub(super) async fn resolve(
        &self,
        who: &Subject,
        namespace: &str,
        tag: &TagReference,
        resource: Resource,
        object: &str,
    ) -> ApiResult<Option<TagTarget>> {
        let Some(from) = &tag.from else {
            return Ok(None);
        };
        let invalid = |message: String| {
            ApiError::invalid(resource, object, FieldError::new("tag.from.name", message))
        };
        let source_namespace = if from.namespace.is_empty() {
            namespace
        } else {
            from.namespace.as_str()
        };
        match from.kind.as_str() {
            "ImageStreamTag" => {
                let (source, source_tag) =
                    split_stream_tag(&from.name).map_err(|err| invalid(err.to_string()))?;
                // Tagging from a stream needs the right to pull from it.
                self.auth.authorizer.require(
                    who,
                    Action::Pull,
                    Target::stream(source_namespace, &source),
                    IMAGE_STREAMS,
                    &source,
                )?;
                let record = self
                    .store
                    .get_stream(source_namespace, &source)
                    .await?
                    .ok_or_else(|| {
                        invalid(format!(
                            "image stream {source_namespace}/{source} not found"
                        ))
                    })?;
                let item = record
                    .status_tag(source_tag.as_str())
                    .and_then(|t| t.items.first())
                    .ok_or_else(|| {
                        invalid(format!(
                            "image stream tag {source_namespace}/{source}:{source_tag} has no image"
                        ))
                    })?;
                Ok(Some(match (&item.digest, &item.external_reference) {
                    (Some(digest), None) => TagTarget::Local {
                        source: repository(source_namespace, &source)?,
                        digest: digest.clone(),
                    },
                    (digest, Some(reference)) => TagTarget::External {
                        reference: reference.clone(),
                        digest: digest.clone(),
                    },
                    (None, None) => return Err(invalid(format!("{} has no image", from.name))),
                }))
            }
            "ImageStreamImage" => {
                let (source, digest) =
                    split_stream_image(&from.name).map_err(|err| invalid(err.to_string()))?;
                let source = repository(source_namespace, &source)?;
                self.auth.authorizer.require(
                    who,
                    Action::Pull,
                    Target::stream(source.namespace(), source.stream()),
                    IMAGE_STREAMS,
                    source.stream(),
                )?;
                if self
                    .store
                    .image_in_repository(&source, &digest)
                    .await?
                    .is_none()
                {
                    return Err(invalid(format!("image {digest} is not in {source}")));
                }
                Ok(Some(TagTarget::Local { source, digest }))
            }
            _ => self
                .resolve_docker_image(who, &from.name, tag, &invalid)
                .await
                .map(Some),
        }
    }

    /// A `DockerImage` reference: an image of this registry resolves locally (choosing one
    /// platform of an index under `importMode: Legacy`); any other is kept by reference.
    async fn resolve_docker_image(
        &self,
        who: &Subject,
        reference: &str,
        tag: &TagReference,
        invalid: &(dyn Fn(String) -> ApiError + Sync),
    ) -> ApiResult<TagTarget> {
        let external = || TagTarget::External {
            reference: reference.to_owned(),
            digest: reference
                .rsplit_once('@')
                .and_then(|(_, digest)| digest.parse().ok()),
        };
        let Some(path) = reference
            .strip_prefix(&self.registry_host)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Ok(external());
        };
        let (name, image) = if let Some((name, digest)) = path.split_once('@') {
            let repository = name
                .parse::<RepositoryName>()
                .map_err(|err| invalid(err.to_string()))?;
            let digest = parse_digest(digest)?;
            let image = self.store.image_in_repository(&repository, &digest).await?;
            (repository, image)
        } else {
            let (name, tag_name) = path.rsplit_once(':').unwrap_or((path, "latest"));
            let repository = name
                .parse::<RepositoryName>()
                .map_err(|err| invalid(err.to_string()))?;
            let current = self
                .store
                .get_stream(repository.namespace(), repository.stream())
                .await?
                .and_then(|s| {
                    s.status_tag(tag_name)
                        .and_then(|t| t.items.first().cloned())
                });
            let image = match current.and_then(|item| item.digest) {
                Some(digest) => self.store.image_in_repository(&repository, &digest).await?,
                None => None,
            };
            (repository, image)
        };
        self.auth.authorizer.require(
            who,
            Action::Pull,
            Target::stream(name.namespace(), name.stream()),
            IMAGE_STREAMS,
            name.stream(),
        )?;
        let image = image.ok_or_else(|| invalid(format!("{reference} is not in this registry")))?;
        let mut digest = image.digest.clone();
        if tag.import_policy.import_mode != IMPORT_MODE_PRESERVE
            && crate::oci::kind_of(&image.media_type) == Some(ManifestKind::Index)
        {
            digest = self.legacy_platform(&image).unwrap_or(digest);
        }
        Ok(TagTarget::Local {
            source: name,
            digest,
        })
    }

    /// The child of an index that `importMode: Legacy` keeps: linux/amd64, else the first.
    fn legacy_platform(&self, index: &ImageRecord) -> Option<Digest> {
        let metadata: ImageMetadata = serde_json::from_str(index.image.as_deref()?).ok()?;
        let chosen = metadata
            .manifests
            .iter()
            .find(|m| {
                m.os.as_deref() == Some(DEFAULT_OS)
                    && m.architecture.as_deref() == Some(DEFAULT_ARCHITECTURE)
            })
            .or_else(|| metadata.manifests.first())?;
        chosen.digest.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{IMAGE_STREAM_TAGS, ObjectReference};

    #[test]
    fn spec_tags_are_validated_and_defaulted() {
        let tag = normalize(TagReference::default(), "v1", IMAGE_STREAM_TAGS, "s:v1").unwrap();
        assert_eq!(tag.import_policy.import_mode, "Legacy");
        assert_eq!(tag.reference_policy.policy_type, "Source");
        let bad = TagReference {
            from: Some(ObjectReference {
                kind: "Pod".into(),
                name: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(normalize(bad, "v1", IMAGE_STREAM_TAGS, "s:v1").is_err());
        let mut bad = TagReference::default();
        bad.import_policy.import_mode = "Whatever".into();
        assert!(normalize(bad, "v1", IMAGE_STREAM_TAGS, "s:v1").is_err());
    }
}
