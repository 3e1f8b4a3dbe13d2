//! The HTTP surface of the image stream API, at OpenShift's paths: namespaces under `/api/v1`,
//! everything else under `/apis/image.openshift.io/v1`. Lists take `limit` and `continue`, and
//! `watch=true` turns a list into a stream of `ADDED`/`MODIFIED`/`DELETED` events resumable
//! from a `resourceVersion`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::ImageStreams;
use super::error::{ApiError, ApiResult};
use super::model::*;
use super::service::Page;
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::events::follow;
use crate::limits::{ClientAddress, WatchPermit};
use crate::storage::{
    EventFilter, EventKind, EventRecord, EventType, NamespaceRecord, StreamRecord,
};

/// The largest request body the API reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

type Api = State<Arc<ImageStreams>>;

/// A JSON body whose errors answer as a `Status`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|err| {
                ApiError::BadRequest(format!("reading the request body failed: {err}"))
            })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            ApiError::BadRequest(format!("the request body is not a valid object: {err}"))
        })
    }
}

/// The query parameters of list and watch requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    limit: Option<u32>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    watch: Option<String>,
    resource_version: Option<String>,
    timeout_seconds: Option<u64>,
    field_selector: Option<String>,
    label_selector: Option<String>,
}

impl ListParams {
    fn parse(query: Option<String>) -> ApiResult<Self> {
        let params: ListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|err| ApiError::BadRequest(format!("invalid query: {err}")))?;
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

    fn page(&self) -> ApiResult<Page> {
        Page::parse(self.limit, self.continue_token.as_deref())
    }

    fn watching(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }

    /// The name asked for with `fieldSelector=metadata.name=NAME`.
    fn name(&self) -> ApiResult<Option<String>> {
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
    fn since(&self) -> ApiResult<Option<i64>> {
        match self.resource_version.as_deref() {
            None | Some("") | Some("0") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("resourceVersion {text:?} is not a number"))
            }),
        }
    }
}

fn json<T: serde::Serialize>(status: StatusCode, value: T) -> Response {
    (status, axum::Json(value)).into_response()
}

fn ok<T: serde::Serialize>(result: ApiResult<T>) -> Response {
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

// ---- watches -------------------------------------------------------------------------------------

/// One object a watch reports, rendered when it is sent.
enum Watched {
    Namespace(Box<Namespace>),
    Stream(Box<ImageStream>),
}

impl Watched {
    fn line(self, event_type: &'static str, version: i64) -> Option<Bytes> {
        let mut line = match self {
            Watched::Namespace(mut object) => {
                object.metadata.resource_version = version.to_string();
                serde_json::to_vec(&WatchEvent { event_type, object })
            }
            Watched::Stream(mut object) => {
                object.metadata.resource_version = version.to_string();
                serde_json::to_vec(&WatchEvent { event_type, object })
            }
        }
        .ok()?;
        line.push(b'\n');
        Some(Bytes::from(line))
    }
}

/// Renders an event's object: a deleted one from the state the log kept, others as they are
/// now, stamped with the event's resourceVersion so that a client resuming from it misses
/// nothing.
async fn render(api: &ImageStreams, who: &Subject, event: &EventRecord) -> Option<Watched> {
    // No event about a stream reaches someone who may not see it.
    let visible = match event.kind {
        EventKind::ImageStream => api.may_pull(who, &event.namespace, &event.name),
        EventKind::Namespace => api
            .identities
            .authorizer
            .visible_namespaces(who)
            .contains(&event.name),
    };
    if !visible {
        return None;
    }
    match (event.kind, event.event_type) {
        (EventKind::ImageStream, EventType::Deleted) => {
            let record: StreamRecord = serde_json::from_str(event.object.as_deref()?).ok()?;
            Some(Watched::Stream(Box::new(api.stream_object(&record))))
        }
        (EventKind::ImageStream, _) => {
            let record = api
                .store
                .get_stream(&event.namespace, &event.name)
                .await
                .ok()??;
            Some(Watched::Stream(Box::new(api.stream_object(&record))))
        }
        (EventKind::Namespace, EventType::Deleted) => {
            let record: NamespaceRecord = serde_json::from_str(event.object.as_deref()?).ok()?;
            Some(Watched::Namespace(Box::new(
                ImageStreams::namespace_object(&record),
            )))
        }
        (EventKind::Namespace, _) => {
            let record = api.store.get_namespace(&event.name).await.ok()??;
            Some(Watched::Namespace(Box::new(
                ImageStreams::namespace_object(&record),
            )))
        }
    }
}

/// The objects a watch without a resourceVersion starts with, as ADDED events.
async fn current_objects(
    api: &ImageStreams,
    who: &Subject,
    kind: EventKind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> ApiResult<Vec<Bytes>> {
    let mut lines = Vec::new();
    let namespaces: Vec<NamespaceRecord> = match namespace {
        Some(namespace) => api
            .store
            .get_namespace(namespace)
            .await?
            .into_iter()
            .collect(),
        None => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = api.store.list_namespaces(after.as_deref(), 1000).await?;
                let done = page.len() < 1000;
                after = page.last().map(|n| n.name.clone());
                all.extend(page);
                if done {
                    break;
                }
            }
            all
        }
    };
    let visible = api.identities.authorizer.visible_namespaces(who);
    for record in namespaces.into_iter().filter(|n| visible.contains(&n.name)) {
        if kind == EventKind::Namespace {
            if name.is_none_or(|n| n == record.name) {
                let version = record.resource_version;
                lines.extend(
                    Watched::Namespace(Box::new(ImageStreams::namespace_object(&record)))
                        .line("ADDED", version),
                );
            }
            continue;
        }
        let mut after: Option<String> = None;
        loop {
            let page = api
                .store
                .list_streams(&record.name, after.as_deref(), 500)
                .await?;
            let done = page.len() < 500;
            after = page.last().map(|s| s.name.clone());
            for stream in page.iter().filter(|s| {
                name.is_none_or(|n| n == s.name) && api.may_pull(who, &s.namespace, &s.name)
            }) {
                let version = stream.resource_version;
                lines.extend(
                    Watched::Stream(Box::new(api.stream_object(stream))).line("ADDED", version),
                );
            }
            if done {
                break;
            }
        }
    }
    Ok(lines)
}

fn error_line(err: &ApiError) -> Bytes {
    let mut line = serde_json::to_vec(&WatchEvent {
        event_type: "ERROR",
        object: err.status(),
    })
    .unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A watch: newline-delimited `{"type":…,"object":…}` events, first the current objects (when
/// no resourceVersion is given), then every change after it, each once and in order, for at
/// most the server's longest watch (clients reconnect from their last resourceVersion). Each
/// holds one of its subject's places ([`crate::limits`]) while it runs.
async fn watch(
    api: Arc<ImageStreams>,
    who: Subject,
    address: ClientAddress,
    kind: EventKind,
    namespace: Option<String>,
    params: &ListParams,
) -> ApiResult<Response> {
    let name = params.name()?;
    let permit = api.watches.acquire(who.watch_key(address.0))?;
    let (initial, from) = match params.since()? {
        Some(version) => {
            let oldest = api.store.oldest_event_id().await?;
            if oldest > 0 && version < oldest - 1 {
                // Older than the log keeps: the client must list again.
                let gone = ApiError::Gone {
                    requested: version,
                    oldest,
                };
                return Ok(watch_response(
                    futures_util::stream::iter(vec![error_line(&gone)]).boxed(),
                    None,
                    permit,
                ));
            }
            (Vec::new(), version)
        }
        None => {
            let from = api.store.latest_event_id().await?;
            (
                current_objects(&api, &who, kind, namespace.as_deref(), name.as_deref()).await?,
                from,
            )
        }
    };
    let timeout = api.watches.duration(params.timeout_seconds);
    let filter = EventFilter {
        kind: Some(kind),
        namespace: if kind == EventKind::Namespace {
            None
        } else {
            namespace
        },
        name,
    };
    let changes = follow(api.store.clone(), filter, from)
        .then(move |event| {
            let api = api.clone();
            let who = who.clone();
            async move {
                match event {
                    Ok(event) => render(&api, &who, &event)
                        .await
                        .and_then(|object| object.line(event.event_type.as_str(), event.id)),
                    Err(err) => Some(error_line(&ApiError::Storage(err))),
                }
            }
        })
        .filter_map(|line| async move { line });
    let lines = futures_util::stream::iter(initial).chain(changes).boxed();
    Ok(watch_response(lines, Some(timeout), permit))
}

/// The response of a watch; `permit` is released when the body ends or the client leaves.
fn watch_response(
    lines: futures_util::stream::BoxStream<'static, Bytes>,
    timeout: Option<Duration>,
    permit: WatchPermit,
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

// ---- handlers ------------------------------------------------------------------------------------

async fn list_namespaces(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        if params.watching() {
            return watch(
                api,
                caller.subject,
                address,
                EventKind::Namespace,
                None,
                &params,
            )
            .await;
        }
        Ok(ok(api
            .list_namespaces(&caller.subject, &params.page()?)
            .await))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn create_namespace(
    State(api): Api,
    caller: Caller,
    ApiJson(body): ApiJson<Namespace>,
) -> Response {
    created(api.create_namespace(&caller.subject, body).await)
}

async fn get_namespace(State(api): Api, caller: Caller, Path(name): Path<String>) -> Response {
    ok(api.get_namespace(&caller.subject, &name).await)
}

async fn delete_namespace(State(api): Api, caller: Caller, Path(name): Path<String>) -> Response {
    ok(api.delete_namespace(&caller.subject, &name).await)
}

async fn list_streams(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        if params.watching() {
            return watch(
                api,
                caller.subject,
                address,
                EventKind::ImageStream,
                Some(namespace),
                &params,
            )
            .await;
        }
        Ok(ok(api
            .list_streams(&caller.subject, &namespace, &params.page()?)
            .await))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Image streams of every namespace: a list paged by (namespace, name), or a watch.
async fn list_all_streams(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        if params.watching() {
            return watch(
                api,
                caller.subject,
                address,
                EventKind::ImageStream,
                None,
                &params,
            )
            .await;
        }
        Ok(ok(api
            .list_all_streams(&caller.subject, &params.page()?)
            .await))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn create_stream(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStream>,
) -> Response {
    created(api.create_stream(&caller.subject, &namespace, body).await)
}

async fn get_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.get_stream(&caller.subject, &namespace, &name).await)
}

async fn update_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<ImageStream>,
) -> Response {
    ok(api
        .update_stream(&caller.subject, &namespace, &name, body)
        .await)
}

async fn delete_stream(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.delete_stream(&caller.subject, &namespace, &name).await)
}

async fn list_tags(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        api.list_tags(&caller.subject, &namespace, &params.page()?)
            .await
    };
    ok(result.await)
}

async fn create_tag(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStreamTag>,
) -> Response {
    let name = body.metadata.name.clone();
    created(
        api.put_tag(&caller.subject, &namespace, &name, body, true)
            .await,
    )
}

async fn get_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.get_tag(&caller.subject, &namespace, &name).await)
}

async fn put_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<ImageStreamTag>,
) -> Response {
    ok(api
        .put_tag(&caller.subject, &namespace, &name, body, false)
        .await)
}

async fn delete_tag(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api.delete_tag(&caller.subject, &namespace, &name).await)
}

async fn get_stream_image(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    ok(api
        .get_stream_image(&caller.subject, &namespace, &name)
        .await)
}

async fn create_mapping(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImageStreamMapping>,
) -> Response {
    created(api.create_mapping(&caller.subject, &namespace, body).await)
}

async fn list_images(State(api): Api, caller: Caller, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let params = ListParams::parse(query)?;
        api.list_images(&caller.subject, &params.page()?).await
    };
    ok(result.await)
}

async fn get_image(State(api): Api, caller: Caller, Path(name): Path<String>) -> Response {
    ok(api.get_image(&caller.subject, &name).await)
}

/// A method a Kubernetes-style route does not take, as a `Status`.
pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

async fn not_found(request: Request) -> Response {
    ApiError::NoSuchResource(request.uri().path().to_owned()).into_response()
}

/// What no API route matches under `/api` and `/apis`: a `Status` 404, never the console's page.
pub fn unknown_api_paths() -> Router {
    Router::new()
        .route("/api", axum::routing::any(not_found))
        // A catch-all needs one character after the slash: `/api/` is its own route.
        .route("/api/", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/apis", axum::routing::any(not_found))
        .route("/apis/", axum::routing::any(not_found))
        .route("/apis/{*rest}", axum::routing::any(not_found))
}

pub fn router(api: Arc<ImageStreams>) -> Router {
    const IMAGE: &str = "/apis/image.openshift.io/v1";
    Router::new()
        .route(
            "/api/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/api/v1/namespaces/{namespace}",
            get(get_namespace).delete(delete_namespace),
        )
        .route(&format!("{IMAGE}/imagestreams"), get(list_all_streams))
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreams"),
            get(list_streams).post(create_stream),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreams/{{name}}"),
            get(get_stream).put(update_stream).delete(delete_stream),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamtags"),
            get(list_tags).post(create_tag),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamtags/{{name}}"),
            get(get_tag).put(put_tag).delete(delete_tag),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreamimages/{{name}}"),
            get(get_stream_image),
        )
        .route(
            &format!("{IMAGE}/namespaces/{{namespace}}/imagestreammappings"),
            axum::routing::post(create_mapping),
        )
        .route(&format!("{IMAGE}/images"), get(list_images))
        .route(&format!("{IMAGE}/images/{{name}}"), get(get_image))
        .route(&format!("{IMAGE}/{{*rest}}"), axum::routing::any(not_found))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}
