use std::future::Future;
use std::sync::Arc;

use leptos::prelude::*;

/// The action of an island. Its runs are browser futures (fetch, the DOM: not `Send`), but the
/// island is also rendered on the server, where an action made with `Action::new_local` panics
/// when the page's owner is dropped on another thread: the run is wrapped instead (it is only
/// ever polled in the browser).
pub fn island_action<I, O, F, Run>(run: F) -> Action<I, O>
where
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
    F: Fn(&I) -> Run + Send + Sync + 'static,
    Run: Future<Output = O> + 'static,
{
    Action::new(move |input: &I| send_wrapper::SendWrapper::new(run(input)))
}

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

/// A button that asks once more before it acts: `label`, then `question` with `yes` and Cancel
/// in a box over the page (so that nothing beside the button moves), which takes the focus and
/// which Escape closes, giving the focus back to the button.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    #[prop(into)] yes: String,
    /// The first button's accessible name, when `label` alone does not say what it acts on.
    #[prop(default = None)]
    aria_label: Option<String>,
    #[prop(into, default = "danger".into())] class: String,
    /// While true, `yes` is disabled (the action is running).
    #[prop(optional, into)]
    busy: MaybeProp<bool>,
    /// What the action takes with it, shown under the question while it asks.
    #[prop(default = None)]
    details: Option<ViewFn>,
    /// A name to type before `yes` is enabled, for what cannot be undone and takes much.
    #[prop(default = None)]
    type_to_confirm: Option<String>,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let on_confirm = Arc::new(on_confirm);
    let opener = NodeRef::<leptos::html::Button>::new();
    let first = NodeRef::<leptos::html::Input>::new();
    let yes_button = NodeRef::<leptos::html::Button>::new();
    // The focus goes into the box when it opens: to the name to type, else to `yes`.
    Effect::new(move |_| {
        if let Some(input) = first.get() {
            let _ = input.focus();
        } else if let Some(button) = yes_button.get() {
            let _ = button.focus();
        }
    });
    let close = move || {
        asking.set(false);
        typed.set(String::new());
        if let Some(button) = opener.get_untracked() {
            let _ = button.focus();
        }
    };
    let expected = type_to_confirm.clone();
    let matches = move || {
        expected
            .as_deref()
            .is_none_or(|name| typed.with(|t| t.trim() == name))
    };
    let box_id: String = question
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    view! {
        <span class="confirm-anchor">
            <button type="button" class=class aria-label=aria_label node_ref=opener
                aria-expanded=move || asking.get().to_string()
                on:click=move |_| asking.update(|open| *open = !*open)>{label.clone()}</button>
            <Show when=move || asking.get()>
                <span class="confirm" role="dialog" aria-label=question.clone()
                    on:keydown=move |ev| if ev.key() == "Escape" { ev.stop_propagation(); close(); }>
                    <span class="question">{question.clone()}</span>
                    {details.clone().map(|details| view! { <span class="details">{details.run()}</span> })}
                    {type_to_confirm.clone().map(|name| {
                        let id = format!("confirm-{box_id}");
                        view! {
                            <label for=id.clone()>"Type "<strong class="mono">{name.clone()}</strong>" to confirm"</label>
                            <input id=id autocomplete="off" node_ref=first prop:value=typed
                                on:input=move |ev| typed.set(event_target_value(&ev))/>
                        }
                    })}
                    <span class="confirm-buttons">
                        <button type="button" class="danger" node_ref=yes_button
                            disabled={
                                let matches = matches.clone();
                                move || busy.get().unwrap_or(false) || !matches()
                            }
                            on:click={
                                let on_confirm = on_confirm.clone();
                                move |_| { asking.set(false); typed.set(String::new()); on_confirm(); }
                            }>{yes.clone()}</button>
                        <button type="button" class="link" on:click=move |_| close()>"Cancel"</button>
                    </span>
                </span>
            </Show>
        </span>
    }
}

/// A checkbox with its label, bound to `value`.
#[component]
pub fn Checkbox(
    #[prop(into)] id: String,
    label: &'static str,
    value: RwSignal<bool>,
) -> impl IntoView {
    let for_id = id.clone();
    view! {
        <label class="check" for=for_id>
            <input type="checkbox" id=id prop:checked=value
                on:change=move |ev| value.set(event_target_checked(&ev))/>
            {label}
        </label>
    }
}

/// The value of the text field `id`, `initial` unless something was typed into it before its
/// island hydrated: see [`keep_typed`].
pub fn typed_field(id: &str, initial: impl Into<String>) -> RwSignal<String> {
    let value = RwSignal::new(initial.into());
    keep_typed(id, value);
    value
}

/// Keeps what was typed into the text field `id` before its island hydrated (the page is usable
/// before its code arrives): hydration sets the field from `value`, which would otherwise put
/// the server's empty value back over it.
pub fn keep_typed(id: &str, value: RwSignal<String>) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsValue;
        use leptos::web_sys::js_sys::Reflect;
        let typed = document()
            .get_element_by_id(id)
            .and_then(|field| Reflect::get(&field, &JsValue::from_str("value")).ok())
            .and_then(|typed| typed.as_string())
            .filter(|typed| !typed.is_empty());
        if let Some(typed) = typed {
            value.set(typed);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (id, value);
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
    keep_typed(id, value);
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
