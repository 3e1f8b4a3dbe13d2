use leptos::prelude::*;

use crate::api::ConsoleError;

/// A failed read, said plainly; a missing thing is a real 404 (and a refusal a 403) for the
/// server-rendered page.
#[component]
pub fn ErrorPanel(error: ConsoleError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(match &error {
            ConsoleError::NotFound(_) => http::StatusCode::NOT_FOUND,
            ConsoleError::Forbidden(_) => http::StatusCode::FORBIDDEN,
            ConsoleError::SignInRequired => http::StatusCode::UNAUTHORIZED,
            ConsoleError::Invalid(_) => http::StatusCode::BAD_REQUEST,
            _ => http::StatusCode::SERVICE_UNAVAILABLE,
        });
    }
    let title = match &error {
        ConsoleError::NotFound(_) => "Not found",
        ConsoleError::Forbidden(_) | ConsoleError::SignInRequired => "Not allowed",
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

#[component]
pub fn Loading(#[prop(into)] what: String) -> impl IntoView {
    view! { <p class="muted loading" role="status">{format!("Loading {what}…")}</p> }
}
