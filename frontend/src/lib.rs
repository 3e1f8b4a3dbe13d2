//! The WASM entry: hydrates the islands of the server-rendered console (see `app`'s
//! `components`: the parts of a page that act in the browser).

// The islands are exported by `app` itself; naming the crate links it in.
extern crate app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
