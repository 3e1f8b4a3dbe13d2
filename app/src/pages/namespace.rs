use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{page_title, param, tls_flag};
use crate::api::quotas::get_namespace_usage;
use crate::api::streams::{STREAM_PAGE, StreamPage, StreamSort, list_streams};
use crate::components::{
    CommandLine, ErrorPanel, ImportForm, LiveRegion, Loading, UsageSummary, When, YourAccess,
    use_console,
};
use crate::format::{encode, size};

/// A namespace's image streams: search as you type, sort, pages; the address keeps all three,
/// so a link or a reload shows the same page.
#[component]
pub fn NamespacePage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let query = use_query_map().get_untracked();
    let filter = query.get("q").unwrap_or_default();
    let sort = StreamSort::parse(&query.get("sort").unwrap_or_default());
    let page = query
        .get("page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        // Far past any namespace's last page, and small enough that offsets cannot overflow.
        .clamp(1, 1_000_000_000);
    let streams = Resource::new(
        {
            let (namespace, filter) = (namespace.clone(), filter.clone());
            move || (namespace.clone(), filter.clone())
        },
        move |(namespace, filter)| {
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
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        get_namespace_usage,
    );
    let title = namespace.clone();
    let watch = format!("namespace:{namespace}");
    let (head_ns, filter_ns) = (namespace.clone(), namespace.clone());
    view! {
        <Title text=page_title(move || title.clone())/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<span aria-current="page">{namespace.clone()}</span>
        </nav>
        <section class="panel">
            <div class="panel-head">
                <h1><span class="muted">"Namespace "</span>{namespace.clone()}</h1>
                <Suspense fallback=|| ()>
                    {move || {
                        let namespace = encode(&head_ns);
                        Suspend::new(async move {
                            streams.await.ok().map(|page| page.permissions).map(|p| view! {
                                <YourAccess permissions=p/>
                                <div class="head-actions">
                                    <a href=format!("/ns/{namespace}/lifecycle")>"Lifecycle"</a>
                                    {p.manage_access.then(|| view! { <a href=format!("/ns/{namespace}/webhooks")>"Webhooks"</a> })}
                                    {p.manage_secrets.then(|| view! { <a href=format!("/ns/{namespace}/secrets")>"Pull secrets"</a> })}
                                    {p.manage_access.then(|| view! { <a href=format!("/ns/{namespace}/keys")>"Signing keys"</a> })}
                                    {p.manage_access.then(|| view! { <a href=format!("/ns/{namespace}/access")>"Access"</a> })}
                                </div>
                            })
                        })
                    }}
                </Suspense>
            </div>
            <StreamFilter namespace=filter_ns filter=filter.clone() sort=sort.as_str().to_owned()/>
            <LiveRegion watch=watch.clone() id="streams">
                <Suspense fallback=|| view! { <Loading what="image streams"/> }>
                    {move || {
                        let filter = filter.clone();
                        Suspend::new(async move {
                            match streams.await {
                                Ok(listing) => view! { <StreamTable listing filter sort/> }.into_any(),
                                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </LiveRegion>
        </section>
        <LiveRegion watch=watch id="usage">
            <Suspense fallback=|| ()>
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
            </Suspense>
        </LiveRegion>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                streams.await.ok().filter(|p| p.permissions.push).map(|listing| view! {
                    <ImportForm namespace=listing.namespace/>
                })
            })}
        </Suspense>
    }
}

/// The search (as you type) and sort of a namespace's streams: each change shows the page of
/// that search in place (the streams' live region), and the address follows.
#[island(lazy)]
fn StreamFilter(namespace: String, filter: String, sort: String) -> impl IntoView {
    crate::components::preload_island(StreamFilter);
    let filter = RwSignal::new(filter);
    crate::components::keep_typed("stream-filter", filter);
    let sort = RwSignal::new(sort);
    let show = move || {
        let mut url = format!("/ns/{}?", encode(&namespace));
        let (filter, sort) = (filter.get_untracked(), sort.get_untracked());
        if !filter.is_empty() {
            url.push_str(&format!("q={}&", encode(&filter)));
        }
        if sort != StreamSort::Name.as_str() {
            url.push_str(&format!("sort={sort}&"));
        }
        let url = url.trim_end_matches(['&', '?']).to_owned();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move { crate::components::show_page(&url).await });
        #[cfg(not(feature = "hydrate"))]
        let _ = url;
    };
    let on_search = {
        let show = show.clone();
        move |ev| {
            filter.set(event_target_value(&ev));
            show();
        }
    };
    let on_sort = move |ev| {
        sort.set(event_target_value(&ev));
        show();
    };
    view! {
        <form class="toolbar" role="search" method="get" on:submit=|ev| ev.prevent_default()>
            <label for="stream-filter" class="visually-hidden">"Search image streams"</label>
            <input id="stream-filter" name="q" type="search" placeholder="Search image streams"
                autocomplete="off" prop:value=filter on:input=on_search/>
            <label for="stream-sort">"Sort by"</label>
            <select id="stream-sort" name="sort" on:change=on_sort prop:value=sort>
                <option value="name">"Name"</option>
                <option value="updated">"Last updated"</option>
                <option value="size">"Size"</option>
            </select>
        </form>
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
            <Suspense fallback=|| ()>
                {move || {
                    let namespace = namespace.clone();
                    Suspend::new(async move {
                        let host = session.await.map(|s| s.registry_host).unwrap_or_default();
                        let flag = tls_flag(&host, "--tls-verify");
                        view! {
                            <CommandLine label="login command".to_owned() command=format!("podman login {flag}{host}")/>
                            <CommandLine label="tag command".to_owned() command=format!("podman tag myimage {host}/{namespace}/myimage:latest")/>
                            <CommandLine label="push command".to_owned() command=format!("podman push {flag}{host}/{namespace}/myimage:latest")/>
                        }
                    })
                }}
            </Suspense>
        </div>
    }
}
