//! Groups (`/apis/user.openshift.io/v1/groups`), for cluster administrators: listed, and their
//! members set.

use crate::kube::GROUPS;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Access, list, require_cluster_admin};
use crate::auth::http::Caller;
use crate::auth::names::managed_group_name_error;
use crate::kube::{ApiError, ApiJson, FieldError, ok};

pub(super) async fn list_groups(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, GROUPS)?;
        Ok::<_, ApiError>(api.auth.store.list_groups().await?)
    };
    match result.await {
        Ok(groups) => list(
            "GroupList",
            "user.openshift.io/v1",
            groups
                .iter()
                .map(|g| {
                    serde_json::json!({
                        "kind": "Group",
                        "apiVersion": "user.openshift.io/v1",
                        "metadata": {"name": g.name},
                        "users": g.members,
                    })
                })
                .collect(),
        ),
        Err(err) => err.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct GroupBody {
    #[serde(default)]
    users: Vec<String>,
}

/// `PUT /apis/user.openshift.io/v1/groups/{name}` with `{"users": [...]}`: sets the members.
pub(super) async fn put_group(
    State(api): Access,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, GROUPS)?;
        if let Some(message) = managed_group_name_error(&name) {
            return Err(ApiError::invalid(
                GROUPS,
                &name,
                FieldError::new("metadata.name", message),
            ));
        }
        let store = &api.auth.store;
        let current = store
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.members)
            .unwrap_or_default();
        for user in body.users.iter().filter(|u| !current.contains(u)) {
            if store.user(user).await?.is_none() {
                return Err(ApiError::invalid(
                    GROUPS,
                    &name,
                    FieldError::new("users", format!("user {user} does not exist")),
                ));
            }
            store.add_group_member(&name, user).await?;
        }
        for user in current.iter().filter(|u| !body.users.contains(u)) {
            store.remove_group_member(&name, user).await?;
        }
        api.auth.credentials_changed(&format!("group {name}")).await;
        api.auth
            .audit_change(
                &caller.subject,
                "group-update",
                name.clone(),
                Some(body.users.join(",")),
            )
            .await;
        Ok(serde_json::json!({
            "kind": "Group",
            "apiVersion": "user.openshift.io/v1",
            "metadata": {"name": name},
            "users": body.users,
        }))
    };
    ok(result.await)
}
