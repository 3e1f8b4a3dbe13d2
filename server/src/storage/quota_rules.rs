//! The quota rules, written once for every SQL backend (SQLite, PostgreSQL): how a write that
//! may use more ([`Admission`]: a push, a stream change) is checked against the namespace's
//! `ResourceQuota`s and `LimitRange`s inside its own transaction, and how quota objects are
//! written at a new resourceVersion each time. A backend implements [`QuotaTx`], the statements
//! they need, on a connection inside a transaction it began and commits.
//!
//! An admission measures what its namespace's limits bound before the write and again after
//! it: a limit is exceeded when the write raised a usage past it (a namespace already over a
//! lowered quota may still delete, untag, and push what it holds already). Every write that
//! can raise a usage (pushes, stream changes) holds the backend's one writer lock (SQLite's
//! write transaction, PostgreSQL's stream write lock), so two racing writes are measured one
//! after the other and cannot both pass.

use async_trait::async_trait;

use super::quotas::{Limited, QuotaKind, QuotaLimit, QuotaObject, QuotaRefusal, QuotaWrite};
use super::rows::size_from_db;
use super::{Referenced, StorageError, StorageResult};
use crate::oci::RepositoryName;

/// The statements the quota rules need, inside one transaction.
#[async_trait]
pub(super) trait QuotaTx: Send {
    /// Every limit of the namespace's quota objects, with the name of the object that sets it.
    async fn namespace_limits(&mut self, namespace: &str) -> StorageResult<Vec<(String, String)>>;
    /// What the repository's namespace and stream use of what is `bounded`, in one statement:
    /// the bytes its images reference (each digest once), its streams, the distinct images
    /// the stream's tags have named (their history), the stream's tags (spec or status).
    async fn measure_usage(
        &mut self,
        repository: &RepositoryName,
        bounded: Bounded,
    ) -> StorageResult<Measured>;

    /// The next resourceVersion of a quota object (never given before).
    async fn next_quota_version(&mut self) -> StorageResult<i64>;
    async fn quota_namespace_exists(&mut self, namespace: &str) -> StorageResult<bool>;
    /// Inserts an object; false when the namespace has one of that kind and name.
    async fn insert_quota_object(&mut self, object: &QuotaObject) -> StorageResult<bool>;
    /// The object as stored, its row held until the transaction ends.
    async fn stored_quota_object(
        &mut self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<QuotaObject>>;
    /// Writes an object's labels, annotations, spec, limits and resourceVersion.
    async fn update_quota_object(&mut self, object: &QuotaObject) -> StorageResult<()>;
}

/// Reads a quota object's `limits` column.
pub(super) fn limits_from_db(text: &str) -> StorageResult<Vec<QuotaLimit>> {
    serde_json::from_str(text).map_err(|err| StorageError::Corrupt(format!("quota limits: {err}")))
}

/// Stores a new object at the next resourceVersion.
pub(super) async fn create_object(
    tx: &mut (impl QuotaTx + ?Sized),
    object: &QuotaObject,
) -> StorageResult<QuotaWrite> {
    if !tx.quota_namespace_exists(&object.namespace).await? {
        return Ok(QuotaWrite::NotFound);
    }
    let mut stored = object.clone();
    stored.resource_version = tx.next_quota_version().await?;
    Ok(if tx.insert_quota_object(&stored).await? {
        QuotaWrite::Written(stored)
    } else {
        QuotaWrite::Exists
    })
}

/// Replaces an object's changeable parts at the next resourceVersion, when it is at
/// `expected_version` (if given). The uid and creation time given are ignored: the stored
/// ones stay, and the answer has them.
pub(super) async fn replace_object(
    tx: &mut (impl QuotaTx + ?Sized),
    object: &QuotaObject,
    expected_version: Option<i64>,
) -> StorageResult<QuotaWrite> {
    let Some(current) = tx
        .stored_quota_object(object.kind, &object.namespace, &object.name)
        .await?
    else {
        return Ok(QuotaWrite::NotFound);
    };
    if expected_version.is_some_and(|expected| expected != current.resource_version) {
        return Ok(QuotaWrite::Conflict);
    }
    let stored = QuotaObject {
        uid: current.uid,
        created_at: current.created_at,
        resource_version: tx.next_quota_version().await?,
        ..object.clone()
    };
    tx.update_quota_object(&stored).await?;
    Ok(QuotaWrite::Written(stored))
}

/// Which usages some limit of a namespace bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Bounded {
    pub storage: bool,
    pub streams: bool,
    pub images: bool,
    pub tags: bool,
}

/// What an admission measures: each usage that is bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Measured {
    pub storage: Option<u64>,
    pub streams: Option<u64>,
    pub images: Option<u64>,
    pub tags: Option<u64>,
}

/// A measuring statement's columns as read: NULL where not bounded.
pub(super) type MeasuredRow = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

impl Measured {
    pub fn from_db(row: MeasuredRow) -> StorageResult<Self> {
        let count = |value: Option<i64>| value.map(size_from_db).transpose();
        Ok(Measured {
            storage: count(row.0)?,
            streams: count(row.1)?,
            images: count(row.2)?,
            tags: count(row.3)?,
        })
    }

    fn of(&self, limited: Limited) -> Option<u64> {
        match limited {
            Limited::Storage => self.storage,
            Limited::ImageStreams => self.streams,
            Limited::StreamImages => self.images,
            Limited::StreamTags => self.tags,
            Limited::ImageSize => None,
        }
    }
}

/// The check of one write against the limits of the namespace it writes to: made with
/// [`Admission::begin`] before the write, ended with [`Admission::finish`] after it, in the
/// same transaction. A namespace without quota objects costs one indexed read.
pub(super) struct Admission {
    repository: RepositoryName,
    /// Each limit with the name of the object that sets it.
    limits: Vec<(String, QuotaLimit)>,
    before: Measured,
}

impl Admission {
    /// Reads the limits of the repository's namespace and measures what they bound.
    pub async fn begin(
        tx: &mut (impl QuotaTx + ?Sized),
        repository: &RepositoryName,
    ) -> StorageResult<Admission> {
        let mut limits = Vec::new();
        for (object, text) in tx.namespace_limits(repository.namespace()).await? {
            for limit in limits_from_db(&text)? {
                limits.push((object.clone(), limit));
            }
        }
        let mut admission = Admission {
            repository: repository.clone(),
            limits,
            before: Measured::default(),
        };
        admission.before = admission.measure(tx).await?;
        Ok(admission)
    }

    fn bounds(&self, limited: Limited) -> bool {
        self.limits
            .iter()
            .any(|(_, limit)| limit.limited == limited)
    }

    async fn measure(&self, tx: &mut (impl QuotaTx + ?Sized)) -> StorageResult<Measured> {
        let bounded = Bounded {
            storage: self.bounds(Limited::Storage),
            streams: self.bounds(Limited::ImageStreams),
            images: self.bounds(Limited::StreamImages),
            tags: self.bounds(Limited::StreamTags),
        };
        if bounded == Bounded::default() {
            return Ok(Measured::default());
        }
        tx.measure_usage(&self.repository, bounded).await
    }

    fn refusal(&self, object: &str, limit: QuotaLimit, used: u64, requested: u64) -> QuotaRefusal {
        let per_stream = matches!(limit.limited, Limited::StreamImages | Limited::StreamTags);
        QuotaRefusal {
            namespace: self.repository.namespace().to_owned(),
            stream: per_stream.then(|| self.repository.stream().to_owned()),
            object: object.to_owned(),
            limited: limit.limited,
            max: limit.max,
            used,
            requested,
        }
    }

    /// Checks the size of an image about to be pushed (its config and layers, each distinct
    /// digest once, as it is stored) against `openshift.io/Image` `max.storage`.
    pub fn admit_image(&self, blobs: &[Referenced]) -> Result<(), QuotaRefusal> {
        if !self.bounds(Limited::ImageSize) {
            return Ok(());
        }
        let mut counted = std::collections::BTreeSet::new();
        let size = blobs
            .iter()
            .filter(|blob| counted.insert(&blob.digest))
            .fold(0u64, |sum, blob| sum.saturating_add(blob.size));
        match self
            .limits
            .iter()
            .find(|(_, limit)| limit.limited == Limited::ImageSize && size > limit.max)
        {
            Some((object, limit)) => Err(self.refusal(object, *limit, 0, size)),
            None => Ok(()),
        }
    }

    /// Measures again after the write: refused when it raised a usage past a limit (the
    /// caller then rolls the transaction back).
    pub async fn finish(
        &self,
        tx: &mut (impl QuotaTx + ?Sized),
    ) -> StorageResult<Result<(), QuotaRefusal>> {
        if self.limits.is_empty() {
            return Ok(Ok(()));
        }
        let after = self.measure(tx).await?;
        for (object, limit) in &self.limits {
            let (Some(before), Some(now)) =
                (self.before.of(limit.limited), after.of(limit.limited))
            else {
                continue;
            };
            if now > before && now > limit.max {
                return Ok(Err(self.refusal(object, *limit, before, now - before)));
            }
        }
        Ok(Ok(()))
    }
}
