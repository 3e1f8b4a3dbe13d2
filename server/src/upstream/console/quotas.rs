//! A namespace's usage in front of a cluster: the cluster's own `ResourceQuota`s and
//! `LimitRange`s (`/api/v1/namespaces/{ns}/resourcequotas`, `/limitranges`), read with the
//! user's token, and its image streams for the streams and images it holds. Bytes stored are
//! known only from a `berth.io/storage` quota's status (a cluster's streams carry no sizes).

use std::collections::HashSet;

use app::api::ConsoleResult;
use app::api::quotas::{NamespaceUsage, QuotaData};
use async_trait::async_trait;
use serde::Deserialize;

use super::{UpstreamConsoleData, image_path, path_part};
use crate::console::views::{limit_rows, quota_bars};
use crate::imagestream::model::ImageStream;
use crate::kube::ObjectMeta;
use crate::quota::LimitRange;
use crate::quota::resource_quotas::ResourceQuotaStatus;
use crate::storage::quotas::STORAGE_RESOURCE;

/// What is read of a cluster's `ResourceQuota`: its name and status (`hard` and `used`).
#[derive(Deserialize)]
struct ClusterQuota {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    status: ResourceQuotaStatus,
}

#[async_trait]
impl QuotaData for UpstreamConsoleData {
    async fn namespace_usage(&self, namespace: &str) -> ConsoleResult<NamespaceUsage> {
        let signed = self.signed().await?;
        let core = format!("/api/v1/namespaces/{}", path_part(namespace));
        let (quotas_path, ranges_path) = (
            format!("{core}/resourcequotas"),
            format!("{core}/limitranges"),
        );
        let streams_path = image_path(namespace, "imagestreams", None);
        let (quotas, ranges, streams) = tokio::try_join!(
            self.list::<ClusterQuota>(&signed, &quotas_path),
            self.list::<LimitRange>(&signed, &ranges_path),
            self.list::<ImageStream>(&signed, &streams_path),
        )?;
        let images: HashSet<&str> = streams
            .iter()
            .flat_map(|stream| &stream.status.tags)
            .flat_map(|tag| &tag.items)
            .map(|item| item.image.as_str())
            .filter(|image| !image.is_empty())
            .collect();
        let quotas: Vec<_> = quotas
            .iter()
            .flat_map(|quota| quota_bars(&quota.metadata.name, &quota.status))
            .collect();
        Ok(NamespaceUsage {
            namespace: namespace.to_owned(),
            bytes: quotas
                .iter()
                .find(|bar| bar.resource == STORAGE_RESOURCE)
                .map(|bar| bar.used),
            streams: Some(streams.len() as u64),
            images: Some(images.len() as u64),
            quotas,
            limits: ranges.iter().flat_map(limit_rows).collect(),
        })
    }
}
