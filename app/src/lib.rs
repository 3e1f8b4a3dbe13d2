//! Berth's web console: the HTML shell, the app and its route table. Pages live in `pages/`,
//! shared pieces in `components/`, and what pages read in `api`.

pub mod api;
mod components;
mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use pages::{NotFound, RepositoriesPage};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: the mark says the WASM bundle has taken over the page
    // (browser tests wait for it).
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="berth" href="/pkg/berth.css"/>
        <Title formatter=|page: String| if page.is_empty() { "Berth".to_owned() } else { format!("{page} · Berth") }/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Berth"</a>
                <span class="tagline">"container registry"</span>
                <components::UserMenu/>
            </header>
            <main id="main">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=RepositoriesPage/>
                </Routes>
            </main>
        </Router>
    }
}
