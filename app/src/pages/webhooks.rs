use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use leptos_meta::Title;

use super::{page_title, param};
use crate::api::ConsoleResult;
use crate::api::streams::get_permissions;
use crate::api::webhooks::{
    AttemptRow, DeliveryRow, WebhookRow, create_webhook, delete_webhook, list_webhooks,
    ping_webhook, redeliver_webhook, regenerate_webhook_secret, set_webhook_disabled,
    update_webhook,
};
use crate::components::{
    ActionError, Checkbox, CommandLine, ConfirmButton, DeleteButton, ErrorPanel, Loading,
    NeedsRole, When, use_console,
};
use crate::format::encode;

/// (name, url, events comma-separated, format)
type WebhookInput = (String, String, String, String);
/// (webhook name, delivery id)
type RedeliverInput = (String, String);
type Redeliver = Action<RedeliverInput, ConsoleResult<DeliveryRow>>;

/// What is kept while the list is read again (every 2 s while a delivery is pending): which
/// `<details>` are open, and what is typed into each edit form.
#[derive(Clone, Copy)]
struct Kept {
    /// Keys of the open `<details>`: `edit <webhook>`, `delivery <id>`.
    open: RwSignal<HashSet<String>>,
    /// Each webhook's edit fields, by name, owned by the page rather than by one reading of
    /// the list.
    drafts: StoredValue<HashMap<String, Draft>>,
    owner: StoredValue<Owner>,
}

/// A webhook form's fields (the name aside).
#[derive(Clone, Copy)]
struct Draft {
    url: RwSignal<String>,
    format: RwSignal<String>,
    push: RwSignal<bool>,
    delete: RwSignal<bool>,
    imagestream: RwSignal<bool>,
}

impl Draft {
    /// What the form asks of webhook `name`: events comma-separated, none for all.
    fn input(&self, name: String) -> WebhookInput {
        let events: Vec<&str> = [
            ("push", self.push),
            ("delete", self.delete),
            ("imagestream", self.imagestream),
        ]
        .into_iter()
        .filter(|(_, on)| on.get_untracked())
        .map(|(event, _)| event)
        .collect();
        (
            name,
            self.url.get_untracked(),
            events.join(","),
            self.format.get_untracked(),
        )
    }
}

impl Kept {
    /// `<details>` open while `key` is in the set, and kept so when the user opens or closes it.
    fn details(
        &self,
        key: String,
    ) -> (
        impl Fn() -> bool + use<>,
        impl Fn(leptos::ev::Event) + use<>,
    ) {
        let open = self.open;
        let watched = key.clone();
        (
            move || open.with(|keys| keys.contains(&watched)),
            move |ev: leptos::ev::Event| {
                let now_open = event_target::<leptos::web_sys::Element>(&ev).has_attribute("open");
                open.update(|keys| {
                    if now_open {
                        keys.insert(key.clone());
                    } else {
                        keys.remove(&key);
                    }
                });
            },
        )
    }

    /// The edit fields of `row`, made from it the first time.
    fn draft(&self, row: &WebhookRow) -> Draft {
        if let Some(draft) = self
            .drafts
            .with_value(|drafts| drafts.get(&row.name).copied())
        {
            return draft;
        }
        let wants = |event: &str| row.events.is_empty() || row.events.iter().any(|e| e == event);
        let owner = self.owner.get_value();
        let draft = owner.with(|| Draft {
            url: RwSignal::new(row.url.clone()),
            format: RwSignal::new(row.format.clone()),
            push: RwSignal::new(wants("push")),
            delete: RwSignal::new(wants("delete")),
            imagestream: RwSignal::new(wants("imagestream")),
        });
        self.drafts.update_value(|drafts| {
            drafts.insert(row.name.clone(), draft);
        });
        draft
    }
}

/// What the page's forms and buttons do to a subscription; each run reads the list again.
#[derive(Clone, Copy)]
struct WebhookActions {
    remove: Action<String, ConsoleResult<()>>,
    redeliver: Redeliver,
    update: Action<WebhookInput, ConsoleResult<()>>,
    /// (name, disabled)
    set_disabled: Action<(String, bool), ConsoleResult<()>>,
    /// Answers (name, the new secret).
    regenerate: Action<String, ConsoleResult<(String, String)>>,
    ping: Action<String, ConsoleResult<DeliveryRow>>,
}

/// A namespace's webhooks: subscriptions, a form to add one, and each one's delivery log.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let create = Action::new(move |(name, url, events, format): &WebhookInput| {
        let csrf = console.csrf();
        let (name, url, events, format) =
            (name.clone(), url.clone(), events.clone(), format.clone());
        async move { create_webhook(csrf, namespace.get_untracked(), name, url, events, format).await }
    });
    let remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_webhook(csrf, namespace.get_untracked(), name).await }
    });
    let redeliver: Redeliver = Action::new(move |(name, id): &RedeliverInput| {
        let (csrf, name, id) = (console.csrf(), name.clone(), id.clone());
        async move { redeliver_webhook(csrf, namespace.get_untracked(), name, id).await }
    });
    let kept = Kept {
        open: RwSignal::new(HashSet::new()),
        drafts: StoredValue::new(HashMap::new()),
        owner: StoredValue::new(Owner::current().unwrap_or_default()),
    };
    let actions = WebhookActions {
        remove,
        redeliver,
        update: Action::new(move |(name, url, events, format): &WebhookInput| {
            let csrf = console.csrf();
            let (name, url, events, format) =
                (name.clone(), url.clone(), events.clone(), format.clone());
            async move {
                update_webhook(csrf, namespace.get_untracked(), name, url, events, format).await
            }
        }),
        set_disabled: Action::new(move |(name, disabled): &(String, bool)| {
            let (csrf, name, disabled) = (console.csrf(), name.clone(), *disabled);
            async move { set_webhook_disabled(csrf, namespace.get_untracked(), name, disabled).await }
        }),
        regenerate: Action::new(move |name: &String| {
            let (csrf, name) = (console.csrf(), name.clone());
            async move {
                regenerate_webhook_secret(csrf, namespace.get_untracked(), name.clone())
                    .await
                    .map(|secret| (name, secret))
            }
        }),
        ping: Action::new(move |name: &String| {
            let (csrf, name) = (console.csrf(), name.clone());
            async move { ping_webhook(csrf, namespace.get_untracked(), name).await }
        }),
    };
    let live = console.revision(move |change| change.touches_namespace(&namespace.get_untracked()));
    // Deliveries and their retries happen after the events: the log is read again every two
    // seconds for a while after a change and while a delivery is pending (in the browser only;
    // effects do not run on the server).
    let tick = RwSignal::new(0u32);
    let settling = RwSignal::new(0u8);
    Effect::new(move |_| {
        live.track();
        settling.set(5);
    });
    let webhooks = Resource::new(
        move || {
            (
                namespace.get(),
                create.version().get(),
                remove.version().get(),
                redeliver.version().get(),
                actions.update.version().get(),
                actions.set_disabled.version().get(),
                actions.regenerate.version().get(),
                actions.ping.version().get(),
                live.get(),
                tick.get(),
            )
        },
        |(namespace, ..)| list_webhooks(namespace),
    );
    Effect::new(move |_| {
        let interval = set_interval_with_handle(
            move || {
                let pending = webhooks.with_untracked(|rows| {
                    rows.as_ref()
                        .and_then(|r| r.as_ref().ok())
                        .is_some_and(|rows| {
                            rows.iter()
                                .any(|row| row.deliveries.iter().any(|d| d.state == "pending"))
                        })
                });
                // An open confirm would close with the list drawn again: the reading waits
                // until it is answered.
                let asking = document()
                    .query_selector(".confirm[role=dialog]")
                    .ok()
                    .flatten()
                    .is_some();
                let left = settling.get_untracked();
                if !asking && (left > 0 || pending) {
                    settling.set(left.saturating_sub(1));
                    tick.update(|t| *t = t.wrapping_add(1));
                }
            },
            std::time::Duration::from_secs(2),
        )
        .ok();
        on_cleanup(move || {
            if let Some(interval) = interval {
                interval.clear();
            }
        });
    });
    // The form is for those who may use it.
    let permissions = Resource::new(move || namespace.get(), get_permissions);
    view! {
        <Title text=page_title(move || format!("Webhooks · {}", namespace.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>
        </nav>
        <section class="panel" aria-labelledby="webhooks-heading">
            <h1 id="webhooks-heading">{move || format!("Webhooks of {}", namespace.get())}</h1>
            <ActionError action=remove/>
            <ActionError action=redeliver/>
            <ActionError action=actions.update/>
            <ActionError action=actions.set_disabled/>
            <ActionError action=actions.regenerate/>
            <ActionError action=actions.ping/>
            <Transition fallback=|| view! { <Loading what="webhooks"/> }>
                {move || Suspend::new(async move {
                    // Buttons and forms only for those who may use them.
                    let manage = permissions.await.is_ok_and(|p| p.manage_access);
                    match webhooks.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p class="empty">"No webhooks yet: other systems hear of pushes, deletes and tag moves once one is added."</p>
                        }.into_any(),
                        Ok(rows) => rows.into_iter().map(|row| view! { <WebhookView row actions kept manage/> }).collect_view().into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                // In front of a cluster, webhooks are the cluster's (the list says so).
                let upstream = console.session.await.ok().and_then(|s| s.upstream).is_some();
                match permissions.await {
                    _ if upstream => ().into_any(),
                    Ok(p) if p.manage_access => view! { <NewWebhook create/> }.into_any(),
                    Ok(_) => view! { <NeedsRole what="add or change webhooks" namespace=namespace.get_untracked()/> }.into_any(),
                    // The list above says why (in front of a cluster: not here).
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

/// A subscription: its settings, what may be done to it, and its newest deliveries.
#[component]
fn WebhookView(
    row: WebhookRow,
    actions: WebhookActions,
    kept: Kept,
    manage: bool,
) -> impl IntoView {
    let name = row.name.clone();
    let events = if row.events.is_empty() {
        "all events".to_owned()
    } else {
        row.events.join(", ")
    };
    let controls = manage.then(|| {
        let (ping_name, toggle_name, delete_name) = (name.clone(), name.clone(), name.clone());
        let disabled = row.disabled;
        view! {
            <span class="webhook-controls">
                <button type="button" class="small"
                    title=if disabled { "Enable the webhook to send to it" } else { "Send a ping event through the signed delivery path" }
                    aria-label=format!("Send test event to {name}")
                    disabled=move || disabled || actions.ping.pending().get()
                    on:click=move |_| { actions.ping.dispatch(ping_name.clone()); }>
                    "Send test event"
                </button>
                <button type="button" class="small"
                    aria-label=format!("{} {name}", if disabled { "Enable" } else { "Disable" })
                    disabled=move || actions.set_disabled.pending().get()
                    on:click=move |_| { actions.set_disabled.dispatch((toggle_name.clone(), !disabled)); }>
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
                <DeleteButton what=format!("webhook {name}") on_confirm=move || { actions.remove.dispatch(delete_name.clone()); }/>
            </span>
        }
    });
    let editing = manage.then(|| view! { <EditWebhook row=row.clone() actions kept/> });
    // Outside the edit form's `<details>`: shown even if it is closed.
    let shown_for = row.name.clone();
    let new_secret = move || {
        actions
            .regenerate
            .value()
            .get()
            .and_then(Result::ok)
            .filter(|(for_name, _)| *for_name == shown_for)
            .map(|(_, secret)| view! { <ShownSecret secret/> })
    };
    let webhook_name = row.name.clone();
    view! {
        <article class="webhook" data-webhook=row.name.clone() data-disabled=row.disabled.to_string()>
            <div class="panel-head">
                <h2>
                    {row.name.clone()}
                    {row.disabled.then(|| view! { " "<span class="state failed">"disabled"</span> })}
                </h2>
                {controls}
            </div>
            <dl class="facts">
                <dt>"URL"</dt><dd class="mono">{row.url.clone()}</dd>
                <dt>"Events"</dt><dd>{events}</dd>
                <dt>"Format"</dt><dd>{row.format.clone()}</dd>
                <dt>"State"</dt>
                <dd>{if row.disabled {
                    "disabled: events are not delivered while it is, and pending deliveries wait"
                } else {
                    "enabled"
                }}</dd>
            </dl>
            {editing}
            {new_secret}
            <h3>"Deliveries"</h3>
            {if row.deliveries.is_empty() {
                view! { <p class="muted">"None yet."</p> }.into_any()
            } else {
                view! {
                    <table class="list deliveries">
                        <thead><tr>
                            <th scope="col">"When"</th>
                            <th scope="col">"Event"</th>
                            <th scope="col">"State"</th>
                            <th scope="col">"Attempts"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr></thead>
                        <tbody>
                            {row.deliveries.into_iter().map(|d| view! {
                                <DeliveryView delivery=d webhook=webhook_name.clone() redeliver=actions.redeliver kept manage/>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </article>
    }
}

/// A delivery's row, and under it what was sent and what each attempt was answered.
#[component]
fn DeliveryView(
    delivery: DeliveryRow,
    webhook: String,
    redeliver: Redeliver,
    kept: Kept,
    manage: bool,
) -> impl IntoView {
    let d = delivery;
    let (open, toggled) = kept.details(format!("delivery {}", d.id));
    let again = (manage && d.state != "pending").then(|| {
        let key = (webhook.clone(), d.id.clone());
        view! {
            <button type="button" class="small"
                title="Send the same body again, as a new delivery"
                aria-label=format!("Redeliver delivery {}", d.id)
                disabled=move || redeliver.pending().get()
                on:click=move |_| { redeliver.dispatch(key.clone()); }>
                "Redeliver"
            </button>
        }
    });
    let attempts = d
        .attempts
        .iter()
        .map(|a| a.summary.clone())
        .collect::<Vec<_>>()
        .join("; ");
    view! {
        <tr data-delivery=d.id.clone() data-state=d.state.clone()
            data-redelivery-of=d.redelivery_of.clone()>
            <td class="nowrap"><When at=d.created.clone()/></td>
            <td>
                {d.event.clone()}
                {d.redelivery_of.clone().map(|of| view! {
                    " "<span class="muted">{format!("(sent again: delivery {of})")}</span>
                })}
            </td>
            <td><span class=format!("state {}", d.state)>{d.state.clone()}</span></td>
            <td>{attempts}</td>
            <td>{again}</td>
        </tr>
        <tr class="delivery-detail" data-detail-of=d.id.clone()>
            <td colspan="5">
                <details prop:open=open on:toggle=toggled>
                    <summary>{format!("Request and answers of delivery {}", d.id)}</summary>
                    <h4>"Request body"</h4>
                    <pre class="json">{pretty_json(&d.body)}</pre>
                    {if d.attempts.is_empty() {
                        view! { <p class="muted">"Not sent yet."</p> }.into_any()
                    } else {
                        d.attempts.into_iter().map(|a| view! { <AttemptView attempt=a/> }).collect_view().into_any()
                    }}
                </details>
            </td>
        </tr>
    }
}

#[component]
fn AttemptView(attempt: AttemptRow) -> impl IntoView {
    view! {
        <h4>{format!("Attempt {}", attempt.summary)}</h4>
        {match attempt.response_body {
            Some(body) => view! {
                <pre class="json response">{body}</pre>
                {attempt.truncated.then(|| view! {
                    <p class="muted small">"Only the first 4 KiB of the answer is kept."</p>
                })}
            }.into_any(),
            None => view! { <p class="muted small">"No response body."</p> }.into_any(),
        }}
    }
}

/// JSON laid out for reading; anything else as it is.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// A subscription's URL, format and events, as the new and edit forms both ask them.
#[component]
fn WebhookSettings(
    /// Makes the fields' ids unique on the page.
    prefix: String,
    url: RwSignal<String>,
    format: RwSignal<String>,
    push: RwSignal<bool>,
    delete: RwSignal<bool>,
    imagestream: RwSignal<bool>,
) -> impl IntoView {
    let url_id = format!("{prefix}-url");
    let format_id = format!("{prefix}-format");
    view! {
        <label for=url_id.clone()>"URL"</label>
        <input id=url_id type="url" required placeholder="https://ci.example.com/hooks/berth" prop:value=url
            on:input=move |ev| url.set(event_target_value(&ev))/>
        <label for=format_id.clone()>"Format"</label>
        <select id=format_id prop:value=format on:change=move |ev| format.set(event_target_value(&ev))>
            <option value="distribution" selected=move || format.get() == "distribution">"Registry notifications (distribution)"</option>
            <option value="cloudevents" selected=move || format.get() == "cloudevents">"CloudEvents"</option>
        </select>
        <div class="checks">
            <Checkbox id=format!("{prefix}-push") label="Pushes" value=push/>
            <Checkbox id=format!("{prefix}-delete") label="Deletes" value=delete/>
            <Checkbox id=format!("{prefix}-imagestream") label="Image stream changes (tags, imports)" value=imagestream/>
        </div>
    }
}

/// Shows a signing secret once, with how deliveries carry it.
#[component]
fn ShownSecret(secret: String) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p>"The signing secret — copy it now: it is not shown again. Deliveries carry "<code>"X-Berth-Signature-256: sha256=<HMAC-SHA256 of the body>"</code>"."</p>
            <CommandLine command=secret label="webhook secret"/>
        </div>
    }
}

/// Changing a subscription: URL, events and format (its secret and state are kept), and a new
/// secret, shown once.
#[component]
fn EditWebhook(row: WebhookRow, actions: WebhookActions, kept: Kept) -> impl IntoView {
    let draft = kept.draft(&row);
    let Draft {
        url,
        format,
        push,
        delete,
        imagestream,
    } = draft;
    let name = row.name.clone();
    let (open, toggled) = kept.details(format!("edit {name}"));
    let submit = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            actions.update.dispatch(draft.input(name.clone()));
        }
    };
    let regenerate_name = name.clone();
    view! {
        <details class="edit-webhook" prop:open=open on:toggle=toggled>
            <summary>{format!("Edit {name}")}</summary>
            <form class="stacked-form" on:submit=submit aria-label=format!("Edit webhook {name}")>
                <WebhookSettings prefix=format!("edit-{name}") url format push delete imagestream/>
                <button type="submit" disabled=move || actions.update.pending().get()>"Save changes"</button>
            </form>
            <p>
                <ConfirmButton label="Regenerate secret" class="subtle"
                    aria_label=format!("Regenerate the secret of {name}")
                    question=format!("Make a new signing secret for {name}? Receivers checking the old one refuse deliveries until they have the new one.")
                    yes="Yes, make a new secret"
                    busy=Signal::derive(move || actions.regenerate.pending().get())
                    on_confirm=move || { actions.regenerate.dispatch(regenerate_name.clone()); }/>
            </p>
        </details>
    }
}

#[component]
fn NewWebhook(
    create: Action<WebhookInput, crate::api::ConsoleResult<Option<String>>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let draft = Draft {
        url: RwSignal::new(String::new()),
        format: RwSignal::new("distribution".to_owned()),
        push: RwSignal::new(true),
        delete: RwSignal::new(true),
        imagestream: RwSignal::new(true),
    };
    let Draft {
        url,
        format,
        push,
        delete,
        imagestream,
    } = draft;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(draft.input(name.get_untracked()));
    };
    view! {
        <section class="panel" aria-labelledby="new-webhook-heading">
            <h2 id="new-webhook-heading">"Add a webhook"</h2>
            <form class="stacked-form" on:submit=submit>
                <label for="webhook-name">"Name"</label>
                <input id="webhook-name" required placeholder="ci" prop:value=name
                    on:input=move |ev| name.set(event_target_value(&ev))/>
                <WebhookSettings prefix="webhook".to_owned() url format push delete imagestream/>
                <button type="submit" disabled=move || create.pending().get()>"Add webhook"</button>
            </form>
            <ActionError action=create/>
            {move || create.value().get().and_then(Result::ok).flatten().map(|secret| view! { <ShownSecret secret/> })}
        </section>
    }
}
