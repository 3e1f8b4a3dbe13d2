use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::{page_title, param};
use crate::api::diff::{Comparison, DiffSide, ImageDiff, LayerPlace, compare_images};
use crate::components::{ErrorPanel, Loading};
use crate::format::{encode, short_digest, size, time};

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
    view! {
        <section class="panel">
            <h1><span class="muted">"Compare images of "</span>{comparison.stream.clone()}</h1>
            <Form method="get" action=format!("{base}/compare")>
                <div class="inline-form compare-form">
                    <label for="from">"From"</label>
                    {select("from", &comparison.from)}
                    <label for="to">"To"</label>
                    {select("to", &comparison.to)}
                    {platform.clone().map(|p| view! { <input type="hidden" name="platform" value=p/> })}
                    <button type="submit" class="primary">"Compare"</button>
                    {(!comparison.from.is_empty() && !comparison.to.is_empty()).then(|| view! {
                        <a href=compare_href(&base, &comparison.to, &comparison.from, platform.as_deref())>"Swap"</a>
                    })}
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
            Some(diff) => view! { <DiffView diff base/> }.into_any(),
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
                                        <th scope="row">{setting}</th>
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
