//! Berth's web console: the HTML shell, the app and its route table. Pages live in `pages/`,
//! shared pieces in `components/`, and what pages read in `api`.

#![recursion_limit = "256"]

pub mod api;
mod components;
pub mod format;
mod pages;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use components::{LiveFeed, UserMenu, provide_console, provide_island_preloads, use_console};
use pages::{
    AccessPage, AuditPage, ComparePage, ImageFilesPage, ImagePage, KeysPage, LayerFilesPage,
    LifecyclePage, NamespacePage, NamespacesPage, NotFound, PrunePage, SecretsPage, StreamPage,
    TokensPage, UsersPage, WebhooksPage,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet options=options.clone() id="berth"/>
                <HydrationScripts options islands=true/>
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
    provide_console();
    provide_island_preloads();
    view! {
        <Title formatter=document_title/>
        <Router>
            <a class="skip" href="#main" rel="external">"Skip to content"</a>
            <header class="topbar">
                <a class="brand" href="/">"Berth"</a>
                <Tagline/>
                <UserMenu/>
            </header>
            <main id="main" tabindex="-1">
                // Async: the page is sent once its data is read, so a missing stream is a real
                // 404 (the status goes out with the first byte).
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=NamespacesPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens") view=TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/prune") view=PrunePage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace") view=NamespacePage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/access") view=AccessPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/secrets") view=SecretsPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/keys") view=KeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/lifecycle") view=LifecyclePage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream") view=StreamPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream/access") view=AccessPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream/compare") view=ComparePage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream/images/:digest") view=ImagePage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream/images/:digest/files") view=ImageFilesPage ssr=SsrMode::Async/>
                    <Route path=path!("/ns/:namespace/streams/:stream/images/:digest/layers/:layer") view=LayerFilesPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            // Last: it marks the page hydrated once every island before it is.
            <LiveFeed/>
        </Router>
    }
}

/// The document title of every page (no page sets a formatter of its own). On the server,
/// leptos_meta writes it into `<title>` as it stands, so it is escaped there: a page's title
/// holds names from the address (`/ns/<name>`). In the browser it becomes `document.title`,
/// which is text.
fn document_title(page: String) -> String {
    let title = if page.is_empty() {
        "Berth".to_owned()
    } else {
        format!("{page} · Berth")
    };
    if cfg!(feature = "ssr") {
        format::escape_html(&title)
    } else {
        title
    }
}

/// What the console is: Berth's own, or the console of a cluster it is in front of.
#[component]
fn Tagline() -> impl IntoView {
    let session = use_console().session;
    view! {
        <span class="tagline">
            <Transition fallback=|| "container registry">
                {move || Suspend::new(async move {
                    match session.await.ok().and_then(|info| info.upstream) {
                        Some(cluster) => format!("console of {cluster}"),
                        None => "container registry".to_owned(),
                    }
                })}
            </Transition>
        </span>
    }
}
