use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::prune::{PruneOptions, PrunerRow, get_pruner};
use crate::components::{Checkbox, ConfirmButton, ErrorPanel, Loading, TextField, island_action};
use crate::format::{size, time};

/// (the options, confirm)
type PruneInput = (PruneOptions, bool);

/// `berth adm prune images` for cluster administrators: the scheduled pruner, a preview of
/// what a prune removes and the bytes it frees, and the prune once confirmed.
#[component]
pub fn PrunePage() -> impl IntoView {
    // No live region: a prune by hand changes nothing of the scheduled pruner.
    let pruner = Resource::new(|| (), |_| get_pruner());
    view! {
        <Title text="Prune images"/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="the image pruner"/> }>
            {move || Suspend::new(async move {
                match pruner.await {
                    Ok(pruner) => view! { <PruneView pruner/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PruneView(pruner: Option<PrunerRow>) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="prune-heading">
            <h1 id="prune-heading">"Prune images"</h1>
            <p class="muted">"What "<code>"berth adm prune images"</code>" removes: history items beyond the newest revisions of each tag, and the images no stream names any more; garbage collection then frees their blobs. A preview lists them first; nothing is removed until you confirm."</p>
            <h2>"Scheduled pruner"</h2>
            {match pruner {
                Some(pruner) => view! { <PrunerFacts pruner/> }.into_any(),
                None => view! {
                    <p class="muted no-pruner">"None is configured: images are pruned only by hand. An ImagePruner at "<code>"/apis/berth.io/v1/imagepruners/cluster"</code>" prunes on a schedule."</p>
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="preview-heading">
            <h2 id="preview-heading">"Preview a prune"</h2>
            <PruneForm/>
        </section>
    }
}

#[component]
fn PrunerFacts(pruner: PrunerRow) -> impl IntoView {
    let last = pruner.last_run.as_ref().map(|run| {
        format!(
            "{}: {} images, {} history items removed, {} freed",
            pruner
                .last_schedule
                .as_deref()
                .map(time)
                .unwrap_or_default(),
            run.images,
            run.items,
            size(run.bytes)
        )
    });
    view! {
        <dl class="facts pruner">
            <dt>"Schedule"</dt>
            <dd class="mono">{pruner.schedule.clone()}{pruner.suspended.then_some(" (suspended)")}</dd>
            <dt>"Keeps"</dt>
            <dd>{format!(
                "the {} newest revisions of each tag, and what is younger than {}",
                pruner.keep_tag_revisions.unwrap_or(3),
                pruner.keep_younger_than.clone().unwrap_or_else(|| "60m".into())
            )}</dd>
            <dt>"Last run"</dt>
            <dd>{last.unwrap_or_else(|| "never".to_owned())}</dd>
        </dl>
    }
}

/// The prune's options, its preview, and the prune of what was previewed once confirmed.
#[island(lazy)]
fn PruneForm() -> impl IntoView {
    crate::components::preload_island(PruneForm);
    // Answers with what it was asked, so that a confirmation prunes what was previewed.
    let prune = island_action(move |input: &PruneInput| {
        let input = input.clone();
        async move {
            #[cfg(feature = "hydrate")]
            let result = crate::api::prune::prune_images(
                crate::components::csrf(),
                input.0.clone(),
                input.1,
            )
            .await;
            #[cfg(not(feature = "hydrate"))]
            let result = crate::components::made_in_the_browser::<crate::api::prune::ShownPrune>();
            (input, result)
        }
    });
    let namespace = RwSignal::new(String::new());
    let revisions = RwSignal::new("3".to_owned());
    let younger = RwSignal::new("60m".to_owned());
    let all = RwSignal::new(true);
    let over_size_limit = RwSignal::new(false);
    let outcome = move || prune.value().get();
    view! {
        <form class="stacked-form" on:submit=move |ev| {
            ev.prevent_default();
            let options = PruneOptions {
                namespace: namespace.get_untracked(),
                keep_tag_revisions: revisions.get_untracked(),
                keep_younger_than: younger.get_untracked(),
                all: all.get_untracked(),
                over_size_limit: over_size_limit.get_untracked(),
            };
            prune.dispatch((options, false));
        }>
            <TextField id="prune-namespace" label="Namespace" value=namespace placeholder="every namespace"/>
            <TextField id="prune-revisions" label="Keep tag revisions" value=revisions required=true
                hint="The newest revisions of each tag that stay."/>
            <TextField id="prune-younger" label="Keep younger than" value=younger required=true
                hint="A duration such as 60m, 1h30m or 24h: streams, revisions and images younger than this stay."/>
            <div class="checks">
                <Checkbox id="prune-all" label="Imported images are candidates too (--all)" value=all/>
                <Checkbox id="prune-over-size" label="Instead of revisions and age: everything larger than its namespace's image size limit (--prune-over-size-limit)" value=over_size_limit/>
            </div>
            <button type="submit" class="primary" disabled=move || prune.pending().get()>"Preview"</button>
        </form>
        {move || outcome().and_then(|(_, result)| result.err()).map(|error| view! {
            <p class="error" role="alert">{error.to_string()}</p>
        })}
        {move || outcome().and_then(|(input, result)| result.ok().map(|result| (input, result))).map(|(input, shown)| {
            // The prune previewed, whatever the form says now.
            let options = input.0;
            view! {
                <div inner_html=shown.html></div>
                {shown.removable.then(|| view! {
                    <ConfirmButton label="Prune for real" question="Prune these now? This cannot be undone."
                        yes="Yes, prune" busy=Signal::derive(move || prune.pending().get())
                        on_confirm=move || { prune.dispatch((options.clone(), true)); }/>
                })}
            }
        })}
    }
}
