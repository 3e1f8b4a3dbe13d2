use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::audit::may_read_audit;
use crate::api::users::{UserRow, list_users};
use crate::components::{ErrorPanel, Loading, When};
use crate::format::{encode, joined_or_dash};

/// Every user, with their identities and groups, for those who may list them (in Berth, the
/// cluster administrators); each name opens what they did in the audit log, where there is one.
#[component]
pub fn UsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| list_users());
    let audit = Resource::new(|| (), |_| may_read_audit());
    view! {
        <Title text="Users"/>
        <nav class="crumbs" aria-label="Breadcrumb"><a href="/">"Namespaces"</a>" / Users"</nav>
        <Suspense fallback=|| view! { <Loading what="users"/> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(users) => {
                        let audit = audit.await.unwrap_or(false);
                        view! { <UserTable users audit/> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn UserTable(users: Vec<UserRow>, audit: bool) -> impl IntoView {
    let list = if users.is_empty() {
        view! { <p class="empty">"No users yet."</p> }.into_any()
    } else {
        view! {
            <table class="list users">
                <thead><tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Full name"</th>
                    <th scope="col">"Identities"</th>
                    <th scope="col">"Groups"</th>
                    <th scope="col">"Created"</th>
                </tr></thead>
                <tbody>
                    {users.into_iter().map(|user| view! {
                        <tr data-user=user.name.clone()>
                            <td class="name">{if audit {
                                view! { <a href=format!("/audit?user={}", encode(&user.name))>{user.name.clone()}</a> }.into_any()
                            } else {
                                user.name.clone().into_any()
                            }}</td>
                            <td>{user.full_name.clone().unwrap_or_else(|| "—".to_owned())}</td>
                            <td class="mono">{joined_or_dash(&user.identities, ", ")}</td>
                            <td>{joined_or_dash(&user.groups, ", ")}</td>
                            <td class="nowrap">{if user.created.is_empty() {
                                "—".into_any()
                            } else {
                                view! { <When at=user.created.clone()/> }.into_any()
                            }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="users-heading">
            <div class="panel-head">
                <h1 id="users-heading">"Users"</h1>
                {audit.then(|| view! { <a class="head-link" href="/audit">"Audit log"</a> })}
            </div>
            <p class="muted">"Everyone who has signed in or was added by an administrator, with how they sign in."</p>
            {list}
        </section>
    }
}
