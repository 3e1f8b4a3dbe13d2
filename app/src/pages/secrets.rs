use leptos::prelude::*;
use leptos_meta::Title;

use super::{page_title, param};
use crate::api::ConsoleResult;
use crate::api::pull_secrets::{
    PullSecretRow, create_pull_secret, delete_pull_secret, list_pull_secrets,
};
use crate::api::streams::get_permissions;
use crate::components::{
    ActionError, DeleteButton, ErrorPanel, Loading, NeedsRole, When, use_console,
};
use crate::format::encode;

/// (name, registry, user name, password)
type PullSecretInput = (String, String, String, String);

/// A namespace's pull secrets: the credentials its imports use for other registries, listed
/// without the credentials, a form to add one, and a delete for each.
#[component]
pub fn SecretsPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let create = Action::new(
        move |(name, registry, username, password): &PullSecretInput| {
            let csrf = console.csrf();
            let (name, registry, username, password) = (
                name.clone(),
                registry.clone(),
                username.clone(),
                password.clone(),
            );
            async move {
                create_pull_secret(
                    csrf,
                    namespace.get_untracked(),
                    name,
                    registry,
                    username,
                    password,
                )
                .await
            }
        },
    );
    let remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_pull_secret(csrf, namespace.get_untracked(), name).await }
    });
    let secrets = Resource::new(
        move || {
            (
                namespace.get(),
                create.version().get(),
                remove.version().get(),
            )
        },
        |(namespace, ..)| list_pull_secrets(namespace),
    );
    // The form is for those who may use it.
    let permissions = Resource::new(move || namespace.get(), get_permissions);
    view! {
        <Title text=page_title(move || format!("Pull secrets · {}", namespace.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>
        </nav>
        <section class="panel" aria-labelledby="secrets-heading">
            <h1 id="secrets-heading">{move || format!("Pull secrets of {}", namespace.get())}</h1>
            <p class="muted">"Credentials for other registries, used by imports into this namespace. They are never shown again once stored."</p>
            <ActionError action=remove/>
            <Transition fallback=|| view! { <Loading what="pull secrets"/> }>
                {move || Suspend::new(async move {
                    match secrets.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p class="empty">"No pull secrets yet: imports reach other registries anonymously until one is added."</p>
                        }.into_any(),
                        Ok(rows) => view! { <SecretTable rows remove/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match permissions.await {
                    Ok(p) if p.manage_secrets => view! { <NewPullSecret create/> }.into_any(),
                    Ok(_) => view! { <NeedsRole what="add or delete pull secrets" namespace=namespace.get_untracked()/> }.into_any(),
                    // The list above says why.
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn SecretTable(
    rows: Vec<PullSecretRow>,
    remove: Action<String, ConsoleResult<()>>,
) -> impl IntoView {
    view! {
        <table class="list pull-secrets">
            <thead><tr>
                <th scope="col">"Name"</th>
                <th scope="col">"Registries"</th>
                <th scope="col">"Created"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let name = row.name.clone();
                    view! {
                        <tr data-secret=row.name.clone()>
                            <td class="name">{row.name.clone()}</td>
                            <td class="mono">{if row.registries.is_empty() {
                                "—".to_owned()
                            } else {
                                row.registries.join(", ")
                            }}</td>
                            <td class="nowrap">{if row.created.is_empty() {
                                "—".into_any()
                            } else {
                                view! { <When at=row.created.clone()/> }.into_any()
                            }}</td>
                            <td class="actions">
                                <DeleteButton what=format!("pull secret {}", row.name) on_confirm=move || { remove.dispatch(name.clone()); }/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn NewPullSecret(create: Action<PullSecretInput, ConsoleResult<PullSecretRow>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let registry = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch((
            name.get_untracked(),
            registry.get_untracked(),
            username.get_untracked(),
            password.get_untracked(),
        ));
    };
    // Once stored, the form forgets what was typed: the password above all.
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            registry.set(String::new());
            username.set(String::new());
            password.set(String::new());
        }
    });
    view! {
        <section class="panel" aria-labelledby="new-secret-heading">
            <h2 id="new-secret-heading">"Add a pull secret"</h2>
            <form class="stacked-form" on:submit=submit>
                <label for="secret-name">"Name"</label>
                <input id="secret-name" required placeholder="quay" autocomplete="off" prop:value=name
                    on:input=move |ev| name.set(event_target_value(&ev))/>
                <label for="secret-registry">"Registry"</label>
                <input id="secret-registry" required placeholder="quay.io or 127.0.0.1:5000" autocomplete="off" prop:value=registry
                    on:input=move |ev| registry.set(event_target_value(&ev))/>
                <label for="secret-username">"User name"</label>
                <input id="secret-username" required autocomplete="off" prop:value=username
                    on:input=move |ev| username.set(event_target_value(&ev))/>
                <label for="secret-password">"Password or token"</label>
                <input id="secret-password" type="password" required autocomplete="new-password" prop:value=password
                    on:input=move |ev| password.set(event_target_value(&ev))/>
                <button type="submit" disabled=move || create.pending().get()>"Add pull secret"</button>
            </form>
            <ActionError action=create/>
            {move || create.value().get().and_then(Result::ok).map(|row| view! {
                <p class="muted" role="status">{format!("Stored {} for {}.", row.name, row.registries.join(", "))}</p>
            })}
        </section>
    }
}
