//! Users and the audit log in front of a cluster: its users are read from its
//! `user.openshift.io/v1` API with the signed-in user's token (the cluster decides who may list
//! them); Berth's audit log is of Berth's own changes, which do not happen here.

use app::api::audit::{AuditData, AuditEvents};
use app::api::users::{UserData, UserRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use serde::Deserialize;

use super::UpstreamConsoleData;
use crate::console::views::time;
use crate::kube::ObjectMeta;

const USERS: &str = "/apis/user.openshift.io/v1/users";

/// Said of the audit log in this mode.
const NO_AUDIT_LOG: &str = "The audit log is Berth's own record of changes made through it: in front of a cluster, changes are the cluster's, recorded in its API servers' audit logs (oc adm node-logs --role=master --path=kube-apiserver/).";

/// A cluster's `User`, as far as the console reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    full_name: Option<String>,
    // OpenShift writes `null` for none.
    #[serde(default)]
    identities: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

fn user_row(user: User) -> UserRow {
    UserRow {
        created: user
            .metadata
            .creation_timestamp
            .map(time)
            .unwrap_or_default(),
        name: user.metadata.name,
        full_name: user.full_name.filter(|name| !name.is_empty()),
        identities: user.identities.unwrap_or_default(),
        groups: user.groups.unwrap_or_default(),
    }
}

#[async_trait]
impl UserData for UpstreamConsoleData {
    async fn users(&self) -> ConsoleResult<Vec<UserRow>> {
        let signed = self.signed().await?;
        let mut rows: Vec<UserRow> = self
            .list::<User>(&signed, USERS)
            .await?
            .into_iter()
            .map(user_row)
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn may_list_users(&self) -> ConsoleResult<bool> {
        let signed = self.signed().await?;
        self.may_in(&signed, "list", "user.openshift.io", "users")
            .await
    }
}

#[async_trait]
impl AuditData for UpstreamConsoleData {
    async fn audit_events(
        &self,
        _before: Option<i64>,
        _user: &str,
        _namespace: &str,
    ) -> ConsoleResult<AuditEvents> {
        Err(ConsoleError::NotHere(NO_AUDIT_LOG.into()))
    }

    async fn may_read_audit(&self) -> ConsoleResult<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_user_is_read_as_openshift_writes_it() {
        let user: User = serde_json::from_value(serde_json::json!({
            "kind": "User",
            "apiVersion": "user.openshift.io/v1",
            "metadata": {"name": "alice", "creationTimestamp": "2026-12-01T08:00:00Z"},
            "fullName": "",
            "identities": ["htpasswd:alice"],
            "groups": null,
        }))
        .unwrap_or_else(|err| panic!("{err}"));
        let row = user_row(user);
        assert_eq!(row.name, "alice");
        assert_eq!(row.full_name, None);
        assert_eq!(row.identities, ["htpasswd:alice"]);
        assert_eq!(row.created, "2026-12-01T08:00:00Z");
    }
}
