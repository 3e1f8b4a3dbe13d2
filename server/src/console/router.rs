//! The console's routes, in both modes: its pages and server functions (Leptos), the `/pkg`
//! files, and the session layer they sign in through.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::FromRef;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;

use crate::config::Config;
use crate::storage::sessions::ConsoleSessions;
use crate::{assets, console, web};

/// State of the console routes (leptos_axum wants its options reachable from the state).
#[derive(Clone)]
struct ConsoleState {
    leptos_options: LeptosOptions,
}

impl FromRef<ConsoleState> for LeptosOptions {
    fn from_ref(state: &ConsoleState) -> Self {
        state.leptos_options.clone()
    }
}

/// Console sessions in `pool` (the metadata database, so that they survive a restart; or a
/// database in memory), expired ones deleted every hour.
pub async fn sessions(
    config: &Config,
    store: ConsoleSessions,
) -> anyhow::Result<tower_sessions::SessionManagerLayer<ConsoleSessions>> {
    store
        .migrate()
        .await
        .context("creating the sessions table")?;
    tokio::spawn(
        store
            .clone()
            .delete_expired_every(std::time::Duration::from_secs(3600)),
    );
    let secure = config
        .auth
        .public_url
        .as_deref()
        .map_or(config.tls.is_some(), |url| url.starts_with("https://"));
    Ok(tower_sessions::SessionManagerLayer::new(store)
        .with_name("berth_session")
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(secure)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(config.auth.session_hours as i64),
        )))
}

/// The largest request body the console's pages and server functions take.
const CONSOLE_BODY_BYTES: usize = 1024 * 1024;

/// The console: its pages rendered with the data source `data`, its server functions, and the
/// `/pkg` files.
pub fn router(config: &Config, data: Arc<dyn app::api::ConsoleData>) -> Router {
    let hashed = assets::hashed_names("hash.txt", "berth");
    let site = config.site_dir();
    let leptos_options = LeptosOptions::builder()
        .output_name("berth")
        .site_root(site.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .hash_files(hashed)
        .build();
    tokio::spawn(assets::precompress(site.join("pkg")));
    let state = ConsoleState { leptos_options };
    let routes = generate_route_list(app::App);
    let shell_options = state.leptos_options.clone();
    // Every render gets the nonce that the edge's Content-Security-Policy names; the pages
    // also get the data source. The 404 page gets it only when a browser asks for a page
    // (`Accept: text/html`), to say who is signed in: a request for a missing file (an icon,
    // a script) would load the session of whatever cookie came with it, and the session layer
    // removes a cookie it does not know (another Berth's on the same host).
    let not_found_data = data.clone();
    let context = move || {
        provide_context(data.clone());
        web::provide_page_nonce();
    };
    let not_found_context = move || {
        web::provide_page_nonce();
        let wants_page = use_context::<axum::http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
        });
        if wants_page {
            provide_context(not_found_data.clone());
        }
    };
    Router::new()
        .leptos_routes_with_context(&state, routes, context, move || {
            app::shell(shell_options.clone())
        })
        // Browsers ask for `/favicon.ico` on pages that name no icon (and some always do):
        // the site's icon is an SVG.
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { axum::response::Redirect::permanent("/favicon.svg") }),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            ConsoleState,
            _,
        >(not_found_context, app::shell))
        .with_state(state)
        .layer(axum::middleware::from_fn(console::errors::error_status))
        .layer(axum::middleware::from_fn(
            console::session::no_store_when_signed_in,
        ))
        // The console's forms are small; a larger body is refused before it is read (and, in
        // front of a cluster, before anything is sent on).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            CONSOLE_BODY_BYTES,
        ))
        // Pages and server-function answers; the event stream is never compressed.
        .layer(CompressionLayer::new())
        .nest_service("/pkg", assets::router(site.join("pkg"), hashed))
}
