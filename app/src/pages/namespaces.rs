use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::api::ConsoleResult;
use crate::api::namespaces::{
    NamespaceContents, NamespaceList, create_namespace, delete_namespace, get_namespace_contents,
    list_namespaces,
};
use crate::api::prune::{PrunerRow, get_pruner};
use crate::components::{
    ActionError, ConfirmButton, ErrorPanel, Loading, When, sign_in_href, use_console,
};
use crate::format::{encode, size};

/// The namespaces the caller may see, with counts and storage used; create and delete for
/// those allowed.
#[component]
pub fn NamespacesPage() -> impl IntoView {
    let console = use_console();
    let create = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { create_namespace(csrf, name).await }
    });
    let delete = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_namespace(csrf, name).await }
    });
    let live = console.revision(|c| c.kind == "Namespace" || c.kind == "ImageStream");
    let namespaces = Resource::new(
        move || (create.version().get(), delete.version().get(), live.get()),
        |_| list_namespaces(),
    );
    // The prune page is linked for those the server lets read the image pruner: the cluster
    // administrators.
    let pruner = Resource::new(|| (), |_| get_pruner());
    view! {
        <Title text="Namespaces"/>
        <Transition fallback=|| view! { <Loading what="namespaces"/> }>
            {move || Suspend::new(async move {
                match namespaces.await {
                    Ok(list) => {
                        let signed_in = console.session.await.ok().and_then(|s| s.user).is_some();
                        view! { <NamespaceTable list signed_in create delete pruner/> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn NamespaceTable(
    list: NamespaceList,
    signed_in: bool,
    create: Action<String, crate::api::ConsoleResult<()>>,
    delete: Action<String, crate::api::ConsoleResult<()>>,
    pruner: Resource<ConsoleResult<Option<PrunerRow>>>,
) -> impl IntoView {
    let can_create = list.can_create;
    let empty = list.namespaces.is_empty();
    let name = RwSignal::new(String::new());
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>"Namespaces"</h1>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        pruner.await.ok().map(|_| view! { <a class="head-link" href="/prune">"Prune images"</a> })
                    })}
                </Transition>
                {can_create.then(|| view! {
                    <form class="inline-form" on:submit=move |ev| {
                        ev.prevent_default();
                        create.dispatch(name.get_untracked());
                    }>
                        <label for="new-namespace" class="visually-hidden">"New namespace name"</label>
                        <input id="new-namespace" name="name" placeholder="new-namespace" required
                            pattern=super::DNS_LABEL_PATTERN maxlength="63"
                            prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                        <button type="submit" disabled=move || create.pending().get()>"Create namespace"</button>
                    </form>
                })}
            </div>
            <ActionError action=create/>
            <ActionError action=delete/>
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
                                            {ns.can_delete.then(|| view! { <DeleteNamespace name delete/> })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// Deleting a namespace takes every stream, tag and image in it: the confirm says how many, and
/// asks for the namespace's name (as OpenShift's console does).
#[component]
fn DeleteNamespace(name: String, delete: Action<String, ConsoleResult<()>>) -> impl IntoView {
    let counted = name.clone();
    // Counted when the confirm opens, not for every row of the list.
    let details = move || {
        let counted = counted.clone();
        let contents = LocalResource::new(move || get_namespace_contents(counted.clone()));
        view! {
            <Suspense fallback=|| "Counting what it holds…">
                {move || Suspend::new(async move {
                    match contents.await {
                        Ok(contents) => contents_text(contents),
                        Err(_) => "Everything in it goes with it.".to_owned(),
                    }
                })}
            </Suspense>
        }
    };
    let target = name.clone();
    view! {
        <ConfirmButton label="Delete" aria_label=format!("Delete namespace {name}") class="danger subtle"
            question=format!("Delete namespace {name}? This cannot be undone.") yes="Yes, delete"
            details=details type_to_confirm=name.clone()
            on_confirm=move || { delete.dispatch(target.clone()); }/>
    }
}

/// `3 image streams, 7 tags and 5 images go with it.`
fn contents_text(contents: NamespaceContents) -> String {
    let count = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {} and {} go with it.",
        count(contents.streams, "image stream"),
        count(contents.tags, "tag"),
        count(contents.images, "image")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delete_confirm_counts_what_goes() {
        let contents = NamespaceContents {
            streams: 66,
            tags: 1,
            images: 0,
        };
        assert_eq!(
            contents_text(contents),
            "66 image streams, 1 tag and 0 images go with it."
        );
    }
}
