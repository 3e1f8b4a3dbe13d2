//! Abandoned uploads: a session nobody has written to for `[gc] upload_ttl_seconds` ends and
//! its data is deleted, and upload data that no session owns (what a crash left) is removed
//! once it has lain untouched for a day. One replica does it at a time (the `gc-uploads`
//! lease); otherwise a client could start sessions without end and fill the disk.
//!
//! A request writing to a session while it expires loses the race cleanly: its write to the
//! metadata (the compare-and-set on the size) finds the session gone and the client is told
//! the upload is unknown; the data it wrote is upload data without a session, removed later.

use std::sync::Arc;
use std::time::Duration;

use crate::storage::coordination::{Coordination, LeaseTiming};
use crate::storage::{
    BlobStore, MetadataStore, ORPHAN_UPLOAD_IDLE, StorageResult, sweep_orphan_uploads,
};

/// Sessions ended per query.
const BATCH: u32 = 500;
/// How often upload data without a session is looked for.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// What the upload collector works on.
pub struct UploadCollector {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Pull-through's local spool, when there is one: its leftovers are upload data too.
    pub spool: Option<Arc<dyn BlobStore>>,
    pub ttl: Duration,
}

impl UploadCollector {
    /// Runs the collector on the holder of the `gc-uploads` lease, for as long as the process
    /// runs: abandoned sessions are looked for every quarter of the TTL (at least every 10
    /// minutes), data without a session at start and every hour.
    pub fn spawn(self: Arc<Self>, coordination: &Coordination) {
        let every = (self.ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(600));
        coordination.spawn_leased("gc-uploads", LeaseTiming::STANDARD, move || {
            let collector = self.clone();
            async move {
                let mut last_sweep: Option<tokio::time::Instant> = None;
                loop {
                    if let Err(err) = collector.expire_sessions().await {
                        tracing::warn!(%err, "gc: expiring abandoned uploads failed");
                    }
                    if last_sweep.is_none_or(|at| at.elapsed() >= ORPHAN_SWEEP_EVERY) {
                        collector.sweep_orphans().await;
                        last_sweep = Some(tokio::time::Instant::now());
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
    }

    /// Ends every session last written more than the TTL ago and deletes its data; how many.
    pub async fn expire_sessions(&self) -> StorageResult<usize> {
        let Some(cutoff) = super::before(self.ttl) else {
            return Ok(0);
        };
        let mut expired = 0;
        loop {
            let ids = self.metadata.expire_uploads(cutoff, BATCH).await?;
            for id in &ids {
                // A failure leaves data without a session, which the orphan sweep removes.
                if let Err(err) = self.blobs.delete_upload(*id).await {
                    tracing::warn!(%err, upload = %id, "gc: deleting an expired upload's data failed");
                }
            }
            expired += ids.len();
            metrics::counter!("berth_gc_uploads_expired_total").increment(ids.len() as u64);
            if ids.len() < BATCH as usize {
                break;
            }
        }
        if expired > 0 {
            tracing::info!(
                expired,
                "gc: ended abandoned upload sessions and deleted their data"
            );
        }
        Ok(expired)
    }

    /// Removes upload data (in the blob store and the spool) that no session owns and nobody
    /// has written for a day.
    async fn sweep_orphans(&self) {
        for store in std::iter::once(&self.blobs).chain(&self.spool) {
            match sweep_orphan_uploads(self.metadata.as_ref(), store.as_ref(), ORPHAN_UPLOAD_IDLE)
                .await
            {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "gc: removed upload data no session owned"),
                Err(err) => tracing::warn!(%err, "gc: sweeping upload data no session owns failed"),
            }
        }
    }
}
