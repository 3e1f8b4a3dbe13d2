//! The registry's errors and their one mapping to the OCI Distribution error format:
//! `{"errors":[{"code":…,"message":…,"detail":…}]}` with the spec's codes and statuses.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci_spec::distribution::ErrorCode;
use serde::Serialize;

use crate::oci::Digest;
use crate::storage::StorageError;
use crate::storage::quotas::QuotaRefusal;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob {0} is unknown to this repository")]
    BlobUnknown(Digest),
    #[error("{0}")]
    BlobUploadInvalid(String),
    #[error("upload session {0} is unknown (finished, cancelled or never started here)")]
    BlobUploadUnknown(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("the manifest refers to blobs or manifests not in this repository: {}", list(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest {0} is unknown to this repository")]
    ManifestUnknown(String),
    #[error("{0}")]
    NameInvalid(String),
    #[error("repository {0} is not known to this registry")]
    NameUnknown(String),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("the manifest is larger than the limit of {limit} bytes")]
    ManifestTooLarge { limit: usize },
    /// A chunk that does not start where the upload ends.
    #[error(
        "the chunk starts at byte {start} but the upload holds {size} bytes; resume at byte {size}"
    )]
    UploadOutOfOrder {
        start: u64,
        size: u64,
        location: String,
    },
    /// Another replica is writing to the upload.
    #[error(
        "another request is writing to this upload; ask its status (GET the Location) and resume from there"
    )]
    UploadBusy { location: String },
    #[error("range {range:?} is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { range: String, size: u64 },
    #[error("{0}")]
    Unsupported(String),
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("no registry endpoint at {0}")]
    NotFound(String),
    #[error("{message}")]
    Unauthorized { challenge: String, message: String },
    /// A valid registry token without the scope the request needs, which its holder may have:
    /// 403 `DENIED` with a challenge naming the scope and `error="insufficient_scope"`.
    #[error("{message}")]
    InsufficientScope { challenge: String, message: String },
    #[error("{0}")]
    Denied(String),
    /// A push that would exceed a quota or limit range of its namespace: `DENIED`, the message
    /// naming the quota, its limit and the usage, the detail all of it as JSON.
    #[error("{0}")]
    QuotaExceeded(QuotaRefusal),
    #[error("too many login attempts; try again in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    /// A pull-through fetch failed: the registry the blob was imported from did not give
    /// bytes of the right size and digest in time.
    #[error(
        "blob {0} could not be fetched from the registry it was imported from; try again later"
    )]
    BlobUnavailable(Digest),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A handler panicked (a bug: no input may cause one); the panic itself is logged.
    #[error("the request handler panicked")]
    Panicked,
}

fn list(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(Digest::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
struct ErrorBody {
    errors: [ErrorEntry; 1],
}

#[derive(Serialize)]
struct ErrorEntry {
    /// The spec's code as the spec spells it (serde's names: `TOOMANYREQUESTS`, where the
    /// type's `Display` would write `TOO_MANY_REQUESTS`), or `UNKNOWN` for our own failures.
    #[serde(serialize_with = "code_or_unknown")]
    code: Option<ErrorCode>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

/// The response code for failures that are ours, not the client's (distribution's `UNKNOWN`).
const UNKNOWN: &str = "UNKNOWN";

fn code_or_unknown<S: serde::Serializer>(
    code: &Option<ErrorCode>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match code {
        Some(code) => code.serialize(serializer),
        None => serializer.serialize_str(UNKNOWN),
    }
}

impl RegistryError {
    fn status_and_code(&self) -> (StatusCode, Option<ErrorCode>) {
        use RegistryError as E;
        match self {
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, Some(ErrorCode::BlobUnknown)),
            E::BlobUploadInvalid(_) => {
                (StatusCode::BAD_REQUEST, Some(ErrorCode::BlobUploadInvalid))
            }
            E::BlobUploadUnknown(_) => (StatusCode::NOT_FOUND, Some(ErrorCode::BlobUploadUnknown)),
            E::DigestInvalid(_) => (StatusCode::BAD_REQUEST, Some(ErrorCode::DigestInvalid)),
            E::ManifestBlobUnknown(_) => (
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::ManifestBlobUnknown),
            ),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, Some(ErrorCode::ManifestInvalid)),
            E::ManifestUnknown(_) => (StatusCode::NOT_FOUND, Some(ErrorCode::ManifestUnknown)),
            E::NameInvalid(_) => (StatusCode::BAD_REQUEST, Some(ErrorCode::NameInvalid)),
            E::NameUnknown(_) => (StatusCode::NOT_FOUND, Some(ErrorCode::NameUnknown)),
            E::SizeInvalid(_) => (StatusCode::BAD_REQUEST, Some(ErrorCode::SizeInvalid)),
            E::ManifestTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, Some(ErrorCode::SizeInvalid))
            }
            E::UploadOutOfOrder { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Some(ErrorCode::BlobUploadInvalid),
            ),
            E::UploadBusy { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Some(ErrorCode::BlobUploadInvalid),
            ),
            E::RangeNotSatisfiable { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Some(ErrorCode::SizeInvalid),
            ),
            E::Unsupported(_) => (StatusCode::BAD_REQUEST, Some(ErrorCode::Unsupported)),
            E::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, Some(ErrorCode::Unsupported))
            }
            E::NotFound(_) => (StatusCode::NOT_FOUND, Some(ErrorCode::Unsupported)),
            E::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, Some(ErrorCode::Unauthorized)),
            E::Denied(_) | E::QuotaExceeded(_) | E::InsufficientScope { .. } => {
                (StatusCode::FORBIDDEN, Some(ErrorCode::Denied))
            }
            E::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                Some(ErrorCode::TooManyRequests),
            ),
            E::BlobUnavailable(_) => (StatusCode::BAD_GATEWAY, None),
            E::Storage(StorageError::Incoming(_)) => {
                (StatusCode::BAD_REQUEST, Some(ErrorCode::BlobUploadInvalid))
            }
            E::Storage(StorageError::UploadDataMissing) => {
                (StatusCode::NOT_FOUND, Some(ErrorCode::BlobUploadUnknown))
            }
            // A tag immutability rule refused the push or delete: distribution's and Harbor's
            // answer to a change the registry's policy forbids.
            E::Storage(StorageError::TagImmutable(_)) => {
                (StatusCode::FORBIDDEN, Some(ErrorCode::Denied))
            }
            E::Storage(_) | E::Panicked => (StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }

    fn detail(&self) -> Option<serde_json::Value> {
        match self {
            RegistryError::BlobUnknown(digest) | RegistryError::BlobUnavailable(digest) => {
                Some(serde_json::json!({ "digest": digest }))
            }
            RegistryError::ManifestBlobUnknown(digests) => {
                Some(serde_json::json!({ "missing": digests }))
            }
            RegistryError::ManifestUnknown(reference) => {
                Some(serde_json::json!({ "reference": reference }))
            }
            RegistryError::Storage(StorageError::TagImmutable(refused)) => {
                Some(serde_json::json!({
                    "repository": format!("{}/{}", refused.namespace, refused.stream),
                    "tag": refused.tag,
                    "rule": refused.rule,
                }))
            }
            RegistryError::QuotaExceeded(refusal) => Some(refusal.detail()),
            _ => None,
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // A failed pull-through is the other registry's failure, and says nothing of ours.
        let message =
            if status.is_server_error() && !matches!(self, RegistryError::BlobUnavailable(_)) {
                // The client gets a stable message; the cause is logged once, here.
                tracing::error!(error = %self, "registry request failed");
                "internal error; the registry log has the cause".to_owned()
            } else {
                self.to_string()
            };
        let body = ErrorBody {
            errors: [ErrorEntry {
                code,
                message,
                detail: self.detail(),
            }],
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        let mut set = |name: HeaderName, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        match self {
            RegistryError::UploadOutOfOrder { size, location, .. } => {
                set(header::LOCATION, location);
                set(header::RANGE, super::http::upload_range(size));
            }
            RegistryError::UploadBusy { location } => {
                set(header::LOCATION, location);
            }
            RegistryError::RangeNotSatisfiable { size, .. } => {
                set(header::CONTENT_RANGE, format!("bytes */{size}"));
            }
            RegistryError::MethodNotAllowed { allow, .. } => {
                set(header::ALLOW, allow.to_owned());
            }
            RegistryError::Unauthorized { challenge, .. }
            | RegistryError::InsufficientScope { challenge, .. } => {
                set(header::WWW_AUTHENTICATE, challenge);
            }
            RegistryError::TooManyRequests { retry_after } => {
                set(header::RETRY_AFTER, retry_after.to_string());
            }
            _ => {}
        }
        response
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn code_of(err: RegistryError) -> (StatusCode, String) {
        let response = err.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            status,
            body["errors"][0]["code"].as_str().unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn codes_are_spelled_as_the_spec_spells_them() {
        assert_eq!(
            code_of(RegistryError::TooManyRequests { retry_after: 1 }).await,
            (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS".to_owned())
        );
        assert_eq!(
            code_of(RegistryError::ManifestUnknown("x".into())).await,
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".to_owned())
        );
        assert_eq!(
            code_of(RegistryError::Storage(StorageError::Corrupt("x".into()))).await,
            (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN".to_owned())
        );
    }

    #[tokio::test]
    async fn an_immutable_tag_is_denied_with_the_rule_named() {
        let refused = crate::storage::immutability::ImmutableTag {
            namespace: "team".into(),
            stream: "app".into(),
            tag: "v1".into(),
            rule: "releases".into(),
        };
        let response = RegistryError::Storage(refused.into()).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let error = &body["errors"][0];
        assert_eq!(error["code"], "DENIED");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("\"v1\"") && message.contains("\"releases\""),
            "{message}"
        );
        assert_eq!(
            error["detail"],
            serde_json::json!({"repository": "team/app", "tag": "v1", "rule": "releases"})
        );
    }
}
