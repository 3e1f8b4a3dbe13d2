//! Access: a namespace's or stream's role bindings and who can pull and push there, and the
//! namespace's service accounts with their tokens.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
use super::tokens::{NewToken, TokenRow};
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// The roles a binding may grant here, each with what it allows, as the role menu says it.
/// The auth model (`Role::allows` on the server) decides; a test there checks this table
/// against it, so the menu cannot promise what a role does not allow.
pub const GRANTABLE_ROLES: [(&str, &[&str]); 3] = [
    ("viewer", &["pull"]),
    ("editor", &["pull", "push"]),
    ("admin", &["pull", "push", "delete", "manage-access"]),
];

/// `editor (pull, push)`: a role with what it allows, for the role menu.
pub fn role_label(role: &str, actions: &[&str]) -> String {
    let actions: Vec<String> = actions.iter().map(|a| a.replace('-', " ")).collect();
    format!("{role} ({})", actions.join(", "))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    pub name: String,
    pub role: String,
    pub subject_kind: String,
    pub subject_name: String,
    pub stream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoCanRow {
    pub subject: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRow {
    pub name: String,
    pub tokens: Vec<TokenRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessView {
    pub namespace: String,
    pub stream: Option<String>,
    pub bindings: Vec<BindingRow>,
    pub who_can_pull: Vec<WhoCanRow>,
    pub who_can_push: Vec<WhoCanRow>,
    pub service_accounts: Vec<ServiceAccountRow>,
}

/// Who may do what in a namespace or stream: bindings (added with the warnings of the API, such
/// as a user who does not exist yet), and service accounts with their tokens.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AccessData: Send + Sync {
    async fn access(&self, namespace: &str, stream: Option<&str>) -> ConsoleResult<AccessView>;
    async fn add_binding(
        &self,
        namespace: &str,
        stream: Option<&str>,
        role: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> ConsoleResult<Vec<String>>;
    async fn remove_binding(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    async fn create_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    /// Deletes a service account, with its tokens and bindings.
    async fn delete_service_account(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
    ) -> ConsoleResult<NewToken>;
    async fn revoke_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        uid: &str,
    ) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "access", input = GetUrl)]
pub async fn get_access(namespace: String, stream: Option<String>) -> ConsoleResult<AccessView> {
    console_data()?.access(&namespace, stream.as_deref()).await
}

#[server(prefix = "/console/api", endpoint = "add_binding")]
pub async fn add_binding(
    csrf: String,
    namespace: String,
    stream: Option<String>,
    role: String,
    subject_kind: String,
    subject_name: String,
) -> ConsoleResult<Vec<String>> {
    changing(&csrf)
        .await?
        .add_binding(
            &namespace,
            stream.as_deref(),
            &role,
            &subject_kind,
            &subject_name,
        )
        .await
}

#[server(prefix = "/console/api", endpoint = "remove_binding")]
pub async fn remove_binding(csrf: String, namespace: String, name: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .remove_binding(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "create_service_account")]
pub async fn create_service_account(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .create_service_account(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_service_account")]
pub async fn delete_service_account(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_service_account(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "create_service_account_token")]
pub async fn create_service_account_token(
    csrf: String,
    namespace: String,
    account: String,
) -> ConsoleResult<NewToken> {
    changing(&csrf)
        .await?
        .create_service_account_token(&namespace, &account)
        .await
}

#[server(prefix = "/console/api", endpoint = "revoke_service_account_token")]
pub async fn revoke_service_account_token(
    csrf: String,
    namespace: String,
    account: String,
    uid: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .revoke_service_account_token(&namespace, &account, &uid)
        .await
}
