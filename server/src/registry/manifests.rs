//! Manifest `PUT`, `GET`/`HEAD` (with `Accept` negotiation) and `DELETE`, by tag or digest.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Registry;
use super::access::RegistryCaller;
use crate::auth::Action;

use super::content::{self, Document};
use super::error::{RegistryError, RegistryResult};
use super::http::{
    DOCKER_CONTENT_DIGEST, OCI_SUBJECT, accepted_media_types, accepts, content_type,
};
use super::image_metadata;
use crate::oci::Digest;
use crate::oci::ManifestKind;
use crate::oci::{Reference, RepositoryName};
use crate::storage::{PutManifestOutcome, StoredManifest};

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub async fn put(
    registry: &Registry,
    caller: &RegistryCaller,
    name: &RepositoryName,
    reference: &Reference,
    request: &Parts,
    body: Body,
) -> RegistryResult<Response> {
    let limit = registry.limits.max_manifest_bytes;
    let too_large = || RegistryError::ManifestTooLarge { limit };
    let declared_length = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let content = axum::body::to_bytes(body, limit).await.map_err(|err| {
        if std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            RegistryError::ManifestInvalid(format!("reading the manifest failed: {err}"))
        }
    })?;
    let content::ParsedManifest {
        mut manifest,
        document,
    } = content::parse(content, content_type(&request.headers).as_deref())?;
    let config = read_config(registry, name, &document).await?;
    manifest.image =
        serde_json::to_string(&image_metadata::describe(&document, config.as_deref())).ok();
    let tag = match reference {
        Reference::Tag(tag) => Some(tag),
        Reference::Digest(digest) => {
            // A manifest pushed by digest is addressed with that digest's algorithm.
            let actual = Digest::of(digest.algorithm(), &manifest.content);
            if &actual != digest {
                return Err(RegistryError::DigestInvalid(format!(
                    "the manifest's digest is {actual}, not {digest}"
                )));
            }
            manifest.digest = actual;
            None
        }
    };
    // The first push to a namespace makes it, its pusher its admin, atomically. Whoever was
    // let in because the namespace did not exist, and finds it made by someone else, is decided
    // again as for an existing namespace (a member pushes; anyone else is refused).
    let subject = caller.subject();
    let created = !registry.metadata.namespace_exists(name.namespace()).await?
        && registry
            .auth
            .claim_namespace(name.namespace(), &subject)
            .await?;
    if !created && !caller.allows(&registry.auth, true, name, Action::Push) {
        return Err(RegistryError::Denied(format!(
            "{} may not push {name}",
            subject.display_name()
        )));
    }
    manifest.pushed_by = Some(subject.display_name());
    match registry.metadata.put_manifest(name, &manifest, tag).await? {
        PutManifestOutcome::MissingReferences(missing) => {
            Err(RegistryError::ManifestBlobUnknown(missing))
        }
        PutManifestOutcome::WrongSizes(mismatched) => Err(RegistryError::ManifestInvalid(
            content::wrong_sizes(&mismatched),
        )),
        PutManifestOutcome::QuotaExceeded(refusal) => Err(RegistryError::QuotaExceeded(refusal)),
        PutManifestOutcome::Stored => {
            let mut response = StatusCode::CREATED.into_response();
            let digest = manifest.digest.to_string();
            set(
                &mut response,
                header::LOCATION,
                &format!("/v2/{name}/manifests/{digest}"),
            );
            set(&mut response, DOCKER_CONTENT_DIGEST, &digest);
            if let Some(subject) = &manifest.subject {
                set(&mut response, OCI_SUBJECT, &subject.to_string());
            }
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            Ok(response)
        }
    }
}

/// The config blob of an image manifest, when it is an image config in this repository.
async fn read_config(
    registry: &Registry,
    name: &RepositoryName,
    document: &Document,
) -> RegistryResult<Option<Vec<u8>>> {
    let Document::Image(manifest) = document else {
        return Ok(None);
    };
    if !image_metadata::wants_config(manifest) {
        return Ok(None);
    }
    let Ok(digest) = manifest.config().digest().to_string().parse::<Digest>() else {
        return Ok(None);
    };
    // A config missing from the repository fails the push when the manifest is stored; one
    // whose stored size is not the declared one is not read (it could be any blob).
    let Some(size) = registry.metadata.blob_size(name, &digest).await? else {
        return Ok(None);
    };
    if size != manifest.config().size() || size > image_metadata::MAX_CONFIG_BYTES {
        return Ok(None);
    }
    Ok(Some(
        crate::storage::read_blob(registry.blobs.as_ref(), &digest, size).await?,
    ))
}

/// Records a delete made through the registry in the audit log.
pub async fn audit_delete(
    registry: &Registry,
    caller: &RegistryCaller,
    action: &'static str,
    target: String,
) {
    registry
        .auth
        .audit(crate::storage::auth::NewAudit {
            actor: caller.subject().display_name(),
            action,
            target,
            success: true,
            address: None,
            detail: None,
        })
        .await;
}

async fn find(
    registry: &Registry,
    name: &RepositoryName,
    reference: &Reference,
) -> RegistryResult<StoredManifest> {
    let found = match reference {
        Reference::Tag(tag) => registry.metadata.manifest_by_tag(name, tag).await?,
        Reference::Digest(digest) => registry.metadata.manifest_by_digest(name, digest).await?,
    };
    found.ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))
}

/// For a client that cannot take an index (an old Docker client), the linux/amd64 image of it,
/// as distribution does.
async fn platform_fallback(
    registry: &Registry,
    name: &RepositoryName,
    index: &StoredManifest,
    accepted: &[String],
) -> RegistryResult<Option<StoredManifest>> {
    let Some(entry) = content::index_entries(&index.content)
        .into_iter()
        .find(|e| e.os == "linux" && e.architecture == "amd64" && accepts(accepted, &e.media_type))
    else {
        return Ok(None);
    };
    Ok(registry
        .metadata
        .manifest_by_digest(name, &entry.digest)
        .await?)
}

pub async fn get(
    registry: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    request: &Parts,
) -> RegistryResult<Response> {
    let mut manifest = find(registry, name, reference).await?;
    let accepted = accepted_media_types(&request.headers);
    if !accepts(&accepted, &manifest.media_type) {
        let fallback = match (crate::oci::kind_of(&manifest.media_type), reference) {
            (Some(ManifestKind::Index), Reference::Tag(_)) => {
                platform_fallback(registry, name, &manifest, &accepted).await?
            }
            _ => None,
        };
        manifest = fallback.ok_or_else(|| {
            RegistryError::ManifestUnknown(format!(
                "{reference} (it is a {}, which the request's Accept header does not include)",
                manifest.media_type
            ))
        })?;
    }
    let length = manifest.content.len();
    let body = if request.method == Method::HEAD {
        Body::empty()
    } else {
        // A GET is a pull (a HEAD only asks whether it changed).
        if let Some(pulls) = &registry.pulls {
            pulls.record(name, &manifest.digest);
        }
        Body::from(manifest.content)
    };
    let mut response = body.into_response();
    let digest = manifest.digest.to_string();
    set(&mut response, header::CONTENT_TYPE, &manifest.media_type);
    set(&mut response, DOCKER_CONTENT_DIGEST, &digest);
    set(&mut response, header::ETAG, &format!("\"{digest}\""));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

pub async fn delete(
    registry: &Registry,
    caller: &RegistryCaller,
    name: &RepositoryName,
    reference: &Reference,
) -> RegistryResult<Response> {
    let deleted = match reference {
        Reference::Tag(tag) => registry.metadata.delete_tag(name, tag).await?,
        Reference::Digest(digest) => registry.metadata.delete_manifest(name, digest).await?,
    };
    if deleted {
        audit_delete(
            registry,
            caller,
            "manifest-delete",
            format!("{name}:{reference}"),
        )
        .await;
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(RegistryError::ManifestUnknown(reference.to_string()))
    }
}
