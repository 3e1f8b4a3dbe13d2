//! What every page shares: the session, the live change feed, and short notices.

use std::time::Duration;

use leptos::prelude::*;
use serde::Deserialize;

use crate::api::ConsoleResult;
use crate::api::session::{SessionInfo, current_session};

/// A change somebody made (push, tag moved, untag, delete), as the server's event stream
/// sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveChange {
    pub id: i64,
    /// `ImageStream`, `Namespace`, or `Access` (see [`AccessChange`]).
    pub kind: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub tag: Option<String>,
    pub new_image: Option<String>,
}

/// An access change as the server's event stream sends it (`access` events, which are not in
/// the event log and carry no id): a binding, service account or token of a namespace, or the
/// signed-in user's own personal tokens (no namespace).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessChange {
    #[serde(default)]
    pub namespace: Option<String>,
    /// `binding`, `serviceaccount` or `token`.
    pub what: String,
    pub name: String,
}

impl From<AccessChange> for LiveChange {
    fn from(change: AccessChange) -> Self {
        LiveChange {
            id: 0,
            kind: "Access".into(),
            event_type: "MODIFIED".into(),
            namespace: change.namespace.unwrap_or_default(),
            name: change.name,
            reason: change.what,
            tag: None,
            new_image: None,
        }
    }
}

impl LiveChange {
    /// A short sentence for the notice: what happened to what, in the words of the console.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn describe(&self) -> String {
        if self.kind == "Access" {
            let namespace = &self.namespace;
            return match (self.reason.as_str(), namespace.is_empty()) {
                ("token", true) => "Your personal tokens changed.".to_owned(),
                ("token", false) => {
                    format!(
                        "Tokens of service account {namespace}/{} changed.",
                        self.name
                    )
                }
                ("serviceaccount", _) => format!("Service accounts of {namespace} changed."),
                (_, true) => "Access to the registry changed.".to_owned(),
                _ => format!("Access to {namespace} changed."),
            };
        }
        if self.kind == "Namespace" {
            return match self.reason.as_str() {
                "delete" => format!("Namespace {} was deleted.", self.name),
                _ => format!("Namespace {} was created.", self.name),
            };
        }
        let stream = format!("{}/{}", self.namespace, self.name);
        let image = self.new_image.as_deref().map(crate::format::short_digest);
        match (self.reason.as_str(), &self.tag, image) {
            ("push", Some(tag), Some(image)) => format!("{stream}:{tag} was pushed ({image})."),
            ("push", None, Some(image)) => format!("{image} was pushed to {stream}."),
            ("tag", Some(tag), Some(image)) => format!("{stream}:{tag} now points at {image}."),
            ("untag", Some(tag), _) => format!("{stream}:{tag} was removed."),
            ("import", Some(tag), Some(image)) => format!("{stream}:{tag} was imported ({image})."),
            ("import", Some(tag), None) => format!("The import of {stream}:{tag} failed."),
            ("delete", _, _) if self.event_type == "DELETED" => format!("{stream} was deleted."),
            ("prune", _, _) => format!("Old images of {stream} were pruned."),
            ("create", _, _) => format!("{stream} was created."),
            _ => format!("{stream} changed."),
        }
    }

    pub fn touches_namespace(&self, namespace: &str) -> bool {
        self.namespace == namespace || (self.kind == "Namespace" && self.name == namespace)
    }

    /// An access change of `namespace`, or of the user's own tokens (`None`).
    pub fn touches_access(&self, namespace: Option<&str>) -> bool {
        self.kind == "Access" && self.namespace == namespace.unwrap_or_default()
    }

    pub fn touches_stream(&self, namespace: &str, stream: &str) -> bool {
        self.kind == "ImageStream" && self.namespace == namespace && self.name == stream
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Notices(RwSignal<Vec<(u64, String)>>);

impl Notices {
    /// Shows a notice for a few seconds.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn say(&self, text: String) {
        let notices = self.0;
        let id = notices.with_untracked(|n| n.last().map_or(0, |(id, _)| id + 1));
        notices.update(|n| {
            n.push((id, text));
            if n.len() > 4 {
                n.remove(0);
            }
        });
        set_timeout(
            move || notices.update(|n| n.retain(|(other, _)| *other != id)),
            Duration::from_secs(6),
        );
    }
}

#[derive(Clone, Copy)]
pub struct Console {
    pub session: Resource<ConsoleResult<SessionInfo>>,
    /// The newest change seen on the live feed.
    pub last_change: RwSignal<Option<LiveChange>>,
    pub notices: Notices,
    /// The clock of relative times (seconds since the epoch; see `When`).
    pub now: RwSignal<i64>,
}

impl Console {
    /// The session's CSRF token, which every change carries.
    pub fn csrf(&self) -> String {
        self.session
            .get_untracked()
            .and_then(Result::ok)
            .and_then(|s| s.csrf_token)
            .unwrap_or_default()
    }

    /// A counter that moves on each live change `relevant` selects: pages read it in their
    /// resources' sources to refetch.
    pub fn revision(
        &self,
        relevant: impl Fn(&LiveChange) -> bool + Send + Sync + 'static,
    ) -> Memo<u64> {
        let last_change = self.last_change;
        let count = RwSignal::new(0u64);
        Effect::new(move |_| {
            if last_change.with(|c| c.as_ref().is_some_and(&relevant)) {
                count.update(|n| *n += 1);
            }
        });
        Memo::new(move |_| count.get())
    }
}

pub fn use_console() -> Console {
    expect_context::<Console>()
}

/// Makes the console context and, in the browser, follows the server's event stream.
pub fn provide_console() -> Console {
    let console = Console {
        session: Resource::new(|| (), |_| current_session()),
        last_change: RwSignal::new(None),
        notices: Notices(RwSignal::new(Vec::new())),
        now: RwSignal::new(super::when::now_seconds()),
    };
    provide_context(console);
    // In the browser, relative times follow the clock (and the browser's, not the server's,
    // from the first tick on).
    Effect::new(move |_| {
        let tick = move || console.now.set(super::when::now_seconds());
        tick();
        let _ = set_interval_with_handle(tick, Duration::from_secs(60));
    });
    #[cfg(feature = "hydrate")]
    follow_changes(console);
    console
}

#[cfg(feature = "hydrate")]
fn follow_changes(console: Console) {
    use futures_util::StreamExt;
    use gloo_net::eventsource::futures::EventSource;

    let Ok(mut source) = EventSource::new("/console/api/events") else {
        return;
    };
    let (Ok(changes), Ok(access)) = (source.subscribe("change"), source.subscribe("access")) else {
        return;
    };
    let mut messages = futures_util::stream::select(changes, access);
    leptos::task::spawn_local(async move {
        // The EventSource lives as long as this task; the browser reconnects it by itself.
        let _source = source;
        while let Some(message) = messages.next().await {
            let Ok((kind, message)) = message else {
                continue;
            };
            let Some(data) = message.data().as_string() else {
                continue;
            };
            let change = if kind == "access" {
                serde_json::from_str::<AccessChange>(&data).map(LiveChange::from)
            } else {
                serde_json::from_str::<LiveChange>(&data)
            };
            if let Ok(change) = change {
                console.notices.say(change.describe());
                console.last_change.set(Some(change));
            }
        }
    });
}

/// The notices, in a live region screen readers announce.
#[component]
pub fn NoticeArea() -> impl IntoView {
    let console = use_console();
    let notices = console.notices.0;
    view! {
        <div class="notices" role="status" aria-live="polite">
            <For each=move || notices.get() key=|(id, _)| *id let:notice>
                <p class="notice">{notice.1}</p>
            </For>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::LiveChange;

    fn change(json: &str) -> LiveChange {
        serde_json::from_str(json).expect("a change as the server sends it")
    }

    #[test]
    fn changes_read_as_sentences() {
        let digest = "sha256:171c52f23003f67c6ff65ebb6452483d952a60e2a758aac3166d6c63b896aa4c";
        let pushed = change(&format!(
            r#"{{"id":7,"kind":"ImageStream","type":"MODIFIED","namespace":"live","name":"api","reason":"push","tag":"v2","newImage":"{digest}","time":"2026-11-28T08:24:00Z"}}"#
        ));
        assert_eq!(pushed.describe(), "live/api:v2 was pushed (171c52f23003).");
        assert!(pushed.touches_stream("live", "api"));
        let moved = LiveChange {
            reason: "tag".into(),
            ..pushed.clone()
        };
        assert_eq!(moved.describe(), "live/api:v2 now points at 171c52f23003.");
        let untagged = change(
            r#"{"id":8,"kind":"ImageStream","type":"MODIFIED","namespace":"live","name":"api","reason":"untag","tag":"v2"}"#,
        );
        assert_eq!(untagged.describe(), "live/api:v2 was removed.");
        let failed = LiveChange {
            reason: "import".into(),
            new_image: None,
            ..untagged.clone()
        };
        assert_eq!(failed.describe(), "The import of live/api:v2 failed.");
        let gone = change(
            r#"{"id":9,"kind":"Namespace","type":"DELETED","namespace":"live","name":"live","reason":"delete"}"#,
        );
        assert_eq!(gone.describe(), "Namespace live was deleted.");
        assert!(gone.touches_namespace("live"));
    }

    #[test]
    fn access_changes_read_as_sentences_and_touch_their_place() {
        let access = |json: &str| -> LiveChange {
            serde_json::from_str::<super::AccessChange>(json)
                .expect("an access change as the server sends it")
                .into()
        };
        let binding = access(r#"{"namespace":"team","what":"binding","name":"editor-user-ada"}"#);
        assert_eq!(binding.describe(), "Access to team changed.");
        assert!(binding.touches_access(Some("team")));
        assert!(!binding.touches_access(Some("other")) && !binding.touches_access(None));
        let mine = access(r#"{"user":"ada","what":"token","name":"laptop"}"#);
        assert_eq!(mine.describe(), "Your personal tokens changed.");
        assert!(mine.touches_access(None));
    }
}
