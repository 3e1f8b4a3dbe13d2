//! Image streams inside Berth: a namespace's streams a page at a time from the store's
//! summaries, one stream with its images, tagging, untagging and deleting through the image
//! stream API.

use app::api::streams::{StreamData, StreamDetail, StreamPage, StreamSort, StreamSummary};
use app::api::{ConsoleResult, Permissions};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::auth::{Action, AuthContext, Subject, Target, Visible};
use crate::console::forms::{pin_to_image, tag_body, tag_source, with_metadata};
use crate::console::session::caller;
use crate::console::views::{current_digests, stream_detail, time};
use crate::kube::MAX_PAGE;
use crate::storage::SummarySort;

fn permissions(auth: &AuthContext, who: &Subject, target: Target<'_>) -> Permissions {
    let allows = |action| auth.authorizer.allows(who, action, target);
    Permissions {
        pull: allows(Action::Pull),
        push: allows(Action::Push),
        delete: allows(Action::Delete),
        manage_access: allows(Action::ManageAccess),
        // Pull secrets are the namespace admins' (`require_namespace_admin`).
        manage_secrets: allows(Action::ManageAccess),
    }
}

#[async_trait]
impl StreamData for LocalConsoleData {
    async fn streams(
        &self,
        namespace: &str,
        filter: &str,
        sort: StreamSort,
        offset: u64,
        limit: u32,
    ) -> ConsoleResult<StreamPage> {
        let who = caller().await?;
        // As the API lists streams: refused when none could be seen, then not found.
        let visible = self.image_streams.visible_streams(&who, namespace)?;
        self.image_streams.require_namespace(namespace).await?;
        let only: Option<Vec<String>> = match visible {
            Visible::All => None,
            Visible::Only(names) => Some(names.into_iter().collect()),
        };
        let sort = match sort {
            StreamSort::Name => SummarySort::Name,
            StreamSort::Updated => SummarySort::Updated,
            StreamSort::Size => SummarySort::Size,
        };
        let (page, total) = self
            .image_streams
            .store
            .stream_summaries(
                namespace,
                filter.trim(),
                only.as_deref(),
                sort,
                offset,
                limit.clamp(1, MAX_PAGE),
            )
            .await?;
        Ok(StreamPage {
            namespace: namespace.to_owned(),
            streams: page
                .into_iter()
                .map(|s| StreamSummary {
                    name: s.name,
                    tags: s.tags,
                    size: Some(s.size),
                    updated: s.updated.map(time),
                    latest_tag: s.latest_tag,
                })
                .collect(),
            total,
            offset,
            permissions: permissions(&self.auth, &who, Target::namespace(namespace)),
        })
    }

    async fn stream(&self, namespace: &str, stream: &str) -> ConsoleResult<StreamDetail> {
        let who = caller().await?;
        let object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        let images = self.images(&current_digests(&object)).await?;
        let mut detail = stream_detail(
            namespace,
            stream,
            &object,
            &images,
            permissions(&self.auth, &who, Target::stream(namespace, stream)),
        );
        // Only tags that name an image (have a status item) are protected.
        let named: Vec<&str> = detail
            .tags
            .iter()
            .filter(|tag| !tag.history.is_empty())
            .map(|tag| tag.name.as_str())
            .collect();
        let mut protected = self
            .tag_rules
            .protected_tags(namespace, stream, &named)
            .await?;
        for tag in &mut detail.tags {
            tag.immutable_rule = protected.remove(&tag.name);
        }
        self.mark_signed_by_referrers(namespace, stream, &mut detail)
            .await?;
        Ok(detail)
    }

    async fn permissions(&self, namespace: &str) -> ConsoleResult<Permissions> {
        let who = caller().await?;
        Ok(permissions(&self.auth, &who, Target::namespace(namespace)))
    }

    async fn tag(&self, namespace: &str, stream: &str, tag: &str, from: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        let mut source = tag_source(stream, from)?;
        if source.kind == "ImageStreamTag" {
            let current = self
                .image_streams
                .get_tag(&who, namespace, &source.name)
                .await?;
            source = pin_to_image(stream, source, current.image)?;
        }
        // As the API's PUT: the tag is created, or moved when it exists.
        self.image_streams
            .put_tag(
                &who,
                namespace,
                &format!("{stream}:{}", tag.trim()),
                tag_body(source),
                false,
            )
            .await?;
        Ok(())
    }

    async fn untag(&self, namespace: &str, stream: &str, tag: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_tag(&who, namespace, &format!("{stream}:{tag}"))
            .await?;
        Ok(())
    }

    async fn delete_stream(&self, namespace: &str, stream: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.image_streams
            .delete_stream(&who, namespace, stream)
            .await?;
        Ok(())
    }

    async fn set_stream_metadata(
        &self,
        namespace: &str,
        stream: &str,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    ) -> ConsoleResult<()> {
        let who = caller().await?;
        let mut object = self
            .image_streams
            .get_stream(&who, namespace, stream)
            .await?;
        with_metadata(&mut object, labels, annotations);
        self.image_streams
            .update_stream(&who, namespace, stream, object)
            .await?;
        Ok(())
    }
}

/// Images of a stream's page looked up in the referrers index for a signature, at most: a
/// stream with more distinct images shows only the tag scheme's signatures past them.
const SIGNATURE_LOOKUPS: usize = 100;

impl LocalConsoleData {
    /// Marks the tags whose image a signature refers to through the referrers API (cosign's
    /// OCI 1.1 form, notation): one indexed lookup per distinct image, no artifact read.
    async fn mark_signed_by_referrers(
        &self,
        namespace: &str,
        stream: &str,
        detail: &mut StreamDetail,
    ) -> ConsoleResult<()> {
        let repository = crate::imagestream::names::repository(namespace, stream)?;
        let unsigned: std::collections::BTreeSet<String> = detail
            .tags
            .iter()
            .filter(|tag| !tag.signed)
            .filter_map(|tag| tag.digest.clone())
            .collect();
        let mut signed = std::collections::HashSet::new();
        for digest in unsigned.into_iter().take(SIGNATURE_LOOKUPS) {
            let Ok(parsed) = digest.parse::<crate::oci::Digest>() else {
                continue;
            };
            let referrers = self.metadata.referrers(&repository, &parsed).await?;
            if referrers.iter().any(|r| {
                r.artifact_type
                    .as_deref()
                    .is_some_and(crate::signatures::is_signature_type)
            }) {
                signed.insert(digest);
            }
        }
        for tag in &mut detail.tags {
            if tag.digest.as_ref().is_some_and(|d| signed.contains(d)) {
                tag.signed = true;
            }
        }
        Ok(())
    }
}
