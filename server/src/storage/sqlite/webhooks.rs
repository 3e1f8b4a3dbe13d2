//! [`WebhookStore`] on SQLite. The rules are `storage/webhook_rules.rs`'. Due times are kept in
//! milliseconds since 1970 so that they compare as numbers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{SqliteMetadata, json_array};
use crate::storage::StorageResult;
use crate::storage::rows::{
    ATTEMPT_COLUMNS, AttemptRow, DELIVERY_COLUMNS, DeliveryRow, HEADS, WEBHOOK_COLUMNS, WebhookRow,
    millis_to_time, with_attempts,
};
use crate::storage::webhook_rules::{self, WebhookTx};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, NewDelivery, Redelivery, WebhookChange,
    WebhookRecord, WebhookStore,
};

/// A delivery as read here: its due time in milliseconds.
type SqliteDeliveryRow = DeliveryRow<i64>;

/// The webhook rules' statements on SQLite, inside a write transaction.
#[async_trait]
impl WebhookTx for SqliteConnection {
    async fn insert_delivery(
        &mut self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
             ON CONFLICT (webhook_id, event_id, event)
                 WHERE redelivery_of IS NULL AND event_id > 0
             DO NOTHING",
        )
        .bind(delivery.webhook_id)
        .bind(delivery.event_id)
        .bind(&delivery.event)
        .bind(&delivery.content_type)
        .bind(&delivery.body)
        .bind(now.timestamp_millis())
        .bind(now)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn advance_cursor(&mut self, event_id: i64) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO webhook_cursor (id, event_id) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET event_id = max(event_id, excluded.event_id)",
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
            "UPDATE webhook_deliveries SET state = ?, attempts = max(attempts, ?),
                 next_attempt_at = ?
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(attempts)
        .bind(next_attempt_at.map(|t| t.timestamp_millis()))
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING",
        )
        .bind(attempt.delivery_id)
        .bind(attempt.number)
        .bind(attempt.status_code)
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
        // The write transaction holds SQLite's one write lock: nothing changes meanwhile.
        Ok(sqlx::query_scalar(
            "SELECT state FROM webhook_deliveries WHERE id = ? AND webhook_id = ?",
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
        .fetch_one(&mut *self)
        .await?;
        let row: SqliteDeliveryRow = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?"
        ))
        .bind(new_id)
        .fetch_one(self)
        .await?;
        row.into_record()
    }
}

#[async_trait]
impl WebhookStore for SqliteMetadata {
    async fn put_webhook(&self, record: &WebhookRecord) -> StorageResult<bool> {
        // The newest event is read in the insert itself: writes are serialised, so every later
        // event commits after the subscription and the dispatcher finds it.
        Ok(sqlx::query(
            "INSERT INTO webhooks (namespace, name, uid, url, events, format, secret_nonce,
                 secret_ciphertext, since_event, created_at, disabled)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(id), 0) FROM events), ?, ?)
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

    async fn change_webhook(
        &self,
        namespace: &str,
        name: &str,
        change: &WebhookChange,
    ) -> StorageResult<Option<WebhookRecord>> {
        // Every right-hand side reads the row as it was; the newest event is read in the
        // statement itself, as when storing one (writes are serialised).
        let events = change.events.as_deref().map(json_array).transpose()?;
        let (nonce, ciphertext) = change.secret.clone().unzip();
        let row: Option<WebhookRow> = sqlx::query_as(&format!(
            "UPDATE webhooks SET url = coalesce(?, url), events = coalesce(?, events),
                 format = coalesce(?, format), secret_nonce = coalesce(?, secret_nonce),
                 secret_ciphertext = coalesce(?, secret_ciphertext),
                 since_event = CASE WHEN disabled AND ? = 0
                     THEN (SELECT coalesce(max(id), 0) FROM events) ELSE since_event END,
                 disabled = coalesce(?, disabled)
             WHERE namespace = ? AND name = ?
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(&change.url)
        .bind(events)
        .bind(&change.format)
        .bind(nonce)
        .bind(ciphertext)
        .bind(change.disabled)
        .bind(change.disabled)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(WebhookRow::into_record).transpose()
    }

    async fn add_test_delivery(
        &self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> StorageResult<DeliveryRecord> {
        let mut conn = self.pool.acquire().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event, content_type, body,
                 state, attempts, next_attempt_at, created_at)
             VALUES (?, 0, ?, ?, ?, 'pending', 0, ?, ?)
             RETURNING id",
        )
        .bind(delivery.webhook_id)
        .bind(&delivery.event)
        .bind(&delivery.content_type)
        .bind(&delivery.body)
        .bind(now.timestamp_millis())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let row: SqliteDeliveryRow = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        row.into_record()
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
        let mut tx = self.begin_write().await?;
        webhook_rules::add_deliveries(&mut *tx, deliveries, cursor, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<DeliveryRecord>> {
        let rows: Vec<SqliteDeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {HEADS} WHERE d.next_attempt_at <= ?
             ORDER BY d.id LIMIT ?"
        ))
        .bind(now.timestamp_millis())
        .bind(limit)
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
                  WHERE state IN ('delivered', 'failed') AND created_at < ?
                  ORDER BY id LIMIT ?)",
        )
        .bind(created_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected())
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
        let mut tx = self.begin_write().await?;
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
        let rows: Vec<SqliteDeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = ?
             ORDER BY d.id DESC LIMIT ?"
        ))
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let attempts: Vec<AttemptRow> = sqlx::query_as(&format!(
            "SELECT {ATTEMPT_COLUMNS}
             FROM webhook_attempts WHERE delivery_id IN (SELECT value FROM json_each(?))
             ORDER BY delivery_id, number"
        ))
        .bind(json_array(&ids)?)
        .fetch_all(&mut *conn)
        .await?;
        with_attempts(rows, attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::contract::{at, attempt, delivery};

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
