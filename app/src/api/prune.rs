//! Pruning as `berth adm prune images` does it, for cluster administrators: the scheduled
//! pruner's settings and last run, a preview (a dry run) of what would go and the bytes freed,
//! and the prune itself once confirmed. Also what every prune answers with ([`PruneResult`]),
//! a retention policy's runs included.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// What a prune or retention run removed, or (a dry run) would remove.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneResult {
    pub dry_run: bool,
    /// Nothing pushed since then was a candidate.
    pub keep_since: String,
    /// Streams with something removed, in namespace and name order.
    pub streams: Vec<PrunedStreamRow>,
    pub items: u64,
    pub images: u64,
    /// Tags left without any image, removed.
    pub tags: u64,
    /// Images planned that were in use again when their turn came.
    pub skipped: u64,
    pub blobs: u64,
    /// Bytes of the blobs only the removed images held; garbage collection frees them.
    pub bytes: u64,
    pub errors: Vec<String>,
}

/// A prune's or retention run's answer as the console shows it: rendered on the server
/// (`PruneResultView`), so that the browser's bundle carries neither the answer's type nor its
/// view; and whether it was a dry run that found something to remove (the confirm is offered
/// then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownPrune {
    pub html: String,
    pub removable: bool,
}

#[cfg(feature = "ssr")]
impl From<PruneResult> for ShownPrune {
    fn from(result: PruneResult) -> Self {
        use leptos::tachys::view::RenderHtml;
        let removable = result.dry_run && (result.images > 0 || result.items > 0);
        let html =
            Owner::new().with(|| view! { <crate::components::PruneResultView result/> }.to_html());
        ShownPrune { html, removable }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedStreamRow {
    pub namespace: String,
    pub name: String,
    /// History items: `(tag, image)`.
    pub items: Vec<(String, String)>,
    /// Digests of the images that go.
    pub images: Vec<String>,
    /// Tags removed with their last image.
    pub tags: Vec<String>,
}

/// The scheduled pruner (`ImagePruner` `cluster`), when one is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunerRow {
    pub schedule: String,
    pub suspended: bool,
    pub keep_tag_revisions: Option<u32>,
    pub keep_younger_than: Option<String>,
    pub last_schedule: Option<String>,
    /// What its last run removed (the counts; its streams are not kept).
    pub last_run: Option<PruneResult>,
}

/// What a prune is asked to keep, as the form gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneOptions {
    /// Empty for every namespace (`--namespace`).
    pub namespace: String,
    /// A whole number (`--keep-tag-revisions`, default 3).
    pub keep_tag_revisions: String,
    /// A Go duration (`--keep-younger-than`, default `60m`).
    pub keep_younger_than: String,
    /// Imported images are candidates too (`--all`).
    pub all: bool,
    /// Instead of revisions and age: every revision and image larger than its namespace's
    /// `openshift.io/Image` `max.storage` (`--prune-over-size-limit`).
    #[serde(default)]
    pub over_size_limit: bool,
}

/// The cluster-wide prune and its scheduled pruner, for cluster administrators.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait PruneData: Send + Sync {
    /// The scheduled pruner; `None` when none is configured. Refused to all but cluster
    /// administrators, as the API refuses.
    async fn pruner(&self) -> ConsoleResult<Option<PrunerRow>>;
    /// What a prune with `options` removes, or (unless `confirm`) would remove.
    async fn prune_images(
        &self,
        options: PruneOptions,
        confirm: bool,
    ) -> ConsoleResult<PruneResult>;
}

#[server(prefix = "/console/api", endpoint = "pruner", input = GetUrl)]
pub async fn get_pruner() -> ConsoleResult<Option<PrunerRow>> {
    console_data()?.pruner().await
}

/// A prune: a preview (a dry run) unless `confirm`; the options arrive as `options[namespace]`,
/// `options[keep_tag_revisions]`, ... A POST with the CSRF token either way, as the API's
/// `ImagePrune` is a create.
#[server(prefix = "/console/api", endpoint = "prune_images")]
pub async fn prune_images(
    csrf: String,
    options: PruneOptions,
    confirm: bool,
) -> ConsoleResult<ShownPrune> {
    changing(&csrf)
        .await?
        .prune_images(options, confirm)
        .await
        .map(ShownPrune::from)
}
