//! [`WebhookStore`] on PostgreSQL. The rules are `storage/webhook_rules.rs`' (as on SQLite);
//! due times are `timestamptz`. What SQLite gets from having one writer is made explicit: a
//! subscription is stored holding the image stream writers' lock (so it reads the newest
//! event with none in flight), and a delivery about to be copied is locked.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{PostgresDatabase, lock_stream_writes};
use crate::storage::StorageResult;
use crate::storage::rows::{
    ATTEMPT_COLUMNS, AttemptRow, DELIVERY_COLUMNS, DeliveryRow, HEADS, WEBHOOK_COLUMNS, WebhookRow,
    json_array, with_attempts,
};
use crate::storage::webhook_rules::{self, WebhookTx};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, WebhookChange,
    WebhookRecord, WebhookStore,
};

/// A delivery as read here: its due time a `timestamptz`.
type PgDeliveryRow = DeliveryRow<DateTime<Utc>>;

/// The webhook rules' statements on PostgreSQL, inside a transaction.
#[async_trait]
impl WebhookTx for PgConnection {
    async fn insert_delivery(
        &mut self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)
             ON CONFLICT (webhook_id, event_id, event)
                 WHERE redelivery_of IS NULL AND event_id > 0
             DO NOTHING",
        )
        .bind(delivery.webhook_id)
        .bind(delivery.event_id)
        .bind(&delivery.event)
        .bind(&delivery.content_type)
        .bind(&delivery.body)
        .bind(now)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn advance_cursor(&mut self, event_id: i64) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO webhook_cursor (id, event_id) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE
             SET event_id = GREATEST(webhook_cursor.event_id, excluded.event_id)",
        )
        .bind(event_id)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn update_delivery(
        &mut self,
        id: i64,
        state: DeliveryState,
        attempts: u32,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StorageResult<bool> {
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = GREATEST(attempts, $2),
                 next_attempt_at = $3
             WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(i64::from(attempts))
        .bind(next_attempt_at)
        .bind(id)
        .execute(self)
        .await?
        .rows_affected()
            > 0)
    }

    async fn insert_attempt(&mut self, attempt: &AttemptRecord) -> StorageResult<()> {
        let duration = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, number, status_code, error, duration_ms,
                 attempted_at, response_body, response_truncated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (delivery_id, number) DO NOTHING",
        )
        .bind(attempt.delivery_id)
        .bind(i64::from(attempt.number))
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.error)
        .bind(duration)
        .bind(attempt.attempted_at)
        .bind(&attempt.response_body)
        .bind(attempt.response_truncated)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn delivery_state(&mut self, webhook_id: i64, id: i64) -> StorageResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT state FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(webhook_id)
        .fetch_optional(self)
        .await?)
    }

    async fn copy_delivery(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
    ) -> StorageResult<DeliveryRecord> {
        let row: PgDeliveryRow = sqlx::query_as(&format!(
            "INSERT INTO webhook_deliveries AS d (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at, redelivery_of)
             SELECT webhook_id, event_id, event, content_type, body, 'pending', 0, $1, $1, id
             FROM webhook_deliveries WHERE id = $2
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_one(self)
        .await?;
        row.into_record()
    }
}

#[async_trait]
impl WebhookStore for PostgresDatabase {
    async fn put_webhook(&self, record: &WebhookRecord) -> StorageResult<bool> {
        // Holding the image stream writers' lock, no event is in flight: the newest event read
        // is the last before the subscription, and every later one commits after it, so the
        // dispatcher finds the subscription when it reads that event.
        let mut tx = self.begin().await?;
        lock_stream_writes(&mut tx).await?;
        let stored = sqlx::query(
            "INSERT INTO webhooks (namespace, name, uid, url, events, format, secret_nonce,
                 secret_ciphertext, since_event, created_at, disabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT coalesce(max(id), 0) FROM events),
                 $9, $10)
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
        .bind(record.disabled)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(stored)
    }

    async fn webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRecord>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = $1 ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(WebhookRow::into_record).collect()
    }

    async fn webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRecord>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = $1 AND name = $2"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn webhook_by_id(&self, id: i64) -> StorageResult<Option<WebhookRecord>> {
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn change_webhook(
        &self,
        namespace: &str,
        name: &str,
        change: &WebhookChange,
    ) -> StorageResult<Option<WebhookRecord>> {
        // Enabling reads the newest event as storing a subscription does: under the image
        // stream writers' lock, so no event in flight is skipped or sent. Every right-hand side
        // reads the row as it was.
        let events = change.events.as_deref().map(json_array).transpose()?;
        let (nonce, ciphertext) = change.secret.clone().unzip();
        let mut tx = self.begin().await?;
        if change.disabled == Some(false) {
            lock_stream_writes(&mut tx).await?;
        }
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "UPDATE webhooks SET url = coalesce($1, url), events = coalesce($2, events),
                 format = coalesce($3, format), secret_nonce = coalesce($4, secret_nonce),
                 secret_ciphertext = coalesce($5, secret_ciphertext),
                 since_event = CASE WHEN disabled AND $6 IS FALSE
                     THEN (SELECT coalesce(max(id), 0) FROM events) ELSE since_event END,
                 disabled = coalesce($6, disabled)
             WHERE namespace = $7 AND name = $8
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(&change.url)
        .bind(events)
        .bind(&change.format)
        .bind(nonce)
        .bind(ciphertext)
        .bind(change.disabled)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn add_test_delivery(
        &self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<DeliveryRecord> {
        let row: PgDeliveryRow = sqlx::query_as(&format!(
            "INSERT INTO webhook_deliveries AS d (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at)
             VALUES ($1, 0, $2, $3, $4, 'pending', 0, $5, $5)
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(delivery.webhook_id)
        .bind(&delivery.event)
        .bind(&delivery.content_type)
        .bind(&delivery.body)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        row.into_record()
    }

    async fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("DELETE FROM webhooks WHERE namespace = $1 AND name = $2")
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
        let mut tx = self.begin().await?;
        webhook_rules::add_deliveries(&mut *tx, deliveries, cursor, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<DeliveryRecord>> {
        let rows: Vec<PgDeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {HEADS} WHERE d.next_attempt_at <= $1
             ORDER BY d.id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    async fn delete_finished_deliveries(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN
                 (SELECT id FROM webhook_deliveries
                  WHERE state IN ('delivered', 'failed') AND created_at < $1
                  ORDER BY id LIMIT $2)",
        )
        .bind(created_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>> {
        Ok(
            sqlx::query_scalar(&format!("SELECT min(d.next_attempt_at) FROM {HEADS}"))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn claim_delivery(
        &self,
        id: i64,
        expected: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool> {
        // One statement: a second claimer waits for the first and then finds the due time
        // moved.
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1
             WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3",
        )
        .bind(until)
        .bind(id)
        .bind(expected)
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
        let mut tx = self.begin().await?;
        webhook_rules::record_attempt(&mut *tx, attempt, state, next_attempt_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeliver(
        &self,
        webhook_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> StorageResult<Redelivery> {
        let mut tx = self.begin().await?;
        let redelivery = webhook_rules::redeliver(&mut *tx, webhook_id, id, now).await?;
        tx.commit().await?;
        Ok(redelivery)
    }

    async fn deliveries(
        &self,
        webhook_id: i64,
        limit: u32,
    ) -> StorageResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<PgDeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1
             ORDER BY d.id DESC LIMIT $2"
        ))
        .bind(webhook_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let attempts: Vec<AttemptRow> = sqlx::query_as(&format!(
            "SELECT {ATTEMPT_COLUMNS}
             FROM webhook_attempts WHERE delivery_id = ANY($1)
             ORDER BY delivery_id, number"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        with_attempts(rows, attempts)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::storage::postgres::PostgresSettings;
    use crate::storage::stream_rules::{NewEvent, StreamTx};
    use crate::storage::test_infra::postgres;
    use crate::storage::{EventType, ImageStreamStore, Labels};

    #[tokio::test]
    async fn a_subscription_made_while_an_event_is_appended_starts_after_that_event() {
        let database = Arc::new(
            PostgresDatabase::open(&postgres().database(), &PostgresSettings::default())
                .await
                .unwrap(),
        );
        database
            .create_namespace("team", &Labels::new(), &Labels::new())
            .await
            .unwrap()
            .unwrap();
        // An image stream write in flight, its event appended and not yet committed.
        let mut writing = database.begin_stream_write().await.unwrap();
        let in_flight = writing
            .append_event(&NewEvent::namespace(EventType::Modified, "team", "test"))
            .await
            .unwrap();
        let record = WebhookRecord {
            id: 0,
            namespace: "team".into(),
            name: "ci".into(),
            uid: "uid-ci".into(),
            url: "http://127.0.0.1:9/ci".into(),
            events: Vec::new(),
            format: "distribution".into(),
            secret_nonce: vec![1; 24],
            secret_ciphertext: b"sealed".to_vec(),
            since_event: 0,
            created_at: Utc::now(),
            disabled: false,
        };
        let storing = tokio::spawn({
            let database = database.clone();
            async move { database.put_webhook(&record).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !storing.is_finished(),
            "the subscription waits for the write"
        );
        writing.commit().await.unwrap();
        assert!(storing.await.unwrap().unwrap());
        let stored = database.webhook("team", "ci").await.unwrap().unwrap();
        // The dispatcher, reading that event once it is committed, need not send it here.
        assert_eq!(stored.since_event, in_flight);
    }
}
