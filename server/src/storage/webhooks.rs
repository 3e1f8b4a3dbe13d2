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
    /// No deliveries are made for events while it is set, and pending ones wait.
    pub disabled: bool,
}

/// What changing a subscription changes: each field given; the rest is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub format: Option<String>,
    /// A new signing secret, sealed: (nonce, ciphertext).
    pub secret: Option<(Vec<u8>, Vec<u8>)>,
    pub disabled: Option<bool>,
}

/// The most of a receiver's answer kept per attempt.
pub const MAX_RESPONSE_BODY: usize = 4096;

/// The start of an answer's body as kept: text (invalid UTF-8 replaced) of at most
/// [`MAX_RESPONSE_BODY`] bytes, cut at a character, and whether anything was cut.
pub fn response_excerpt(body: &[u8]) -> (String, bool) {
    let mut prefix = &body[..body.len().min(MAX_RESPONSE_BODY)];
    // A character the limit cuts in two is left out, not replaced.
    if let Err(err) = std::str::from_utf8(prefix)
        && err.error_len().is_none()
    {
        prefix = &prefix[..err.valid_up_to()];
    }
    let text = String::from_utf8_lossy(prefix);
    // Replacements are longer than the bytes they replace.
    let mut end = text.len().min(MAX_RESPONSE_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = body.len() > prefix.len() || end < text.len();
    (text[..end].to_owned(), cut)
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
    /// The start of the answer's body, as text: at most [`MAX_RESPONSE_BODY`] bytes.
    pub response_body: Option<String>,
    /// Whether the body was longer than what is kept.
    pub response_truncated: bool,
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
    /// Changes the fields of a subscription that `change` gives; the subscription as changed,
    /// or `None` when there is none. Enabling a disabled one starts it after the newest event,
    /// as a new one: events made while it was disabled are not delivered.
    async fn change_webhook(
        &self,
        namespace: &str,
        name: &str,
        change: &WebhookChange,
    ) -> StorageResult<Option<WebhookRecord>>;
    /// Deletes a subscription with its deliveries; false when there was none.
    async fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool>;

    /// The last event the dispatcher has read, if it ever has.
    async fn webhook_cursor(&self) -> StorageResult<Option<i64>>;
    /// Adds deliveries (pending, due now; one already made for the same subscription, event
    /// and name is kept as it is) and moves the cursor forward to `cursor`, in one transaction.
    async fn add_deliveries(&self, deliveries: &[NewDelivery], cursor: i64) -> StorageResult<()>;
    /// Adds a delivery made by hand from no log entry (a test event, `event_id` 0), pending and
    /// due at `now`, behind the subscription's older pending deliveries; answers with it.
    async fn add_test_delivery(
        &self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<DeliveryRecord>;
    /// Each enabled subscription's oldest pending delivery, when it is due at `now`, oldest
    /// first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<DeliveryRecord>>;
    /// When the next of the enabled subscriptions' oldest pending deliveries is due.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_are_kept_to_4_kib_of_text_cut_at_a_character() {
        assert_eq!(response_excerpt(b"ok"), ("ok".to_owned(), false));
        let exact = vec![b'a'; MAX_RESPONSE_BODY];
        assert_eq!(response_excerpt(&exact).0.len(), MAX_RESPONSE_BODY);
        assert!(!response_excerpt(&exact).1);
        let long = vec![b'a'; MAX_RESPONSE_BODY + 1];
        assert_eq!(
            response_excerpt(&long),
            ("a".repeat(MAX_RESPONSE_BODY), true)
        );
        // A two-byte character across the limit is left out whole.
        let mut split = vec![b'a'; MAX_RESPONSE_BODY - 1];
        split.extend_from_slice("é".as_bytes());
        let (text, cut) = response_excerpt(&split);
        assert_eq!((text.len(), cut), (MAX_RESPONSE_BODY - 1, true));
        // Bytes that are not UTF-8 are replaced, and the text stays within the limit.
        let (text, cut) = response_excerpt(&[0xff; MAX_RESPONSE_BODY]);
        assert!(text.len() <= MAX_RESPONSE_BODY && text.starts_with('\u{fffd}'));
        assert!(cut);
    }
}
