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
        let unavailable = |err: crate::storage::StorageError| {
            tracing::error!(%err, "listing repositories for the console failed");
            ConsoleError::Unavailable(
                "listing repositories failed; the server log has the cause".into(),
            )
        };
        // Page through until `limit` repositories the caller may pull are found.
        let mut visible = Vec::new();
        let mut after: Option<String> = None;
        while visible.len() < limit as usize {
            let page = self
                .metadata
                .repository_summaries(after.as_deref(), limit, TAGS_PER_REPOSITORY)
                .await
                .map_err(unavailable)?;
            let exhausted = page.len() < limit as usize;
            after = page.last().map(|s| s.name.clone());
            visible.extend(page.into_iter().filter(|s| {
                s.name.parse::<RepositoryName>().is_ok_and(|name| {
                    authorizer.allows(
                        &who,
                        Action::Pull,
                        Target::stream(name.namespace(), name.stream()),
                    )
                })
            }));
            if exhausted {
                break;
            }
        }
        visible.truncate(limit as usize);
        Ok(visible
            .into_iter()
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
