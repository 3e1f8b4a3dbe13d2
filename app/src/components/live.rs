//! What every page shares: the session, the live change feed with its notices, and the live
//! regions of a page that the feed reads again from the server.

#[cfg(feature = "hydrate")]
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

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn touches_namespace(&self, namespace: &str) -> bool {
        self.namespace == namespace || (self.kind == "Namespace" && self.name == namespace)
    }

    /// An access change of `namespace`, or of the user's own tokens (`None`).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn touches_access(&self, namespace: Option<&str>) -> bool {
        self.kind == "Access" && self.namespace == namespace.unwrap_or_default()
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn touches_stream(&self, namespace: &str, stream: &str) -> bool {
        self.kind == "ImageStream" && self.namespace == namespace && self.name == stream
    }
}

/// What the server's pages read of the session (who is signed in, the CSRF token, the cluster
/// in front of which the console runs), once per page.
#[derive(Clone, Copy)]
pub struct Console {
    pub session: Resource<ConsoleResult<SessionInfo>>,
}

pub fn use_console() -> Console {
    expect_context::<Console>()
}

pub fn provide_console() -> Console {
    let console = Console {
        session: Resource::new(|| (), |_| current_session()),
    };
    provide_context(console);
    console
}

/// What a live region of a page shows, so that the feed knows which changes touch it:
/// `namespaces` (the namespace list), `namespace:NS`, `stream:NS/NAME`, `access:NS`, or
/// `access:` for the signed-in user's own tokens.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn watches(watch: &str, change: &LiveChange) -> bool {
    match watch.split_once(':') {
        None if watch == "namespaces" => change.kind == "Namespace" || change.kind == "ImageStream",
        Some(("namespace", namespace)) => change.touches_namespace(namespace),
        Some(("stream", place)) => place
            .split_once('/')
            .is_some_and(|(namespace, stream)| change.touches_stream(namespace, stream)),
        Some(("access", "")) => change.touches_access(None),
        Some(("access", namespace)) => change.touches_access(Some(namespace)),
        _ => false,
    }
}

/// A part of a page that shows what changes: rendered on the server, and read again from the
/// server (the page's HTML, this region of it) when the live feed brings a change it `watch`es
/// (see [`watches`]) or a change made on the page succeeds. Forms stay outside regions, so
/// that what is being typed is kept, or are marked `data-keep` (see
/// `keep_what_the_user_made`).
#[component]
pub fn LiveRegion(
    #[prop(into)] watch: String,
    /// Unique on the page: how the region is found in the page read again.
    id: &'static str,
    /// What it shows goes on changing for a while after a change (deliveries, retries): it is
    /// read again every 2 s for 10 s after one, and while it shows something pending.
    #[prop(optional)]
    settle: bool,
    children: Children,
) -> impl IntoView {
    view! { <div class="live-region" id=id data-live=watch data-settle=settle.then_some("")>{children()}</div> }
}

/// The live feed of the page: follows the server's event stream, says each change in a notice
/// (a live region screen readers announce) and reads the page's [`LiveRegion`]s again when a
/// change touches them. Once on every page, last (see `App`), and the one island loaded with the
/// bundle itself: islands hydrate in the page's order, each once its code has come, so when this
/// one does the page's others have, and it marks the page as taken over (`data-hydrated`, which
/// browser tests and the benchmark wait for).
#[island]
pub fn LiveFeed() -> impl IntoView {
    let notices = RwSignal::new(Vec::<(u64, String)>::new());
    #[cfg(feature = "hydrate")]
    {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
        follow_changes(notices);
        read_settling_regions();
    }
    view! {
        <div class="notices" role="status" aria-live="polite">
            <For each=move || notices.get() key=|(id, _)| *id let:notice>
                <p class="notice">{notice.1}</p>
            </For>
        </div>
    }
}

/// Shows a notice for a few seconds.
#[cfg(feature = "hydrate")]
fn say(notices: RwSignal<Vec<(u64, String)>>, text: String) {
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

#[cfg(feature = "hydrate")]
fn follow_changes(notices: RwSignal<Vec<(u64, String)>>) {
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
                say(notices, change.describe());
                if watched_regions()
                    .iter()
                    .any(|(_, watch)| watches(watch, &change))
                {
                    refresh_page().await;
                }
            }
        }
    });
}

/// The page's live regions: `(id, watch)`.
#[cfg(feature = "hydrate")]
fn watched_regions() -> Vec<(String, String)> {
    let Some(body) = document().body() else {
        return Vec::new();
    };
    all(&body, "[data-live]")
        .into_iter()
        .map(|region| {
            (
                region.id(),
                region.get_attribute("data-live").unwrap_or_default(),
            )
        })
        .collect()
}

/// Reads the page again from the server and puts its new live regions in place of the old
/// ones (the islands in them are hydrated anew), leaving everything else, forms and focus
/// outside the regions included, as it is. A page that is gone (deleted meanwhile) keeps what
/// it shows: the notice has said what happened.
#[cfg(feature = "hydrate")]
pub async fn refresh_page() {
    // What follows a change (a webhook's deliveries, their retries) comes a little later.
    SETTLING.with(|left| left.set(5));
    if let Ok(href) = window().location().href() {
        swap_regions(&href).await;
    }
}

/// Every 2 s, the regions that settle are read again while one shows something pending
/// (`data-state="pending"`) or for 10 s after a change, unless a confirm is open (it would
/// close under the user).
#[cfg(feature = "hydrate")]
fn read_settling_regions() {
    let _ = set_interval_with_handle(
        || {
            let document = document();
            let Some(body) = document.body() else {
                return;
            };
            let regions = all(&body, "[data-live][data-settle]");
            if regions.is_empty() || !all(&body, ".confirm[role=dialog]").is_empty() {
                return;
            }
            let pending = regions
                .iter()
                .any(|region| !all(region, "[data-state=pending]").is_empty());
            let left = SETTLING.with(std::cell::Cell::get);
            if left > 0 || pending {
                SETTLING.with(|settling| settling.set(left.saturating_sub(1)));
                if let Ok(href) = window().location().href() {
                    leptos::task::spawn_local(async move {
                        swap_regions(&href).await;
                    });
                }
            }
        },
        Duration::from_secs(2),
    );
}

/// Shows the page at `href` (the same page with other query parameters: a search, a sort) by
/// its live regions, and puts `href` in the address bar in place of the current address.
#[cfg(feature = "hydrate")]
pub async fn show_page(href: &str) {
    if swap_regions(href).await
        && let Ok(history) = window().history()
    {
        let _ =
            history.replace_state_with_url(&leptos::wasm_bindgen::JsValue::NULL, "", Some(href));
    }
}

/// Puts the live regions of the page at `href` in place of this page's; false when that page
/// could not be read.
#[cfg(feature = "hydrate")]
async fn swap_regions(href: &str) -> bool {
    use leptos::wasm_bindgen::{JsCast, JsValue};
    use leptos::web_sys::{DomParser, Element, Response, SupportedType, js_sys};

    // Reads overtaken by a newer one (a search typed on, a change seen meanwhile) are dropped:
    // only the newest read's regions are shown.
    let read = LATEST_READ.with(|latest| {
        latest.set(latest.get() + 1);
        latest.get()
    });
    let window = window();
    let Ok(response) = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(href)).await
    else {
        return false;
    };
    let Ok(response) = response.dyn_into::<Response>() else {
        return false;
    };
    if !response.ok() {
        return false;
    }
    let Ok(text) = response.text() else {
        return false;
    };
    let Some(html) = wasm_bindgen_futures::JsFuture::from(text)
        .await
        .ok()
        .and_then(|text| text.as_string())
    else {
        return false;
    };
    let Ok(parser) = DomParser::new() else {
        return false;
    };
    let Ok(fresh) = parser.parse_from_string(&html, SupportedType::TextHtml) else {
        return false;
    };
    if LATEST_READ.with(std::cell::Cell::get) != read {
        return false;
    }
    let hydrate = js_sys::Reflect::get(&window, &JsValue::from_str("__hydrateIsland"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let document = document();
    // The new islands are hydrated under a root of their own: under the owner of the island
    // whose action asked for this read (itself still hydrating), they would find no element.
    let root = Owner::new_root(Owner::current_shared_context());
    for (id, _) in watched_regions() {
        let (Some(old), Some(new)) = (
            document.get_element_by_id(&id),
            fresh.get_element_by_id(&id),
        ) else {
            continue;
        };
        let Some(new) = document
            .import_node_with_deep(&new, true)
            .ok()
            .and_then(|node| node.dyn_into::<Element>().ok())
        else {
            continue;
        };
        let islands = all(&new, "leptos-island");
        keep_what_the_user_made(&old, &new);
        while let Some(child) = old.first_child() {
            let _ = old.remove_child(&child);
        }
        while let Some(child) = new.first_child() {
            let _ = old.append_child(&child);
        }
        // Kept parts took the place of theirs: their islands are hydrated already.
        for island in islands.into_iter().filter(|island| island.is_connected()) {
            let component = island.get_attribute("data-component").unwrap_or_default();
            if let Some(hydrate) = &hydrate {
                let _ = root.with(|| {
                    hydrate.call2(&JsValue::NULL, &island, &JsValue::from_str(&component))
                });
            }
        }
    }
    // The islands live as long as the page: their root is never disposed.
    std::mem::forget(root);
    true
}

/// What the user did to a region being read again stays: a part marked `data-keep="KEY"` (an
/// edit form with what is typed in it, a secret just shown) takes the place of the new one
/// with the same key, and `<details id>` open stay open.
#[cfg(feature = "hydrate")]
fn keep_what_the_user_made(old: &leptos::web_sys::Element, new: &leptos::web_sys::Element) {
    let kept = all(old, "[data-keep]");
    for fresh in all(new, "[data-keep]") {
        let key = fresh.get_attribute("data-keep");
        if let Some(kept) = kept
            .iter()
            .find(|kept| kept.get_attribute("data-keep") == key)
        {
            let _ = fresh.replace_with_with_node_1(kept);
        }
    }
    let open: Vec<String> = all(old, "details[id][open]")
        .iter()
        .map(|details| details.id())
        .collect();
    for details in all(new, "details[id]") {
        if open.contains(&details.id()) {
            let _ = details.set_attribute("open", "");
        }
    }
}

/// The elements under `root` that `selector` matches.
#[cfg(feature = "hydrate")]
fn all(root: &leptos::web_sys::Element, selector: &str) -> Vec<leptos::web_sys::Element> {
    let Ok(nodes) = root.query_selector_all(selector) else {
        return Vec::new();
    };
    (0..nodes.length())
        .filter_map(|i| nodes.item(i))
        .filter_map(|node| leptos::wasm_bindgen::JsCast::dyn_into(node).ok())
        .collect()
}

#[cfg(feature = "hydrate")]
thread_local! {
    /// The number of the newest read of the page's regions.
    static LATEST_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// How many more times regions that settle (see [`LiveRegion`]'s `settle`) are read again.
    static SETTLING: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// The session's CSRF token, which every change carries: the sign-out form holds it (see
/// `UserMenu`), and islands read it there.
#[cfg(feature = "hydrate")]
pub fn csrf() -> String {
    document()
        .get_element_by_id("csrf-token")
        .and_then(|input| {
            leptos::wasm_bindgen::JsCast::dyn_into::<leptos::web_sys::HtmlInputElement>(input).ok()
        })
        .map(|input| input.value())
        .unwrap_or_default()
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
