//! The console's live feed in front of a cluster: the cluster's image stream watches, as the
//! signed-in user, turned into the same server-sent events the in-process feed sends. A watch
//! says only that a stream changed; what changed (which tag now names which image) is read by
//! comparing with the stream as this feed last saw it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tower_sessions::Session;

use super::{SESSION_TOKEN, UpstreamApi, UpstreamError, WATCH_SECONDS, segment};
use crate::auth::Subject;
use crate::auth::sign_in::SESSION_USER;
use crate::events::ChangeNotice;
use crate::imagestream::model::ImageStream;
use crate::kube::ApiError;
use crate::kube::Namespace;
use crate::limits::WatchLimits;

const IMAGE: &str = "/apis/image.openshift.io/v1";
/// A user who may not watch every namespace's streams gets a watch per namespace, up to this
/// many.
const MAX_NAMESPACES: usize = 100;
/// Pause before a watch that failed is opened again.
const RETRY: Duration = Duration::from_secs(5);

/// Each stream's tags as last seen: tag → current image.
type Seen = HashMap<(String, String), BTreeMap<String, String>>;

/// `GET /console/api/events` in front of a cluster. A feed counts as one of its user's
/// watches and ends after the longest watch (the browser reconnects).
pub async fn feed(
    State(api): State<Arc<UpstreamApi>>,
    Extension(watches): Extension<Arc<WatchLimits>>,
    session: Session,
) -> Response {
    let token = match session.get::<String>(SESSION_TOKEN).await {
        Ok(Some(token)) => token,
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let user = session
        .get::<String>(SESSION_USER)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let who = Subject::User {
        name: user,
        groups: Vec::new(),
    };
    let permit = match watches.acquire(who.watch_key(None)) {
        Ok(permit) => permit,
        Err(refused) => return ApiError::from(refused).into_response(),
    };
    let lasts = watches.duration(None);
    // Every namespace's streams at once when the user may; else one watch per namespace.
    let scopes = match start(&api, &token, IMAGE.to_owned() + "/imagestreams").await {
        Ok(version) => vec![(IMAGE.to_owned() + "/imagestreams", version)],
        Err(UpstreamError::Forbidden(_)) => {
            let namespaces = match api
                .list_first::<Namespace>(&token, "/api/v1/namespaces", MAX_NAMESPACES)
                .await
            {
                Ok(list) => list.items,
                Err(err) => return refusal(err),
            };
            let mut scopes = Vec::new();
            for namespace in namespaces.into_iter().take(MAX_NAMESPACES) {
                let path = format!(
                    "{IMAGE}/namespaces/{}/imagestreams",
                    segment(&namespace.metadata.name)
                );
                if let Ok(version) = start(&api, &token, path.clone()).await {
                    scopes.push((path, version));
                }
            }
            scopes
        }
        Err(err) => return refusal(err),
    };
    let (sender, receiver) = mpsc::channel::<ChangeNotice>(64);
    for (path, version) in scopes {
        tokio::spawn(follow(
            api.clone(),
            token.clone(),
            path,
            version,
            sender.clone(),
        ));
    }
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let notice = receiver.recv().await?;
        let event = Event::default()
            .id(notice.id.to_string())
            .event("change")
            .json_data(&notice)
            .unwrap_or_else(|_| Event::default().comment("unserialisable event"));
        Some((Ok::<_, Infallible>(event), receiver))
    })
    .take_until(tokio::time::sleep(lasts))
    .map(move |event| {
        let _held = &permit;
        event
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn refusal(err: UpstreamError) -> Response {
    match err {
        UpstreamError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
        UpstreamError::Forbidden(_) => StatusCode::FORBIDDEN.into_response(),
        other => {
            tracing::warn!(error = %other, "the upstream cluster's watch could not start");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

/// The list's resourceVersion: the watch starts after it, with nothing replayed.
async fn start(api: &UpstreamApi, token: &str, path: String) -> Result<String, UpstreamError> {
    Ok(api
        .list_first::<serde_json::Value>(token, &path, 1)
        .await?
        .version)
}

/// Follows one watch, opening it again when the cluster ends it, until the browser leaves
/// (the channel closes) or the token is refused.
async fn follow(
    api: Arc<UpstreamApi>,
    token: String,
    path: String,
    mut version: String,
    sender: mpsc::Sender<ChangeNotice>,
) {
    let mut seen = Seen::new();
    loop {
        let url = format!(
            "{path}?watch=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={}",
            segment(&version)
        );
        let lines = match api.watch(&token, &url).await {
            Ok(lines) => lines,
            Err(UpstreamError::Unauthorized | UpstreamError::Forbidden(_)) => return,
            Err(err) => {
                tracing::warn!(error = %err, %path, "an upstream watch failed; opening it again");
                tokio::time::sleep(RETRY).await;
                if sender.is_closed() {
                    return;
                }
                continue;
            }
        };
        let mut lines = std::pin::pin!(lines);
        // The watch is dropped as soon as the browser leaves, not at its next event.
        while let Some(line) = tokio::select! {
            line = lines.next() => line,
            () = sender.closed() => return,
        } {
            let Ok(line) = line else { break };
            if line.event_type == "ERROR" {
                // Most often 410 Gone: the version is older than the cluster keeps.
                match start(&api, &token, path.clone()).await {
                    Ok(current) => version = current,
                    Err(_) => return,
                }
                break;
            }
            let Ok(stream) = serde_json::from_value::<ImageStream>(line.object) else {
                continue;
            };
            if !stream.metadata.resource_version.is_empty() {
                version = stream.metadata.resource_version.clone();
            }
            let notice = notice(&mut seen, &line.event_type, &stream);
            if sender.send(notice).await.is_err() {
                return;
            }
        }
        if sender.is_closed() {
            return;
        }
    }
}

/// What a watch event means for the console: which tag moved to which image, compared with
/// the stream as last seen (or, for a stream not seen yet, its newest tag).
fn notice(seen: &mut Seen, event_type: &str, stream: &ImageStream) -> ChangeNotice {
    let namespace = stream.metadata.namespace.clone().unwrap_or_default();
    let name = stream.metadata.name.clone();
    let key = (namespace.clone(), name.clone());
    let current: BTreeMap<String, String> = stream
        .status
        .tags
        .iter()
        .filter_map(|t| t.items.first().map(|i| (t.tag.clone(), i.image.clone())))
        .collect();
    let event_type: &'static str = match event_type {
        "ADDED" => "ADDED",
        "DELETED" => "DELETED",
        _ => "MODIFIED",
    };
    let (reason, tag, old_image, new_image) = match event_type {
        "ADDED" => ("create", None, None, None),
        "DELETED" => ("delete", None, None, None),
        _ => {
            let before = seen.get(&key);
            let moved = match before {
                Some(before) => current
                    .iter()
                    .find(|(tag, image)| before.get(*tag) != Some(image))
                    .map(|(tag, image)| (tag.clone(), before.get(tag).cloned(), image.clone())),
                None => stream
                    .status
                    .tags
                    .iter()
                    .filter_map(|t| t.items.first().map(|i| (i.created, t)))
                    .max_by_key(|(created, _)| *created)
                    .and_then(|(_, t)| {
                        let previous = t.items.get(1).map(|i| i.image.clone());
                        t.items
                            .first()
                            .map(|i| (t.tag.clone(), previous, i.image.clone()))
                    }),
            };
            let removed = before.and_then(|before| {
                before
                    .keys()
                    .find(|tag| !current.contains_key(*tag))
                    .cloned()
            });
            match (moved, removed) {
                (Some((tag, old, new)), _) => {
                    // A tag the spec points elsewhere was tagged; one without was pushed.
                    let tagged = stream
                        .spec
                        .tags
                        .iter()
                        .any(|t| t.name == tag && t.from.is_some());
                    (
                        if tagged { "tag" } else { "push" },
                        Some(tag),
                        old,
                        Some(new),
                    )
                }
                (None, Some(tag)) => ("untag", Some(tag), None, None),
                (None, None) => ("update", None, None, None),
            }
        }
    };
    if event_type == "DELETED" {
        seen.remove(&key);
    } else {
        seen.insert(key, current);
    }
    ChangeNotice {
        id: stream.metadata.resource_version.parse().unwrap_or_default(),
        kind: "ImageStream",
        event_type,
        namespace,
        name,
        reason: reason.to_owned(),
        tag,
        old_image,
        new_image,
        time: chrono::Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(tags: &[(&str, &str, &str)], spec_from: &[&str]) -> ImageStream {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app", "namespace": "team", "resourceVersion": "42"},
            "spec": {"tags": spec_from.iter().map(|t| serde_json::json!({
                "name": t, "from": {"kind": "ImageStreamImage", "name": "app@sha256:a"}
            })).collect::<Vec<_>>()},
            "status": {"dockerImageRepository": "r/team/app", "tags": tags.iter().map(|(tag, image, created)| serde_json::json!({
                "tag": tag,
                "items": [{"created": created, "dockerImageReference": "r", "image": image, "generation": 1}]
            })).collect::<Vec<_>>()}
        }))
        .expect("an image stream")
    }

    #[test]
    fn a_watch_event_says_which_tag_moved() {
        let mut seen = Seen::new();
        let first = stream(&[("v1", "sha256:a", "2026-11-01T00:00:00Z")], &[]);
        let added = notice(&mut seen, "ADDED", &first);
        assert_eq!((added.reason.as_str(), added.id), ("create", 42));
        let pushed = stream(
            &[
                ("v1", "sha256:a", "2026-11-01T00:00:00Z"),
                ("v2", "sha256:b", "2026-11-02T00:00:00Z"),
            ],
            &[],
        );
        let change = notice(&mut seen, "MODIFIED", &pushed);
        assert_eq!(change.reason, "push");
        assert_eq!(change.tag.as_deref(), Some("v2"));
        assert_eq!(change.new_image.as_deref(), Some("sha256:b"));
        let rolled_back = stream(
            &[
                ("v1", "sha256:a", "2026-11-01T00:00:00Z"),
                ("v2", "sha256:a", "2026-11-03T00:00:00Z"),
            ],
            &["v2"],
        );
        let change = notice(&mut seen, "MODIFIED", &rolled_back);
        assert_eq!(change.reason, "tag");
        assert_eq!(change.old_image.as_deref(), Some("sha256:b"));
        let untagged = stream(&[("v1", "sha256:a", "2026-11-01T00:00:00Z")], &[]);
        let change = notice(&mut seen, "MODIFIED", &untagged);
        assert_eq!(
            (change.reason.as_str(), change.tag.as_deref()),
            ("untag", Some("v2"))
        );
        // A stream first seen changing: its newest tag is taken to be the change.
        let mut fresh = Seen::new();
        let change = notice(&mut fresh, "MODIFIED", &pushed);
        assert_eq!(change.tag.as_deref(), Some("v2"));
    }
}
