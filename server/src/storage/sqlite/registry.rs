//! [`MetadataStore`] on SQLite: repositories, blob links, uploads, manifests and tags, with
//! each push recorded in its image stream (tag history and event) in the same transaction.

use std::str::FromStr;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{
    NewEvent, SqliteMetadata, TagPoint, create_stream_row, ensure_repository, json_array, move_tag,
    move_tracking_tags, parse_digest, record_stream_event, size_from_db, size_to_db, stream_row,
};
use crate::registry::names::{RepositoryName, Tag};
use crate::storage::{
    Algorithm, Digest, EventType, MetadataStore, NewManifest, PutManifestOutcome, Referrer,
    RemoteSource, RepositorySummary, StorageError, StorageResult, StoredManifest, UploadId,
    UploadSession,
};

fn manifest_from_row(row: (String, String, Vec<u8>)) -> StorageResult<StoredManifest> {
    let (digest, media_type, content) = row;
    Ok(StoredManifest {
        digest: parse_digest(&digest)?,
        media_type,
        content: Bytes::from(content),
    })
}

async fn link_blob_in(
    conn: &mut SqliteConnection,
    repository_id: i64,
    digest: &Digest,
    size: u64,
) -> StorageResult<()> {
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
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
    Ok(())
}

/// Digests from `wanted` (a JSON array) that are not in `table` for the repository.
async fn missing_in(
    conn: &mut SqliteConnection,
    table: &str,
    repository_id: i64,
    wanted: &[Digest],
) -> StorageResult<Vec<Digest>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let wanted_json = json_array(wanted)?;
    let sql = format!(
        "SELECT DISTINCT value FROM json_each(?) WHERE value NOT IN
         (SELECT digest FROM {table} WHERE repository_id = ?)"
    );
    let missing: Vec<String> = sqlx::query_scalar(&sql)
        .bind(wanted_json)
        .bind(repository_id)
        .fetch_all(conn)
        .await?;
    missing.iter().map(|d| parse_digest(d)).collect()
}

/// Records a push in the repository's image stream: creates the stream (and namespace) when
/// needed, moves the tag (with a history item) when it names another image, moves the tags that
/// track it, and logs the event.
async fn record_push(
    conn: &mut SqliteConnection,
    repository: &RepositoryName,
    repository_id: i64,
    digest: &Digest,
    tag: Option<&Tag>,
) -> StorageResult<()> {
    let (created, generation) = match stream_row(conn, repository).await? {
        Some((_, generation, _)) => (false, generation),
        None => {
            create_stream_row(conn, repository).await?;
            (true, 1)
        }
    };
    let event_type = if created {
        EventType::Added
    } else {
        EventType::Modified
    };
    let mut event = NewEvent::stream(event_type, repository, "push");
    let mut changed = created;
    if let Some(tag) = tag {
        let point = TagPoint {
            digest: Some(digest),
            external_reference: None,
            generation,
        };
        if let Some(before) = move_tag(conn, repository_id, tag.as_str(), &point).await? {
            move_tracking_tags(conn, repository, repository_id, tag.as_str(), digest).await?;
            event.tag = Some(tag.as_str());
            event.old_image = before;
            event.new_image = Some(digest.to_string());
            changed = true;
        }
    }
    if changed {
        record_stream_event(conn, repository_id, event).await?;
    }
    Ok(())
}

/// Removes a tag, spec and status (its history goes with it). Returns whether it had a spec
/// tag (whose removal is a spec change: the caller raises the stream's generation).
pub(super) async fn untag(
    conn: &mut SqliteConnection,
    repository_id: i64,
    tag: &str,
) -> StorageResult<bool> {
    let spec_removed = sqlx::query("DELETE FROM spec_tags WHERE repository_id = ? AND name = ?")
        .bind(repository_id)
        .bind(tag)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0;
    sqlx::query("DELETE FROM tags WHERE repository_id = ? AND name = ?")
        .bind(repository_id)
        .bind(tag)
        .execute(conn)
        .await?;
    Ok(spec_removed)
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
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "WITH listed AS (
                 SELECT id, name FROM repositories r
                 WHERE name > ?
                   AND EXISTS (SELECT 1 FROM repository_manifests m WHERE m.repository_id = r.id)
                 ORDER BY name LIMIT ?
             )
             SELECT l.name,
                    (SELECT COUNT(*) FROM repository_manifests m WHERE m.repository_id = l.id),
                    t.name
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
        let mut summaries: Vec<RepositorySummary> = Vec::new();
        for (name, manifest_count, tag) in rows {
            if summaries.last().is_none_or(|s| s.name != name) {
                summaries.push(RepositorySummary {
                    name,
                    tags: Vec::new(),
                    manifest_count: size_from_db(manifest_count)?,
                });
            }
            if let (Some(tag), Some(summary)) = (tag, summaries.last_mut()) {
                summary.tags.push(tag);
            }
        }
        Ok(summaries)
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
        blobs: &[(Digest, u64)],
        source: &RemoteSource,
    ) -> StorageResult<()> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        for (digest, size) in blobs {
            link_blob_in(&mut tx, repository_id, digest, *size).await?;
            sqlx::query(
                "INSERT INTO remote_blobs (repository_id, digest, source, insecure) VALUES (?, ?, ?, ?)
                 ON CONFLICT (repository_id, digest)
                 DO UPDATE SET source = excluded.source, insecure = excluded.insecure",
            )
            .bind(repository_id)
            .bind(digest.to_string())
            .bind(&source.repository)
            .bind(source.insecure)
            .execute(&mut *tx)
            .await?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    async fn remote_source(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<RemoteSource>> {
        let row: Option<(String, bool)> = sqlx::query_as(
            "SELECT r.source, r.insecure FROM remote_blobs r
             JOIN repositories p ON p.id = r.repository_id
             WHERE p.name = ? AND r.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(repository, insecure)| RemoteSource {
            repository,
            insecure,
        }))
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
        let result = sqlx::query(
            "DELETE FROM repository_blobs
             WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
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
        let row: Option<(i64, String, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT size, hash_algorithm, hash_state, started_at FROM uploads
             WHERE id = ? AND repository = ?",
        )
        .bind(id.0.to_string())
        .bind(repository.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some((size, algorithm, hash_state, started_at)) = row else {
            return Ok(None);
        };
        Ok(Some(UploadSession {
            id,
            repository: repository.clone(),
            size: size_from_db(size)?,
            hash_algorithm: Algorithm::from_str(&algorithm)
                .map_err(|err| StorageError::Corrupt(err.to_string()))?,
            hash_state,
            started_at,
        }))
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

    async fn put_manifest(
        &self,
        repository: &RepositoryName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
    ) -> StorageResult<PutManifestOutcome> {
        let mut tx = self.begin_write().await?;
        let repository_id = ensure_repository(&mut tx, repository).await?;
        let mut missing =
            missing_in(&mut tx, "repository_blobs", repository_id, &manifest.blobs).await?;
        missing.extend(
            missing_in(
                &mut tx,
                "repository_manifests",
                repository_id,
                &manifest.manifests,
            )
            .await?,
        );
        if !missing.is_empty() {
            tx.rollback().await?;
            return Ok(PutManifestOutcome::MissingReferences(missing));
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
                .map(|d| (d, "blob"))
                .chain(manifest.manifests.iter().map(|d| (d, "manifest")));
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
            "INSERT INTO repository_manifests (repository_id, digest, subject, created_at)
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(&subject)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        record_push(&mut tx, repository, repository_id, &manifest.digest, tag).await?;
        self.commit(tx).await?;
        Ok(PutManifestOutcome::Stored)
    }

    async fn manifest_by_tag(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> StorageResult<Option<StoredManifest>> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN repositories r ON r.id = t.repository_id
             JOIN manifests m ON m.digest = t.digest
             WHERE r.name = ? AND t.name = ?",
        )
        .bind(repository.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(manifest_from_row).transpose()
    }

    async fn manifest_by_digest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<StoredManifest>> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM repository_manifests rm
             JOIN repositories r ON r.id = rm.repository_id
             JOIN manifests m ON m.digest = rm.digest
             WHERE r.name = ? AND rm.digest = ?",
        )
        .bind(repository.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(manifest_from_row).transpose()
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let Some((repository_id, _, _)) = stream_row(&mut tx, repository).await? else {
            return Ok(false);
        };
        // Tags naming it, and history items of it, go with it (ON DELETE CASCADE).
        let deleted =
            sqlx::query("DELETE FROM repository_manifests WHERE repository_id = ? AND digest = ?")
                .bind(repository_id)
                .bind(digest.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        if deleted {
            let mut event = NewEvent::stream(EventType::Modified, repository, "delete-image");
            event.old_image = Some(digest.to_string());
            record_stream_event(&mut tx, repository_id, event).await?;
        }
        self.commit(tx).await?;
        Ok(deleted)
    }

    async fn delete_tag(&self, repository: &RepositoryName, tag: &Tag) -> StorageResult<bool> {
        let mut tx = self.begin_write().await?;
        let Some((repository_id, generation, _)) = stream_row(&mut tx, repository).await? else {
            return Ok(false);
        };
        let current: Option<String> = sqlx::query_scalar(
            "SELECT digest FROM tags WHERE repository_id = ? AND name = ? AND digest IS NOT NULL",
        )
        .bind(repository_id)
        .bind(tag.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(false);
        };
        if untag(&mut tx, repository_id, tag.as_str()).await? {
            sqlx::query("UPDATE image_streams SET generation = ? WHERE repository_id = ?")
                .bind(generation + 1)
                .bind(repository_id)
                .execute(&mut *tx)
                .await?;
        }
        let mut event = NewEvent::stream(EventType::Modified, repository, "untag");
        event.tag = Some(tag.as_str());
        event.old_image = Some(current);
        record_stream_event(&mut tx, repository_id, event).await?;
        self.commit(tx).await?;
        Ok(true)
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
        let rows: Vec<(String, String, i64, Option<String>, Option<String>)> = sqlx::query_as(
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
        rows.into_iter()
            .map(|(digest, media_type, size, artifact_type, annotations)| {
                Ok(Referrer {
                    digest: parse_digest(&digest)?,
                    media_type,
                    size: size_from_db(size)?,
                    artifact_type,
                    annotations,
                })
            })
            .collect()
    }

    async fn check(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteMetadata) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadata::open(&dir.path().join("berth.db"))
            .await
            .unwrap();
        (dir, store)
    }

    fn repo(name: &str) -> RepositoryName {
        name.parse().unwrap()
    }

    fn manifest(content: &str, blobs: Vec<Digest>, subject: Option<Digest>) -> NewManifest {
        NewManifest {
            digest: Digest::sha256_of(content.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::from(content.to_owned()),
            artifact_type: None,
            subject,
            annotations: None,
            image: None,
            blobs,
            manifests: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_manifest_needs_its_blobs_in_the_same_repository() {
        let (_dir, store) = store().await;
        let layer = Digest::sha256_of(b"layer");
        let m = manifest("{\"m\":1}", vec![layer.clone()], None);
        let tag: Tag = "v1".parse().unwrap();
        assert_eq!(
            store
                .put_manifest(&repo("a/b"), &m, Some(&tag))
                .await
                .unwrap(),
            PutManifestOutcome::MissingReferences(vec![layer.clone()])
        );
        // Nothing was written, not even the repository.
        assert!(!store.repository_exists(&repo("a/b")).await.unwrap());

        store.link_blob(&repo("ns/other"), &layer, 5).await.unwrap();
        assert!(matches!(
            store
                .put_manifest(&repo("a/b"), &m, Some(&tag))
                .await
                .unwrap(),
            PutManifestOutcome::MissingReferences(_)
        ));
        assert_eq!(
            store
                .mount_blob(&repo("ns/other"), &repo("a/b"), &layer)
                .await
                .unwrap(),
            Some(5)
        );
        assert_eq!(
            store
                .put_manifest(&repo("a/b"), &m, Some(&tag))
                .await
                .unwrap(),
            PutManifestOutcome::Stored
        );
        let got = store
            .manifest_by_tag(&repo("a/b"), &tag)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.digest, m.digest);
        assert_eq!(
            store.list_repositories(None, 10).await.unwrap(),
            vec!["a/b"]
        );
    }

    #[tokio::test]
    async fn deleting_a_manifest_removes_its_tags_and_pagination_is_ordered() {
        let (_dir, store) = store().await;
        let r = repo("ns/r");
        let m = manifest("{}", vec![], None);
        for t in ["c", "a", "b"] {
            store
                .put_manifest(&r, &m, Some(&t.parse().unwrap()))
                .await
                .unwrap();
        }
        assert_eq!(store.list_tags(&r, None, 2).await.unwrap(), vec!["a", "b"]);
        assert_eq!(store.list_tags(&r, Some("b"), 2).await.unwrap(), vec!["c"]);
        let summaries = store.repository_summaries(None, 10, 2).await.unwrap();
        assert_eq!(summaries[0].tags, vec!["a", "b"]);
        assert!(store.delete_manifest(&r, &m.digest).await.unwrap());
        assert!(store.list_tags(&r, None, 10).await.unwrap().is_empty());
        assert!(
            store
                .manifest_by_digest(&r, &m.digest)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.delete_manifest(&r, &m.digest).await.unwrap());
    }

    #[tokio::test]
    async fn referrers_are_found_by_subject_within_the_repository() {
        let (_dir, store) = store().await;
        let r = repo("ns/r");
        let subject = manifest("{\"subject\":true}", vec![], None);
        store.put_manifest(&r, &subject, None).await.unwrap();
        let mut signature = manifest("{\"sig\":1}", vec![], Some(subject.digest.clone()));
        signature.artifact_type = Some("application/vnd.example.sig".into());
        store.put_manifest(&r, &signature, None).await.unwrap();
        store
            .put_manifest(&repo("ns/elsewhere"), &signature, None)
            .await
            .unwrap();
        let found = store.referrers(&r, &subject.digest).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, signature.digest);
        assert_eq!(
            found[0].artifact_type.as_deref(),
            Some("application/vnd.example.sig")
        );
    }

    #[tokio::test]
    async fn upload_progress_is_compare_and_set() {
        let (_dir, store) = store().await;
        let session = UploadSession {
            id: UploadId::new(),
            repository: repo("ns/r"),
            size: 0,
            hash_algorithm: Algorithm::Sha256,
            hash_state: Algorithm::Sha256.hasher().save(),
            started_at: Utc::now(),
        };
        store.create_upload(&session).await.unwrap();
        assert!(store.advance_upload(session.id, 0, 10, b"s").await.unwrap());
        assert!(!store.advance_upload(session.id, 0, 20, b"s").await.unwrap());
        assert!(
            store
                .get_upload(&repo("ns/other"), session.id)
                .await
                .unwrap()
                .is_none()
        );
        let loaded = store
            .get_upload(&repo("ns/r"), session.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded.size, 10);
        assert_eq!(store.count_uploads().await.unwrap(), 1);
        let digest = Digest::sha256_of(b"0123456789");
        store.finish_upload(&loaded, &digest, 10).await.unwrap();
        assert_eq!(store.count_uploads().await.unwrap(), 0);
        assert_eq!(
            store.blob_size(&repo("ns/r"), &digest).await.unwrap(),
            Some(10)
        );
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
            let pool = super::super::pool_migrated_until(&path, 10).await;
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
