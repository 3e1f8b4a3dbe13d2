//! A namespace's usage inside Berth: its quotas and limit ranges through `Quotas` (the API's
//! reads, for the namespace's members), what it uses as the quotas count it, and its images.

use app::api::ConsoleResult;
use app::api::quotas::{NamespaceUsage, QuotaData};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::{limit_rows, quota_bars};
use crate::quota::{LimitRange, ResourceQuota};

#[async_trait]
impl QuotaData for LocalConsoleData {
    async fn namespace_usage(&self, namespace: &str) -> ConsoleResult<NamespaceUsage> {
        let who = caller().await?;
        // The API's reads decide who sees usage (the namespace's members); then, as every
        // namespace read, a missing namespace is not found.
        let quotas = self.quotas.list::<ResourceQuota>(&who, namespace).await?;
        let ranges = self.quotas.list::<LimitRange>(&who, namespace).await?;
        self.image_streams.require_namespace(namespace).await?;
        // What the quotas count, measured as the quotas measure it (their status says the same
        // for each limit they set).
        let used = self.quotas.store.quota_usage(namespace).await?;
        let images = self.pruning.store.image_count(namespace).await?;
        Ok(NamespaceUsage {
            namespace: namespace.to_owned(),
            bytes: Some(used.storage_bytes),
            streams: Some(used.image_streams),
            images: Some(images),
            quotas: quotas
                .items
                .iter()
                .flat_map(|quota| quota_bars(&quota.metadata.name, &quota.status))
                .collect(),
            limits: ranges.items.iter().flat_map(limit_rows).collect(),
        })
    }
}
