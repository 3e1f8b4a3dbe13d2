//! Tag listing and the catalog, both paginated with `n` and `last` and a `Link` header.

use axum::Json;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::access::{self, RegistryCaller};
use super::error::{RegistryError, RegistryResult};
use super::{Registry, query};
use crate::auth::Action;
use crate::oci::RepositoryName;

/// The catalog's page size when the client gives none, and the most it may ask for.
const CATALOG_DEFAULT_PAGE: u32 = 100;
const CATALOG_MAX_PAGE: u32 = 1000;

#[derive(Deserialize, Default)]
struct PageQuery {
    n: Option<String>,
    last: Option<String>,
}

impl PageQuery {
    fn n(&self) -> RegistryResult<Option<u32>> {
        self.n
            .as_deref()
            .map(|n| {
                n.parse::<u32>().map_err(|_| {
                    RegistryError::Unsupported(format!(
                        "n must be a non-negative integer, not {n:?}"
                    ))
                })
            })
            .transpose()
    }
}

/// Fetches one page plus one item to learn whether another page follows, and builds the
/// response with `Link: <…?n=N&last=L>; rel="next"` when it does.
fn paginated(
    path: String,
    mut items: Vec<String>,
    page: Option<u32>,
    body: impl FnOnce(Vec<String>) -> serde_json::Value,
) -> Response {
    let next = match page {
        Some(n) if items.len() > n as usize => {
            items.truncate(n as usize);
            items.last().map(|last| {
                let last = utf8_percent_encode(last, NON_ALPHANUMERIC);
                format!("<{path}?n={n}&last={last}>; rel=\"next\"")
            })
        }
        _ => None,
    };
    let mut response = Json(body(items)).into_response();
    if let Some(value) = next.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

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

/// The repositories the caller may pull, paginated.
pub async fn catalog(
    registry: &Registry,
    caller: &RegistryCaller,
    request: &Parts,
) -> RegistryResult<Response> {
    let params: PageQuery = query(&request.uri)?;
    let page = params
        .n()?
        .unwrap_or(CATALOG_DEFAULT_PAGE)
        .min(CATALOG_MAX_PAGE);
    let subject = caller.subject();
    let wanted = page as usize + 1;
    let batch = (page + 1).max(CATALOG_DEFAULT_PAGE);
    let mut visible = Vec::with_capacity(wanted);
    let mut after = params.last.clone();
    while visible.len() < wanted {
        let names = registry
            .metadata
            .list_repositories(after.as_deref(), batch)
            .await?;
        let exhausted = names.len() < batch as usize;
        after = names.last().cloned();
        visible.extend(
            names
                .into_iter()
                .filter(|name| {
                    name.parse::<RepositoryName>().is_ok_and(|name| {
                        access::allows(&registry.auth, true, &subject, &name, Action::Pull)
                    })
                })
                .take(wanted - visible.len()),
        );
        if exhausted {
            break;
        }
    }
    Ok(paginated(
        "/v2/_catalog".into(),
        visible,
        Some(page),
        |repositories| serde_json::json!({ "repositories": repositories }),
    ))
}
