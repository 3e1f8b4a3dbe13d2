//! What the metadata store keeps of webhooks: subscriptions, their deliveries and the attempts
//! at each, the dispatcher's place in the event log; and the [`WebhookStore`] trait. The store
//! sees only the encrypted signing secret: the key and the rules are `crate::webhooks`'.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageResult;

/// A namespace's subscription to its events.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    /// Given by the store; ignored when storing.
    pub id: i64,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub url: String,
    /// Event names wanted (`push`, `delete`, `imagestream`); empty for all.
    pub events: Vec<String>,
    /// `distribution` or `cloudevents`.
    pub format: String,
    pub secret_nonce: Vec<u8>,
    pub secret_ciphertext: Vec<u8>,
    /// The newest event when it was stored (given by the store; ignored when storing): only
    /// later events are delivered to it.
    pub since_event: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; due at `next_attempt_at`.
    Pending,
    /// Answered with a 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A delivery to make: one event of the log, as one of the subscriber's event names.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub webhook_id: i64,
    pub event_id: i64,
    pub event: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub event: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a pending delivery is due (or its claim by a sender lapses).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The delivery this one sends again, when it was made by hand rather than from the log.
    pub redelivery_of: Option<i64>,
}

/// What asking for a delivery to be sent again came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Redelivery {
    /// A new pending delivery with the same event and body, due now.
    Made(DeliveryRecord),
    /// The subscription has no such delivery.
    NotFound,
    /// The delivery is still pending: it is sent (or retried) anyway.
    Pending,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    /// From 1.
    pub number: u32,
    /// The HTTP status answered, when there was an answer.
    pub status_code: Option<u16>,
    /// Why there was no answer (a timeout, a refused connection).
    pub error: Option<String>,
    pub duration_ms: u64,
    pub attempted_at: DateTime<Utc>,
}

/// Webhook subscriptions (deleted with their namespace) and their deliveries (deleted with
/// their subscription).
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a subscription for the events after it; false when the namespace has one of that
    /// name already. The namespace must exist.
    async fn put_webhook(&self, record: &WebhookRecord) -> StorageResult<bool>;
    /// The namespace's subscriptions, by name.
    async fn webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRecord>>;
    async fn webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRecord>>;
    async fn webhook_by_id(&self, id: i64) -> StorageResult<Option<WebhookRecord>>;
    /// Deletes a subscription with its deliveries; false when there was none.
    async fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool>;

    /// The last event the dispatcher has read, if it ever has.
    async fn webhook_cursor(&self) -> StorageResult<Option<i64>>;
    /// Adds deliveries (pending, due now; one already made for the same subscription, event
    /// and name is kept as it is) and moves the cursor forward to `cursor`, in one transaction.
    async fn add_deliveries(&self, deliveries: &[NewDelivery], cursor: i64) -> StorageResult<()>;
    /// Each subscription's oldest pending delivery, when it is due at `now`, oldest first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<DeliveryRecord>>;
    /// When the next of the subscriptions' oldest pending deliveries is due.
    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>>;
    /// Claims a due delivery for sending by moving its due time to `until`, if it is still
    /// pending and due at `expected` (no other sender took it); false otherwise.
    async fn claim_delivery(
        &self,
        id: i64,
        expected: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool>;
    /// Records an attempt and where it leaves the delivery: delivered, failed, or pending
    /// again at `next_attempt_at`. Nothing is recorded when the delivery is gone.
    async fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StorageResult<()>;
    /// Makes a new pending delivery, due at `now`, of the subscription's finished (delivered or
    /// failed) delivery `id`: the same event, content type and body, with no attempts yet.
    async fn redeliver(
        &self,
        webhook_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> StorageResult<Redelivery>;
    /// Deletes up to `limit` of the oldest finished (delivered or failed) deliveries made before
    /// `created_before`, with their attempts; how many. Pending ones stay.
    async fn delete_finished_deliveries(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<u64>;
    /// A subscription's deliveries, newest first, each with its attempts in order.
    async fn deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> StorageResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>>;
}
