//! What the signed-in person may do at a place, in words: on the pages of a namespace and a
//! stream, and in place of a form they may not use.

use leptos::prelude::*;

use crate::api::Permissions;

/// The things `permissions` allow, in the console's words.
fn allowed(permissions: &Permissions) -> Vec<&'static str> {
    [
        (permissions.pull, "pull"),
        (permissions.push, "push"),
        (permissions.delete, "delete"),
        (permissions.manage_access, "manage access"),
        (permissions.manage_secrets, "manage pull secrets"),
    ]
    .into_iter()
    .filter_map(|(yes, what)| yes.then_some(what))
    .collect()
}

/// "You may pull, push and tag here.": the viewer's own access at a namespace or stream.
#[component]
pub fn YourAccess(permissions: Permissions) -> impl IntoView {
    let allowed = allowed(&permissions);
    let text = match allowed.split_last() {
        None => "You may only look here.".to_owned(),
        Some((last, [])) => format!("You may {last} here."),
        Some((last, rest)) => format!("You may {} and {last} here.", rest.join(", ")),
    };
    view! { <p class="muted your-access" data-permissions=allowed.join(",")>{text}</p> }
}

/// In place of a form the person may not use: who may, so they know whom to ask.
#[component]
pub fn NeedsRole(#[prop(into)] what: String, #[prop(into)] namespace: String) -> impl IntoView {
    view! {
        <section class="panel needs-role">
            <p class="muted">{format!("Only administrators of {namespace} (role admin) may {what}. Ask one of them for the role if you need to.")}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_as_words() {
        let viewer = Permissions {
            pull: true,
            ..Permissions::default()
        };
        assert_eq!(allowed(&viewer), ["pull"]);
        let editor = Permissions {
            push: true,
            delete: true,
            ..viewer
        };
        assert_eq!(allowed(&editor), ["pull", "push", "delete"]);
    }
}
