//! Image streams in front of a cluster: a namespace's streams a page at a time (the first items
//! of the cluster's list when that is the page, else the whole list, this session's copy reused
//! while it is current), one stream, tagging, untagging and deleting.

use std::sync::Arc;

use app::api::streams::{StreamData, StreamDetail, StreamPage, StreamSort, StreamSummary};
use app::api::{ConsoleError, ConsoleResult, Permissions};
use async_trait::async_trait;
use axum::http::Method;

use super::reviews::permissions_from;
use super::{Signed, UpstreamConsoleData, image_path};
use crate::console::forms::{pin_to_image, tag_body, tag_source, with_metadata};
use crate::console::views::{Images, stream_detail, time};
use crate::imagestream::model::{ImageStream, ImageStreamTag};

/// A stream's row in its namespace's list, from its status.
fn stream_summary(stream: &ImageStream) -> StreamSummary {
    let newest = stream
        .status
        .tags
        .iter()
        .filter_map(|tag| tag.items.first().map(|item| (item.created, &tag.tag)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    StreamSummary {
        name: stream.metadata.name.clone(),
        tags: stream.status.tags.len() as u64,
        size: None,
        updated: newest.map(|(at, _)| time(at)),
        latest_tag: newest.map(|(_, tag)| tag.clone()),
    }
}

impl UpstreamConsoleData {
    /// Every stream of a namespace as rows: this session's copy while the cluster's list is
    /// still at its version (one call with `limit=1` says), else the whole list.
    async fn all_streams(
        &self,
        signed: &Signed,
        namespace: &str,
        path: &str,
    ) -> ConsoleResult<Arc<Vec<StreamSummary>>> {
        let session_id = signed.session.id().map(|id| id.to_string());
        if let Some(id) = &session_id
            && self.lists.has(id, namespace)
        {
            let probe = self
                .list_first::<serde_json::Value>(signed, path, 1)
                .await?;
            if let Some(rows) = self.lists.get(id, namespace, &probe.version) {
                return Ok(rows);
            }
        }
        let listed = self
            .list_first::<ImageStream>(signed, path, usize::MAX)
            .await?;
        let rows = Arc::new(listed.items.iter().map(stream_summary).collect::<Vec<_>>());
        if let Some(id) = &session_id {
            self.lists.put(id, namespace, listed.version, rows.clone());
        }
        Ok(rows)
    }
}

#[async_trait]
impl StreamData for UpstreamConsoleData {
    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage> {
        let signed = self.signed().await?;
        let path = image_path(namespace, "imagestreams", None);
        let filter = filter.trim();
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        // The cluster's streams carry no sizes: by size is by name, the list's own order.
        let by_name = sort != StreamSort::Updated;
        let list = async {
            // By name and unfiltered, a page is the list's first items: read only those.
            if by_name && filter.is_empty() {
                let wanted = skip.saturating_add(limit as usize);
                let listed = self
                    .list_first::<ImageStream>(&signed, &path, wanted)
                    .await?;
                if let Some(total) = listed.total {
                    let rows = listed.items.iter().map(stream_summary).collect();
                    return Ok((Arc::new(rows), Some(total)));
                }
            }
            // Otherwise the API neither filters nor sorts: every stream is read, or this
            // session's copy reused while the cluster says the list has not changed.
            Ok::<_, ConsoleError>((self.all_streams(&signed, namespace, &path).await?, None))
        };
        let ((rows, known_total), rules) = tokio::try_join!(list, self.rules(&signed, namespace))?;
        let mut summaries: Vec<StreamSummary> = rows
            .iter()
            .filter(|s| filter.is_empty() || s.name.contains(filter))
            .cloned()
            .collect();
        if by_name {
            summaries.sort_by(|a, b| a.name.cmp(&b.name));
        } else {
            summaries.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
        }
        let total = known_total.unwrap_or(summaries.len() as u64);
        let page = summaries
            .into_iter()
            .skip(skip)
            .take(limit as usize)
            .collect();
        Ok(StreamPage {
            namespace: namespace.to_owned(),
            streams: page,
            total,
            offset,
            permissions: permissions_from(&rules, None),
        })
    }

    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail> {
        let signed = self.signed().await?;
        let (object, rules) = tokio::try_join!(
            self.stream_object(&signed, namespace, stream),
            self.rules(&signed, namespace)
        )?;
        Ok(stream_detail(
            namespace,
            stream,
            &object,
            &Images::default(),
            permissions_from(&rules, Some(stream)),
        ))
    }

    async fn permissions(&self, namespace: &str) -> ConsoleResult<Permissions> {
        let signed = self.signed().await?;
        Ok(permissions_from(
            &self.rules(&signed, namespace).await?,
            None,
        ))
    }

    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        let mut source = tag_source(stream, from).map_err(ConsoleError::from)?;
        if source.kind == "ImageStreamTag" {
            let current: ImageStreamTag = self
                .get(
                    &signed,
                    &image_path(namespace, "imagestreamtags", Some(&source.name)),
                )
                .await?;
            source = pin_to_image(stream, source, current.image)?;
        }
        let name = format!("{stream}:{}", tag.trim());
        let _: ImageStreamTag = self
            .call(
                &signed,
                Method::PUT,
                &image_path(namespace, "imagestreamtags", Some(&name)),
                Some(&tag_body(source)),
            )
            .await?;
        Ok(())
    }

    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()> {
        let name = format!("{stream}:{tag}");
        self.delete(&image_path(namespace, "imagestreamtags", Some(&name)))
            .await
    }

    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()> {
        self.delete(&image_path(namespace, "imagestreams", Some(stream)))
            .await
    }

    async fn set_stream_metadata(
        &self,
        namespace: &str,
        stream: &str,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    ) -> ConsoleResult<()> {
        let signed = self.signed().await?;
        let mut object = self.stream_object(&signed, namespace, stream).await?;
        with_metadata(&mut object, labels, annotations);
        // The object as read carries its resourceVersion: a change made meanwhile is refused.
        let _: ImageStream = self
            .call(
                &signed,
                Method::PUT,
                &image_path(namespace, "imagestreams", Some(stream)),
                Some(&object),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_row_is_read_from_its_status() {
        let stream: ImageStream = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app"},
            "status": {"dockerImageRepository": "r/ns/app", "tags": [
                {"tag": "v1", "items": [{"created": "2026-11-01T00:00:00Z", "dockerImageReference": "r/ns/app@sha256:a", "image": "sha256:a", "generation": 1}]},
                {"tag": "v2", "items": [{"created": "2026-11-02T00:00:00Z", "dockerImageReference": "r/ns/app@sha256:b", "image": "sha256:b", "generation": 1}]}
            ]}
        }))
        .expect("an image stream as the API renders it");
        let row = stream_summary(&stream);
        assert_eq!(row.tags, 2);
        assert_eq!(row.latest_tag.as_deref(), Some("v2"));
        assert_eq!(row.updated.as_deref(), Some("2026-11-02T00:00:00Z"));
        assert_eq!(row.size, None);
    }
}
