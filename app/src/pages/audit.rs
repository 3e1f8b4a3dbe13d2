use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::audit::{AuditEventRow, AuditEvents, list_audit_events};
use crate::components::{ErrorPanel, Loading, When};
use crate::format::{encode, joined_or_dash};

/// What the audit page is asked for by its address: `?before=` (a page's cursor), `?user=`,
/// `?namespace=`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct AuditAddress {
    before: Option<i64>,
    user: String,
    namespace: String,
}

impl AuditAddress {
    /// `/audit` with this filter, from entry `before` on: what the pager and the table link to.
    fn href(&self, before: Option<i64>) -> String {
        let mut query: Vec<String> = Vec::new();
        if !self.user.is_empty() {
            query.push(format!("user={}", encode(&self.user)));
        }
        if !self.namespace.is_empty() {
            query.push(format!("namespace={}", encode(&self.namespace)));
        }
        if let Some(before) = before {
            query.push(format!("before={before}"));
        }
        if query.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{}", query.join("&"))
        }
    }

    fn filtered(&self) -> bool {
        !self.user.is_empty() || !self.namespace.is_empty()
    }
}

/// The audit log, for cluster administrators: the newest entries first, "Older" for the page
/// before (`?before=`), filtered by user and namespace with a plain GET form.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map().get_untracked();
    let field = |name: &str| query.get(name).unwrap_or_default().trim().to_owned();
    let address = AuditAddress {
        before: query.get("before").and_then(|before| before.parse().ok()),
        user: field("user"),
        namespace: field("namespace"),
    };
    let events = Resource::new(
        {
            let address = address.clone();
            move || address.clone()
        },
        |AuditAddress {
             before,
             user,
             namespace,
         }| list_audit_events(before, user, namespace),
    );
    view! {
        <Title text="Audit log"/>
        <nav class="crumbs" aria-label="Breadcrumb"><a href="/">"Namespaces"</a>" / Audit log"</nav>
        <Suspense fallback=|| view! { <Loading what="the audit log"/> }>
            {move || {
                let address = address.clone();
                Suspend::new(async move {
                    match events.await {
                        Ok(page) => view! { <AuditLog page address/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn AuditLog(page: AuditEvents, address: AuditAddress) -> impl IntoView {
    let AuditEvents {
        events,
        older,
        filtered_among,
    } = page;
    let newest = address.before.is_some().then(|| address.href(None));
    let older = older.map(|before| address.href(Some(before)));
    let empty = match (events.is_empty(), address.filtered(), older.is_some()) {
        (false, _, _) => None,
        (true, true, true) => Some("No entries match here; Older searches on."),
        (true, true, false) => Some("No entries match."),
        (true, false, _) => Some("The audit log has no entries here."),
    };
    view! {
        <section class="panel" aria-labelledby="audit-heading">
            <div class="panel-head">
                <h1 id="audit-heading">"Audit log"</h1>
                <a class="head-link" href="/users">"Users"</a>
            </div>
            <p class="muted">"Changes made through Berth, sign-ins and tokens made, the newest first."</p>
            <form class="toolbar" role="search" method="get" action="/audit" aria-label="Filter the audit log">
                <label for="audit-user">"User"</label>
                <input id="audit-user" name="user" type="search" value=address.user.clone()
                    placeholder="alice" autocomplete="off"/>
                <label for="audit-namespace">"Namespace"</label>
                <input id="audit-namespace" name="namespace" type="search" value=address.namespace.clone()
                    placeholder="team" autocomplete="off"/>
                <button type="submit">"Filter"</button>
                {address.filtered().then(|| view! { <a href="/audit">"Show all"</a> })}
            </form>
            {(filtered_among > 0).then(|| view! {
                <p class="muted small">{format!(
                    "Filtered by the server among up to {filtered_among} entries per page, so a page may show fewer than it could; Older searches on."
                )}</p>
            })}
            {match empty {
                Some(text) => view! { <p class="empty">{text}</p> }.into_any(),
                None => view! { <AuditTable events address=address.clone()/> }.into_any(),
            }}
            <nav class="pager" aria-label="Pages of the audit log">
                {newest.map(|href| view! { <a href=href>"Newest"</a> })}
                {older.map(|href| view! { <a href=href rel="next">"Older"</a> })}
            </nav>
        </section>
    }
}

#[component]
fn AuditTable(events: Vec<AuditEventRow>, address: AuditAddress) -> impl IntoView {
    // A user's or a namespace's name filters the log by it (keeping the other filter).
    let by_user = |user: &str| {
        AuditAddress {
            user: user.to_owned(),
            ..address.clone()
        }
        .href(None)
    };
    let in_namespace = |namespace: &str| {
        AuditAddress {
            namespace: namespace.to_owned(),
            ..address.clone()
        }
        .href(None)
    };
    view! {
        <table class="list audit">
            <thead><tr>
                <th scope="col">"When"</th>
                <th scope="col">"Who"</th>
                <th scope="col">"Action"</th>
                <th scope="col">"On"</th>
                <th scope="col">"Namespace"</th>
                <th scope="col">"Result"</th>
                <th scope="col">"Details"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|event| {
                    let details = details(&event);
                    view! {
                        <tr data-audit=event.id>
                            <td class="nowrap"><When at=event.time.clone()/></td>
                            <td class="name"><a href=by_user(&event.actor)>{event.actor.clone()}</a></td>
                            <td class="mono">{event.action.clone()}</td>
                            <td class="mono">{event.target.clone()}</td>
                            <td class="name">{match &event.namespace {
                                Some(namespace) => view! { <a href=in_namespace(namespace)>{namespace.clone()}</a> }.into_any(),
                                None => "—".into_any(),
                            }}</td>
                            <td>{if event.success {
                                view! { <span class="ok">"succeeded"</span> }.into_any()
                            } else {
                                view! { <span class="error">"failed"</span> }.into_any()
                            }}</td>
                            <td class="small">{details}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// An entry's details and the address it came from, as one line ("—" for neither).
fn details(event: &AuditEventRow) -> String {
    let from = event
        .address
        .as_ref()
        .map(|address| format!("from {address}"));
    let parts: Vec<&str> = event
        .detail
        .as_deref()
        .into_iter()
        .chain(from.as_deref())
        .filter(|part| !part.is_empty())
        .collect();
    joined_or_dash(&parts, "; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pager_keeps_the_filter() {
        let all = AuditAddress::default();
        assert_eq!(all.href(None), "/audit");
        assert_eq!(all.href(Some(40)), "/audit?before=40");
        let filtered = AuditAddress {
            before: Some(90),
            user: "system:serviceaccount:team:ci".into(),
            namespace: "team".into(),
        };
        assert_eq!(
            filtered.href(Some(40)),
            "/audit?user=system%3Aserviceaccount%3Ateam%3Aci&namespace=team&before=40"
        );
    }

    #[test]
    fn details_say_the_address_too() {
        let mut event = AuditEventRow {
            id: 1,
            time: "2026-12-07T05:00:00Z".into(),
            actor: "alice".into(),
            action: "login-password".into(),
            target: "berth".into(),
            namespace: None,
            success: false,
            address: None,
            detail: None,
        };
        assert_eq!(details(&event), "—");
        event.address = Some("192.0.2.7".into());
        assert_eq!(details(&event), "from 192.0.2.7");
        event.detail = Some("no user has such a name".into());
        assert_eq!(details(&event), "no user has such a name; from 192.0.2.7");
    }
}
