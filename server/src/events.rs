//! The event log as a live feed: every change (push, tag moved, untag, delete, create) is a row
//! of the metadata store's ordered log; [`follow`] streams the rows after a resourceVersion and
//! waits for more, for the API's watches, the console's server-sent events and webhooks;
//! [`ChangeNotice`] is what the console's events say of a change.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use serde::Serialize;

use crate::kube::time;
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
