//! The cluster-wide prune inside Berth, through `Pruning` as `berth adm prune images` asks for
//! it (cluster administrators only): the scheduled pruner's settings and last run, a preview,
//! the prune once confirmed; and what every prune answers with as the console shows it.

use app::api::ConsoleResult;
use app::api::prune::{PruneData, PruneOptions, PruneResult, PrunedStreamRow, PrunerRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::forms::{PRUNE_LABELS, form_refusal, prune_body};
use crate::console::session::caller;
use crate::console::views::time;
use crate::kube::{ApiError, IMAGE_PRUNES};
use crate::prune::PruneStatus;
use crate::prune::pruner::NAME;

/// What a prune or retention run removed, or would remove, as the console shows it.
pub(super) fn prune_result(status: &PruneStatus) -> PruneResult {
    PruneResult {
        dry_run: status.dry_run,
        keep_since: time(status.keep_since),
        streams: status
            .image_streams
            .iter()
            .map(|stream| PrunedStreamRow {
                namespace: stream.namespace.clone(),
                name: stream.name.clone(),
                items: stream
                    .deleted_items
                    .iter()
                    .map(|item| (item.tag.clone(), item.image.clone()))
                    .collect(),
                images: stream
                    .deleted_images
                    .iter()
                    .map(|image| image.digest.clone())
                    .collect(),
                tags: stream.deleted_tags.clone(),
            })
            .collect(),
        items: status.deleted_items,
        images: status.deleted_images,
        tags: status.deleted_tags,
        skipped: status.skipped_images,
        blobs: status.blobs_freed,
        bytes: status.bytes_freed,
        errors: status.errors.clone(),
    }
}

#[async_trait]
impl PruneData for LocalConsoleData {
    async fn pruner(&self) -> ConsoleResult<Option<PrunerRow>> {
        let who = caller().await?;
        let pruner = match self.pruning.get_pruner(&who, NAME).await {
            Ok(pruner) => pruner,
            // Only a cluster administrator gets this far: none is configured.
            Err(ApiError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let status = pruner.status.unwrap_or_default();
        Ok(Some(PrunerRow {
            schedule: pruner.spec.schedule,
            suspended: pruner.spec.suspend,
            keep_tag_revisions: pruner.spec.keep_tag_revisions,
            keep_younger_than: pruner.spec.keep_younger_than_duration,
            last_schedule: status.last_schedule_time.map(time),
            last_run: status.last_run.as_ref().map(prune_result),
        }))
    }

    async fn prune_images(
        &self,
        options: PruneOptions,
        confirm: bool,
    ) -> ConsoleResult<PruneResult> {
        let who = caller().await?;
        // The console's prune is the cluster administrators' (`berth adm prune images`), also
        // when narrowed to one namespace as `--namespace` does; refused before the form is
        // read, as the API refuses before it reads a body.
        self.pruning
            .require_cluster_admin(&who, IMAGE_PRUNES, "", "create")?;
        let (namespace, request) = prune_body(&options, confirm)?;
        let answer = self
            .pruning
            .create(&who, namespace.as_deref(), request)
            .await
            .map_err(|err| form_refusal(err, PRUNE_LABELS))?;
        let status = answer.status.ok_or_else(|| {
            ApiError::internal(std::io::Error::other("a prune answered without a status"))
        })?;
        Ok(prune_result(&status))
    }
}
