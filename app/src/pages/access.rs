use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::{page_title, param, podman_login};
use crate::api::ConsoleResult;
use crate::api::access::{
    AccessView, BindingRow, GRANTABLE_ROLES, WhoCanRow, add_binding, create_service_account,
    create_service_account_token, delete_service_account, get_access, remove_binding,
    revoke_service_account_token, role_label,
};
use crate::api::tokens::NewToken;
use crate::components::{
    ActionError, CommandLine, CopyButton, DeleteButton, ErrorPanel, Loading, When, use_console,
};
use crate::format::{encode, short_digest};

/// `(role, subject kind, subject name)`.
type BindingInput = (String, String, String);

/// What the page's forms hold, kept at page level: the panels are drawn again on every change
/// (a live one included) and must not drop what is being typed.
#[derive(Clone, Copy)]
struct AccessForms {
    role: RwSignal<String>,
    kind: RwSignal<String>,
    subject: RwSignal<String>,
    account: RwSignal<String>,
}

/// Access for a namespace, or one stream of it: bindings, who can pull or push, service
/// accounts and their tokens.
#[component]
pub fn AccessPage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let params = use_params_map();
    let stream = Memo::new(move |_| params.read().get("stream"));
    let add = Action::new(move |(role, kind, name): &BindingInput| {
        let (csrf, role, kind, name) = (console.csrf(), role.clone(), kind.clone(), name.clone());
        async move {
            add_binding(
                csrf,
                namespace.get_untracked(),
                stream.get_untracked(),
                role,
                kind,
                name,
            )
            .await
        }
    });
    let remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { remove_binding(csrf, namespace.get_untracked(), name).await }
    });
    let new_account = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { create_service_account(csrf, namespace.get_untracked(), name).await }
    });
    let new_token = Action::new(move |account: &String| {
        let (csrf, account) = (console.csrf(), account.clone());
        async move {
            create_service_account_token(csrf, namespace.get_untracked(), account.clone())
                .await
                .map(|made| (account, made))
        }
    });
    let remove_account = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_service_account(csrf, namespace.get_untracked(), name).await }
    });
    let revoke = Action::new(move |(account, uid): &(String, String)| {
        let (csrf, account, uid) = (console.csrf(), account.clone(), uid.clone());
        async move { revoke_service_account_token(csrf, namespace.get_untracked(), account, uid).await }
    });
    // Changes made elsewhere (another page, the API, the command line) come through the feed.
    let live = console.revision(move |c| c.touches_access(Some(&namespace.get_untracked())));
    let access = Resource::new(
        move || {
            (
                namespace.get(),
                stream.get(),
                live.get(),
                (
                    add.version().get(),
                    remove.version().get(),
                    new_account.version().get(),
                ),
                (
                    new_token.version().get(),
                    revoke.version().get(),
                    remove_account.version().get(),
                ),
            )
        },
        |(namespace, stream, ..)| get_access(namespace, stream),
    );
    let forms = AccessForms {
        role: RwSignal::new("viewer".to_owned()),
        kind: RwSignal::new("User".to_owned()),
        subject: RwSignal::new(String::new()),
        account: RwSignal::new(String::new()),
    };
    let place = move || match stream.get() {
        Some(stream) => format!("{}/{stream}", namespace.get()),
        None => namespace.get(),
    };
    let back = move || match stream.get() {
        Some(stream) => format!(
            "/ns/{}/streams/{}",
            encode(&namespace.get()),
            encode(&stream)
        ),
        None => format!("/ns/{}", encode(&namespace.get())),
    };
    view! {
        <Title text=page_title(move || format!("Access to {}", place()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=back>{place}</a>
        </nav>
        <ActionError action=add/>
        <ActionError action=remove/>
        <ActionError action=new_account/>
        <ActionError action=new_token/>
        <ActionError action=revoke/>
        <ActionError action=remove_account/>
        <Transition fallback=|| view! { <Loading what="access"/> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(view) => view! { <AccessPanels view add remove new_account new_token revoke remove_account forms/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AccessPanels(
    view: AccessView,
    add: Action<BindingInput, ConsoleResult<Vec<String>>>,
    remove: Action<String, ConsoleResult<()>>,
    new_account: Action<String, ConsoleResult<()>>,
    new_token: MadeAccountToken,
    revoke: Action<(String, String), ConsoleResult<()>>,
    remove_account: Action<String, ConsoleResult<()>>,
    forms: AccessForms,
) -> impl IntoView {
    let title = match &view.stream {
        Some(stream) => format!("Access to {}/{stream}", view.namespace),
        None => format!("Access to {}", view.namespace),
    };
    let AccessForms {
        role,
        kind,
        subject,
        account,
    } = forms;
    let is_namespace = view.stream.is_none();
    view! {
        <section class="panel" aria-labelledby="bindings-heading">
            <h1 id="bindings-heading">{title}</h1>
            <h2>"Role bindings"</h2>
            {if view.bindings.is_empty() {
                view! { <p class="muted">"No bindings here yet."</p> }.into_any()
            } else {
                view! {
                    <table class="list bindings">
                        <thead><tr>
                            <th scope="col">"Subject"</th><th scope="col">"Role"</th><th scope="col">"Scope"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr></thead>
                        <tbody>
                            {view.bindings.iter().map(|b| {
                                let name = b.name.clone();
                                view! {
                                    <tr data-binding=b.name.clone()>
                                        <td>{format!("{}:{}", b.subject_kind, b.subject_name)}</td>
                                        <td><span class="badge">{b.role.clone()}</span></td>
                                        <td>{b.stream.clone().map(|s| format!("stream {s}")).unwrap_or_else(|| "namespace".into())}</td>
                                        <td class="actions">
                                            <DeleteButton what=format!("binding {}", b.name) on_confirm=move || { remove.dispatch(name.clone()); }/>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
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
            // What the API warns of (a user who does not exist yet): the binding is made.
            {move || add.value().get().and_then(Result::ok).filter(|w| !w.is_empty()).map(|warnings| view! {
                <p class="warning" role="status">{format!("Added, but: {}", warnings.join(" "))}</p>
            })}
        </section>
        <section class="panel who-can">
            <h2>"Who can"</h2>
            <div class="columns">
                <WhoCan title="pull" rows=view.who_can_pull.clone()/>
                <WhoCan title="push" rows=view.who_can_push.clone()/>
            </div>
        </section>
        {is_namespace.then(|| view! {
            <section class="panel" aria-labelledby="accounts-heading">
                <h2 id="accounts-heading">"Service accounts"</h2>
                <NewTokenNotice token=new_token/>
                {view.service_accounts.iter().map(|sa| {
                    let issue = sa.name.clone();
                    let gone = sa.name.clone();
                    let roles = account_roles(&view.bindings, &view.namespace, &sa.name);
                    view! {
                        <div class="account" data-account=sa.name.clone()>
                            <div class="panel-head">
                                <h3>{sa.name.clone()}</h3>
                                <DeleteButton what=format!("service account {}", sa.name) on_confirm=move || { remove_account.dispatch(gone.clone()); }/>
                            </div>
                            <p class="muted small account-roles">{if roles.is_empty() {
                                "No role here yet: bind one above (a service account, this name) for its tokens to pull or push.".to_owned()
                            } else {
                                format!("Roles here: {}.", roles.join(", "))
                            }}</p>
                            <button type="button" on:click=move |_| { new_token.dispatch(issue.clone()); }>"New token"</button>
                            {(!sa.tokens.is_empty()).then(|| view! {
                                <ul class="tokens">
                                    {sa.tokens.iter().map(|t| {
                                        let target = (sa.name.clone(), t.uid.clone());
                                        view! {
                                            <li>
                                                <span>{t.name.clone()}</span>
                                                <span class="muted small">" created "<When at=t.created.clone()/></span>
                                                {if t.revoked {
                                                    view! { <span class="badge">"revoked"</span> }.into_any()
                                                } else {
                                                    view! { <DeleteButton what=format!("token {}", short_digest(&t.uid)) on_confirm=move || { revoke.dispatch(target.clone()); }/> }.into_any()
                                                }}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            })}
                        </div>
                    }
                }).collect_view()}
                <form class="inline-form" aria-label="Create a service account" on:submit=move |ev| {
                    ev.prevent_default();
                    new_account.dispatch(account.get_untracked());
                }>
                    <label for="account-name">"New service account"</label>
                    <input id="account-name" required placeholder="builder" pattern=super::DNS_LABEL_PATTERN
                        prop:value=account on:input=move |ev| account.set(event_target_value(&ev))/>
                    <button type="submit">"Create"</button>
                </form>
            </section>
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

/// A service account's new token, with the account it is for.
type MadeAccountToken = Action<String, ConsoleResult<(String, NewToken)>>;

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
pub fn NewTokenNotice(token: MadeAccountToken) -> impl IntoView {
    let session = use_console().session;
    move || {
        token.value().get().and_then(Result::ok).map(|(account, made)| {
            let secret = made.secret.clone();
            view! {
                <div class="secret" role="status">
                    <p>{format!("Token {} of {account} — copy it now: it is not shown again.", made.token.name)}</p>
                    <div class="command"><code data-secret="token">{made.secret.clone()}</code><CopyButton text=made.secret label="token"/></div>
                    <Transition fallback=|| ()>
                        {move || {
                            let (account, secret) = (account.clone(), secret.clone());
                            Suspend::new(async move {
                                let host = session.await.map(|s| s.registry_host).unwrap_or_default();
                                view! { <CommandLine label="podman login command" command=podman_login(&host, &account, &secret)/> }
                            })
                        }}
                    </Transition>
                </div>
            }
        })
    }
}
