//! Deliveries of a webhook, the subresource
//! `/apis/berth.io/v1/namespaces/{ns}/webhooks/{name}/deliveries`: the newest listed with their
//! attempts (`GET …/deliveries?limit=N`), each with the body sent and the start of each
//! answer; a finished one sent again by hand (`POST …/deliveries/{id}/redeliver`); and a test
//! event made (`POST …/webhooks/{name}/ping`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::payload::{self, Format};
use super::{API_VERSION, Webhooks};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiQuery, ApiResult, WEBHOOK_DELIVERIES, WEBHOOKS};
use crate::kube::{List, ListMeta, time};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, NewDelivery, Redelivery, WebhookRecord,
};

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
    /// The request body sent (the same on every attempt), as text.
    pub body: String,
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
    /// The start of the answer's body: at most 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// The answer's body was longer than what is kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub response_body_truncated: bool,
}

fn delivery_object((delivery, attempts): (DeliveryRecord, Vec<AttemptRecord>)) -> WebhookDelivery {
    WebhookDelivery {
        id: delivery.id.to_string(),
        event: delivery.event,
        event_id: delivery.event_id,
        state: delivery.state.as_str(),
        content_type: delivery.content_type,
        body: String::from_utf8_lossy(&delivery.body).into_owned(),
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
                response_body: attempt.response_body,
                response_body_truncated: attempt.response_truncated,
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
        let webhook = self.enabled(namespace, name).await?;
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

impl Webhooks {
    /// The subscription, refused with a Conflict when it is disabled: it gets no new
    /// deliveries.
    async fn enabled(&self, namespace: &str, name: &str) -> ApiResult<WebhookRecord> {
        let webhook = self.record(namespace, name).await?;
        if webhook.disabled {
            return Err(ApiError::NotNow {
                resource: WEBHOOKS,
                name: name.to_owned(),
                why: "the webhook is disabled: enable it to send to it".into(),
            });
        }
        Ok(webhook)
    }

    /// Sends a test event (`ping`) through the same signed delivery path as events: a new
    /// pending delivery, behind the subscription's older pending ones; answers with it.
    pub async fn ping(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<WebhookDelivery> {
        self.require_admin(who, namespace, name).await?;
        let webhook = self.enabled(namespace, name).await?;
        let format = Format::parse(&webhook.format).unwrap_or(Format::Distribution);
        let payload = payload::ping(&webhook, format, Utc::now()).map_err(ApiError::internal)?;
        let made = self
            .store
            .add_test_delivery(
                &NewDelivery {
                    webhook_id: webhook.id,
                    event_id: 0,
                    event: payload::PING.into(),
                    content_type: payload.content_type.into(),
                    body: payload.body,
                },
                Utc::now(),
            )
            .await?;
        self.dispatcher.wake().await;
        self.audit(
            who,
            "webhook-ping",
            namespace,
            name,
            Some(format!("delivery {}", made.id)),
        )
        .await;
        Ok(delivery_object((made, Vec::new())))
    }
}

/// Makes a test event; answers 201 with its delivery.
pub(super) async fn ping(
    State(api): State<Arc<Webhooks>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    let made = api.ping(&caller.subject, &namespace, &name).await?;
    Ok((StatusCode::CREATED, Json(made)))
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
