//! A stream's labels and annotations on its page, edited by those who may update it.

use leptos::prelude::*;

use super::stream::{StreamControl, StreamControls};
#[cfg(feature = "hydrate")]
use crate::api::streams::set_stream_metadata;
use crate::components::{ActionError, LiveRegion, island_action};

type Pairs = Vec<(String, String)>;

fn lines(pairs: &Pairs) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .collect()
}

/// The stream's labels (as `key=value` badges) and annotations, in a live region; with
/// `can_edit`, a form of `key=value` lines that replaces both.
#[component]
pub fn StreamLabels(
    namespace: String,
    stream: String,
    /// The live region's watch (the stream's).
    watch: String,
    labels: Pairs,
    annotations: Pairs,
    can_edit: bool,
) -> impl IntoView {
    let shown = if labels.is_empty() && annotations.is_empty() {
        view! { <p class="muted">"No labels or annotations."</p> }.into_any()
    } else {
        view! {
            <dl class="facts labels">
                {(!labels.is_empty()).then(|| view! {
                    <dt>"Labels"</dt>
                    <dd>{labels.iter().map(|(key, value)| view! {
                        <span class="badge label" data-label=key.clone()>{format!("{key}={value}")}</span>" "
                    }).collect_view()}</dd>
                })}
                {annotations.iter().map(|(key, value)| view! {
                    <dt class="mono">{key.clone()}</dt><dd class="annotation">{value.clone()}</dd>
                }).collect_view()}
            </dl>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="labels-heading">
            <div class="panel-head">
                <h2 id="labels-heading">"Labels and annotations"</h2>
            </div>
            <LiveRegion watch id="labels">{shown}</LiveRegion>
            {can_edit.then(|| view! {
                <StreamControls control=StreamControl::LabelsEditor(
                    namespace, stream, lines(&labels), lines(&annotations),
                )/>
            })}
        </section>
    }
}

/// The "Edit" button of a stream's labels and annotations, and the form it opens.
#[component]
pub(super) fn LabelsEditor(
    namespace: String,
    stream: String,
    labels: String,
    annotations: String,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let labels_text = RwSignal::new(labels);
    let annotations_text = RwSignal::new(annotations);
    let save = island_action(move |(labels, annotations): &(String, String)| {
        let (namespace, stream) = (namespace.clone(), stream.clone());
        let (labels, annotations) = (labels.clone(), annotations.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                set_stream_metadata(
                    crate::components::csrf(),
                    namespace,
                    stream,
                    labels,
                    annotations,
                )
                .await?;
                crate::components::refresh_page().await;
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (namespace, stream, labels, annotations);
            Ok::<_, crate::api::ConsoleError>(())
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = save.value().get() {
            editing.set(false);
        }
    });
    view! {
        <button type="button" class="link" aria-expanded=move || editing.get().to_string()
            on:click=move |_| editing.update(|open| *open = !*open)>"Edit"</button>
        <Show when=move || editing.get()>
            <form class="stacked-form" aria-label="Labels and annotations" on:submit=move |ev| {
                ev.prevent_default();
                save.dispatch((labels_text.get_untracked(), annotations_text.get_untracked()));
            }>
                <label for="stream-labels">"Labels"</label>
                <textarea id="stream-labels" rows="3" placeholder="team=shop" aria-describedby="labels-hint"
                    prop:value=labels_text on:input=move |ev| labels_text.set(event_target_value(&ev))></textarea>
                <label for="stream-annotations">"Annotations"</label>
                <textarea id="stream-annotations" rows="3" placeholder="description=The shop's web front" aria-describedby="labels-hint"
                    prop:value=annotations_text on:input=move |ev| annotations_text.set(event_target_value(&ev))></textarea>
                <p class="muted small" id="labels-hint">"One key=value a line."</p>
                <button type="submit" disabled=move || save.pending().get()>"Save"</button>
            </form>
            <ActionError action=save/>
        </Show>
    }
}
