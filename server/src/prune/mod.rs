//! Pruning as OpenShift users know it, and per-namespace retention.
//!
//! - `POST /apis/berth.io/v1/imageprunes` (cluster administrators) and
//!   `POST /apis/berth.io/v1/namespaces/{ns}/imageprunes` (the namespace's admins): a
//!   create-only `ImagePrune`, as OpenShift's reviews are, whose `spec` has `oc adm prune
//!   images`' options (`keepTagRevisions` 3, `keepYoungerThan` `60m`, `all` true) and whose
//!   answer's `status` lists the history items and images that go and the bytes that frees.
//!   A dry run unless `spec.confirm` (`berth adm prune images`, `command.rs`, is its client).
//! - `plan.rs` computes what goes (OpenShift's rules, and the rules every plan shares: what an
//!   index, a referrer or a recent push keeps); here it is applied, a bounded transaction per
//!   step (at most [`STEP`] items or images of one repository), each image checked again as it
//!   goes (`storage::lifecycle::LifecycleStore::apply_prune`), so a push during the run keeps
//!   what it names.
//! - `pruner.rs`: the scheduled pruner (`ImagePruner`, one cluster-scoped object `cluster`),
//!   run on one replica under the `image-pruner` lease.
//! - `retention.rs`: per-namespace retention policies in Harbor's and zot's shape.
//!
//! Nothing here deletes a blob or manifest or any bytes: images are unlinked from their
//! repositories and garbage collection frees what lost its last reference. "Bytes freed" is
//! the size of each blob (config or layer) of the images that go that no image staying, in any
//! repository, refers to; manifests themselves (kept in the database) are not counted.

pub mod command;
pub mod duration;
pub mod plan;
pub mod pruner;
pub mod retention;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use self::plan::{OpenShiftRules, Plan};
use crate::auth::http::Caller;
use crate::auth::{Role, Subject, Target};
use crate::imagestream::ImageStreamApi;
use crate::kube::{ApiError, ApiJson, ApiResult, FieldError, IMAGE_PRUNES, ObjectMeta};
use crate::oci::Digest;
use crate::storage::lifecycle::{ContentHolders, Inventory, LifecycleStore, PruneStep};
use crate::storage::quotas::QuotaStore;
use crate::storage::{StorageError, StorageResult};

pub const API_VERSION: &str = "berth.io/v1";

/// Items or images of one repository per transaction.
const STEP: usize = 200;
/// Manifests whose blobs' holders are read per statement.
const HOLDERS_BATCH: usize = 500;

pub const DEFAULT_KEEP_TAG_REVISIONS: u32 = 3;
pub const DEFAULT_KEEP_YOUNGER_THAN: &str = "60m";

/// A prune, asked for and answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePrune {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImagePruneSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PruneStatus>,
}

/// `oc adm prune images`' options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruneSpec {
    /// The newest revisions of each tag that stay (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tag_revisions: Option<u32>,
    /// Go duration: streams, revisions and images younger than this stay (default `60m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_younger_than: Option<String>,
    /// Imported images are candidates too (default true, as `oc`'s `--all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Instead of revisions and age: every revision and image larger than its namespace's
    /// `LimitRange` `openshift.io/Image` `max.storage` goes (`--prune-over-size-limit`; not with
    /// `keepTagRevisions` or `keepYoungerThan`, as in `oc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_over_size_limit: Option<bool>,
    /// Remove; without it, only say what would go.
    #[serde(default)]
    pub confirm: bool,
}

/// What a run removed, or would remove.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneStatus {
    pub dry_run: bool,
    #[serde(with = "crate::kube::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "crate::kube::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub completion_time: DateTime<Utc>,
    /// Nothing pushed since then was a candidate.
    #[serde(with = "crate::kube::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub keep_since: DateTime<Utc>,
    /// Streams with something removed, in namespace and name order.
    #[serde(default)]
    pub image_streams: Vec<PrunedStream>,
    pub deleted_items: u64,
    pub deleted_images: u64,
    /// Status tags left without any history item, removed.
    pub deleted_tags: u64,
    /// Images the plan named that were found in use again when their turn came.
    pub skipped_images: u64,
    /// Blobs (configs and layers) that only the removed images held.
    pub blobs_freed: u64,
    /// Their bytes, counted when the plan was made; garbage collection frees them.
    pub bytes_freed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrunedStream {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub deleted_items: Vec<PrunedItem>,
    #[serde(default)]
    pub deleted_images: Vec<PrunedImage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrunedItem {
    pub tag: String,
    pub image: String,
    #[serde(with = "crate::kube::time")]
    #[schemars(with = "DateTime<Utc>")]
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrunedImage {
    pub digest: String,
    pub media_type: String,
}

/// `keepYoungerThan` and `keepTagRevisions` as rules, or the fields at fault.
pub fn openshift_rules(
    keep_tag_revisions: Option<u32>,
    keep_younger_than: Option<&str>,
    all: Option<bool>,
    now: DateTime<Utc>,
    field_prefix: &str,
) -> Result<OpenShiftRules, FieldError> {
    let text = keep_younger_than.unwrap_or(DEFAULT_KEEP_YOUNGER_THAN);
    let age = duration::parse(text)
        .ok()
        .and_then(|age| TimeDelta::from_std(age).ok())
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| {
            FieldError::new(
                format!("{field_prefix}keepYoungerThan"),
                format!("{text:?} is not a duration of Go's syntax (e.g. 60m, 1h30m, 24h)"),
            )
        })?;
    Ok(OpenShiftRules {
        keep_tag_revisions: keep_tag_revisions.unwrap_or(DEFAULT_KEEP_TAG_REVISIONS) as usize,
        keep_since: age,
        all_images: all.unwrap_or(true),
    })
}

/// What a prune removes: `oc adm prune images`' two modes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// Revisions beyond the newest N and images no stream references, once old enough.
    Revisions(OpenShiftRules),
    /// Revisions and images larger than their namespace's image size limit.
    OverSizeLimit { all_images: bool },
}

impl Selection {
    /// An `ImagePrune`'s spec as a selection, or the field at fault.
    pub fn of(spec: &ImagePruneSpec, now: DateTime<Utc>) -> Result<Selection, FieldError> {
        if spec.prune_over_size_limit == Some(true) {
            if spec.keep_tag_revisions.is_some() || spec.keep_younger_than.is_some() {
                return Err(FieldError::new(
                    "spec.pruneOverSizeLimit",
                    "cannot be combined with keepTagRevisions nor keepYoungerThan",
                ));
            }
            return Ok(Selection::OverSizeLimit {
                all_images: spec.all.unwrap_or(true),
            });
        }
        openshift_rules(
            spec.keep_tag_revisions,
            spec.keep_younger_than.as_deref(),
            spec.all,
            now,
            "spec.",
        )
        .map(Selection::Revisions)
    }
}

/// Plans and applies prunes and retention runs.
pub struct Pruning {
    pub store: Arc<dyn LifecycleStore>,
    /// Each namespace's image size limit, for [`Selection::OverSizeLimit`].
    pub quotas: Arc<dyn QuotaStore>,
    /// Namespaces and the decision function with its Forbidden answer.
    pub image_streams: Arc<ImageStreamApi>,
    /// Images pushed this recently never go by a retention policy (`[prune]
    /// retention_grace_seconds`, [`retention::RECENT`] by default).
    pub retention_grace: TimeDelta,
}

impl Pruning {
    /// Cluster-wide pruning is the cluster administrators' alone.
    pub fn require_cluster_admin(
        &self,
        who: &Subject,
        resource: crate::kube::Resource,
        name: &str,
        verb: &'static str,
    ) -> ApiResult<()> {
        if self
            .image_streams
            .auth
            .authorizer
            .role(who, Target::REGISTRY)
            == Some(Role::ClusterAdmin)
        {
            return Ok(());
        }
        Err(ApiError::forbidden(
            &who.display_name(),
            verb,
            resource,
            name,
            None,
        ))
    }

    /// A prune with OpenShift's rules over `namespace` (every namespace when `None`): planned,
    /// then applied when confirmed.
    pub async fn prune_images(
        &self,
        namespace: Option<&str>,
        selection: Selection,
        confirm: bool,
    ) -> StorageResult<PruneStatus> {
        let start = Utc::now();
        let inventory = self.store.inventory(namespace).await?;
        let plan = match selection {
            Selection::Revisions(rules) => plan::plan(&inventory, rules.keep_since, |view| {
                plan::openshift(rules, view)
            }),
            Selection::OverSizeLimit { all_images } => {
                let namespaces: HashSet<&str> = inventory
                    .streams
                    .iter()
                    .map(|stream| stream.repository.namespace())
                    .collect();
                // Only the namespaces with a limit.
                let mut limits: HashMap<&str, u64> = HashMap::new();
                for namespace in namespaces {
                    if let Some(max) = self.quotas.max_image_size(namespace).await? {
                        limits.insert(namespace, max);
                    }
                }
                let sizes = self.image_sizes(&inventory, &limits).await?;
                // Age keeps nothing here; only what is pushed while the prune runs stays.
                plan::plan(&inventory, start, |view| {
                    let limit = limits.get(view.stream.repository.namespace()).copied();
                    plan::over_size_limit(limit, &sizes, all_images, view)
                })
            }
        };
        self.run(plan, confirm, start).await
    }

    /// The stored bytes of each image (its config and layers, each once) of the namespaces
    /// with a limit, as an image's size is counted against `openshift.io/Image` `max.storage`.
    async fn image_sizes(
        &self,
        inventory: &Inventory,
        limits: &HashMap<&str, u64>,
    ) -> StorageResult<HashMap<Digest, u64>> {
        let limited: HashSet<i64> = inventory
            .streams
            .iter()
            .filter(|stream| limits.contains_key(stream.repository.namespace()))
            .map(|stream| stream.repository_id)
            .collect();
        let wanted: HashSet<&Digest> = inventory
            .images
            .iter()
            .filter(|image| limited.contains(&image.repository_id))
            .map(|image| &image.digest)
            .collect();
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        for content in self.holders_of(&wanted).await? {
            let holders: HashSet<&Digest> = content
                .holders
                .iter()
                .map(|(_, manifest)| manifest)
                .filter(|manifest| wanted.contains(manifest))
                .collect();
            for manifest in holders {
                let size = sizes.entry(manifest.clone()).or_default();
                *size = size.saturating_add(content.size);
            }
        }
        Ok(sizes)
    }

    /// The holders of every blob of these manifests, read [`HOLDERS_BATCH`] manifests at a time;
    /// each blob once (a blob of manifests in two batches comes back from both, with all its
    /// holders each time).
    async fn holders_of(&self, manifests: &HashSet<&Digest>) -> StorageResult<Vec<ContentHolders>> {
        let mut digests: Vec<Digest> = manifests.iter().map(|&digest| digest.clone()).collect();
        digests.sort();
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut holders = Vec::new();
        for batch in digests.chunks(HOLDERS_BATCH) {
            for content in self.store.content_holders(batch).await? {
                if seen.insert(content.content.clone()) {
                    holders.push(content);
                }
            }
        }
        Ok(holders)
    }

    /// Counts what `plan` frees and, when confirmed, applies it step by step.
    pub async fn run(
        &self,
        plan: Plan,
        confirm: bool,
        start: DateTime<Utc>,
    ) -> StorageResult<PruneStatus> {
        let (blobs_freed, bytes_freed) = self.freed(&plan).await?;
        let mut status = PruneStatus {
            dry_run: !confirm,
            start_time: start,
            completion_time: start,
            keep_since: plan.keep_since,
            blobs_freed,
            bytes_freed,
            ..PruneStatus::default()
        };
        for stream in plan.streams {
            let mut shown = PrunedStream {
                namespace: stream.repository.namespace().to_owned(),
                name: stream.repository.stream().to_owned(),
                ..PrunedStream::default()
            };
            if !confirm {
                shown.deleted_items = stream.items.iter().map(pruned_item).collect();
                shown.deleted_images = stream.images.iter().map(pruned_image).collect();
            } else {
                let digests: Vec<Digest> = stream.images.iter().map(|i| i.digest.clone()).collect();
                let steps = stream
                    .items
                    .chunks(STEP)
                    .map(|chunk| (chunk, &[][..]))
                    .chain(digests.chunks(STEP).map(|chunk| (&[][..], chunk)));
                let mut gone: HashSet<Digest> = HashSet::new();
                for (items, images) in steps {
                    let step = PruneStep {
                        repository: stream.repository.clone(),
                        history_items: items.iter().map(|item| item.id).collect(),
                        images: images.to_vec(),
                        keep_since: plan.keep_since,
                    };
                    match self.store.apply_prune(&step).await {
                        Ok(outcome) => {
                            // An item of an image that went earlier went with it (history goes
                            // with its image); either way it is gone.
                            shown.deleted_items.extend(items.iter().map(pruned_item));
                            shown.deleted_tags.extend(outcome.tags);
                            gone.extend(outcome.images);
                        }
                        Err(err) => {
                            tracing::warn!(%err, repository = %stream.repository, "prune step failed");
                            status.errors.push(format!("{}: {err}", stream.repository));
                        }
                    }
                }
                shown.deleted_images = stream
                    .images
                    .iter()
                    .filter(|image| gone.contains(&image.digest))
                    .map(pruned_image)
                    .collect();
                status.skipped_images += (stream.images.len() - shown.deleted_images.len()) as u64;
            }
            status.deleted_items += shown.deleted_items.len() as u64;
            status.deleted_images += shown.deleted_images.len() as u64;
            status.deleted_tags += shown.deleted_tags.len() as u64;
            if !shown.deleted_items.is_empty() || !shown.deleted_images.is_empty() {
                status.image_streams.push(shown);
            }
        }
        status.completion_time = Utc::now();
        if confirm {
            metrics::counter!("berth_prune_images_deleted_total").increment(status.deleted_images);
            metrics::counter!("berth_prune_history_items_deleted_total")
                .increment(status.deleted_items);
        }
        Ok(status)
    }

    /// Blobs (and their bytes) held only by the images `plan` removes: each blob's holders are
    /// every repository link of an image that refers to it, in any repository; it is freed
    /// when all of them go.
    async fn freed(&self, plan: &Plan) -> StorageResult<(u64, u64)> {
        let removed: HashSet<(i64, &Digest)> = plan
            .streams
            .iter()
            .flat_map(|s| s.images.iter().map(|i| (s.repository_id, &i.digest)))
            .collect();
        let manifests: HashSet<&Digest> = removed.iter().map(|(_, digest)| *digest).collect();
        let (mut blobs, mut bytes) = (0u64, 0u64);
        for content in self.holders_of(&manifests).await? {
            let only_removed = content
                .holders
                .iter()
                .all(|(repository, manifest)| removed.contains(&(*repository, manifest)));
            if only_removed {
                blobs += 1;
                bytes = bytes.saturating_add(content.size);
            }
        }
        Ok((blobs, bytes))
    }

    async fn audit(
        &self,
        who: &Subject,
        action: &'static str,
        target: String,
        status: &PruneStatus,
    ) {
        self.image_streams
            .auth
            .audit_change(
                who,
                action,
                target,
                Some(format!(
                    "{} history items, {} images, {} bytes freed",
                    status.deleted_items, status.deleted_images, status.bytes_freed
                )),
            )
            .await;
    }

    /// `POST imageprunes`: checks the caller and the spec, prunes, answers with the status.
    pub async fn create(
        &self,
        who: &Subject,
        namespace: Option<&str>,
        request: ImagePrune,
    ) -> ApiResult<ImagePrune> {
        match namespace {
            None => self.require_cluster_admin(who, IMAGE_PRUNES, "", "create")?,
            Some(namespace) => {
                self.image_streams
                    .require_namespace_admin(who, namespace, IMAGE_PRUNES, "")
                    .await?
            }
        }
        let spec = request.spec;
        let selection = Selection::of(&spec, Utc::now())
            .map_err(|cause| ApiError::invalid(IMAGE_PRUNES, "", cause))?;
        let status = self
            .prune_images(namespace, selection, spec.confirm)
            .await?;
        if spec.confirm {
            self.audit(
                who,
                "prune-images",
                namespace.unwrap_or("*").to_owned(),
                &status,
            )
            .await;
        }
        Ok(ImagePrune {
            api_version: API_VERSION.into(),
            kind: "ImagePrune".into(),
            metadata: ObjectMeta {
                namespace: namespace.map(str::to_owned),
                creation_timestamp: Some(status.start_time),
                ..ObjectMeta::default()
            },
            spec,
            status: Some(status),
        })
    }
}

/// A spec or status as the store keeps it.
fn to_json<T: Serialize>(value: &T) -> StorageResult<String> {
    serde_json::to_string(value).map_err(|err| StorageError::Corrupt(format!("encoding: {err}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StorageResult<T> {
    serde_json::from_str(text)
        .map_err(|err| StorageError::Corrupt(format!("a stored object: {err}")))
}

fn pruned_item(item: &plan::PlannedItem) -> PrunedItem {
    PrunedItem {
        tag: item.tag.clone(),
        image: item.image.clone(),
        created: item.created,
    }
}

fn pruned_image(image: &crate::storage::lifecycle::InventoryImage) -> PrunedImage {
    PrunedImage {
        digest: image.digest.to_string(),
        media_type: image.media_type.clone(),
    }
}

// The HTTP surface.

type Api = State<Arc<Pruning>>;

async fn create_cluster(
    State(api): Api,
    caller: Caller,
    ApiJson(body): ApiJson<ImagePrune>,
) -> ApiResult<(StatusCode, Json<ImagePrune>)> {
    let answer = api.create(&caller.subject, None, body).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn create_namespaced(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<ImagePrune>,
) -> ApiResult<(StatusCode, Json<ImagePrune>)> {
    let answer = api.create(&caller.subject, Some(&namespace), body).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

pub fn router(pruning: Arc<Pruning>) -> Router {
    Router::new()
        .route("/apis/berth.io/v1/imageprunes", post(create_cluster))
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/imageprunes",
            post(create_namespaced),
        )
        .with_state(pruning.clone())
        .merge(pruner::router(pruning.clone()))
        .merge(retention::router(pruning))
}
