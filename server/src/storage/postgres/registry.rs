//! [`MetadataStore`] on PostgreSQL: repositories, blob links, uploads, manifests and tags, with
//! each push recorded in its image stream (tag history and event) in the same transaction.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{PostgresDatabase, ensure_repository};
use crate::oci::{Digest, RepositoryName, Tag};
use crate::storage::quota_rules::Admission;
use crate::storage::rows::{
    HeldSize, ManifestRow, ReferrerRow, RemoteBlobRow, RepositoryTagRow, UploadRow, check_held,
    distinct_digests, repository_summaries, size_from_db, size_to_db, upload_ids,
};
use crate::storage::{
    BlobReview, Candidate, ManifestReview, MetadataStore, NewManifest, PutManifestOutcome,
    Referenced, Referrer, RemoteBlob, RemoteSource, RepositorySummary, SizeMismatch, StorageResult,
    StoredManifest, UploadId, UploadSession, stream_rules,
};

/// Links verified bytes (`size` is theirs) into a repository, replacing its remote link.
async fn link_blob_in(
    conn: &mut PgConnection,
    repository_id: i64,
    digest: &Digest,
    size: u64,
) -> StorageResult<()> {
    let now = Utc::now();
    // Every caller links bytes it verified, so their size is the truth.
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (digest) DO UPDATE SET size = excluded.size WHERE blobs.size <> excluded.size",
    )
    .bind(digest.to_string())
    .bind(size_to_db(size)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(repository_id)
    .bind(digest.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM remote_blobs WHERE repository_id = $1 AND digest = $2")
        .bind(repository_id)
        .bind(digest.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the repository holds of each referenced digest: a linked blob's stored size, else a
/// remote link's declared size (`blobs`), or a linked manifest's size (`manifests`).
const BLOB_SIZES: &str = "SELECT w.digest,
        coalesce((SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                  WHERE rb.repository_id = $2 AND rb.digest = w.digest),
                 (SELECT r.size FROM remote_blobs r
                  WHERE r.repository_id = $2 AND r.digest = w.digest)) AS size
    FROM unnest($1::text[]) AS w(digest)";
const MANIFEST_SIZES: &str = "SELECT w.digest,
        (SELECT m.size FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest
         WHERE rm.repository_id = $2 AND rm.digest = w.digest) AS size
    FROM unnest($1::text[]) AS w(digest)";

/// Checks references against what the repository holds (`sizes`, one of the queries above).
async fn check_references(
    conn: &mut PgConnection,
    sizes: &str,
    repository_id: i64,
    wanted: &[Referenced],
    missing: &mut Vec<Digest>,
    mismatched: &mut Vec<SizeMismatch>,
) -> StorageResult<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let digests: Vec<String> = distinct_digests(wanted)
        .into_iter()
        .map(Digest::to_string)
        .collect();
    let rows: Vec<HeldSize> = sqlx::query_as(sizes)
        .bind(&digests)
        .bind(repository_id)
        .fetch_all(conn)
        .await?;
    check_held(wanted, rows, missing, mismatched)
}

#[async_trait]
impl MetadataStore for PostgresDatabase {
    async fn repository_exists(&self, name: &RepositoryName) -> StorageResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repositories WHERE name = $1)")
                .bind(name.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn namespace_exists(&self, namespace: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1)")
                .bind(namespace)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r
             WHERE name > $1 AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
             ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
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
                 WHERE name > $1
                   AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
                 ORDER BY name LIMIT $2
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
             ) t ON t.repository_id = l.id AND t.position <= $3
             ORDER BY l.name, t.name",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .bind(i64::from(tag_limit))
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
             WHERE r.name = $1 AND rb.digest = $2",
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
        let mut tx = self.begin().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        for blob in blobs {
            // Never into `blobs` or `repository_blobs`: naming a digest proves nothing.
            sqlx::query(
                "INSERT INTO remote_blobs (repository_id, digest, source, insecure, size)
                 SELECT $1, $2, $3, $4, $5
                 WHERE NOT EXISTS (SELECT 1 FROM repository_blobs
                                   WHERE repository_id = $1 AND digest = $2)
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
        tx.commit().await?;
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
             WHERE p.name = $1 AND r.digest = $2",
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
        let mut tx = self.begin().await?;
        // Locked: an unlink of the remote link waits, rather than being undone by this link.
        let repository_id: Option<i64> = sqlx::query_scalar(
            "SELECT r.repository_id FROM remote_blobs r
             JOIN repositories p ON p.id = r.repository_id
             WHERE p.name = $1 AND r.digest = $2
             FOR UPDATE OF r",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(repository_id) = repository_id else {
            return Ok(false);
        };
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn link_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> StorageResult<()> {
        let mut tx = self.begin().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<u64>> {
        let mut tx = self.begin().await?;
        // Shared lock on the source link: it cannot be unlinked before this mount commits.
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
             JOIN repositories r ON r.id = rb.repository_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2
             FOR SHARE OF rb",
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
        tx.commit().await?;
        Ok(Some(size))
    }

    async fn unlink_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let mut tx = self.begin().await?;
        let mut removed = 0;
        for table in ["repository_blobs", "remote_blobs"] {
            removed += sqlx::query(&format!(
                "DELETE FROM {table}
                 WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
                   AND digest = $2"
            ))
            .bind(repository.as_str())
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn create_upload(&self, session: &UploadSession) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, hash_algorithm, hash_state, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(session.id.0.to_string())
        .bind(session.repository.as_str())
        .bind(size_to_db(session.size)?)
        .bind(session.hash_algorithm.as_str())
        .bind(&session.hash_state)
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
             WHERE id = $1 AND repository = $2",
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
            "UPDATE uploads SET size = $1, hash_state = $2, updated_at = $3
             WHERE id = $4 AND size = $5",
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
        let mut tx = self.begin().await?;
        let repository_id = ensure_repository(&mut tx, &session.repository).await?;
        link_blob_in(&mut tx, repository_id, digest, size).await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(session.id.0.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_upload(&self, id: UploadId) -> StorageResult<bool> {
        let result = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn upload_exists(&self, id: UploadId) -> StorageResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM uploads WHERE id = $1)")
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
                 (SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2)
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
        let mut tx = self.begin_stream_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        // The links it relies on are held until it commits: garbage collection cannot remove
        // one as unreferenced in the meantime (it takes them without waiting, and comes back).
        sqlx::query(
            "SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2)
             FOR SHARE",
        )
        .bind(repository_id)
        .bind(
            distinct_digests(&manifest.blobs)
                .into_iter()
                .map(Digest::to_string)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) ON CONFLICT DO NOTHING",
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
            let (children, kinds): (Vec<String>, Vec<&str>) = manifest
                .blobs
                .iter()
                .map(|r| (r.digest.to_string(), "blob"))
                .chain(
                    manifest
                        .manifests
                        .iter()
                        .map(|r| (r.digest.to_string(), "manifest")),
                )
                .unzip();
            sqlx::query(
                "INSERT INTO manifest_references (digest, child, kind)
                 SELECT $1, child, kind FROM unnest($2::text[], $3::text[]) AS r(child, kind)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&digest)
            .bind(&children)
            .bind(&kinds)
            .execute(&mut *tx)
            .await?;
        }
        // A push of an image the repository has already is its last push now (what pruning
        // keeps by age and retention sorts by).
        sqlx::query(
            "INSERT INTO repository_manifests (repository_id, digest, subject, created_at)
             VALUES ($1, $2, $3, $4)
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
             WHERE r.name = $1 AND t.name = $2",
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
             WHERE r.name = $1 AND rm.digest = $2",
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
        let mut tx = self.begin_stream_write().await?;
        let deleted = stream_rules::delete_manifest(&mut *tx, repository, digest).await?;
        if deleted {
            self.commit(tx).await?;
        }
        Ok(deleted)
    }

    async fn delete_tag(&self, repository: &RepositoryName, tag: &Tag) -> StorageResult<bool> {
        let mut tx = self.begin_stream_write().await?;
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
             WHERE r.name = $1 AND t.name > $2 AND t.digest IS NOT NULL
             ORDER BY t.name LIMIT $3",
        )
        .bind(repository.as_str())
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
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
             WHERE rm.repository_id = (SELECT id FROM repositories WHERE name = $1)
               AND rm.subject = $2
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
