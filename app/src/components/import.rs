use leptos::prelude::*;

use super::{ActionError, Checkbox, CommandLine, island_action};
#[cfg(feature = "hydrate")]
use crate::api::imports::import_images;
use crate::api::imports::{ImportOutcome, ImportRequest};
use crate::format::{ImportCommand, encode, short_digest};

/// `oc import-image` in a form: a remote image (or all its repository's tags) into a stream of
/// `namespace`; `stream` fixes the stream (the stream page), else it is asked for. What is typed
/// is kept when the page's data is read again (after the import itself).
///
/// Eager, as `ChangeButton` is: on the two most visited pages (a namespace, a stream), and the
/// code it shares with the other forms then loads once, in the main bundle (the image stream
/// page: 37 files, 246 KB gzip, from 71 and 265 KB; see `bench/console.sh`).
#[island]
pub fn ImportForm(namespace: String, #[prop(optional)] stream: Option<String>) -> impl IntoView {
    let from = super::typed_field("import-from", "");
    let into = super::typed_field("import-stream", "");
    let tag = super::typed_field("import-tag", "");
    let all_tags = RwSignal::new(false);
    let insecure = RwSignal::new(false);
    let scheduled = RwSignal::new(false);
    let local = RwSignal::new(false);
    let dry_run = RwSignal::new(false);
    let import = island_action(move |request: &ImportRequest| {
        let request = request.clone();
        async move {
            #[cfg(feature = "hydrate")]
            {
                let dry_run = request.dry_run;
                let outcomes = import_images(super::csrf(), request).await?;
                if !dry_run {
                    super::refresh_page().await;
                }
                Ok::<Vec<ImportOutcome>, crate::api::ConsoleError>(outcomes)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = request;
                Ok::<Vec<ImportOutcome>, crate::api::ConsoleError>(Vec::new())
            }
        }
    });
    let images_of = namespace.clone();
    let command_namespace = namespace.clone();
    let command_stream = stream.clone();
    let fixed_stream = stream.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        import.dispatch(ImportRequest {
            namespace: namespace.clone(),
            stream: fixed_stream.clone().unwrap_or_else(|| into.get_untracked()),
            from: from.get_untracked(),
            tag: tag.get_untracked(),
            all_tags: all_tags.get_untracked(),
            insecure: insecure.get_untracked(),
            scheduled: scheduled.get_untracked(),
            local: local.get_untracked(),
            dry_run: dry_run.get_untracked(),
        });
    };
    let fixed_stream = stream.is_some();
    view! {
        <section class="panel" aria-labelledby="import-heading">
            <h2 id="import-heading">"Import from another registry"</h2>
            <form class="stacked-form" on:submit=submit>
                <label for="import-from">"Image"</label>
                <input id="import-from" required placeholder="quay.io/team/app:1.2 or docker.io/library/nginx"
                    prop:value=from on:input=move |ev| from.set(event_target_value(&ev))/>
                {(!fixed_stream).then(|| view! {
                    <label for="import-stream">"Into image stream"</label>
                    <input id="import-stream" required placeholder="app"
                        prop:value=into on:input=move |ev| into.set(event_target_value(&ev))/>
                })}
                <label for="import-tag">"As tag"</label>
                <input id="import-tag" placeholder="the image's own tag" disabled=move || all_tags.get()
                    prop:value=tag on:input=move |ev| tag.set(event_target_value(&ev))/>
                <div class="checks">
                    <Checkbox id="import-all" label="All tags of the repository" value=all_tags/>
                    <Checkbox id="import-scheduled" label="Import again on a schedule" value=scheduled/>
                    <Checkbox id="import-local" label="Serve pulls from Berth (pull-through)" value=local/>
                    <Checkbox id="import-insecure" label="Plain HTTP (insecure registry)" value=insecure/>
                    <Checkbox id="import-dry-run" label="Dry run: only check what would be imported" value=dry_run/>
                </div>
                <p class="muted small">"Credentials come from the namespace's pull secrets for the registry's host."</p>
                // The same import from the command line, as the form stands.
                {move || {
                    let source = from.get();
                    let stream = command_stream.clone().unwrap_or_else(|| into.get());
                    (!source.trim().is_empty() && !stream.trim().is_empty()).then(|| {
                        let command = ImportCommand {
                            namespace: &command_namespace,
                            stream: &stream,
                            from: &source,
                            tag: &tag.get(),
                            all_tags: all_tags.get(),
                            scheduled: scheduled.get(),
                            local: local.get(),
                            insecure: insecure.get(),
                        }
                        .command();
                        view! { <CommandLine label="oc import-image command".to_owned() command/> }
                    })
                }}
                <button type="submit" disabled=move || import.pending().get()>
                    {move || match (import.pending().get(), dry_run.get()) {
                        (true, _) => "Importing…",
                        (false, true) => "Check",
                        (false, false) => "Import",
                    }}
                </button>
            </form>
            <ActionError action=import/>
            {move || import.value().get().and_then(Result::ok).map(|outcomes| view! {
                <ul class="import-outcomes" role="status">
                    {outcomes.into_iter().map(|outcome| match (outcome.digest, outcome.error) {
                        (_, Some(error)) => view! {
                            <li class="warning">{format!("{}: {}failed: {error}", outcome.tag, if outcome.dry_run { "dry run " } else { "" })}</li>
                        }.into_any(),
                        (Some(digest), None) if outcome.dry_run => view! {
                            <li class="ok">{format!("{}: would import {} (dry run: nothing was changed)", outcome.tag, short_digest(&digest))}</li>
                        }.into_any(),
                        (Some(digest), None) => view! {
                            <li class="ok">{format!("{}: imported ", outcome.tag)}
                                <a class="mono" href=format!("/ns/{}/streams/{}/images/{digest}", encode(&images_of), encode(&outcome.stream))>{short_digest(&digest)}</a>
                            </li>
                        }.into_any(),
                        (None, None) => view! { <li>{outcome.tag}</li> }.into_any(),
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
}
