use leptos::prelude::*;
use leptos_meta::Title;

use super::podman_login;
use crate::api::tokens::{NewToken, TokenRow, create_token, list_tokens, revoke_token};
use crate::components::{
    ActionError, CommandLine, CopyButton, DeleteButton, ErrorPanel, Loading, When, use_console,
};

/// `(name, days until it expires)`.
type TokenInput = (String, Option<u32>);

/// The signed-in user's personal tokens: create (the secret shown once), revoke, and a ready
/// `podman login`.
#[component]
pub fn TokensPage() -> impl IntoView {
    let console = use_console();
    let create = Action::new(move |(name, days): &TokenInput| {
        let (csrf, name, days) = (console.csrf(), name.clone(), *days);
        async move { create_token(csrf, name, days).await }
    });
    let revoke = Action::new(move |uid: &String| {
        let (csrf, uid) = (console.csrf(), uid.clone());
        async move { revoke_token(csrf, uid).await }
    });
    // Tokens made or revoked elsewhere (another page, the API) come through the feed.
    let live = console.revision(|c| c.touches_access(None));
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get(), live.get()),
        |_| list_tokens(),
    );
    let name = RwSignal::new(String::new());
    let days = RwSignal::new("90".to_owned());
    view! {
        <Title text="Personal tokens"/>
        <section class="panel">
            <h1>"Personal tokens"</h1>
            <p class="muted">"A token signs podman, skopeo, docker and scripts in as you: the user name is ignored, the token is the password."</p>
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
            <ActionError action=revoke/>
            {move || create.value().get().and_then(Result::ok).map(|made| view! { <MadeToken made/> })}
        </section>
        <Transition fallback=|| view! { <Loading what="tokens"/> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Ok(tokens) => view! { <TokenTable tokens revoke/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The token just made: its secret once, and the login command with it.
#[component]
fn MadeToken(made: NewToken) -> impl IntoView {
    let session = use_console().session;
    let secret = made.secret.clone();
    view! {
        <div class="secret" role="status">
            <p>{format!("Token {} created. Copy it now: it is not shown again.", made.token.name)}</p>
            <div class="command"><code data-secret="token">{made.secret.clone()}</code><CopyButton text=made.secret.clone() label="token"/></div>
            <Transition fallback=|| ()>
                {move || {
                    let secret = secret.clone();
                    Suspend::new(async move {
                        let host = session.await.map(|s| s.registry_host).unwrap_or_default();
                        view! { <CommandLine label="podman login command" command=podman_login(&host, "any", &secret)/> }
                    })
                }}
            </Transition>
        </div>
    }
}

#[component]
fn TokenTable(
    tokens: Vec<TokenRow>,
    revoke: Action<String, crate::api::ConsoleResult<()>>,
) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <section class="panel"><p class="empty">"No tokens yet."</p></section> }
            .into_any();
    }
    view! {
        <section class="panel">
            <table class="list tokens">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Created"</th><th scope="col">"Expires"</th>
                    <th scope="col">"Last used"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {tokens.into_iter().map(|t| {
                        let uid = t.uid.clone();
                        view! {
                            <tr data-token=t.name.clone()>
                                <td>{t.name.clone()}</td>
                                <td><When at=t.created.clone()/></td>
                                <td>{t.expires.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "never".into_any())}</td>
                                <td>{t.last_used.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "never".into_any())}</td>
                                <td class="actions">
                                    {if t.revoked {
                                        view! { <span class="badge">"revoked"</span> }.into_any()
                                    } else {
                                        view! { <DeleteButton what=format!("token {}", t.name) on_confirm=move || { revoke.dispatch(uid.clone()); }/> }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
