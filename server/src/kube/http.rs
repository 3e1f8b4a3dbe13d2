//! The HTTP side of every Kubernetes-style API: JSON bodies whose errors answer as a `Status`,
//! list and watch query parameters, the one way an answer is written, watch streams, and the
//! `Status` 404 for paths no API serves.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use super::fields::{FieldValidation, Warnings, decode};
use super::meta::WatchEvent;
use super::paging::Page;

/// The largest request body the API reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A JSON body whose errors answer as a `Status`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let protobuf = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(super::protobuf::PROTOBUF));
        let validation = FieldValidation::of_query(request.uri().query())?;
        let warnings = request.extensions().get::<Warnings>().cloned();
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|err| {
                ApiError::BadRequest(format!("reading the request body failed: {err}"))
            })?;
        let invalid = |err: serde_json::Error| {
            ApiError::BadRequest(format!("the request body is not a valid object: {err}"))
        };
        if protobuf {
            return serde_json::from_value(super::protobuf::to_json(&bytes)?)
                .map(ApiJson)
                .map_err(invalid);
        }
        // Read as JSON first, then as `T` under the request's field validation. Protobuf
        // bodies above are built-in kinds of which Berth keeps only some fields: not checked.
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        decode(body.clone(), validation, warnings.as_ref())
            .map(ApiJson)
            .map_err(|err| err.of_body(&body))
    }
}

/// The query parameters of list and watch requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub limit: Option<u32>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    pub watch: Option<String>,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub allow_watch_bookmarks: Option<String>,
}

/// A request's query string as `T`; one that does not parse answers as a `Status` 400.
pub fn parse_query<T: DeserializeOwned>(query: Option<&str>) -> ApiResult<T> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|err| ApiError::BadRequest(format!("invalid query: {err}")))
}

/// The query string as `T`, an extractor ([`parse_query`]'s `Status` 400 when it does not
/// parse); the last of a handler's arguments, so that a caller is authenticated first.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query()).map(ApiQuery)
    }
}

impl ListParams {
    pub fn parse(query: Option<String>) -> ApiResult<Self> {
        let params: ListParams = parse_query(query.as_deref())?;
        // Answering a filtered list with an unfiltered one would mislead.
        if params
            .label_selector
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::BadRequest(
                "labelSelector is not supported yet; list without it and filter on metadata.labels"
                    .into(),
            ));
        }
        Ok(params)
    }

    pub fn page(&self) -> ApiResult<Page> {
        Page::parse(self.limit, self.continue_token.as_deref())
    }

    pub fn watching(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }

    /// Whether a watch may carry `BOOKMARK` events (`allowWatchBookmarks=true`).
    pub fn bookmarks(&self) -> bool {
        matches!(self.allow_watch_bookmarks.as_deref(), Some("true" | "1"))
    }

    /// The name asked for with `fieldSelector=metadata.name=NAME`.
    pub fn name(&self) -> ApiResult<Option<String>> {
        match self.field_selector.as_deref() {
            None | Some("") => Ok(None),
            Some(selector) => selector
                .strip_prefix("metadata.name=")
                .map(|name| Some(name.to_owned()))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "field selector {selector:?} is not supported; use metadata.name=NAME"
                    ))
                }),
        }
    }

    /// Where a watch starts: `None` to begin with the current objects.
    pub fn since(&self) -> ApiResult<Option<i64>> {
        match self.resource_version.as_deref() {
            None | Some("") | Some("0") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("resourceVersion {text:?} is not a number"))
            }),
        }
    }
}

pub fn json<T: serde::Serialize>(status: StatusCode, value: T) -> Response {
    (status, axum::Json(value)).into_response()
}

pub fn ok<T: serde::Serialize>(result: ApiResult<T>) -> Response {
    match result {
        Ok(value) => json(StatusCode::OK, value),
        Err(err) => err.into_response(),
    }
}

pub fn created<T: serde::Serialize>(result: ApiResult<T>) -> Response {
    match result {
        Ok(value) => json(StatusCode::CREATED, value),
        Err(err) => err.into_response(),
    }
}

/// What a PUT did, answered as Kubernetes answers it: 201 when it made the object, 200 when it
/// replaced one.
pub struct Put<T> {
    pub object: T,
    pub created: bool,
}

pub fn put<T: serde::Serialize>(result: ApiResult<Put<T>>) -> Response {
    match result {
        Ok(Put {
            object,
            created: true,
        }) => json(StatusCode::CREATED, object),
        Ok(Put { object, .. }) => json(StatusCode::OK, object),
        Err(err) => err.into_response(),
    }
}

pub fn error_line(err: &ApiError) -> Bytes {
    let mut line = serde_json::to_vec(&WatchEvent {
        event_type: "ERROR",
        object: err.status(),
    })
    .unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The response of a watch; `permit` is released when the body ends or the client leaves.
pub fn watch_response<Permit: Send + Sync + 'static>(
    lines: futures_util::stream::BoxStream<'static, Bytes>,
    timeout: Option<Duration>,
    permit: Permit,
) -> Response {
    let lines = match timeout {
        Some(timeout) => lines.take_until(tokio::time::sleep(timeout)).boxed(),
        None => lines,
    };
    let body = Body::from_stream(lines.map(move |line| {
        let _held = &permit;
        Ok::<_, std::convert::Infallible>(line)
    }));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether `Accept` names JSON with all of `parameters` (`as=Table`, `g=meta.k8s.io`): how
/// Kubernetes clients ask for another shape of an answer.
pub fn accepts_json_as(headers: &axum::http::HeaderMap, parameters: &[&str]) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let mut params = media.split(';').map(str::trim);
            params.next() == Some("application/json") && {
                let params: Vec<&str> = params.collect();
                parameters.iter().all(|wanted| params.contains(wanted))
            }
        })
}

/// A method a Kubernetes-style route does not take, as a `Status`.
pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

pub async fn not_found(request: Request) -> Response {
    ApiError::NoSuchResource(request.uri().path().to_owned()).into_response()
}

/// What no API route matches under `/api`, `/apis` and `/openapi` (a group version Berth has
/// no document of): a `Status` 404, never the console's page. `/api` and `/apis` themselves are
/// discovery's.
pub fn unknown_api_paths() -> Router {
    Router::new()
        // A catch-all needs one character after the slash: `/api/` is its own route.
        .route("/api/", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/apis/", axum::routing::any(not_found))
        .route("/apis/{*rest}", axum::routing::any(not_found))
        .route("/openapi", axum::routing::any(not_found))
        .route("/openapi/", axum::routing::any(not_found))
        .route("/openapi/{*rest}", axum::routing::any(not_found))
}
