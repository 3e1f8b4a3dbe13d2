//! The webhook store's rules and rows, written once for every SQL backend (SQLite,
//! PostgreSQL): deliveries added from the log with the cursor in one step, once per
//! subscription, event and name ([`add_deliveries`]); an attempt recorded only while its
//! delivery exists ([`record_attempt`]); a finished delivery sent again as a new one
//! ([`redeliver`]). A backend implements [`WebhookTx`], the statements they need, on a
//! connection inside a transaction it began and commits. The rows are generic over the
//! database; `into_record` makes the record and holds the checks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, WebhookRecord,
};
use super::{StorageError, StorageResult};

/// A subscription as `webhooks` keeps it: the event names as a JSON array.
#[derive(sqlx::FromRow)]
pub(super) struct WebhookRow {
    id: i64,
    namespace: String,
    name: String,
    uid: String,
    url: String,
    events: String,
    format: String,
    secret_nonce: Vec<u8>,
    secret_ciphertext: Vec<u8>,
    since_event: i64,
    created_at: DateTime<Utc>,
}

pub(super) const WEBHOOK_COLUMNS: &str = "id, namespace, name, uid, url, events, format, \
     secret_nonce, secret_ciphertext, since_event, created_at";

impl WebhookRow {
    pub fn into_record(self) -> StorageResult<WebhookRecord> {
        let events = serde_json::from_str(&self.events).map_err(|err| {
            StorageError::Corrupt(format!(
                "events of webhook {}/{}: {err}",
                self.namespace, self.name
            ))
        })?;
        Ok(WebhookRecord {
            id: self.id,
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            url: self.url,
            events,
            format: self.format,
            secret_nonce: self.secret_nonce,
            secret_ciphertext: self.secret_ciphertext,
            since_event: self.since_event,
            created_at: self.created_at,
        })
    }
}

/// A delivery as `webhook_deliveries` keeps it: its state as text, its due time as the
/// backend keeps times that must compare (`Due`).
#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow<Due> {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    event: String,
    content_type: String,
    body: Vec<u8>,
    state: String,
    attempts: i64,
    next_attempt_at: Option<Due>,
    created_at: DateTime<Utc>,
    redelivery_of: Option<i64>,
}

/// The columns of [`DeliveryRow`], of `webhook_deliveries d`.
pub(super) const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, d.event, \
     d.content_type, d.body, d.state, d.attempts, d.next_attempt_at, d.created_at, \
     d.redelivery_of";

/// The subscriptions' oldest pending deliveries (one a subscription), as table `h` of ids
/// joined to `webhook_deliveries d`.
pub(super) const HEADS: &str = "(SELECT min(id) AS id FROM webhook_deliveries \
     WHERE state = 'pending' GROUP BY webhook_id) h JOIN webhook_deliveries d ON d.id = h.id";

impl<Due> DeliveryRow<Due> {
    /// The record, its due time read by `due`.
    pub fn into_record(
        self,
        due: impl Fn(Due) -> StorageResult<DateTime<Utc>>,
    ) -> StorageResult<DeliveryRecord> {
        let id = self.id;
        Ok(DeliveryRecord {
            id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event: self.event,
            content_type: self.content_type,
            body: self.body,
            state: delivery_state(id, &self.state)?,
            attempts: u32::try_from(self.attempts).map_err(|_| {
                StorageError::Corrupt(format!("delivery {id}: {} attempts", self.attempts))
            })?,
            next_attempt_at: self.next_attempt_at.map(due).transpose()?,
            created_at: self.created_at,
            redelivery_of: self.redelivery_of,
        })
    }
}

fn delivery_state(id: i64, state: &str) -> StorageResult<DeliveryState> {
    DeliveryState::parse(state)
        .ok_or_else(|| StorageError::Corrupt(format!("delivery {id} is {state:?}")))
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    delivery_id: i64,
    number: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    attempted_at: DateTime<Utc>,
}

pub(super) const ATTEMPT_COLUMNS: &str =
    "delivery_id, number, status_code, error, duration_ms, attempted_at";

impl AttemptRow {
    pub fn into_record(self) -> StorageResult<AttemptRecord> {
        let delivery_id = self.delivery_id;
        let corrupt = || StorageError::Corrupt(format!("an attempt at delivery {delivery_id}"));
        Ok(AttemptRecord {
            delivery_id,
            number: u32::try_from(self.number).map_err(|_| corrupt())?,
            status_code: self
                .status_code
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt())?,
            error: self.error,
            duration_ms: u64::try_from(self.duration_ms).map_err(|_| corrupt())?,
            attempted_at: self.attempted_at,
        })
    }
}

/// Each delivery with its attempts, in the deliveries' order; `attempts` by delivery.
pub(super) fn with_attempts(
    deliveries: Vec<DeliveryRecord>,
    attempts: Vec<AttemptRow>,
) -> StorageResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
    let mut attempts = attempts
        .into_iter()
        .map(AttemptRow::into_record)
        .collect::<StorageResult<Vec<_>>>()?;
    Ok(deliveries
        .into_iter()
        .map(|delivery| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut attempts)
                .into_iter()
                .partition(|a| a.delivery_id == delivery.id);
            attempts = rest;
            (delivery, mine)
        })
        .collect())
}

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
        tx.insert_attempt(attempt).await?;
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
    match delivery_state(id, &state)? {
        DeliveryState::Pending => Ok(Redelivery::Pending),
        DeliveryState::Delivered | DeliveryState::Failed => {
            Ok(Redelivery::Made(tx.copy_delivery(id, now).await?))
        }
    }
}
