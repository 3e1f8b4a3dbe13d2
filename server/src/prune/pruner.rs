//! The scheduled pruner, configured as OpenShift's `ImagePruner`: one cluster-scoped object
//! named `cluster` at `/apis/berth.io/v1/imagepruners/cluster` (GET, PUT; cluster
//! administrators only) with `schedule` (cron's five fields, default `0 0 * * *`), `suspend`,
//! `keepTagRevisions` (3) and `keepYoungerThanDuration` (`60m`); its `status` says when it last
//! ran and what that run removed.
//!
//! An object rather than a configuration section: it is changed while Berth runs, by the API
//! every replica reads (through the shared database), and its last run is shown beside it, as
//! OpenShift shows its pruner's. No pruner runs until one is made. The schedule is looked at
//! every `[prune] schedule_check_seconds` (30) by the holder of the `image-pruner` lease only; a run due while no replica
//! held the lease runs once when one takes it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use croner::Cron;
use serde::{Deserialize, Serialize};

use super::{API_VERSION, PruneStatus, Pruning, from_json, openshift_rules, to_json};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{ApiError, ApiJson, ApiResult, FieldError, IMAGE_PRUNERS, ObjectMeta, Patch};
use crate::storage::StorageResult;
use crate::storage::coordination::{Coordination, LeaseTiming};
use crate::storage::lifecycle::StoredObject;

/// The one pruner's name, as OpenShift's.
pub const NAME: &str = "cluster";
const DEFAULT_SCHEDULE: &str = "0 0 * * *";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePruner {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImagePrunerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ScheduleStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePrunerSpec {
    /// Cron's five fields (default `0 0 * * *`, daily at midnight UTC).
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tag_revisions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_younger_than_duration: Option<String>,
}

/// What a scheduled object (the pruner, a retention policy) last did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// The scheduled time of the last run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::kube::time::option"
    )]
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// What the last run removed (its counts; the streams are not kept). For a retention
    /// policy, also a run by hand with `confirm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<PruneStatus>,
}

/// A schedule in cron's syntax, or why not.
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    Cron::from_str(text).map_err(|err| format!("{text:?} is not a cron schedule: {err}"))
}

/// The first time `schedule` names after `since`.
pub fn next_after(schedule: &Cron, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.find_next_occurrence(&since, false).ok()
}

/// The scheduled run due at `now`, if any: the first time `schedule` names after the last
/// scheduled run, or after the spec's last change when that is later (a new spec does not make
/// up for the runs before it).
pub fn due(
    schedule: &Cron,
    status: &ScheduleStatus,
    changed: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let since = status
        .last_schedule_time
        .map_or(changed, |last| last.max(changed));
    next_after(schedule, since).filter(|due| *due <= now)
}

fn shown(object: &StoredObject) -> ApiResult<ImagePruner> {
    Ok(ImagePruner {
        api_version: API_VERSION.into(),
        kind: "ImagePruner".into(),
        metadata: ObjectMeta {
            name: object.name.clone(),
            uid: object.uid.clone(),
            creation_timestamp: Some(object.created_at),
            ..ObjectMeta::default()
        },
        spec: from_json(&object.spec)?,
        status: object.status.as_deref().map(from_json).transpose()?,
    })
}

impl Pruning {
    pub async fn get_pruner(&self, who: &Subject, name: &str) -> ApiResult<ImagePruner> {
        self.require_cluster_admin(who, IMAGE_PRUNERS, name, "get")?;
        if name != NAME {
            return Err(ApiError::not_found(IMAGE_PRUNERS, name));
        }
        let stored = self
            .store
            .image_pruner(name)
            .await?
            .ok_or_else(|| ApiError::not_found(IMAGE_PRUNERS, name))?;
        shown(&stored)
    }

    /// Makes or replaces the pruner's spec, checked field by field.
    pub async fn put_pruner(
        &self,
        who: &Subject,
        name: &str,
        body: ImagePruner,
    ) -> ApiResult<ImagePruner> {
        self.require_cluster_admin(who, IMAGE_PRUNERS, name, "update")?;
        let invalid = |field: &str, why: String| {
            ApiError::invalid(IMAGE_PRUNERS, name, FieldError::new(field, why))
        };
        if name != NAME {
            return Err(invalid(
                "metadata.name",
                format!("must be {NAME:?}: there is one image pruner"),
            ));
        }
        if !body.metadata.name.is_empty() && body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        let mut spec = body.spec;
        if spec.schedule.is_empty() {
            spec.schedule = DEFAULT_SCHEDULE.into();
        }
        parse_schedule(&spec.schedule).map_err(|why| invalid("spec.schedule", why))?;
        openshift_rules(
            spec.keep_tag_revisions,
            spec.keep_younger_than_duration.as_deref(),
            None,
            Utc::now(),
            "spec.",
        )
        .map_err(|cause| {
            ApiError::invalid(
                IMAGE_PRUNERS,
                name,
                FieldError::new("spec.keepYoungerThanDuration", cause.message),
            )
        })?;
        let stored = self.store.put_image_pruner(name, &to_json(&spec)?).await?;
        self.image_streams
            .auth
            .audit_change(who, "image-pruner-update", name.to_owned(), None)
            .await;
        shown(&stored)
    }

    /// Runs the pruner when its schedule says a run is due at `now`; the status of the run
    /// when one ran.
    pub async fn scheduled_prune(&self, now: DateTime<Utc>) -> StorageResult<Option<PruneStatus>> {
        let Some(object) = self.store.image_pruner(NAME).await? else {
            return Ok(None);
        };
        let spec: ImagePrunerSpec = from_json(&object.spec)?;
        let status: ScheduleStatus = object
            .status
            .as_deref()
            .map(from_json)
            .transpose()?
            .unwrap_or_default();
        if spec.suspend {
            return Ok(None);
        }
        let Ok(schedule) = parse_schedule(&spec.schedule) else {
            return Ok(None);
        };
        let Some(due) = due(&schedule, &status, object.updated_at, now) else {
            return Ok(None);
        };
        let Ok(rules) = openshift_rules(
            spec.keep_tag_revisions,
            spec.keep_younger_than_duration.as_deref(),
            None,
            now,
            "",
        ) else {
            return Ok(None);
        };
        let mut run = self
            .prune_images(None, super::Selection::Revisions(rules), true)
            .await?;
        tracing::info!(
            items = run.deleted_items,
            images = run.deleted_images,
            bytes = run.bytes_freed,
            "the scheduled image pruner ran"
        );
        let result = run.clone();
        run.image_streams.clear();
        let status = ScheduleStatus {
            last_schedule_time: Some(due),
            last_run: Some(run),
        };
        self.store
            .set_image_pruner_status(NAME, &to_json(&status)?)
            .await?;
        Ok(Some(result))
    }

    /// Looks at the schedule every `tick` on the holder of the `image-pruner` lease.
    pub fn spawn_scheduled(self: &Arc<Self>, coordination: &Coordination, tick: Duration) {
        let pruning = self.clone();
        coordination.spawn_leased("image-pruner", LeaseTiming::STANDARD, move || {
            let pruning = pruning.clone();
            async move {
                loop {
                    if let Err(err) = pruning.scheduled_prune(Utc::now()).await {
                        tracing::warn!(%err, "the scheduled image pruner failed");
                    }
                    if let Err(err) = pruning.scheduled_retention(Utc::now()).await {
                        tracing::warn!(%err, "scheduled retention failed");
                    }
                    tokio::time::sleep(tick).await;
                }
            }
        });
    }
}

type Api = State<Arc<Pruning>>;

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ImagePruner>> {
    api.get_pruner(&caller.subject, &name).await.map(Json)
}

async fn put(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ImagePruner>,
) -> ApiResult<Json<ImagePruner>> {
    api.put_pruner(&caller.subject, &name, body).await.map(Json)
}

/// A patch of the pruner (`kubectl patch imagepruner cluster`), written as a put of the
/// patched pruner.
async fn patch(
    State(api): Api,
    caller: Caller,
    Path(name): Path<String>,
    patch: Patch,
) -> ApiResult<Json<ImagePruner>> {
    let (api, who, name) = (&api, &caller.subject, name.as_str());
    patch
        .update(
            IMAGE_PRUNERS,
            name,
            |pruner: &ImagePruner| &pruner.metadata.resource_version,
            || api.get_pruner(who, name),
            |patched| api.put_pruner(who, name, patched),
        )
        .await
        .map(Json)
}

pub fn router(pruning: Arc<Pruning>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/imagepruners/{name}",
            get(get_one).put(put).patch(patch),
        )
        .with_state(pruning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_cron_five_fields() {
        let daily = parse_schedule("0 0 * * *").unwrap();
        let since: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            next_after(&daily, since).unwrap(),
            "2026-03-02T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let every_minute = parse_schedule("*/5 * * * *").unwrap();
        assert_eq!(
            next_after(&every_minute, since).unwrap(),
            "2026-03-01T10:05:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        for bad in ["", "0 0 * *", "61 * * * *", "every day"] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
    }
}
