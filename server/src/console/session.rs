//! Who a console request comes from: the caller as the APIs authenticate it (token, password or
//! session), the browser session's signed-in user, and the CSRF check of its changes.

use app::api::{ConsoleError, ConsoleResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use leptos::prelude::use_context;

use crate::auth::Subject;
use crate::auth::credentials::same_secret;
use crate::auth::http::Caller;
use crate::auth::sign_in::{SESSION_CSRF, SESSION_USER};

/// The request being served (a page render or a server function).
fn request() -> ConsoleResult<Parts> {
    use_context::<Parts>()
        .ok_or_else(|| ConsoleError::Request("the console was called outside of a request".into()))
}

/// Who the request comes from, authenticated as the APIs do (token, password or session).
pub(super) async fn caller() -> ConsoleResult<Subject> {
    Ok(authenticated().await?.subject)
}

/// The caller with how they signed in (what a token may make depends on it).
pub(super) async fn authenticated() -> ConsoleResult<Caller> {
    let mut parts = request()?;
    Ok(Caller::from_request_parts(&mut parts, &()).await?)
}

/// The browser session of the request, when it has one.
pub(crate) fn session() -> Option<tower_sessions::Session> {
    use_context::<Parts>()?
        .extensions
        .get::<tower_sessions::Session>()
        .cloned()
}

/// A value of the session; a failed read is the console's `Unavailable`.
pub(crate) async fn session_value(
    session: &tower_sessions::Session,
    key: &str,
) -> ConsoleResult<Option<String>> {
    session.get::<String>(key).await.map_err(|err| {
        tracing::error!(%err, "reading the console session failed");
        ConsoleError::Unavailable(
            "the session could not be read; the server log has the cause".into(),
        )
    })
}

/// Who is signed in to the request's session, and the session's CSRF token.
pub(crate) async fn signed_in_user() -> ConsoleResult<(Option<String>, Option<String>)> {
    match session() {
        Some(session) => Ok((
            session_value(&session, SESSION_USER).await?,
            session_value(&session, SESSION_CSRF).await?,
        )),
        None => Ok((None, None)),
    }
}

/// Checks a change's CSRF token against the session's.
pub(crate) async fn check_session_csrf(
    session: &tower_sessions::Session,
    token: &str,
) -> ConsoleResult<()> {
    match session_value(session, SESSION_CSRF).await? {
        Some(expected) if same_secret(token, &expected) => Ok(()),
        _ => Err(ConsoleError::Csrf),
    }
}

/// Pages rendered for a signed-in session are that person's alone: `Cache-Control: no-store`,
/// so that neither Back after signing out nor a shared cache shows one again. A missing page
/// (404) is always `no-store` (its header says who is signed in), without reading the session
/// here, which would drop a cookie of another Berth on the same host (see `console::router`).
pub async fn no_store_when_signed_in(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    let session = request
        .extensions()
        .get::<tower_sessions::Session>()
        .cloned();
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !html {
        return response;
    }
    if response.status() == StatusCode::NOT_FOUND {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    let Some(session) = session else {
        return response;
    };
    let signed_in = session
        .get::<String>(SESSION_USER)
        .await
        .ok()
        .flatten()
        .is_some();
    if signed_in {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
