use leptos::prelude::*;
use leptos_router::hooks::use_location;

use super::{sign_in_href, use_console};
use crate::api::ConsoleError;

/// Who is signed in, their tokens and a sign-out button; or a sign-in link back to this page.
#[component]
pub fn UserMenu() -> impl IntoView {
    let session = use_console().session;
    let location = use_location();
    view! {
        <nav class="user-menu" aria-label="Account">
            <Transition fallback=|| ()>
                {move || {
                let location = location.clone();
                Suspend::new(async move {
                    match session.await {
                        Ok(info) => match (info.user, info.csrf_token) {
                            (Some(user), Some(csrf)) => view! {
                                <span class="who" data-user=user.clone()>{user.clone()}</span>
                                // In front of a cluster, tokens come from the cluster (`oc whoami -t`).
                                {info.upstream.is_none().then(|| view! { <a href="/tokens">"Tokens"</a> })}
                                <form method="post" action="/console/logout" class="inline">
                                    <input type="hidden" name="csrf_token" id="csrf-token" value=csrf/>
                                    <button type="submit" class="link">"Sign out"</button>
                                </form>
                            }.into_any(),
                            _ => view! { <a class="button" href=move || sign_in_href(&location) rel="external">"Sign in"</a> }.into_any(),
                        },
                        // A missing file's 404 is rendered without a data source (see
                        // `console::router`): it says nothing of the session.
                        Err(ConsoleError::NotFound(_)) => ().into_any(),
                        Err(err) => view! { <span class="error">{err.to_string()}</span> }.into_any(),
                    }
                })
                }}
            </Transition>
        </nav>
    }
}
