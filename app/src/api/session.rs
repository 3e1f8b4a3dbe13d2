//! The console's session: who is signed in, the CSRF token their changes carry, and where the
//! registry is.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// Who is signed in to the console, and the token their changes must carry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Option<String>,
    pub csrf_token: Option<String>,
    /// The registry's address, for pull and login commands.
    pub registry_host: String,
    /// The cluster's API address when the console is in front of one: tokens, access and
    /// webhooks are then the cluster's business, not the console's.
    pub upstream: Option<String>,
}

/// The session of the request being served.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait SessionData: Send + Sync {
    async fn session(&self) -> ConsoleResult<SessionInfo>;
    /// Checks a change's CSRF token against the session.
    async fn check_csrf(&self, token: &str) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "session", input = GetUrl)]
pub async fn current_session() -> ConsoleResult<SessionInfo> {
    console_data()?.session().await
}
