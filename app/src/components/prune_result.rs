use leptos::prelude::*;

use crate::api::prune::PruneResult;
use crate::format::{count, short_digest, size};

/// What a prune or a retention run removed, or (a dry run) would remove: each stream's history
/// items and images, the tags left without an image, and the bytes garbage collection frees.
#[component]
pub fn PruneResultView(result: PruneResult) -> impl IntoView {
    let nothing = result.images == 0 && result.items == 0;
    let what = format!(
        "{} and {} from {}",
        count(result.images, "image", "images"),
        count(result.items, "history item", "history items"),
        count(result.streams.len() as u64, "stream", "streams"),
    );
    let summary = match (result.dry_run, nothing) {
        (true, true) => "Nothing would be removed.".to_owned(),
        (false, true) => "Nothing was removed.".to_owned(),
        (true, false) => format!(
            "Would remove {what}, freeing {} ({}).",
            size(result.bytes),
            count(result.blobs, "blob", "blobs")
        ),
        (false, false) => format!(
            "Removed {what}; garbage collection frees {} ({}).",
            size(result.bytes),
            count(result.blobs, "blob", "blobs")
        ),
    };
    let kind = if result.dry_run { "dry-run" } else { "done" };
    view! {
        <div class="prune-result" data-result=kind role="status">
            <p class="prune-summary"><strong>{if result.dry_run { "Dry run: " } else { "Done: " }}</strong>{summary}</p>
            {(!nothing).then(|| view! {
                <table class="list pruned">
                    <thead><tr>
                        <th scope="col">"Image stream"</th>
                        <th scope="col">"History items"</th>
                        <th scope="col">"Images"</th>
                    </tr></thead>
                    <tbody>
                        {result.streams.iter().map(|stream| view! {
                            <tr data-stream=format!("{}/{}", stream.namespace, stream.name)>
                                <td class="name">{format!("{}/{}", stream.namespace, stream.name)}</td>
                                <td>
                                    <ul class="plain">
                                        {stream.items.iter().map(|(tag, image)| view! {
                                            <li><span class="tag">{tag.clone()}</span>" "<span class="mono" title=image.clone()>{short_digest(image)}</span></li>
                                        }).collect_view()}
                                    </ul>
                                    {(!stream.tags.is_empty()).then(|| view! {
                                        <p class="muted small">{format!("Tags removed: {}", stream.tags.join(", "))}</p>
                                    })}
                                </td>
                                <td>
                                    <ul class="plain">
                                        {stream.images.iter().map(|digest| view! {
                                            <li class="mono" data-image=digest.clone() title=digest.clone()>{short_digest(digest)}</li>
                                        }).collect_view()}
                                    </ul>
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {(result.skipped > 0).then(|| view! {
                <p class="muted">{format!("{} in use again when its turn came, kept.", count(result.skipped, "image was", "images were"))}</p>
            })}
            {(!result.errors.is_empty()).then(|| view! {
                <ul class="error">
                    {result.errors.iter().map(|error| view! { <li>{error.clone()}</li> }).collect_view()}
                </ul>
            })}
        </div>
    }
}
