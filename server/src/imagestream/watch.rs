//! Watches of namespaces and image streams: `watch=true` turns a list into a stream of
//! `ADDED`/`MODIFIED`/`DELETED` events, resumable from a `resourceVersion`; and the console's
//! feed of the same log as server-sent events. With `allowWatchBookmarks=true` a watch also
//! gets `BOOKMARK`s. Each event reaches only callers who may see its
//! object.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::model::ImageStream;
use super::{Api, ImageStreamApi};
use crate::auth::http::Caller;
use crate::auth::{AccessChange, Action, Subject, Target};
use crate::events::{ChangeNotice, follow};
use crate::kube::{
    ApiError, ApiResult, List, ListParams, Namespace, Page, WatchEvent, error_line, ok,
    watch_response,
};
use crate::limits::ClientAddress;
use crate::storage::coordination::Notice;
use crate::storage::{
    EventFilter, EventKind, EventRecord, EventType, NamespaceRecord, StorageError, StreamRecord,
};

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

impl ImageStreamApi {
    /// Whether `who` may see the object an event is about: no event about a stream reaches
    /// someone who may not see it.
    fn may_see(&self, who: &Subject, event: &EventRecord) -> bool {
        match event.kind {
            EventKind::ImageStream => self.auth.authorizer.allows(
                who,
                Action::Pull,
                Target::stream(&event.namespace, &event.name),
            ),
            EventKind::Namespace => self
                .auth
                .authorizer
                .visible_namespaces(who)
                .contains(&event.name),
        }
    }
}

/// Renders an event's object: a deleted one from the state the log kept, others as they are
/// now, stamped with the event's resourceVersion so that a client resuming from it misses
/// nothing.
/// `None` for an event `who` may not see, or whose object is gone; a storage error is the
/// caller's to report (a watch that skipped the event would lose it for good).
async fn render(
    api: &ImageStreamApi,
    who: &Subject,
    event: &EventRecord,
) -> Result<Option<Watched>, StorageError> {
    if !api.may_see(who, event) {
        return Ok(None);
    }
    let kept = || {
        event
            .object
            .as_deref()
            .ok_or_else(|| StorageError::Corrupt(format!("event {} keeps no object", event.id)))
    };
    let corrupt =
        |err: serde_json::Error| StorageError::Corrupt(format!("event {}: {err}", event.id));
    Ok(match (event.kind, event.event_type) {
        (EventKind::ImageStream, EventType::Deleted) => {
            let record: StreamRecord = serde_json::from_str(kept()?).map_err(corrupt)?;
            Some(Watched::Stream(Box::new(api.stream_object(&record))))
        }
        (EventKind::ImageStream, _) => api
            .store
            .get_stream(&event.namespace, &event.name)
            .await?
            .map(|record| Watched::Stream(Box::new(api.stream_object(&record)))),
        (EventKind::Namespace, EventType::Deleted) => {
            let record: NamespaceRecord = serde_json::from_str(kept()?).map_err(corrupt)?;
            Some(Watched::Namespace(Box::new(
                ImageStreamApi::namespace_object(&record),
            )))
        }
        (EventKind::Namespace, _) => {
            api.store.get_namespace(&event.name).await?.map(|record| {
                Watched::Namespace(Box::new(ImageStreamApi::namespace_object(&record)))
            })
        }
    })
}

/// The objects a watch without a resourceVersion starts with, as ADDED events.
async fn current_objects(
    api: &ImageStreamApi,
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
    let visible = api.auth.authorizer.visible_namespaces(who);
    for record in namespaces.into_iter().filter(|n| visible.contains(&n.name)) {
        if kind == EventKind::Namespace {
            if name.is_none_or(|n| n == record.name) {
                let version = record.resource_version;
                lines.extend(
                    Watched::Namespace(Box::new(ImageStreamApi::namespace_object(&record)))
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
                name.is_none_or(|n| n == s.name)
                    && api.auth.authorizer.allows(
                        who,
                        Action::Pull,
                        Target::stream(&s.namespace, &s.name),
                    )
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

/// A watch: newline-delimited `{"type":…,"object":…}` events, first the current objects (when
/// no resourceVersion is given), then every change after it, each once and in order, for at
/// most the server's longest watch (clients reconnect from their last resourceVersion). Each
/// holds one of its subject's places ([`crate::limits`]) while it runs.
async fn watch(
    api: Arc<ImageStreamApi>,
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
    // The last event read, shown or not, for bookmarks.
    let last_seen = Arc::new(AtomicI64::new(from));
    let seen = last_seen.clone();
    let changes = follow(api.store.clone(), filter, from)
        .then(move |event| {
            let api = api.clone();
            let who = who.clone();
            let seen = seen.clone();
            async move {
                let rendered = match event {
                    Ok(event) => render(&api, &who, &event).await.map(|object| {
                        seen.store(event.id, Ordering::Release);
                        object.and_then(|object| object.line(event.event_type.as_str(), event.id))
                    }),
                    Err(err) => Err(err),
                };
                // An error ends the watch (the client resumes from the last version it saw,
                // and so sees the event again) instead of skipping the event.
                rendered.map_err(|err| {
                    tracing::warn!(%err, "a watch ends on a storage error");
                    error_line(&ApiError::internal(err))
                })
            }
        })
        .scan(false, |ended, rendered| {
            let item = match (*ended, rendered) {
                (true, _) => None,
                (false, Ok(line)) => Some(line),
                (false, Err(error)) => {
                    *ended = true;
                    Some(Some(error))
                }
            };
            async move { item }
        })
        .filter_map(|line| async move { line });
    let changes = if params.bookmarks() {
        with_bookmarks(changes, kind, last_seen)
    } else {
        changes.boxed()
    };
    let lines = futures_util::stream::iter(initial).chain(changes).boxed();
    Ok(watch_response(lines, Some(timeout), permit))
}

/// How often a watch that allows bookmarks gets one while nothing it may see changes.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

/// `changes` with a `BOOKMARK` at once and every [`BOOKMARK_EVERY`] after, each carrying the
/// version of the last event read (`last_seen`), so that a client resumes past the events it
/// was not shown; it ends when `changes` does.
fn with_bookmarks(
    changes: impl futures_util::Stream<Item = Bytes> + Send + 'static,
    kind: EventKind,
    last_seen: Arc<AtomicI64>,
) -> futures_util::stream::BoxStream<'static, Bytes> {
    let (kind, api_version) = match kind {
        EventKind::ImageStream => ("ImageStream", super::model::IMAGE_API_VERSION),
        EventKind::Namespace => ("Namespace", crate::kube::CORE_API_VERSION),
    };
    let bookmark = move || {
        let event = WatchEvent {
            event_type: "BOOKMARK",
            object: serde_json::json!({
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": last_seen.load(Ordering::Acquire).to_string()},
            }),
        };
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some(Bytes::from(line))
    };
    let ticks = futures_util::stream::unfold(true, move |first| async move {
        if !first {
            tokio::time::sleep(BOOKMARK_EVERY).await;
        }
        Some(((), false))
    })
    .map(move |()| bookmark());
    let changes = changes
        .map(Some)
        .chain(futures_util::stream::once(async { None }));
    futures_util::stream::select(changes, ticks)
        .take_while(|line| std::future::ready(line.is_some()))
        .filter_map(std::future::ready)
        .boxed()
}

/// A list handler's answer: with `watch=true` a watch of the objects of `kind` (in `namespace`
/// when given), else the page `list` reads.
pub(super) async fn list_or_watch<T, Read>(
    api: Arc<ImageStreamApi>,
    who: Subject,
    address: ClientAddress,
    query: Option<String>,
    kind: EventKind,
    namespace: Option<String>,
    list: impl FnOnce(Arc<ImageStreamApi>, Subject, Page) -> Read,
) -> Response
where
    T: serde::Serialize,
    Read: Future<Output = ApiResult<List<T>>>,
{
    let result = async {
        let params = ListParams::parse(query)?;
        if params.watching() {
            // Refused as the list is: a caller who may see none of the namespace's streams.
            if let (EventKind::ImageStream, Some(namespace)) = (kind, &namespace) {
                api.visible_streams(&who, namespace)?;
            }
            return watch(api, who, address, kind, namespace, &params).await;
        }
        Ok(ok(list(api, who, params.page()?).await))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize, Default)]
pub struct FeedQuery {
    /// Resume after this event id (as `Last-Event-ID` does); without it, only new events.
    after: Option<i64>,
    namespace: Option<String>,
}

/// `GET /console/api/events`: server-sent events, one per change, resumable with
/// `Last-Event-ID`. A feed counts as one of its subject's watches and ends after the longest
/// watch (the browser's `EventSource` reconnects and resumes).
pub async fn console_feed(
    State(api): Api,
    caller: Caller,
    address: ClientAddress,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
) -> Response {
    let permit = match api.watches.acquire(caller.subject.watch_key(address.0)) {
        Ok(permit) => permit,
        Err(refused) => return ApiError::from(refused).into_response(),
    };
    let lasts = api.watches.duration(None);
    let store = api.store.clone();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(query.after);
    let from = match resume {
        Some(id) => id,
        None => match store.latest_event_id().await {
            Ok(id) => id,
            Err(err) => {
                tracing::error!(%err, "starting the console event feed failed");
                return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
    };
    let filter = EventFilter {
        namespace: query.namespace,
        ..EventFilter::default()
    };
    let who = caller.subject;
    let access = access_feed(api.clone(), who.clone());
    let events = follow(store, filter, from).filter(move |event| {
        let visible = match event {
            Ok(event) => api.may_see(&who, event),
            Err(_) => true,
        };
        std::future::ready(visible)
    });
    let events = futures_util::stream::select(events.map(FeedItem::Logged), access)
        .take_until(tokio::time::sleep(lasts))
        .map(move |item| {
            let _held = &permit;
            let event = match item {
                FeedItem::Logged(event) => event,
                // Not in the log: no id, so the browser's Last-Event-ID stays the log's.
                FeedItem::Access(change) => {
                    return Ok::<_, Infallible>(
                        Event::default()
                            .event("access")
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().comment("unserialisable event")),
                    );
                }
            };
            Ok::<_, Infallible>(match event {
                Ok(event) => {
                    let id = event.id.to_string();
                    Event::default()
                        .id(id)
                        .event("change")
                        .json_data(ChangeNotice::from(event))
                        .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
                }
                Err(err) => {
                    tracing::error!(%err, "reading the event log failed");
                    Event::default()
                        .event("error")
                        .data("the event log could not be read")
                }
            })
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// What the console's feed sends: a change of the event log, or an access change.
enum FeedItem {
    Logged(Result<EventRecord, StorageError>),
    Access(AccessChange),
}

/// The access changes `who` hears of, as they are published on any replica (a page that
/// missed one refreshes at its next change: nothing is replayed).
fn access_feed(
    api: Arc<ImageStreamApi>,
    who: Subject,
) -> impl futures_util::Stream<Item = FeedItem> + Send {
    let changes = api.auth.access_changes();
    futures_util::stream::unfold(changes, move |mut changes| {
        let (api, who) = (api.clone(), who.clone());
        async move {
            loop {
                let Notice::Message { body, .. } = changes.next().await? else {
                    continue;
                };
                if let Ok(change) = serde_json::from_str::<AccessChange>(&body)
                    && api.auth.hears_of(&who, &change)
                {
                    return Some((FeedItem::Access(change), changes));
                }
            }
        }
    })
}
