//! Search as you type on a server-rendered page: the page's live regions are read again for the
//! address of the search, and the address follows (a link or a reload shows the same).

use leptos::prelude::*;

use crate::format::encode;

/// A search field: typing shows `path?PARAM=typed` in place (the page's live regions), or
/// `empty` (default `path`) once the field is cleared.
#[island(lazy)]
pub fn SearchField(
    /// The input's id (and what tests and labels find it by).
    id: String,
    label: String,
    label_hidden: bool,
    placeholder: String,
    path: String,
    param: String,
    value: String,
    #[prop(optional)] empty: Option<String>,
) -> impl IntoView {
    crate::components::preload_island(SearchField);
    let value = RwSignal::new(value);
    super::keep_typed(&id, value);
    let on_input = move |ev| {
        let typed: String = event_target_value(&ev);
        value.set(typed.clone());
        let url = if typed.is_empty() {
            empty.clone().unwrap_or_else(|| path.clone())
        } else {
            format!("{path}?{param}={}", encode(&typed))
        };
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move { super::show_page(&url).await });
        #[cfg(not(feature = "hydrate"))]
        let _ = url;
    };
    view! {
        <label for=id.clone() class:visually-hidden=label_hidden>{label}</label>
        <input id=id type="search" placeholder=placeholder autocomplete="off"
            prop:value=value on:input=on_input/>
    }
}
