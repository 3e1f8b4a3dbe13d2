//! What the console's forms become: the API bodies built from them (`oc tag`'s source and body,
//! a namespace, an image stream import) and an import's answer as one outcome per tag. Both
//! modes send the same bodies.

use app::api::imports::{ImportOutcome, ImportRequest};
use app::api::{ConsoleError, ConsoleResult};

use crate::imagestream::model::{
    ImageLookupPolicy, ImageStreamImport, ImageStreamImportSpec, ImageStreamTag, TagImportPolicy,
    TagReference, kinds,
};
use crate::kube::{
    ApiError, Namespace, NamespaceSpec, NamespaceStatus, ObjectMeta, ObjectReference,
};
use crate::oci::Digest;

/// Where `oc tag` takes an image from: `other:tag`, `stream@sha256:…`, or a bare digest (an
/// image of this stream, as a rollback names it).
pub(crate) fn tag_source(stream: &str, from: &str) -> Result<ObjectReference, ApiError> {
    let from = from.trim();
    let (kind, name) = if from.contains('@') {
        ("ImageStreamImage", from.to_owned())
    } else if from.parse::<Digest>().is_ok() {
        ("ImageStreamImage", format!("{stream}@{from}"))
    } else if from.contains(':') {
        ("ImageStreamTag", from.to_owned())
    } else if !from.is_empty() {
        ("ImageStreamTag", format!("{stream}:{from}"))
    } else {
        return Err(ApiError::BadRequest(
            "say which image to tag: a tag of this stream, <stream>:<tag>, <stream>@<digest> or a digest".into(),
        ));
    };
    Ok(ObjectReference {
        kind: kind.into(),
        namespace: String::new(),
        name,
    })
}

/// As `oc tag` does without --alias: a tag made from another tag takes that tag's current
/// image (`current`), and stays there when the source moves on.
pub(crate) fn pin_to_image(
    stream: &str,
    source: ObjectReference,
    current: Option<crate::imagestream::model::Image>,
) -> ConsoleResult<ObjectReference> {
    let (source_stream, _) = source.name.split_once(':').unwrap_or((stream, ""));
    let image = current
        .map(|image| image.metadata.name)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ConsoleError::Invalid(format!("{} has no image yet", source.name)))?;
    Ok(ObjectReference {
        kind: "ImageStreamImage".into(),
        namespace: String::new(),
        name: format!("{source_stream}@{image}"),
    })
}

/// `oc tag`'s body: the tag takes its image from `source`.
pub(crate) fn tag_body(source: ObjectReference) -> ImageStreamTag {
    ImageStreamTag {
        kind: kinds::image_stream_tag(),
        api_version: kinds::image_api(),
        metadata: ObjectMeta::default(),
        tag: Some(TagReference {
            from: Some(source),
            ..TagReference::default()
        }),
        generation: 0,
        lookup_policy: ImageLookupPolicy::default(),
        conditions: Vec::new(),
        image: None,
    }
}

pub(crate) fn namespace_body(name: &str) -> Namespace {
    Namespace {
        kind: crate::kube::kinds::namespace(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: name.trim().to_owned(),
            ..ObjectMeta::default()
        },
        spec: NamespaceSpec::default(),
        status: NamespaceStatus::default(),
    }
}

/// The `ImageStreamImport` the import dialog asks for.
pub(crate) fn import_body(request: &ImportRequest) -> ImageStreamImport {
    let tag = request.tag.trim();
    let spec = ImageStreamImportSpec::new(
        &request.from,
        (!tag.is_empty()).then_some(tag),
        request.all_tags,
        TagImportPolicy {
            insecure: request.insecure,
            scheduled: request.scheduled,
            import_mode: String::new(),
        },
        request.local,
        true,
    );
    ImageStreamImport::new(request.stream.trim(), spec)
}

/// An import's answer as one outcome per tag; a repository that could not be read at all is
/// the error.
pub(crate) fn import_outcomes(answer: ImageStreamImport) -> ConsoleResult<Vec<ImportOutcome>> {
    if let Some(repository) = &answer.status.repository
        && repository.status.status != "Success"
    {
        return Err(ConsoleError::Invalid(repository.status.message.clone()));
    }
    let images = answer.status.images.into_iter().chain(
        answer
            .status
            .repository
            .into_iter()
            .flat_map(|repository| repository.images),
    );
    Ok(images
        .map(|image| {
            let failed = image.status.status != "Success";
            ImportOutcome {
                tag: image.tag,
                digest: image.image.map(|i| i.metadata.name),
                error: failed
                    .then(|| format!("{} ({})", image.status.message, image.status.reason)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oc_tag_sources() {
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let source = |from: &str| tag_source("app", from).map(|r| (r.kind, r.name));
        assert_eq!(
            source("other:v1").unwrap(),
            ("ImageStreamTag".into(), "other:v1".into())
        );
        assert_eq!(
            source(&format!("other@{digest}")).unwrap(),
            ("ImageStreamImage".into(), format!("other@{digest}"))
        );
        assert_eq!(
            source(digest).unwrap(),
            ("ImageStreamImage".into(), format!("app@{digest}"))
        );
        // A bare name is a tag of this stream, as `oc tag latest stable` reads it.
        assert_eq!(
            source("latest").unwrap(),
            ("ImageStreamTag".into(), "app:latest".into())
        );
        assert!(source("  ").is_err());
    }
}
