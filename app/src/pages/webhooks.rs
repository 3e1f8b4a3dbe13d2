use leptos::prelude::*;
use leptos_meta::Title;

use super::param;
use crate::api::ConsoleResult;
use crate::api::streams::get_permissions;
use crate::api::webhooks::{AttemptRow, DeliveryRow, WebhookRow, list_webhooks};
use crate::components::{
    ActionError, Change, ChangeButton, Checkbox, CommandLine, ConfirmButton, DeleteChangeButton,
    ErrorPanel, LiveRegion, Loading, NeedsRole, When, island_action, use_console,
};
use crate::format::encode;

/// A namespace's webhooks: subscriptions, a form to add one, and each one's delivery log.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace").get_untracked();
    let webhooks = Resource::new(
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        list_webhooks,
    );
    // Buttons and forms only for those who may use them.
    let permissions = Resource::new(
        {
            let namespace = namespace.clone();
            move || namespace.clone()
        },
        get_permissions,
    );
    let (title, home) = (
        format!("Webhooks · {namespace}"),
        format!("/ns/{}", encode(&namespace)),
    );
    view! {
        <Title text=title/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=home>{namespace.clone()}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="webhooks"/> }>
            {move || {
                let namespace = namespace.clone();
                Suspend::new(async move {
                    let manage = permissions.await.ok().map(|p| p.manage_access);
                    // In front of a cluster, webhooks are the cluster's (the list says so).
                    let upstream = console.session.await.ok().and_then(|s| s.upstream).is_some();
                    view! { <Webhooks namespace rows=webhooks.await manage upstream/> }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Webhooks(
    namespace: String,
    rows: ConsoleResult<Vec<WebhookRow>>,
    manage: Option<bool>,
    upstream: bool,
) -> impl IntoView {
    let may_manage = manage == Some(true);
    let list = match rows {
        Ok(rows) if rows.is_empty() => view! {
            <p class="empty">"No webhooks yet: other systems hear of pushes, deletes and tag moves once one is added."</p>
        }
        .into_any(),
        Ok(rows) => rows
            .into_iter()
            .map(|row| view! { <WebhookView namespace=namespace.clone() row manage=may_manage/> })
            .collect_view()
            .into_any(),
        Err(error) => view! { <ErrorPanel error/> }.into_any(),
    };
    let form = match manage {
        _ if upstream => ().into_any(),
        Some(true) => view! {
            <section class="panel" aria-labelledby="new-webhook-heading">
                <h2 id="new-webhook-heading">"Add a webhook"</h2>
                <NewWebhook namespace=namespace.clone()/>
            </section>
        }
        .into_any(),
        Some(false) => {
            view! { <NeedsRole what="add or change webhooks" namespace=namespace.clone()/> }
                .into_any()
        }
        // The list above says why (in front of a cluster: not here).
        None => ().into_any(),
    };
    view! {
        <section class="panel" aria-labelledby="webhooks-heading">
            <h1 id="webhooks-heading">{format!("Webhooks of {namespace}")}</h1>
            // Deliveries and their retries happen after the events: the log settles.
            <LiveRegion watch=format!("namespace:{namespace}") id="webhooks" settle=true>{list}</LiveRegion>
        </section>
        {form}
    }
}

/// A subscription: its settings, what may be done to it, and its newest deliveries.
#[component]
fn WebhookView(namespace: String, row: WebhookRow, manage: bool) -> impl IntoView {
    let name = row.name.clone();
    let events = if row.events.is_empty() {
        "all events".to_owned()
    } else {
        row.events.join(", ")
    };
    let disabled = row.disabled;
    let controls = manage.then(|| {
        let (namespace, name) = (namespace.clone(), name.clone());
        view! {
            <span class="webhook-controls">
                <ChangeButton change=Change::PingWebhook { namespace: namespace.clone(), name: name.clone() }
                    label="Send test event".to_owned() aria_label=format!("Send test event to {name}")
                    title=if disabled { "Enable the webhook to send to it" } else { "Send a ping event through the signed delivery path" }.to_owned()
                    disabled=disabled/>
                <ChangeButton change=Change::SetWebhookDisabled { namespace: namespace.clone(), name: name.clone(), disabled: !disabled }
                    label=if disabled { "Enable" } else { "Disable" }.to_owned()
                    aria_label=format!("{} {name}", if disabled { "Enable" } else { "Disable" })/>
                <DeleteChangeButton change=Change::DeleteWebhook { namespace, name: name.clone() }
                    what=format!("webhook {name}")/>
            </span>
        }
    });
    // Kept as it is while the list is read again: what is typed, the secret just shown.
    let editing = manage.then(|| {
        view! {
            <div data-keep=format!("edit {name}")>
                <EditWebhook namespace=namespace.clone() name=name.clone() url=row.url.clone()
                    format=row.format.clone() events=row.events.clone()/>
            </div>
        }
    });
    let deliveries = if row.deliveries.is_empty() {
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
                    {row.deliveries.into_iter().map(|delivery| view! {
                        <DeliveryView namespace=namespace.clone() webhook=name.clone() delivery manage/>
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
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
            <h3>"Deliveries"</h3>
            {deliveries}
        </article>
    }
}

/// A delivery's row, and under it what was sent and what each attempt was answered.
#[component]
fn DeliveryView(
    namespace: String,
    webhook: String,
    delivery: DeliveryRow,
    manage: bool,
) -> impl IntoView {
    let d = delivery;
    let again = (manage && d.state != "pending").then(|| {
        view! {
            <ChangeButton change=Change::RedeliverWebhook { namespace, name: webhook, id: d.id.clone() }
                label="Redeliver".to_owned() aria_label=format!("Redeliver delivery {}", d.id)
                title="Send the same body again, as a new delivery".to_owned()/>
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
                // Its id keeps it open while the list is read again.
                <details id=format!("delivery-{}", d.id)>
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
    settings: Settings,
) -> impl IntoView {
    let Settings {
        url,
        format,
        push,
        delete,
        imagestream,
    } = settings;
    let url_id = format!("{prefix}-url");
    let format_id = format!("{prefix}-format");
    crate::components::keep_typed(&url_id, url);
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

/// A webhook form's fields (the name aside).
#[derive(Clone, Copy)]
struct Settings {
    url: RwSignal<String>,
    format: RwSignal<String>,
    push: RwSignal<bool>,
    delete: RwSignal<bool>,
    imagestream: RwSignal<bool>,
}

impl Settings {
    /// The fields of a subscription to `events` (none: all).
    fn new(url: String, format: String, events: &[String]) -> Self {
        let wants = |event: &str| events.is_empty() || events.iter().any(|e| e == event);
        Settings {
            url: RwSignal::new(url),
            format: RwSignal::new(format),
            push: RwSignal::new(wants("push")),
            delete: RwSignal::new(wants("delete")),
            imagestream: RwSignal::new(wants("imagestream")),
        }
    }

    /// What the form asks of webhook `name`: (name, url, events comma-separated, format).
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

/// (name, url, events comma-separated, format)
type WebhookInput = (String, String, String, String);

/// Shows a signing secret once, with how deliveries carry it.
#[component]
fn ShownSecret(secret: String) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p>"The signing secret — copy it now: it is not shown again. Deliveries carry "<code>"X-Berth-Signature-256: sha256=<HMAC-SHA256 of the body>"</code>"."</p>
            <CommandLine command=secret label="webhook secret".to_owned()/>
        </div>
    }
}

/// Changing a subscription: URL, events and format (its secret and state are kept), and a new
/// secret, shown once.
#[island(lazy)]
fn EditWebhook(
    namespace: String,
    name: String,
    url: String,
    format: String,
    events: Vec<String>,
) -> impl IntoView {
    crate::components::preload_island(EditWebhook);
    let settings = Settings::new(url, format, &events);
    let update = island_action({
        let namespace = namespace.clone();
        move |(name, url, events, format): &WebhookInput| {
            let input = (
                namespace.clone(),
                name.clone(),
                url.clone(),
                events.clone(),
                format.clone(),
            );
            async move {
                #[cfg(feature = "hydrate")]
                {
                    let (namespace, name, url, events, format) = input;
                    crate::api::webhooks::update_webhook(
                        crate::components::csrf(),
                        namespace,
                        name,
                        url,
                        events,
                        format,
                    )
                    .await?;
                    crate::components::refresh_page().await;
                    Ok(())
                }
                #[cfg(not(feature = "hydrate"))]
                {
                    let _ = input;
                    crate::components::made_in_the_browser::<()>()
                }
            }
        }
    });
    let regenerate = island_action(move |name: &String| {
        let (namespace, name) = (namespace.clone(), name.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                crate::api::webhooks::regenerate_webhook_secret(
                    crate::components::csrf(),
                    namespace,
                    name,
                )
                .await
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, name);
                crate::components::made_in_the_browser::<String>()
            }
        }
    });
    let submit = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            update.dispatch(settings.input(name.clone()));
        }
    };
    let regenerate_name = name.clone();
    view! {
        <details class="edit-webhook">
            <summary>{format!("Edit {name}")}</summary>
            <form class="stacked-form" on:submit=submit aria-label=format!("Edit webhook {name}")>
                <WebhookSettings prefix=format!("edit-{name}") settings/>
                <button type="submit" disabled=move || update.pending().get()>"Save changes"</button>
            </form>
            <ActionError action=update/>
            <p>
                <ConfirmButton label="Regenerate secret" class="subtle"
                    aria_label=Some(format!("Regenerate the secret of {name}"))
                    question=format!("Make a new signing secret for {name}? Receivers checking the old one refuse deliveries until they have the new one.")
                    yes="Yes, make a new secret"
                    busy=Signal::derive(move || regenerate.pending().get())
                    on_confirm=move || { regenerate.dispatch(regenerate_name.clone()); }/>
            </p>
            <ActionError action=regenerate/>
        </details>
        // Outside the `<details>`: shown even if it is closed.
        {move || regenerate.value().get().and_then(Result::ok).map(|secret| view! { <ShownSecret secret/> })}
    }
}

/// The form that adds a webhook to `namespace`; its signing secret is shown once.
#[island(lazy)]
fn NewWebhook(namespace: String) -> impl IntoView {
    crate::components::preload_island(NewWebhook);
    let name = crate::components::typed_field("webhook-name", "");
    let settings = Settings::new(String::new(), "distribution".to_owned(), &[]);
    let create = island_action(move |(name, url, events, format): &WebhookInput| {
        let input = (
            namespace.clone(),
            name.clone(),
            url.clone(),
            events.clone(),
            format.clone(),
        );
        async move {
            #[cfg(feature = "hydrate")]
            {
                let (namespace, name, url, events, format) = input;
                let secret = crate::api::webhooks::create_webhook(
                    crate::components::csrf(),
                    namespace,
                    name,
                    url,
                    events,
                    format,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(secret)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = input;
                crate::components::made_in_the_browser::<Option<String>>()
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(settings.input(name.get_untracked()));
    };
    view! {
        <form class="stacked-form" on:submit=submit>
            <label for="webhook-name">"Name"</label>
            <input id="webhook-name" required placeholder="ci" prop:value=name
                on:input=move |ev| name.set(event_target_value(&ev))/>
            <WebhookSettings prefix="webhook".to_owned() settings/>
            <button type="submit" disabled=move || create.pending().get()>"Add webhook"</button>
        </form>
        <ActionError action=create/>
        {move || create.value().get().and_then(Result::ok).flatten().map(|secret| view! { <ShownSecret secret/> })}
    }
}
