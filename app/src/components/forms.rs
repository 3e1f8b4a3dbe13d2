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

/// A text field of a stacked form, labelled, bound to `value`, with an optional hint below it.
#[component]
pub fn TextField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] required: bool,
    #[prop(optional)] hint: &'static str,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    view! {
        <label for=id>{label}</label>
        <div class="field">
            <input id=id required=required placeholder=placeholder autocomplete="off"
                aria-describedby=(!hint.is_empty()).then(|| hint_id.clone())
                prop:value=value on:input=move |ev| value.set(event_target_value(&ev))/>
            {(!hint.is_empty()).then(|| view! { <span class="muted small" id=hint_id.clone()>{hint}</span> })}
        </div>
    }
}
