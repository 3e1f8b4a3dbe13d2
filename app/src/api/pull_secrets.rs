//! Pull secrets: a namespace's credentials for other registries, listed without the
//! credentials, stored and deleted.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// A namespace's credentials for another registry ("pull secret"), as the console lists it:
/// never the credentials themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSecretRow {
    pub name: String,
    /// The registries it has credentials for (`quay.io`, `127.0.0.1:5000`).
    pub registries: Vec<String>,
    /// Empty when the source does not say.
    pub created: String,
}

/// A namespace's pull secrets.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait PullSecretData: Send + Sync {
    /// A namespace's pull secrets (`kubernetes.io/dockerconfigjson`), without their data.
    async fn pull_secrets(&self, namespace: &str) -> ConsoleResult<Vec<PullSecretRow>>;
    /// Stores a pull secret holding `username` and `password` for the registry at `registry`
    /// (a host with an optional port); answers with its row, without the credentials.
    async fn create_pull_secret(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
        username: &str,
        password: &str,
    ) -> ConsoleResult<PullSecretRow>;
    async fn delete_pull_secret(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "pull_secrets", input = GetUrl)]
pub async fn list_pull_secrets(namespace: String) -> ConsoleResult<Vec<PullSecretRow>> {
    console_data()?.pull_secrets(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "create_pull_secret")]
pub async fn create_pull_secret(
    csrf: String,
    namespace: String,
    name: String,
    registry: String,
    username: String,
    password: String,
) -> ConsoleResult<PullSecretRow> {
    changing(&csrf)
        .await?
        .create_pull_secret(&namespace, &name, &registry, &username, &password)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_pull_secret")]
pub async fn delete_pull_secret(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_pull_secret(&namespace, &name)
        .await
}
