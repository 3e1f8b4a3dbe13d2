//! Users (`GET /apis/user.openshift.io/v1/users`), for cluster administrators: each with its
//! identities and groups; and `users/~`, the caller.

use crate::kube::USERS;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Access, list, require_cluster_admin};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::ApiError;

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
            users
                .iter()
                .map(|u| {
                    // A password is an identity of its own provider (`local:admin`); external
                    // ones are (provider, subject).
                    let identities: Vec<String> = u
                        .password_hash
                        .is_some()
                        .then(|| format!("{}:{}", u.identity_provider, u.name))
                        .into_iter()
                        .chain(
                            identities
                                .iter()
                                .filter(|i| i.user == u.name)
                                .map(|i| format!("{}:{}", i.provider, i.subject)),
                        )
                        .collect();
                    serde_json::json!({
                        "kind": "User",
                        "apiVersion": "user.openshift.io/v1",
                        "metadata": {
                            "name": u.name,
                            "uid": u.uid,
                            "creationTimestamp": u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        },
                        "fullName": u.full_name,
                        "identities": identities,
                        "groups": u.groups,
                    })
                })
                .collect(),
        ),
        Err(err) => err.into_response(),
    }
}

/// `GET /apis/user.openshift.io/v1/users/~`: who the caller is, as `oc whoami` asks.
pub(super) async fn whoami(caller: Caller) -> Response {
    let (name, groups) = match &caller.subject {
        Subject::Anonymous => {
            return ApiError::Unauthorized("no credentials: sign in, or send a token".into())
                .into_response();
        }
        Subject::User { name, groups } => (name.clone(), groups.clone()),
        account @ Subject::ServiceAccount { .. } => (account.display_name(), Vec::new()),
    };
    axum::Json(serde_json::json!({
        "kind": "User",
        "apiVersion": "user.openshift.io/v1",
        "metadata": {"name": name},
        "groups": groups,
    }))
    .into_response()
}
