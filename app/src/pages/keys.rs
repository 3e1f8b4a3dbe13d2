use leptos::prelude::*;
use leptos_meta::Title;

use super::{page_title, param};
use crate::api::ConsoleResult;
use crate::api::signatures::{
    TrustedKeyRow, add_trusted_key, delete_trusted_key, list_trusted_keys,
};
use crate::components::{ActionError, DeleteButton, ErrorPanel, Loading, TextField, use_console};
use crate::format::{encode, time};

/// (name, PEM public key)
type KeyInput = (String, String);

/// A namespace's trusted signing keys: the public keys cosign signatures of its images are
/// verified with (its admins'), a form to add one and a delete for each.
#[component]
pub fn KeysPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let create = Action::new(move |(name, key): &KeyInput| {
        let (csrf, name, key) = (console.csrf(), name.clone(), key.clone());
        async move { add_trusted_key(csrf, namespace.get_untracked(), name, key).await }
    });
    let remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_trusted_key(csrf, namespace.get_untracked(), name).await }
    });
    // The form's fields live here: the list (and the form with it) is read again after every
    // attempt, and a refused attempt keeps what was typed.
    let fields = KeyFields {
        name: RwSignal::new(String::new()),
        key: RwSignal::new(String::new()),
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            fields.name.set(String::new());
            fields.key.set(String::new());
        }
    });
    let keys = Resource::new(
        move || {
            (
                namespace.get(),
                create.version().get(),
                remove.version().get(),
            )
        },
        |(namespace, ..)| list_trusted_keys(namespace),
    );
    view! {
        <Title text=page_title(move || format!("Signing keys · {}", namespace.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>
        </nav>
        <section class="panel" aria-labelledby="keys-heading">
            <h1 id="keys-heading">{move || format!("Trusted signing keys of {}", namespace.get())}</h1>
            <p class="muted">"A cosign signature of an image in this namespace shows as verified when one of these public keys verifies it."</p>
            <ActionError action=remove/>
            <Transition fallback=|| view! { <Loading what="trusted keys"/> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p class="empty">"No trusted keys yet: signatures are listed on image pages, but none shows as verified."</p>
                            <NewKey create fields/>
                        }.into_any(),
                        Ok(rows) => view! { <KeyTable rows remove/><NewKey create fields/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn KeyTable(rows: Vec<TrustedKeyRow>, remove: Action<String, ConsoleResult<()>>) -> impl IntoView {
    view! {
        <table class="list trusted-keys">
            <thead><tr>
                <th scope="col">"Name"</th>
                <th scope="col">"Algorithm"</th>
                <th scope="col">"Fingerprint (SHA-256)"</th>
                <th scope="col">"Added"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let name = row.name.clone();
                    view! {
                        <tr data-key=row.name.clone()>
                            <td class="name">{row.name.clone()}</td>
                            <td>{row.algorithm.clone()}</td>
                            <td class="mono small" title=row.fingerprint.clone()>{row.fingerprint.chars().take(16).collect::<String>()}"…"</td>
                            <td class="nowrap">{if row.created.is_empty() { "—".to_owned() } else { time(&row.created) }}</td>
                            <td class="actions">
                                <DeleteButton what=format!("trusted key {}", row.name) on_confirm=move || { remove.dispatch(name.clone()); }/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The new key form's fields.
#[derive(Clone, Copy)]
struct KeyFields {
    name: RwSignal<String>,
    key: RwSignal<String>,
}

#[component]
fn NewKey(
    create: Action<KeyInput, ConsoleResult<TrustedKeyRow>>,
    fields: KeyFields,
) -> impl IntoView {
    let KeyFields { name, key } = fields;
    view! {
        <div class="new-key">
            <h2 id="new-key-heading">"Add a trusted key"</h2>
            <form class="stacked-form" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch((name.get_untracked(), key.get_untracked()));
            }>
                <TextField id="key-name" label="Name" value=name placeholder="release-signing" required=true/>
                <label for="key-pem">"Public key (PEM)"</label>
                <div class="field">
                    <textarea id="key-pem" required rows="6" class="mono" aria-describedby="key-pem-hint"
                        placeholder="-----BEGIN PUBLIC KEY-----"
                        prop:value=key on:input=move |ev| key.set(event_target_value(&ev))></textarea>
                    <span class="muted small" id="key-pem-hint">"The contents of cosign.pub: an ECDSA P-256 or Ed25519 public key."</span>
                </div>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Add key"</button>
            </form>
            <ActionError action=create/>
            {move || create.value().get().and_then(Result::ok).map(|row| view! {
                <p class="muted" role="status">{format!("Added {} ({}).", row.name, row.algorithm)}</p>
            })}
        </div>
    }
}
