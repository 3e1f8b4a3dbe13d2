use leptos::prelude::*;
use leptos_meta::Title;

use super::param;
use crate::api::signatures::{TrustedKeyRow, list_trusted_keys};
use crate::components::{
    ActionError, Change, DeleteChangeButton, ErrorPanel, LiveRegion, Loading, TextField,
    island_action,
};
use crate::format::{encode, time};

/// (name, PEM public key)
type KeyInput = (String, String);

/// A namespace's trusted signing keys: the public keys cosign signatures of its images are
/// verified with (its admins'), a form to add one and a delete for each.
#[component]
pub fn KeysPage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let keys = Resource::new(
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        list_trusted_keys,
    );
    let (title, home, heading) = (
        format!("Signing keys · {namespace}"),
        format!("/ns/{}", encode(&namespace)),
        format!("Trusted signing keys of {namespace}"),
    );
    let crumb = namespace.clone();
    view! {
        <Title text=title/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=home>{crumb}</a>
        </nav>
        <section class="panel" aria-labelledby="keys-heading">
            <h1 id="keys-heading">{heading}</h1>
            <p class="muted">"A cosign signature of an image in this namespace shows as verified when one of these public keys verifies it."</p>
            <Suspense fallback=|| view! { <Loading what="trusted keys"/> }>
                {move || {
                    let namespace = namespace.clone();
                    Suspend::new(async move {
                        match keys.await {
                            Ok(rows) => view! { <TrustedKeys namespace rows/> }.into_any(),
                            Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

/// The keys, read again after a change, and the form that adds one.
#[component]
fn TrustedKeys(namespace: String, rows: Vec<TrustedKeyRow>) -> impl IntoView {
    let watch = format!("namespace:{namespace}");
    let table = view! { <KeyTable rows namespace=namespace.clone()/> };
    view! {
        <LiveRegion watch id="trusted-keys">{table}</LiveRegion>
        <div class="new-key">
            <h2 id="new-key-heading">"Add a trusted key"</h2>
            <NewKey namespace/>
        </div>
    }
}

#[component]
fn KeyTable(rows: Vec<TrustedKeyRow>, namespace: String) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <p class="empty">"No trusted keys yet: signatures are listed on image pages, but none shows as verified."</p>
        }
        .into_any();
    }
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
                    let change = Change::DeleteTrustedKey { namespace: namespace.clone(), name: row.name.clone() };
                    view! {
                        <tr data-key=row.name.clone()>
                            <td class="name">{row.name.clone()}</td>
                            <td>{row.algorithm.clone()}</td>
                            <td class="mono small" title=row.fingerprint.clone()>{row.fingerprint.chars().take(16).collect::<String>()}"…"</td>
                            <td class="nowrap">{if row.created.is_empty() { "—".to_owned() } else { time(&row.created) }}</td>
                            <td class="actions">
                                <DeleteChangeButton change what=format!("trusted key {}", row.name)/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The form that adds a trusted key to `namespace`: a refused key keeps what was typed, an
/// added one clears the form and the list is read again.
#[island(lazy)]
fn NewKey(namespace: String) -> impl IntoView {
    crate::components::preload_island(NewKey);
    let name = RwSignal::new(String::new());
    let key = crate::components::typed_field("key-pem", "");
    let create = island_action(move |input: &KeyInput| {
        let ((name, key), namespace) = (input.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                let row = crate::api::signatures::add_trusted_key(
                    crate::components::csrf(),
                    namespace,
                    name,
                    key,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(row)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, name, key);
                crate::components::made_in_the_browser::<TrustedKeyRow>()
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            key.set(String::new());
        }
    });
    view! {
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
    }
}
