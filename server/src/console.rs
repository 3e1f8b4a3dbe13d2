//! The console's data source inside Berth: [`app::api::ConsoleData`] answered from this
//! server's own metadata store.

use std::sync::Arc;

use app::api::{ConsoleData, ConsoleError, RepositoryEntry, SessionInfo};
use async_trait::async_trait;

use crate::auth::console_login::{SESSION_CSRF, SESSION_USER};
use crate::auth::http::Caller;
use crate::auth::{Action, Identities, Target};
use crate::registry::names::RepositoryName;
use crate::storage::MetadataStore;

/// Tags shown per repository on the repositories page.
const TAGS_PER_REPOSITORY: u32 = 20;

pub struct LocalConsoleData {
    pub metadata: Arc<dyn MetadataStore>,
    pub identities: Arc<Identities>,
}

/// The caller of the request being served (a page render or a server function).
async fn caller() -> Result<Caller, ConsoleError> {
    leptos_axum::extract::<Caller>()
        .await
        .map_err(|err| ConsoleError::Request(err.to_string()))
}

#[async_trait]
impl ConsoleData for LocalConsoleData {
    async fn repositories(&self, limit: u32) -> Result<Vec<RepositoryEntry>, ConsoleError> {
        let who = caller().await?.subject;
        let authorizer = &self.identities.authorizer;
        let summaries = self
            .metadata
            .repository_summaries(limit, TAGS_PER_REPOSITORY)
            .await
            .map_err(|err| {
                tracing::error!(%err, "listing repositories for the console failed");
                ConsoleError::Unavailable(
                    "listing repositories failed; the server log has the cause".into(),
                )
            })?;
        Ok(summaries
            .into_iter()
            .filter(|s| {
                s.name.parse::<RepositoryName>().is_ok_and(|name| {
                    authorizer.allows(
                        &who,
                        Action::Pull,
                        Target::stream(name.namespace(), name.stream()),
                    )
                })
            })
            .map(|s| RepositoryEntry {
                name: s.name,
                tags: s.tags,
                manifest_count: s.manifest_count,
            })
            .collect())
    }

    async fn session(&self) -> Result<SessionInfo, ConsoleError> {
        let Ok(session) = leptos_axum::extract::<tower_sessions::Session>().await else {
            return Ok(SessionInfo::default());
        };
        let user: Option<String> = session.get(SESSION_USER).await.ok().flatten();
        let csrf_token: Option<String> = session.get(SESSION_CSRF).await.ok().flatten();
        Ok(SessionInfo { user, csrf_token })
    }
}
