//! What the metadata store keeps of quotas: Kubernetes' `ResourceQuota` and `LimitRange` objects
//! per namespace (their spec as shown, and the limits enforced), what each namespace uses, the
//! refusal a write that would exceed a limit gets ([`QuotaRefusal`]), and the [`QuotaStore`]
//! trait. The limits are enforced by `quota_rules.rs` inside the transaction of every push and
//! stream change; the API's rules (who may change them, what a spec may say) are
//! `crate::quota`'s.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Labels, StorageResult};
use crate::kube::Quantity;

/// Kubernetes' names for what Berth limits.
pub const IMAGE_STREAMS_RESOURCE: &str = "openshift.io/imagestreams";
pub const STORAGE_RESOURCE: &str = "berth.io/storage";
pub const IMAGE_LIMIT: &str = "openshift.io/Image";
pub const IMAGE_STREAM_LIMIT: &str = "openshift.io/ImageStream";
pub const IMAGE_SIZE_RESOURCE: &str = "storage";
pub const STREAM_IMAGES_RESOURCE: &str = "openshift.io/images";
pub const STREAM_TAGS_RESOURCE: &str = "openshift.io/image-tags";

/// The two kinds of quota object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    ResourceQuota,
    LimitRange,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::ResourceQuota => "ResourceQuota",
            QuotaKind::LimitRange => "LimitRange",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ResourceQuota" => Some(QuotaKind::ResourceQuota),
            "LimitRange" => Some(QuotaKind::LimitRange),
            _ => None,
        }
    }
}

/// What a limit bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Limited {
    /// `ResourceQuota` `openshift.io/imagestreams`: the namespace's image streams.
    ImageStreams,
    /// `ResourceQuota` `berth.io/storage`: bytes of what the namespace's images reference,
    /// each digest once.
    Storage,
    /// `LimitRange` `openshift.io/Image` `max.storage`: the size of one image pushed (its
    /// config and layers).
    ImageSize,
    /// `LimitRange` `openshift.io/ImageStream` `max[openshift.io/images]`: distinct images a
    /// stream's tags have named (its status tags' history).
    StreamImages,
    /// `LimitRange` `openshift.io/ImageStream` `max[openshift.io/image-tags]`: a stream's tags.
    StreamTags,
}

impl Limited {
    /// The resource as Kubernetes names it in the object.
    pub fn resource(self) -> &'static str {
        match self {
            Limited::ImageStreams => IMAGE_STREAMS_RESOURCE,
            Limited::Storage => STORAGE_RESOURCE,
            Limited::ImageSize => IMAGE_SIZE_RESOURCE,
            Limited::StreamImages => STREAM_IMAGES_RESOURCE,
            Limited::StreamTags => STREAM_TAGS_RESOURCE,
        }
    }

    /// The `LimitRange` item type it is a `max` of; `None` for a `ResourceQuota`'s.
    pub fn limit_type(self) -> Option<&'static str> {
        match self {
            Limited::ImageStreams | Limited::Storage => None,
            Limited::ImageSize => Some(IMAGE_LIMIT),
            Limited::StreamImages | Limited::StreamTags => Some(IMAGE_STREAM_LIMIT),
        }
    }

    /// Whether it counts bytes (shown with binary suffixes) rather than objects.
    pub fn is_bytes(self) -> bool {
        matches!(self, Limited::Storage | Limited::ImageSize)
    }

    /// An amount of it, as Kubernetes writes it (`1Gi`, `20`).
    pub fn quantity(self, amount: u64) -> Quantity {
        if self.is_bytes() {
            Quantity::binary(amount)
        } else {
            Quantity::decimal(amount)
        }
    }

    /// An amount of it for people: bytes shortened (`1.18Mi`), counts as they are.
    fn amount(self, amount: u64) -> String {
        if self.is_bytes() {
            Quantity::approximate_bytes(amount)
        } else {
            amount.to_string()
        }
    }
}

/// One limit of a quota object: at most `max` of `limited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimit {
    pub limited: Limited,
    pub max: u64,
}

/// A `ResourceQuota` or `LimitRange` of a namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaObject {
    pub kind: QuotaKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Given by the store at every write; ignored when storing.
    pub resource_version: i64,
    pub labels: Labels,
    pub annotations: Labels,
    /// The spec as the API shows it (JSON).
    pub spec: String,
    /// What is enforced.
    pub limits: Vec<QuotaLimit>,
    pub created_at: DateTime<Utc>,
}

/// What a write of a quota object came to.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaWrite {
    /// Stored; the object as it is now (with its new resourceVersion).
    Written(QuotaObject),
    /// A create found an object of that kind and name in the namespace.
    Exists,
    /// The namespace (for a create) or the object (for a replace) does not exist.
    NotFound,
    /// A replace expected another resourceVersion than the object's.
    Conflict,
}

/// What a namespace uses of what quotas limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    pub image_streams: u64,
    /// Bytes of what the namespace's images reference, each digest once.
    pub storage_bytes: u64,
}

impl QuotaUsage {
    /// How much of a quota's resource is used.
    pub fn of(&self, limited: Limited) -> Option<u64> {
        match limited {
            Limited::ImageStreams => Some(self.image_streams),
            Limited::Storage => Some(self.storage_bytes),
            Limited::ImageSize | Limited::StreamImages | Limited::StreamTags => None,
        }
    }
}

/// The smallest `max` the objects set for `limited` (each object's limit holds, so the tightest
/// decides): for pruning's `--prune-over-size-limit`, [`Limited::ImageSize`].
pub fn tightest(objects: &[QuotaObject], limited: Limited) -> Option<u64> {
    objects
        .iter()
        .flat_map(|object| &object.limits)
        .filter(|limit| limit.limited == limited)
        .map(|limit| limit.max)
        .min()
}

/// A write refused because it would take `limited` past an object's limit. Nothing of the
/// write was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRefusal {
    pub namespace: String,
    /// The stream a `LimitRange` of `openshift.io/ImageStream` was exceeded in.
    pub stream: Option<String>,
    /// The `ResourceQuota` or `LimitRange` exceeded.
    pub object: String,
    pub limited: Limited,
    pub max: u64,
    /// What was used before the write (for an image's size: 0).
    pub used: u64,
    /// What the write would add (for an image's size: the image's).
    pub requested: u64,
}

impl QuotaRefusal {
    /// In OpenShift's words, after `... is forbidden: `: Kubernetes' quota admission for a
    /// `ResourceQuota` (`exceeded quota: q, requested: ..., used: ..., limited: ...`),
    /// OpenShift's image limit range admission for a `LimitRange`.
    pub fn api_message(&self) -> String {
        let resource = self.limited.resource();
        let quantity = |amount| self.limited.quantity(amount);
        match self.limited.limit_type() {
            None => format!(
                "exceeded quota: {}, requested: {resource}={}, used: {resource}={}, limited: {resource}={}",
                self.object,
                quantity(self.requested),
                quantity(self.used),
                quantity(self.max),
            ),
            Some(limit_type) => format!(
                "requested usage of {resource} exceeds the maximum limit per {limit_type} ({} > {})",
                quantity(self.used.saturating_add(self.requested)),
                quantity(self.max),
            ),
        }
    }

    /// The refusal as JSON, for clients that read more than the message (the registry's
    /// error `detail`).
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "namespace": self.namespace,
            "kind": match self.limited.limit_type() {
                None => QuotaKind::ResourceQuota.as_str(),
                Some(_) => QuotaKind::LimitRange.as_str(),
            },
            "name": self.object,
            "type": self.limited.limit_type(),
            "resource": self.limited.resource(),
            "limit": self.max,
            "used": self.used,
            "requested": self.requested,
        })
    }
}

/// In the registry's words (a `DENIED` message): the quota, its limit, the usage and what the
/// push adds.
impl fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limited = self.limited;
        let amount = |value| limited.amount(value);
        let max = limited.quantity(self.max);
        write!(f, "namespace {}: ", self.namespace)?;
        match (limited, &self.stream) {
            (Limited::ImageSize, _) => write!(
                f,
                "limit range {:?} limits {IMAGE_LIMIT} {IMAGE_SIZE_RESOURCE} to {max}; this image is {}",
                self.object,
                amount(self.requested),
            ),
            (Limited::StreamImages | Limited::StreamTags, stream) => write!(
                f,
                "limit range {:?} limits {} per {IMAGE_STREAM_LIMIT} to {max}; {}/{} has {}, this push adds {}",
                self.object,
                limited.resource(),
                self.namespace,
                stream.as_deref().unwrap_or(""),
                amount(self.used),
                amount(self.requested),
            ),
            (Limited::ImageStreams | Limited::Storage, _) => write!(
                f,
                "quota {:?} limits {} to {max}; {} used, this push adds {}",
                self.object,
                limited.resource(),
                amount(self.used),
                amount(self.requested),
            ),
        }
    }
}

/// `ResourceQuota`s and `LimitRange`s (deleted with their namespace), and what namespaces use.
#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Stores a new object at a new resourceVersion: [`QuotaWrite::Exists`] when the namespace
    /// has one of that kind and name, [`QuotaWrite::NotFound`] when the namespace is missing.
    async fn create_quota_object(&self, object: &QuotaObject) -> StorageResult<QuotaWrite>;
    /// Replaces an object's labels, annotations, spec and limits (its uid and creation time
    /// stay) at a new resourceVersion, when it is at `expected_version` (if given).
    async fn replace_quota_object(
        &self,
        object: &QuotaObject,
        expected_version: Option<i64>,
    ) -> StorageResult<QuotaWrite>;
    /// Deletes an object; false when there was none.
    async fn delete_quota_object(
        &self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<bool>;
    /// The namespace's objects of a kind, by name.
    async fn quota_objects(
        &self,
        kind: QuotaKind,
        namespace: &str,
    ) -> StorageResult<Vec<QuotaObject>>;
    async fn quota_object(
        &self,
        kind: QuotaKind,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<QuotaObject>>;
    /// What the namespace uses now.
    async fn quota_usage(&self, namespace: &str) -> StorageResult<QuotaUsage>;

    /// The largest image the namespace takes (the tightest `openshift.io/Image` `max.storage` of
    /// its `LimitRange`s), for pruning's `--prune-over-size-limit`; `None` without one.
    async fn max_image_size(&self, namespace: &str) -> StorageResult<Option<u64>> {
        let ranges = self.quota_objects(QuotaKind::LimitRange, namespace).await?;
        Ok(tightest(&ranges, Limited::ImageSize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limited: Limited, max: u64, used: u64, requested: u64) -> QuotaRefusal {
        QuotaRefusal {
            namespace: "team".into(),
            stream: Some("app".into()),
            object: "registry".into(),
            limited,
            max,
            used,
            requested,
        }
    }

    #[test]
    fn refusals_name_the_object_the_limit_and_the_usage() {
        let storage = refusal(Limited::Storage, 1 << 30, 900 << 20, 200 << 20);
        assert_eq!(
            storage.to_string(),
            "namespace team: quota \"registry\" limits berth.io/storage to 1Gi; 900Mi used, this push adds 200Mi"
        );
        assert_eq!(
            storage.api_message(),
            "exceeded quota: registry, requested: berth.io/storage=200Mi, used: berth.io/storage=900Mi, limited: berth.io/storage=1Gi"
        );
        let streams = refusal(Limited::ImageStreams, 2, 2, 1);
        assert_eq!(
            streams.to_string(),
            "namespace team: quota \"registry\" limits openshift.io/imagestreams to 2; 2 used, this push adds 1"
        );
        let image = refusal(Limited::ImageSize, 100 << 20, 0, 1_234_567_890);
        assert_eq!(
            image.to_string(),
            "namespace team: limit range \"registry\" limits openshift.io/Image storage to 100Mi; this image is 1.15Gi"
        );
        assert_eq!(
            image.api_message(),
            "requested usage of storage exceeds the maximum limit per openshift.io/Image (1234567890 > 100Mi)"
        );
        let tags = refusal(Limited::StreamTags, 3, 3, 1);
        assert_eq!(
            tags.to_string(),
            "namespace team: limit range \"registry\" limits openshift.io/image-tags per openshift.io/ImageStream to 3; team/app has 3, this push adds 1"
        );
        assert_eq!(
            tags.api_message(),
            "requested usage of openshift.io/image-tags exceeds the maximum limit per openshift.io/ImageStream (4 > 3)"
        );
    }
}
