//! What pruning and retention read and change ([`LifecycleStore`]): the inventory a plan is
//! made from, who else holds an image's content (for the bytes a plan frees), one bounded step
//! of a plan applied, pull times recorded in batches, the scheduled pruner's object and the
//! namespaces' retention policies.
//!
//! Nothing here deletes a blob or manifest row or any bytes: a step removes history items and
//! unlinks images from one repository through the image stream rules, and garbage collection
//! frees what lost its last reference.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageResult;
use super::rows::{parse_digest, size_from_db};
use crate::oci::{Digest, RepositoryName};

/// A stream a plan looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryStream {
    pub repository_id: i64,
    pub repository: RepositoryName,
    pub created_at: DateTime<Utc>,
}

/// One status history item of a stream's tag.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryItem {
    pub id: i64,
    pub repository_id: i64,
    pub tag: String,
    /// `None` for an image kept elsewhere (an external reference).
    pub digest: Option<Digest>,
    pub created_at: DateTime<Utc>,
}

/// An image (a manifest) linked into a stream's repository.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryImage {
    pub repository_id: i64,
    pub digest: Digest,
    pub media_type: String,
    /// The manifest's own bytes.
    pub size: u64,
    /// The image it is a referrer of (a signature, an SBOM), when any.
    pub subject: Option<Digest>,
    /// Its last push to this repository (linked, or pushed again).
    pub pushed_at: DateTime<Utc>,
    /// Its last pull from this repository, as recorded (up to a minute late).
    pub pulled_at: Option<DateTime<Utc>>,
    /// Some of its blobs are still only remote links here: it came from another registry.
    pub imported: bool,
}

/// What a plan is made from: the streams in scope, their history and their images.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub streams: Vec<InventoryStream>,
    /// Ordered by repository, tag, newest first.
    pub items: Vec<InventoryItem>,
    pub images: Vec<InventoryImage>,
    /// (index, child) for the indexes among `images`.
    pub children: Vec<(Digest, Digest)>,
    /// (repository id, tag) of spec tags that import from another registry
    /// (`from.kind: DockerImage`).
    pub imported_tags: Vec<(i64, String)>,
}

/// A blob or manifest and the repository links of the manifests that hold it: a blob is held by
/// each image that refers to it, a manifest by each repository that links it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHolders {
    pub content: Digest,
    /// Its stored bytes (0 when nothing is stored: a remote link never fetched).
    pub size: u64,
    /// (repository id, manifest digest) of every link holding it.
    pub holders: Vec<(i64, Digest)>,
}

/// One bounded step of a plan: history items to remove from one repository's stream, then
/// images to unlink from it, in that order (referrers and indexes before what they name).
#[derive(Debug, Clone, PartialEq)]
pub struct PruneStep {
    pub repository: RepositoryName,
    pub history_items: Vec<i64>,
    pub images: Vec<Digest>,
    /// Nothing pushed (or named by a history item made) at or after this time is removed:
    /// what a push made while the plan ran is kept whatever the plan says.
    pub keep_since: DateTime<Utc>,
}

/// What a step did; what it skipped was found referenced again when it ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneOutcome {
    pub history_items: u64,
    /// Status tags left without history, removed.
    pub tags: Vec<String>,
    pub images: Vec<Digest>,
}

/// A cluster-scoped object kept as JSON: the scheduled pruner.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub spec: String,
    pub status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// The streams of `namespace` (every namespace with `None`) with their history items and
    /// images: a few statements whatever their number.
    async fn inventory(&self, namespace: Option<&str>) -> StorageResult<Inventory>;
    /// Who holds the blobs (configs and layers) of these manifests: every repository link of a
    /// manifest that refers to one, in any repository.
    async fn content_holders(&self, manifests: &[Digest]) -> StorageResult<Vec<ContentHolders>>;
    /// How many images `namespace` holds as people push them: distinct digests linked in its
    /// streams, neither referrers (signatures, SBOMs) nor an index's platform manifests counted
    /// apart from their image. One statement, for pages that show it.
    async fn image_count(&self, namespace: &str) -> StorageResult<u64>;
    /// Applies one step in one transaction; each item and image is checked again first: an
    /// image still named by a tag or history item, a child of an image still linked, the
    /// subject of a referrer still linked, or pushed since `keep_since`, stays.
    async fn apply_prune(&self, step: &PruneStep) -> StorageResult<PruneOutcome>;
    /// Records pulls: each image's last pull in its repository moves to the given time when
    /// later than the recorded one. Images gone meanwhile are skipped.
    async fn record_pulls(
        &self,
        pulls: &[(RepositoryName, Digest, DateTime<Utc>)],
    ) -> StorageResult<()>;

    /// The scheduled pruner's object, when made.
    async fn image_pruner(&self, name: &str) -> StorageResult<Option<StoredObject>>;
    /// Makes or replaces its spec (the status stays); the object as stored.
    async fn put_image_pruner(&self, name: &str, spec: &str) -> StorageResult<StoredObject>;
    /// Records the status of its last run; false when it is gone.
    async fn set_image_pruner_status(&self, name: &str, status: &str) -> StorageResult<bool>;

    /// A namespace's retention policies, in name order.
    async fn retention_policies(&self, namespace: &str) -> StorageResult<Vec<StoredObject>>;
    /// Every namespace's, for the scheduler.
    async fn all_retention_policies(&self) -> StorageResult<Vec<StoredObject>>;
    async fn retention_policy(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<StoredObject>>;
    /// Makes a policy (`create`: false when it exists) or replaces its spec (else: false when
    /// absent); its namespace must exist.
    async fn put_retention_policy(
        &self,
        namespace: &str,
        name: &str,
        spec: &str,
        create: bool,
    ) -> StorageResult<bool>;
    async fn delete_retention_policy(&self, namespace: &str, name: &str) -> StorageResult<bool>;
    async fn set_retention_status(
        &self,
        namespace: &str,
        name: &str,
        status: &str,
    ) -> StorageResult<bool>;
}

// Rows both SQL backends read, and how they become records.

/// [`LifecycleStore::image_count`]'s statement, the namespace being `param`.
pub(super) fn image_count_sql(param: &str) -> String {
    format!(
        "SELECT COUNT(DISTINCT x.digest) FROM repository_manifests x
         JOIN image_streams s ON s.repository_id = x.repository_id
         JOIN namespaces n ON n.id = s.namespace_id
         WHERE n.name = {param} AND x.subject IS NULL
           AND NOT EXISTS (
               SELECT 1 FROM manifest_references r
               JOIN repository_manifests p ON p.digest = r.digest
               JOIN image_streams ps ON ps.repository_id = p.repository_id
               WHERE r.child = x.digest AND r.kind = 'manifest'
                 AND ps.namespace_id = s.namespace_id)"
    )
}

/// The inventory's five statements, for the streams that `scope` (a backend's "namespace is the
/// first parameter, or it is NULL" over `n.name`) lets through.
pub(super) struct InventorySql {
    pub streams: String,
    pub items: String,
    pub images: String,
    pub children: String,
    pub specs: String,
}

impl InventorySql {
    pub fn new(scope: &str) -> Self {
        let in_scope = format!(
            "JOIN image_streams s ON s.repository_id = x.repository_id
             JOIN namespaces n ON n.id = s.namespace_id WHERE {scope}"
        );
        InventorySql {
            streams: format!(
                "SELECT s.repository_id, n.name AS namespace, s.name, s.created_at
                 FROM image_streams s JOIN namespaces n ON n.id = s.namespace_id
                 WHERE {scope} ORDER BY n.name, s.name"
            ),
            items: format!(
                "SELECT x.id, x.repository_id, x.tag, x.digest, x.created_at FROM tag_history x
                 {in_scope} ORDER BY x.repository_id, x.tag, x.id DESC"
            ),
            images: format!(
                "SELECT x.repository_id, x.digest, m.media_type, m.size, x.subject,
                        coalesce(x.pushed_at, x.created_at) AS pushed_at, x.pulled_at,
                        EXISTS (SELECT 1 FROM manifest_references r
                                JOIN remote_blobs b ON b.repository_id = x.repository_id
                                                   AND b.digest = r.child
                                WHERE r.digest = x.digest AND r.kind = 'blob') AS imported
                 FROM repository_manifests x JOIN manifests m ON m.digest = x.digest
                 {in_scope}"
            ),
            children: format!(
                "SELECT DISTINCT r.digest, r.child FROM repository_manifests x
                 JOIN manifest_references r ON r.digest = x.digest AND r.kind = 'manifest'
                 {in_scope}"
            ),
            specs: format!(
                "SELECT x.repository_id, x.name, x.reference FROM spec_tags x {in_scope}"
            ),
        }
    }
}

/// What the inventory's statements read, as records.
pub(super) fn assemble_inventory(
    streams: Vec<StreamRow>,
    items: Vec<ItemRow>,
    images: Vec<ImageRow>,
    children: Vec<ChildRow>,
    specs: Vec<SpecRow>,
) -> StorageResult<Inventory> {
    Ok(Inventory {
        streams: streams
            .into_iter()
            .map(StreamRow::into_record)
            .collect::<StorageResult<_>>()?,
        items: items
            .into_iter()
            .map(ItemRow::into_record)
            .collect::<StorageResult<_>>()?,
        images: images
            .into_iter()
            .map(ImageRow::into_record)
            .collect::<StorageResult<_>>()?,
        children: children
            .into_iter()
            .map(ChildRow::into_record)
            .collect::<StorageResult<_>>()?,
        imported_tags: imported_tags(specs),
    })
}

/// A stream with its namespace's name.
#[derive(sqlx::FromRow)]
pub(super) struct StreamRow {
    repository_id: i64,
    namespace: String,
    name: String,
    created_at: DateTime<Utc>,
}

impl StreamRow {
    fn into_record(self) -> StorageResult<InventoryStream> {
        Ok(InventoryStream {
            repository_id: self.repository_id,
            repository: RepositoryName::of_stream(&self.namespace, &self.name).map_err(|err| {
                super::StorageError::Corrupt(format!(
                    "stream {}/{}: {err}",
                    self.namespace, self.name
                ))
            })?,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ItemRow {
    id: i64,
    repository_id: i64,
    tag: String,
    digest: Option<String>,
    created_at: DateTime<Utc>,
}

impl ItemRow {
    fn into_record(self) -> StorageResult<InventoryItem> {
        Ok(InventoryItem {
            id: self.id,
            repository_id: self.repository_id,
            tag: self.tag,
            digest: self.digest.as_deref().map(parse_digest).transpose()?,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ImageRow {
    repository_id: i64,
    digest: String,
    media_type: String,
    size: i64,
    subject: Option<String>,
    pushed_at: DateTime<Utc>,
    pulled_at: Option<DateTime<Utc>>,
    imported: bool,
}

impl ImageRow {
    fn into_record(self) -> StorageResult<InventoryImage> {
        Ok(InventoryImage {
            repository_id: self.repository_id,
            digest: parse_digest(&self.digest)?,
            media_type: self.media_type,
            size: size_from_db(self.size)?,
            subject: self.subject.as_deref().map(parse_digest).transpose()?,
            pushed_at: self.pushed_at,
            pulled_at: self.pulled_at,
            imported: self.imported,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ChildRow {
    digest: String,
    child: String,
}

impl ChildRow {
    fn into_record(self) -> StorageResult<(Digest, Digest)> {
        Ok((parse_digest(&self.digest)?, parse_digest(&self.child)?))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SpecRow {
    repository_id: i64,
    name: String,
    reference: String,
}

/// The spec tags that import from another registry, of those read.
fn imported_tags(rows: Vec<SpecRow>) -> Vec<(i64, String)> {
    rows.into_iter()
        .filter(|row| {
            serde_json::from_str::<serde_json::Value>(&row.reference)
                .ok()
                .is_some_and(|reference| reference["from"]["kind"] == "DockerImage")
        })
        .map(|row| (row.repository_id, row.name))
        .collect()
}

/// One holder of one blob.
#[derive(sqlx::FromRow)]
pub(super) struct HolderRow {
    content: String,
    size: Option<i64>,
    repository_id: i64,
    holder: String,
}

/// Holder rows grouped by blob.
pub(super) fn group_holders(rows: Vec<HolderRow>) -> StorageResult<Vec<ContentHolders>> {
    let mut grouped: std::collections::BTreeMap<String, ContentHolders> = Default::default();
    for row in rows {
        let entry = match grouped.entry(row.content) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let content = parse_digest(entry.key())?;
                entry.insert(ContentHolders {
                    content,
                    size: size_from_db(row.size.unwrap_or_default())?,
                    holders: Vec::new(),
                })
            }
        };
        entry
            .holders
            .push((row.repository_id, parse_digest(&row.holder)?));
    }
    Ok(grouped.into_values().collect())
}

#[derive(sqlx::FromRow)]
pub(super) struct ObjectRow {
    namespace: Option<String>,
    name: String,
    uid: String,
    spec: String,
    status: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ObjectRow {
    pub fn into_record(self) -> StoredObject {
        StoredObject {
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            spec: self.spec,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
