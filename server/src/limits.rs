//! Limits on long-lived requests: watches of the API and the console's event stream hold a
//! connection, a task and a reader of the event log for as long as they run, so their number
//! and their duration are bounded. Each subject (a user, a service account, or an anonymous
//! client by its address) may hold a few at once, the server a bounded total, and each ends
//! after at most the configured time (clients reconnect from where they were).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::Rng;

use crate::config::LimitsConfig;

/// Seconds a refused watch is told to wait before trying again.
pub const WATCH_RETRY_SECONDS: u64 = 5;

/// Why a watch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchRefused {
    #[error(
        "too many watches: {who} already holds {limit} open (limits.watches_per_subject); close one and try again"
    )]
    PerSubject { who: String, limit: usize },
    #[error(
        "too many watches: the server holds {limit} open (limits.watches_total); try again later"
    )]
    Total { limit: usize },
}

/// For the Kubernetes-style APIs: a 429 with the reason, retried after a few seconds.
impl From<WatchRefused> for crate::kube::ApiError {
    fn from(refused: WatchRefused) -> Self {
        crate::kube::ApiError::TooManyRequests {
            message: refused.to_string(),
            retry_after: WATCH_RETRY_SECONDS,
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    by_subject: HashMap<String, usize>,
}

/// Counts open watches and feeds, and how long each may run.
pub struct WatchLimits {
    per_subject: usize,
    total: usize,
    max_duration: Duration,
    open: Mutex<Open>,
}

/// One open watch; dropping it (when the response body is dropped) frees its place.
pub struct WatchPermit {
    limits: Arc<WatchLimits>,
    key: String,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_subject.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_subject.remove(&self.key);
            }
        }
    }
}

impl WatchLimits {
    pub fn new(config: &LimitsConfig) -> Arc<Self> {
        Arc::new(WatchLimits {
            per_subject: config.watches_per_subject,
            total: config.watches_total,
            max_duration: Duration::from_secs(config.watch_max_seconds),
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more watch of the subject keyed `key` (a `Subject`'s `watch_key`), refused
    /// when the subject or the server holds its most.
    pub fn acquire(self: &Arc<Self>, key: String) -> Result<WatchPermit, WatchRefused> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.by_subject.get(&key).copied().unwrap_or(0);
        if held >= self.per_subject {
            return Err(WatchRefused::PerSubject {
                who: key,
                limit: self.per_subject,
            });
        }
        if open.total >= self.total {
            return Err(WatchRefused::Total { limit: self.total });
        }
        open.total += 1;
        *open.by_subject.entry(key.clone()).or_insert(0) += 1;
        Ok(WatchPermit {
            limits: self.clone(),
            key,
        })
    }

    /// How long a watch runs: the `timeoutSeconds` asked for, at most the maximum; without
    /// one, between half the maximum and the maximum, so that clients started together do not
    /// all reconnect at once.
    pub fn duration(&self, requested_seconds: Option<u64>) -> Duration {
        match requested_seconds {
            Some(seconds) => Duration::from_secs(seconds).min(self.max_duration),
            None => {
                let max = self.max_duration.as_millis().min(u64::MAX as u128) as u64;
                let half = max / 2;
                Duration::from_millis(rand::thread_rng().gen_range(half..=max))
            }
        }
    }

    /// Watches open now (all subjects).
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// The client's address, when the connection gives one.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(crate::web::client_address(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_subject: usize, total: usize) -> Arc<WatchLimits> {
        WatchLimits::new(&LimitsConfig {
            watches_per_subject: per_subject,
            watches_total: total,
            watch_max_seconds: 60,
        })
    }

    #[test]
    fn watches_are_counted_per_subject_and_in_total_until_dropped() {
        let limits = limits(2, 3);
        let a1 = limits.acquire("User:a".into()).unwrap();
        let _a2 = limits.acquire("User:a".into()).unwrap();
        assert_eq!(
            limits.acquire("User:a".into()).err(),
            Some(WatchRefused::PerSubject {
                who: "User:a".into(),
                limit: 2
            })
        );
        let _b1 = limits.acquire("User:b".into()).unwrap();
        assert_eq!(
            limits.acquire("User:c".into()).err(),
            Some(WatchRefused::Total { limit: 3 })
        );
        drop(a1);
        assert_eq!(limits.open_count(), 2);
        let _c1 = limits.acquire("User:c".into()).unwrap();
        drop(_b1);
        // A subject with nothing open is forgotten.
        assert!(
            !limits
                .open
                .lock()
                .unwrap()
                .by_subject
                .contains_key("User:b")
        );
    }

    #[test]
    fn durations_are_capped_and_jittered_by_default() {
        let limits = limits(1, 1);
        assert_eq!(limits.duration(Some(5)), Duration::from_secs(5));
        assert_eq!(limits.duration(Some(u64::MAX)), Duration::from_secs(60));
        for _ in 0..100 {
            let d = limits.duration(None);
            assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(60));
        }
    }
}
