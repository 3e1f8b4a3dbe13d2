//! [`MetadataStore`] on SQLite: repositories, blob links, uploads, manifests and tags, with
//! each push recorded in its image stream (tag history and event) in the same transaction.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{SqliteMetadata, ensure_repository, json_array, size_from_db, size_to_db};
use crate::oci::{Digest, RepositoryName, Tag};
use crate::storage::quota_rules::Admission;
use crate::storage::rows::{
    HeldSize, ManifestRow, ReferrerRow, RemoteBlobRow, RepositoryTagRow, UploadRow, check_held,
    distinct_digests, repository_summaries, upload_ids,
};
use crate::storage::{
    BlobReview, Candidate, ManifestReview, MetadataStore, NewManifest, PutManifestOutcome,
    Referenced, Referrer, RemoteBlob, RemoteSource, RepositorySummary, SizeMismatch, StorageResult,
    StoredManifest, UploadId, UploadSession, stream_rules,
};

/// Links verified bytes (`size` is theirs) into a repository, replacing its remote link.
async fn link_blob_in(
    conn: &mut SqliteConnection,
    repository_id: i64,
    digest: &Digest,
    size: u64,
) -> StorageResult<()> {
    let now = Utc::now();
    // Every caller links bytes it verified, so their size is the truth; it also repairs a size
    // that an older version took from an imported manifest.
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET size = excluded.size WHERE blobs.size <> excluded.size",
    )
    .bind(digest.to_string())
    .bind(size_to_db(size)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(repository_id)
    .bind(digest.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM remote_blobs WHERE repository_id = ? AND digest = ?")
        .bind(repository_id)
        .bind(digest.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the repository holds of each referenced digest: a linked blob's stored size, else a
/// remote link's declared size (`blobs`), or a linked manifest's size (`manifests`).
const BLOB_SIZES: &str = "SELECT w.value AS digest,
        coalesce((SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                  WHERE rb.repository_id = ?2 AND rb.digest = w.value),
                 (SELECT r.size FROM remote_blobs r
                  WHERE r.repository_id = ?2 AND r.digest = w.value)) AS size
    FROM json_each(?1) w";
const MANIFEST_SIZES: &str = "SELECT w.value AS digest,
        (SELECT m.size FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest
         WHERE rm.repository_id = ?2 AND rm.digest = w.value) AS size
    FROM json_each(?1) w";

/// Checks references against what the repository holds (`sizes`, one of the queries above):
/// the digests it lacks, and the descriptors whose declared size is not the held one.
async fn check_references(
    conn: &mut SqliteConnection,
    sizes: &str,
    repository_id: i64,
    wanted: &[Referenced],
    missing: &mut Vec<Digest>,
    mismatched: &mut Vec<SizeMismatch>,
) -> StorageResult<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let rows: Vec<HeldSize> = sqlx::query_as(sizes)
        .bind(json_array(&distinct_digests(wanted))?)
        .bind(repository_id)
        .fetch_all(conn)
        .await?;
    check_held(wanted, rows, missing, mismatched)
}

#[async_trait]
impl MetadataStore for SqliteMetadata {
    async fn repository_exists(&self, name: &RepositoryName) -> StorageResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn namespace_exists(&self, namespace: &str) -> StorageResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM namespaces WHERE name = ?")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r
             WHERE name > ? AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
             ORDER BY name LIMIT ?",
        )
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn repository_summaries(
        &self,
        after: Option<&str>,
        limit: u32,
        tag_limit: u32,
    ) -> StorageResult<Vec<RepositorySummary>> {
        let rows: Vec<RepositoryTagRow> = sqlx::query_as(
            "WITH listed AS (
                 SELECT id, name FROM repositories r
                 WHERE name > ?
                   AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
                 ORDER BY name LIMIT ?
             )
             SELECT l.name,
                    (SELECT COUNT(*) FROM repository_manifests m WHERE m.repository_id = l.id)
                        AS manifest_count,
                    t.name AS tag
             FROM listed l
             LEFT JOIN (
                 SELECT repository_id, name,
                        ROW_NUMBER() OVER (PARTITION BY repository_id ORDER BY name) AS position
                 FROM tags WHERE repository_id IN (SELECT id FROM listed) AND digest IS NOT NULL
             ) t ON t.repository_id = l.id AND t.position <= ?
             ORDER BY l.name, t.name",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .bind(tag_limit)
        .fetch_all(&self.pool)
        .await?;
        repository_summaries(rows)
    }

    async fn blob_size(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
             JOIN repositories r ON r.id = rb.repository_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        size.map(size_from_db).transpose()
    }

    async fn link_remote_blobs(
        &self,
        repository: &RepositoryName,
        blobs: &[Referenced],
        source: &RemoteSource,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        for blob in blobs {
            // Never into `blobs` or `repository_blobs`: naming a digest proves nothing.
            sqlx::query(
                "INSERT INTO remote_blobs (repository_id, digest, source, insecure, size)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM repository_blobs
                                   WHERE repository_id = ?1 AND digest = ?2)
                 ON CONFLICT (repository_id, digest) DO UPDATE
                 SET source = excluded.source, insecure = excluded.insecure, size = excluded.size",
            )
            .bind(repository_id)
            .bind(blob.digest.to_string())
            .bind(&source.repository)
            .bind(source.insecure)
            .bind(size_to_db(blob.size)?)
            .execute(&mut *tx)
            .await?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    async fn remote_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<RemoteBlob>> {
        let row: Option<RemoteBlobRow> = sqlx::query_as(
            "SELECT r.source, r.insecure, r.size FROM remote_blobs r
             JOIN repositories p ON p.id = r.repository_id
             WHERE p.name = ? AND r.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(RemoteBlobRow::into_record).transpose()
    }

    async fn link_fetched_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let repository_id: Option<i64> = sqlx::query_scalar(
            "SELECT r.repository_id FROM remote_blobs r
             JOIN repositories p ON p.id = r.repository_id
             WHERE p.name = ? AND r.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(repository_id) = repository_id else {
            return Ok(false);
        };
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    async fn link_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<u64>> {
        let mut tx = self.begin_write().await?;
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
             JOIN repositories r ON r.id = rb.repository_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(from.as_str())
        .bind(digest.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(size) = size.map(size_from_db).transpose()? else {
            return Ok(None);
        };
        let repository_id = ensure_repository(&mut tx, to).await?;
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        self.commit(tx).await?;
        Ok(Some(size))
    }

    async fn unlink_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let mut removed = 0;
        for table in ["repository_blobs", "remote_blobs"] {
            removed += sqlx::query(&format!(
                "DELETE FROM {table}
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?"
            ))
            .bind(repository.as_str())
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        self.commit(tx).await?;
        Ok(removed > 0)
    }

    async fn create_upload(&self, session: &UploadSession) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, hash_algorithm, hash_state, started_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session.id.0.to_string())
        .bind(session.repository.as_str())
        .bind(size_to_db(session.size)?)
        .bind(session.hash_algorithm.as_str())
        .bind(&session.hash_state)
        .bind(session.started_at)
        .bind(session.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(
        &self,
        repository: &RepositoryName,
        id: UploadId,
    ) -> StorageResult<Option<UploadSession>> {
        let row: Option<UploadRow> = sqlx::query_as(
            "SELECT size, hash_algorithm, hash_state, started_at FROM uploads
             WHERE id = ? AND repository = ?",
        )
        .bind(id.0.to_string())
        .bind(repository.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.into_record(id, repository)).transpose()
    }

    async fn advance_upload(
        &self,
        id: UploadId,
        expected_size: u64,
        size: u64,
        hash_state: &[u8],
    ) -> StorageResult<bool> {
        let result = sqlx::query(
            "UPDATE uploads SET size = ?, hash_state = ?, updated_at = ? WHERE id = ? AND size = ?",
        )
        .bind(size_to_db(size)?)
        .bind(hash_state)
        .bind(Utc::now())
        .bind(id.0.to_string())
        .bind(size_to_db(expected_size)?)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn finish_upload(
        &self,
        session: &UploadSession,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, &session.repository).await?;
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(session.id.0.to_string())
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn delete_upload(&self, id: UploadId) -> StorageResult<bool> {
        let result = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn upload_exists(&self, id: UploadId) -> StorageResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ?)")
                .bind(id.0.to_string())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn count_uploads(&self) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.pool)
            .await?;
        size_from_db(count)
    }

    async fn expire_uploads(
        &self,
        written_before: DateTime<Utc>,
        limit: u32,
    ) -> StorageResult<Vec<UploadId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM uploads WHERE id IN
                 (SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?)
             RETURNING id",
        )
        .bind(written_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        upload_ids(ids)
    }

    async fn put_manifest(
        &self,
        repository: &RepositoryName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StorageResult<PutManifestOutcome> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        let (mut missing, mut mismatched) = (Vec::new(), Vec::new());
        for (sizes, wanted) in [
            (BLOB_SIZES, &manifest.blobs),
            (MANIFEST_SIZES, &manifest.manifests),
        ] {
            check_references(
                &mut tx,
                sizes,
                repository_id,
                wanted,
                &mut missing,
                &mut mismatched,
            )
            .await?;
        }
        if !missing.is_empty() {
            tx.rollback().await?;
            return Ok(PutManifestOutcome::MissingReferences(missing));
        }
        if !mismatched.is_empty() {
            tx.rollback().await?;
            return Ok(PutManifestOutcome::WrongSizes(mismatched));
        }
        // Measured before anything is written, checked again once everything is: a refused
        // push leaves nothing, and nothing counted.
        let admission = Admission::begin(&mut *tx, repository).await?;
        if let Err(refusal) = admission.admit_image(&manifest.blobs) {
            tx.rollback().await?;
            return Ok(PutManifestOutcome::QuotaExceeded(refusal));
        }

        let digest = manifest.digest.to_string();
        let subject = manifest.subject.as_ref().map(Digest::to_string);
        let now = Utc::now();
        let inserted = sqlx::query(
            "INSERT INTO manifests
                 (digest, media_type, artifact_type, subject, annotations, size, content, image, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&digest)
        .bind(&manifest.media_type)
        .bind(&manifest.artifact_type)
        .bind(&subject)
        .bind(&manifest.annotations)
        .bind(size_to_db(manifest.content.len() as u64)?)
        .bind(manifest.content.as_ref())
        .bind(&manifest.image)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let references = manifest
                .blobs
                .iter()
                .map(|r| (&r.digest, "blob"))
                .chain(manifest.manifests.iter().map(|r| (&r.digest, "manifest")));
            for (child, kind) in references {
                sqlx::query(
                    "INSERT INTO manifest_references (digest, child, kind) VALUES (?, ?, ?)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&digest)
                .bind(child.to_string())
                .bind(kind)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            // A push of an image the repository has already is its last push now (what
            // pruning keeps by age and retention sorts by).
            "INSERT INTO repository_manifests (repository_id, digest, subject, created_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = excluded.created_at",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(&subject)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        stream_rules::record_push(
            &mut *tx,
            repository,
            repository_id,
            &manifest.digest,
            tag,
            manifest.pushed_by.as_deref(),
        )
        .await?;
        if let Err(refusal) = admission.finish(&mut *tx).await? {
            tx.rollback().await?;
            return Ok(PutManifestOutcome::QuotaExceeded(refusal));
        }
        self.commit(tx).await?;
        Ok(PutManifestOutcome::Stored)
    }

    async fn manifest_by_tag(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> StorageResult<Option<StoredManifest>> {
        let row: Option<ManifestRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN repositories r ON r.id = t.repository_id
             JOIN manifests m ON m.digest = t.digest
             WHERE r.name = ? AND t.name = ?",
        )
        .bind(repository.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ManifestRow::into_record).transpose()
    }

    async fn manifest_by_digest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<StoredManifest>> {
        let row: Option<ManifestRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM repository_manifests rm
             JOIN repositories r ON r.id = rm.repository_id
             JOIN manifests m ON m.digest = rm.digest
             WHERE r.name = ? AND rm.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ManifestRow::into_record).transpose()
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = stream_rules::delete_manifest(&mut *tx, repository, digest).await?;
        if deleted {
            self.commit(tx).await?;
        }
        Ok(deleted)
    }

    async fn delete_tag(&self, repository: &RepositoryName, tag: &Tag) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = stream_rules::delete_tag(&mut *tx, repository, tag).await?;
        if deleted {
            self.commit(tx).await?;
        }
        Ok(deleted)
    }

    async fn list_tags(
        &self,
        repository: &RepositoryName,
        last: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = ? AND t.name > ? AND t.digest IS NOT NULL ORDER BY t.name LIMIT ?",
        )
        .bind(repository.as_str())
        .bind(last.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn referrers(
        &self,
        repository: &RepositoryName,
        subject: &Digest,
    ) -> StorageResult<Vec<Referrer>> {
        let rows: Vec<ReferrerRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
             FROM repository_manifests rm
             JOIN manifests m ON m.digest = rm.digest
             WHERE rm.repository_id = (SELECT id FROM repositories WHERE name = ?)
               AND rm.subject = ?
             ORDER BY rm.created_at, rm.digest",
        )
        .bind(repository.as_str())
        .bind(subject.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ReferrerRow::into_record).collect()
    }

    async fn try_claim_blob(&self, digest: &Digest) -> StorageResult<Option<Duration>> {
        self.claim(digest).await
    }

    async fn blob_under_review(&self, digest: &Digest) -> StorageResult<bool> {
        self.under_review(digest).await
    }

    async fn due_for_review(&self, grace: Duration, limit: u32) -> StorageResult<Vec<Candidate>> {
        self.due(grace, limit).await
    }

    async fn review_manifest(
        &self,
        digest: &Digest,
        grace: Duration,
    ) -> StorageResult<ManifestReview> {
        self.review_manifest_row(digest, grace).await
    }

    async fn review_blob(&self, digest: &Digest, grace: Duration) -> StorageResult<BlobReview> {
        self.review_blob_row(digest, grace).await
    }

    async fn blob_collected(&self, digest: &Digest) -> StorageResult<()> {
        self.collected(digest).await
    }

    async fn review_queue_len(&self) -> StorageResult<u64> {
        self.queue_len().await
    }

    async fn check(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use super::*;
    use crate::storage::contract::{repo, source};

    /// Leased work in the middle of a write transaction when its lease is due for renewal:
    /// the renewal waits for the write lock, so the work must go on meanwhile, or neither ends
    /// until the lease is lost (every writer stalled for seconds, the work thrown away).
    #[tokio::test]
    async fn leased_work_holding_the_write_lock_across_a_renewal_keeps_its_lease() {
        use crate::storage::coordination::{LeaseTiming, hold_lease};
        use std::time::Duration;
        let (_dir, store) = temp_store().await;
        let timing = LeaseTiming {
            ttl: Duration::from_millis(1000),
            renew_every: Duration::from_millis(100),
        };
        let work = async {
            let mut tx = store.begin_write().await.unwrap();
            sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ('x', 1, '')")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Across several renewals (within the lease's ttl: a renewal that cannot be
            // recorded before then loses the lease, rightly).
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.commit().await.unwrap();
        };
        let held = hold_lease(&store, "gc-content", "replica-a", timing, work).await;
        assert!(held.is_ok(), "{held:?}");
        use crate::storage::coordination::LeaseStore as _;
        assert_eq!(store.lease_holder("gc-content").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_verified_link_repairs_a_wrong_size_and_unlinking_removes_remote_links() {
        let (_dir, store) = temp_store().await;
        let blob = Digest::sha256_of(b"abc");
        // As an older version's import left it: a blob row with a forged size.
        sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES (?, 999, ?)")
            .bind(blob.to_string())
            .bind(Utc::now())
            .execute(&store.pool)
            .await
            .unwrap();
        store.link_blob(&repo("ns/a"), &blob, 3).await.unwrap();
        assert_eq!(
            store.blob_size(&repo("ns/a"), &blob).await.unwrap(),
            Some(3)
        );

        let remote = Digest::sha256_of(b"remote");
        store
            .link_remote_blobs(
                &repo("ns/b"),
                &[Referenced {
                    digest: remote.clone(),
                    size: 6,
                }],
                &source(),
            )
            .await
            .unwrap();
        assert!(store.unlink_blob(&repo("ns/b"), &remote).await.unwrap());
        assert_eq!(
            store.remote_blob(&repo("ns/b"), &remote).await.unwrap(),
            None
        );
        assert!(!store.unlink_blob(&repo("ns/b"), &remote).await.unwrap());
    }

    #[tokio::test]
    async fn links_that_imports_made_before_become_remote_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let uploaded = Digest::sha256_of(b"uploaded");
        let imported = Digest::sha256_of(b"imported");
        {
            // The schema before migration 0008, as an import left it: a remote link also in
            // `blobs` (with the declared size) and `repository_blobs`.
            let pool = super::super::pool_at_migration(&path, 7).await;
            let now = Utc::now();
            sqlx::query("INSERT INTO repositories (id, name, created_at) VALUES (1, 'ns/app', ?)")
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            for (digest, size) in [(&uploaded, 8), (&imported, 999)] {
                sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)")
                    .bind(digest.to_string())
                    .bind(size)
                    .bind(now)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query(
                    "INSERT INTO repository_blobs (repository_id, digest, created_at)
                     VALUES (1, ?, ?)",
                )
                .bind(digest.to_string())
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            }
            sqlx::query(
                "INSERT INTO remote_blobs (repository_id, digest, source, insecure)
                 VALUES (1, ?, 'remote.example/team/app', 1)",
            )
            .bind(imported.to_string())
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteMetadata::open(&path).await.unwrap();
        assert_eq!(
            store.blob_size(&repo("ns/app"), &uploaded).await.unwrap(),
            Some(8)
        );
        assert_eq!(
            store.blob_size(&repo("ns/app"), &imported).await.unwrap(),
            None
        );
        assert_eq!(
            store.remote_blob(&repo("ns/app"), &imported).await.unwrap(),
            Some(RemoteBlob {
                source: RemoteSource {
                    repository: "remote.example/team/app".into(),
                    insecure: true,
                },
                size: 999,
            })
        );
        let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE digest = ?")
            .bind(imported.to_string())
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(orphans, 0, "the declared size is gone from blobs");
    }

    #[tokio::test]
    async fn referrers_stored_without_artifact_type_get_their_config_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let subject = Digest::sha256_of(b"subject");
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":7}}}}"#,
            Digest::sha256_of(b"{}")
        );
        let digest = Digest::sha256_of(content.as_bytes());
        {
            // The schema before migration 0011, with a referrer stored as it was then.
            let pool = super::super::pool_at_migration(&path, 10).await;
            sqlx::query(
                "INSERT INTO repositories (id, name, created_at) VALUES (1, 'ns/r', 'now')",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO manifests (digest, media_type, artifact_type, subject, size, content, created_at)
                 VALUES (?, 'application/vnd.oci.image.manifest.v1+json', NULL, ?, ?, ?, 'now')",
            )
            .bind(digest.to_string())
            .bind(subject.to_string())
            .bind(content.len() as i64)
            .bind(content.as_bytes())
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO repository_manifests (repository_id, digest, subject, created_at)
                 VALUES (1, ?, ?, 'now')",
            )
            .bind(digest.to_string())
            .bind(subject.to_string())
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = SqliteMetadata::open(&path).await.unwrap();
        let found = store.referrers(&repo("ns/r"), &subject).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }
}
