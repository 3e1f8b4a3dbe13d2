use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::api::audit::may_read_audit;
use crate::api::namespaces::{NamespaceList, list_namespaces};
use crate::api::prune::get_pruner;
use crate::api::users::may_list_users;
use crate::components::{
    ActionError, Change, ChangeButton, ErrorPanel, LiveRegion, Loading, When, island_action,
    sign_in_href, use_console,
};
use crate::format::{encode, size};

/// The namespaces the caller may see, with counts and storage used; create and delete for
/// those allowed.
#[component]
pub fn NamespacesPage() -> impl IntoView {
    let console = use_console();
    let namespaces = Resource::new(|| (), |_| list_namespaces());
    // The prune page is linked for those the server lets read the image pruner: the cluster
    // administrators.
    let pruner = Resource::new(|| (), |_| get_pruner());
    // So are the users and the audit log, for those the server lets read them.
    let users = Resource::new(|| (), |_| may_list_users());
    let audit = Resource::new(|| (), |_| may_read_audit());
    view! {
        <Title text="Namespaces"/>
        <Suspense fallback=|| view! { <Loading what="namespaces"/> }>
            {move || Suspend::new(async move {
                match namespaces.await {
                    Ok(list) => {
                        let signed_in = console.session.await.ok().and_then(|s| s.user).is_some();
                        let pruner = pruner.await.is_ok();
                        let admin = AdminLinks {
                            users: users.await.unwrap_or(false),
                            audit: audit.await.unwrap_or(false),
                        };
                        view! { <NamespaceTable list signed_in pruner admin/> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The registry-wide pages linked from the head of the list, for those who may read them.
#[derive(Debug, Clone, Copy)]
struct AdminLinks {
    users: bool,
    audit: bool,
}

#[component]
fn NamespaceTable(
    list: NamespaceList,
    signed_in: bool,
    pruner: bool,
    admin: AdminLinks,
) -> impl IntoView {
    let can_create = list.can_create;
    let empty = list.namespaces.is_empty();
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>"Namespaces"</h1>
                {pruner.then(|| view! { <a class="head-link" href="/prune">"Prune images"</a> })}
                {admin.users.then(|| view! { <a class="head-link" href="/users">"Users"</a> })}
                {admin.audit.then(|| view! { <a class="head-link" href="/audit">"Audit log"</a> })}
                {can_create.then(|| view! { <CreateNamespace/> })}
            </div>
            <LiveRegion watch="namespaces" id="namespaces">
                {if empty && !signed_in {
                    view! {
                        <div class="empty sign-in-invitation">
                            <p>"Sign in to see the namespaces you may use."</p>
                            <p><a class="button" href=sign_in_href(&use_location()) rel="external">"Sign in"</a></p>
                        </div>
                    }.into_any()
                } else if empty {
                    view! {
                        <div class="empty">
                            <p>"No namespaces yet."</p>
                            {if can_create {
                                "Create one above, or push an image: a push creates its namespace."
                            } else {
                                "Ask an administrator for access to a namespace."
                            }}
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <table class="list namespaces">
                            <thead>
                                <tr>
                                    <th scope="col">"Namespace"</th>
                                    <th scope="col" class="num">"Image streams"</th>
                                    <th scope="col" class="num">"Storage"</th>
                                    <th scope="col">"Created"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {list.namespaces.into_iter().map(|ns| {
                                    let name = ns.name.clone();
                                    view! {
                                        <tr data-namespace=ns.name.clone()>
                                            <td class="name"><a href=format!("/ns/{}", encode(&ns.name))>{ns.name.clone()}</a></td>
                                            <td class="num">{ns.streams.map(|n| n.to_string()).unwrap_or_else(|| "—".into())}</td>
                                            <td class="num">{ns.size.map(size).unwrap_or_else(|| "—".into())}</td>
                                            <td><When at=ns.created.clone()/></td>
                                            <td class="actions">
                                                {ns.can_delete.then(|| view! { <DeleteNamespace name/> })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </LiveRegion>
        </section>
    }
}

/// A new namespace's name, and the button that makes it.
#[island(lazy)]
fn CreateNamespace() -> impl IntoView {
    crate::components::preload_island(CreateNamespace);
    let name = crate::components::typed_field("new-namespace", "");
    let create = island_action(move |name: &String| {
        let name = name.clone();
        async move {
            #[cfg(feature = "hydrate")]
            {
                crate::api::namespaces::create_namespace(crate::components::csrf(), name).await?;
                crate::components::refresh_page().await;
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = name;
            Ok::<_, crate::api::ConsoleError>(())
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = create.value().get() {
            name.set(String::new());
        }
    });
    view! {
        <form class="inline-form" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(name.get_untracked());
        }>
            <label for="new-namespace" class="visually-hidden">"New namespace name"</label>
            <input id="new-namespace" name="name" placeholder="new-namespace" required
                pattern=super::DNS_LABEL_PATTERN maxlength="63"
                prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
            <button type="submit" disabled=move || create.pending().get()>"Create namespace"</button>
            <ActionError action=create/>
        </form>
    }
}

/// Deleting a namespace takes every stream, tag and image in it: the confirm says how many, and
/// asks for the namespace's name (as OpenShift's console does).
#[component]
fn DeleteNamespace(name: String) -> impl IntoView {
    view! {
        <ChangeButton change=Change::DeleteNamespace { namespace: name.clone() }
            label="Delete".to_owned() aria_label=format!("Delete namespace {name}")
            question=format!("Delete namespace {name}? This cannot be undone.")
            yes="Yes, delete".to_owned() type_to_confirm=name.clone() counts=name.clone()/>
    }
}
