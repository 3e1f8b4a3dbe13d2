//! Focus after a client-side navigation: on the new page's heading, as a screen reader user
//! expects after following a link (otherwise it falls to `<body>` when the link goes away).

use std::time::Duration;

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos_router::hooks::use_location;

/// How long the new page's heading is waited for (it comes with the page's data).
const TRIES: u32 = 60;
const EVERY: Duration = Duration::from_millis(50);

/// Placed once inside the router: when the path changes, the focus moves to the new page's
/// `h1` once it is there (to `<main>` if none comes), unless the user has put it somewhere.
#[component]
pub fn FocusOnNavigation() -> impl IntoView {
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        if previous.is_some_and(|previous| previous != path) {
            focus_heading(TRIES);
        }
        path
    });
}

fn focus_heading(tries_left: u32) {
    set_timeout(
        move || {
            let document = document();
            // Focus the user has put into the page meanwhile stays where it is.
            let elsewhere = document
                .active_element()
                .is_some_and(|active| active.tag_name() != "BODY" && active.id() != "main");
            if elsewhere {
                return;
            }
            let heading = document
                .query_selector("main h1")
                .ok()
                .flatten()
                .and_then(|h| h.dyn_into::<leptos::web_sys::HtmlElement>().ok());
            match heading {
                Some(heading) => {
                    let _ = heading.set_attribute("tabindex", "-1");
                    let _ = heading.focus();
                }
                None if tries_left > 0 => focus_heading(tries_left - 1),
                None => {
                    if let Some(main) = document
                        .get_element_by_id("main")
                        .and_then(|m| m.dyn_into::<leptos::web_sys::HtmlElement>().ok())
                    {
                        let _ = main.focus();
                    }
                }
            }
        },
        EVERY,
    );
}
