//! A namespace's usage (bytes stored, image streams, images) against its quotas
//! (`ResourceQuota` `openshift.io/imagestreams` and `berth.io/storage`) and the limits of its
//! `LimitRange`s.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::console_data;

/// One limit of a `ResourceQuota` and what the namespace uses of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaBar {
    /// The `ResourceQuota` that sets it.
    pub quota: String,
    /// `berth.io/storage`, `openshift.io/imagestreams`.
    pub resource: String,
    pub used: u64,
    pub hard: u64,
    /// The limit as the quota writes it (`5Gi`, `20`).
    pub hard_text: String,
    /// Bytes (shown as sizes) rather than a count.
    pub bytes: bool,
}

/// One `max` of a `LimitRange` item: a bound on each image or stream pushed, not a total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRow {
    /// The `LimitRange` that sets it.
    pub range: String,
    /// `openshift.io/Image`, `openshift.io/ImageStream`.
    pub limit_type: String,
    /// `storage`, `openshift.io/images`, `openshift.io/image-tags`.
    pub resource: String,
    pub max: u64,
    /// The limit as the object writes it (`1Gi`, `30`).
    pub max_text: String,
    pub bytes: bool,
}

/// What a namespace uses, and its quotas and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceUsage {
    pub namespace: String,
    /// Bytes of what its images reference, each layer once, as the storage quota counts them;
    /// unknown in front of a cluster without a `berth.io/storage` quota.
    pub bytes: Option<u64>,
    pub streams: Option<u64>,
    /// Distinct images its streams hold.
    pub images: Option<u64>,
    /// Every `openshift.io/imagestreams` and `berth.io/storage` limit of its quotas.
    pub quotas: Vec<QuotaBar>,
    pub limits: Vec<LimitRow>,
}

/// A namespace's usage against its quotas.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait QuotaData: Send + Sync {
    /// For whoever may read the namespace's quotas (its members), as the API decides.
    async fn namespace_usage(&self, namespace: &str) -> ConsoleResult<NamespaceUsage>;
}

#[server(prefix = "/console/api", endpoint = "namespace_usage", input = GetUrl)]
pub async fn get_namespace_usage(namespace: String) -> ConsoleResult<NamespaceUsage> {
    console_data()?.namespace_usage(&namespace).await
}
