//! The catalog (`GET /v2/_catalog`): the repositories the caller may pull, paginated with `n`
//! and `last` and a `Link` header.

use axum::http::request::Parts;
use axum::response::Response;

use super::access::{self, RegistryCaller};
use super::error::RegistryResult;
use super::pagination::{PageQuery, paginated};
use super::{Registry, query};
use crate::auth::Action;
use crate::oci::RepositoryName;

/// The catalog's page size when the client gives none, and the most it may ask for.
const CATALOG_DEFAULT_PAGE: u32 = 100;
const CATALOG_MAX_PAGE: u32 = 1000;

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
