//! Deliveries of a webhook, the subresource
//! `/apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries`: the newest listed with their
//! attempts (`GET …/deliveries?limit=N`), and a finished one sent again by hand
//! (`POST …/deliveries/{id}/redeliver`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{API_VERSION, Webhooks};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiQuery, ApiResult, WEBHOOK_DELIVERIES};
use crate::kube::{List, ListMeta, time};
use crate::storage::webhooks::{AttemptRecord, DeliveryRecord, Redelivery};

/// Deliveries listed when the request gives no `limit`, and the most it may ask for.
pub const DEFAULT_DELIVERIES: u32 = 20;
pub const MAX_DELIVERIES: u32 = 500;

/// One delivery of an event to a subscription, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// Sent as `X-Berth-Delivery`.
    pub id: String,
    /// Sent as `X-Berth-Event`.
    pub event: String,
    /// The event log entry (the changed object's resourceVersion).
    pub event_id: i64,
    /// `pending`, `delivered` or `failed`.
    pub state: &'static str,
    pub content_type: String,
    #[serde(with = "time")]
    pub creation_timestamp: DateTime<Utc>,
    /// When a pending delivery is tried next.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::option")]
    pub next_attempt_time: Option<DateTime<Utc>>,
    /// For a delivery sent again by hand: the id of the delivery it repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redelivery_of: Option<String>,
    pub attempts: Vec<WebhookAttempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    pub number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_millis: u64,
    #[serde(with = "time")]
    pub time: DateTime<Utc>,
}

fn delivery_object((delivery, attempts): (DeliveryRecord, Vec<AttemptRecord>)) -> WebhookDelivery {
    WebhookDelivery {
        id: delivery.id.to_string(),
        event: delivery.event,
        event_id: delivery.event_id,
        state: delivery.state.as_str(),
        content_type: delivery.content_type,
        creation_timestamp: delivery.created_at,
        next_attempt_time: delivery.next_attempt_at,
        redelivery_of: delivery.redelivery_of.map(|id| id.to_string()),
        attempts: attempts
            .into_iter()
            .map(|attempt| WebhookAttempt {
                number: attempt.number,
                status_code: attempt.status_code,
                error: attempt.error,
                duration_millis: attempt.duration_ms,
                time: attempt.attempted_at,
            })
            .collect(),
    }
}

impl Webhooks {
    /// A subscription's newest `limit` deliveries, newest first, with their attempts.
    pub async fn deliveries(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        limit: u32,
    ) -> ApiResult<List<WebhookDelivery>> {
        self.require_admin(who, namespace, name).await?;
        if !(1..=MAX_DELIVERIES).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_DELIVERIES}"
            )));
        }
        let webhook = self.record(namespace, name).await?;
        let deliveries = self.store.deliveries(webhook.id, limit).await?;
        Ok(List {
            kind: "WebhookDeliveryList",
            api_version: API_VERSION,
            metadata: ListMeta::default(),
            items: deliveries.into_iter().map(delivery_object).collect(),
        })
    }

    /// Sends a finished delivery (delivered, or failed for good) again: a new pending
    /// delivery with its own id and attempts, the same event and the same body bytes, signed
    /// when it is sent. A delivery still pending is refused with a Conflict: it is being sent.
    pub async fn redeliver(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> ApiResult<WebhookDelivery> {
        self.require_admin(who, namespace, name).await?;
        let webhook = self.record(namespace, name).await?;
        let not_found = || ApiError::not_found(WEBHOOK_DELIVERIES, id);
        // Ids are the store's positive integers, written as it writes them; anything else
        // (`+7`, `007`) names no delivery.
        let number = id
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0 && n.to_string() == id)
            .ok_or_else(not_found)?;
        let made = match self.store.redeliver(webhook.id, number, Utc::now()).await? {
            Redelivery::Made(made) => made,
            Redelivery::NotFound => return Err(not_found()),
            Redelivery::Pending => {
                return Err(ApiError::NotNow {
                    resource: WEBHOOK_DELIVERIES,
                    name: id.to_owned(),
                    why: "the delivery is still pending: it is sent, and retried, without being asked; redeliver it once it is delivered or has failed".into(),
                });
            }
        };
        self.dispatcher.wake().await;
        self.audit(
            who,
            "webhook-redeliver",
            namespace,
            name,
            Some(format!("delivery {number} sent again as {}", made.id)),
        )
        .await;
        Ok(delivery_object((made, Vec::new())))
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DeliveriesQuery {
    limit: Option<u32>,
}

pub(super) async fn list(
    State(api): State<Arc<Webhooks>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<List<WebhookDelivery>>> {
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERIES);
    api.deliveries(&caller.subject, &namespace, &name, limit)
        .await
        .map(Json)
}

/// Sends a finished delivery again; answers 201 with the new delivery.
pub(super) async fn redeliver(
    State(api): State<Arc<Webhooks>>,
    caller: Caller,
    Path((namespace, name, id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    let made = api
        .redeliver(&caller.subject, &namespace, &name, &id)
        .await?;
    Ok((StatusCode::CREATED, Json(made)))
}
