use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::{page_title, param, tls_flag};
use crate::api::quotas::get_namespace_usage;
use crate::api::streams::{STREAM_PAGE, StreamPage, StreamSort, list_streams};
use crate::components::{
    CommandLine, ErrorPanel, ImportForm, ImportState, Loading, UsageSummary, When, YourAccess,
    use_console,
};
use crate::format::{encode, size};

/// A namespace's image streams: search as you type, sort, pages; the address keeps all three,
/// so a link or a reload shows the same page.
#[component]
pub fn NamespacePage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let query = use_query_map();
    let filter = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let sort = Memo::new(move |_| StreamSort::parse(&query.read().get("sort").unwrap_or_default()));
    let page = Memo::new(move |_| {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
            // Far past any namespace's last page, and small enough that offsets cannot overflow.
            .clamp(1, 1_000_000_000)
    });
    let live = console.revision(move |c| c.touches_namespace(&namespace.get_untracked()));
    let import = ImportState::new();
    let streams = Resource::new(
        move || {
            (
                namespace.get(),
                filter.get(),
                sort.get(),
                page.get(),
                live.get(),
            )
        },
        |(namespace, filter, sort, page, _)| {
            list_streams(
                namespace,
                filter,
                sort.as_str().to_owned(),
                (page - 1) * u64::from(STREAM_PAGE),
            )
        },
    );
    // A summary of what the namespace uses; the lifecycle page has the rest. Not shown when it
    // cannot be read (the streams above say why).
    let usage = Resource::new(
        move || (namespace.get(), live.get()),
        |(namespace, _)| get_namespace_usage(namespace),
    );
    let navigate = use_navigate();
    let go = move |filter: String, sort: StreamSort, page: u64| {
        let mut url = format!("/ns/{}?", encode(&namespace.get_untracked()));
        if !filter.is_empty() {
            url.push_str(&format!("q={}&", encode(&filter)));
        }
        if sort != StreamSort::Name {
            url.push_str(&format!("sort={}&", sort.as_str()));
        }
        if page > 1 {
            url.push_str(&format!("page={page}&"));
        }
        let url = url.trim_end_matches(['&', '?']).to_owned();
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };
    let on_search = {
        let go = go.clone();
        move |ev| go(event_target_value(&ev), sort.get_untracked(), 1)
    };
    let on_sort = move |ev| {
        go(
            filter.get_untracked(),
            StreamSort::parse(&event_target_value(&ev)),
            1,
        )
    };
    view! {
        <Title text=page_title(move || namespace.get())/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<span aria-current="page">{move || namespace.get()}</span>
        </nav>
        <section class="panel">
            <div class="panel-head">
                <h1><span class="muted">"Namespace "</span>{move || namespace.get()}</h1>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        streams.await.ok().map(|page| page.permissions).map(|p| view! {
                            <YourAccess permissions=p/>
                            <div class="head-actions">
                                <a href=format!("/ns/{}/lifecycle", encode(&namespace.get_untracked()))>"Lifecycle"</a>
                                {p.manage_access.then(|| view! { <a href=format!("/ns/{}/webhooks", encode(&namespace.get_untracked()))>"Webhooks"</a> })}
                                {p.manage_secrets.then(|| view! { <a href=format!("/ns/{}/secrets", encode(&namespace.get_untracked()))>"Pull secrets"</a> })}
                                {p.manage_access.then(|| view! { <a href=format!("/ns/{}/keys", encode(&namespace.get_untracked()))>"Signing keys"</a> })}
                                {p.manage_access.then(|| view! { <a href=format!("/ns/{}/access", encode(&namespace.get_untracked()))>"Access"</a> })}
                            </div>
                        })
                    })}
                </Transition>
            </div>
            <div class="toolbar" role="search">
                <label for="stream-filter" class="visually-hidden">"Search image streams"</label>
                <input id="stream-filter" type="search" placeholder="Search image streams"
                    autocomplete="off" prop:value=move || filter.get() on:input=on_search/>
                <label for="stream-sort">"Sort by"</label>
                <select id="stream-sort" on:change=on_sort prop:value=move || sort.get().as_str()>
                    <option value="name">"Name"</option>
                    <option value="updated">"Last updated"</option>
                    <option value="size">"Size"</option>
                </select>
            </div>
            <Transition fallback=|| view! { <Loading what="image streams"/> }>
                {move || Suspend::new(async move {
                    match streams.await {
                        Ok(listing) => view! { <StreamTable listing filter=filter.get_untracked() sort=sort.get_untracked()/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                usage.await.ok().map(|usage| view! {
                    <section class="panel" aria-labelledby="usage-heading">
                        <div class="panel-head">
                            <h2 id="usage-heading">"Usage"</h2>
                            <a href=format!("/ns/{}/lifecycle", encode(&usage.namespace))>"Quotas, retention and immutability"</a>
                        </div>
                        <UsageSummary usage/>
                    </section>
                })
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                streams.await.ok().filter(|p| p.permissions.push).map(|listing| view! {
                    <ImportForm state=import namespace=listing.namespace/>
                })
            })}
        </Transition>
    }
}

#[component]
fn StreamTable(listing: StreamPage, filter: String, sort: StreamSort) -> impl IntoView {
    let namespace = listing.namespace.clone();
    if listing.total == 0 {
        return if filter.is_empty() {
            view! { <EmptyNamespace namespace/> }.into_any()
        } else {
            view! { <p class="empty">{format!("No image stream matches “{filter}”.")}</p> }
                .into_any()
        };
    }
    let first = listing.offset + 1;
    let last = listing.offset + listing.streams.len() as u64;
    let page = listing.offset / u64::from(STREAM_PAGE) + 1;
    let pages = listing.total.div_ceil(u64::from(STREAM_PAGE));
    let link = {
        let namespace = namespace.clone();
        move |page: u64| {
            let mut url = format!("/ns/{}?", encode(&namespace));
            if !filter.is_empty() {
                url.push_str(&format!("q={}&", encode(&filter)));
            }
            if sort != StreamSort::Name {
                url.push_str(&format!("sort={}&", sort.as_str()));
            }
            url.push_str(&format!("page={page}"));
            url
        }
    };
    view! {
        <table class="list streams">
            <thead>
                <tr>
                    <th scope="col">"Image stream"</th>
                    <th scope="col" class="num">"Tags"</th>
                    <th scope="col">"Latest tag"</th>
                    <th scope="col" class="num">"Size"</th>
                    <th scope="col">"Last updated"</th>
                </tr>
            </thead>
            <tbody>
                {listing.streams.into_iter().map(|stream| view! {
                    <tr data-stream=stream.name.clone()>
                        <td class="name">
                            <a href=format!("/ns/{}/streams/{}", encode(&namespace), encode(&stream.name))>{stream.name.clone()}</a>
                        </td>
                        <td class="num">{stream.tags}</td>
                        <td>{stream.latest_tag.map(|tag| view! { <span class="tag">{tag}</span> })}</td>
                        <td class="num">{stream.size.map(size).unwrap_or_else(|| "—".into())}</td>
                        <td>{stream.updated.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "—".into_any())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Pages">
            <span class="muted">{format!("{first}–{last} of {}", listing.total)}</span>
            {(page > 1).then(|| view! { <a href=link(page - 1) rel="prev">"Previous"</a> })}
            <span>{format!("Page {page} of {pages}")}</span>
            {(page < pages).then(|| view! { <a href=link(page + 1) rel="next">"Next"</a> })}
        </nav>
    }
    .into_any()
}

/// What an empty namespace says: how to push its first image.
#[component]
fn EmptyNamespace(namespace: String) -> impl IntoView {
    let session = use_console().session;
    view! {
        <div class="empty">
            <p>"No image streams here yet. Push the first image:"</p>
            <Transition fallback=|| ()>
                {move || {
                    let namespace = namespace.clone();
                    Suspend::new(async move {
                        let host = session.await.map(|s| s.registry_host).unwrap_or_default();
                        let flag = tls_flag(&host, "--tls-verify");
                        view! {
                            <CommandLine label="login command" command=format!("podman login {flag}{host}")/>
                            <CommandLine label="tag command" command=format!("podman tag myimage {host}/{namespace}/myimage:latest")/>
                            <CommandLine label="push command" command=format!("podman push {flag}{host}/{namespace}/myimage:latest")/>
                        }
                    })
                }}
            </Transition>
        </div>
    }
}
