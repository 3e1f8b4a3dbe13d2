//! Writes to a stream ([`StreamChange`](crate::storage::StreamChange)): the resourceVersion a
//! write expects, and what the store's refusal of a write says to the client.

use crate::kube::{ApiError, ApiResult, FieldError, IMAGE_STREAMS, Resource};
use crate::storage::StreamChangeError;

/// The resourceVersion a write expects (`metadata.resourceVersion`); `None` when not given.
pub(super) fn resource_version(
    text: &str,
    resource: Resource,
    name: &str,
) -> ApiResult<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ApiError::invalid(
            resource,
            name,
            FieldError::new(
                "metadata.resourceVersion",
                format!("{text:?} is not a resourceVersion"),
            ),
        )
    })
}

/// The client's error for a write the store refused.
pub(super) fn change_error(err: StreamChangeError, resource: Resource, name: &str) -> ApiError {
    match err {
        StreamChangeError::NotFound => ApiError::not_found(IMAGE_STREAMS, name),
        StreamChangeError::AlreadyExists => ApiError::AlreadyExists {
            resource,
            name: name.into(),
        },
        StreamChangeError::Conflict { .. } => ApiError::Conflict {
            resource,
            name: name.into(),
        },
        StreamChangeError::SourceMissing { repository, digest } => ApiError::invalid(
            resource,
            name,
            FieldError::new("tag.from", format!("image {digest} is not in {repository}")),
        ),
        // Kubernetes' admission answer: `imagestreams.image.openshift.io "web" is forbidden:
        // exceeded quota: ...`.
        StreamChangeError::QuotaExceeded(refusal) => ApiError::ForbiddenBy {
            resource,
            name: name.into(),
            why: refusal.api_message(),
        },
    }
}
