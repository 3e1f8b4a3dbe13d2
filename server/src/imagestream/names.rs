//! The names of image stream resources: a stream's repository (`namespace/stream`), an
//! ImageStreamTag's `stream:tag` and an ImageStreamImage's `stream@digest`, parsed and checked.

use crate::kube::{ApiError, ApiResult, FieldError};
use crate::oci::{Digest, RepositoryName, Tag, is_valid_namespace};

pub(super) fn stream_name_error(name: &str) -> FieldError {
    FieldError::new(
        "metadata.name",
        format!(
            "{name:?} is not a valid image stream name: lowercase letters, digits and the separators ., _, __, - and /"
        ),
    )
}

/// The repository of stream `name` in `namespace`, or the error for a bad name.
pub fn repository(namespace: &str, name: &str) -> ApiResult<RepositoryName> {
    if !is_valid_namespace(namespace) {
        return Err(ApiError::BadRequest(format!(
            "namespace {namespace:?} is invalid: a namespace is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit"
        )));
    }
    RepositoryName::of_stream(namespace, name)
        .map_err(|_| ApiError::BadRequest(stream_name_error(name).message))
}

/// Splits `stream:tag`.
pub fn split_stream_tag(name: &str) -> ApiResult<(String, Tag)> {
    let bad = || {
        ApiError::BadRequest(format!(
            "{name:?} is not an image stream tag name: use <stream>:<tag>"
        ))
    };
    let (stream, tag) = name.rsplit_once(':').ok_or_else(bad)?;
    if stream.is_empty() {
        return Err(bad());
    }
    let tag = tag
        .parse::<Tag>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok((stream.to_owned(), tag))
}

/// Splits `stream@digest`.
pub fn split_stream_image(name: &str) -> ApiResult<(String, Digest)> {
    let (stream, digest) = name.split_once('@').ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name:?} is not an image stream image name: use <stream>@<digest>"
        ))
    })?;
    let digest = digest
        .parse::<Digest>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    Ok((stream.to_owned(), digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_tags_and_images() {
        let (stream, tag) = split_stream_tag("app:v1").unwrap();
        assert_eq!((stream.as_str(), tag.as_str()), ("app", "v1"));
        assert!(split_stream_tag("app").is_err());
        assert!(split_stream_tag(":v1").is_err());
        assert!(split_stream_tag("app:-bad").is_err());
        let digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        assert_eq!(
            split_stream_image(&format!("app@{digest}")).unwrap().0,
            "app"
        );
        assert!(split_stream_image("app@sha256:x").is_err());
        assert!(repository("Bad", "app").is_err());
        assert!(repository("ns", "Bad").is_err());
    }
}
