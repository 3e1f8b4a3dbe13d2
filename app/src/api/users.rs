//! The users of the registry (or of the cluster in front of which the console is), for those
//! who may list them: their identities and groups.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// A user, as OpenShift's `User` describes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub name: String,
    pub full_name: Option<String>,
    /// `provider:subject`: how they sign in (`local:admin` for a password).
    pub identities: Vec<String>,
    pub groups: Vec<String>,
    /// Empty when the source does not say.
    pub created: String,
}

/// The users.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait UserData: Send + Sync {
    /// Every user, by name. Refused to those who may not list users (in Berth, all but cluster
    /// administrators).
    async fn users(&self) -> ConsoleResult<Vec<UserRow>>;
    /// Whether the caller may list users (the console links them then).
    async fn may_list_users(&self) -> ConsoleResult<bool>;
}

#[server(prefix = "/console/api", endpoint = "users", input = GetUrl)]
pub async fn list_users() -> ConsoleResult<Vec<UserRow>> {
    console_data()?.users().await
}

#[server(prefix = "/console/api", endpoint = "may_list_users", input = GetUrl)]
pub async fn may_list_users() -> ConsoleResult<bool> {
    console_data()?.may_list_users().await
}
