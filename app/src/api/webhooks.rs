//! Webhooks: a namespace's subscriptions with their newest deliveries, subscribing,
//! unsubscribing, and sending a delivery again.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// A webhook subscription and its newest deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub name: String,
    pub url: String,
    /// Empty for every event.
    pub events: Vec<String>,
    pub format: String,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub created: String,
    /// Each attempt: its HTTP status or error.
    pub attempts: Vec<String>,
    /// For a delivery sent again by hand: the id of the one it repeats.
    #[serde(default)]
    pub redelivery_of: Option<String>,
}

/// A namespace's webhook subscriptions and their deliveries.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait WebhookData: Send + Sync {
    /// A namespace's webhook subscriptions, each with its newest deliveries.
    async fn webhooks(&self, namespace: &str) -> ConsoleResult<Vec<WebhookRow>>;
    /// Subscribes `url` to `events` (comma-separated; empty for all); answers with the secret
    /// when one was generated (shown once).
    async fn create_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<Option<String>>;
    async fn delete_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    /// Sends a finished delivery (delivered, or failed for good) again, as a new delivery with
    /// the same body; answers with it.
    async fn redeliver_webhook(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ConsoleResult<DeliveryRow>;
}

#[server(prefix = "/console/api", endpoint = "webhooks", input = GetUrl)]
pub async fn list_webhooks(namespace: String) -> ConsoleResult<Vec<WebhookRow>> {
    console_data()?.webhooks(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "create_webhook")]
pub async fn create_webhook(
    csrf: String,
    namespace: String,
    name: String,
    url: String,
    events: String,
    format: String,
) -> ConsoleResult<Option<String>> {
    changing(&csrf)
        .await?
        .create_webhook(&namespace, &name, &url, &events, &format)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_webhook")]
pub async fn delete_webhook(csrf: String, namespace: String, name: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_webhook(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(
    csrf: String,
    namespace: String,
    name: String,
    id: String,
) -> ConsoleResult<DeliveryRow> {
    changing(&csrf)
        .await?
        .redeliver_webhook(&namespace, &name, &id)
        .await
}
