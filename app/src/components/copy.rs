use std::time::Duration;

use leptos::prelude::*;

/// A button that copies `text` to the clipboard and says so for two seconds.
#[component]
pub fn CopyButton(text: String, label: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        copied.set(true);
        set_timeout(move || copied.set(false), Duration::from_secs(2));
    };
    view! {
        <button type="button" class="copy" aria-label=format!("Copy {label}") on:click=copy>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

/// A command to run, with its copy button (an island: the button acts in the browser).
#[island(lazy)]
pub fn CommandLine(command: String, label: String) -> impl IntoView {
    crate::components::preload_island(CommandLine);
    view! {
        <div class="command">
            <code>{command.clone()}</code>
            <CopyButton text=command label/>
        </div>
    }
}
