//! Webhooks inside Berth: a namespace's subscriptions with their newest deliveries,
//! subscribing, unsubscribing and sending again through `Webhooks`.

use app::api::ConsoleResult;
use app::api::webhooks::{DeliveryRow, WebhookData, WebhookRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::session::caller;
use crate::console::views::delivery_row;
use crate::kube::ObjectMeta;

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
        let webhook = crate::webhooks::Webhook {
            metadata: ObjectMeta {
                name: name.trim().to_owned(),
                ..ObjectMeta::default()
            },
            spec: crate::webhooks::WebhookSpec {
                url: url.trim().to_owned(),
                events: events
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                format: format.to_owned(),
                secret: None,
            },
            ..crate::webhooks::Webhook::default()
        };
        let created = self.webhooks.create(&who, namespace, webhook).await?;
        Ok(created.spec.secret)
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
