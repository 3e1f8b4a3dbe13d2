//! The referrers API: the manifests whose `subject` is a given digest, as an OCI image index,
//! optionally filtered by `artifactType`. It never answers 404: a repository or subject it does
//! not know has no referrers, so the answer is an empty index (OCI Distribution 1.1), once the
//! caller has been allowed to pull from the repository as for any read.

use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::RegistryResult;
use super::http::OCI_FILTERS_APPLIED;
use super::{Registry, query};
use crate::oci::Digest;
use crate::oci::OCI_INDEX;
use crate::oci::RepositoryName;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReferrersQuery {
    artifact_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerDescriptor {
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReferrersIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<ReferrerDescriptor>,
}

pub async fn list(
    registry: &Registry,
    name: &RepositoryName,
    subject: &Digest,
    request: &Parts,
) -> RegistryResult<Response> {
    let params: ReferrersQuery = query(&request.uri)?;
    let manifests = registry
        .metadata
        .referrers(name, subject)
        .await?
        .into_iter()
        .filter(|r| {
            params
                .artifact_type
                .as_ref()
                .is_none_or(|wanted| r.artifact_type.as_ref() == Some(wanted))
        })
        .map(|r| ReferrerDescriptor {
            media_type: r.media_type,
            digest: r.digest,
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect();
    let index = ReferrersIndex {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    };
    let mut response = axum::Json(index).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if params.artifact_type.is_some() {
        headers.insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
