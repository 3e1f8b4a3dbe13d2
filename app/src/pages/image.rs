use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{page_title, param, podman_pull};
use crate::api::images::{ImageDetail, RunConfigView, get_image};
use crate::components::{CommandLine, ErrorPanel, Loading, SupplyChainSections, When};
use crate::format::{encode, short_digest, size};

/// An image: summary, platforms, layers, run configuration, build history, referrers and the
/// raw manifest and config; then its signatures, SBOMs and attestations.
#[component]
pub fn ImagePage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let stream = param("stream").get_untracked();
    let digest = param("digest").get_untracked();
    let packages = use_query_map()
        .get_untracked()
        .get("packages")
        .unwrap_or_default();
    let image = Resource::new(
        {
            let (namespace, stream, digest) = (namespace.clone(), stream.clone(), digest.clone());
            move || (namespace.clone(), stream.clone(), digest.clone())
        },
        |(namespace, stream, digest)| get_image(namespace, stream, digest),
    );
    let title = format!("{stream}@{}", short_digest(&digest));
    view! {
        <Title text=page_title(move || title.clone())/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=format!("/ns/{}", encode(&namespace))>{namespace.clone()}</a>" / "
            <a href=format!("/ns/{}/streams/{}", encode(&namespace), encode(&stream))>{stream.clone()}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="the image"/> }>
            {move || Suspend::new(async move {
                match image.await {
                    Ok(detail) => view! { <ImageView detail/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
        <SupplyChainSections namespace stream digest packages/>
    }
}

#[component]
fn ImageView(detail: ImageDetail) -> impl IntoView {
    let base = format!(
        "/ns/{}/streams/{}",
        encode(&detail.namespace),
        encode(&detail.stream)
    );
    let platform = [
        detail.os.clone(),
        detail.architecture.clone(),
        detail.variant.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");
    let pull = format!("{}@{}", detail.pull_repository, detail.digest);
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1><span class="muted">"Image "</span><span class="mono">{short_digest(&detail.digest)}</span></h1>
                <div class="head-actions">
                    <a href=format!("{base}/compare?to={}", encode(&detail.digest))>"Compare with another image"</a>
                </div>
            </div>
            <dl class="facts">
                <dt>"Digest"</dt><dd class="mono">{detail.digest.clone()}</dd>
                <dt>"Media type"</dt><dd class="mono">{detail.media_type.clone()}</dd>
                <dt>"Size"</dt><dd>{size(detail.size)}</dd>
                {detail.created.clone().map(|c| view! { <dt>"Created"</dt><dd><When at=c/></dd> })}
                {detail.pushed.clone().map(|p| view! { <dt>"Pushed"</dt><dd class="pushed-by">"by "{p.by}" "<When at=p.at/></dd> })}
                {detail.author.clone().map(|a| view! { <dt>"Author"</dt><dd>{a}</dd> })}
                {(!platform.is_empty()).then(|| view! { <dt>"Platform"</dt><dd>{platform.clone()}</dd> })}
                {(!detail.tags.is_empty()).then(|| view! {
                    <dt>"Tags"</dt>
                    <dd>{detail.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span>" " }).collect_view()}</dd>
                })}
            </dl>
            <CommandLine label="pull by digest command".to_owned() command=podman_pull(&pull)/>
            <CommandLine label="kubectl get isimage command".to_owned() command=format!(
                "kubectl get isimage {}@{} -n {} -o yaml", detail.stream, detail.digest, detail.namespace
            )/>
        </section>
        {(!detail.platforms.is_empty()).then(|| view! { <Platforms detail=detail.clone() base=base.clone()/> })}
        {(!detail.layers.is_empty()).then(|| view! { <Layers detail=detail.clone() base=base.clone()/> })}
        {detail.config.clone().map(|config| view! { <RunConfig config/> })}
        {(!detail.history.is_empty()).then(|| view! {
            <section class="panel" aria-labelledby="build-heading">
                <h2 id="build-heading">"Build history"</h2>
                <ol class="build-steps">
                    {detail.history.iter().map(|step| view! {
                        <li class:empty-layer=step.empty_layer>
                            <code>{step.created_by.clone()}</code>
                            {step.created.as_deref().map(|c| view! { <span class="when"><When at=c.to_owned()/></span> })}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        })}
        <section class="panel" aria-labelledby="referrers-heading">
            <h2 id="referrers-heading">"Referrers"</h2>
            {if detail.referrers.is_empty() {
                view! { <p class="muted">"No signatures, SBOMs or other artifacts refer to this image."</p> }.into_any()
            } else {
                view! {
                    <table class="list referrers">
                        <thead><tr><th scope="col">"Artifact type"</th><th scope="col">"Digest"</th><th scope="col" class="num">"Size"</th></tr></thead>
                        <tbody>
                            {detail.referrers.iter().map(|r| view! {
                                <tr>
                                    <td>{referrer_kind(&r.artifact_type)}<span class="muted small mono">{format!(" {}", r.artifact_type)}</span></td>
                                    <td class="mono"><a href=format!("{base}/images/{}", r.digest)>{short_digest(&r.digest)}</a></td>
                                    <td class="num">{size(r.size)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="raw-heading">
            <h2 id="raw-heading">"Raw"</h2>
            <p class="muted small">"As stored: these bytes are what the digests are of."</p>
            <details>
                <summary>"Manifest JSON"</summary>
                <RawDownload name=format!("{}.json", detail.digest.replace(':', "-")) what="manifest" text=detail.raw_manifest.clone()/>
                <pre class="json" tabindex="0"><code>{detail.raw_manifest.clone()}</code></pre>
            </details>
            {detail.raw_config.clone().map(|config| view! {
                <details>
                    <summary>"Config JSON"</summary>
                    <RawDownload name="config.json".to_owned() what="config" text=config.clone()/>
                    <pre class="json" tabindex="0"><code>{config}</code></pre>
                </details>
            })}
        </section>
    }
}

/// A link that saves `text` (a stored document) as the file `name`, from the page itself.
#[component]
fn RawDownload(name: String, what: &'static str, text: String) -> impl IntoView {
    let href = format!("data:application/json;charset=utf-8,{}", encode(&text));
    view! { <a class="download" href=href download=name rel="external">{format!("Download the {what}")}</a> }
}

/// What a referrer is, in words.
fn referrer_kind(artifact_type: &str) -> &'static str {
    let t = artifact_type.to_ascii_lowercase();
    if t.contains("signature") || t.contains("cosign") || t.contains("notary") {
        "Signature"
    } else if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") {
        "SBOM"
    } else if t.contains("in-toto") || t.contains("attestation") || t.contains("provenance") {
        "Attestation"
    } else {
        "Artifact"
    }
}

#[component]
fn Platforms(detail: ImageDetail, base: String) -> impl IntoView {
    let (platforms, attestations): (Vec<_>, Vec<_>) = detail
        .platforms
        .into_iter()
        .partition(|p| p.attestation_for.is_none());
    view! {
        <section class="panel" aria-labelledby="platforms-heading">
            <h2 id="platforms-heading">"Platforms"</h2>
            <table class="list platforms">
                <thead><tr><th scope="col">"OS"</th><th scope="col">"Architecture"</th><th scope="col">"Variant"</th><th scope="col">"Manifest"</th><th scope="col" class="num">"Size"</th></tr></thead>
                <tbody>
                    {platforms.into_iter().map(|p| view! {
                        <tr data-platform=format!("{}/{}", p.os, p.architecture)>
                            <td>{p.os.clone()}</td>
                            <td>{p.architecture.clone()}</td>
                            <td>{p.variant.clone().unwrap_or_default()}</td>
                            <td class="mono"><a href=format!("{base}/images/{}", p.digest)>{short_digest(&p.digest)}</a></td>
                            <td class="num">{size(p.size)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(!attestations.is_empty()).then(|| view! {
                <h3>"Attestations"</h3>
                <ul class="attestations">
                    {attestations.into_iter().map(|a| view! {
                        <li>
                            <a class="mono" href=format!("{base}/images/{}", a.digest)>{short_digest(&a.digest)}</a>
                            {format!(" attests {}", a.attestation_for.as_deref().map(short_digest).unwrap_or_default())}
                        </li>
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
}

/// Layers, each with a bar as long as its share of the largest, so heavy layers stand out.
#[component]
fn Layers(detail: ImageDetail, base: String) -> impl IntoView {
    let image = format!("{base}/images/{}", encode(&detail.digest));
    let largest = detail
        .layers
        .iter()
        .map(|l| l.size)
        .max()
        .unwrap_or(1)
        .max(1);
    view! {
        <section class="panel" aria-labelledby="layers-heading">
            <div class="panel-head">
                <h2 id="layers-heading">{format!("Layers ({})", detail.layers.len())}</h2>
                <a href=format!("{image}/files")>"Browse files (all layers merged)"</a>
            </div>
            <ol class="layers">
                {detail.layers.into_iter().enumerate().map(|(at, layer)| {
                    let share = (layer.size as f64 / largest as f64 * 100.0).max(0.5);
                    view! {
                        <li>
                            <a class="mono" title=layer.digest.clone() href=format!("{image}/layers/{}", encode(&layer.digest))
                                aria-label=format!("Files of layer {}, {}", at + 1, short_digest(&layer.digest))>{short_digest(&layer.digest)}</a>
                            // A shape's width, not a style attribute: the pages' policy allows
                            // only the site's stylesheet.
                            <svg class="bar" aria-hidden="true" viewBox="0 0 100 1" preserveAspectRatio="none">
                                <rect width=format!("{share:.1}") height="1"/>
                            </svg>
                            <span class="num">{size(layer.size)}</span>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}

#[component]
fn RunConfig(config: RunConfigView) -> impl IntoView {
    let list = |items: &[String]| {
        if items.is_empty() {
            "—".to_owned()
        } else {
            items.join(" ")
        }
    };
    view! {
        <section class="panel" aria-labelledby="config-heading">
            <h2 id="config-heading">"Configuration"</h2>
            <dl class="facts">
                <dt>"Entrypoint"</dt><dd class="mono">{list(&config.entrypoint)}</dd>
                <dt>"Command"</dt><dd class="mono">{list(&config.cmd)}</dd>
                <dt>"User"</dt><dd class="mono">{config.user.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Working directory"</dt><dd class="mono">{config.working_dir.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Ports"</dt><dd class="mono">{list(&config.ports)}</dd>
                <dt>"Volumes"</dt><dd class="mono">{list(&config.volumes)}</dd>
            </dl>
            {(!config.env.is_empty()).then(|| view! {
                <h3>"Environment"</h3>
                <ul class="env mono">{config.env.iter().map(|e| view! { <li>{e.clone()}</li> }).collect_view()}</ul>
            })}
            {(!config.labels.is_empty()).then(|| view! {
                <h3>"Labels"</h3>
                <table class="list labels">
                    <tbody>
                        {config.labels.iter().map(|(k, v)| view! { <tr><th scope="row" class="mono">{k.clone()}</th><td>{v.clone()}</td></tr> }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
