//! The console's data source inside Berth: [`app::api::ConsoleData`] answered from this
//! server's own metadata store.

use std::sync::Arc;

use app::api::{ConsoleData, ConsoleError, RepositoryEntry};
use async_trait::async_trait;

use crate::storage::MetadataStore;

/// Tags shown per repository on the repositories page.
const TAGS_PER_REPOSITORY: u32 = 20;

pub struct LocalConsoleData {
    pub metadata: Arc<dyn MetadataStore>,
}

#[async_trait]
impl ConsoleData for LocalConsoleData {
    async fn repositories(&self, limit: u32) -> Result<Vec<RepositoryEntry>, ConsoleError> {
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
            .map(|s| RepositoryEntry {
                name: s.name,
                tags: s.tags,
                manifest_count: s.manifest_count,
            })
            .collect())
    }
}
