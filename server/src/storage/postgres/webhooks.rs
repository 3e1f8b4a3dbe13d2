//! [`WebhookStore`] on PostgreSQL: subscriptions, the deliveries made from the event log and
//! their attempts. Due times are timestamps; a claim compares the one it read, exactly.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresDatabase;
use crate::storage::rows::{
    AttemptRow, DELIVERY_COLUMNS, DeliveryRow, HEADS, WEBHOOK_COLUMNS, WebhookRow, json_array,
    with_attempts,
};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, WebhookRecord,
    WebhookStore,
};
use crate::storage::{StorageError, StorageResult};

/// A delivery row with its due time as PostgreSQL keeps it.
type Delivery = DeliveryRow<DateTime<Utc>>;

#[async_trait]
impl WebhookStore for PostgresDatabase {
    async fn put_webhook(&self, record: &WebhookRecord) -> StorageResult<bool> {
        // The newest event is read in the insert itself: events commit in id order, so every
        // id up to it has committed, and every later event is delivered.
        Ok(sqlx::query(
            "INSERT INTO webhooks (namespace, name, uid, url, events, format, secret_nonce,
                 secret_ciphertext, since_event, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT coalesce(max(id), 0) FROM events), $9)
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
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        for delivery in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                     state, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)
                 ON CONFLICT (webhook_id, event_id, event) WHERE redelivery_of IS NULL
                 DO NOTHING",
            )
            .bind(delivery.webhook_id)
            .bind(delivery.event_id)
            .bind(&delivery.event)
            .bind(&delivery.content_type)
            .bind(&delivery.body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO webhook_cursor (id, event_id) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE
             SET event_id = GREATEST(webhook_cursor.event_id, excluded.event_id)",
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
        let rows: Vec<Delivery> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {HEADS} WHERE d.next_attempt_at <= $1
             ORDER BY d.id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Delivery::into_record).collect()
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
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = GREATEST(attempts, $2),
                 next_attempt_at = $3
             WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(i64::from(attempt.number))
        .bind(next_attempt_at)
        .bind(attempt.delivery_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            // Deleted with its subscription while it was being sent.
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, number, status_code, error, duration_ms,
                 attempted_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, number) DO NOTHING",
        )
        .bind(attempt.delivery_id)
        .bind(i64::from(attempt.number))
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.error)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
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
        let mut tx = self.pool.begin().await?;
        // Locked until the copy commits: the state cannot change in between.
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 FOR UPDATE",
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
        let row: Delivery = sqlx::query_as(&format!(
            "INSERT INTO webhook_deliveries AS d (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at, redelivery_of)
             SELECT webhook_id, event_id, event, content_type, body, 'pending', 0, $1, $1, id
             FROM webhook_deliveries WHERE id = $2
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
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
        let rows: Vec<Delivery> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1
             ORDER BY d.id DESC LIMIT $2"
        ))
        .bind(webhook_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT delivery_id, number, status_code, error, duration_ms, attempted_at
             FROM webhook_attempts WHERE delivery_id = ANY($1)
             ORDER BY delivery_id, number",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        with_attempts(rows, attempts)
    }
}
