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

/// A button that asks once more before it acts: `label`, then `question` with `yes` and Cancel.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    #[prop(into)] yes: String,
    /// The first button's accessible name, when `label` alone does not say what it acts on.
    #[prop(optional, into)]
    aria_label: Option<String>,
    #[prop(default = "danger")] class: &'static str,
    /// While true, `yes` is disabled (the action is running).
    #[prop(optional, into)]
    busy: MaybeProp<bool>,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let on_confirm = Arc::new(on_confirm);
    view! {
        <Show
            when=move || asking.get()
            fallback={
                let (label, aria_label) = (label.clone(), aria_label.clone());
                move || view! {
                    <button type="button" class=class aria-label=aria_label.clone() on:click=move |_| asking.set(true)>{label.clone()}</button>
                }
            }
        >
            <span class="confirm">
                <span>{question.clone()}</span>
                <button type="button" class="danger" disabled=move || busy.get().unwrap_or(false) on:click={
                    let on_confirm = on_confirm.clone();
                    move |_| { asking.set(false); on_confirm(); }
                }>{yes.clone()}</button>
                <button type="button" class="link" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// A delete button that asks once more before it acts.
#[component]
pub fn DeleteButton(
    #[prop(into)] what: String,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <ConfirmButton label="Delete" aria_label=format!("Delete {what}") class="danger subtle"
            question=format!("Delete {what}?") yes="Yes, delete" on_confirm/>
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
