//! Garbage collection's statements on SQLite (the review queue of migration 0014): claims,
//! reviews and the queue's reads. SQLite has one writer at a time, so a review's transaction
//! (`BEGIN IMMEDIATE`) excludes every push, mount and claim while it decides; the deletion of a
//! blob's bytes happens after it, while writers of the digest wait for the row's
//! `deleting_until`.

use std::time::Duration;

use chrono::Utc;

use super::{SqliteMetadata, size_from_db};
use crate::oci::Digest;
use crate::storage::rows::candidates;
use crate::storage::{
    BLOB_DELETION_WINDOW, BlobReview, Candidate, ManifestReview, StorageResult, millis,
};

/// Milliseconds since the epoch, by SQLite's clock (as the triggers of 0014 write them).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// Links of a blob (`rb`, the digest `?1`) that no image of their own repository references.
const UNREFERENCED_IN_REPOSITORY: &str = "NOT EXISTS (
        SELECT 1 FROM repository_manifests rm
        JOIN manifest_references mr ON mr.digest = rm.digest
        WHERE rm.repository_id = rb.repository_id AND mr.child = ?1 AND mr.kind = 'blob')";

impl SqliteMetadata {
    pub(super) async fn claim(&self, digest: &Digest) -> StorageResult<Option<Duration>> {
        let left: Option<i64> = sqlx::query_scalar(&format!(
            "INSERT INTO gc_queue (kind, digest, queued_at) VALUES ('blob', ?, {NOW_MS})
             ON CONFLICT DO UPDATE SET
                 queued_at = CASE WHEN deleting_until > excluded.queued_at THEN queued_at
                                  ELSE max(queued_at, excluded.queued_at) END,
                 deleting_until = CASE WHEN deleting_until > excluded.queued_at
                                       THEN deleting_until END
             RETURNING deleting_until - {NOW_MS}"
        ))
        .bind(digest.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(left.map(|ms| Duration::from_millis(ms.max(1).unsigned_abs())))
    }

    pub(super) async fn under_review(&self, digest: &Digest) -> StorageResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM gc_queue WHERE kind = 'blob' AND digest = ?)",
        )
        .bind(digest.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn due(&self, grace: Duration, limit: u32) -> StorageResult<Vec<Candidate>> {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT kind, digest FROM gc_queue WHERE queued_at <= {NOW_MS} - ?
             ORDER BY queued_at, kind DESC LIMIT ?"
        ))
        .bind(millis(grace))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        candidates(rows)
    }

    pub(super) async fn review_manifest_row(
        &self,
        digest: &Digest,
        grace: Duration,
    ) -> StorageResult<ManifestReview> {
        let digest = digest.to_string();
        let mut tx = self.begin_write().await?;
        let due: Option<bool> = sqlx::query_scalar(&format!(
            "SELECT queued_at <= {NOW_MS} - ?2 FROM gc_queue
             WHERE kind = 'manifest' AND digest = ?1"
        ))
        .bind(&digest)
        .bind(millis(grace))
        .fetch_optional(&mut *tx)
        .await?;
        if due != Some(true) {
            return Ok(ManifestReview::NotDue);
        }
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM repository_manifests WHERE digest = ?1)
                 OR EXISTS (SELECT 1 FROM manifest_references
                            WHERE child = ?1 AND kind = 'manifest')",
        )
        .bind(&digest)
        .fetch_one(&mut *tx)
        .await?;
        // Its references go with it, and their trigger makes its children due.
        let size: Option<i64> = if live {
            None
        } else {
            sqlx::query_scalar("DELETE FROM manifests WHERE digest = ? RETURNING size")
                .bind(&digest)
                .fetch_optional(&mut *tx)
                .await?
        };
        sqlx::query("DELETE FROM gc_queue WHERE kind = 'manifest' AND digest = ?")
            .bind(&digest)
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
        let digest = digest.to_string();
        let window = millis(BLOB_DELETION_WINDOW);
        let mut tx = self.begin_write().await?;
        let row: Option<(bool, bool)> = sqlx::query_as(&format!(
            "SELECT queued_at <= {NOW_MS} - ?2, deleting_until IS NOT NULL FROM gc_queue
             WHERE kind = 'blob' AND digest = ?1"
        ))
        .bind(&digest)
        .bind(millis(grace))
        .fetch_optional(&mut *tx)
        .await?;
        let (due, deleting) = row.unwrap_or_default();
        if deleting {
            // A collection that stopped before its bytes were deleted: resumed, with a new
            // window (no writer took the digest over, or the mark would be gone).
            sqlx::query(&format!(
                "UPDATE gc_queue SET deleting_until = {NOW_MS} + ?2
                 WHERE kind = 'blob' AND digest = ?1"
            ))
            .bind(&digest)
            .bind(window)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(BlobReview::Collect { size: None });
        }
        if !due {
            return Ok(BlobReview::NotDue);
        }
        let cutoff = Utc::now() - chrono::TimeDelta::milliseconds(millis(grace));
        sqlx::query(&format!(
            "DELETE FROM repository_blobs AS rb
             WHERE digest = ?1 AND created_at < ?2 AND {UNREFERENCED_IN_REPOSITORY}"
        ))
        .bind(&digest)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let (fresh_link, referenced): (bool, bool) = sqlx::query_as(&format!(
            "SELECT EXISTS (SELECT 1 FROM repository_blobs rb
                            WHERE digest = ?1 AND {UNREFERENCED_IN_REPOSITORY}),
                    EXISTS (SELECT 1 FROM manifest_references WHERE child = ?1 AND kind = 'blob')"
        ))
        .bind(&digest)
        .fetch_one(&mut *tx)
        .await?;
        if fresh_link {
            // Linked within the grace period and not referenced yet (a push in progress):
            // looked at again once that link is old enough to be garbage.
            sqlx::query(&format!(
                "UPDATE gc_queue SET queued_at = {NOW_MS} WHERE kind = 'blob' AND digest = ?"
            ))
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(BlobReview::Kept);
        }
        if referenced {
            sqlx::query("DELETE FROM gc_queue WHERE kind = 'blob' AND digest = ?")
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(BlobReview::Kept);
        }
        // Nothing links it (every remaining link would be referenced or fresh) and no image
        // refers to it.
        let size: Option<i64> =
            sqlx::query_scalar("DELETE FROM blobs WHERE digest = ? RETURNING size")
                .bind(&digest)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(&format!(
            "UPDATE gc_queue SET queued_at = 0, deleting_until = {NOW_MS} + ?2
             WHERE kind = 'blob' AND digest = ?1"
        ))
        .bind(&digest)
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
             WHERE kind = 'blob' AND digest = ? AND deleting_until IS NOT NULL",
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
