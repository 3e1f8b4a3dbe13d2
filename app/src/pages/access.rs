use leptos::either::EitherOf3;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::{param, podman_login};
use crate::api::access::{
    AccessView, BindingRow, GRANTABLE_ROLES, ServiceAccountRow, WhoCanRow, get_access, role_label,
};
use crate::api::tokens::NewToken;
use crate::components::{
    ActionError, Change, CommandLine, CopyButton, DeleteChangeButton, ErrorPanel, LiveRegion,
    Loading, When, island_action, use_console,
};
use crate::format::{encode, short_digest};

/// `(role, subject kind, subject name)`.
type BindingInput = (String, String, String);

/// What one of the access page's controls is, with what it needs (tuple variants: see
/// [`super::stream::StreamControl`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum AccessControl {
    /// (namespace, stream)
    AddBinding(String, Option<String>),
    /// (namespace)
    NewServiceAccount(String),
    /// (the registry's host, for the login command)
    NewTokenNotice(String),
}

/// The access page's controls, one island for them (each service account's New token button is
/// an island of its own): the page fetches one module, not one per control and the small chunks
/// they share (`bench/console.sh`).
#[island(lazy)]
fn AccessControls(control: AccessControl) -> impl IntoView {
    crate::components::preload_island(AccessControls);
    match control {
        AccessControl::AddBinding(namespace, stream) => {
            EitherOf3::A(view! { <AddBinding namespace stream/> })
        }
        AccessControl::NewServiceAccount(namespace) => {
            EitherOf3::B(view! { <NewServiceAccount namespace/> })
        }
        AccessControl::NewTokenNotice(registry_host) => {
            EitherOf3::C(view! { <NewTokenNotice registry_host/> })
        }
    }
}

/// Access for a namespace, or one stream of it: bindings, who can pull or push, service
/// accounts and their tokens.
#[component]
pub fn AccessPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace").get_untracked();
    let stream = use_params_map().read_untracked().get("stream");
    let access = Resource::new(
        {
            let (namespace, stream) = (namespace.clone(), stream.clone());
            move || (namespace.clone(), stream.clone())
        },
        |(namespace, stream)| get_access(namespace, stream),
    );
    let (place, back) = match &stream {
        Some(stream) => (
            format!("{namespace}/{stream}"),
            format!("/ns/{}/streams/{}", encode(&namespace), encode(stream)),
        ),
        None => (namespace.clone(), format!("/ns/{}", encode(&namespace))),
    };
    view! {
        <Title text=format!("Access to {place}")/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=back>{place}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="access"/> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(view) => {
                        let registry_host = console.session.await.map(|s| s.registry_host).unwrap_or_default();
                        view! { <AccessPanels view registry_host/> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Bindings, who can, and service accounts: live regions of the place's access, which changes
/// here and elsewhere (another page, the API, the command line) read again.
#[component]
fn AccessPanels(view: AccessView, registry_host: String) -> impl IntoView {
    let AccessView {
        namespace,
        stream,
        bindings,
        who_can_pull,
        who_can_push,
        service_accounts,
    } = view;
    let title = match &stream {
        Some(stream) => format!("Access to {namespace}/{stream}"),
        None => format!("Access to {namespace}"),
    };
    let watch = format!("access:{namespace}");
    let accounts = stream.is_none().then(|| {
        let list = view! { <ServiceAccounts accounts=service_accounts bindings=bindings.clone() namespace=namespace.clone()/> };
        view! {
            <section class="panel" aria-labelledby="accounts-heading">
                <h2 id="accounts-heading">"Service accounts"</h2>
                <AccessControls control=AccessControl::NewTokenNotice(registry_host)/>
                <LiveRegion watch=watch.clone() id="service-accounts">{list}</LiveRegion>
                <AccessControls control=AccessControl::NewServiceAccount(namespace.clone())/>
            </section>
        }
    });
    let table = view! { <BindingTable bindings namespace=namespace.clone()/> };
    let who_can = view! {
        <div class="columns">
            <WhoCan title="pull" rows=who_can_pull/>
            <WhoCan title="push" rows=who_can_push/>
        </div>
    };
    view! {
        <section class="panel" aria-labelledby="bindings-heading">
            <h1 id="bindings-heading">{title}</h1>
            <h2>"Role bindings"</h2>
            <LiveRegion watch=watch.clone() id="bindings">{table}</LiveRegion>
            <AccessControls control=AccessControl::AddBinding(namespace, stream)/>
        </section>
        <section class="panel who-can">
            <h2>"Who can"</h2>
            <LiveRegion watch id="who-can">{who_can}</LiveRegion>
        </section>
        {accounts}
    }
}

#[component]
fn BindingTable(bindings: Vec<BindingRow>, namespace: String) -> impl IntoView {
    if bindings.is_empty() {
        return view! { <p class="muted">"No bindings here yet."</p> }.into_any();
    }
    view! {
        <table class="list bindings">
            <thead><tr>
                <th scope="col">"Subject"</th><th scope="col">"Role"</th><th scope="col">"Scope"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {bindings.into_iter().map(|b| {
                    let change = Change::RemoveBinding { namespace: namespace.clone(), name: b.name.clone() };
                    view! {
                        <tr data-binding=b.name.clone()>
                            <td>{format!("{}:{}", b.subject_kind, b.subject_name)}</td>
                            <td><span class="badge">{b.role.clone()}</span></td>
                            <td>{b.stream.clone().map(|s| format!("stream {s}")).unwrap_or_else(|| "namespace".into())}</td>
                            <td class="actions">
                                <DeleteChangeButton change what=format!("binding {}", b.name)/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The form that binds a role to a user, group or service account here (the namespace, or
/// `stream` of it); what the API warns of (a user who does not exist yet) is said, and the
/// binding is made.
#[component]
fn AddBinding(namespace: String, stream: Option<String>) -> impl IntoView {
    let role = RwSignal::new("viewer".to_owned());
    let kind = RwSignal::new("User".to_owned());
    let subject = crate::components::typed_field("binding-subject", "");
    let add = island_action(move |input: &BindingInput| {
        let ((role, kind, name), namespace, stream) =
            (input.clone(), namespace.clone(), stream.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                let warnings = crate::api::access::add_binding(
                    crate::components::csrf(),
                    namespace,
                    stream,
                    role,
                    kind,
                    name,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(warnings)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, stream, role, kind, name);
                crate::components::made_in_the_browser::<Vec<String>>()
            }
        }
    });
    view! {
        <form class="inline-form" aria-label="Add a role binding" on:submit=move |ev| {
            ev.prevent_default();
            add.dispatch((role.get_untracked(), kind.get_untracked(), subject.get_untracked()));
        }>
            <label for="binding-kind">"Grant"</label>
            <select id="binding-kind" prop:value=kind on:change=move |ev| kind.set(event_target_value(&ev))>
                <option value="User">"user"</option>
                <option value="Group">"group"</option>
                <option value="ServiceAccount">"service account"</option>
            </select>
            <label for="binding-subject" class="visually-hidden">"Name"</label>
            <input id="binding-subject" required placeholder="name" prop:value=subject
                on:input=move |ev| subject.set(event_target_value(&ev))/>
            <label for="binding-role">"the role"</label>
            <select id="binding-role" prop:value=role on:change=move |ev| role.set(event_target_value(&ev))>
                {GRANTABLE_ROLES.iter().map(|(name, actions)| view! {
                    <option value=*name>{role_label(name, actions)}</option>
                }).collect_view()}
            </select>
            <button type="submit" disabled=move || add.pending().get()>"Add binding"</button>
        </form>
        <ActionError action=add/>
        {move || add.value().get().and_then(Result::ok).filter(|w| !w.is_empty()).map(|warnings| view! {
            <p class="warning" role="status">{format!("Added, but: {}", warnings.join(" "))}</p>
        })}
    }
}

#[component]
fn WhoCan(title: &'static str, rows: Vec<WhoCanRow>) -> impl IntoView {
    view! {
        <div>
            <h3>{format!("…{title}")}</h3>
            <ul class=format!("who-can-{title}")>
                {rows.into_iter().map(|r| view! { <li>{r.subject}<span class="muted small">{format!(" ({})", r.role)}</span></li> }).collect_view()}
            </ul>
        </div>
    }
}

#[component]
fn ServiceAccounts(
    accounts: Vec<ServiceAccountRow>,
    bindings: Vec<BindingRow>,
    namespace: String,
) -> impl IntoView {
    accounts.into_iter().map(|sa| {
        let roles = account_roles(&bindings, &namespace, &sa.name);
        let remove = Change::DeleteServiceAccount { namespace: namespace.clone(), name: sa.name.clone() };
        view! {
            <div class="account" data-account=sa.name.clone()>
                <div class="panel-head">
                    <h3>{sa.name.clone()}</h3>
                    <DeleteChangeButton change=remove what=format!("service account {}", sa.name)/>
                </div>
                <p class="muted small account-roles">{if roles.is_empty() {
                    "No role here yet: bind one above (a service account, this name) for its tokens to pull or push.".to_owned()
                } else {
                    format!("Roles here: {}.", roles.join(", "))
                }}</p>
                <NewTokenButton namespace=namespace.clone() account=sa.name.clone()/>
                {(!sa.tokens.is_empty()).then(|| view! {
                    <ul class="tokens">
                        {sa.tokens.iter().map(|t| {
                            let revoke = Change::RevokeServiceAccountToken {
                                namespace: namespace.clone(),
                                account: sa.name.clone(),
                                uid: t.uid.clone(),
                            };
                            view! {
                                <li>
                                    <span>{t.name.clone()}</span>
                                    <span class="muted small">" created "<When at=t.created.clone()/></span>
                                    {if t.revoked {
                                        view! { <span class="badge">"revoked"</span> }.into_any()
                                    } else {
                                        view! { <DeleteChangeButton change=revoke what=format!("token {}", short_digest(&t.uid))/> }.into_any()
                                    }}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                })}
            </div>
        }
    }).collect_view()
}

/// The form that creates a service account in `namespace`.
#[component]
fn NewServiceAccount(namespace: String) -> impl IntoView {
    let account = crate::components::typed_field("account-name", "");
    let create = island_action(move |name: &String| {
        let (name, namespace) = (name.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                crate::api::access::create_service_account(
                    crate::components::csrf(),
                    namespace,
                    name,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(())
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, name);
                crate::components::made_in_the_browser::<()>()
            }
        }
    });
    view! {
        <form class="inline-form" aria-label="Create a service account" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(account.get_untracked());
        }>
            <label for="account-name">"New service account"</label>
            <input id="account-name" required placeholder="builder" pattern=super::DNS_LABEL_PATTERN
                prop:value=account on:input=move |ev| account.set(event_target_value(&ev))/>
            <button type="submit">"Create"</button>
        </form>
        <ActionError action=create/>
    }
}

/// A service account's new token, with the account it is for.
type MadeAccountToken = (String, NewToken);

/// The token made last on this page, shared by the New token buttons (in the live region of
/// the accounts, which is read again once the token is made) and the notice that shows it
/// (outside the region, so that the secret stays).
fn made_token() -> ArcRwSignal<Option<MadeAccountToken>> {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static MADE: ArcRwSignal<Option<MadeAccountToken>> = ArcRwSignal::new(None);
        }
        MADE.with(Clone::clone)
    }
    // The server renders the page before any token is made.
    #[cfg(not(feature = "hydrate"))]
    ArcRwSignal::new(None)
}

/// Makes a token of `account`, shown once by [`NewTokenNotice`].
#[island(lazy)]
fn NewTokenButton(namespace: String, account: String) -> impl IntoView {
    crate::components::preload_island(NewTokenButton);
    let issue = island_action(move |account: &String| {
        let (account, namespace) = (account.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                let made = crate::api::access::create_service_account_token(
                    crate::components::csrf(),
                    namespace,
                    account.clone(),
                )
                .await?;
                made_token().set(Some((account, made)));
                crate::components::refresh_page().await;
                Ok(())
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, account);
                crate::components::made_in_the_browser::<()>()
            }
        }
    });
    view! {
        <button type="button" disabled=move || issue.pending().get()
            on:click=move |_| { issue.dispatch(account.clone()); }>"New token"</button>
        <ActionError action=issue/>
    }
}

/// The roles `account` (a service account of `namespace`) holds by the bindings listed here:
/// its own, and its namespace's service accounts' group.
fn account_roles(bindings: &[BindingRow], namespace: &str, account: &str) -> Vec<String> {
    let group = format!("system:serviceaccounts:{namespace}");
    bindings
        .iter()
        .filter(|b| {
            (b.subject_kind == "ServiceAccount" && b.subject_name == account)
                || (b.subject_kind == "Group"
                    && (b.subject_name == group || b.subject_name == "system:serviceaccounts"))
        })
        .map(|b| match &b.stream {
            Some(stream) => format!("{} on stream {stream}", b.role),
            None => b.role.clone(),
        })
        .collect()
}

/// A token just made, shown once with its copy button and the `podman login` that uses it.
#[component]
fn NewTokenNotice(registry_host: String) -> impl IntoView {
    let made = made_token();
    move || {
        made.get().map(|(account, made)| {
            let login = podman_login(&registry_host, &account, &made.secret);
            view! {
                <div class="secret" role="status">
                    <p>{format!("Token {} of {account} — copy it now: it is not shown again.", made.token.name)}</p>
                    <div class="command"><code data-secret="token">{made.secret.clone()}</code><CopyButton text=made.secret label="token".to_owned()/></div>
                    <CommandLine label="podman login command".to_owned() command=login/>
                </div>
            }
        })
    }
}
