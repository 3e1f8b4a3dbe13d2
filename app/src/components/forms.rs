use std::sync::Arc;

use leptos::prelude::*;

/// The error of an action's last run, if it failed.
#[component]
pub fn ActionError<I, O>(action: Action<I, crate::api::ConsoleResult<O>>) -> impl IntoView
where
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    move || {
        action.value().with(|value| match value {
            Some(Err(error)) => {
                Some(view! { <p class="error" role="alert">{error.to_string()}</p> })
            }
            _ => None,
        })
    }
}

/// A delete button that asks once more before it acts.
#[component]
pub fn DeleteButton(
    #[prop(into)] what: String,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let on_confirm = Arc::new(on_confirm);
    let label = format!("Delete {what}");
    view! {
        <Show
            when=move || asking.get()
            fallback={
                let label = label.clone();
                move || view! {
                    <button type="button" class="danger subtle" aria-label=label.clone() on:click=move |_| asking.set(true)>"Delete"</button>
                }
            }
        >
            <span class="confirm">
                <span>{format!("Delete {what}?")}</span>
                <button type="button" class="danger" on:click={
                    let on_confirm = on_confirm.clone();
                    move |_| { asking.set(false); on_confirm(); }
                }>"Yes, delete"</button>
                <button type="button" class="link" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// A checkbox with its label, bound to `value`.
#[component]
pub fn Checkbox(id: &'static str, label: &'static str, value: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="check" for=id>
            <input type="checkbox" id=id prop:checked=value
                on:change=move |ev| value.set(event_target_checked(&ev))/>
            {label}
        </label>
    }
}
