//! The head of a page preloads the code of its lazy islands, so that the browser downloads it
//! beside the main bundle instead of after the main bundle has run and asked for it (the
//! waterfall that made the islands console slower to become interactive than the single bundle
//! it replaced, `bench/console.sh`).

#[cfg(feature = "ssr")]
use leptos::prelude::*;

/// The lazy islands whose code the page being rendered already preloads.
///
/// Leptos keeps a set like it (`PrefetchLazyFn`) for `#[lazy]` functions, but it turns that set
/// into links only when an owner happens to be current after rendering, so on some requests and
/// not others; entries here are this module's alone.
#[cfg(feature = "ssr")]
#[derive(Clone, Default)]
struct PreloadedIslands(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<&'static str>>>);

/// Starts the page's (empty) set of preloaded islands: the app calls it once per page.
pub fn provide_island_preloads() {
    #[cfg(feature = "ssr")]
    provide_context(PreloadedIslands::default());
}

/// Has the page being rendered preload the module of the lazy island `island` (the island's own
/// function, `preload_island(StreamFilter)`) and the chunks that module needs. Each lazy island
/// calls it first thing; it does something only where the island is rendered, on the server.
pub fn preload_island<Island>(island: Island) {
    #[cfg(feature = "ssr")]
    {
        use std::collections::HashMap;
        use std::sync::OnceLock;

        use leptos_meta::Link;

        // The split manifest, which `HydrationScripts` reads once, lists each island's files
        // under `<island>_loader_<hash>`.
        static LOADERS: OnceLock<HashMap<String, String>> = OnceLock::new();
        let (Some(manifest), Some(preloaded)) = (
            use_context::<leptos::WasmSplitManifest>(),
            use_context::<PreloadedIslands>(),
        ) else {
            return;
        };
        let loaders = LOADERS.get_or_init(|| {
            manifest
                .0
                .try_with_value(|(_, modules, _)| {
                    modules
                        .keys()
                        .filter_map(|key| {
                            let (island, _) = key.split_once("_loader_")?;
                            Some((island.to_owned(), key.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let island = std::any::type_name_of_val(&island);
        let Some(loader) = loaders.get(&manifest_name(island)) else {
            return;
        };
        // An island inside another island is hydrated with it, by the outer island's code: its
        // own module is never fetched. Each island's body runs in an owner of its own, below
        // the one it was placed in, and Leptos marks island owners `IsHydrating`.
        let nested = Owner::current()
            .and_then(|owner| owner.parent())
            .is_some_and(|parent| {
                parent
                    .with(use_context::<leptos::reactive::owner::IsHydrating>)
                    .is_some_and(|h| h.0)
            });
        if nested {
            return;
        }
        let (first_of_island, first_of_page) = match preloaded.0.lock() {
            Ok(mut set) => (set.insert(island), set.len() == 1),
            Err(_) => return,
        };
        if !first_of_island {
            return;
        }
        // `to_html` on a `leptos_meta` tag registers it with the page's head.
        manifest.0.with_value(|(pkg, modules, split_js)| {
            for module in modules.get(loader).into_iter().flatten() {
                let href = format!("{pkg}/{module}.wasm");
                _ = view! { <Link rel="preload" href as_="fetch" crossorigin="anonymous"/> }
                    .to_html();
            }
            if first_of_page {
                let href = format!("{pkg}/{split_js}");
                _ = view! { <Link rel="modulepreload" href crossorigin="anonymous"/> }.to_html();
            }
        });
    }
    #[cfg(not(feature = "ssr"))]
    let _ = island;
}

/// The name the split manifest gives the island whose function's type is named `island`
/// (`app::pages::namespace::StreamFilter`): `stream_filter`.
#[cfg(feature = "ssr")]
fn manifest_name(island: &str) -> String {
    let name = island.rsplit("::").next().unwrap_or(island);
    let mut snake = String::new();
    for (index, letter) in name.chars().enumerate() {
        if letter.is_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.push(letter.to_ascii_lowercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    /// Every lazy island asks for its code to be preloaded, naming itself: one forgotten is one
    /// island back in the waterfall, which no other test would notice.
    #[test]
    fn every_lazy_island_preloads_its_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut sources = vec![root];
        // In two pieces, so that this test does not find itself.
        let marker = concat!("#[island", "(lazy)]");
        let mut islands = 0;
        while let Some(path) = sources.pop() {
            if path.is_dir() {
                let entries = std::fs::read_dir(&path).expect("source folder");
                sources.extend(entries.map(|entry| entry.expect("source entry").path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source file");
            let mut rest = text.as_str();
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let signature = rest.split_once("fn ").expect("an island is a function").1;
                let name = signature.split(['(', '<']).next().unwrap_or_default();
                let body = &signature[signature.find('{').expect("a body")..];
                let first_statement = body[1..].trim_start();
                let call = format!("crate::components::preload_island({name});");
                assert!(
                    first_statement.starts_with(&call),
                    "{}: the lazy island {name} does not start with `{call}`",
                    path.display()
                );
                islands += 1;
            }
        }
        assert!(
            islands > 10,
            "only {islands} lazy islands found: is the search still right?"
        );
    }

    /// An island's function, as its own body names it, gives the manifest's name of its module.
    #[cfg(feature = "ssr")]
    #[test]
    fn an_island_function_names_its_module() {
        use super::manifest_name;
        use crate::components::{CommandLine, SearchField};
        use std::any::type_name_of_val;
        assert_eq!(
            manifest_name(type_name_of_val(&CommandLine)),
            "command_line"
        );
        assert_eq!(
            manifest_name(type_name_of_val(&SearchField)),
            "search_field"
        );
    }
}
