//! The logs' retention: events older than `[gc] event_retention_seconds` (once webhooks have
//! read them; never the newest, whose id is the current resourceVersion) and finished webhook
//! deliveries older than `[gc] webhook_delivery_retention_seconds` are deleted, on one replica
//! at a time (the `gc-logs` lease). A watch from a version that is gone gets 410 Gone and lists
//! again, as with Kubernetes after a compaction. (Audit entries have their own retention,
//! `[auth] audit_retention_days`.)

use std::sync::Arc;
use std::time::Duration;

use crate::storage::coordination::{Coordination, LeaseTiming};
use crate::storage::webhooks::WebhookStore;
use crate::storage::{ImageStreamStore, StorageResult};

/// Rows deleted per statement, so that no statement holds the database for long.
const BATCH: u32 = 5000;

pub struct LogCollector {
    pub streams: Arc<dyn ImageStreamStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub event_retention: Duration,
    pub delivery_retention: Duration,
}

/// What one round deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub events: u64,
    pub deliveries: u64,
}

impl LogCollector {
    /// Runs the collector on the holder of the `gc-logs` lease for as long as the process runs,
    /// every quarter of the shorter retention (at least every hour).
    pub fn spawn(self: Arc<Self>, coordination: &Coordination) {
        let every = (self.event_retention.min(self.delivery_retention) / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(3600));
        coordination.spawn_leased("gc-logs", LeaseTiming::STANDARD, move || {
            let collector = self.clone();
            async move {
                loop {
                    match collector.collect().await {
                        Ok(Collected {
                            events: 0,
                            deliveries: 0,
                        }) => {}
                        Ok(collected) => tracing::info!(
                            events = collected.events,
                            deliveries = collected.deliveries,
                            "gc: deleted log entries past their retention"
                        ),
                        Err(err) => tracing::warn!(%err, "gc: deleting old log entries failed"),
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
    }

    /// One round: everything past its retention now.
    pub async fn collect(&self) -> StorageResult<Collected> {
        let mut collected = Collected::default();
        // Webhooks make deliveries from the log: nothing after their cursor goes. Before the
        // dispatcher has ever run, nothing goes.
        if let (Some(read), Some(cutoff)) = (
            self.webhooks.webhook_cursor().await?,
            super::before(self.event_retention),
        ) {
            collected.events =
                in_batches(|| self.streams.compact_events(cutoff, read, BATCH)).await?;
        }
        if let Some(cutoff) = super::before(self.delivery_retention) {
            collected.deliveries =
                in_batches(|| self.webhooks.delete_finished_deliveries(cutoff, BATCH)).await?;
        }
        metrics::counter!("berth_gc_events_deleted_total").increment(collected.events);
        metrics::counter!("berth_gc_webhook_deliveries_deleted_total")
            .increment(collected.deliveries);
        Ok(collected)
    }
}

/// Runs `delete` (at most [`BATCH`] rows a time) until a round deletes fewer; how many in all.
async fn in_batches<F: Future<Output = StorageResult<u64>>>(
    delete: impl Fn() -> F,
) -> StorageResult<u64> {
    let mut deleted = 0;
    loop {
        let round = delete().await?;
        deleted += round;
        if round < u64::from(BATCH) {
            return Ok(deleted);
        }
    }
}
