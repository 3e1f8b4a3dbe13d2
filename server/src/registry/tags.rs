//! Tag listing (`GET /v2/<name>/tags/list`), paginated with `n` and `last` and a `Link` header.

use axum::http::request::Parts;
use axum::response::Response;

use super::error::{RegistryError, RegistryResult};
use super::pagination::{PageQuery, paginated};
use super::{Registry, query};
use crate::oci::RepositoryName;

/// A repository's tags, in order, paginated.
pub async fn list(
    registry: &Registry,
    name: &RepositoryName,
    request: &Parts,
) -> RegistryResult<Response> {
    let params: PageQuery = query(&request.uri)?;
    let page = params.n()?;
    if !registry.metadata.repository_exists(name).await? {
        return Err(RegistryError::NameUnknown(name.to_string()));
    }
    let tags = registry
        .metadata
        .list_tags(
            name,
            params.last.as_deref(),
            page.map_or(u32::MAX, |n| n.saturating_add(1)),
        )
        .await?;
    let repository = name.to_string();
    Ok(paginated(
        format!("/v2/{name}/tags/list"),
        tags,
        page,
        |tags| serde_json::json!({ "name": repository, "tags": tags }),
    ))
}
