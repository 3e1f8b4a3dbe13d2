//! Blob `GET`/`HEAD` (with single byte ranges, or a redirect to the blob store when it is set
//! to give one; a remote blob through pull-through) and `DELETE`.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::RegistryCaller;
use super::error::{RegistryError, RegistryResult};
use super::http::{DOCKER_CONTENT_DIGEST, RangeRequest, parse_range};
use super::{Pulled, Registry};
use crate::oci::Digest;
use crate::oci::RepositoryName;

pub async fn get(
    registry: &Registry,
    name: &RepositoryName,
    digest: &Digest,
    request: &Parts,
) -> RegistryResult<Response> {
    let range_header = request
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    // Only a link serves bytes; a remote link (an import's) is fetched and verified first, or,
    // for a GET of the whole blob, streamed to the pull that starts the fetch as it arrives.
    let size = match linked_size(registry, name, digest, &request.method).await? {
        Some(size) => size,
        None => match &registry.pull_through {
            Some(pull_through) if request.method == Method::GET && range_header.is_none() => {
                match pull_through.fetch_streaming(name, digest).await? {
                    Pulled::Stored(size) => size,
                    Pulled::Streaming { size, body } => {
                        let body = Body::from_stream(body);
                        return Ok(blob_response(StatusCode::OK, body, digest, 0, size, size));
                    }
                }
            }
            Some(pull_through) => pull_through.fetch(name, digest).await?,
            None => return Err(RegistryError::BlobUnknown(digest.clone())),
        },
    };
    if request.method == Method::GET
        && let Some(url) = registry.blobs.redirect_url(digest).await?
    {
        return Ok(redirect(&url, digest));
    }
    let (status, offset, len) = match parse_range(range_header, size) {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Partial(range) => (StatusCode::PARTIAL_CONTENT, range.start, range.length()),
        RangeRequest::Unsatisfiable => {
            return Err(RegistryError::RangeNotSatisfiable {
                range: range_header.unwrap_or_default().to_owned(),
                size,
            });
        }
    };
    let body = if request.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(registry.blobs.read(digest, offset, len).await?)
    };
    Ok(blob_response(status, body, digest, offset, len, size))
}

/// The size of a blob the repository links. A `HEAD` is how a pushing client learns that it
/// need not upload a blob: when garbage collection has the blob under review, it is claimed
/// first (a deletion in progress is waited out) and looked up again, so the client is never
/// told of a link that a review removes before its manifest arrives.
async fn linked_size(
    registry: &Registry,
    name: &RepositoryName,
    digest: &Digest,
    method: &Method,
) -> RegistryResult<Option<u64>> {
    let size = registry.metadata.blob_size(name, digest).await?;
    if size.is_none()
        || method != Method::HEAD
        || !registry.metadata.blob_under_review(digest).await?
    {
        return Ok(size);
    }
    registry.metadata.claim_blob(digest).await?;
    Ok(registry.metadata.blob_size(name, digest).await?)
}

/// `len` bytes of blob `digest` (of `size`) from `offset`, with the headers of a blob answer.
fn blob_response(
    status: StatusCode,
    body: Body,
    digest: &Digest,
    offset: u64,
    len: u64,
    size: u64,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&digest.to_string()) {
        headers.insert(DOCKER_CONTENT_DIGEST, value.clone());
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{digest}\"")) {
            headers.insert(header::ETAG, etag);
        }
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", offset, offset + len - 1))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    response
}

/// `307 Temporary Redirect` to where the store lets the client fetch the blob itself (a range
/// the client asks is answered there).
fn redirect(url: &str, digest: &Digest) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(value) = HeaderValue::from_str(&digest.to_string()) {
        headers.insert(DOCKER_CONTENT_DIGEST, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// Removes the blob from the repository. The content stays in the blob store while other
/// repositories link it; unreferenced content is for garbage collection.
pub async fn delete(
    registry: &Registry,
    caller: &RegistryCaller,
    name: &RepositoryName,
    digest: &Digest,
) -> RegistryResult<Response> {
    if registry.metadata.unlink_blob(name, digest).await? {
        super::manifests::audit_delete(registry, caller, "blob-delete", format!("{name}@{digest}"))
            .await;
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(RegistryError::BlobUnknown(digest.clone()))
    }
}
