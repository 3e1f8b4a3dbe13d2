//! Namespaces: the list the console opens on, and making and deleting one.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSummary {
    pub name: String,
    /// Unknown in front of a cluster (counting would take a call per namespace).
    pub streams: Option<u64>,
    pub size: Option<u64>,
    pub created: String,
    /// Whether the caller may delete it.
    pub can_delete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceList {
    pub namespaces: Vec<NamespaceSummary>,
    pub can_create: bool,
}

/// What deleting a namespace takes with it, as far as the caller can see: said in the confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NamespaceContents {
    pub streams: u64,
    pub tags: u64,
    /// Distinct images that the streams' tags name now or named before.
    pub images: u64,
}

/// The namespaces the caller may see, create and delete.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait NamespaceData: Send + Sync {
    async fn namespaces(&self) -> ConsoleResult<NamespaceList>;
    async fn create_namespace(&self, name: &str) -> ConsoleResult<()>;
    async fn delete_namespace(&self, name: &str) -> ConsoleResult<()>;
    async fn namespace_contents(&self, name: &str) -> ConsoleResult<NamespaceContents>;
}

#[server(prefix = "/console/api", endpoint = "namespaces", input = GetUrl)]
pub async fn list_namespaces() -> ConsoleResult<NamespaceList> {
    console_data()?.namespaces().await
}

#[server(prefix = "/console/api", endpoint = "create_namespace")]
pub async fn create_namespace(csrf: String, name: String) -> ConsoleResult<()> {
    changing(&csrf).await?.create_namespace(&name).await
}

#[server(prefix = "/console/api", endpoint = "delete_namespace")]
pub async fn delete_namespace(csrf: String, name: String) -> ConsoleResult<()> {
    changing(&csrf).await?.delete_namespace(&name).await
}

#[server(prefix = "/console/api", endpoint = "namespace_contents", input = GetUrl)]
pub async fn get_namespace_contents(name: String) -> ConsoleResult<NamespaceContents> {
    console_data()?.namespace_contents(&name).await
}
