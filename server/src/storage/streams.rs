//! What the metadata store keeps of namespaces, image streams, their tags and the event log, and
//! the [`ImageStreamStore`] trait that reads and changes them.
//!
//! Every change is one transaction that also appends to the event log; the event's id becomes
//! the changed object's resourceVersion.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageResult;
use crate::oci::Digest;
use crate::oci::RepositoryName;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamespaceRecord {
    pub name: String,
    pub uid: String,
    pub resource_version: i64,
    pub labels: Labels,
    pub annotations: Labels,
    pub created_at: DateTime<Utc>,
}

/// One image a tag named: a status history item.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TagItem {
    /// The image, when it is in this registry.
    pub digest: Option<Digest>,
    /// The pull spec of an image kept elsewhere.
    pub external_reference: Option<String>,
    pub generation: i64,
    pub created: DateTime<Utc>,
    /// Who moved the tag here (a push, `oc tag`, a rollback); unknown for items written
    /// before Berth recorded it, and for scheduled imports.
    #[serde(default)]
    pub actor: Option<String>,
}

/// A tag's status: its history (newest first) and conditions (JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatusTagRecord {
    pub name: String,
    pub items: Vec<TagItem>,
    pub conditions: Option<String>,
}

/// A spec tag: the TagReference as JSON, with the generation of its last change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpecTagRecord {
    pub name: String,
    pub reference: String,
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub resource_version: i64,
    pub labels: Labels,
    pub annotations: Labels,
    pub lookup_local: bool,
    pub created_at: DateTime<Utc>,
    /// In name order.
    pub spec_tags: Vec<SpecTagRecord>,
    /// In name order.
    pub status_tags: Vec<StatusTagRecord>,
}

impl StreamRecord {
    pub fn repository(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn spec_tag(&self, name: &str) -> Option<&SpecTagRecord> {
        self.spec_tags.iter().find(|t| t.name == name)
    }

    pub fn status_tag(&self, name: &str) -> Option<&StatusTagRecord> {
        self.status_tags.iter().find(|t| t.name == name)
    }
}

/// A stream as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSummaryRecord {
    pub name: String,
    pub tags: u64,
    pub size: u64,
    pub updated: Option<DateTime<Utc>>,
    pub latest_tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySort {
    Name,
    /// Most recently changed first.
    Updated,
    /// Largest first.
    Size,
}

/// A namespace with how many streams it holds and the bytes of the images their tags name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceUsage {
    pub name: String,
    pub streams: u64,
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

/// An image (a manifest) with what was read of it at push time.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// JSON written by the image stream module at push time.
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a tag is to point.
#[derive(Debug, Clone, PartialEq)]
pub enum TagTarget {
    /// An image in this registry: `digest` as found in repository `source`. When `source` is
    /// another repository, the image (with its blobs and child manifests) is linked into the
    /// stream's repository so that it can be pulled from there.
    Local {
        source: RepositoryName,
        digest: Digest,
    },
    /// An image kept elsewhere, by pull spec.
    External {
        reference: String,
        digest: Option<Digest>,
    },
}

/// A spec tag to write, and where its status is to point as a result.
#[derive(Debug, Clone)]
pub struct SpecTagWrite {
    pub name: String,
    /// The TagReference as JSON.
    pub reference: String,
    pub target: Option<TagTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The stream must not exist yet.
    Create,
    /// The stream must exist.
    Update,
    /// Create it when missing (the namespace too).
    Ensure,
}

/// One change to an image stream, applied atomically.
#[derive(Debug, Clone)]
pub struct StreamChange {
    pub repository: RepositoryName,
    pub presence: Presence,
    /// Refuse the change unless the stream is at this resourceVersion.
    pub expected_resource_version: Option<i64>,
    /// Labels and annotations to replace the stream's with.
    pub metadata: Option<(Labels, Labels)>,
    pub lookup_local: Option<bool>,
    /// A spec change: the stream's generation goes up by one, and the written spec tags and
    /// the items their targets add carry the new generation.
    pub set_spec_tags: Vec<SpecTagWrite>,
    /// Tags to remove, spec and status.
    pub remove_tags: Vec<String>,
    /// Status-only moves (a push recorded by an ImageStreamMapping): the items carry the
    /// stream's generation and the spec is untouched.
    pub move_tags: Vec<(String, TagTarget)>,
    /// Conditions (JSON) to set on tags, or clear with `None`: a failed import says so here
    /// and keeps the tag's image.
    pub tag_conditions: Vec<(String, Option<String>)>,
    /// Why, for the event log (`create`, `update`, `tag`, `untag`, ...).
    pub reason: &'static str,
    /// Who makes the change, for the history items it adds.
    pub actor: Option<String>,
}

impl StreamChange {
    pub fn new(repository: RepositoryName, presence: Presence, reason: &'static str) -> Self {
        StreamChange {
            repository,
            presence,
            expected_resource_version: None,
            metadata: None,
            lookup_local: None,
            set_spec_tags: Vec::new(),
            remove_tags: Vec::new(),
            move_tags: Vec::new(),
            tag_conditions: Vec::new(),
            reason,
            actor: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StreamChangeError {
    #[error("the image stream does not exist")]
    NotFound,
    #[error("the image stream already exists")]
    AlreadyExists,
    #[error("the image stream is at resourceVersion {current}, not the one given")]
    Conflict { current: i64 },
    #[error("image {digest} is not in {repository}")]
    SourceMissing { repository: String, digest: String },
    /// The change would take the namespace or the stream past a quota or limit range.
    #[error("{0}")]
    QuotaExceeded(super::quotas::QuotaRefusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ADDED" => Some(EventType::Added),
            "MODIFIED" => Some(EventType::Modified),
            "DELETED" => Some(EventType::Deleted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Namespace,
    ImageStream,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Namespace => "Namespace",
            EventKind::ImageStream => "ImageStream",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub kind: EventKind,
    pub event_type: EventType,
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub tag: Option<String>,
    pub old_image: Option<String>,
    pub new_image: Option<String>,
    /// The object's last state (a [`StreamRecord`] or [`NamespaceRecord`] as JSON), for DELETED
    /// events.
    pub object: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// Namespaces, image streams, images and the event log.
#[async_trait]
pub trait ImageStreamStore: Send + Sync + 'static {
    async fn list_namespaces(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<NamespaceRecord>>;
    async fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRecord>>;
    /// Creates a namespace; `None` when it exists already.
    async fn create_namespace(
        &self,
        name: &str,
        labels: &Labels,
        annotations: &Labels,
    ) -> StorageResult<Option<NamespaceRecord>>;
    /// Deletes a namespace with its streams and their repositories; false when absent. Each
    /// DELETED event keeps the object's last state.
    async fn delete_namespace(&self, name: &str) -> StorageResult<bool>;

    /// Streams of a namespace in name order, after `after`.
    async fn list_streams(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<StreamRecord>>;
    /// How many streams of a namespace come after `after` in name order.
    async fn count_streams_after(&self, namespace: &str, after: &str) -> StorageResult<u64>;
    /// Streams of every namespace in (namespace, name) order, after `after`.
    async fn list_all_streams(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StorageResult<Vec<StreamRecord>>;
    async fn get_stream(&self, namespace: &str, name: &str) -> StorageResult<Option<StreamRecord>>;
    /// A page of a namespace's streams whose names contain `filter`, limited to `only` when
    /// given, sorted; and how many match in all. One statement for the page and one for the
    /// count, whatever the number of streams. An image's size counts its children's (an index).
    async fn stream_summaries(
        &self,
        namespace: &str,
        filter: &str,
        only: Option<&[String]>,
        sort: SummarySort,
        offset: u64,
        limit: u32,
    ) -> StorageResult<(Vec<StreamSummaryRecord>, u64)>;
    /// Spec tags whose `importPolicy.scheduled` is set: (repository, tag, reference JSON), for
    /// the scheduled re-import.
    async fn scheduled_imports(&self) -> StorageResult<Vec<(RepositoryName, String, String)>>;
    /// Every namespace, in name order, with its streams and the bytes of the images their tags
    /// name (each image counted once per namespace).
    async fn namespace_usage(&self) -> StorageResult<Vec<NamespaceUsage>>;
    /// A stream with only the named tags (spec and status): what a page of tags needs of it.
    async fn get_stream_tags(
        &self,
        namespace: &str,
        name: &str,
        tags: &[String],
    ) -> StorageResult<Option<StreamRecord>>;
    async fn change_stream(
        &self,
        change: &StreamChange,
    ) -> StorageResult<Result<StreamRecord, StreamChangeError>>;
    /// Deletes a stream and its repository; false when absent. The DELETED event keeps the
    /// stream's last state.
    async fn delete_stream(&self, namespace: &str, name: &str) -> StorageResult<bool>;

    /// Tags of a namespace's streams as (stream, tag) in order, after `after`.
    async fn list_stream_tags(
        &self,
        namespace: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StorageResult<Vec<(String, String)>>;

    async fn get_image(&self, digest: &Digest) -> StorageResult<Option<ImageRecord>>;
    async fn get_images(&self, digests: &[Digest]) -> StorageResult<Vec<ImageRecord>>;
    /// An image as found in one repository.
    async fn image_in_repository(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> StorageResult<Option<ImageRecord>>;
    async fn list_images(&self, after: Option<&str>, limit: u32)
    -> StorageResult<Vec<ImageRecord>>;

    /// Events after `after` (a resourceVersion) that match `filter`, oldest first, and the id up
    /// to which the log was read, so that a reader whose filter matched nothing still moves on.
    async fn events_after(
        &self,
        after: i64,
        filter: &EventFilter,
        limit: u32,
    ) -> StorageResult<(Vec<EventRecord>, i64)>;
    /// The newest event's id: the store's current resourceVersion.
    async fn latest_event_id(&self) -> StorageResult<i64>;
    /// The oldest event's id still kept (older resourceVersions cannot be resumed from).
    async fn oldest_event_id(&self) -> StorageResult<i64>;
    /// Deletes up to `limit` of the oldest events made before `created_before` whose ids are
    /// at most `up_to` (what every reader that must not miss one has read), never the newest
    /// (its id is the current resourceVersion); how many. A watch from a version older than
    /// what is left gets 410 Gone.
    async fn compact_events(
        &self,
        created_before: DateTime<Utc>,
        up_to: i64,
        limit: u32,
    ) -> StorageResult<u64>;
    /// Changes whenever events are appended, so that watchers need not poll.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}
