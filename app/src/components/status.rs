use leptos::prelude::*;
use leptos_router::hooks::use_location;
use leptos_router::location::Location;

use super::use_console;
use crate::api::ConsoleError;
use crate::format::encode;

/// A failed read, said plainly; a missing thing is a real 404 (and a refusal a 403) for the
/// server-rendered page. A refusal to someone not signed in invites them to sign in instead.
#[component]
pub fn ErrorPanel(error: ConsoleError) -> impl IntoView {
    if error == ConsoleError::SignInRequired {
        return view! { <SignInAgain/> }.into_any();
    }
    if matches!(error, ConsoleError::Forbidden(_)) {
        let session = use_console().session;
        return view! {
            <Transition fallback=|| ()>
                {move || {
                    let error = error.clone();
                    Suspend::new(async move {
                        let signed_in = session.await.ok().and_then(|s| s.user).is_some();
                        if signed_in {
                            view! { <ErrorMessage error/> }.into_any()
                        } else {
                            view! { <SignInInvitation/> }.into_any()
                        }
                    })
                }}
            </Transition>
        }
        .into_any();
    }
    view! { <ErrorMessage error/> }.into_any()
}

/// The address of sign-in, coming back to the page at `location` (its query included); read
/// in a closure, it follows the address.
pub fn sign_in_href(location: &Location) -> String {
    let (path, search) = (location.pathname.get(), location.search.get());
    let then = match search.trim_start_matches('?') {
        "" => path,
        query => format!("{path}?{query}"),
    };
    format!("/console/login?then={}", encode(&then))
}

/// A page refused to a visitor who is not signed in: what to do about it, not the refusal's
/// wording (which names `system:anonymous`).
#[component]
fn SignInInvitation() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::UNAUTHORIZED);
    }
    view! {
        <section class="panel error-panel sign-in-invitation">
            <h1>"Sign in to see this page"</h1>
            <p>"What is here is shown to those allowed to see it. Sign in, and you come back here."</p>
            <p><a class="button" href=sign_in_href(&use_location()) rel="external">"Sign in"</a></p>
        </section>
    }
}

/// A failed read's title and message.
#[component]
fn ErrorMessage(error: ConsoleError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(match &error {
            ConsoleError::NotFound(_) | ConsoleError::NotHere(_) => http::StatusCode::NOT_FOUND,
            ConsoleError::Forbidden(_) => http::StatusCode::FORBIDDEN,
            ConsoleError::SignInRequired => http::StatusCode::UNAUTHORIZED,
            ConsoleError::Invalid(_) => http::StatusCode::BAD_REQUEST,
            ConsoleError::AlreadyExists(_) => http::StatusCode::CONFLICT,
            ConsoleError::TooManyRequests(_) => http::StatusCode::TOO_MANY_REQUESTS,
            _ => http::StatusCode::SERVICE_UNAVAILABLE,
        });
    }
    let title = match &error {
        ConsoleError::NotFound(_) => "Not found",
        ConsoleError::NotHere(_) => "Not available here",
        ConsoleError::Forbidden(_) | ConsoleError::SignInRequired => "Not allowed",
        ConsoleError::TooManyRequests(_) => "Too many attempts",
        _ => "Something went wrong",
    };
    let hint = matches!(
        error,
        ConsoleError::Forbidden(_) | ConsoleError::SignInRequired
    );
    view! {
        <section class="panel error-panel" role="alert">
            <h1>{title}</h1>
            <p>{error.to_string()}</p>
            {hint.then(|| view! { <p class="muted">"Signed in as someone else? Sign in with an account that may see this."</p> })}
            <p><a href="/">"Back to namespaces"</a></p>
        </section>
    }
}

/// No session, or one that ended (signed out elsewhere, or a token the cluster no longer
/// takes): back to sign-in, returning to this page. The server answers the page with the
/// redirect.
#[component]
fn SignInAgain() -> impl IntoView {
    let href = sign_in_href(&use_location());
    #[cfg(feature = "ssr")]
    leptos_axum::redirect(&href);
    view! {
        <section class="panel error-panel" role="alert">
            <h1>"Sign in"</h1>
            <p>"Your session has ended. Sign in again to go on."</p>
            <p><a class="button" href=href rel="external">"Sign in"</a></p>
        </section>
    }
}

#[component]
pub fn Loading(#[prop(into)] what: String) -> impl IntoView {
    view! { <p class="muted loading" role="status">{format!("Loading {what}…")}</p> }
}
