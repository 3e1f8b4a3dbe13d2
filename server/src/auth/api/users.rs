//! Users (`GET /apis/user.openshift.io/v1/users`), for cluster administrators: each with its
//! identities and groups; and `users/~`, the caller.

use crate::kube::USERS;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Access, AccessApi, list, require_cluster_admin};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiResult};
use crate::storage::auth::{IdentityRecord, UserRecord};

impl AccessApi {
    /// Every user with their identities (see [`identities_of`]).
    pub async fn users(&self, who: &Subject) -> ApiResult<Vec<(UserRecord, Vec<String>)>> {
        require_cluster_admin(self, who, USERS)?;
        let store = &self.auth.store;
        let (users, identities) = (store.list_users().await?, store.list_identities().await?);
        Ok(users
            .into_iter()
            .map(|user| {
                let own = identities_of(&user, &identities);
                (user, own)
            })
            .collect())
    }
}

pub(super) async fn list_users(State(api): Access, caller: Caller) -> Response {
    match api.users(&caller.subject).await {
        Ok(users) => list(
            "UserList",
            "user.openshift.io/v1",
            users
                .into_iter()
                .map(|(user, identities)| user_object(&user, identities))
                .collect(),
        ),
        Err(err) => err.into_response(),
    }
}

/// A user's identities, as OpenShift names them: a password is an identity of its own
/// provider (`local:admin`); external ones are provider and subject.
fn identities_of(user: &UserRecord, identities: &[IdentityRecord]) -> Vec<String> {
    user.password_hash
        .is_some()
        .then(|| format!("{}:{}", user.identity_provider, user.name))
        .into_iter()
        .chain(
            identities
                .iter()
                .filter(|i| i.user == user.name)
                .map(|i| format!("{}:{}", i.provider, i.subject)),
        )
        .collect()
}

/// A user as OpenShift's `User`, with its identities and groups.
fn user_object(user: &UserRecord, identities: Vec<String>) -> serde_json::Value {
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
                let mut object = user_object(&user, identities_of(&user, &identities));
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
