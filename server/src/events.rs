//! The event log as a live feed: every change (push, tag moved, untag, delete, create) is a row
//! of the metadata store's ordered log; [`follow`] streams the rows after a resourceVersion and
//! waits for more, for the API's watches and the console's server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::auth::http::Caller;
use crate::imagestream::ImageStreams;
use crate::imagestream::error::ApiError;
use crate::imagestream::model::time;
use crate::limits::ClientAddress;
use crate::storage::{EventFilter, EventRecord, ImageStreamStore, StorageError};

/// Events read per query.
const BATCH: u32 = 256;
/// How often a follower looks at the log without being woken (changes made by another replica).
const POLL: Duration = Duration::from_secs(2);

struct Follower {
    store: Arc<dyn ImageStreamStore>,
    filter: EventFilter,
    /// The last event delivered (or skipped as not matching).
    last: i64,
    /// How far the last read of the log went.
    scanned: i64,
    changes: tokio::sync::watch::Receiver<u64>,
    pending: VecDeque<EventRecord>,
}

/// The events after `from` matching `filter`, oldest first, then each new one as it is
/// appended. Ends only with an error.
pub fn follow(
    store: Arc<dyn ImageStreamStore>,
    filter: EventFilter,
    from: i64,
) -> impl Stream<Item = Result<EventRecord, StorageError>> + Send {
    let changes = store.changes();
    let follower = Follower {
        store,
        filter,
        last: from,
        scanned: from,
        changes,
        pending: VecDeque::new(),
    };
    futures_util::stream::unfold(Some(follower), |state| async move {
        let mut follower = state?;
        loop {
            if let Some(event) = follower.pending.pop_front() {
                follower.last = event.id;
                if follower.pending.is_empty() {
                    follower.last = follower.last.max(follower.scanned);
                }
                return Some((Ok(event), Some(follower)));
            }
            // Mark the current state seen before reading, so no append is missed.
            follower.changes.borrow_and_update();
            match follower
                .store
                .events_after(follower.last, &follower.filter, BATCH)
                .await
            {
                Err(err) => return Some((Err(err), None)),
                Ok((events, scanned)) if !events.is_empty() => {
                    follower.pending.extend(events);
                    follower.scanned = scanned;
                }
                Ok((_, scanned)) => {
                    // Nothing matched up to `scanned`: never read that part of the log again.
                    follower.last = follower.last.max(scanned);
                    tokio::select! {
                        changed = follower.changes.changed() => {
                            if changed.is_err() {
                                return None;
                            }
                        }
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        }
    })
}

/// What the console's event stream says of a change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotice {
    pub id: i64,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub namespace: String,
    pub name: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_image: Option<String>,
    #[serde(with = "time")]
    pub time: chrono::DateTime<chrono::Utc>,
}

impl From<EventRecord> for ChangeNotice {
    fn from(event: EventRecord) -> Self {
        ChangeNotice {
            id: event.id,
            kind: event.kind.as_str(),
            event_type: event.event_type.as_str(),
            namespace: event.namespace,
            name: event.name,
            reason: event.reason,
            tag: event.tag,
            old_image: event.old_image,
            new_image: event.new_image,
            time: event.created_at,
        }
    }
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
    State(api): State<Arc<ImageStreams>>,
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
    // No event about a stream reaches someone who may not see it.
    let events = follow(store, filter, from).filter(move |event| {
        let visible = match event {
            Ok(event) => match event.kind {
                crate::storage::EventKind::ImageStream => {
                    api.may_pull(&who, &event.namespace, &event.name)
                }
                crate::storage::EventKind::Namespace => api
                    .identities
                    .authorizer
                    .visible_namespaces(&who)
                    .contains(&event.name),
            },
            Err(_) => true,
        };
        std::future::ready(visible)
    });
    let events = events
        .take_until(tokio::time::sleep(lasts))
        .map(move |event| {
            let _held = &permit;
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
