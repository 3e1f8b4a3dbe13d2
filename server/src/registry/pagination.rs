//! The Distribution API's pagination, for tag lists and the catalog: `n` and `last` in the
//! query, and a `Link` header to the next page.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::error::{RegistryError, RegistryResult};

#[derive(Deserialize, Default)]
pub(super) struct PageQuery {
    n: Option<String>,
    pub last: Option<String>,
}

impl PageQuery {
    pub fn n(&self) -> RegistryResult<Option<u32>> {
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
pub(super) fn paginated(
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
