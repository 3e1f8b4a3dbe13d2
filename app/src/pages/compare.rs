use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::{page_title, param};
use crate::api::ConsoleError;
use crate::api::diff::{
    Comparison, DiffSide, FILE_CHANGES_PER_PAGE, FileSide, FilesDiff, ImageDiff, LayerPlace,
    compare_files, compare_images,
};
use crate::components::{ErrorPanel, Loading};
use crate::format::{count, encode, file_mode, short_digest, size, time};

/// Two images of a stream compared: pick each as a tag or a recent image (and, for an index,
/// the platform); the address keeps all three, so a link shows the same comparison.
#[component]
pub fn ComparePage() -> impl IntoView {
    let namespace = param("namespace");
    let stream = param("stream");
    let query = use_query_map();
    let asked = move |name: &str| query.read().get(name).unwrap_or_default();
    let comparison = Resource::new(
        move || {
            (
                namespace.get(),
                stream.get(),
                asked("from"),
                asked("to"),
                asked("platform"),
            )
        },
        |(namespace, stream, from, to, platform)| {
            compare_images(namespace, stream, from, to, platform)
        },
    );
    view! {
        <Title text=page_title(move || format!("Compare · {}/{}", namespace.get(), stream.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>" / "
            <a href=move || format!("/ns/{}/streams/{}", encode(&namespace.get()), encode(&stream.get()))>{move || stream.get()}</a>
        </nav>
        <Transition fallback=|| view! { <Loading what="the comparison"/> }>
            {move || Suspend::new(async move {
                match comparison.await {
                    Ok(comparison) => view! { <CompareView comparison/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The address of a comparison.
pub fn compare_href(base: &str, from: &str, to: &str, platform: Option<&str>) -> String {
    let mut href = format!("{base}/compare?from={}&to={}", encode(from), encode(to));
    if let Some(platform) = platform {
        href.push_str(&format!("&platform={}", encode(platform)));
    }
    href
}

#[component]
fn CompareView(comparison: Comparison) -> impl IntoView {
    let base = format!(
        "/ns/{}/streams/{}",
        encode(&comparison.namespace),
        encode(&comparison.stream)
    );
    let select = |id: &'static str, chosen: &str| {
        let (tags, images): (Vec<_>, Vec<_>) =
            comparison.choices.iter().cloned().partition(|c| c.is_tag);
        let option = |choice: crate::api::diff::RefChoice| {
            let selected = choice.value == chosen;
            view! { <option value=choice.value selected=selected>{choice.label}</option> }
        };
        view! {
            <select id=id name=id>
                {(!tags.is_empty()).then(|| view! { <optgroup label="Tags">{tags.into_iter().map(option).collect_view()}</optgroup> })}
                {(!images.is_empty()).then(|| view! { <optgroup label="Images">{images.into_iter().map(option).collect_view()}</optgroup> })}
            </select>
        }
    };
    let platform = comparison.platform.clone();
    // The form's children are made once and moved into it.
    let (from_select, to_select) = (
        select("from", &comparison.from),
        select("to", &comparison.to),
    );
    let swap = (!comparison.from.is_empty() && !comparison.to.is_empty())
        .then(|| compare_href(&base, &comparison.to, &comparison.from, platform.as_deref()));
    let platform_field = platform
        .clone()
        .map(|p| view! { <input type="hidden" name="platform" value=p/> });
    view! {
        <section class="panel">
            <h1><span class="muted">"Compare images of "</span>{comparison.stream.clone()}</h1>
            <Form method="get" action=format!("{base}/compare")>
                <div class="inline-form compare-form">
                    <label for="from">"From"</label>
                    {from_select}
                    <label for="to">"To"</label>
                    {to_select}
                    {platform_field}
                    <button type="submit" class="primary">"Compare"</button>
                    {swap.map(|href| view! { <a href=href>"Swap"</a> })}
                </div>
            </Form>
            {(comparison.platforms.len() > 1).then(|| {
                let chosen = comparison.platform.clone().unwrap_or_default();
                view! {
                    <nav class="platforms-switch" aria-label="Platform">
                        <span class="muted small">"Platform: "</span>
                        {comparison.platforms.iter().map(|p| {
                            let current = *p == chosen;
                            view! {
                                <a href=compare_href(&base, &comparison.from, &comparison.to, Some(p))
                                    class:current=current aria-current=current.then_some("page")>{p.clone()}</a>
                            }
                        }).collect_view()}
                    </nav>
                }
            })}
        </section>
        {match comparison.diff.clone() {
            Some(diff) => view! {
                <DiffView diff base=base.clone()/>
                <FileChanges comparison=comparison.clone() base/>
            }.into_any(),
            None => view! {
                <section class="panel">
                    <p class="empty">"This stream has no earlier image to compare with: pick two images above."</p>
                </section>
            }.into_any(),
        }}
    }
}

#[component]
fn DiffView(diff: ImageDiff, base: String) -> impl IntoView {
    let delta = match diff.size_delta {
        0 => "the same size".to_owned(),
        d if d > 0 => format!("+{}", size(d.unsigned_abs())),
        d => format!("−{}", size(d.unsigned_abs())),
    };
    let platforms_differ = diff.from.platform != diff.to.platform;
    view! {
        <section class="panel" aria-labelledby="sides-heading">
            <h2 id="sides-heading">"Images"</h2>
            <div class="columns compare-sides">
                <Side label="From" side=diff.from.clone() base=base.clone()/>
                <Side label="To" side=diff.to.clone() base=base.clone()/>
            </div>
            <p class="size-delta">"Size change: "<strong>{delta}</strong></p>
            {platforms_differ.then(|| view! {
                <p class="warning" role="note">"The two images are of different platforms: one of them offers no image of the other's."</p>
            })}
        </section>
        <ConfigChanges diff=diff.clone()/>
        <LayerChanges diff/>
    }
}

#[component]
fn Side(label: &'static str, side: DiffSide, base: String) -> impl IntoView {
    let heading = if side.reference == side.digest {
        short_digest(&side.digest)
    } else {
        side.reference.clone()
    };
    view! {
        <div class="compare-side" data-side=label.to_lowercase()>
            <h3>{format!("{label}: {heading}")}</h3>
            <dl class="facts">
                <dt>"Image"</dt>
                <dd class="mono"><a href=format!("{base}/images/{}", side.digest) title=side.digest.clone()>{short_digest(&side.digest)}</a></dd>
                {(side.compared != side.digest).then(|| view! {
                    <dt>"Platform image"</dt>
                    <dd class="mono"><a href=format!("{base}/images/{}", side.compared) title=side.compared.clone()>{short_digest(&side.compared)}</a></dd>
                })}
                {side.platform.clone().map(|p| view! { <dt>"Platform"</dt><dd>{p}</dd> })}
                <dt>"Size"</dt><dd>{size(side.size)}</dd>
                {side.created.clone().map(|c| view! { <dt>"Created"</dt><dd>{time(&c)}</dd> })}
                {(!side.tags.is_empty()).then(|| view! {
                    <dt>"Tags"</dt>
                    <dd>{side.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span>" " }).collect_view()}</dd>
                })}
            </dl>
        </div>
    }
}

#[component]
fn ConfigChanges(diff: ImageDiff) -> impl IntoView {
    let count = diff.config.len();
    view! {
        <section class="panel" aria-labelledby="config-changes-heading">
            <h2 id="config-changes-heading">{format!("Configuration changes ({count})")}</h2>
            {if diff.config.is_empty() {
                view! { <p class="empty">"The run configuration is the same."</p> }.into_any()
            } else {
                view! {
                    <table class="list config-changes">
                        <thead><tr>
                            <th scope="col">"Setting"</th>
                            <th scope="col">"Change"</th>
                            <th scope="col">"From"</th>
                            <th scope="col">"To"</th>
                        </tr></thead>
                        <tbody>
                            {diff.config.into_iter().map(|change| {
                                let kind = change.change().label();
                                let setting = match &change.key {
                                    Some(key) => format!("{} {key}", change.field.label()),
                                    None => change.field.label().to_owned(),
                                };
                                view! {
                                    <tr data-change=kind data-setting=setting.clone()>
                                        <th scope="row">{setting.clone()}</th>
                                        <td><span class=format!("badge change {kind}")>{kind}</span></td>
                                        <td class="mono">{change.before.unwrap_or_else(|| "—".into())}</td>
                                        <td class="mono">{change.after.unwrap_or_else(|| "—".into())}</td>
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

/// Both stacks of layers in order: shared ones once, each image's own marked.
#[component]
fn LayerChanges(diff: ImageDiff) -> impl IntoView {
    let total = |place: LayerPlace| {
        let rows = diff.layers.iter().filter(|l| l.place == place);
        (rows.clone().count(), rows.map(|l| l.size).sum::<u64>())
    };
    let (shared, only_from, only_to) = (
        total(LayerPlace::Shared),
        total(LayerPlace::OnlyFrom),
        total(LayerPlace::OnlyTo),
    );
    let summary = format!(
        "{} shared ({}), {} only in from ({}), {} only in to ({})",
        shared.0,
        size(shared.1),
        only_from.0,
        size(only_from.1),
        only_to.0,
        size(only_to.1)
    );
    view! {
        <section class="panel" aria-labelledby="layer-changes-heading">
            <h2 id="layer-changes-heading">"Layers"</h2>
            <p class="layer-summary">{summary}</p>
            <table class="list layer-changes">
                <thead><tr>
                    <th scope="col">"Layer"</th>
                    <th scope="col">"In"</th>
                    <th scope="col" class="num">"Position (from → to)"</th>
                    <th scope="col" class="num">"Size"</th>
                </tr></thead>
                <tbody>
                    {diff.layers.into_iter().map(|layer| {
                        let (place, label) = match layer.place {
                            LayerPlace::Shared => ("shared", "both"),
                            LayerPlace::OnlyFrom => ("only-from", "only from"),
                            LayerPlace::OnlyTo => ("only-to", "only to"),
                        };
                        let position = |p: Option<usize>| p.map(|p| p.to_string()).unwrap_or_else(|| "—".into());
                        view! {
                            <tr class=place data-place=place>
                                <td class="mono" title=layer.digest.clone()>{short_digest(&layer.digest)}</td>
                                <td><span class=format!("badge place {place}")>{label}</span></td>
                                <td class="num">{format!("{} → {}", position(layer.from_position), position(layer.to_position))}</td>
                                <td class="num">{size(layer.size)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The files of the two images compared over their merged views: counts, a filter by kind of
/// change and path (in the address too), and a page of changes at a time.
#[component]
fn FileChanges(comparison: Comparison, base: String) -> impl IntoView {
    let query = use_query_map();
    let asked = move |name: &str| query.read().get(name).unwrap_or_default();
    let (namespace, stream) = (comparison.namespace.clone(), comparison.stream.clone());
    let (from, to) = (comparison.from.clone(), comparison.to.clone());
    let platform = comparison.platform.clone().unwrap_or_default();
    let files = Resource::new(
        move || (asked("files"), asked("path"), asked("offset")),
        move |(change, path, offset)| {
            compare_files(
                namespace.clone(),
                stream.clone(),
                from.clone(),
                to.clone(),
                platform.clone(),
                change,
                path,
                offset.parse().unwrap_or(0),
            )
        },
    );
    view! {
        <section class="panel" aria-labelledby="file-changes-heading">
            <h2 id="file-changes-heading">"Files"</h2>
            <Transition fallback=|| view! { <Loading what="the files of both images"/> }>
                {move || {
                    let (comparison, base) = (comparison.clone(), base.clone());
                    Suspend::new(async move {
                        match files.await {
                            Ok(files) => view! { <FilesView files comparison base filter={(asked("files"), asked("path"))}/> }.into_any(),
                            Err(ConsoleError::NotHere(why)) => view! { <p class="muted">{why}</p> }.into_any(),
                            Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn FilesView(
    files: FilesDiff,
    comparison: Comparison,
    base: String,
    filter: (String, String),
) -> impl IntoView {
    let (change, path) = filter;
    let page_href = |offset: usize| {
        let mut href = compare_href(
            &base,
            &comparison.from,
            &comparison.to,
            comparison.platform.as_deref(),
        );
        href.push_str(&format!(
            "&files={}&path={}&offset={offset}",
            encode(&change),
            encode(&path)
        ));
        href
    };
    let shown = files.files.len();
    let range = if files.matched == 0 {
        "No file changes match.".to_owned()
    } else if shown < files.matched {
        format!(
            "Showing {}–{} of {} matching changes.",
            files.offset + 1,
            files.offset + shown,
            files.matched
        )
    } else {
        format!(
            "{}.",
            count(files.matched as u64, "matching change", "matching changes")
        )
    };
    let previous =
        (files.offset > 0).then(|| page_href(files.offset.saturating_sub(FILE_CHANGES_PER_PAGE)));
    let next = (files.offset + shown < files.matched).then(|| page_href(files.offset + shown));
    let kinds = [
        ("", "All changes"),
        ("added", "Added"),
        ("removed", "Removed"),
        ("changed", "Changed"),
    ];
    view! {
        <p class="file-counts">
            <span class="badge change added">{format!("{} added", files.added)}</span>" "
            <span class="badge change removed">{format!("{} removed", files.removed)}</span>" "
            <span class="badge change changed">{format!("{} changed", files.changed)}</span>
        </p>
        {files.notes.iter().map(|note| view! { <p class="warning" role="note">{note.clone()}</p> }).collect_view()}
        <Form method="get" action=format!("{base}/compare")>
            <div class="inline-form">
                <input type="hidden" name="from" value=comparison.from.clone()/>
                <input type="hidden" name="to" value=comparison.to.clone()/>
                {comparison.platform.clone().map(|p| view! { <input type="hidden" name="platform" value=p/> })}
                <label for="file-change">"Show"</label>
                // The page's address is the filter: no form state restored on Back.
                <select id="file-change" name="files" autocomplete="off">
                    {kinds.into_iter().map(|(value, label)| view! {
                        <option value=value selected={change == value}>{label}</option>
                    }).collect_view()}
                </select>
                <label for="file-path">"Path contains"</label>
                <input id="file-path" name="path" type="search" value=path.clone() placeholder="etc/" autocomplete="off"/>
                <button type="submit">"Filter"</button>
            </div>
        </Form>
        <p class="muted small file-range">{range}</p>
        {(!files.files.is_empty()).then(|| view! {
            <table class="list file-changes">
                <thead><tr>
                    <th scope="col">"Path"</th>
                    <th scope="col">"Change"</th>
                    <th scope="col">"From"</th>
                    <th scope="col">"To"</th>
                </tr></thead>
                <tbody>
                    {files.files.into_iter().map(|file| {
                        let kind = file.change.label();
                        let differs = file.differs.iter().map(|a| a.label()).collect::<Vec<_>>().join(", ");
                        view! {
                            <tr data-path=file.path.clone() data-change=kind>
                                <th scope="row" class="mono">{file.path.clone()}</th>
                                <td>
                                    <span class=format!("badge change {kind}")>{kind}</span>
                                    {(!differs.is_empty()).then(|| view! { <span class="muted small differs">{format!(" {differs}")}</span> })}
                                </td>
                                <td class="mono small">{file.before.as_ref().map(file_facts).unwrap_or_else(|| "—".into())}</td>
                                <td class="mono small">{file.after.as_ref().map(file_facts).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        })}
        {(previous.is_some() || next.is_some()).then(|| view! {
            <nav class="pager" aria-label="File changes pages">
                {previous.map(|href| view! { <a href=href>"Previous"</a> })}
                {next.map(|href| view! { <a href=href>{format!("Next {FILE_CHANGES_PER_PAGE}")}</a> })}
            </nav>
        })}
    }
}

/// `-rw-r--r-- 0:0 1.2 kB sha256:abcdef…` (layer 2): what a side says of a path.
fn file_facts(side: &FileSide) -> String {
    let mut facts = format!(
        "{} {}:{} {}",
        file_mode(&side.kind, side.mode),
        side.uid,
        side.gid,
        size(side.size)
    );
    if let Some(digest) = &side.content_digest {
        facts.push_str(&format!(" {}", short_digest(digest)));
    }
    if let Some(target) = &side.link_target {
        facts.push_str(&format!(" → {target}"));
    }
    facts.push_str(&format!(" (layer {})", side.layer + 1));
    facts
}
