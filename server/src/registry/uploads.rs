//! Blob uploads: monolithic (`POST ?digest=`), `POST` then `PUT`, chunked `PATCH`es with
//! `Content-Range`, status, cancel, and cross-repository mount.
//!
//! A session's size and running hash are saved in the metadata store after every chunk, so an
//! upload survives a restart and can continue on any replica. A failed request leaves the
//! session as it was before it: a chunk counts only once it is on disk and recorded.

use axum::body::{Body, HttpBody};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::access::RegistryCaller;
use super::error::{RegistryError, RegistryResult};
use super::http::{DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, parse_content_range, upload_range};
use super::{Registry, query};
use crate::auth::Action;
use crate::oci::RepositoryName;
use crate::oci::{Algorithm, Digest, DigestHasher};
use crate::storage::{IncomingStream, StorageError, UploadId, UploadSession};

#[derive(Deserialize, Default)]
struct StartQuery {
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
}

#[derive(Deserialize, Default)]
struct FinishQuery {
    digest: Option<String>,
}

fn parse_digest(text: &str) -> RegistryResult<Digest> {
    text.parse()
        .map_err(|err: crate::oci::DigestError| RegistryError::DigestInvalid(err.to_string()))
}

fn incoming(body: Body) -> IncomingStream {
    Box::pin(body.into_data_stream().map_err(|err| err.into()))
}

pub(super) fn upload_location(name: &RepositoryName, id: UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// `202 Accepted` describing an upload session in progress.
fn session_response(
    status: StatusCode,
    name: &RepositoryName,
    id: UploadId,
    size: u64,
) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    for (key, value) in [
        (header::LOCATION, upload_location(name, id)),
        (header::RANGE, upload_range(size)),
        (DOCKER_UPLOAD_UUID, id.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(key, value);
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// `201 Created` for a blob now in the repository.
fn created_response(name: &RepositoryName, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    for (key, value) in [
        (header::LOCATION, format!("/v2/{name}/blobs/{digest}")),
        (DOCKER_CONTENT_DIGEST, digest.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(key, value);
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn body_is_empty(body: &Body) -> bool {
    body.size_hint().exact() == Some(0)
}

fn mismatch(expected: &Digest, actual: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!(
        "the uploaded content has digest {actual}, not {expected}"
    ))
}

pub async fn start(
    registry: &Registry,
    caller: &RegistryCaller,
    name: &RepositoryName,
    request: &Parts,
    body: Body,
) -> RegistryResult<Response> {
    let params: StartQuery = query(&request.uri)?;
    if let Some(mount) = params.mount.as_deref() {
        let digest = parse_digest(mount)?;
        // A source that is absent, invalid, lacks the blob, or that the caller may not pull
        // gets an ordinary session (202), as the spec allows, and reveals nothing about it.
        if let Some(from) = params
            .from
            .as_deref()
            .and_then(|f| f.parse::<RepositoryName>().ok())
            && caller.allows(&registry.auth, true, &from, Action::Pull)
            && registry
                .metadata
                .mount_blob(&from, name, &digest)
                .await?
                .is_some()
        {
            return Ok(created_response(name, &digest));
        }
    } else if let Some(digest) = params.digest.as_deref() {
        let digest = parse_digest(digest)?;
        return monolithic(registry, name, digest, body).await;
    }
    let id = UploadId::new();
    let hasher = Algorithm::Sha256.hasher();
    registry
        .metadata
        .create_upload(&UploadSession {
            id,
            repository: name.clone(),
            size: 0,
            hash_algorithm: hasher.algorithm(),
            hash_state: hasher.save(),
            started_at: Utc::now(),
        })
        .await?;
    Ok(session_response(StatusCode::ACCEPTED, name, id, 0))
}

/// `POST ?digest=` with the whole blob as the body.
async fn monolithic(
    registry: &Registry,
    name: &RepositoryName,
    digest: Digest,
    body: Body,
) -> RegistryResult<Response> {
    let id = UploadId::new();
    let written = registry
        .blobs
        .write_upload(id, 0, incoming(body), digest.algorithm().hasher())
        .await;
    let outcome = async {
        let (size, hasher) = written?;
        let actual = hasher.finish();
        if actual != digest {
            return Err(mismatch(&digest, &actual));
        }
        registry.metadata.claim_blob(&digest).await?;
        registry.blobs.commit_upload(id, size, &digest).await?;
        registry.metadata.link_blob(name, &digest, size).await?;
        Ok(created_response(name, &digest))
    }
    .await;
    if outcome.is_err() {
        registry.blobs.delete_upload(id).await?;
    }
    outcome
}

async fn session(
    registry: &Registry,
    name: &RepositoryName,
    id: UploadId,
) -> RegistryResult<UploadSession> {
    registry
        .metadata
        .get_upload(name, id)
        .await?
        .ok_or_else(|| RegistryError::BlobUploadUnknown(id.to_string()))
}

fn restore_hasher(session: &UploadSession) -> RegistryResult<DigestHasher> {
    DigestHasher::restore(session.hash_algorithm, &session.hash_state, session.size)
        .map_err(|err| StorageError::Corrupt(err.to_string()).into())
}

/// Checks a chunk's `Content-Range` (and `Content-Length`) against the session. Returns the
/// declared length when there is one.
fn check_chunk(
    name: &RepositoryName,
    session: &UploadSession,
    request: &Parts,
) -> RegistryResult<Option<u64>> {
    let Some(value) = request.headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let (start, end) = parse_content_range(text).ok_or_else(|| {
        RegistryError::BlobUploadInvalid(format!(
            "Content-Range {text:?} is not of the form <start>-<end>"
        ))
    })?;
    if start != session.size {
        return Err(RegistryError::UploadOutOfOrder {
            start,
            size: session.size,
            location: upload_location(name, session.id),
        });
    }
    let declared = (end - start).checked_add(1).ok_or_else(|| {
        RegistryError::BlobUploadInvalid(format!("Content-Range {text:?} is out of range"))
    })?;
    let content_length = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = content_length
        && length != declared
    {
        return Err(RegistryError::SizeInvalid(format!(
            "Content-Length {length} does not match Content-Range {text} ({declared} bytes)"
        )));
    }
    Ok(Some(declared))
}

/// Appends the request body to the session without recording it. Returns the new size and hash.
async fn append(
    registry: &Registry,
    session: &UploadSession,
    declared: Option<u64>,
    body: Body,
) -> RegistryResult<(u64, DigestHasher)> {
    let (size, hasher) = registry
        .blobs
        .write_upload(
            session.id,
            session.size,
            incoming(body),
            restore_hasher(session)?,
        )
        .await?;
    if let Some(declared) = declared
        && size - session.size != declared
    {
        return Err(RegistryError::SizeInvalid(format!(
            "the chunk carried {} bytes but Content-Range announced {declared}",
            size - session.size
        )));
    }
    Ok((size, hasher))
}

pub async fn patch(
    registry: &Registry,
    name: &RepositoryName,
    id: UploadId,
    request: &Parts,
    body: Body,
) -> RegistryResult<Response> {
    registry
        .as_only_writer(name, id, async {
            let session = session(registry, name, id).await?;
            let declared = check_chunk(name, &session, request)?;
            let (size, hasher) = append(registry, &session, declared, body).await?;
            if !registry
                .metadata
                .advance_upload(id, session.size, size, &hasher.save())
                .await?
            {
                return Err(RegistryError::UploadOutOfOrder {
                    start: session.size,
                    size,
                    location: upload_location(name, id),
                });
            }
            Ok(session_response(StatusCode::ACCEPTED, name, id, size))
        })
        .await
}

pub async fn finish(
    registry: &Registry,
    name: &RepositoryName,
    id: UploadId,
    request: &Parts,
    body: Body,
) -> RegistryResult<Response> {
    let params: FinishQuery = query(&request.uri)?;
    let digest = parse_digest(params.digest.as_deref().ok_or_else(|| {
        RegistryError::DigestInvalid(
            "the digest query parameter is required to finish an upload".into(),
        )
    })?)?;
    registry
        .as_only_writer(name, id, async {
            let session = session(registry, name, id).await?;
            let (size, hasher) = if body_is_empty(&body) {
                (session.size, restore_hasher(&session)?)
            } else {
                let declared = check_chunk(name, &session, request)?;
                append(registry, &session, declared, body).await?
            };
            let actual = if hasher.algorithm() == digest.algorithm() {
                hasher.finish()
            } else {
                let mut rehash = digest.algorithm().hasher();
                let mut data = registry.blobs.read_upload(id, size).await?;
                while let Some(chunk) = data.next().await {
                    rehash.update(&chunk.map_err(StorageError::from)?);
                }
                rehash.finish()
            };
            if actual != digest {
                // The session stays where it was before this request.
                return Err(mismatch(&digest, &actual));
            }
            // Claimed first: no collection of the same digest deletes the bytes committed now.
            registry.metadata.claim_blob(&digest).await?;
            registry.blobs.commit_upload(id, size, &digest).await?;
            registry
                .metadata
                .finish_upload(&session, &digest, size)
                .await?;
            Ok(created_response(name, &digest))
        })
        .await
}

pub async fn status(
    registry: &Registry,
    name: &RepositoryName,
    id: UploadId,
) -> RegistryResult<Response> {
    let session = session(registry, name, id).await?;
    Ok(session_response(
        StatusCode::NO_CONTENT,
        name,
        id,
        session.size,
    ))
}

pub async fn cancel(
    registry: &Registry,
    name: &RepositoryName,
    id: UploadId,
) -> RegistryResult<Response> {
    registry
        .as_only_writer(name, id, async {
            session(registry, name, id).await?;
            registry.metadata.delete_upload(id).await?;
            registry.blobs.delete_upload(id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        })
        .await
}
