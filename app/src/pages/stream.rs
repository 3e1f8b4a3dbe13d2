use leptos::either::EitherOf4;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::compare::compare_href;
use super::stream_labels::{LabelsEditor, StreamLabels};
use super::{page_title, param, podman_pull, tls_flag};
#[cfg(feature = "hydrate")]
use crate::api::streams::tag_image;
use crate::api::streams::{HistoryItem, StreamDetail, TagRow, get_stream};
use crate::components::{
    ActionError, Change, ChangeButton, CommandLine, ErrorPanel, ImportForm, LiveRegion, Loading,
    When, YourAccess, island_action,
};
use crate::format::{encode, oc_tag_command, short_digest, size, tag_source};

/// An image stream: its tags, how to pull them, each tag's history with rollback, and the
/// stream's history across tags.
#[component]
pub fn StreamPage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let stream = param("stream").get_untracked();
    let pull = use_query_map().get_untracked().get("pull");
    let detail = Resource::new(
        {
            let (namespace, stream) = (namespace.clone(), stream.clone());
            move || (namespace.clone(), stream.clone())
        },
        |(namespace, stream)| get_stream(namespace, stream),
    );
    let title = format!("{namespace}/{stream}");
    view! {
        <Title text=page_title(move || title.clone())/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=format!("/ns/{}", encode(&namespace))>{namespace.clone()}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="the image stream"/> }>
            {move || {
                let pull = pull.clone();
                Suspend::new(async move {
                    match detail.await {
                        Ok(detail) => view! { <StreamView detail pull/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn StreamView(detail: StreamDetail, pull: Option<String>) -> impl IntoView {
    let permissions = detail.permissions;
    let (namespace, name) = (detail.namespace.clone(), detail.name.clone());
    let base = format!("/ns/{}/streams/{}", encode(&namespace), encode(&name));
    let watch = format!("stream:{namespace}/{name}");
    let tags = detail.tags.clone();
    // Only a tag that names an image can be pulled (a failed first import leaves one without).
    let pullable: Vec<(String, String)> = tags
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.digest.clone()?)))
        .collect();
    let chosen = pull
        .filter(|tag| pullable.iter().any(|(name, _)| name == tag))
        .or_else(|| pullable.first().map(|(name, _)| name.clone()))
        .unwrap_or_default();
    // The store refuses to delete a stream with an immutable tag: said before it is tried.
    let immutable: Vec<&TagRow> = detail
        .tags
        .iter()
        .filter(|tag| tag.immutable_rule.is_some())
        .collect();
    let protected = (!immutable.is_empty()).then(|| {
        let named: Vec<String> = immutable
            .iter()
            .map(|tag| {
                format!(
                    "{} (rule {})",
                    tag.name,
                    tag.immutable_rule.as_deref().unwrap_or_default()
                )
            })
            .collect();
        format!(
            "it cannot be deleted while it has immutable tags: {}",
            named.join(", ")
        )
    });
    let tag_choices: Vec<TagChoice> = tags
        .iter()
        .map(|t| TagChoice {
            name: t.name.clone(),
            immutable_rule: t.immutable_rule.clone(),
        })
        .collect();
    let summary = view! {
            <section class="panel">
                <div class="panel-head">
                    <h1><span class="muted">"Image stream "</span>{name.clone()}</h1>
                    <div class="head-actions">
                        {(detail.history.len() > 1).then(|| view! { <a href=format!("{base}/compare")>"Compare images"</a> })}
                        {permissions.manage_access.then(|| view! { <a href=format!("{base}/access")>"Access"</a> })}
                        {permissions.delete.then(|| match &protected {
                            None => view! {
                                <ChangeButton change=Change::DeleteStream { namespace: namespace.clone(), stream: name.clone() }
                                    label="Delete".to_owned() aria_label=format!("Delete image stream {name}")
                                    question=format!("Delete image stream {name}?") yes="Yes, delete".to_owned()
                                    then=format!("/ns/{}", encode(&namespace))/>
                            }.into_any(),
                            Some(why) => view! {
                                <RefusedButton label="Delete" what=format!("image stream {name}") why=why.clone()
                                    note="it has immutable tags".to_owned()/>
                            }.into_any(),
                        })}
                    </div>
                </div>
                <p class="muted mono">{detail.pull_repository.clone()}</p>
                <YourAccess permissions/>
                {if detail.tags.is_empty() {
                    view! { <p class="empty">"This stream has no tags."</p> }.into_any()
                } else {
                    view! { <TagTable tags=detail.tags.clone() namespace=namespace.clone() stream=name.clone() base=base.clone() can_untag=permissions.delete/> }.into_any()
                }}
            </section>
    };
    let histories = view! {
            <section class="panel">
                <h2>"Tag history"</h2>
                {tags.iter().map(|row| view! {
                    <TagHistory row=row.clone() namespace=namespace.clone() stream=name.clone() base=base.clone() can_roll_back=permissions.push/>
                }).collect_view()}
            </section>
            <section class="panel">
                <h2>"Stream history"</h2>
                <Timeline items=detail.history.clone() base=base.clone()/>
            </section>
    };
    let pull = (!pullable.is_empty()).then(|| view! {
        <StreamControls control=StreamControl::PullCommands(
            pullable.clone(), chosen, detail.pull_repository.clone(), namespace.clone(), name.clone(),
        )/>
    });
    view! {
        <LiveRegion watch=watch.clone() id="stream">{summary}        </LiveRegion>
        // A region even while nothing can be pulled: the first image brings the commands.
        <LiveRegion watch=watch.clone() id="pull">{pull}</LiveRegion>
        <StreamLabels namespace=namespace.clone() stream=name.clone() watch=watch.clone()
            labels=detail.labels.clone() annotations=detail.annotations.clone() can_edit=permissions.push/>
        {permissions.push.then(|| view! {
            <StreamControls control=StreamControl::TagForm(tag_choices, namespace.clone(), name.clone())/>
        })}
        {permissions.push.then(|| view! { <ImportForm namespace=namespace.clone() stream=name.clone()/> })}
        <LiveRegion watch id="histories">{histories}        </LiveRegion>
    }
}

#[component]
fn TagTable(
    tags: Vec<TagRow>,
    namespace: String,
    stream: String,
    base: String,
    can_untag: bool,
) -> impl IntoView {
    view! {
        <table class="list tags">
            <thead>
                <tr>
                    <th scope="col">"Tag"</th>
                    <th scope="col">"Digest"</th>
                    <th scope="col" class="num">"Size"</th>
                    <th scope="col">"Platforms"</th>
                    <th scope="col">"Last updated"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>
                {tags.into_iter().map(|row| {
                    let name = row.name.clone();
                    let untag_name = name.clone();
                    view! {
                        <tr data-tag=name.clone()>
                            <td class="name">
                                <span class="tag">{name.clone()}</span>
                                {row.immutable_rule.clone().map(|rule| view! {
                                    " "<span class="badge immutable" id=format!("immutable-{name}") title="It cannot be overwritten, moved or deleted">{format!("immutable · rule {rule}")}</span>
                                })}
                                {row.signed.then(|| view! {
                                    " "<span class="badge signed" title="A signature refers to this image; the image's page says whether it verifies">"signed"</span>
                                })}
                                {row.from.as_deref().map(|from| view! { <span class="muted small">{format!(" {}", tag_source(from, &stream))}</span> })}
                                {row.warning.clone().map(|warning| view! {
                                    <p class="warning" role="note">{format!("Last import failed: {warning}")}</p>
                                })}
                            </td>
                            <td class="mono">
                                {match row.digest.clone() {
                                    Some(digest) => view! {
                                        <a href=format!("{base}/images/{digest}") title=digest.clone()>{short_digest(&digest)}</a>
                                    }.into_any(),
                                    None => view! { <span class="muted no-image">"no image"</span> }.into_any(),
                                }}
                            </td>
                            <td class="num">{row.size.map(size).unwrap_or_else(|| "—".into())}</td>
                            <td>{row.platforms.join(", ")}</td>
                            <td class="nowrap">{row.updated.clone().map(|at| view! { <When at/> }.into_any()).unwrap_or_else(|| "—".into_any())}</td>
                            <td class="actions">
                                {row.digest.is_some().then(|| view! { <StreamControls control=StreamControl::PullButton(name.clone())/> })}
                                {can_untag.then(|| match row.immutable_rule.clone() {
                                    None => view! {
                                        <ChangeButton change=Change::Untag { namespace: namespace.clone(), stream: stream.clone(), tag: untag_name.clone() }
                                            label="Delete".to_owned() aria_label=format!("Delete tag {untag_name}")
                                            question=format!("Delete tag {untag_name}?") yes="Yes, delete".to_owned()/>
                                    }.into_any(),
                                    Some(rule) => view! {
                                        <RefusedButton label="Delete" what=format!("tag {untag_name}")
                                            why=format!("it is immutable (rule {rule}): it cannot be deleted or moved")
                                            note="immutable".to_owned()/>
                                    }.into_any(),
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// What one of the stream page's controls is, with what it needs. Tuple variants: the page
/// gives them to the browser as JSON arrays, which take a quarter less code to read than named
/// fields (8.5 KB of WASM, not 11).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum StreamControl {
    /// (tag)
    PullButton(String),
    /// (pullable tags with their images, the chosen tag, repository, namespace, stream)
    PullCommands(Vec<(String, String)>, String, String, String, String),
    /// (tags, namespace, stream)
    TagForm(Vec<TagChoice>, String, String),
    /// (namespace, stream, labels, annotations)
    LabelsEditor(String, String, String, String),
}

/// The stream page's controls, one island for all of them: the page fetches one module, not
/// one per control and the small chunks they share (`bench/console.sh`).
#[island(lazy)]
pub(super) fn StreamControls(control: StreamControl) -> impl IntoView {
    crate::components::preload_island(StreamControls);
    match control {
        StreamControl::PullButton(tag) => EitherOf4::A(view! { <PullButton tag/> }),
        StreamControl::PullCommands(tags, chosen, repository, namespace, stream) => {
            EitherOf4::B(view! { <PullCommands tags chosen repository namespace stream/> })
        }
        StreamControl::TagForm(tags, namespace, stream) => {
            EitherOf4::C(view! { <TagForm tags namespace stream/> })
        }
        StreamControl::LabelsEditor(namespace, stream, labels, annotations) => {
            EitherOf4::D(view! { <LabelsEditor namespace stream labels annotations/> })
        }
    }
}

/// The "Pull" button of a tag's row: picks the tag in the pull commands' list (below the
/// table, a control of its own) and brings the commands into view.
#[component]
fn PullButton(tag: String) -> impl IntoView {
    let label = format!("Pull commands for {tag}");
    let pick = move |_| {
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsCast;
            let select = document()
                .get_element_by_id("pull-tag")
                .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlSelectElement>().ok());
            if let Some(select) = select {
                select.set_value(&tag);
                if let Ok(event) = leptos::web_sys::Event::new("change") {
                    let _ = select.dispatch_event(&event);
                }
                select.scroll_into_view();
            }
        }
    };
    view! {
        <button type="button" class="link" aria-label=label on:click=pick>"Pull"</button>
    }
}

/// podman, docker and skopeo commands for the chosen tag, by tag and by digest; then the tag as
/// kubectl and oc read it. `tags` are the pullable tags, with their images.
#[component]
fn PullCommands(
    tags: Vec<(String, String)>,
    chosen: String,
    repository: String,
    namespace: String,
    stream: String,
) -> impl IntoView {
    let chosen = RwSignal::new(chosen);
    let host = repository.split('/').next().unwrap_or_default().to_owned();
    let skopeo_flag = tls_flag(&host, "--src-tls-verify");
    let options: Vec<String> = tags.iter().map(|(name, _)| name.clone()).collect();
    let commands = move || {
        let name = chosen.get();
        let (_, digest) = tags.iter().find(|(tag, _)| *tag == name)?;
        let by_tag = format!("{repository}:{name}");
        let by_digest = format!("{repository}@{digest}");
        // (label, what its copy button copies, command)
        let lines = [
            ("podman", "pull", podman_pull(&by_tag)),
            ("docker", "pull", format!("docker pull {by_tag}")),
            (
                "skopeo",
                "pull",
                format!("skopeo copy {skopeo_flag}docker://{by_tag} oci:{name}"),
            ),
            ("podman by digest", "pull", podman_pull(&by_digest)),
            (
                "docker by digest",
                "pull",
                format!("docker pull {by_digest}"),
            ),
            (
                "skopeo by digest",
                "pull",
                format!("skopeo copy {skopeo_flag}docker://{by_digest} oci:{name}"),
            ),
            // The tag as OpenShift's clients read it (`kubectl` and `oc` against Berth's API).
            (
                "kubectl",
                "get istag",
                format!("kubectl get istag {stream}:{name} -n {namespace}"),
            ),
            (
                "oc",
                "describe istag",
                format!("oc describe istag {stream}:{name} -n {namespace}"),
            ),
        ];
        Some(
            lines
                .into_iter()
                .map(|(label, what, command)| {
                    view! {
                        <div class="command-row">
                            <span class="command-label">{label}</span>
                            <CommandLine label=format!("{label} {what} command") command/>
                        </div>
                    }
                })
                .collect_view(),
        )
    };
    view! {
        <section class="panel" aria-labelledby="pull-heading">
            <div class="panel-head">
                <h2 id="pull-heading">"Pull"</h2>
                <label for="pull-tag">"Tag to pull"</label>
                <select id="pull-tag" prop:value=move || chosen.get() on:change=move |ev| chosen.set(event_target_value(&ev))>
                    {options.into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                </select>
            </div>
            {commands}
        </section>
    }
}

/// A tag as the tag form knows it: its name, and the immutability rule that keeps it in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TagChoice {
    name: String,
    immutable_rule: Option<String>,
}

/// `oc tag`: point a tag (new or existing) at another tag or an image of this stream. Its
/// error shows beside it, and what was typed stays.
#[component]
fn TagForm(tags: Vec<TagChoice>, namespace: String, stream: String) -> impl IntoView {
    let name = crate::components::typed_field("tag-name", "");
    let from = crate::components::typed_field(
        "tag-from",
        tags.first().map(|t| t.name.clone()).unwrap_or_default(),
    );
    let tag = {
        let (namespace, stream) = (namespace.clone(), stream.clone());
        island_action(move |(tag, from): &(String, String)| {
            let (namespace, stream, tag, from) =
                (namespace.clone(), stream.clone(), tag.clone(), from.clone());
            async move {
                #[cfg(feature = "hydrate")]
                {
                    tag_image(crate::components::csrf(), namespace, stream, tag, from).await?;
                    crate::components::refresh_page().await;
                }
                #[cfg(not(feature = "hydrate"))]
                let _ = (namespace, stream, tag, from);
                Ok::<_, crate::api::ConsoleError>(())
            }
        })
    };
    Effect::new(move |_| {
        if let Some(Ok(())) = tag.value().get() {
            name.set(String::new());
        }
    });
    let immutable: Vec<(String, String)> = tags
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.immutable_rule.clone()?)))
        .collect();
    // An immutable tag cannot be moved (the server refuses): the button says so before.
    let refused = Memo::new(move |_| {
        let typed = name.get();
        let typed = typed.trim();
        immutable
            .iter()
            .find(|(tag, _)| tag == typed)
            .map(|(tag, rule)| format!("{tag} is immutable (rule {rule}): it cannot be moved."))
    });
    view! {
        <section class="panel" aria-labelledby="tag-heading">
            <h2 id="tag-heading">"Add or move a tag"</h2>
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                tag.dispatch((name.get_untracked(), from.get_untracked()));
            }>
                <label for="tag-name">"Tag"</label>
                <input id="tag-name" required maxlength="128" placeholder="stable"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                <label for="tag-from">"points at"</label>
                <input id="tag-from" required list="tag-sources" placeholder="latest, other:tag or sha256:…"
                    prop:value=from on:input=move |ev| from.set(event_target_value(&ev))/>
                <datalist id="tag-sources">
                    {tags.iter().map(|t| view! { <option value=t.name.clone()/> }).collect_view()}
                </datalist>
                <button type="submit" disabled=move || tag.pending().get() || refused.get().is_some()>"Tag"</button>
            </form>
            {move || refused.get().map(|why| view! { <p class="muted refused-note" role="note">{why}</p> })}
            // The same change from the command line, as the form stands.
            {move || {
                let (to, source) = (name.get(), from.get());
                (!to.trim().is_empty() && !source.trim().is_empty()).then(|| view! {
                    <CommandLine label="oc tag command".to_owned() command=oc_tag_command(&namespace, &stream, &source, &to)/>
                })
            }}
            <ActionError action=tag/>
        </section>
    }
}

/// One tag's history, newest first, with a rollback button on each older image.
#[component]
fn TagHistory(
    row: TagRow,
    namespace: String,
    stream: String,
    base: String,
    can_roll_back: bool,
) -> impl IntoView {
    let current = row.digest.clone();
    let name = row.name.clone();
    let count = row.history.len();
    let immutable = row.immutable_rule.clone();
    view! {
        <details class="tag-history" data-tag=name.clone() open={count > 1}>
            <summary>
                <span class="tag">{name.clone()}</span>
                {format!(" {}", crate::format::count(count as u64, "image", "images"))}
            </summary>
            <ol class="timeline">
                {row.history.iter().enumerate().map(|(index, item)| {
                    // An image may appear again further down after a rollback: only the newest
                    // item is current, and none of its copies offers a rollback to itself.
                    let same_image = current.as_deref() == Some(item.image.as_str());
                    let previous = row.history[index + 1..]
                        .iter()
                        .find(|older| older.image != item.image)
                        .map(|older| compare_href(&base, &older.image, &item.image, None));
                    let is_current = index == 0 && same_image;
                    let target = (name.clone(), item.image.clone());
                    view! {
                        <li class:current=is_current data-image=item.image.clone()>
                            <span class="when"><When at=item.created.clone()/></span>
                            <a class="mono" href=format!("{base}/images/{}", item.image)>{short_digest(&item.image)}</a>
                            {item.by.clone().map(|by| view! { <span class="by muted small">{format!("by {by}")}</span> })}
                            {is_current.then(|| view! { <span class="badge">"current"</span> })}
                            {previous.map(|href| view! {
                                <a class="small" href=href
                                    aria-label=format!("Compare with the previous image ({} of {name})", short_digest(&item.image))>"Compare with the previous image"</a>
                            })}
                            {(!same_image && can_roll_back).then(|| match immutable.clone() {
                                None => view! {
                                    <ChangeButton change=Change::Tag { namespace: namespace.clone(), stream: stream.clone(), tag: target.0.clone(), from: target.1.clone() }
                                        label="Roll back to this".to_owned() class="small".to_owned()
                                        aria_label=format!("Roll back {} to {}", target.0, short_digest(&target.1))
                                        question=format!("Point {} at {} again? Pulls of {} get this image from now on.", target.0, short_digest(&target.1), target.0)
                                        yes="Yes, roll back".to_owned()/>
                                }.into_any(),
                                Some(rule) => view! {
                                    <button type="button" class="small" disabled
                                        title=format!("{} is immutable (rule {rule}): it cannot be moved", target.0)
                                        aria-label=format!("Roll back {} to {} (refused: {} is immutable, rule {rule})", target.0, short_digest(&target.1), target.0)>"Roll back to this"</button>
                                }.into_any(),
                            })}
                        </li>
                    }
                }).collect_view()}
            </ol>
        </details>
    }
}

#[component]
fn Timeline(items: Vec<HistoryItem>, base: String) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="empty">"Nothing has happened here yet."</p> }.into_any();
    }
    view! {
        <ol class="timeline">
            {items.into_iter().map(|item| view! {
                <li>
                    <span class="when"><When at=item.created.clone()/></span>
                    <span class="tag">{item.tag.clone()}</span>
                    " → "
                    <a class="mono" href=format!("{base}/images/{}", item.image)>{short_digest(&item.image)}</a>
                </li>
            }).collect_view()}
        </ol>
    }
    .into_any()
}

/// A control the server would refuse, disabled, with the reason beside it: `note` shortly,
/// `why` in full in its name and title.
#[component]
fn RefusedButton(label: &'static str, what: String, why: String, note: String) -> impl IntoView {
    view! {
        <span class="refused">
            <button type="button" class="danger subtle" disabled
                aria-label=format!("{label} {what} (refused: {why})") title=why.clone()>{label}</button>
            <span class="muted small" aria-hidden="true">{note}</span>
        </span>
    }
}
