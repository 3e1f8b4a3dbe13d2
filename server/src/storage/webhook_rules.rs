//! The webhook store's rules, written once for every SQL backend (SQLite, PostgreSQL):
//! deliveries added from the log with the cursor in one step, once per
//! subscription, event and name ([`add_deliveries`]); an attempt recorded only while its
//! delivery exists ([`record_attempt`]); a finished delivery sent again as a new one
//! ([`redeliver`]). A backend implements [`WebhookTx`], the statements they need, on a
//! connection inside a transaction it began and commits; the rows are `storage/rows.rs`'.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, response_excerpt,
};
use super::{StorageError, StorageResult};

/// The statements the webhook rules need, inside one transaction.
#[async_trait]
pub(super) trait WebhookTx: Send {
    /// Adds a delivery from the log, pending with no attempts, due and made at `now`, unless
    /// one was made for the same subscription, event and name already.
    async fn insert_delivery(
        &mut self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Moves the dispatcher's cursor to `event_id`, unless it is further on already.
    async fn advance_cursor(&mut self, event_id: i64) -> StorageResult<()>;
    /// Sets a delivery's state and due time, and its attempts to at least `attempts`; false
    /// when it is gone.
    async fn update_delivery(
        &mut self,
        id: i64,
        state: DeliveryState,
        attempts: u32,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StorageResult<bool>;
    /// Adds an attempt, unless one of that number is recorded already.
    async fn insert_attempt(&mut self, attempt: &AttemptRecord) -> StorageResult<()>;
    /// The state of the subscription's delivery `id`, which no other transaction may change
    /// until this one ends.
    async fn delivery_state(&mut self, webhook_id: i64, id: i64) -> StorageResult<Option<String>>;
    /// Adds a pending delivery due and made at `now` with no attempts, of delivery `id`'s
    /// subscription, event, content type and body, as its redelivery.
    async fn copy_delivery(&mut self, id: i64, now: DateTime<Utc>)
    -> StorageResult<DeliveryRecord>;
}

/// Adds deliveries (pending, due `now`; one already made for the same subscription, event and
/// name is kept as it is) and moves the cursor forward to `cursor`.
pub(super) async fn add_deliveries(
    tx: &mut (impl WebhookTx + ?Sized),
    deliveries: &[NewDelivery],
    cursor: i64,
    now: DateTime<Utc>,
) -> StorageResult<()> {
    for delivery in deliveries {
        tx.insert_delivery(delivery, now).await?;
    }
    tx.advance_cursor(cursor).await
}

/// Records an attempt and where it leaves the delivery; nothing when the delivery is gone
/// (deleted with its subscription while it was being sent).
pub(super) async fn record_attempt(
    tx: &mut (impl WebhookTx + ?Sized),
    attempt: &AttemptRecord,
    state: DeliveryState,
    next_attempt_at: Option<DateTime<Utc>>,
) -> StorageResult<()> {
    if tx
        .update_delivery(attempt.delivery_id, state, attempt.number, next_attempt_at)
        .await?
    {
        // What a receiver answered stays bounded, whoever recorded it.
        let mut bounded = attempt.clone();
        if let Some(body) = &attempt.response_body {
            let (kept, cut) = response_excerpt(body.as_bytes());
            bounded.response_body = Some(kept);
            bounded.response_truncated |= cut;
        }
        tx.insert_attempt(&bounded).await?;
    }
    Ok(())
}

/// Makes a new pending delivery, due at `now`, of the subscription's finished delivery `id`.
pub(super) async fn redeliver(
    tx: &mut (impl WebhookTx + ?Sized),
    webhook_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> StorageResult<Redelivery> {
    let Some(state) = tx.delivery_state(webhook_id, id).await? else {
        return Ok(Redelivery::NotFound);
    };
    match DeliveryState::parse(&state) {
        Some(DeliveryState::Pending) => Ok(Redelivery::Pending),
        Some(DeliveryState::Delivered | DeliveryState::Failed) => {
            Ok(Redelivery::Made(tx.copy_delivery(id, now).await?))
        }
        None => Err(StorageError::Corrupt(format!("delivery {id} is {state:?}"))),
    }
}
