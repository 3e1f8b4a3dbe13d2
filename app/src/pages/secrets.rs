use leptos::prelude::*;
use leptos_meta::Title;

use super::param;
use crate::api::ConsoleResult;
use crate::api::pull_secrets::{PullSecretRow, list_pull_secrets};
use crate::api::streams::get_permissions;
use crate::components::{
    ActionError, Change, DeleteChangeButton, ErrorPanel, LiveRegion, Loading, NeedsRole, When,
    island_action,
};
use crate::format::encode;

/// (name, registry, user name, password)
type PullSecretInput = (String, String, String, String);

/// A namespace's pull secrets: the credentials its imports use for other registries, listed
/// without the credentials, a form to add one, and a delete for each.
#[component]
pub fn SecretsPage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let secrets = Resource::new(
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        list_pull_secrets,
    );
    // The form is for those who may use it.
    let permissions = Resource::new(
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        get_permissions,
    );
    let (title, home) = (
        format!("Pull secrets · {namespace}"),
        format!("/ns/{}", encode(&namespace)),
    );
    view! {
        <Title text=title/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=home>{namespace.clone()}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="pull secrets"/> }>
            {move || {
                let namespace = namespace.clone();
                Suspend::new(async move {
                    // Without the permissions, the list says why.
                    let may_manage = permissions.await.ok().map(|p| p.manage_secrets);
                    view! { <PullSecrets namespace rows=secrets.await may_manage/> }
                })
            }}
        </Suspense>
    }
}

#[component]
fn PullSecrets(
    namespace: String,
    rows: ConsoleResult<Vec<PullSecretRow>>,
    may_manage: Option<bool>,
) -> impl IntoView {
    let list = match rows {
        Ok(rows) => {
            let table = view! { <SecretTable rows namespace=namespace.clone()/> };
            view! { <LiveRegion watch=format!("namespace:{namespace}") id="pull-secrets">{table}</LiveRegion> }
                .into_any()
        }
        Err(error) => view! { <ErrorPanel error/> }.into_any(),
    };
    let form = match may_manage {
        Some(true) => view! {
            <section class="panel" aria-labelledby="new-secret-heading">
                <h2 id="new-secret-heading">"Add a pull secret"</h2>
                <NewPullSecret namespace=namespace.clone()/>
            </section>
        }
        .into_any(),
        Some(false) => {
            view! { <NeedsRole what="add or delete pull secrets" namespace=namespace.clone()/> }
                .into_any()
        }
        None => ().into_any(),
    };
    view! {
        <section class="panel" aria-labelledby="secrets-heading">
            <h1 id="secrets-heading">{format!("Pull secrets of {namespace}")}</h1>
            <p class="muted">"Credentials for other registries, used by imports into this namespace. They are never shown again once stored."</p>
            {list}
        </section>
        {form}
    }
}

#[component]
fn SecretTable(rows: Vec<PullSecretRow>, namespace: String) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <p class="empty">"No pull secrets yet: imports reach other registries anonymously until one is added."</p>
        }
        .into_any();
    }
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
                    let change = Change::DeletePullSecret { namespace: namespace.clone(), name: row.name.clone() };
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
                                <DeleteChangeButton change what=format!("pull secret {}", row.name)/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The form that adds a pull secret to `namespace`; once stored, it forgets what was typed
/// (the password above all) and the list is read again.
#[island(lazy)]
fn NewPullSecret(namespace: String) -> impl IntoView {
    crate::components::preload_island(NewPullSecret);
    let name = crate::components::typed_field("secret-name", "");
    let registry = crate::components::typed_field("secret-registry", "");
    let username = crate::components::typed_field("secret-username", "");
    let password = crate::components::typed_field("secret-password", "");
    let create = island_action(move |input: &PullSecretInput| {
        let ((name, registry, username, password), namespace) = (input.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                let row = crate::api::pull_secrets::create_pull_secret(
                    crate::components::csrf(),
                    namespace,
                    name,
                    registry,
                    username,
                    password,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(row)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, name, registry, username, password);
                crate::components::made_in_the_browser::<PullSecretRow>()
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch((
            name.get_untracked(),
            registry.get_untracked(),
            username.get_untracked(),
            password.get_untracked(),
        ));
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            for field in [name, registry, username, password] {
                field.set(String::new());
            }
        }
    });
    view! {
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
    }
}
