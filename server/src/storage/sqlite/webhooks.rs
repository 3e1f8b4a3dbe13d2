//! [`WebhookStore`] on SQLite. Due times are kept in milliseconds since 1970 so that they compare
//! as numbers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{SqliteMetadata, json_array};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, WebhookRecord,
    WebhookStore,
};
use crate::storage::{StorageError, StorageResult};

/// A subscription as `webhooks` keeps it: the event names as a JSON array.
#[derive(sqlx::FromRow)]
struct WebhookRow {
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

const WEBHOOK_COLUMNS: &str = "id, namespace, name, uid, url, events, format, secret_nonce, \
     secret_ciphertext, since_event, created_at";

impl WebhookRow {
    fn into_record(self) -> StorageResult<WebhookRecord> {
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

/// A delivery as `webhook_deliveries` keeps it: its state as text, its due time in
/// milliseconds.
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    event: String,
    content_type: String,
    body: Vec<u8>,
    state: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    created_at: DateTime<Utc>,
    redelivery_of: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, d.event, d.content_type, d.body, \
     d.state, d.attempts, d.next_attempt_at, d.created_at, d.redelivery_of";

fn millis_to_time(millis: i64) -> StorageResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StorageError::Corrupt(format!("time {millis} ms is out of range")))
}

impl DeliveryRow {
    fn into_record(self) -> StorageResult<DeliveryRecord> {
        let id = self.id;
        Ok(DeliveryRecord {
            id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event: self.event,
            content_type: self.content_type,
            body: self.body,
            state: DeliveryState::parse(&self.state).ok_or_else(|| {
                StorageError::Corrupt(format!("delivery {id} is {:?}", self.state))
            })?,
            attempts: u32::try_from(self.attempts).map_err(|_| {
                StorageError::Corrupt(format!("delivery {id}: {} attempts", self.attempts))
            })?,
            next_attempt_at: self.next_attempt_at.map(millis_to_time).transpose()?,
            created_at: self.created_at,
            redelivery_of: self.redelivery_of,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: i64,
    number: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    attempted_at: DateTime<Utc>,
}

impl AttemptRow {
    fn into_record(self) -> StorageResult<AttemptRecord> {
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

/// The subscriptions' oldest pending deliveries (one a subscription), as table `h` of ids.
const HEADS: &str = "(SELECT min(id) AS id FROM webhook_deliveries WHERE state = 'pending'
      GROUP BY webhook_id) h JOIN webhook_deliveries d ON d.id = h.id";

#[async_trait]
impl WebhookStore for SqliteMetadata {
    async fn put_webhook(&self, record: &WebhookRecord) -> StorageResult<bool> {
        // The newest event is read in the insert itself: writes are serialised, so every later
        // event commits after the subscription and the dispatcher finds it.
        Ok(sqlx::query(
            "INSERT INTO webhooks (namespace, name, uid, url, events, format, secret_nonce,
                 secret_ciphertext, since_event, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(id), 0) FROM events), ?)
             ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(&record.namespace)
        .bind(&record.name)
        .bind(&record.uid)
        .bind(&record.url)
        .bind(json_array(&record.events)?)
        .bind(&record.format)
        .bind(&record.secret_nonce)
        .bind(&record.secret_ciphertext)
        .bind(record.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRecord>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = ? ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(WebhookRow::into_record).collect()
    }

    async fn webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRecord>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = ? AND name = ?"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn webhook_by_id(&self, id: i64) -> StorageResult<Option<WebhookRecord>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("DELETE FROM webhooks WHERE namespace = ? AND name = ?")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn webhook_cursor(&self) -> StorageResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT event_id FROM webhook_cursor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn add_deliveries(&self, deliveries: &[NewDelivery], cursor: i64) -> StorageResult<()> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        for delivery in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                     state, attempts, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                 ON CONFLICT (webhook_id, event_id, event) WHERE redelivery_of IS NULL
                 DO NOTHING",
            )
            .bind(delivery.webhook_id)
            .bind(delivery.event_id)
            .bind(&delivery.event)
            .bind(&delivery.content_type)
            .bind(&delivery.body)
            .bind(now.timestamp_millis())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO webhook_cursor (id, event_id) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET event_id = max(event_id, excluded.event_id)",
        )
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<DeliveryRecord>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {HEADS} WHERE d.next_attempt_at <= ?
             ORDER BY d.id LIMIT ?"
        ))
        .bind(now.timestamp_millis())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar(&format!("SELECT min(d.next_attempt_at) FROM {HEADS}"))
                .fetch_one(&self.pool)
                .await?;
        next.map(millis_to_time).transpose()
    }

    async fn claim_delivery(
        &self,
        id: i64,
        expected: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool> {
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = ?
             WHERE id = ? AND state = 'pending' AND next_attempt_at = ?",
        )
        .bind(until.timestamp_millis())
        .bind(id)
        .bind(expected.timestamp_millis())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn record_attempt(
        &self,
        attempt: &AttemptRecord,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET state = ?, attempts = max(attempts, ?),
                 next_attempt_at = ?
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(attempt.number)
        .bind(next_attempt_at.map(|t| t.timestamp_millis()))
        .bind(attempt.delivery_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            // Deleted with its subscription while it was being sent.
            return Ok(());
        }
        let duration = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, number, status_code, error, duration_ms,
                 attempted_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING",
        )
        .bind(attempt.delivery_id)
        .bind(attempt.number)
        .bind(attempt.status_code)
        .bind(&attempt.error)
        .bind(duration)
        .bind(attempt.attempted_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeliver(
        &self,
        webhook_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> StorageResult<Redelivery> {
        // Read and copied in one write transaction: the state cannot change in between.
        let mut tx = self.begin_write().await?;
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM webhook_deliveries WHERE id = ? AND webhook_id = ?",
        )
        .bind(id)
        .bind(webhook_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = state else {
            return Ok(Redelivery::NotFound);
        };
        match DeliveryState::parse(&state) {
            Some(DeliveryState::Pending) => return Ok(Redelivery::Pending),
            Some(DeliveryState::Delivered | DeliveryState::Failed) => {}
            None => return Err(StorageError::Corrupt(format!("delivery {id} is {state:?}"))),
        }
        let new_id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at, redelivery_of)
             SELECT webhook_id, event_id, event, content_type, body, 'pending', 0, ?, ?, id
             FROM webhook_deliveries WHERE id = ?
             RETURNING id",
        )
        .bind(now.timestamp_millis())
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let row: DeliveryRow = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?"
        ))
        .bind(new_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.into_record().map(Redelivery::Made)
    }

    async fn deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> StorageResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = ?
             ORDER BY d.id DESC LIMIT ?"
        ))
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        let deliveries = rows
            .into_iter()
            .map(DeliveryRow::into_record)
            .collect::<StorageResult<Vec<_>>>()?;
        let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT delivery_id, number, status_code, error, duration_ms, attempted_at
             FROM webhook_attempts WHERE delivery_id IN (SELECT value FROM json_each(?))
             ORDER BY delivery_id, number",
        )
        .bind(json_array(&ids)?)
        .fetch_all(&mut *conn)
        .await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ImageStreamStore, Labels};

    /// A store with namespaces `team` and `other`.
    async fn store() -> (tempfile::TempDir, SqliteMetadata) {
        let (dir, store) = super::super::temp_store().await;
        for namespace in ["team", "other"] {
            store
                .create_namespace(namespace, &Labels::new(), &Labels::new())
                .await
                .unwrap()
                .unwrap();
        }
        (dir, store)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn webhook(namespace: &str, name: &str) -> WebhookRecord {
        WebhookRecord {
            id: 0,
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            url: format!("http://127.0.0.1:9/{name}"),
            events: vec!["push".into(), "imagestream".into()],
            format: "distribution".into(),
            secret_nonce: vec![1; 24],
            secret_ciphertext: b"sealed".to_vec(),
            since_event: 0,
            // Whole seconds: what is read back must equal what was written.
            created_at: at(0),
        }
    }

    fn delivery(webhook_id: i64, event_id: i64, event: &str) -> NewDelivery {
        NewDelivery {
            webhook_id,
            event_id,
            event: event.into(),
            content_type: "application/json".into(),
            body: format!("{{\"event\":{event_id}}}").into_bytes(),
        }
    }

    async fn id_of(store: &SqliteMetadata, namespace: &str, name: &str) -> i64 {
        store.webhook(namespace, name).await.unwrap().unwrap().id
    }

    fn attempt(delivery_id: i64, number: u32, status: u16) -> AttemptRecord {
        AttemptRecord {
            delivery_id,
            number,
            status_code: Some(status),
            error: None,
            duration_ms: 12,
            attempted_at: at(i64::from(number)),
        }
    }

    #[tokio::test]
    async fn webhooks_are_kept_per_namespace_by_name_and_go_with_it() {
        let (_dir, store) = store().await;
        assert!(store.put_webhook(&webhook("team", "ci")).await.unwrap());
        assert!(store.put_webhook(&webhook("team", "audit")).await.unwrap());
        assert!(store.put_webhook(&webhook("other", "ci")).await.unwrap());
        let mut again = webhook("team", "ci");
        again.url = "http://elsewhere/".into();
        assert!(!store.put_webhook(&again).await.unwrap());
        assert!(store.put_webhook(&webhook("ghost", "ci")).await.is_err());

        let listed = store.webhooks("team").await.unwrap();
        assert_eq!(
            listed.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
            ["audit", "ci"]
        );
        let ci = store.webhook("team", "ci").await.unwrap().unwrap();
        // Subscriptions are for the events after them.
        assert_eq!(ci.since_event, store.latest_event_id().await.unwrap());
        assert_eq!(
            ci,
            WebhookRecord {
                id: ci.id,
                since_event: ci.since_event,
                ..webhook("team", "ci")
            }
        );
        assert_eq!(store.webhook_by_id(ci.id).await.unwrap(), Some(ci.clone()));

        store
            .add_deliveries(&[delivery(ci.id, 8, "push")], 8)
            .await
            .unwrap();
        assert!(store.delete_webhook("team", "ci").await.unwrap());
        assert!(!store.delete_webhook("team", "ci").await.unwrap());
        assert_eq!(store.webhook_by_id(ci.id).await.unwrap(), None);
        assert!(
            store
                .due_deliveries(Utc::now(), 10)
                .await
                .unwrap()
                .is_empty()
        );

        assert!(store.delete_namespace("other").await.unwrap());
        assert!(store.webhooks("other").await.unwrap().is_empty());
        assert_eq!(store.webhooks("team").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn deliveries_and_the_cursor_move_together_once_per_event() {
        let (_dir, store) = store().await;
        assert_eq!(store.webhook_cursor().await.unwrap(), None);
        store.put_webhook(&webhook("team", "ci")).await.unwrap();
        let ci = id_of(&store, "team", "ci").await;
        store
            .add_deliveries(
                &[delivery(ci, 8, "push"), delivery(ci, 8, "imagestream")],
                8,
            )
            .await
            .unwrap();
        // The same event again (a second replica, or a restart before the cursor moved).
        store
            .add_deliveries(&[delivery(ci, 8, "push")], 8)
            .await
            .unwrap();
        // The cursor never goes back.
        store.add_deliveries(&[], 5).await.unwrap();
        assert_eq!(store.webhook_cursor().await.unwrap(), Some(8));
        let all = store.deliveries(ci, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0.event, "imagestream", "newest first");
        assert_eq!(all[0].0.state, DeliveryState::Pending);
        assert!(all.iter().all(|(_, attempts)| attempts.is_empty()));
        assert!(
            store
                .add_deliveries(&[delivery(999, 9, "push")], 9)
                .await
                .is_err()
        );
        assert_eq!(store.webhook_cursor().await.unwrap(), Some(8));
    }

    #[tokio::test]
    async fn each_subscription_sends_its_oldest_pending_delivery_first() {
        let (_dir, store) = store().await;
        store.put_webhook(&webhook("team", "slow")).await.unwrap();
        store.put_webhook(&webhook("team", "fast")).await.unwrap();
        let slow = id_of(&store, "team", "slow").await;
        let fast = id_of(&store, "team", "fast").await;
        store
            .add_deliveries(
                &[
                    delivery(slow, 8, "push"),
                    delivery(fast, 8, "push"),
                    delivery(slow, 9, "push"),
                    delivery(fast, 9, "push"),
                ],
                9,
            )
            .await
            .unwrap();
        let later = Utc::now() + chrono::Duration::seconds(60);
        let due = store.due_deliveries(later, 10).await.unwrap();
        assert_eq!(
            due.iter()
                .map(|d| (d.webhook_id, d.event_id))
                .collect::<Vec<_>>(),
            [(slow, 8), (fast, 8)]
        );
        let (slow_first, fast_first) = (due[0].clone(), due[1].clone());
        let expected = slow_first.next_attempt_at.unwrap();

        // A sender claims one; a second claim of the same due time fails.
        assert!(
            store
                .claim_delivery(slow_first.id, expected, later)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_delivery(slow_first.id, expected, later)
                .await
                .unwrap()
        );
        let now = Utc::now();
        assert_eq!(
            store
                .due_deliveries(now, 10)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>(),
            [fast_first.id]
        );

        // The slow one fails and waits; the fast one is delivered and its next is due. Order
        // holds: the slow subscription's second delivery waits behind its first.
        let retry_at = now + chrono::Duration::seconds(30);
        store
            .record_attempt(
                &attempt(slow_first.id, 1, 500),
                DeliveryState::Pending,
                Some(retry_at),
            )
            .await
            .unwrap();
        store
            .record_attempt(
                &attempt(fast_first.id, 1, 204),
                DeliveryState::Delivered,
                None,
            )
            .await
            .unwrap();
        let due = store.due_deliveries(now, 10).await.unwrap();
        assert_eq!(
            due.iter()
                .map(|d| (d.webhook_id, d.event_id))
                .collect::<Vec<_>>(),
            [(fast, 9)]
        );
        assert_eq!(
            store
                .next_due()
                .await
                .unwrap()
                .map(|t| t.timestamp_millis()),
            Some(due[0].next_attempt_at.unwrap().timestamp_millis())
        );
        store
            .record_attempt(&attempt(due[0].id, 1, 200), DeliveryState::Delivered, None)
            .await
            .unwrap();
        assert_eq!(
            store
                .next_due()
                .await
                .unwrap()
                .map(|t| t.timestamp_millis()),
            Some(retry_at.timestamp_millis())
        );

        // A second failure, then the last attempt gives up: the next delivery's turn.
        store
            .record_attempt(&attempt(slow_first.id, 2, 502), DeliveryState::Failed, None)
            .await
            .unwrap();
        let due = store.due_deliveries(later, 10).await.unwrap();
        assert_eq!(
            due.iter()
                .map(|d| (d.webhook_id, d.event_id))
                .collect::<Vec<_>>(),
            [(slow, 9)]
        );
        let log = store.deliveries(slow, 10).await.unwrap();
        assert_eq!(log[0].0.event_id, 9);
        let (failed, attempts) = &log[1];
        assert_eq!(failed.state, DeliveryState::Failed);
        assert_eq!(failed.attempts, 2);
        assert_eq!(failed.next_attempt_at, None);
        assert_eq!(
            attempts
                .iter()
                .map(|a| (a.number, a.status_code))
                .collect::<Vec<_>>(),
            [(1, Some(500)), (2, Some(502))]
        );
        assert_eq!(attempts[0], attempt(slow_first.id, 1, 500));
        assert_eq!(store.deliveries(slow, 1).await.unwrap().len(), 1);

        // An attempt at a delivery deleted meanwhile is dropped quietly.
        store.delete_webhook("team", "slow").await.unwrap();
        store
            .record_attempt(
                &attempt(slow_first.id, 3, 200),
                DeliveryState::Delivered,
                None,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_finished_delivery_is_sent_again_as_a_new_one() {
        let (_dir, store) = store().await;
        store.put_webhook(&webhook("team", "ci")).await.unwrap();
        store.put_webhook(&webhook("team", "cd")).await.unwrap();
        let ci = id_of(&store, "team", "ci").await;
        let cd = id_of(&store, "team", "cd").await;
        store
            .add_deliveries(&[delivery(ci, 8, "push")], 8)
            .await
            .unwrap();
        let first = store.deliveries(ci, 10).await.unwrap()[0].0.clone();
        let now = at(100);

        // Pending: it goes out anyway. Another subscription's, or none: not found.
        assert_eq!(
            store.redeliver(ci, first.id, now).await.unwrap(),
            Redelivery::Pending
        );
        assert_eq!(
            store.redeliver(cd, first.id, now).await.unwrap(),
            Redelivery::NotFound
        );
        assert_eq!(
            store.redeliver(ci, first.id + 100, now).await.unwrap(),
            Redelivery::NotFound
        );

        store
            .record_attempt(&attempt(first.id, 1, 500), DeliveryState::Failed, None)
            .await
            .unwrap();
        let Redelivery::Made(again) = store.redeliver(ci, first.id, now).await.unwrap() else {
            panic!("not made");
        };
        assert!(again.id > first.id);
        assert_eq!(
            again,
            DeliveryRecord {
                id: again.id,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: Some(now),
                created_at: now,
                redelivery_of: Some(first.id),
                ..first.clone()
            }
        );
        assert_eq!(again.body, first.body);
        // Due now, as any new delivery; the log's own dedup does not swallow it, nor does it
        // stop the log's.
        assert_eq!(
            store
                .due_deliveries(at(100), 10)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>(),
            [again.id]
        );
        store
            .add_deliveries(&[delivery(ci, 8, "push"), delivery(ci, 9, "push")], 9)
            .await
            .unwrap();
        let log = store.deliveries(ci, 10).await.unwrap();
        assert_eq!(
            log.iter()
                .map(|(d, a)| (d.event_id, d.state, d.redelivery_of, a.len()))
                .collect::<Vec<_>>(),
            [
                (9, DeliveryState::Pending, None, 0),
                (8, DeliveryState::Pending, Some(first.id), 0),
                (8, DeliveryState::Failed, None, 1),
            ]
        );

        // Delivered ones too, and a redelivery itself once it is finished.
        store
            .record_attempt(&attempt(again.id, 1, 204), DeliveryState::Delivered, None)
            .await
            .unwrap();
        let Redelivery::Made(third) = store.redeliver(ci, again.id, now).await.unwrap() else {
            panic!("not made");
        };
        assert_eq!(third.redelivery_of, Some(again.id));
        assert_eq!(third.event_id, 8);
    }

    #[tokio::test]
    async fn deliveries_and_attempts_made_before_redeliveries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            // The schema as it was before redeliveries, with a delivery and an attempt.
            let pool = super::super::pool_at_migration(&path, 6).await;
            sqlx::query(
                "INSERT INTO namespaces (name, uid, resource_version, created_at)
                 VALUES ('team', 'u', 1, ?)",
            )
            .bind(at(0))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO webhooks (id, namespace, name, uid, url, events, format,
                     secret_nonce, secret_ciphertext, since_event, created_at)
                 VALUES (3, 'team', 'ci', 'u', 'http://127.0.0.1:9/', '[]', 'distribution',
                     x'01', x'02', 0, ?)",
            )
            .bind(at(0))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, content_type,
                     body, state, attempts, next_attempt_at, created_at)
                 VALUES (7, 3, 8, 'push', 'application/json', x'7b7d', 'failed', 1, NULL, ?)",
            )
            .bind(at(0))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, number, status_code, error,
                     duration_ms, attempted_at)
                 VALUES (7, 1, 500, NULL, 12, ?)",
            )
            .bind(at(1))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteMetadata::open(&path).await.unwrap();
        let log = store.deliveries(3, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        let (kept, attempts) = &log[0];
        assert_eq!(
            (kept.id, kept.state, kept.redelivery_of),
            (7, DeliveryState::Failed, None)
        );
        assert_eq!(kept.body, b"{}");
        assert_eq!(attempts.as_slice(), [attempt(7, 1, 500)]);
        // The attempts still go with their delivery, and the log's dedup still holds.
        store
            .add_deliveries(&[delivery(3, 8, "push")], 8)
            .await
            .unwrap();
        assert_eq!(store.deliveries(3, 10).await.unwrap().len(), 1);
        assert!(matches!(
            store.redeliver(3, 7, at(5)).await.unwrap(),
            Redelivery::Made(_)
        ));
        assert!(store.delete_webhook("team", "ci").await.unwrap());
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM webhook_deliveries) + (SELECT count(*) FROM webhook_attempts)",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(left, 0);
    }
}
