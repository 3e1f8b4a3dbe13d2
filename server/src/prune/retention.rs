//! Per-namespace retention policies in the shape Harbor's and zot's users know, at
//! `/apis/berth.io/v1/namespaces/{ns}/retentionpolicies[/{name}]`, managed by the namespace's
//! admins as webhooks are, and run by hand (`POST …/{name}/run`, a dry run unless
//! `{"confirm": true}`) or on their `schedule`.
//!
//! A policy governs the streams whose names match `repositories` (globs, `include` and
//! `exclude`). In each, a tag stays when a rule retains it: the rule's `tags` globs match its
//! name and it is among the `mostRecentlyPushed` / `mostRecentlyPulled` N of the tags the rule
//! matches, or was pushed / pulled within `pushedWithinDays` / `pulledWithinDays`, or the rule
//! says `always` (rules are OR'd, as Harbor's; a policy without rules keeps every tag). Every
//! other tag goes with its history, and with it the images nothing else names. With
//! `untagged: true`, images no tag names now go too: earlier revisions of the tags that stay,
//! and images pushed by digest only. As with every prune, an image's children, referrers and
//! subject stay with it, and nothing pushed in the last hour (`[prune] retention_grace_seconds`)
//! goes (a push in progress
//! uploads by digest before it tags). The last pull is what the registry recorded, up to a
//! minute late (`storage/pulls.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::plan::{self, Decision, StreamView};
use super::pruner::{ScheduleStatus, due, parse_schedule};
use super::{API_VERSION, PruneStatus, Pruning, from_json, to_json};
use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, List, ListMeta, ObjectMeta, Patch,
    RETENTION_POLICIES, Status, deleted,
};
use crate::oci::is_valid_namespace;
use crate::storage::StorageResult;
use crate::storage::lifecycle::StoredObject;

/// Images pushed this recently never go by a retention policy, by default.
pub const RECENT: TimeDelta = TimeDelta::hours(1);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RetentionPolicySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ScheduleStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicySpec {
    /// Cron's five fields; without it the policy runs only by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default)]
    pub suspend: bool,
    /// The streams governed (by name, within the namespace); default every one.
    #[serde(default)]
    pub repositories: Selector,
    /// Remove images no tag names (earlier revisions, pushes by digest).
    #[serde(default)]
    pub untagged: bool,
    /// What stays; OR'd.
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
}

/// Globs: a name matches when an `include` (default `**`) matches it and no `exclude` does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRule {
    #[serde(default)]
    pub tags: Selector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_recently_pushed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_recently_pulled: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_within_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_within_days: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always: bool,
}

/// A run asked for by hand, and its answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRunRequest {
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRun {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub status: PruneStatus,
}

/// A selector compiled.
struct Matcher {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Matcher {
    fn new(selector: &Selector, field: &str) -> Result<Self, FieldError> {
        let set = |patterns: &[String], which: &str| {
            let mut builder = GlobSetBuilder::new();
            for (index, pattern) in patterns.iter().enumerate() {
                let glob = Glob::new(pattern).map_err(|err| {
                    FieldError::new(format!("{field}.{which}[{index}]"), err.to_string())
                })?;
                builder.add(glob);
            }
            builder
                .build()
                .map_err(|err| FieldError::new(format!("{field}.{which}"), err.to_string()))
        };
        Ok(Matcher {
            include: (!selector.include.is_empty())
                .then(|| set(&selector.include, "include"))
                .transpose()?,
            exclude: set(&selector.exclude, "exclude")?,
        })
    }

    fn matches(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(name)) && !self.exclude.is_match(name)
    }
}

/// A rule compiled.
struct Rule {
    tags: Matcher,
    keep: Keep,
}

enum Keep {
    MostRecentlyPushed(usize),
    MostRecentlyPulled(usize),
    PushedWithin(TimeDelta),
    PulledWithin(TimeDelta),
    Always,
}

/// A policy compiled, or its fields at fault.
pub struct Compiled {
    repositories: Matcher,
    untagged: bool,
    rules: Vec<Rule>,
}

fn compile(spec: &RetentionPolicySpec) -> Result<Compiled, Vec<FieldError>> {
    let mut causes = Vec::new();
    if let Some(schedule) = &spec.schedule
        && let Err(why) = parse_schedule(schedule)
    {
        causes.push(FieldError::new("spec.schedule", why));
    }
    let repositories = Matcher::new(&spec.repositories, "spec.repositories")
        .map_err(|cause| causes.push(cause))
        .ok();
    let mut rules = Vec::new();
    for (index, rule) in spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{index}]");
        let days = |d: u32| TimeDelta::days(i64::from(d));
        let chosen: Vec<Keep> = [
            rule.most_recently_pushed
                .map(|n| Keep::MostRecentlyPushed(n as usize)),
            rule.most_recently_pulled
                .map(|n| Keep::MostRecentlyPulled(n as usize)),
            rule.pushed_within_days.map(|d| Keep::PushedWithin(days(d))),
            rule.pulled_within_days.map(|d| Keep::PulledWithin(days(d))),
            rule.always.then_some(Keep::Always),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tags = Matcher::new(&rule.tags, &format!("{field}.tags"))
            .map_err(|cause| causes.push(cause))
            .ok();
        match (chosen.len(), tags) {
            (1, Some(tags)) => rules.push(Rule {
                tags,
                keep: chosen.into_iter().next().unwrap_or(Keep::Always),
            }),
            (1, None) => {}
            _ => causes.push(FieldError::new(
                field,
                "needs exactly one of mostRecentlyPushed, mostRecentlyPulled, pushedWithinDays, pulledWithinDays, always",
            )),
        }
    }
    match repositories {
        Some(repositories) if causes.is_empty() => Ok(Compiled {
            repositories,
            untagged: spec.untagged,
            rules,
        }),
        _ => Err(causes),
    }
}

/// What a compiled policy keeps of one stream, at `now`.
pub fn decide(policy: &Compiled, now: DateTime<Utc>, view: &StreamView<'_>) -> Option<Decision> {
    if !policy.repositories.matches(view.stream.repository.stream()) {
        return None;
    }
    let image_of: HashMap<_, _> = view.images.iter().map(|i| (&i.digest, *i)).collect();
    // Each tag now: its image, when it was pushed (the item's time, or a later push of the same
    // image), when that image was last pulled here.
    struct Current<'a> {
        tag: &'a str,
        pushed: DateTime<Utc>,
        pulled: Option<DateTime<Utc>>,
    }
    let current: Vec<Current<'_>> = view
        .tags
        .iter()
        .filter_map(|(tag, items)| {
            let newest = items.first()?;
            let image = newest.digest.as_ref().and_then(|d| image_of.get(d));
            Some(Current {
                tag,
                pushed: image.map_or(newest.created_at, |i| i.pushed_at.max(newest.created_at)),
                pulled: image.and_then(|i| i.pulled_at),
            })
        })
        .collect();
    let mut retained: HashSet<&str> = HashSet::new();
    if policy.rules.is_empty() {
        retained.extend(current.iter().map(|c| c.tag));
    }
    for rule in &policy.rules {
        let mut matched: Vec<&Current<'_>> = current
            .iter()
            .filter(|c| rule.tags.matches(c.tag))
            .collect();
        match rule.keep {
            Keep::Always => retained.extend(matched.iter().map(|c| c.tag)),
            Keep::MostRecentlyPushed(n) => {
                matched.sort_by(|a, b| b.pushed.cmp(&a.pushed).then(a.tag.cmp(b.tag)));
                retained.extend(matched.iter().take(n).map(|c| c.tag));
            }
            Keep::MostRecentlyPulled(n) => {
                // Never pulled sorts last.
                matched.sort_by(|a, b| b.pulled.cmp(&a.pulled).then(a.tag.cmp(b.tag)));
                retained.extend(
                    matched
                        .iter()
                        .filter(|c| c.pulled.is_some())
                        .take(n)
                        .map(|c| c.tag),
                );
            }
            Keep::PushedWithin(age) => retained.extend(
                matched
                    .iter()
                    .filter(|c| c.pushed >= now - age)
                    .map(|c| c.tag),
            ),
            Keep::PulledWithin(age) => retained.extend(
                matched
                    .iter()
                    .filter(|c| c.pulled.is_some_and(|p| p >= now - age))
                    .map(|c| c.tag),
            ),
        }
    }
    let mut decision = Decision {
        keep_untracked: !policy.untagged,
        ..Decision::default()
    };
    for (tag, items) in &view.tags {
        let skip = if retained.contains(tag) {
            // A tag that stays keeps its current image; its earlier revisions go only with
            // `untagged`.
            if policy.untagged { 1 } else { items.len() }
        } else {
            0
        };
        decision
            .remove_items
            .extend(items.iter().skip(skip).map(|item| item.id));
    }
    Some(decision)
}

fn shown(object: &StoredObject) -> ApiResult<RetentionPolicy> {
    Ok(RetentionPolicy {
        api_version: API_VERSION.into(),
        kind: "RetentionPolicy".into(),
        metadata: ObjectMeta {
            name: object.name.clone(),
            namespace: object.namespace.clone(),
            uid: object.uid.clone(),
            creation_timestamp: Some(object.created_at),
            ..ObjectMeta::default()
        },
        spec: from_json(&object.spec)?,
        status: object.status.as_deref().map(from_json).transpose()?,
    })
}

fn check(name: &str, spec: &RetentionPolicySpec) -> Result<Compiled, Vec<FieldError>> {
    let mut causes = Vec::new();
    if !is_valid_namespace(name) {
        causes.push(FieldError::new(
            "metadata.name",
            format!(
                "{name:?} is not a valid name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        ));
    }
    match compile(spec) {
        Ok(compiled) if causes.is_empty() => Ok(compiled),
        Ok(_) => Err(causes),
        Err(more) => {
            causes.extend(more);
            Err(causes)
        }
    }
}

impl Pruning {
    async fn require_policy_admin(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<()> {
        self.image_streams
            .require_namespace_admin(who, namespace, RETENTION_POLICIES, name)
            .await
    }

    async fn stored_policy(&self, namespace: &str, name: &str) -> ApiResult<StoredObject> {
        self.store
            .retention_policy(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(RETENTION_POLICIES, name))
    }

    pub async fn list_policies(
        &self,
        who: &Subject,
        namespace: &str,
    ) -> ApiResult<List<RetentionPolicy>> {
        self.require_policy_admin(who, namespace, "").await?;
        let items = self
            .store
            .retention_policies(namespace)
            .await?
            .iter()
            .map(shown)
            .collect::<ApiResult<_>>()?;
        Ok(List {
            kind: "RetentionPolicyList",
            api_version: API_VERSION,
            metadata: ListMeta::default(),
            items,
        })
    }

    pub async fn get_policy(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<RetentionPolicy> {
        self.require_policy_admin(who, namespace, name).await?;
        shown(&self.stored_policy(namespace, name).await?)
    }

    /// Makes (`create`) or replaces a policy's spec.
    pub async fn put_policy(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        body: RetentionPolicy,
        create: bool,
    ) -> ApiResult<RetentionPolicy> {
        self.require_policy_admin(who, namespace, name).await?;
        if let Some(given) = body.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        if !create && !body.metadata.name.is_empty() && body.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                body.metadata.name
            )));
        }
        check(name, &body.spec).map_err(|causes| ApiError::Invalid {
            resource: RETENTION_POLICIES,
            name: name.to_owned(),
            causes,
        })?;
        let spec = to_json(&body.spec)?;
        if !self
            .store
            .put_retention_policy(namespace, name, &spec, create)
            .await?
        {
            return Err(if create {
                ApiError::AlreadyExists {
                    resource: RETENTION_POLICIES,
                    name: name.to_owned(),
                }
            } else {
                ApiError::not_found(RETENTION_POLICIES, name)
            });
        }
        self.image_streams
            .auth
            .audit_change(
                who,
                if create {
                    "retention-create"
                } else {
                    "retention-update"
                },
                format!("{namespace}/{name}"),
                None,
            )
            .await;
        shown(&self.stored_policy(namespace, name).await?)
    }

    pub async fn delete_policy(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<Status> {
        self.require_policy_admin(who, namespace, name).await?;
        if !self.store.delete_retention_policy(namespace, name).await? {
            return Err(ApiError::not_found(RETENTION_POLICIES, name));
        }
        self.image_streams
            .auth
            .audit_change(who, "retention-delete", format!("{namespace}/{name}"), None)
            .await;
        Ok(deleted(RETENTION_POLICIES, name))
    }

    /// Plans a policy over its namespace at `now` and, when confirmed, applies it and records
    /// the run in its status.
    async fn run_policy(
        &self,
        object: &StoredObject,
        confirm: bool,
        now: DateTime<Utc>,
        scheduled: Option<DateTime<Utc>>,
    ) -> StorageResult<PruneStatus> {
        let namespace = object.namespace.clone().unwrap_or_default();
        let spec: RetentionPolicySpec = from_json(&object.spec)?;
        let compiled = compile(&spec).map_err(|causes| {
            crate::storage::StorageError::Corrupt(format!(
                "retention policy {namespace}/{}: {}",
                object.name,
                causes
                    .iter()
                    .map(|c| c.message.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let inventory = self.store.inventory(Some(&namespace)).await?;
        let plan = plan::plan(&inventory, now - self.retention_grace, |view| {
            decide(&compiled, now, view)
        });
        let run = self.run(plan, confirm, now).await?;
        if confirm {
            let previous: ScheduleStatus = object
                .status
                .as_deref()
                .map(from_json)
                .transpose()?
                .unwrap_or_default();
            let mut summary = run.clone();
            summary.image_streams.clear();
            let status = ScheduleStatus {
                last_schedule_time: scheduled.or(previous.last_schedule_time),
                last_run: Some(summary),
            };
            self.store
                .set_retention_status(&namespace, &object.name, &to_json(&status)?)
                .await?;
        }
        Ok(run)
    }

    /// `POST …/retentionpolicies/{name}/run`.
    pub async fn run_policy_now(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        request: RetentionRunRequest,
    ) -> ApiResult<RetentionRun> {
        self.require_policy_admin(who, namespace, name).await?;
        let object = self.stored_policy(namespace, name).await?;
        let status = self
            .run_policy(&object, request.confirm, Utc::now(), None)
            .await?;
        if request.confirm {
            self.audit(who, "retention-run", format!("{namespace}/{name}"), &status)
                .await;
        }
        Ok(RetentionRun {
            api_version: API_VERSION.into(),
            kind: "RetentionRun".into(),
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: Some(namespace.to_owned()),
                creation_timestamp: Some(status.start_time),
                ..ObjectMeta::default()
            },
            status,
        })
    }

    /// Runs every policy whose schedule says a run is due at `now`; how many ran.
    pub async fn scheduled_retention(&self, now: DateTime<Utc>) -> StorageResult<usize> {
        let mut ran = 0;
        for object in self.store.all_retention_policies().await? {
            let Ok(spec) = from_json::<RetentionPolicySpec>(&object.spec) else {
                continue;
            };
            let Some(schedule) = spec
                .schedule
                .as_deref()
                .and_then(|s| parse_schedule(s).ok())
            else {
                continue;
            };
            if spec.suspend {
                continue;
            }
            let status: ScheduleStatus = object
                .status
                .as_deref()
                .and_then(|text| from_json(text).ok())
                .unwrap_or_default();
            let Some(due) = due(&schedule, &status, object.updated_at, now) else {
                continue;
            };
            match self.run_policy(&object, true, now, Some(due)).await {
                Ok(_) => ran += 1,
                Err(err) => tracing::warn!(
                    %err,
                    namespace = object.namespace.as_deref().unwrap_or_default(),
                    policy = object.name,
                    "a scheduled retention run failed"
                ),
            }
        }
        Ok(ran)
    }
}

type Api = State<Arc<Pruning>>;

async fn list(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<RetentionPolicy>>> {
    api.list_policies(&caller.subject, &namespace)
        .await
        .map(Json)
}

async fn create(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    ApiJson(body): ApiJson<RetentionPolicy>,
) -> ApiResult<(StatusCode, Json<RetentionPolicy>)> {
    let name = body.metadata.name.clone();
    let made = api
        .put_policy(&caller.subject, &namespace, &name, body, true)
        .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<RetentionPolicy>> {
    api.get_policy(&caller.subject, &namespace, &name)
        .await
        .map(Json)
}

async fn replace(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<RetentionPolicy>,
) -> ApiResult<Json<RetentionPolicy>> {
    api.put_policy(&caller.subject, &namespace, &name, body, false)
        .await
        .map(Json)
}

/// A patch of a policy (`kubectl patch retentionpolicy`, `kubectl apply`), written as a
/// replace of the patched policy.
async fn patch(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    patch: Patch,
) -> ApiResult<Json<RetentionPolicy>> {
    let (api, who) = (&api, &caller.subject);
    let (namespace, name) = (namespace.as_str(), name.as_str());
    patch
        .update(
            RETENTION_POLICIES,
            name,
            |policy: &RetentionPolicy| &policy.metadata.resource_version,
            || api.get_policy(who, namespace, name),
            |patched| api.put_policy(who, namespace, name, patched, false),
        )
        .await
        .map(Json)
}

async fn delete(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Status>> {
    api.delete_policy(&caller.subject, &namespace, &name)
        .await
        .map(Json)
}

async fn run(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<RetentionRunRequest>,
) -> ApiResult<Json<RetentionRun>> {
    api.run_policy_now(&caller.subject, &namespace, &name, body)
        .await
        .map(Json)
}

pub fn router(pruning: Arc<Pruning>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/retentionpolicies",
            get(list).post(create),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/retentionpolicies/{name}",
            get(get_one).put(replace).patch(patch).delete(delete),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/retentionpolicies/{name}/run",
            post(run),
        )
        .with_state(pruning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;
    use crate::storage::lifecycle::{Inventory, InventoryImage, InventoryItem, InventoryStream};

    fn digest(seed: &str) -> Digest {
        Digest::sha256_of(seed.as_bytes())
    }

    /// Stream team/app with tags pushed `days_ago` (and pulled `pulled_days_ago`).
    fn inventory(now: DateTime<Utc>, tags: &[(&str, &str, i64, Option<i64>)]) -> Inventory {
        let mut inventory = Inventory {
            streams: vec![InventoryStream {
                repository_id: 1,
                repository: "team/app".parse().unwrap(),
                created_at: now - TimeDelta::days(100),
            }],
            ..Inventory::default()
        };
        for (id, (tag, seed, days_ago, pulled)) in tags.iter().enumerate() {
            let at = now - TimeDelta::days(*days_ago);
            if !inventory.images.iter().any(|i| i.digest == digest(seed)) {
                inventory.images.push(InventoryImage {
                    repository_id: 1,
                    digest: digest(seed),
                    media_type: "m".into(),
                    size: 1,
                    subject: None,
                    pushed_at: at,
                    pulled_at: pulled.map(|d| now - TimeDelta::days(d)),
                    imported: false,
                });
            }
            if !tag.is_empty() {
                inventory.items.push(InventoryItem {
                    id: id as i64 + 1,
                    repository_id: 1,
                    tag: (*tag).into(),
                    digest: Some(digest(seed)),
                    created_at: at,
                });
            }
        }
        inventory
            .items
            .sort_by(|a, b| a.tag.cmp(&b.tag).then(b.id.cmp(&a.id)));
        inventory
    }

    fn going(spec: RetentionPolicySpec, inventory: &Inventory, now: DateTime<Utc>) -> Vec<Digest> {
        let compiled = compile(&spec).ok().unwrap();
        let plan = plan::plan(inventory, now - RECENT, |view| decide(&compiled, now, view));
        let mut images: Vec<Digest> = plan
            .streams
            .iter()
            .flat_map(|s| s.images.iter().map(|i| i.digest.clone()))
            .collect();
        images.sort();
        images
    }

    fn sorted(mut digests: Vec<Digest>) -> Vec<Digest> {
        digests.sort();
        digests
    }

    fn rule(tags: &[&str], keep: impl FnOnce(&mut RetentionRule)) -> RetentionRule {
        let mut rule = RetentionRule {
            tags: Selector {
                include: tags.iter().map(|t| t.to_string()).collect(),
                exclude: Vec::new(),
            },
            ..RetentionRule::default()
        };
        keep(&mut rule);
        rule
    }

    #[test]
    fn the_most_recently_pushed_n_tags_stay() {
        let now = Utc::now();
        let inv = inventory(
            now,
            &[
                ("v1", "a", 30, None),
                ("v2", "b", 20, None),
                ("v3", "c", 10, None),
                ("release-1", "d", 40, None),
            ],
        );
        let spec = RetentionPolicySpec {
            rules: vec![
                rule(&["v*"], |r| r.most_recently_pushed = Some(2)),
                rule(&["release-*"], |r| r.always = true),
            ],
            ..RetentionPolicySpec::default()
        };
        assert_eq!(going(spec, &inv, now), [digest("a")]);
    }

    #[test]
    fn pulls_keep_tags_and_never_pulled_ones_go() {
        let now = Utc::now();
        let inv = inventory(
            now,
            &[
                ("v1", "a", 30, Some(1)),
                ("v2", "b", 20, Some(40)),
                ("v3", "c", 10, None),
            ],
        );
        let within = RetentionPolicySpec {
            rules: vec![rule(&[], |r| r.pulled_within_days = Some(7))],
            ..RetentionPolicySpec::default()
        };
        assert_eq!(
            going(within, &inv, now),
            sorted(vec![digest("b"), digest("c")])
        );
        let recent = RetentionPolicySpec {
            rules: vec![rule(&[], |r| r.most_recently_pulled = Some(2))],
            ..RetentionPolicySpec::default()
        };
        assert_eq!(going(recent, &inv, now), [digest("c")]);
        let pushed = RetentionPolicySpec {
            rules: vec![rule(&[], |r| r.pushed_within_days = Some(15))],
            ..RetentionPolicySpec::default()
        };
        assert_eq!(
            going(pushed, &inv, now),
            sorted(vec![digest("a"), digest("b")])
        );
    }

    #[test]
    fn untagged_images_go_only_when_asked_and_ungoverned_streams_stay() {
        let now = Utc::now();
        let inv = inventory(
            now,
            &[
                ("latest", "old", 30, None),
                ("latest", "new", 20, None),
                ("", "by-digest", 25, None),
                ("", "just-pushed", 0, None),
            ],
        );
        let keep_all = RetentionPolicySpec::default();
        assert!(going(keep_all, &inv, now).is_empty());
        let untagged = RetentionPolicySpec {
            untagged: true,
            ..RetentionPolicySpec::default()
        };
        assert_eq!(
            going(untagged.clone(), &inv, now),
            sorted(vec![digest("old"), digest("by-digest")])
        );
        let elsewhere = RetentionPolicySpec {
            repositories: Selector {
                include: vec!["other*".into()],
                exclude: Vec::new(),
            },
            ..untagged
        };
        assert!(going(elsewhere, &inv, now).is_empty());
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let bad = RetentionPolicySpec {
            schedule: Some("sometimes".into()),
            repositories: Selector {
                include: vec!["a[".into()],
                exclude: Vec::new(),
            },
            rules: vec![
                RetentionRule::default(),
                rule(&["*"], |r| {
                    r.always = true;
                    r.most_recently_pushed = Some(1)
                }),
            ],
            ..RetentionPolicySpec::default()
        };
        let fields: Vec<String> = check("Bad", &bad)
            .err()
            .unwrap()
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.schedule",
                "spec.repositories.include[0]",
                "spec.rules[0]",
                "spec.rules[1]"
            ]
        );
    }
}
