//! The console's buttons that change something with one click and a confirm: one island for
//! all of them, told what to change by a [`Change`] (its props travel in the page as JSON).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use super::forms::{ActionError, ConfirmButton, island_action};
use crate::api::ConsoleResult;

/// A change a button makes: which one, and what it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    DeleteNamespace {
        namespace: String,
    },
    DeleteStream {
        namespace: String,
        stream: String,
    },
    /// Points a tag at an image (a rollback).
    Tag {
        namespace: String,
        stream: String,
        tag: String,
        from: String,
    },
    Untag {
        namespace: String,
        stream: String,
        tag: String,
    },
    RemoveBinding {
        namespace: String,
        name: String,
    },
    DeleteServiceAccount {
        namespace: String,
        name: String,
    },
    RevokeServiceAccountToken {
        namespace: String,
        account: String,
        uid: String,
    },
    RevokeToken {
        uid: String,
    },
    DeleteTagRule {
        namespace: String,
        name: String,
    },
    DeletePullSecret {
        namespace: String,
        name: String,
    },
    DeleteRetentionPolicy {
        namespace: String,
        name: String,
    },
    DeleteTrustedKey {
        namespace: String,
        name: String,
    },
    DeleteWebhook {
        namespace: String,
        name: String,
    },
    RedeliverWebhook {
        namespace: String,
        name: String,
        id: String,
    },
    /// Sends a test event through the webhook's signed delivery path.
    PingWebhook {
        namespace: String,
        name: String,
    },
    SetWebhookDisabled {
        namespace: String,
        name: String,
        disabled: bool,
    },
}

/// Makes `change`, with the session's CSRF token. The one server function every
/// [`ChangeButton`] calls: the browser's bundle carries one request and one answer for all of
/// them (not one client per change), and the server does what the change's own server function
/// does, its checks included.
#[server(prefix = "/console/api", endpoint = "change", input = Json)]
pub async fn make_change(csrf: String, change: ChangeJson) -> ConsoleResult<()> {
    let change: Change = serde_json::from_str(&change.0).map_err(|error| {
        crate::api::ConsoleError::Invalid(format!("not a change the console makes: {error}"))
    })?;
    change.run(csrf).await
}

/// A [`Change`] as a page gives it to its button: its JSON, which the button sends back as it
/// is. The browser never reads it, so no code to read or write changes is in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeJson(String);

impl From<Change> for ChangeJson {
    fn from(change: Change) -> Self {
        // A `Change` is strings and booleans: writing it cannot fail.
        ChangeJson(serde_json::to_string(&change).unwrap_or_default())
    }
}

impl Change {
    #[cfg(feature = "ssr")]
    async fn run(self, csrf: String) -> ConsoleResult<()> {
        use crate::api::{
            access, immutability, namespaces, pull_secrets, retention, signatures, streams, tokens,
            webhooks,
        };
        match self {
            Change::DeleteNamespace { namespace } => {
                namespaces::delete_namespace(csrf, namespace).await
            }
            Change::DeleteStream { namespace, stream } => {
                streams::delete_stream(csrf, namespace, stream).await
            }
            Change::Tag {
                namespace,
                stream,
                tag,
                from,
            } => streams::tag_image(csrf, namespace, stream, tag, from).await,
            Change::Untag {
                namespace,
                stream,
                tag,
            } => streams::untag_image(csrf, namespace, stream, tag).await,
            Change::RemoveBinding { namespace, name } => {
                access::remove_binding(csrf, namespace, name).await
            }
            Change::DeleteServiceAccount { namespace, name } => {
                access::delete_service_account(csrf, namespace, name).await
            }
            Change::RevokeServiceAccountToken {
                namespace,
                account,
                uid,
            } => access::revoke_service_account_token(csrf, namespace, account, uid).await,
            Change::RevokeToken { uid } => tokens::revoke_token(csrf, uid).await,
            Change::DeleteTagRule { namespace, name } => {
                immutability::delete_tag_rule(csrf, namespace, name).await
            }
            Change::DeletePullSecret { namespace, name } => {
                pull_secrets::delete_pull_secret(csrf, namespace, name).await
            }
            Change::DeleteRetentionPolicy { namespace, name } => {
                retention::delete_retention_policy(csrf, namespace, name).await
            }
            Change::DeleteTrustedKey { namespace, name } => {
                signatures::delete_trusted_key(csrf, namespace, name).await
            }
            Change::DeleteWebhook { namespace, name } => {
                webhooks::delete_webhook(csrf, namespace, name).await
            }
            Change::RedeliverWebhook {
                namespace,
                name,
                id,
            } => webhooks::redeliver_webhook(csrf, namespace, name, id)
                .await
                .map(|_| ()),
            Change::PingWebhook { namespace, name } => {
                webhooks::ping_webhook(csrf, namespace, name)
                    .await
                    .map(|_| ())
            }
            Change::SetWebhookDisabled {
                namespace,
                name,
                disabled,
            } => webhooks::set_webhook_disabled(csrf, namespace, name, disabled).await,
        }
    }
}

/// A button that makes `change` after a confirm (see [`ConfirmButton`] for `question`, `yes`,
/// `type_to_confirm`; without a question it acts at once), says beside itself why it failed,
/// and on success reads the page's live regions again, or goes to `then` (for a change that
/// takes the page's own subject away).
///
/// Eager, unlike most islands: it is on most pages, and in the main bundle it takes the code it
/// shares with them along, so `--split` makes far fewer chunks (the image stream page: 71
/// files, 265 KB gzip, from 155 and 318 KB; see `bench/console.sh`).
#[island]
pub fn ChangeButton(
    #[prop(into)] change: ChangeJson,
    label: String,
    #[prop(optional, into)] question: Option<String>,
    #[prop(optional)] yes: Option<String>,
    #[prop(optional)] aria_label: Option<String>,
    #[prop(optional)] class: Option<String>,
    #[prop(optional)] type_to_confirm: Option<String>,
    /// A namespace whose contents the confirm counts ("3 image streams … go with it").
    #[prop(optional)]
    counts: Option<String>,
    #[prop(optional)] then: Option<String>,
    /// Only without a question: the button cannot be used (and `title` says why).
    #[prop(optional)]
    disabled: Option<bool>,
    #[prop(optional)] title: Option<String>,
) -> impl IntoView {
    let action = island_action(move |change: &ChangeJson| {
        let change = change.clone();
        let then = then.clone();
        async move {
            #[cfg(feature = "hydrate")]
            {
                make_change(super::csrf(), change).await?;
                match then {
                    Some(then) => {
                        let _ = window().location().assign(&then);
                    }
                    None => super::refresh_page().await,
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (change, then);
            Ok(())
        }
    });
    let Some(question) = question else {
        let disabled = disabled.unwrap_or(false);
        return view! {
            <span class="change">
                <button type="button" class=class.unwrap_or_else(|| "small".into()) title=title
                    aria-label=aria_label disabled=move || disabled || action.pending().get()
                    on:click=move |_| { action.dispatch(change.clone()); }>{label}</button>
                <ActionError action/>
            </span>
        }
        .into_any();
    };
    let details =
        counts.map(|namespace| ViewFn::from(move || namespace_contents(namespace.clone())));
    view! {
        <span class="change">
            <ConfirmButton label aria_label question yes=yes.unwrap_or_else(|| "Yes".into())
                class=class.unwrap_or_else(|| "danger subtle".into())
                busy=Signal::derive(move || action.pending().get())
                details type_to_confirm
                on_confirm=move || { action.dispatch(change.clone()); }/>
            <ActionError action/>
        </span>
    }
    .into_any()
}

/// A [`ChangeButton`] that deletes (or revokes) `what` ("pull secret quay"): `Delete`, named
/// "Delete pull secret quay" and asking "Delete pull secret quay?" (the words of the delete
/// buttons before islands, which the browser tests find them by).
#[component]
pub fn DeleteChangeButton(change: Change, #[prop(into)] what: String) -> impl IntoView {
    view! {
        <ChangeButton change label="Delete".to_owned() aria_label=format!("Delete {what}")
            question=format!("Delete {what}?") yes="Yes, delete".to_owned()/>
    }
}

/// What a change an island makes answers where it is compiled for the server: the server
/// renders islands but never runs their actions (a click does, in the browser).
#[cfg(not(feature = "hydrate"))]
pub fn made_in_the_browser<T>() -> ConsoleResult<T> {
    Err(crate::api::ConsoleError::NotHere(
        "changes are made in the browser".to_owned(),
    ))
}

/// What a namespace holds, counted when the confirm of its deletion opens (a plain signal, not
/// a resource under `Suspense`: this is the only island that waits for a read, and `Suspense`
/// would bring its code into the bundle for it alone).
fn namespace_contents(namespace: String) -> impl IntoView {
    let said = RwSignal::new("Counting what it holds…".to_owned());
    leptos::task::spawn_local(async move { said.set(count_namespace_contents(namespace).await) });
    move || said.get()
}

/// The sentence of what `namespace` holds. Lazy: the read and its answer's parsing load with the
/// first confirm that counts, not with every page (`ChangeButton` is in the main bundle).
#[lazy]
async fn count_namespace_contents(namespace: String) -> String {
    match crate::api::namespaces::get_namespace_contents(namespace).await {
        Ok(contents) => contents_text(contents),
        Err(_) => "Everything in it goes with it.".to_owned(),
    }
}

/// `3 image streams, 7 tags and 5 images go with it.`
fn contents_text(contents: crate::api::namespaces::NamespaceContents) -> String {
    use crate::format::count;
    format!(
        "{}, {} and {} go with it.",
        count(contents.streams, "image stream", "image streams"),
        count(contents.tags, "tag", "tags"),
        count(contents.images, "image", "images")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::namespaces::NamespaceContents;

    #[test]
    fn the_delete_confirm_counts_what_goes() {
        let contents = NamespaceContents {
            streams: 66,
            tags: 1,
            images: 0,
        };
        assert_eq!(
            contents_text(contents),
            "66 image streams, 1 tag and 0 images go with it."
        );
    }
}
