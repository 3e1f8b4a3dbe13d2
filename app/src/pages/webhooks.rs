use leptos::prelude::*;
use leptos_meta::Title;

use super::{page_title, param};
use crate::api::ConsoleResult;
use crate::api::streams::get_permissions;
use crate::api::webhooks::{
    DeliveryRow, WebhookRow, create_webhook, delete_webhook, list_webhooks, redeliver_webhook,
};
use crate::components::{
    ActionError, Checkbox, CommandLine, DeleteButton, ErrorPanel, Loading, NeedsRole, When,
    use_console,
};
use crate::format::encode;

/// (name, url, events comma-separated, format)
type WebhookInput = (String, String, String, String);
/// (webhook name, delivery id)
type RedeliverInput = (String, String);
type Redeliver = Action<RedeliverInput, ConsoleResult<DeliveryRow>>;

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
                let left = settling.get_untracked();
                if left > 0 || pending {
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
            <Transition fallback=|| view! { <Loading what="webhooks"/> }>
                {move || Suspend::new(async move {
                    match webhooks.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p class="empty">"No webhooks yet: other systems hear of pushes, deletes and tag moves once one is added."</p>
                        }.into_any(),
                        Ok(rows) => rows.into_iter().map(|row| view! { <WebhookView row remove redeliver/> }).collect_view().into_any(),
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

#[component]
fn WebhookView(
    row: WebhookRow,
    remove: Action<String, ConsoleResult<()>>,
    redeliver: Redeliver,
) -> impl IntoView {
    let name = row.name.clone();
    let events = if row.events.is_empty() {
        "all events".to_owned()
    } else {
        row.events.join(", ")
    };
    view! {
        <article class="webhook" data-webhook=row.name.clone()>
            <div class="panel-head">
                <h2>{row.name.clone()}</h2>
                <DeleteButton what=format!("webhook {}", row.name) on_confirm=move || { remove.dispatch(name.clone()); }/>
            </div>
            <dl class="facts">
                <dt>"URL"</dt><dd class="mono">{row.url.clone()}</dd>
                <dt>"Events"</dt><dd>{events}</dd>
                <dt>"Format"</dt><dd>{row.format.clone()}</dd>
            </dl>
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
                            {row.deliveries.into_iter().map(|d| {
                                let again = (d.state != "pending").then(|| {
                                    let key = (row.name.clone(), d.id.clone());
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
                                        <td>{d.attempts.join("; ")}</td>
                                        <td>{again}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </article>
    }
}

#[component]
fn NewWebhook(
    create: Action<WebhookInput, crate::api::ConsoleResult<Option<String>>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let push = RwSignal::new(true);
    let delete = RwSignal::new(true);
    let imagestream = RwSignal::new(true);
    let format = RwSignal::new("distribution".to_owned());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let events: Vec<&str> = [
            ("push", push),
            ("delete", delete),
            ("imagestream", imagestream),
        ]
        .into_iter()
        .filter(|(_, on)| on.get_untracked())
        .map(|(event, _)| event)
        .collect();
        create.dispatch((
            name.get_untracked(),
            url.get_untracked(),
            events.join(","),
            format.get_untracked(),
        ));
    };
    view! {
        <section class="panel" aria-labelledby="new-webhook-heading">
            <h2 id="new-webhook-heading">"Add a webhook"</h2>
            <form class="stacked-form" on:submit=submit>
                <label for="webhook-name">"Name"</label>
                <input id="webhook-name" required placeholder="ci" prop:value=name
                    on:input=move |ev| name.set(event_target_value(&ev))/>
                <label for="webhook-url">"URL"</label>
                <input id="webhook-url" type="url" required placeholder="https://ci.example.com/hooks/berth" prop:value=url
                    on:input=move |ev| url.set(event_target_value(&ev))/>
                <label for="webhook-format">"Format"</label>
                <select id="webhook-format" prop:value=format on:change=move |ev| format.set(event_target_value(&ev))>
                    <option value="distribution">"Registry notifications (distribution)"</option>
                    <option value="cloudevents">"CloudEvents"</option>
                </select>
                <div class="checks">
                    <Checkbox id="webhook-push" label="Pushes" value=push/>
                    <Checkbox id="webhook-delete" label="Deletes" value=delete/>
                    <Checkbox id="webhook-imagestream" label="Image stream changes (tags, imports)" value=imagestream/>
                </div>
                <button type="submit" disabled=move || create.pending().get()>"Add webhook"</button>
            </form>
            <ActionError action=create/>
            {move || create.value().get().and_then(Result::ok).flatten().map(|secret| view! {
                <div class="secret" role="status">
                    <p>"The signing secret — copy it now: it is not shown again. Deliveries carry "<code>"X-Berth-Signature-256: sha256=<HMAC-SHA256 of the body>"</code>"."</p>
                    <CommandLine command=secret label="webhook secret"/>
                </div>
            })}
        </section>
    }
}
