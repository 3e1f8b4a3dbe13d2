//! Users (`GET /apis/user.openshift.io/v1/users`), for cluster administrators: each with its
//! identities and groups; and `users/~`, the caller.

use crate::kube::USERS;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Access, list, require_cluster_admin};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::ApiError;
use crate::storage::auth::{IdentityRecord, UserRecord};

pub(super) async fn list_users(State(api): Access, caller: Caller) -> Response {
    let result = async {
        require_cluster_admin(&api, &caller.subject, USERS)?;
        let store = &api.auth.store;
        Ok::<_, ApiError>((store.list_users().await?, store.list_identities().await?))
    };
    match result.await {
        Ok((users, identities)) => list(
            "UserList",
            "user.openshift.io/v1",
            users.iter().map(|u| user_object(u, &identities)).collect(),
        ),
        Err(err) => err.into_response(),
    }
}

/// A user as OpenShift's `User`: its identities (a password is an identity of its own
/// provider, `local:admin`; external ones are provider and subject) and groups.
fn user_object(user: &UserRecord, identities: &[IdentityRecord]) -> serde_json::Value {
    let identities: Vec<String> = user
        .password_hash
        .is_some()
        .then(|| format!("{}:{}", user.identity_provider, user.name))
        .into_iter()
        .chain(
            identities
                .iter()
                .filter(|i| i.user == user.name)
                .map(|i| format!("{}:{}", i.provider, i.subject)),
        )
        .collect();
    serde_json::json!({
        "kind": "User",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {
            "name": user.name,
            "uid": user.uid,
            "creationTimestamp": user.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "fullName": user.full_name,
        "identities": identities,
        "groups": user.groups,
    })
}

/// `GET /apis/user.openshift.io/v1/users/~`: who the caller is, as `oc whoami` (and `oc login`,
/// `oc project`) asks: a user as the `User` an administrator sees, their own record only.
pub(super) async fn whoami(State(api): Access, caller: Caller) -> Response {
    let (name, groups) = match &caller.subject {
        Subject::Anonymous => {
            return ApiError::Unauthorized("no credentials: sign in, or send a token".into())
                .into_response();
        }
        Subject::User { name, groups } => (name.clone(), groups.clone()),
        account @ Subject::ServiceAccount { .. } => (account.display_name(), Vec::new()),
    };
    if let Subject::User { .. } = &caller.subject {
        let store = &api.auth.store;
        let found =
            async { Ok::<_, ApiError>((store.user(&name).await?, store.list_identities().await?)) };
        match found.await {
            Ok((Some(user), identities)) => {
                let mut object = user_object(&user, &identities);
                // The groups the caller holds now (the token's subject), as every decision uses.
                object["groups"] = serde_json::json!(groups);
                return axum::Json(object).into_response();
            }
            Ok((None, _)) => {}
            Err(err) => return err.into_response(),
        }
    }
    axum::Json(serde_json::json!({
        "kind": "User",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {"name": name},
        "groups": groups,
    }))
    .into_response()
}
