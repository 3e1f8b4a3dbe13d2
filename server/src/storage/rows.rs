//! What the SQL backends (SQLite, PostgreSQL) share below the rules: rows of the metadata
//! tables as `#[derive(sqlx::FromRow)]` structs (generic over the database) whose `into_record`
//! makes the record and holds the checks, the conversions of columns (digests by
//! [`parse_digest`], sizes by [`size_from_db`], JSON columns), and the assembly of results that
//! both read the same way (a stream's tags, repository summaries, reference checks).

use std::collections::HashMap;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::quotas::{QuotaKind, QuotaObject};
use super::webhooks::{AttemptRecord, DeliveryRecord, DeliveryState, WebhookRecord};
use super::{
    Candidate, EventKind, EventRecord, EventType, ImageRecord, Labels, NamespaceRecord,
    NamespaceUsage, Referenced, Referrer, RemoteBlob, RemoteSource, RepositorySummary,
    SizeMismatch, SpecTagRecord, StatusTagRecord, StorageError, StorageResult, StoredManifest,
    StreamRecord, StreamSummaryRecord, TagItem, UploadId, UploadSession,
};
use crate::oci::{Algorithm, Digest, RepositoryName};

pub(super) fn parse_digest(text: &str) -> StorageResult<Digest> {
    Digest::from_str(text).map_err(|err| StorageError::Corrupt(err.to_string()))
}

pub(super) fn size_from_db(size: i64) -> StorageResult<u64> {
    u64::try_from(size).map_err(|_| StorageError::Corrupt(format!("negative size {size}")))
}

pub(super) fn size_to_db(size: u64) -> StorageResult<i64> {
    i64::try_from(size).map_err(|_| StorageError::Corrupt(format!("size {size} is too large")))
}

pub(super) fn labels_from_db(text: Option<String>) -> StorageResult<Labels> {
    match text {
        None => Ok(Labels::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|err| StorageError::Corrupt(format!("labels: {err}"))),
    }
}

pub(super) fn labels_to_db(labels: &Labels) -> Option<String> {
    (!labels.is_empty())
        .then(|| serde_json::to_string(labels).ok())
        .flatten()
}

pub(super) fn json_array<T: serde::Serialize>(items: &[T]) -> StorageResult<String> {
    to_json(&items)
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> StorageResult<String> {
    serde_json::to_string(value).map_err(|err| StorageError::Corrupt(format!("encoding: {err}")))
}

/// A stream's row with its namespace's name ([`STREAM_COLUMNS`]); its tags are read apart.
#[derive(sqlx::FromRow)]
pub(super) struct StreamRow {
    pub repository_id: i64,
    namespace: String,
    name: String,
    uid: String,
    generation: i64,
    resource_version: i64,
    labels: Option<String>,
    annotations: Option<String>,
    lookup_local: bool,
    created_at: DateTime<Utc>,
}

impl StreamRow {
    fn into_record(
        self,
        spec_tags: Vec<SpecTagRecord>,
        status_tags: Vec<StatusTagRecord>,
    ) -> StorageResult<StreamRecord> {
        Ok(StreamRecord {
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            generation: self.generation,
            resource_version: self.resource_version,
            labels: labels_from_db(self.labels)?,
            annotations: labels_from_db(self.annotations)?,
            lookup_local: self.lookup_local,
            created_at: self.created_at,
            spec_tags,
            status_tags,
        })
    }
}

/// The columns of [`StreamRow`], from `image_streams s` joined with `namespaces n`.
pub(super) const STREAM_COLUMNS: &str =
    "s.repository_id, n.name AS namespace, s.name, s.uid, s.generation, s.resource_version,
     s.labels, s.annotations, s.lookup_local, s.created_at";

/// A tag with conditions, or with no image: [`assemble_streams`] reads these apart from the
/// history, since a tag that names an image has that image as its newest history item.
#[derive(sqlx::FromRow)]
pub(super) struct TagConditionsRow {
    repository_id: i64,
    name: String,
    conditions: Option<String>,
}

/// Makes stream records of `rows` with their tags: `specs` as (repository id, spec tag), and
/// `history` as (repository id, tag, item) in tag order and, within a tag, newest first.
pub(super) fn assemble_streams(
    rows: Vec<StreamRow>,
    specs: impl IntoIterator<Item = (i64, SpecTagRecord)>,
    history: impl IntoIterator<Item = StorageResult<(i64, String, TagItem)>>,
    conditions: Vec<TagConditionsRow>,
) -> StorageResult<Vec<StreamRecord>> {
    let mut spec_tags: HashMap<i64, Vec<SpecTagRecord>> = HashMap::new();
    for (repository_id, spec) in specs {
        spec_tags.entry(repository_id).or_default().push(spec);
    }
    let mut statuses: HashMap<i64, Vec<StatusTagRecord>> = HashMap::new();
    for entry in history {
        let (repository_id, tag, item) = entry?;
        let tags = statuses.entry(repository_id).or_default();
        match tags.last_mut() {
            Some(last) if last.name == tag => last.items.push(item),
            _ => tags.push(StatusTagRecord {
                name: tag,
                items: vec![item],
                conditions: None,
            }),
        }
    }
    for TagConditionsRow {
        repository_id,
        name,
        conditions,
    } in conditions
    {
        let tags = statuses.entry(repository_id).or_default();
        match tags.iter_mut().find(|t| t.name == name) {
            Some(tag) => tag.conditions = conditions,
            None => {
                let at = tags.partition_point(|t| t.name < name);
                tags.insert(
                    at,
                    StatusTagRecord {
                        name,
                        items: Vec::new(),
                        conditions,
                    },
                );
            }
        }
    }
    rows.into_iter()
        .map(|row| {
            let id = row.repository_id;
            row.into_record(
                spec_tags.remove(&id).unwrap_or_default(),
                statuses.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

/// A history item as read: (tag, digest, external reference, generation), for
/// [`assemble_streams`].
pub(super) fn history_item(
    digest: Option<String>,
    external_reference: Option<String>,
    generation: i64,
    created: DateTime<Utc>,
    actor: Option<String>,
) -> StorageResult<TagItem> {
    Ok(TagItem {
        digest: digest.as_deref().map(parse_digest).transpose()?,
        external_reference,
        generation,
        created,
        actor,
    })
}

#[derive(sqlx::FromRow)]
pub(super) struct NamespaceRow {
    name: String,
    uid: String,
    resource_version: i64,
    labels: Option<String>,
    annotations: Option<String>,
    created_at: DateTime<Utc>,
}

pub(super) const NAMESPACE_COLUMNS: &str =
    "name, uid, resource_version, labels, annotations, created_at";

impl NamespaceRow {
    pub fn into_record(self) -> StorageResult<NamespaceRecord> {
        Ok(NamespaceRecord {
            name: self.name,
            uid: self.uid,
            resource_version: self.resource_version,
            labels: labels_from_db(self.labels)?,
            annotations: labels_from_db(self.annotations)?,
            created_at: self.created_at,
        })
    }
}

/// A manifest as an image.
#[derive(sqlx::FromRow)]
pub(super) struct ImageRow {
    digest: String,
    media_type: String,
    size: i64,
    image: Option<String>,
    created_at: DateTime<Utc>,
}

impl ImageRow {
    pub fn into_record(self) -> StorageResult<ImageRecord> {
        Ok(ImageRecord {
            digest: parse_digest(&self.digest)?,
            media_type: self.media_type,
            size: size_from_db(self.size)?,
            image: self.image,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: i64,
    kind: String,
    #[sqlx(rename = "type")]
    event_type: String,
    namespace: String,
    name: String,
    reason: String,
    tag: Option<String>,
    old_image: Option<String>,
    new_image: Option<String>,
    object: Option<String>,
    created_at: DateTime<Utc>,
}

pub(super) const EVENT_COLUMNS: &str =
    "id, kind, type, namespace, name, reason, tag, old_image, new_image, object, created_at";

impl EventRow {
    fn into_record(self) -> StorageResult<EventRecord> {
        let kind = match self.kind.as_str() {
            "Namespace" => EventKind::Namespace,
            "ImageStream" => EventKind::ImageStream,
            other => return Err(StorageError::Corrupt(format!("event kind {other}"))),
        };
        let event_type = EventType::parse(&self.event_type)
            .ok_or_else(|| StorageError::Corrupt(format!("event type {}", self.event_type)))?;
        Ok(EventRecord {
            id: self.id,
            kind,
            event_type,
            namespace: self.namespace,
            name: self.name,
            reason: self.reason,
            tag: self.tag,
            old_image: self.old_image,
            new_image: self.new_image,
            object: self.object,
            created_at: self.created_at,
        })
    }
}

/// The events read after `after` with at most `limit` rows, and the id up to which the log
/// was read: the last event's when the page is full, else `latest` (read in the same snapshot).
pub(super) fn events_page(
    rows: Vec<EventRow>,
    after: i64,
    latest: i64,
    limit: u32,
) -> StorageResult<(Vec<EventRecord>, i64)> {
    let events = rows
        .into_iter()
        .map(EventRow::into_record)
        .collect::<StorageResult<Vec<_>>>()?;
    let scanned = if events.len() >= limit as usize {
        events.last().map_or(after, |e| e.id)
    } else {
        latest.max(after)
    };
    Ok((events, scanned))
}

/// A stream as the console lists it: its name, tag count, newest tag change, bytes and most
/// recently changed tag.
#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    name: String,
    tag_count: i64,
    updated: Option<DateTime<Utc>>,
    size: i64,
    latest: Option<String>,
}

impl SummaryRow {
    pub fn into_record(self) -> StorageResult<StreamSummaryRecord> {
        Ok(StreamSummaryRecord {
            name: self.name,
            tags: size_from_db(self.tag_count)?,
            size: size_from_db(self.size)?,
            updated: self.updated,
            latest_tag: self.latest,
        })
    }
}

/// A namespace with its stream count and the bytes of the images their tags name.
#[derive(sqlx::FromRow)]
pub(super) struct UsageRow {
    name: String,
    created_at: DateTime<Utc>,
    streams: i64,
    size: i64,
}

impl UsageRow {
    pub fn into_record(self) -> StorageResult<NamespaceUsage> {
        Ok(NamespaceUsage {
            name: self.name,
            streams: size_from_db(self.streams)?,
            size: size_from_db(self.size)?,
            created_at: self.created_at,
        })
    }
}

/// A spec tag whose reference asks for scheduled imports, with its repository's name.
#[derive(sqlx::FromRow)]
pub(super) struct ScheduledImportRow {
    repository: String,
    tag: String,
    reference: String,
}

impl ScheduledImportRow {
    pub fn into_record(self) -> StorageResult<(RepositoryName, String, String)> {
        let repository = self.repository.parse::<RepositoryName>().map_err(|err| {
            StorageError::Corrupt(format!("repository {:?}: {err}", self.repository))
        })?;
        Ok((repository, self.tag, self.reference))
    }
}

/// A manifest as the distribution API serves it.
#[derive(sqlx::FromRow)]
pub(super) struct ManifestRow {
    digest: String,
    media_type: String,
    content: Vec<u8>,
}

impl ManifestRow {
    pub fn into_record(self) -> StorageResult<StoredManifest> {
        Ok(StoredManifest {
            digest: parse_digest(&self.digest)?,
            media_type: self.media_type,
            content: Bytes::from(self.content),
        })
    }
}

/// A manifest that names a subject, as the referrers API lists it.
#[derive(sqlx::FromRow)]
pub(super) struct ReferrerRow {
    digest: String,
    media_type: String,
    size: i64,
    artifact_type: Option<String>,
    annotations: Option<String>,
}

impl ReferrerRow {
    pub fn into_record(self) -> StorageResult<Referrer> {
        Ok(Referrer {
            digest: parse_digest(&self.digest)?,
            media_type: self.media_type,
            size: size_from_db(self.size)?,
            artifact_type: self.artifact_type,
            annotations: self.annotations,
        })
    }
}

/// A link to a blob whose bytes are elsewhere (`remote_blobs`).
#[derive(sqlx::FromRow)]
pub(super) struct RemoteBlobRow {
    source: String,
    insecure: bool,
    size: i64,
}

impl RemoteBlobRow {
    pub fn into_record(self) -> StorageResult<RemoteBlob> {
        Ok(RemoteBlob {
            source: RemoteSource {
                repository: self.source,
                insecure: self.insecure,
            },
            size: size_from_db(self.size)?,
        })
    }
}

/// An upload session's progress; its id and repository are what it was looked up by.
#[derive(sqlx::FromRow)]
pub(super) struct UploadRow {
    size: i64,
    hash_algorithm: String,
    hash_state: Vec<u8>,
    started_at: DateTime<Utc>,
}

impl UploadRow {
    pub fn into_record(
        self,
        id: UploadId,
        repository: &RepositoryName,
    ) -> StorageResult<UploadSession> {
        Ok(UploadSession {
            id,
            repository: repository.clone(),
            size: size_from_db(self.size)?,
            hash_algorithm: Algorithm::from_str(&self.hash_algorithm)
                .map_err(|err| StorageError::Corrupt(err.to_string()))?,
            hash_state: self.hash_state,
            started_at: self.started_at,
        })
    }
}

/// Upload ids as the `uploads` table keeps them (text).
pub(super) fn upload_ids(ids: Vec<String>) -> StorageResult<Vec<UploadId>> {
    ids.iter()
        .map(|id| {
            uuid::Uuid::parse_str(id)
                .map(UploadId)
                .map_err(|_| StorageError::Corrupt(format!("upload id {id:?}")))
        })
        .collect()
}

/// Rows of the review queue (`kind`, `digest`) as candidates.
pub(super) fn candidates(rows: Vec<(String, String)>) -> StorageResult<Vec<Candidate>> {
    rows.into_iter()
        .map(|(kind, digest)| {
            let digest = parse_digest(&digest)?;
            match kind.as_str() {
                "blob" => Ok(Candidate::Blob(digest)),
                "manifest" => Ok(Candidate::Manifest(digest)),
                other => Err(StorageError::Corrupt(format!(
                    "review queue kind {other:?}"
                ))),
            }
        })
        .collect()
}

/// What a repository holds of a referenced digest: its size, when it holds it.
#[derive(sqlx::FromRow)]
pub(super) struct HeldSize {
    digest: String,
    size: Option<i64>,
}

/// Checks references against what the repository holds (`held`, a row per distinct digest):
/// adds the digests it lacks to `missing`, and the descriptors whose declared size is not the
/// held one to `mismatched`.
pub(super) fn check_held(
    wanted: &[Referenced],
    held: Vec<HeldSize>,
    missing: &mut Vec<Digest>,
    mismatched: &mut Vec<SizeMismatch>,
) -> StorageResult<()> {
    let mut sizes = HashMap::with_capacity(held.len());
    for row in held {
        sizes.insert(row.digest, row.size.map(size_from_db).transpose()?);
    }
    for reference in wanted {
        match sizes.get(&reference.digest.to_string()).copied().flatten() {
            None => {
                if !missing.contains(&reference.digest) {
                    missing.push(reference.digest.clone());
                }
            }
            Some(stored) if stored != reference.size => mismatched.push(SizeMismatch {
                digest: reference.digest.clone(),
                declared: reference.size,
                stored,
            }),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The distinct digests of `wanted`, in order.
pub(super) fn distinct_digests(wanted: &[Referenced]) -> Vec<&Digest> {
    let mut digests: Vec<&Digest> = wanted.iter().map(|r| &r.digest).collect();
    digests.sort();
    digests.dedup();
    digests
}

/// A repository listed with its manifest count and one of its tags (none when it has none):
/// one row a tag.
#[derive(sqlx::FromRow)]
pub(super) struct RepositoryTagRow {
    name: String,
    manifest_count: i64,
    tag: Option<String>,
}

/// Repository summaries of rows in (name, tag) order.
pub(super) fn repository_summaries(
    rows: Vec<RepositoryTagRow>,
) -> StorageResult<Vec<RepositorySummary>> {
    let mut summaries: Vec<RepositorySummary> = Vec::new();
    for row in rows {
        if summaries.last().is_none_or(|s| s.name != row.name) {
            summaries.push(RepositorySummary {
                name: row.name,
                tags: Vec::new(),
                manifest_count: size_from_db(row.manifest_count)?,
            });
        }
        if let (Some(tag), Some(summary)) = (row.tag, summaries.last_mut()) {
            summary.tags.push(tag);
        }
    }
    Ok(summaries)
}

/// `text` as a `LIKE` pattern matching itself only (with `ESCAPE '\'`).
pub(super) fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A subscription as `webhooks` keeps it: the event names as a JSON array.
#[derive(sqlx::FromRow)]
pub(super) struct WebhookRow {
    id: i64,
    namespace: String,
    name: String,
    uid: String,
    url: String,
    events: String,
    format: String,
    secret_nonce: Vec<u8>,
    secret_ciphertext: Vec<u8>,
    since_event: i64,
    created_at: DateTime<Utc>,
    disabled: bool,
}

pub(super) const WEBHOOK_COLUMNS: &str = "id, namespace, name, uid, url, events, format, \
     secret_nonce, secret_ciphertext, since_event, created_at, disabled";

impl WebhookRow {
    pub fn into_record(self) -> StorageResult<WebhookRecord> {
        let events = serde_json::from_str(&self.events).map_err(|err| {
            StorageError::Corrupt(format!(
                "events of webhook {}/{}: {err}",
                self.namespace, self.name
            ))
        })?;
        Ok(WebhookRecord {
            id: self.id,
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            url: self.url,
            events,
            format: self.format,
            secret_nonce: self.secret_nonce,
            secret_ciphertext: self.secret_ciphertext,
            since_event: self.since_event,
            created_at: self.created_at,
            disabled: self.disabled,
        })
    }
}

/// A `ResourceQuota` or `LimitRange` ([`QUOTA_OBJECT_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct QuotaObjectRow {
    namespace: String,
    kind: String,
    name: String,
    uid: String,
    resource_version: i64,
    labels: Option<String>,
    annotations: Option<String>,
    spec: String,
    limits: String,
    created_at: DateTime<Utc>,
}

pub(super) const QUOTA_OBJECT_COLUMNS: &str = "namespace, kind, name, uid, resource_version, \
     labels, annotations, spec, limits, created_at";

impl QuotaObjectRow {
    pub fn into_record(self) -> StorageResult<QuotaObject> {
        Ok(QuotaObject {
            kind: QuotaKind::parse(&self.kind)
                .ok_or_else(|| StorageError::Corrupt(format!("quota kind {:?}", self.kind)))?,
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            resource_version: self.resource_version,
            labels: labels_from_db(self.labels)?,
            annotations: labels_from_db(self.annotations)?,
            spec: self.spec,
            limits: super::quota_rules::limits_from_db(&self.limits)?,
            created_at: self.created_at,
        })
    }
}

/// How a backend keeps a delivery's due time: milliseconds since 1970 on SQLite (so that they
/// compare as numbers), a timestamp on PostgreSQL.
pub(super) trait DueTime {
    fn into_time(self) -> StorageResult<DateTime<Utc>>;
}

impl DueTime for i64 {
    fn into_time(self) -> StorageResult<DateTime<Utc>> {
        millis_to_time(self)
    }
}

impl DueTime for DateTime<Utc> {
    fn into_time(self) -> StorageResult<DateTime<Utc>> {
        Ok(self)
    }
}

pub(super) fn millis_to_time(millis: i64) -> StorageResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StorageError::Corrupt(format!("time {millis} ms is out of range")))
}

/// A delivery as `webhook_deliveries` keeps it: its state as text, its due time as `Due`.
#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow<Due> {
    pub id: i64,
    webhook_id: i64,
    event_id: i64,
    event: String,
    content_type: String,
    body: Vec<u8>,
    state: String,
    attempts: i64,
    next_attempt_at: Option<Due>,
    created_at: DateTime<Utc>,
    redelivery_of: Option<i64>,
}

pub(super) const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, d.event, \
     d.content_type, d.body, d.state, d.attempts, d.next_attempt_at, d.created_at, \
     d.redelivery_of";

impl<Due: DueTime> DeliveryRow<Due> {
    pub fn into_record(self) -> StorageResult<DeliveryRecord> {
        let id = self.id;
        Ok(DeliveryRecord {
            id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event: self.event,
            content_type: self.content_type,
            body: self.body,
            state: DeliveryState::parse(&self.state).ok_or_else(|| {
                StorageError::Corrupt(format!("delivery {id} is {:?}", self.state))
            })?,
            attempts: u32::try_from(self.attempts).map_err(|_| {
                StorageError::Corrupt(format!("delivery {id}: {} attempts", self.attempts))
            })?,
            next_attempt_at: self.next_attempt_at.map(Due::into_time).transpose()?,
            created_at: self.created_at,
            redelivery_of: self.redelivery_of,
        })
    }
}

/// The enabled subscriptions' oldest pending deliveries (one a subscription), as `d`.
pub(super) const HEADS: &str = "(SELECT min(id) AS id FROM webhook_deliveries
      WHERE state = 'pending' GROUP BY webhook_id) h JOIN webhook_deliveries d ON d.id = h.id
      JOIN webhooks w ON w.id = d.webhook_id AND NOT w.disabled";

/// An attempt's columns, as [`AttemptRow`] reads them.
pub(super) const ATTEMPT_COLUMNS: &str = "delivery_id, number, status_code, error, duration_ms, \
     attempted_at, response_body, response_truncated";

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    delivery_id: i64,
    number: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    attempted_at: DateTime<Utc>,
    response_body: Option<String>,
    response_truncated: bool,
}

impl AttemptRow {
    fn into_record(self) -> StorageResult<AttemptRecord> {
        let delivery_id = self.delivery_id;
        let corrupt = || StorageError::Corrupt(format!("an attempt at delivery {delivery_id}"));
        Ok(AttemptRecord {
            delivery_id,
            number: u32::try_from(self.number).map_err(|_| corrupt())?,
            status_code: self
                .status_code
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt())?,
            error: self.error,
            duration_ms: u64::try_from(self.duration_ms).map_err(|_| corrupt())?,
            attempted_at: self.attempted_at,
            response_body: self.response_body,
            response_truncated: self.response_truncated,
        })
    }
}

/// Deliveries, each with its attempts (`attempts` in delivery and number order).
pub(super) fn with_attempts<Due: DueTime>(
    deliveries: Vec<DeliveryRow<Due>>,
    attempts: Vec<AttemptRow>,
) -> StorageResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
    let mut by_delivery: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
    for attempt in attempts {
        let attempt = attempt.into_record()?;
        by_delivery
            .entry(attempt.delivery_id)
            .or_default()
            .push(attempt);
    }
    deliveries
        .into_iter()
        .map(|row| {
            let attempts = by_delivery.remove(&row.id).unwrap_or_default();
            Ok((row.into_record()?, attempts))
        })
        .collect()
}
