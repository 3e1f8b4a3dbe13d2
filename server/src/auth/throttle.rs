//! Login throttling, against guessing without letting anyone lock anyone out, counted in the
//! database so that every replica sees every failure.
//!
//! Failures are counted, successes never. An address is checked first (many users behind one
//! NAT share its larger budget), then the pair of user and address: either over its budget is
//! refused with 429 before the password is even hashed. Across addresses a user's failures only
//! slow further attempts (one a second, in turn, refused when the queue is more than a few
//! seconds long), and not at all from an address where that user signed in lately: someone
//! guessing from elsewhere cannot keep the right password out. Attempts are charged when let in
//! and refunded when they succeed; each step reads and writes its keys as one atomic update of
//! the throttle store, so that concurrent guesses, on any replicas, cannot overrun a budget.
//!
//! Every row says when it stops mattering (a debt when it is paid, a known address after 30
//! days) and is deleted then by the store's pruning (`storage::coordination`), so the table
//! holds about the last minute's failures; user names are keys only once they are no longer than
//! [`MAX_USER_NAME`](super::names::MAX_USER_NAME).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::model::AddressKey;
use crate::storage::StorageResult;
use crate::storage::coordination::{ThrottleRow, ThrottleRows, ThrottleStore};

/// How long a successful sign-in makes its address known for that user (milliseconds).
const KNOWN_ADDRESS: i64 = 30 * 86_400_000;
/// Attempts for a user over its budget go one at a time, this far apart.
const SLOW_SPACING: i64 = 1_000;
/// The longest an attempt waits in a user's queue before it is refused instead.
const MAX_SLOW_WAIT: i64 = 5_000;
/// A refusal is written to the audit log once per key in this long.
const NOTE_EVERY: i64 = 60_000;

/// Failures per key as a debt in time (the generic cell rate algorithm): each failure adds
/// `interval`; a key is held back while its debt runs more than `burst - 1` intervals ahead.
/// A debt is a row whose instant is when it is paid (and which matters until then).
#[derive(Debug, Clone, Copy)]
struct Budget {
    interval: i64,
    burst: i64,
}

impl Budget {
    fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Budget {
            interval: 60_000 / i64::from(per_minute),
            burst: i64::from(per_minute),
        }
    }

    /// How much longer `key` is held back, if it is.
    fn held_back(&self, rows: &ThrottleRows, key: &str, now: i64) -> Option<i64> {
        let ahead = rows.get(key)?.at.saturating_sub(now).max(0);
        let allowed = self.interval.saturating_mul(self.burst - 1);
        (ahead > allowed).then(|| ahead - allowed)
    }

    fn charge(&self, rows: &mut ThrottleRows, key: &str, now: i64) {
        let paid = rows.get(key).map_or(now, |row| row.at.max(now)) + self.interval;
        rows.insert(key.to_owned(), until(paid, paid));
    }

    fn refund(&self, rows: &mut ThrottleRows, key: &str, now: i64) {
        let Some(row) = rows.get(key) else {
            return;
        };
        let earlier = row.at - self.interval;
        if earlier > now {
            rows.insert(key.to_owned(), until(earlier, earlier));
        } else {
            rows.remove(key);
        }
    }
}

fn until(at: i64, expires: i64) -> ThrottleRow {
    ThrottleRow { at, expires }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: Duration,
    /// `address`, `user-and-address` or `user`.
    pub scope: &'static str,
    /// The first refusal of this key in a while: the one to write to the audit log.
    pub note: bool,
}

/// The keys of one attempt's rows. Addresses come first and have no spaces, so no user name
/// can make one key look like another.
struct Keys {
    address: String,
    pair: String,
    known: String,
    user: String,
    slot: String,
}

impl Keys {
    fn of(user: &str, address: AddressKey) -> Self {
        Keys {
            address: address_key(address),
            pair: format!("pair {address} {user}"),
            known: format!("known {address} {user}"),
            user: format!("user {user}"),
            slot: format!("slot {user}"),
        }
    }
}

fn address_key(address: AddressKey) -> String {
    format!("address {address}")
}

fn noted(key: &str) -> String {
    format!("noted {key}")
}

pub struct LoginThrottle {
    store: Arc<dyn ThrottleStore>,
    /// Per user and address.
    pair: Budget,
    /// Per address, and per user before it is slowed.
    wide: Budget,
}

impl LoginThrottle {
    /// `per_minute` failures allowed per user and address; five times that per address and,
    /// before it is slowed, per user.
    pub fn new(store: Arc<dyn ThrottleStore>, per_minute: u32) -> Self {
        LoginThrottle {
            store,
            pair: Budget::per_minute(per_minute),
            wide: Budget::per_minute(per_minute.saturating_mul(5)),
        }
    }

    /// Lets an attempt in (with how long it must wait first) or refuses it. `user` is `None`
    /// for a name that cannot be a user's (too long): only its address is charged.
    pub async fn admit(
        &self,
        user: Option<&str>,
        address: Option<IpAddr>,
    ) -> StorageResult<Result<Duration, Refusal>> {
        self.admit_at(Utc::now().timestamp_millis(), user, address)
            .await
    }

    async fn admit_at(
        &self,
        now: i64,
        user: Option<&str>,
        address: Option<IpAddr>,
    ) -> StorageResult<Result<Duration, Refusal>> {
        let address = AddressKey::of(address);
        let keys = user.map(|user| Keys::of(user, address));
        let address_key = address_key(address);
        let mut names = vec![address_key.clone(), noted(&address_key)];
        if let Some(keys) = &keys {
            names.extend([
                keys.pair.clone(),
                noted(&keys.pair),
                keys.known.clone(),
                keys.user.clone(),
                noted(&keys.user),
                keys.slot.clone(),
            ]);
        }
        let mut decided = Ok(Duration::ZERO);
        self.store
            .update_throttle(
                &names,
                Box::new(|rows| {
                    decided = self.decide(rows, now, &address_key, keys.as_ref());
                }),
            )
            .await?;
        Ok(decided)
    }

    /// The rules of [`LoginThrottle::admit`] over the rows of one attempt.
    fn decide(
        &self,
        rows: &mut ThrottleRows,
        now: i64,
        address: &str,
        keys: Option<&Keys>,
    ) -> Result<Duration, Refusal> {
        let refuse = |rows: &mut ThrottleRows, key: &str, retry_after: i64, scope| {
            let noted_key = noted(key);
            let note = rows
                .get(&noted_key)
                .is_none_or(|row| now - row.at >= NOTE_EVERY);
            if note {
                rows.insert(noted_key, until(now, now + NOTE_EVERY));
            }
            Refusal {
                retry_after: millis(retry_after),
                scope,
                note,
            }
        };
        if let Some(wait) = self.wide.held_back(rows, address, now) {
            return Err(refuse(rows, address, wait, "address"));
        }
        let mut wait = 0;
        if let Some(keys) = keys {
            if let Some(retry) = self.pair.held_back(rows, &keys.pair, now) {
                return Err(refuse(rows, &keys.pair, retry, "user-and-address"));
            }
            let known = rows
                .get(&keys.known)
                .is_some_and(|row| now - row.at < KNOWN_ADDRESS);
            if !known && self.wide.held_back(rows, &keys.user, now).is_some() {
                let slot = rows.get(&keys.slot).map_or(now, |row| row.at).max(now);
                wait = slot - now;
                if wait > MAX_SLOW_WAIT {
                    return Err(refuse(rows, &keys.user, wait, "user"));
                }
                let next = slot + SLOW_SPACING;
                rows.insert(keys.slot.clone(), until(next, next));
            }
            self.pair.charge(rows, &keys.pair, now);
        }
        self.wide.charge(rows, address, now);
        Ok(millis(wait))
    }

    /// The password was right: the attempt is not counted, and the address is known for the
    /// user from now on.
    pub async fn succeeded(&self, user: &str, address: Option<IpAddr>) -> StorageResult<()> {
        self.succeeded_at(Utc::now().timestamp_millis(), user, address)
            .await
    }

    async fn succeeded_at(
        &self,
        now: i64,
        user: &str,
        address: Option<IpAddr>,
    ) -> StorageResult<()> {
        let keys = Keys::of(user, AddressKey::of(address));
        let names = [keys.address.clone(), keys.pair.clone(), keys.known.clone()];
        self.store
            .update_throttle(
                &names,
                Box::new(|rows| {
                    self.wide.refund(rows, &keys.address, now);
                    self.pair.refund(rows, &keys.pair, now);
                    rows.insert(keys.known.clone(), until(now, now + KNOWN_ADDRESS));
                }),
            )
            .await
    }

    /// The password was wrong (the address and the pair were charged when it was let in).
    pub async fn failed(&self, user: &str) -> StorageResult<()> {
        self.failed_at(Utc::now().timestamp_millis(), user).await
    }

    async fn failed_at(&self, now: i64, user: &str) -> StorageResult<()> {
        let key = format!("user {user}");
        let names = [key.clone()];
        self.store
            .update_throttle(&names, Box::new(|rows| self.wide.charge(rows, &key, now)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteMetadata;

    fn at(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    /// A throttle on a fresh database, and its store; `dir` keeps the database.
    async fn throttle(dir: &tempfile::TempDir) -> (LoginThrottle, Arc<SqliteMetadata>) {
        let store = Arc::new(
            SqliteMetadata::open(&dir.path().join("berth.db"))
                .await
                .unwrap(),
        );
        (LoginThrottle::new(store.clone(), 10), store)
    }

    /// The current instant; the tests run well within the budgets' intervals.
    fn now() -> i64 {
        Utc::now().timestamp_millis()
    }

    #[tokio::test]
    async fn failures_per_user_and_address_are_refused_and_successes_never_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (throttle, _) = throttle(&dir).await;
        let t = now();
        for _ in 0..10 {
            assert_eq!(
                throttle.admit_at(t, Some("admin"), at(1)).await.unwrap(),
                Ok(Duration::ZERO)
            );
            throttle.failed_at(t, "admin").await.unwrap();
        }
        let refused = throttle
            .admit_at(t, Some("admin"), at(1))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.scope, "user-and-address");
        assert_eq!(refused.retry_after, Duration::from_secs(6));
        assert!(refused.note);
        let again = throttle.admit_at(t, Some("admin"), at(1)).await.unwrap();
        assert!(!again.unwrap_err().note);
        // From another address the right password goes through, as often as it is sent.
        for _ in 0..100 {
            assert_eq!(
                throttle.admit_at(t, Some("admin"), at(2)).await.unwrap(),
                Ok(Duration::ZERO)
            );
            throttle.succeeded_at(t, "admin", at(2)).await.unwrap();
        }
        // The debt is paid as time passes: six seconds later, one more attempt.
        let later = t + 6_000;
        assert!(
            throttle
                .admit_at(later, Some("admin"), at(1))
                .await
                .unwrap()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_address_is_limited_over_all_names() {
        let dir = tempfile::tempdir().unwrap();
        let (throttle, _) = throttle(&dir).await;
        let t = now();
        for i in 0..50 {
            let user = format!("user{i}");
            assert!(
                throttle
                    .admit_at(t, Some(&user), at(1))
                    .await
                    .unwrap()
                    .is_ok()
            );
        }
        let refused = throttle.admit_at(t, Some("someone"), at(1)).await.unwrap();
        assert_eq!(refused.unwrap_err().scope, "address");
        let refused = throttle.admit_at(t, None, at(1)).await.unwrap();
        assert_eq!(refused.unwrap_err().scope, "address");
        // An IPv6 host is one key for its /64.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        for i in 0..50 {
            assert!(throttle.admit_at(t, None, v6(i)).await.unwrap().is_ok());
        }
        assert!(throttle.admit_at(t, None, v6(999)).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_user_guessed_from_everywhere_is_slowed_but_not_from_a_known_address() {
        let dir = tempfile::tempdir().unwrap();
        let (throttle, _) = throttle(&dir).await;
        let t = now();
        throttle.succeeded_at(t, "admin", at(200)).await.unwrap();
        for i in 0..50 {
            assert!(
                throttle
                    .admit_at(t, Some("admin"), at(i))
                    .await
                    .unwrap()
                    .is_ok()
            );
            throttle.failed_at(t, "admin").await.unwrap();
        }
        // Now attempts from new addresses wait their turn, a second apart, and are refused
        // when the queue is long.
        let mut waits = Vec::new();
        for i in 50..56 {
            waits.push(
                throttle
                    .admit_at(t, Some("admin"), at(i))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        let mut refused = None;
        for i in 56..70 {
            if let Err(refusal) = throttle.admit_at(t, Some("admin"), at(i)).await.unwrap() {
                refused = Some(refusal);
                break;
            }
        }
        assert_eq!(refused.map(|r| r.scope), Some("user"));
        // The address the user signed in from is not held back at all.
        assert_eq!(
            throttle.admit_at(t, Some("admin"), at(200)).await.unwrap(),
            Ok(Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn replicas_count_the_same_failures() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = throttle(&dir).await;
        let (second, _) = throttle(&dir).await;
        let t = now();
        // Ten failures spread over two replicas exhaust the pair's budget on both.
        for i in 0..10 {
            let replica = if i % 2 == 0 { &first } else { &second };
            assert!(
                replica
                    .admit_at(t, Some("admin"), at(1))
                    .await
                    .unwrap()
                    .is_ok()
            );
            replica.failed_at(t, "admin").await.unwrap();
        }
        for replica in [&first, &second] {
            let refused = replica.admit_at(t, Some("admin"), at(1)).await.unwrap();
            assert_eq!(refused.unwrap_err().scope, "user-and-address");
        }
    }

    #[tokio::test]
    async fn concurrent_guesses_cannot_overrun_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = throttle(&dir).await;
        let (second, _) = throttle(&dir).await;
        let t = now();
        let guesses = (0..30).map(|i| {
            let replica = if i % 2 == 0 { &first } else { &second };
            async move { replica.admit_at(t, Some("admin"), at(1)).await.unwrap() }
        });
        let admitted = futures_util::future::join_all(guesses)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        assert_eq!(admitted, 10);
    }

    #[tokio::test]
    async fn rows_are_kept_only_while_they_matter() {
        let dir = tempfile::tempdir().unwrap();
        let (throttle, store) = throttle(&dir).await;
        let t = now();
        for i in 0..200_u32 {
            let address = Some(IpAddr::from(i.to_be_bytes()));
            if throttle
                .admit_at(t, Some("x"), address)
                .await
                .unwrap()
                .is_ok()
            {
                throttle.failed_at(t, "x").await.unwrap();
            }
        }
        throttle.succeeded_at(t, "x", at(1)).await.unwrap();
        assert!(store.count_throttle().await.unwrap() > 100);
        // Two minutes on, every debt is paid and every note stale: only the known address
        // stays.
        let pruned = store.prune_throttle(t + 120_000).await.unwrap();
        assert!(pruned > 100, "{pruned}");
        assert_eq!(store.count_throttle().await.unwrap(), 1);
        assert_eq!(
            store.prune_throttle(t + KNOWN_ADDRESS + 1).await.unwrap(),
            1
        );
    }
}
