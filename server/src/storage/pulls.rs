//! Pull times, recorded cheaply: a manifest pull notes (repository, image, now) in memory, and
//! the notes are written in one transaction per interval (a minute in the server), the newest
//! time per image only. A crash loses the pulls of the last interval (their images keep the
//! time of an earlier pull, or none); every replica writes its own notes, and the later time
//! wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::StorageResult;
use super::lifecycle::LifecycleStore;
use crate::oci::{Digest, RepositoryName};

/// At most this many images are noted between writes; pulls of others wait for the next
/// write (a flood of distinct pulls costs memory bounded by this).
const MAX_PENDING: usize = 100_000;

pub struct PullRecorder {
    store: Arc<dyn LifecycleStore>,
    pending: Mutex<HashMap<(RepositoryName, Digest), DateTime<Utc>>>,
}

impl PullRecorder {
    pub fn new(store: Arc<dyn LifecycleStore>) -> Arc<Self> {
        Arc::new(PullRecorder {
            store,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Notes a pull of `digest` from `repository` now.
    pub fn record(&self, repository: &RepositoryName, digest: &Digest) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let key = (repository.clone(), digest.clone());
        if pending.len() < MAX_PENDING || pending.contains_key(&key) {
            pending.insert(key, Utc::now());
        }
    }

    /// Writes what was noted since the last write.
    pub async fn flush(&self) -> StorageResult<usize> {
        let pulls: Vec<_> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending)
                .into_iter()
                .map(|((repository, digest), at)| (repository, digest, at))
                .collect()
        };
        self.store.record_pulls(&pulls).await?;
        Ok(pulls.len())
    }

    /// Writes the notes every `every` for as long as the process runs.
    pub fn spawn(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let recorder = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = recorder.flush().await {
                    tracing::warn!(%err, "recording pull times failed; they are dropped");
                }
            }
        })
    }
}
