use leptos::prelude::*;
use leptos_meta::Title;

use super::podman_login;
use crate::api::tokens::{NewToken, TokenRow, list_tokens};
use crate::components::{
    ActionError, Change, CommandLine, CopyButton, DeleteChangeButton, ErrorPanel, LiveRegion,
    Loading, When, island_action, use_console,
};

/// `(name, days until it expires)`.
type TokenInput = (String, Option<u32>);

/// The signed-in user's personal tokens: create (the secret shown once), revoke, and a ready
/// `podman login`.
#[component]
pub fn TokensPage() -> impl IntoView {
    let console = use_console();
    let tokens = Resource::new(|| (), |_| list_tokens());
    view! {
        <Title text="Personal tokens"/>
        <section class="panel">
            <h1>"Personal tokens"</h1>
            <p class="muted">"A token signs podman, skopeo, docker and scripts in as you: the user name is ignored, the token is the password."</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let registry_host = console.session.await.map(|s| s.registry_host).unwrap_or_default();
                    view! { <CreateToken registry_host/> }
                })}
            </Suspense>
        </section>
        <Suspense fallback=|| view! { <Loading what="tokens"/> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    // Tokens made or revoked elsewhere (another page, the API) come through the feed.
                    Ok(tokens) => view! {
                        <section class="panel">
                            <LiveRegion watch="access:" id="tokens"><TokenTable tokens/></LiveRegion>
                        </section>
                    }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The new token's name and lifetime, and the token once made (outside the live region, so
/// that its secret stays while the list is read again).
#[island(lazy)]
fn CreateToken(registry_host: String) -> impl IntoView {
    crate::components::preload_island(CreateToken);
    let name = crate::components::typed_field("token-name", "");
    let days = RwSignal::new("90".to_owned());
    let create = island_action(move |input: &TokenInput| {
        let (name, days) = input.clone();
        async move {
            #[cfg(feature = "hydrate")]
            {
                let made =
                    crate::api::tokens::create_token(crate::components::csrf(), name, days).await?;
                crate::components::refresh_page().await;
                Ok(made)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (name, days);
                crate::components::made_in_the_browser()
            }
        }
    });
    view! {
        <form class="inline-form" aria-label="Create a token" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch((name.get_untracked(), days.get_untracked().parse().ok()));
        }>
            <label for="token-name">"Name"</label>
            <input id="token-name" maxlength="100" placeholder="laptop" prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
            <label for="token-days">"Expires"</label>
            <select id="token-days" prop:value=days on:change=move |ev| days.set(event_target_value(&ev))>
                <option value="7">"in 7 days"</option>
                <option value="30">"in 30 days"</option>
                <option value="90">"in 90 days"</option>
                <option value="365">"in a year"</option>
                <option value="never">"never"</option>
            </select>
            <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
        </form>
        <ActionError action=create/>
        {move || create.value().get().and_then(Result::ok).map(|made| {
            let host = registry_host.clone();
            view! { <MadeToken made host/> }
        })}
    }
}

/// The token just made: its secret once, and the login command with it.
#[component]
fn MadeToken(made: NewToken, host: String) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p>{format!("Token {} created. Copy it now: it is not shown again.", made.token.name)}</p>
            <div class="command"><code data-secret="token">{made.secret.clone()}</code><CopyButton text=made.secret.clone() label="token".to_owned()/></div>
            <CommandLine label="podman login command".to_owned() command=podman_login(&host, "any", &made.secret)/>
        </div>
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenRow>) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="empty">"No tokens yet."</p> }.into_any();
    }
    view! {
        <table class="list tokens">
            <thead><tr>
                <th scope="col">"Name"</th><th scope="col">"Created"</th><th scope="col">"Expires"</th>
                <th scope="col">"Last used"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {tokens.into_iter().map(|t| view! {
                    <tr data-token=t.name.clone()>
                        <td>{t.name.clone()}</td>
                        <td><When at=t.created.clone()/></td>
                        <td>{t.expires.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "never".into_any())}</td>
                        <td>{t.last_used.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "never".into_any())}</td>
                        <td class="actions">
                            {if t.revoked {
                                view! { <span class="badge">"revoked"</span> }.into_any()
                            } else {
                                view! { <DeleteChangeButton change=Change::RevokeToken { uid: t.uid.clone() } what=format!("token {}", t.name)/> }.into_any()
                            }}
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
