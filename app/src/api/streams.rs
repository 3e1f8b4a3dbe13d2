//! Image streams: a namespace's streams a page at a time, one stream with its tags and their
//! history, tagging (`oc tag`, and rollback), untagging and deleting a stream.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::{ConsoleResult, Permissions};
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// Streams shown on one page of a namespace.
pub const STREAM_PAGE: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StreamSort {
    #[default]
    Name,
    Updated,
    Size,
}

impl StreamSort {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamSort::Name => "name",
            StreamSort::Updated => "updated",
            StreamSort::Size => "size",
        }
    }

    pub fn parse(text: &str) -> StreamSort {
        match text {
            "updated" => StreamSort::Updated,
            "size" => StreamSort::Size,
            _ => StreamSort::Name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub name: String,
    pub tags: u64,
    /// Bytes of the images its tags name; unknown in front of a cluster, whose image streams
    /// do not carry sizes.
    pub size: Option<u64>,
    pub updated: Option<String>,
    pub latest_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPage {
    pub namespace: String,
    pub streams: Vec<StreamSummary>,
    /// Streams matching the filter that the caller may see.
    pub total: u64,
    pub offset: u64,
    pub permissions: Permissions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub tag: String,
    pub image: String,
    pub pull_spec: String,
    pub created: String,
    pub generation: i64,
    /// Who moved the tag here (pushed, tagged, rolled back), when known; never in front of a
    /// cluster, whose image streams do not say.
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRow {
    pub name: String,
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub platforms: Vec<String>,
    pub updated: Option<String>,
    /// Where the spec tag points, when there is one (`ImageStreamTag app:v1`).
    pub from: Option<String>,
    /// The reason of a failed import, when the last one failed.
    pub warning: Option<String>,
    /// The tag immutability rule that makes the tag immutable (it cannot be overwritten,
    /// moved or deleted), when one does; always `None` in front of a cluster.
    #[serde(default)]
    pub immutable_rule: Option<String>,
    /// A signature refers to the tag's image (a `sha256-….sig` tag of the stream, or, inside
    /// Berth, a signature referrer); whether it verifies is the image page's to say.
    #[serde(default)]
    pub signed: bool,
    /// Newest first.
    pub history: Vec<HistoryItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDetail {
    pub namespace: String,
    pub name: String,
    pub pull_repository: String,
    pub tags: Vec<TagRow>,
    /// Every tag's items, newest first.
    pub history: Vec<HistoryItem>,
    pub permissions: Permissions,
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    #[serde(default)]
    pub annotations: Vec<(String, String)>,
}

/// A namespace's image streams and their tags.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait StreamData: Send + Sync {
    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage>;
    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail>;
    /// What the caller may do in `namespace` (for pages whose forms need more than pull).
    async fn permissions(&self, namespace: &str) -> ConsoleResult<Permissions>;
    /// Points `tag` at `from` (`other:tag` or `stream@digest`): `oc tag`, and rollback.
    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()>;
    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()>;
    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()>;
    /// Replaces the stream's labels and annotations (an update of the stream, as `oc label`).
    async fn set_stream_metadata(
        &self,
        namespace: &str,
        stream: &str,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    ) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "streams", input = GetUrl)]
pub async fn list_streams(
    namespace: String,
    filter: String,
    sort: String,
    offset: u64,
) -> ConsoleResult<StreamPage> {
    console_data()?
        .streams(
            &namespace,
            &filter,
            StreamSort::parse(&sort),
            offset,
            STREAM_PAGE,
        )
        .await
}

#[server(prefix = "/console/api", endpoint = "permissions", input = GetUrl)]
pub async fn get_permissions(namespace: String) -> ConsoleResult<Permissions> {
    console_data()?.permissions(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "stream", input = GetUrl)]
pub async fn get_stream(namespace: String, stream: String) -> ConsoleResult<StreamDetail> {
    console_data()?.stream(&namespace, &stream).await
}

#[server(prefix = "/console/api", endpoint = "tag")]
pub async fn tag_image(
    csrf: String,
    namespace: String,
    stream: String,
    tag: String,
    from: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .tag(&namespace, &stream, &tag, &from)
        .await
}

#[server(prefix = "/console/api", endpoint = "untag")]
pub async fn untag_image(
    csrf: String,
    namespace: String,
    stream: String,
    tag: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .untag(&namespace, &stream, &tag)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_stream")]
pub async fn delete_stream(csrf: String, namespace: String, stream: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_stream(&namespace, &stream)
        .await
}

/// Sets a stream's labels and annotations from `key=value` lines.
#[server(prefix = "/console/api", endpoint = "stream_metadata")]
pub async fn set_stream_metadata(
    csrf: String,
    namespace: String,
    stream: String,
    labels: String,
    annotations: String,
) -> ConsoleResult<()> {
    let data = changing(&csrf).await?;
    let read = |what: &str, text: &str| {
        crate::format::key_values(text)
            .map_err(|why| super::ConsoleError::Invalid(format!("{what}, {why}")))
    };
    let (labels, annotations) = (read("labels", &labels)?, read("annotations", &annotations)?);
    data.set_stream_metadata(&namespace, &stream, labels, annotations)
        .await
}
