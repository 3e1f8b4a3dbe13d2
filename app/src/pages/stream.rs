use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use super::compare::compare_href;
use super::stream_labels::StreamLabels;
use super::{page_title, param, podman_pull, tls_flag};
use crate::api::ConsoleResult;
use crate::api::streams::{
    HistoryItem, StreamDetail, TagRow, delete_stream, get_stream, tag_image, untag_image,
};
use crate::components::{
    ActionError, CommandLine, ConfirmButton, DeleteButton, ErrorPanel, ImportForm, ImportState,
    Loading, When, YourAccess, use_console,
};
use crate::format::{encode, oc_tag_command, short_digest, size, tag_source};

/// `(tag, from)`: point a tag at an image (tag, move, roll back).
type TagInput = (String, String);

/// An image stream: its tags, how to pull them, each tag's history with rollback, and the
/// stream's history across tags.
#[component]
pub fn StreamPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let stream = param("stream");
    let tag = Action::new(move |(tag, from): &TagInput| {
        let (csrf, tag, from) = (console.csrf(), tag.clone(), from.clone());
        async move {
            tag_image(
                csrf,
                namespace.get_untracked(),
                stream.get_untracked(),
                tag,
                from,
            )
            .await
        }
    });
    let roll_back = Action::new(move |(tag, from): &TagInput| {
        let (csrf, tag, from) = (console.csrf(), tag.clone(), from.clone());
        async move {
            tag_image(
                csrf,
                namespace.get_untracked(),
                stream.get_untracked(),
                tag,
                from,
            )
            .await
        }
    });
    // The tag form's fields live as long as the page: the form is drawn again when the stream
    // is read again, and a failed attempt keeps what was typed.
    let tag_fields = TagFields {
        name: RwSignal::new(String::new()),
        from: RwSignal::new(String::new()),
    };
    Effect::new(move |_| {
        if let Some(Ok(())) = tag.value().get() {
            tag_fields.name.set(String::new());
        }
    });
    let untag = Action::new(move |tag: &String| {
        let (csrf, tag) = (console.csrf(), tag.clone());
        async move { untag_image(csrf, namespace.get_untracked(), stream.get_untracked(), tag).await }
    });
    let remove = Action::new(move |_: &()| {
        let csrf = console.csrf();
        async move { delete_stream(csrf, namespace.get_untracked(), stream.get_untracked()).await }
    });
    // Success needs no notice of its own: the change comes back through the live feed, worded
    // for everyone who has the page open.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = remove.value().get() {
            navigate(
                &format!("/ns/{}", encode(&namespace.get_untracked())),
                Default::default(),
            );
        }
    });
    let live = console
        .revision(move |c| c.touches_stream(&namespace.get_untracked(), &stream.get_untracked()));
    let import = ImportState::new();
    let detail = Resource::new(
        move || {
            (
                namespace.get(),
                stream.get(),
                tag.version().get(),
                roll_back.version().get(),
                untag.version().get(),
                live.get(),
            )
        },
        |(namespace, stream, ..)| get_stream(namespace, stream),
    );
    view! {
        <Title text=page_title(move || format!("{}/{}", namespace.get(), stream.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>
        </nav>
        <ActionError action=untag/>
        <ActionError action=remove/>
        <Transition fallback=|| view! { <Loading what="the image stream"/> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(detail) => view! { <StreamView detail tag tag_fields roll_back untag remove import/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StreamView(
    detail: StreamDetail,
    tag: Action<TagInput, ConsoleResult<()>>,
    tag_fields: TagFields,
    roll_back: Action<TagInput, ConsoleResult<()>>,
    untag: Action<String, ConsoleResult<()>>,
    remove: Action<(), ConsoleResult<()>>,
    import: ImportState,
) -> impl IntoView {
    let permissions = detail.permissions;
    let base = format!(
        "/ns/{}/streams/{}",
        encode(&detail.namespace),
        encode(&detail.name)
    );
    let tags = detail.tags.clone();
    // Only a tag that names an image can be pulled (a failed first import leaves one without).
    let pullable: Vec<TagRow> = tags
        .iter()
        .filter(|t| t.digest.is_some())
        .cloned()
        .collect();
    let chosen = RwSignal::new(pullable.first().map(|t| t.name.clone()).unwrap_or_default());
    let repository = detail.pull_repository.clone();
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
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1><span class="muted">"Image stream "</span>{detail.name.clone()}</h1>
                <div class="head-actions">
                    {(detail.history.len() > 1).then(|| view! { <a href=format!("{base}/compare")>"Compare images"</a> })}
                    {permissions.manage_access.then(|| view! { <a href=format!("{base}/access")>"Access"</a> })}
                    {permissions.delete.then(|| match &protected {
                        None => view! {
                            <DeleteButton what=format!("image stream {}", detail.name) on_confirm=move || { remove.dispatch(()); }/>
                        }.into_any(),
                        Some(why) => view! {
                            <RefusedButton label="Delete" what=format!("image stream {}", detail.name) why=why.clone()
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
                view! { <TagTable tags=detail.tags.clone() stream=detail.name.clone() base=base.clone() chosen untag can_untag=permissions.delete/> }.into_any()
            }}
        </section>
        {(!pullable.is_empty()).then(|| view! { <PullCommands tags=pullable.clone() repository chosen namespace=detail.namespace.clone() stream=detail.name.clone()/> })}
        <StreamLabels namespace=detail.namespace.clone() stream=detail.name.clone()
            labels=detail.labels.clone() annotations=detail.annotations.clone() can_edit=permissions.push/>
        {permissions.push.then(|| view! { <TagForm tags=tags.clone() tag fields=tag_fields namespace=detail.namespace.clone() stream=detail.name.clone()/> })}
        {permissions.push.then(|| view! { <ImportForm state=import namespace=detail.namespace.clone() stream=detail.name.clone()/> })}
        <section class="panel">
            <h2>"Tag history"</h2>
            <ActionError action=roll_back/>
            {tags.iter().map(|row| view! {
                <TagHistory row=row.clone() base=base.clone() roll_back can_roll_back=permissions.push/>
            }).collect_view()}
        </section>
        <section class="panel">
            <h2>"Stream history"</h2>
            <Timeline items=detail.history.clone() base=base.clone()/>
        </section>
    }
}

#[component]
fn TagTable(
    tags: Vec<TagRow>,
    stream: String,
    base: String,
    chosen: RwSignal<String>,
    untag: Action<String, ConsoleResult<()>>,
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
                    let pick = name.clone();
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
                                {row.digest.is_some().then(|| view! {
                                    <button type="button" class="link" aria-label=format!("Pull commands for {name}")
                                        on:click=move |_| chosen.set(pick.clone())>"Pull"</button>
                                })}
                                {can_untag.then(|| match row.immutable_rule.clone() {
                                    None => view! {
                                        <DeleteButton what=format!("tag {untag_name}") on_confirm={
                                            let untag_name = untag_name.clone();
                                            move || { untag.dispatch(untag_name.clone()); }
                                        }/>
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

/// podman, docker and skopeo commands for the chosen tag, by tag and by digest; then the tag as
/// kubectl and oc read it.
#[component]
fn PullCommands(
    tags: Vec<TagRow>,
    repository: String,
    chosen: RwSignal<String>,
    namespace: String,
    stream: String,
) -> impl IntoView {
    let host = repository.split('/').next().unwrap_or_default().to_owned();
    let skopeo_flag = tls_flag(&host, "--src-tls-verify");
    let options = tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let commands = move || {
        let name = chosen.get();
        let row = tags.iter().find(|t| t.name == name)?;
        let by_tag = format!("{repository}:{name}");
        let by_digest = row.digest.as_ref().map(|d| format!("{repository}@{d}"));
        // (label, what its copy button copies, command)
        let mut lines = vec![
            ("podman", "pull", podman_pull(&by_tag)),
            ("docker", "pull", format!("docker pull {by_tag}")),
            (
                "skopeo",
                "pull",
                format!("skopeo copy {skopeo_flag}docker://{by_tag} oci:{name}"),
            ),
        ];
        if let Some(by_digest) = by_digest {
            lines.push(("podman by digest", "pull", podman_pull(&by_digest)));
            lines.push((
                "docker by digest",
                "pull",
                format!("docker pull {by_digest}"),
            ));
            lines.push((
                "skopeo by digest",
                "pull",
                format!("skopeo copy {skopeo_flag}docker://{by_digest} oci:{name}"),
            ));
        }
        // The tag as OpenShift's clients read it (`kubectl` and `oc` against Berth's API).
        lines.push((
            "kubectl",
            "get istag",
            format!("kubectl get istag {stream}:{name} -n {namespace}"),
        ));
        lines.push((
            "oc",
            "describe istag",
            format!("oc describe istag {stream}:{name} -n {namespace}"),
        ));
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

/// The fields of the tag form, owned by the page.
#[derive(Clone, Copy)]
struct TagFields {
    name: RwSignal<String>,
    from: RwSignal<String>,
}

/// `oc tag`: point a tag (new or existing) at another tag or an image of this stream. Its
/// error shows beside it.
#[component]
fn TagForm(
    tags: Vec<TagRow>,
    tag: Action<TagInput, ConsoleResult<()>>,
    fields: TagFields,
    namespace: String,
    stream: String,
) -> impl IntoView {
    let TagFields { name, from } = fields;
    if from.with_untracked(String::is_empty) {
        from.set(tags.first().map(|t| t.name.clone()).unwrap_or_default());
    }
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
                    <CommandLine label="oc tag command" command=oc_tag_command(&namespace, &stream, &source, &to)/>
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
    base: String,
    roll_back: Action<TagInput, ConsoleResult<()>>,
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
                {format!(" {count} image{}", if count == 1 { "" } else { "s" })}
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
                                    <ConfirmButton label="Roll back to this" class="small"
                                        aria_label=format!("Roll back {} to {}", target.0, short_digest(&target.1))
                                        question=format!("Point {} at {} again? Pulls of {} get this image from now on.", target.0, short_digest(&target.1), target.0)
                                        yes="Yes, roll back" busy=roll_back.pending()
                                        on_confirm={
                                            let target = target.clone();
                                            move || { roll_back.dispatch(target.clone()); }
                                        }/>
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
