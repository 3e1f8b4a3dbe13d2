use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{page_title, param};
use crate::api::layers::{
    FILES_PER_PAGE, FileListing, FileQuery, FileRow, file_download_url, get_file_text,
    get_image_files, get_layer_files,
};
use crate::components::{ErrorPanel, LiveRegion, Loading, SearchField};
use crate::format::{encode, epoch_time, file_mode, short_digest, size};

/// One layer's files: `/ns/:namespace/streams/:stream/images/:digest/layers/:layer`.
#[component]
pub fn LayerFilesPage() -> impl IntoView {
    let layer = param("layer");
    view! { <FilesPage layer=Some(layer)/> }
}

/// The image's files, all layers merged: `/ns/:namespace/streams/:stream/images/:digest/files`.
#[component]
pub fn ImageFilesPage() -> impl IntoView {
    view! { <FilesPage layer=None/> }
}

/// A file tree, a directory at a time (`?dir=`), searched by path (`?q=`), in pages
/// (`?offset=`), with one text file shown (`?show=ENTRY&in=LAYER`); the address keeps all of
/// it, so a link opens the same view.
#[component]
fn FilesPage(layer: Option<Memo<String>>) -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let stream = param("stream").get_untracked();
    let image = param("digest").get_untracked();
    let layer = layer.map(|l| l.get_untracked());
    let query = use_query_map().get_untracked();
    let dir = query.get("dir").unwrap_or_default();
    let search = query.get("q").unwrap_or_default();
    let offset = query
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1_000_000_000);
    let shown = query
        .get("show")
        .and_then(|entry| entry.parse::<usize>().ok())
        .and_then(|entry| Some((query.get("in")?, entry)));
    let listing = Resource::new(
        {
            let (namespace, stream, image, layer) = (
                namespace.clone(),
                stream.clone(),
                image.clone(),
                layer.clone(),
            );
            let query = FileQuery {
                dir: dir.clone(),
                search: search.clone(),
                offset,
            };
            move || {
                (
                    namespace.clone(),
                    stream.clone(),
                    image.clone(),
                    layer.clone(),
                    query.clone(),
                )
            }
        },
        |(namespace, stream, image, layer, query)| async move {
            let FileQuery {
                dir,
                search,
                offset,
            } = query;
            match layer {
                Some(layer) => {
                    get_layer_files(namespace, stream, image, layer, dir, search, offset).await
                }
                None => get_image_files(namespace, stream, image, dir, search, offset).await,
            }
        },
    );
    let text = Resource::new(
        {
            let (namespace, stream, image, shown) = (
                namespace.clone(),
                stream.clone(),
                image.clone(),
                shown.clone(),
            );
            move || {
                (
                    namespace.clone(),
                    stream.clone(),
                    image.clone(),
                    shown.clone(),
                )
            }
        },
        |(namespace, stream, image, shown)| async move {
            match shown {
                Some((layer, entry)) => {
                    Some(get_file_text(namespace, stream, image, layer, entry).await)
                }
                None => None,
            }
        },
    );
    let image_page = format!(
        "/ns/{}/streams/{}/images/{}",
        encode(&namespace),
        encode(&stream),
        encode(&image)
    );
    let here = match &layer {
        Some(layer) => format!("{image_page}/layers/{}", encode(layer)),
        None => format!("{image_page}/files"),
    };
    // A cleared search goes back to the directory it was started from.
    let unsearched = if dir.is_empty() {
        here.clone()
    } else {
        format!("{here}?dir={}", encode(&dir))
    };
    let title = match &layer {
        Some(layer) => format!("Layer {} of {}", short_digest(layer), short_digest(&image)),
        None => format!("Files of {}", short_digest(&image)),
    };
    let heading = match &layer {
        Some(layer) => view! { <span class="muted">"Layer "</span><span class="mono">{short_digest(layer)}</span> }.into_any(),
        None => view! { <span class="muted">"Files of image "</span><span class="mono">{short_digest(&image)}</span> }.into_any(),
    };
    let table_here = here.clone();
    view! {
        <Title text=page_title(move || title.clone())/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=format!("/ns/{}", encode(&namespace))>{namespace.clone()}</a>" / "
            <a href=format!("/ns/{}/streams/{}", encode(&namespace), encode(&stream))>{stream.clone()}</a>" / "
            <a href=image_page><span class="mono">{short_digest(&image)}</span></a>
        </nav>
        <section class="panel files">
            <h1>{heading}</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    listing.await.ok().map(|listing| view! { <LayerChooser listing/> })
                })}
            </Suspense>
            <div class="toolbar" role="search">
                <SearchField id="file-search".to_owned() label="Search files by path".to_owned() label_hidden=true
                    placeholder="Search files by path".to_owned() path=here param="q".to_owned()
                    value=search.clone() empty=unsearched/>
            </div>
            <LiveRegion watch="-" id="files">
                <Suspense fallback=|| view! { <Loading what="the files"/> }>
                    {move || {
                        let (here, dir, search) = (table_here.clone(), dir.clone(), search.clone());
                        Suspend::new(async move {
                            match listing.await {
                                Ok(listing) => view! { <FileTable listing here dir search offset/> }.into_any(),
                                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </LiveRegion>
        </section>
        <Suspense fallback=|| ()>
            {move || {
                let (namespace, stream, image, shown) =
                    (namespace.clone(), stream.clone(), image.clone(), shown.clone());
                Suspend::new(async move {
                    text.await.map(|text| match text {
                        Ok(text) => {
                            let (layer, entry) = shown.unwrap_or_default();
                            let download = file_download_url(&namespace, &stream, &image, &layer, entry);
                            view! {
                                <section class="panel file-text" aria-labelledby="file-heading">
                                    <div class="panel-head">
                                        <h2 id="file-heading" class="mono">{text.path.clone()}</h2>
                                        <a href=download rel="external" download="">"Download"</a>
                                    </div>
                                    <p class="muted">{size(text.size)}{text.cut.then_some(" (the start of it is shown)")}</p>
                                    {match text.text {
                                        Some(content) => view! { <pre class="file-content" tabindex="0"><code>{content}</code></pre> }.into_any(),
                                        None => view! { <p>"This file is not text; download it to look inside."</p> }.into_any(),
                                    }}
                                </section>
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    })
                })
            }}
        </Suspense>
    }
}

/// Links to the merged view and to each layer.
#[component]
fn LayerChooser(listing: FileListing) -> impl IntoView {
    let base = format!(
        "/ns/{}/streams/{}/images/{}",
        encode(&listing.namespace),
        encode(&listing.stream),
        encode(&listing.image)
    );
    let current = listing.layer.as_ref().map(|(_, digest)| digest.clone());
    view! {
        <nav class="layer-chooser" aria-label="Layers">
            <a href=format!("{base}/files") aria-current=current.is_none().then_some("page")>"All layers merged"</a>
            {listing.layers.iter().enumerate().map(|(at, layer)| {
                let selected = current.as_deref() == Some(layer.digest.as_str());
                view! {
                    " "
                    <a href=format!("{base}/layers/{}", encode(&layer.digest)) aria-current=selected.then_some("page")
                        title=layer.digest.clone()>
                        {format!("Layer {} ({})", at + 1, size(layer.size))}
                    </a>
                }
            }).collect_view()}
        </nav>
    }
}

#[component]
fn FileTable(
    listing: FileListing,
    here: String,
    dir: String,
    search: String,
    offset: usize,
) -> impl IntoView {
    let merged = listing.layer.is_none();
    let searching = !search.trim().is_empty();
    let dir = dir.trim_matches('/').to_string();
    // The directory's parents, each a link.
    let crumbs = {
        let mut path = String::new();
        let mut crumbs = vec![view! { <a href=here.clone()>"/"</a> }.into_any()];
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            crumbs.push(view! { " / " }.into_any());
            crumbs.push(
                view! { <a href=format!("{here}?dir={}", encode(&path))>{part.to_string()}</a> }
                    .into_any(),
            );
        }
        crumbs
    };
    let summary = if searching {
        format!(
            "{} of {} paths match “{}”",
            listing.matched,
            listing.total,
            search.trim()
        )
    } else {
        format!("{} entries here, {} in all", listing.matched, listing.total)
    };
    let page_link = {
        let here = here.clone();
        let (dir, search) = (dir.clone(), search.clone());
        move |offset: usize| {
            let mut url = format!("{here}?offset={offset}");
            if !search.is_empty() {
                url.push_str(&format!("&q={}", encode(&search)));
            } else if !dir.is_empty() {
                url.push_str(&format!("&dir={}", encode(&dir)));
            }
            url
        }
    };
    let more = offset + listing.rows.len() < listing.matched;
    let context = RowContext {
        here: here.clone(),
        dir: dir.clone(),
        namespace: listing.namespace.clone(),
        stream: listing.stream.clone(),
        image: listing.image.clone(),
        merged,
        searching,
    };
    view! {
        {(!listing.notes.is_empty()).then(|| view! {
            <ul class="notes" role="status">
                {listing.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}
            </ul>
        })}
        {(!searching).then(|| view! { <p class="path-crumbs mono" aria-label="Directory">{crumbs}</p> })}
        <p class="muted">{summary}{listing.compression.clone().map(|c| format!(" · compression: {c}"))}</p>
        {if listing.rows.is_empty() {
            view! { <p class="empty">{if searching { "No path matches." } else { "This directory is empty." }}</p> }.into_any()
        } else {
            view! {
                <table class="list files">
                    <thead>
                        <tr>
                            <th scope="col">{if searching { "Path" } else { "Name" }}</th>
                            <th scope="col">"Type"</th>
                            <th scope="col">"Mode"</th>
                            <th scope="col">"Owner"</th>
                            <th scope="col" class="num">"Size"</th>
                            <th scope="col">"Modified"</th>
                            {merged.then(|| view! { <th scope="col">"Layer"</th> })}
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {listing.rows.into_iter().map(|row| view! { <FileLine row context=context.clone()/> }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {(offset > 0 || more).then(|| view! {
            <nav class="pager" aria-label="Pages">
                {(offset > 0).then(|| view! { <a href=page_link(offset.saturating_sub(FILES_PER_PAGE))>"Previous"</a> })}
                " "
                {more.then(|| view! { <a href=page_link(offset + FILES_PER_PAGE)>"Next"</a> })}
            </nav>
        })}
    }
}

#[derive(Clone)]
struct RowContext {
    here: String,
    dir: String,
    namespace: String,
    stream: String,
    image: String,
    merged: bool,
    searching: bool,
}

#[component]
fn FileLine(row: FileRow, context: RowContext) -> impl IntoView {
    let label = if context.searching {
        row.path.clone()
    } else {
        row.name.clone()
    };
    let readable = row.kind == "file" && !row.truncated;
    let name = match (row.kind.as_str(), row.entry) {
        ("dir", _) => view! {
            <a href=format!("{}?dir={}", context.here, encode(&row.path))>{format!("{label}/")}</a>
        }
        .into_any(),
        (_, Some(entry)) if readable => {
            let mut url = format!(
                "{}?show={entry}&in={}",
                context.here,
                encode(&row.layer_digest)
            );
            if !context.dir.is_empty() && !context.searching {
                url.push_str(&format!("&dir={}", encode(&context.dir)));
            }
            view! { <a href=url>{label}</a> }.into_any()
        }
        _ => view! { <span>{label}</span> }.into_any(),
    };
    let owner = match &row.owner {
        Some(user) if !user.is_empty() => format!("{user} ({}:{})", row.uid, row.gid),
        _ => format!("{}:{}", row.uid, row.gid),
    };
    let download = row.entry.filter(|_| readable).map(|entry| {
        file_download_url(
            &context.namespace,
            &context.stream,
            &context.image,
            &row.layer_digest,
            entry,
        )
    });
    view! {
        <tr data-path=row.path.clone() data-kind=row.kind.clone()>
            <td class="name mono">
                {name}
                {row.link_target.clone().map(|target| view! { <span class="muted">{format!(" → {target}")}</span> })}
                {row.stored_as.clone().map(|stored| view! { <span class="muted small">{format!(" (stored as {stored})")}</span> })}
                {row.truncated.then(|| view! { <span class="muted small">" (cut short in the layer)"</span> })}
            </td>
            <td>{row.kind.clone()}</td>
            <td class="mono">{file_mode(&row.kind, row.mode)}</td>
            <td class="mono">{owner}</td>
            <td class="num">{if row.kind == "file" { size(row.size) } else { String::new() }}</td>
            <td>{if row.entry.is_some() { epoch_time(row.mtime) } else { String::new() }}</td>
            {context.merged.then(|| view! { <td title=row.layer_digest.clone()>{format!("{}", row.layer + 1)}</td> })}
            <td>{download.map(|url| view! {
                <a href=url rel="external" download="" aria-label=format!("Download {}", row.path)>"Download"</a>
            })}</td>
        </tr>
    }
}
