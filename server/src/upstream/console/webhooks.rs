//! Webhooks in front of a cluster: not the console's business there (the cluster manages its
//! own), so every call says so.

use app::api::webhooks::{DeliveryRow, WebhookData, WebhookRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::{MANAGED_BY_CLUSTER, UpstreamConsoleData};

#[async_trait]
impl WebhookData for UpstreamConsoleData {
    async fn webhooks(&self, _namespace: &str) -> ConsoleResult<Vec<WebhookRow>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn create_webhook(
        &self,
        _namespace: &str,
        _name: &str,
        _url: &str,
        _events: &str,
        _format: &str,
    ) -> ConsoleResult<Option<String>> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn update_webhook(
        &self,
        _namespace: &str,
        _name: &str,
        _url: &str,
        _events: &str,
        _format: &str,
    ) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn set_webhook_disabled(
        &self,
        _namespace: &str,
        _name: &str,
        _disabled: bool,
    ) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn regenerate_webhook_secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> ConsoleResult<String> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn ping_webhook(&self, _namespace: &str, _name: &str) -> ConsoleResult<DeliveryRow> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn delete_webhook(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }

    async fn redeliver_webhook(
        &self,
        _namespace: &str,
        _name: &str,
        _id: &str,
    ) -> ConsoleResult<DeliveryRow> {
        Err(ConsoleError::NotHere(MANAGED_BY_CLUSTER.into()))
    }
}
