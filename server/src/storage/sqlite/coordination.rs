//! Coordination on SQLite ([`Notifier`], [`LeaseStore`], [`ThrottleStore`]): SQLite serves
//! one process, so the notifier is an in-process broadcast, shared by every store opened on the
//! same database file in this process (two such stores behave as two replicas); leases and
//! throttle rows are tables, changed in single statements or `BEGIN IMMEDIATE` transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::SqliteMetadata;
use crate::storage::StorageResult;
use crate::storage::coordination::{
    LeaseStore, LocalHub, Notifier, Subscription, ThrottleRow, ThrottleRows, ThrottleStore,
    ThrottleUpdate, Topic, check_body,
};

/// The hub of each database file open in this process.
static HUBS: Mutex<Vec<(PathBuf, Weak<LocalHub>)>> = Mutex::new(Vec::new());

/// The hub of the database at `path`, shared with every other store open on it here.
pub(super) fn hub_for(path: &Path) -> Arc<LocalHub> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut hubs = HUBS.lock().unwrap_or_else(|p| p.into_inner());
    hubs.retain(|(_, hub)| hub.strong_count() > 0);
    if let Some(hub) = hubs
        .iter()
        .find(|(open, _)| *open == path)
        .and_then(|(_, hub)| hub.upgrade())
    {
        return hub;
    }
    let hub = Arc::new(LocalHub::default());
    hubs.push((path, Arc::downgrade(&hub)));
    hub
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Notifier for SqliteMetadata {
    fn replica(&self) -> Arc<str> {
        self.replica.clone()
    }

    async fn publish(&self, topic: Topic, body: &str) -> StorageResult<()> {
        check_body(body)?;
        self.hub.deliver(topic, self.replica.clone(), body.into());
        Ok(())
    }

    fn subscribe(&self, topic: Topic) -> Subscription {
        self.hub.subscribe(topic, self.replica.clone())
    }
}

#[async_trait]
impl LeaseStore for SqliteMetadata {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool> {
        let now = Utc::now().timestamp_millis();
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(millis(ttl)))
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool> {
        let now = Utc::now().timestamp_millis();
        let renewed = sqlx::query("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?")
            .bind(now.saturating_add(millis(ttl)))
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StorageResult<bool> {
        let released = sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(released == 1)
    }

    async fn lease_holder(&self, name: &str) -> StorageResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = ? AND expires_at > ?")
                .bind(name)
                .bind(Utc::now().timestamp_millis())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn prune_leases(&self, grace: Duration) -> StorageResult<u64> {
        let before = Utc::now().timestamp_millis().saturating_sub(millis(grace));
        Ok(sqlx::query("DELETE FROM leases WHERE expires_at <= ?")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[async_trait]
impl ThrottleStore for SqliteMetadata {
    async fn update_throttle<'a>(
        &'a self,
        keys: &'a [String],
        update: ThrottleUpdate<'a>,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let mut rows = ThrottleRows::new();
        for key in keys {
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT at, expires FROM login_throttle WHERE key = ?")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((at, expires)) = row {
                rows.insert(key.clone(), ThrottleRow { at, expires });
            }
        }
        let before: HashMap<String, ThrottleRow> =
            rows.iter().map(|(k, v)| (k.clone(), *v)).collect();
        update(&mut rows);
        for key in keys {
            match (before.get(key), rows.get(key)) {
                (Some(old), Some(new)) if old == new => {}
                (_, Some(row)) => {
                    sqlx::query(
                        "INSERT INTO login_throttle (key, at, expires) VALUES (?, ?, ?)
                         ON CONFLICT (key) DO UPDATE SET at = excluded.at,
                             expires = excluded.expires",
                    )
                    .bind(key)
                    .bind(row.at)
                    .bind(row.expires)
                    .execute(&mut *tx)
                    .await?;
                }
                (Some(_), None) => {
                    sqlx::query("DELETE FROM login_throttle WHERE key = ?")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                (None, None) => {}
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_throttle(&self, now: i64) -> StorageResult<u64> {
        Ok(sqlx::query("DELETE FROM login_throttle WHERE expires <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn count_throttle(&self) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM login_throttle")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
