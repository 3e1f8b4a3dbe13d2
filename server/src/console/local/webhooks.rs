//! Webhooks inside Berth: a namespace's subscriptions with their newest deliveries,
//! subscribing, changing, unsubscribing, test events and sending again through `Webhooks`.

use app::api::ConsoleResult;
use app::api::webhooks::{DeliveryRow, WebhookData, WebhookRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::delivery_row;
use crate::kube::ObjectMeta;
use crate::webhooks::{Webhook, WebhookSpec};

/// A subscription's spec as the console's form gives it: events comma-separated (none for
/// all), no secret (one is made, or the one stored is kept).
fn spec_of_form(url: &str, events: &str, format: &str) -> WebhookSpec {
    WebhookSpec {
        url: url.trim().to_owned(),
        events: events
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        format: format.to_owned(),
        secret: None,
        disabled: false,
    }
}

impl LocalConsoleData {
    /// The subscription's spec as it is now, changed by `change` (the secret kept), as an
    /// update of the API.
    async fn change_webhook(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(WebhookSpec) -> WebhookSpec,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        let mut webhook = self.webhooks.get(&who, namespace, name).await?;
        webhook.spec = change(webhook.spec);
        self.webhooks.update(&who, namespace, name, webhook).await?;
        Ok(())
    }
}

#[async_trait]
impl WebhookData for LocalConsoleData {
    async fn webhooks(&self, namespace: &str) -> ConsoleResult<Vec<WebhookRow>> {
        let who = caller().await?;
        let mut rows = Vec::new();
        for webhook in self.webhooks.list(&who, namespace).await?.items {
            let name = webhook.metadata.name;
            let deliveries = self
                .webhooks
                .deliveries(&who, namespace, &name, 20)
                .await?
                .items
                .into_iter()
                .map(delivery_row)
                .collect();
            rows.push(WebhookRow {
                name,
                url: webhook.spec.url,
                events: webhook.spec.events,
                format: webhook.spec.format,
                disabled: webhook.spec.disabled,
                deliveries,
            });
        }
        Ok(rows)
    }

    async fn create_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<Option<String>> {
        let who = caller().await?;
        let webhook = Webhook {
            metadata: ObjectMeta {
                name: name.trim().to_owned(),
                ..ObjectMeta::default()
            },
            spec: spec_of_form(url, events, format),
            ..Webhook::default()
        };
        let created = self.webhooks.create(&who, namespace, webhook).await?;
        Ok(created.spec.secret)
    }

    async fn update_webhook(
        &self,
        namespace: &str,
        name: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> ConsoleResult<()> {
        self.change_webhook(namespace, name, |spec| WebhookSpec {
            disabled: spec.disabled,
            ..spec_of_form(url, events, format)
        })
        .await
    }

    async fn set_webhook_disabled(
        &self,
        namespace: &str,
        name: &str,
        disabled: bool,
    ) -> ConsoleResult<()> {
        self.change_webhook(namespace, name, |spec| WebhookSpec { disabled, ..spec })
            .await
    }

    async fn regenerate_webhook_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> ConsoleResult<String> {
        let who = caller().await?;
        let shown = self
            .webhooks
            .regenerate_secret(&who, namespace, name)
            .await?;
        Ok(shown.spec.secret.unwrap_or_default())
    }

    async fn ping_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<DeliveryRow> {
        let who = caller().await?;
        let made = self.webhooks.ping(&who, namespace, name).await?;
        Ok(delivery_row(made))
    }

    async fn delete_webhook(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.webhooks.delete(&who, namespace, name).await?;
        Ok(())
    }

    async fn redeliver_webhook(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ConsoleResult<DeliveryRow> {
        let who = caller().await?;
        let made = self.webhooks.redeliver(&who, namespace, name, id).await?;
        Ok(delivery_row(made))
    }
}
