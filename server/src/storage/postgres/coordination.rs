//! Coordination on PostgreSQL ([`Notifier`], [`LeaseStore`], [`ThrottleStore`]): a message is
//! `NOTIFY` on its topic's channel with the sender's replica name (`pg_notify`), heard by the
//! one listening connection of each process (shared with the event log's channel, see
//! `relay_notifications` in `mod.rs`) and handed to that process's subscribers; leases are
//! timed by the database's clock, so replicas' clocks need not agree; throttle updates lock
//! their keys with transaction-scoped advisory locks (a key space of their own).

use std::time::Duration;

use async_trait::async_trait;

use super::PostgresDatabase;
use crate::storage::StorageResult;
use crate::storage::coordination::{
    LeaseStore, LocalHub, Notifier, Subscription, ThrottleRow, ThrottleRows, ThrottleStore,
    ThrottleUpdate, Topic, check_body,
};

/// The first key of the two-key advisory locks of throttle rows ("bt"); the second is the
/// row key's hash. Two-key locks never collide with the one-key locks of migrations and
/// image stream writes.
const THROTTLE_LOCKS: i32 = 0x6274;

/// A message's payload: the sender's replica name, a newline, the body.
fn payload(replica: &str, body: &str) -> String {
    format!("{replica}\n{body}")
}

/// Hands a notification on a coordination channel to this process's subscribers; false when
/// the channel is not one of them.
pub(super) fn deliver(hub: &LocalHub, channel: &str, payload: &str) -> bool {
    let Some(topic) = Topic::of_channel(channel) else {
        return false;
    };
    let (from, body) = payload.split_once('\n').unwrap_or(("", payload));
    hub.deliver(topic, from.into(), body.into());
    true
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[async_trait]
impl Notifier for PostgresDatabase {
    fn replica(&self) -> std::sync::Arc<str> {
        self.replica.clone()
    }

    async fn publish(&self, topic: Topic, body: &str) -> StorageResult<()> {
        check_body(body)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(topic.channel())
            .bind(payload(&self.replica, body))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn subscribe(&self, topic: Topic) -> Subscription {
        self.hub.subscribe(topic, self.replica.clone())
    }
}

#[async_trait]
impl LeaseStore for PostgresDatabase {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at)
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                 expires_at = EXCLUDED.expires_at
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= clock_timestamp()",
        )
        .bind(name)
        .bind(holder)
        .bind(seconds(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StorageResult<bool> {
        let renewed = sqlx::query(
            "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
             WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(seconds(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StorageResult<bool> {
        let released = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(released == 1)
    }

    async fn lease_holder(&self, name: &str) -> StorageResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT holder FROM leases WHERE name = $1 AND expires_at > clock_timestamp()",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn prune_leases(&self, grace: Duration) -> StorageResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM leases
             WHERE expires_at <= clock_timestamp() - make_interval(secs => $1)",
        )
        .bind(seconds(grace))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

#[async_trait]
impl ThrottleStore for PostgresDatabase {
    async fn update_throttle<'a>(
        &'a self,
        keys: &'a [String],
        update: ThrottleUpdate<'a>,
    ) -> StorageResult<()> {
        let mut tx = self.begin().await?;
        // In one order for every transaction (by hash), so that two never wait for each other.
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, h)
             FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) AS k ORDER BY h) AS s",
        )
        .bind(THROTTLE_LOCKS)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
        let found: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT key, at, expires FROM login_throttle WHERE key = ANY($1)")
                .bind(keys)
                .fetch_all(&mut *tx)
                .await?;
        let mut rows: ThrottleRows = found
            .into_iter()
            .map(|(key, at, expires)| (key, ThrottleRow { at, expires }))
            .collect();
        let before = rows.clone();
        update(&mut rows);
        let (mut upserted, mut at, mut expires, mut deleted) = (vec![], vec![], vec![], vec![]);
        for key in keys {
            match (before.get(key), rows.get(key)) {
                (Some(old), Some(new)) if old == new => {}
                (_, Some(row)) => {
                    upserted.push(key.clone());
                    at.push(row.at);
                    expires.push(row.expires);
                }
                (Some(_), None) => deleted.push(key.clone()),
                (None, None) => {}
            }
        }
        if !upserted.is_empty() {
            sqlx::query(
                "INSERT INTO login_throttle (key, at, expires)
                 SELECT DISTINCT ON (key) * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                     AS u (key, at, expires)
                 ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at, expires = EXCLUDED.expires",
            )
            .bind(&upserted)
            .bind(&at)
            .bind(&expires)
            .execute(&mut *tx)
            .await?;
        }
        if !deleted.is_empty() {
            sqlx::query("DELETE FROM login_throttle WHERE key = ANY($1)")
                .bind(&deleted)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_throttle(&self, now: i64) -> StorageResult<u64> {
        Ok(
            sqlx::query("DELETE FROM login_throttle WHERE expires <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn count_throttle(&self) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM login_throttle")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::super::PostgresSettings;
    use super::*;
    use crate::storage::coordination::Notice;
    use crate::storage::test_infra::postgres;

    #[tokio::test]
    async fn a_lost_listening_connection_says_so_and_listens_again() {
        let database = PostgresDatabase::open(&postgres().database(), &PostgresSettings::default())
            .await
            .unwrap();
        let mut credentials = database.subscribe(Topic::Credentials);
        // The server ends the listening connection (a failover, a restart, a network cut).
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&database.pool)
        .await
        .unwrap();
        assert_eq!(ended, [true]);
        let heard = tokio::time::timeout(Duration::from_secs(5), credentials.next()).await;
        assert_eq!(heard.unwrap(), Some(Notice::Missed));
        // Listening again: what is sent now arrives.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            database
                .publish(Topic::Credentials, "token 1")
                .await
                .unwrap();
            match tokio::time::timeout(Duration::from_millis(500), credentials.next()).await {
                Ok(Some(Notice::Message { own, body })) => {
                    assert!(own);
                    assert_eq!(body, "token 1");
                    break;
                }
                _ if tokio::time::Instant::now() < deadline => {}
                other => panic!("not listening again: {other:?}"),
            }
        }
    }
}
