//! Garbage collection's statements on PostgreSQL (the review queue of migration 0004): claims,
//! reviews and the queue's reads.
//!
//! Locks are always taken in one order: the digest's queue row, then its links, then its
//! content row. A review takes its queue row with `SKIP LOCKED` and everything after it without
//! waiting (`NOWAIT`, and a short `lock_timeout` for what a statement locks by itself): a push,
//! mount or claim that holds any of them wins, and the review is tried again later. Writers
//! never wait for a review except on the queue row, which a review holds only while it decides.

use std::time::Duration;

use chrono::Utc;

use super::PostgresDatabase;
use crate::oci::Digest;
use crate::storage::rows::{candidates, size_from_db};
use crate::storage::{
    BLOB_DELETION_WINDOW, BlobReview, Candidate, ManifestReview, StorageError, StorageResult,
    millis,
};

/// Links of a blob (`rb`, the digest `$1`) that no image of their own repository references.
const UNREFERENCED_IN_REPOSITORY: &str = "NOT EXISTS (
        SELECT 1 FROM repository_manifests rm
        JOIN manifest_references mr ON mr.digest = rm.digest
        WHERE rm.repository_id = rb.repository_id AND mr.child = $1 AND mr.kind = 'blob')";

/// Whether a review's statement failed only because another transaction holds what it must
/// lock or has just referenced what it would delete: the review is tried again later.
fn contended(err: &StorageError) -> bool {
    const LOCK_NOT_AVAILABLE: &str = "55P03";
    const FOREIGN_KEY_VIOLATION: &str = "23503";
    const DEADLOCK_DETECTED: &str = "40P01";
    matches!(err, StorageError::Database(sqlx::Error::Database(db))
        if matches!(db.code().as_deref(),
            Some(LOCK_NOT_AVAILABLE | FOREIGN_KEY_VIOLATION | DEADLOCK_DETECTED)))
}

/// A review's outcome, with contention turned into `busy`.
fn or_busy<T>(outcome: StorageResult<T>, busy: T) -> StorageResult<T> {
    match outcome {
        Err(err) if contended(&err) => Ok(busy),
        other => other,
    }
}

/// Begins a review's transaction: it waits for no lock longer than this.
async fn begin_review(
    database: &PostgresDatabase,
) -> StorageResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = database.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

impl PostgresDatabase {
    pub(super) async fn claim(&self, digest: &Digest) -> StorageResult<Option<Duration>> {
        let left: Option<i64> = sqlx::query_scalar(
            "INSERT INTO gc_queue AS q (kind, digest, queued_at) VALUES ('blob', $1, gc_now())
             ON CONFLICT (kind, digest) DO UPDATE SET
                 queued_at = CASE WHEN q.deleting_until > excluded.queued_at THEN q.queued_at
                                  ELSE greatest(q.queued_at, excluded.queued_at) END,
                 deleting_until = CASE WHEN q.deleting_until > excluded.queued_at
                                       THEN q.deleting_until END
             RETURNING q.deleting_until - gc_now()",
        )
        .bind(digest.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(left.map(|ms| Duration::from_millis(ms.max(1).unsigned_abs())))
    }

    pub(super) async fn under_review(&self, digest: &Digest) -> StorageResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM gc_queue WHERE kind = 'blob' AND digest = $1)",
        )
        .bind(digest.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn due(&self, grace: Duration, limit: u32) -> StorageResult<Vec<Candidate>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, digest FROM gc_queue WHERE queued_at <= gc_now() - $1
             ORDER BY queued_at, kind DESC LIMIT $2",
        )
        .bind(millis(grace))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        candidates(rows)
    }

    pub(super) async fn review_manifest_row(
        &self,
        digest: &Digest,
        grace: Duration,
    ) -> StorageResult<ManifestReview> {
        let outcome = self.try_review_manifest(&digest.to_string(), grace).await;
        or_busy(outcome, ManifestReview::Busy)
    }

    async fn try_review_manifest(
        &self,
        digest: &str,
        grace: Duration,
    ) -> StorageResult<ManifestReview> {
        let mut tx = begin_review(self).await?;
        let due: Option<bool> = sqlx::query_scalar(
            "SELECT queued_at <= gc_now() - $2 FROM gc_queue
             WHERE kind = 'manifest' AND digest = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(digest)
        .bind(millis(grace))
        .fetch_optional(&mut *tx)
        .await?;
        if due != Some(true) {
            return Ok(ManifestReview::NotDue);
        }
        // A push of the same manifest holds its row until it commits its link.
        sqlx::query("SELECT 1 FROM manifests WHERE digest = $1 FOR UPDATE NOWAIT")
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM repository_manifests WHERE digest = $1)
                 OR EXISTS (SELECT 1 FROM manifest_references
                            WHERE child = $1 AND kind = 'manifest')",
        )
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?;
        // Its references go with it, and their trigger makes its children due.
        let size: Option<i64> = if live {
            None
        } else {
            sqlx::query_scalar("DELETE FROM manifests WHERE digest = $1 RETURNING size")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?
        };
        sqlx::query("DELETE FROM gc_queue WHERE kind = 'manifest' AND digest = $1")
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(match size {
            Some(size) => ManifestReview::Deleted {
                size: size_from_db(size)?,
            },
            None => ManifestReview::Kept,
        })
    }

    pub(super) async fn review_blob_row(
        &self,
        digest: &Digest,
        grace: Duration,
    ) -> StorageResult<BlobReview> {
        let outcome = self.try_review_blob(&digest.to_string(), grace).await;
        or_busy(outcome, BlobReview::Busy)
    }

    async fn try_review_blob(&self, digest: &str, grace: Duration) -> StorageResult<BlobReview> {
        let window = millis(BLOB_DELETION_WINDOW);
        let mut tx = begin_review(self).await?;
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT queued_at <= gc_now() - $2, deleting_until IS NOT NULL FROM gc_queue
             WHERE kind = 'blob' AND digest = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(digest)
        .bind(millis(grace))
        .fetch_optional(&mut *tx)
        .await?;
        let (due, deleting) = row.unwrap_or_default();
        if deleting {
            // A collection that stopped before its bytes were deleted: resumed, with a new
            // window (no writer took the digest over, or the mark would be gone).
            sqlx::query(
                "UPDATE gc_queue SET deleting_until = gc_now() + $2
                 WHERE kind = 'blob' AND digest = $1",
            )
            .bind(digest)
            .bind(window)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(BlobReview::Collect { size: None });
        }
        if !due {
            return Ok(BlobReview::NotDue);
        }
        // A manifest push checking these links, or a mount reading one, holds it shared.
        sqlx::query("SELECT 1 FROM repository_blobs WHERE digest = $1 FOR UPDATE NOWAIT")
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        let cutoff = Utc::now() - chrono::TimeDelta::milliseconds(millis(grace));
        sqlx::query(&format!(
            "DELETE FROM repository_blobs AS rb
             WHERE digest = $1 AND created_at < $2 AND {UNREFERENCED_IN_REPOSITORY}"
        ))
        .bind(digest)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let (fresh_link, referenced): (bool, bool) = sqlx::query_as(&format!(
            "SELECT EXISTS (SELECT 1 FROM repository_blobs rb
                            WHERE digest = $1 AND {UNREFERENCED_IN_REPOSITORY}),
                    EXISTS (SELECT 1 FROM manifest_references WHERE child = $1 AND kind = 'blob')"
        ))
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?;
        if fresh_link {
            // Linked within the grace period and not referenced yet (a push in progress):
            // looked at again once that link is old enough to be garbage.
            sqlx::query(
                "UPDATE gc_queue SET queued_at = gc_now() WHERE kind = 'blob' AND digest = $1",
            )
            .bind(digest)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(BlobReview::Kept);
        }
        if referenced {
            sqlx::query("DELETE FROM gc_queue WHERE kind = 'blob' AND digest = $1")
                .bind(digest)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(BlobReview::Kept);
        }
        // Nothing links it (every remaining link would be referenced or fresh) and no image
        // refers to it.
        let size: Option<i64> =
            sqlx::query_scalar("DELETE FROM blobs WHERE digest = $1 RETURNING size")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE gc_queue SET queued_at = 0, deleting_until = gc_now() + $2
             WHERE kind = 'blob' AND digest = $1",
        )
        .bind(digest)
        .bind(window)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(BlobReview::Collect {
            size: size.map(size_from_db).transpose()?,
        })
    }

    pub(super) async fn collected(&self, digest: &Digest) -> StorageResult<()> {
        sqlx::query(
            "DELETE FROM gc_queue
             WHERE kind = 'blob' AND digest = $1 AND deleting_until IS NOT NULL",
        )
        .bind(digest.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn queue_len(&self) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gc_queue")
            .fetch_one(&self.pool)
            .await?;
        size_from_db(count)
    }
}
