//! What the console shows and how it asks for it: the shared types, the server functions, and
//! (on the server) the [`ConsoleData`] interface they read through.
//!
//! Every page reaches registry data through `ConsoleData`, so the same pages can later be served
//! from another source (an upstream OpenShift-compatible server) by a second implementation.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A repository and the first of its tags, as the repositories page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryEntry {
    pub name: String,
    pub tags: Vec<String>,
    pub manifest_count: u64,
}

/// The repositories page: what to list, and the address to push to when there is nothing yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryListing {
    pub registry_host: String,
    pub repositories: Vec<RepositoryEntry>,
}

/// Who is signed in to the console, and the token their changes must carry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Option<String>,
    pub csrf_token: Option<String>,
}

/// A failure the console can show to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConsoleError {
    #[error("the registry could not answer: {0}")]
    Unavailable(String),
    #[error("the request to the server failed: {0}")]
    Request(String),
}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ConsoleError::Request(value.to_string())
    }
}

/// The console's source of registry data.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ConsoleData: Send + Sync + 'static {
    /// Repositories the signed-in person (or an anonymous visitor) may pull.
    async fn repositories(&self, limit: u32) -> Result<Vec<RepositoryEntry>, ConsoleError>;
    /// The signed-in person of this request, if any.
    async fn session(&self) -> Result<SessionInfo, ConsoleError>;
}

#[cfg(feature = "ssr")]
fn console_data() -> Result<std::sync::Arc<dyn ConsoleData>, ConsoleError> {
    use_context::<std::sync::Arc<dyn ConsoleData>>()
        .ok_or_else(|| ConsoleError::Unavailable("the console has no data source".into()))
}

/// How many repositories the first page lists.
pub const REPOSITORY_PAGE: u32 = 200;

#[server(prefix = "/console/api", endpoint = "repositories", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_repositories() -> Result<RepositoryListing, ConsoleError> {
    let headers: http::HeaderMap = leptos_axum::extract()
        .await
        .map_err(|err| ConsoleError::Request(err.to_string()))?;
    let registry_host = headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost:5000")
        .to_owned();
    let repositories = console_data()?.repositories(REPOSITORY_PAGE).await?;
    Ok(RepositoryListing {
        registry_host,
        repositories,
    })
}

#[server(prefix = "/console/api", endpoint = "session", input = leptos::server_fn::codec::GetUrl)]
pub async fn current_session() -> Result<SessionInfo, ConsoleError> {
    console_data()?.session().await
}
