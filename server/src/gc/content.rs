//! Content collection: blobs and manifests that nothing references any more are deleted,
//! online, while pushes go on, on one replica at a time (the `gc-content` lease), once
//! `[gc] grace_seconds` have passed. How a digest becomes collectable, and why a racing push is
//! safe, is told in `storage/collection.rs`, which holds the sweep; this runs it and counts.

use std::sync::Arc;
use std::time::Duration;

use crate::storage::coordination::{Coordination, LeaseTiming};
use crate::storage::{BlobStore, MetadataStore, StorageResult, Swept, sweep_unreferenced};

/// What the content collector works on.
pub struct ContentCollector {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// How long a digest must have been unreferenced (and unclaimed) before it is deleted.
    pub grace: Duration,
}

impl ContentCollector {
    /// Runs the collector on the holder of the `gc-content` lease for as long as the process
    /// runs, sweeping every quarter of the grace period (at least every minute).
    pub fn spawn(self: Arc<Self>, coordination: &Coordination) {
        let every = (self.grace / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
        coordination.spawn_leased("gc-content", LeaseTiming::STANDARD, move || {
            let collector = self.clone();
            async move {
                loop {
                    match collector.sweep().await {
                        Ok(swept) if swept.manifests + swept.blobs > 0 => tracing::info!(
                            manifests = swept.manifests,
                            blobs = swept.blobs,
                            bytes = swept.bytes,
                            "gc: deleted content nothing references"
                        ),
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(%err, "gc: sweeping unreferenced content failed")
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
    }

    /// One sweep, counted in the metrics batch by batch: what was freed, what still waits,
    /// and when the last sweep ended.
    pub async fn sweep(&self) -> StorageResult<Swept> {
        let swept = sweep_unreferenced(
            self.metadata.as_ref(),
            self.blobs.as_ref(),
            self.grace,
            &mut |batch| {
                metrics::counter!("berth_gc_manifests_deleted_total").increment(batch.manifests);
                metrics::counter!("berth_gc_blobs_deleted_total").increment(batch.blobs);
                metrics::counter!("berth_gc_bytes_freed_total").increment(batch.bytes);
            },
        )
        .await?;
        metrics::gauge!("berth_gc_candidates").set(self.metadata.review_queue_len().await? as f64);
        metrics::gauge!("berth_gc_last_sweep_timestamp_seconds")
            .set(chrono::Utc::now().timestamp() as f64);
        Ok(swept)
    }
}
