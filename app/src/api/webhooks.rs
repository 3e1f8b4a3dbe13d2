//! Webhooks: a namespace's subscriptions with their newest deliveries (the body sent and the
//! start of each answer), subscribing, changing (URL, events, format; a new secret; disabled or
//! enabled), unsubscribing, sending a test event, and sending a delivery again.

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
    /// No deliveries are made for events while it is disabled.
    #[serde(default)]
    pub disabled: bool,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub created: String,
    /// The request body sent, the same on every attempt (JSON).
    #[serde(default)]
    pub body: String,
    pub attempts: Vec<AttemptRow>,
    /// For a delivery sent again by hand: the id of the one it repeats.
    #[serde(default)]
    pub redelivery_of: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// Its number and HTTP status or error: `2: HTTP 204`.
    pub summary: String,
    /// The start of the answer's body (at most 4 KiB), when there was one.
    pub response_body: Option<String>,
    /// The answer's body was longer than what is kept.
    pub truncated: bool,
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
    /// Changes a subscription's URL, events (comma-separated; empty for all) and format; its
    /// secret and whether it is disabled are kept.
    async fn update_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<()>;
    /// Disables (no deliveries for events meanwhile) or enables a subscription.
    async fn set_webhook_disabled(
        &self,
        namespace: &str,
        name: &str,
        disabled: bool,
    ) -> ConsoleResult<()>;
    /// Makes a new signing secret; answers with it (shown once).
    async fn regenerate_webhook_secret(&self, namespace: &str, name: &str)
    -> ConsoleResult<String>;
    /// Sends a test event (`ping`) as a delivery like any other; answers with it.
    async fn ping_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<DeliveryRow>;
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

#[server(prefix = "/console/api", endpoint = "update_webhook")]
pub async fn update_webhook(
    csrf: String,
    namespace: String,
    name: String,
    url: String,
    events: String,
    format: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .update_webhook(&namespace, &name, &url, &events, &format)
        .await
}

#[server(prefix = "/console/api", endpoint = "set_webhook_disabled")]
pub async fn set_webhook_disabled(
    csrf: String,
    namespace: String,
    name: String,
    disabled: bool,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .set_webhook_disabled(&namespace, &name, disabled)
        .await
}

#[server(prefix = "/console/api", endpoint = "regenerate_webhook_secret")]
pub async fn regenerate_webhook_secret(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<String> {
    changing(&csrf)
        .await?
        .regenerate_webhook_secret(&namespace, &name)
        .await
}

#[server(prefix = "/console/api", endpoint = "ping_webhook")]
pub async fn ping_webhook(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<DeliveryRow> {
    changing(&csrf).await?.ping_webhook(&namespace, &name).await
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
