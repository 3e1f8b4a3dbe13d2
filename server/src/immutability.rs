//! Tag immutability rules: per-namespace `ImmutableTagRule`s at
//! `/apis/berth.io/v1/namespaces/{ns}/immutabletagrules`, managed as webhooks are.
//!
//! - A rule names streams (`spec.repositories`) and tags (`spec.tags`) by glob patterns in
//!   Harbor's shape: each with `include` and `exclude` lists (`**`, `*`, `?`, `{a,b}`,
//!   `[a-z]`; `*` stays within one `/`-separated component of a stream name). A tag that names
//!   an image, of a matched stream, matched by an enabled rule, is immutable: a push of another
//!   image to it is `DENIED`, and it cannot be moved, untagged, or deleted with its image, its
//!   stream or its namespace (the store refuses, `storage/stream_rules.rs`). `spec.tags.include`
//!   is required; an empty `spec.repositories.include` is `["**"]`.
//! - Managing rules is the namespace admin's: `manage-access` on the namespace, decided by the
//!   one authorizer through [`ImageStreamApi::require_namespace_admin`]; every change audited.
//! - Each rule's `status` says which tags of the namespace it matches now (`?dryRun=All` on a
//!   create or update answers that without storing anything: the console's preview).
//! - [`ImmutableTagRules::protected_tags`] says which tags of a stream are immutable and by which
//!   rule, for the console's stream page (the `ImageStream` shape stays OpenShift's).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::Subject;
use crate::auth::http::Caller;
use crate::imagestream::ImageStreamApi;
use crate::kube::{
    ApiError, ApiJson, ApiResult, FieldError, IMMUTABLE_TAG_RULES, List, ListMeta, ObjectMeta,
    Patch, Status, deleted,
};
use crate::oci::is_valid_namespace;
use crate::storage::immutability::{
    CompiledRule, ImmutableTagRuleRecord, ImmutableTagRuleStore, PatternLists, RuleWrite,
    check_patterns, protecting_rule,
};

pub const API_VERSION: &str = "berth.io/v1";
pub const KIND: &str = "ImmutableTagRule";
/// Patterns a list may hold.
const MAX_PATTERNS: usize = 32;
/// Matching tags a rule's status names (all are counted).
const STATUS_TAGS: usize = 100;
/// Tags read at a time when a status is computed.
const TAG_PAGE: u32 = 1000;

/// A rule, as the API shows and takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImmutableTagRule {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImmutableTagRuleSpec,
    /// Computed by the server; ignored when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ImmutableTagRuleStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImmutableTagRuleSpec {
    /// Stream names within the namespace (`app`, `team/app`); `include` defaults to `["**"]`.
    #[serde(default)]
    pub repositories: PatternLists,
    /// Tag names; `include` is required.
    #[serde(default)]
    pub tags: PatternLists,
    /// A disabled rule protects nothing (and is kept).
    #[serde(default)]
    pub disabled: bool,
}

/// What a rule matches now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImmutableTagRuleStatus {
    /// How many tags of the namespace's streams the rule matches.
    pub matching_tags: u64,
    /// The first of them (`stream:tag`, in order), at most 100.
    pub tags: Vec<String>,
}

/// The spec with its defaults, or every field at fault.
fn check(name: &str, spec: &ImmutableTagRuleSpec) -> Result<ImmutableTagRuleSpec, Vec<FieldError>> {
    let mut causes = Vec::new();
    // Names are RFC 1123 labels, as namespace and webhook names are.
    if !is_valid_namespace(name) {
        causes.push(FieldError::new(
            "metadata.name",
            format!(
                "{name:?} is not a valid name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        ));
    }
    if spec.tags.include.is_empty() {
        causes.push(FieldError::new(
            "spec.tags.include",
            "Required value: at least one tag pattern (\"**\" for every tag)",
        ));
    }
    let lists = [
        ("spec.repositories.include", &spec.repositories.include),
        ("spec.repositories.exclude", &spec.repositories.exclude),
        ("spec.tags.include", &spec.tags.include),
        ("spec.tags.exclude", &spec.tags.exclude),
    ];
    for (field, patterns) in lists {
        if patterns.len() > MAX_PATTERNS {
            causes.push(FieldError::new(
                field,
                format!(
                    "Too many: {}: must have at most {MAX_PATTERNS} patterns",
                    patterns.len()
                ),
            ));
            continue;
        }
        for error in check_patterns(patterns) {
            causes.push(FieldError::new(
                format!("{field}[{}]", error.index),
                format!("{:?} {}", patterns[error.index], error.why),
            ));
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    let mut checked = spec.clone();
    if checked.repositories.include.is_empty() {
        checked.repositories.include = vec!["**".into()];
    }
    Ok(checked)
}

/// A stored rule as the API shows it, with its status when computed.
fn rule_object(
    record: &ImmutableTagRuleRecord,
    status: Option<ImmutableTagRuleStatus>,
) -> ImmutableTagRule {
    ImmutableTagRule {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            uid: record.uid.clone(),
            resource_version: record.resource_version.to_string(),
            creation_timestamp: Some(record.created_at),
            ..ObjectMeta::default()
        },
        spec: ImmutableTagRuleSpec {
            repositories: record.repositories.clone(),
            tags: record.tags.clone(),
            disabled: record.disabled,
        },
        status,
    }
}

/// `?dryRun=All`: check and answer, store nothing (Kubernetes' dry run).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteParams {
    #[serde(default)]
    pub dry_run: Option<String>,
}

impl WriteParams {
    fn dry_run(&self) -> ApiResult<bool> {
        match self.dry_run.as_deref() {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unsupported dryRun value {other:?}: supported values: \"All\""
            ))),
        }
    }
}

/// Tag immutability rules of every namespace: the API's rules.
pub struct ImmutableTagRules {
    store: Arc<dyn ImmutableTagRuleStore>,
    /// Namespaces, tags, and the decision function with its Forbidden answer.
    image_streams: Arc<ImageStreamApi>,
}

impl ImmutableTagRules {
    pub fn new(store: Arc<dyn ImmutableTagRuleStore>, image_streams: Arc<ImageStreamApi>) -> Self {
        ImmutableTagRules {
            store,
            image_streams,
        }
    }

    async fn require_admin(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<()> {
        self.image_streams
            .require_namespace_admin(who, namespace, IMMUTABLE_TAG_RULES, name)
            .await
    }

    async fn audit(&self, who: &Subject, action: &'static str, namespace: &str, name: &str) {
        self.image_streams
            .auth
            .audit_change(who, action, format!("{namespace}/{name}"), None)
            .await;
    }

    /// A request's rule checked against its URL: the names agree, the spec is valid.
    fn checked_record(
        namespace: &str,
        name: &str,
        rule: &ImmutableTagRule,
    ) -> ApiResult<ImmutableTagRuleRecord> {
        if let Some(given) = rule.metadata.namespace.as_deref()
            && !given.is_empty()
            && given != namespace
        {
            return Err(ApiError::BadRequest(format!(
                "the namespace of the object ({given}) does not match the namespace on the request ({namespace})"
            )));
        }
        let spec = check(name, &rule.spec).map_err(|causes| ApiError::Invalid {
            resource: IMMUTABLE_TAG_RULES,
            name: name.to_owned(),
            causes,
        })?;
        Ok(ImmutableTagRuleRecord {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uuid::Uuid::new_v4().to_string(),
            repositories: spec.repositories,
            tags: spec.tags,
            disabled: spec.disabled,
            resource_version: 0,
            created_at: Utc::now(),
        })
    }

    /// What each of `rules` matches now among the namespace's tags, in one pass over them.
    async fn statuses(
        &self,
        namespace: &str,
        rules: &[&ImmutableTagRuleRecord],
    ) -> ApiResult<Vec<ImmutableTagRuleStatus>> {
        let compiled = rules
            .iter()
            .map(|rule| rule.compiled())
            .collect::<Result<Vec<_>, _>>()?;
        let mut statuses = vec![ImmutableTagRuleStatus::default(); rules.len()];
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self
                .image_streams
                .store
                .list_stream_tags(
                    namespace,
                    after.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
                    TAG_PAGE,
                )
                .await?;
            for (stream, tag) in &page {
                for (rule, status) in compiled.iter().zip(&mut statuses) {
                    if rule.protects(stream, tag) {
                        status.matching_tags += 1;
                        if status.tags.len() < STATUS_TAGS {
                            status.tags.push(format!("{stream}:{tag}"));
                        }
                    }
                }
            }
            if page.len() < TAG_PAGE as usize {
                return Ok(statuses);
            }
            after = page.into_iter().last();
        }
    }

    async fn with_status(&self, record: &ImmutableTagRuleRecord) -> ApiResult<ImmutableTagRule> {
        let status = self.statuses(&record.namespace, &[record]).await?.pop();
        Ok(rule_object(record, status))
    }

    /// Stores a new rule (or, with `dry_run`, only checks it); answers with what it matches.
    pub async fn create(
        &self,
        who: &Subject,
        namespace: &str,
        rule: ImmutableTagRule,
        dry_run: bool,
    ) -> ApiResult<ImmutableTagRule> {
        let name = rule.metadata.name.clone();
        self.require_admin(who, namespace, &name).await?;
        let mut record = Self::checked_record(namespace, &name, &rule)?;
        if dry_run {
            if self.store.tag_rule(namespace, &name).await?.is_some() {
                return Err(already_exists(&name));
            }
            record.resource_version = 1;
            return self.with_status(&record).await;
        }
        let stored = match self.store.create_tag_rule(&record).await? {
            RuleWrite::Written(stored) => stored,
            RuleWrite::Exists => return Err(already_exists(&name)),
            other => return Err(write_refusal(other, namespace, &name)),
        };
        self.audit(who, "immutabletagrule-create", namespace, &name)
            .await;
        self.with_status(&stored).await
    }

    /// Replaces a rule's spec, if it is at the given resourceVersion (when one is given).
    pub async fn update(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
        rule: ImmutableTagRule,
        dry_run: bool,
    ) -> ApiResult<ImmutableTagRule> {
        self.require_admin(who, namespace, name).await?;
        if rule.metadata.name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                rule.metadata.name
            )));
        }
        let expected = match rule.metadata.resource_version.as_str() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    IMMUTABLE_TAG_RULES,
                    name,
                    FieldError::new(
                        "metadata.resourceVersion",
                        format!("{text:?} is not a resourceVersion"),
                    ),
                )
            })?),
        };
        let record = Self::checked_record(namespace, name, &rule)?;
        if dry_run {
            let current = self
                .store
                .tag_rule(namespace, name)
                .await?
                .ok_or_else(|| ApiError::not_found(IMMUTABLE_TAG_RULES, name))?;
            if expected.is_some_and(|expected| expected != current.resource_version) {
                return Err(conflict(name));
            }
            return self
                .with_status(&ImmutableTagRuleRecord {
                    uid: current.uid,
                    created_at: current.created_at,
                    resource_version: current.resource_version,
                    ..record
                })
                .await;
        }
        let stored = match self.store.update_tag_rule(&record, expected).await? {
            RuleWrite::Written(stored) => stored,
            other => return Err(write_refusal(other, namespace, name)),
        };
        self.audit(who, "immutabletagrule-update", namespace, name)
            .await;
        self.with_status(&stored).await
    }

    pub async fn list(&self, who: &Subject, namespace: &str) -> ApiResult<List<ImmutableTagRule>> {
        self.require_admin(who, namespace, "").await?;
        let records = self.store.tag_rules(namespace).await?;
        let statuses = self
            .statuses(namespace, &records.iter().collect::<Vec<_>>())
            .await?;
        Ok(List {
            kind: "ImmutableTagRuleList",
            api_version: API_VERSION,
            metadata: ListMeta::default(),
            items: records
                .iter()
                .zip(statuses)
                .map(|(record, status)| rule_object(record, Some(status)))
                .collect(),
        })
    }

    pub async fn get(
        &self,
        who: &Subject,
        namespace: &str,
        name: &str,
    ) -> ApiResult<ImmutableTagRule> {
        self.require_admin(who, namespace, name).await?;
        let record = self
            .store
            .tag_rule(namespace, name)
            .await?
            .ok_or_else(|| ApiError::not_found(IMMUTABLE_TAG_RULES, name))?;
        self.with_status(&record).await
    }

    /// Deletes a rule: the tags it protected are mutable again (unless another rule matches).
    pub async fn delete(&self, who: &Subject, namespace: &str, name: &str) -> ApiResult<Status> {
        self.require_admin(who, namespace, name).await?;
        if !self.store.delete_tag_rule(namespace, name).await? {
            return Err(ApiError::not_found(IMMUTABLE_TAG_RULES, name));
        }
        self.audit(who, "immutabletagrule-delete", namespace, name)
            .await;
        Ok(deleted(IMMUTABLE_TAG_RULES, name))
    }

    /// Which of `tags` of stream `stream` are immutable, each with the rule that makes it so
    /// (the first enabled one by name, as the store names it in a refusal). For a caller that
    /// was allowed to read the stream: rule names are shown to whoever sees the tags, as the
    /// registry's refusals show them to whoever pushes.
    pub async fn protected_tags(
        &self,
        namespace: &str,
        stream: &str,
        tags: &[&str],
    ) -> ApiResult<BTreeMap<String, String>> {
        let rules: Vec<Arc<CompiledRule>> = self
            .store
            .tag_rules(namespace)
            .await?
            .iter()
            .filter(|rule| !rule.disabled)
            .map(ImmutableTagRuleRecord::compiled)
            .collect::<Result<_, _>>()?;
        Ok(tags
            .iter()
            .filter_map(|tag| {
                protecting_rule(&rules, stream, tag)
                    .map(|rule| ((*tag).to_owned(), rule.to_owned()))
            })
            .collect())
    }
}

fn already_exists(name: &str) -> ApiError {
    ApiError::AlreadyExists {
        resource: IMMUTABLE_TAG_RULES,
        name: name.to_owned(),
    }
}

fn conflict(name: &str) -> ApiError {
    ApiError::Conflict {
        resource: IMMUTABLE_TAG_RULES,
        name: name.to_owned(),
    }
}

/// A write the store did not make, as the API answers it.
fn write_refusal(write: RuleWrite, namespace: &str, name: &str) -> ApiError {
    match write {
        RuleWrite::Exists => already_exists(name),
        RuleWrite::Missing => ApiError::not_found(IMMUTABLE_TAG_RULES, name),
        RuleWrite::Conflict { .. } => conflict(name),
        // Deleted since the admin check.
        RuleWrite::NoNamespace => ApiError::not_found(crate::kube::NAMESPACES, namespace),
        RuleWrite::Written(_) => ApiError::internal(std::io::Error::other(
            "a written rule reported as a refusal",
        )),
    }
}

// The HTTP surface.

type Api = State<Arc<ImmutableTagRules>>;

async fn list(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<List<ImmutableTagRule>>> {
    api.list(&caller.subject, &namespace).await.map(Json)
}

async fn create(
    State(api): Api,
    caller: Caller,
    Path(namespace): Path<String>,
    Query(params): Query<WriteParams>,
    ApiJson(body): ApiJson<ImmutableTagRule>,
) -> ApiResult<(StatusCode, Json<ImmutableTagRule>)> {
    let dry_run = params.dry_run()?;
    let created = api
        .create(&caller.subject, &namespace, body, dry_run)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_one(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<ImmutableTagRule>> {
    api.get(&caller.subject, &namespace, &name).await.map(Json)
}

async fn update(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<WriteParams>,
    ApiJson(body): ApiJson<ImmutableTagRule>,
) -> ApiResult<Json<ImmutableTagRule>> {
    let dry_run = params.dry_run()?;
    api.update(&caller.subject, &namespace, &name, body, dry_run)
        .await
        .map(Json)
}

/// A patch of a rule (`kubectl patch immutabletagrule`, `kubectl apply`), written as an
/// update of the patched rule.
async fn patch(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<WriteParams>,
    patch: Patch,
) -> ApiResult<Json<ImmutableTagRule>> {
    let dry_run = params.dry_run()?;
    let api = &api;
    let (who, namespace, name) = (&caller.subject, namespace.as_str(), name.as_str());
    patch
        .update(
            IMMUTABLE_TAG_RULES,
            name,
            |rule: &ImmutableTagRule| &rule.metadata.resource_version,
            || api.get(who, namespace, name),
            |patched| api.update(who, namespace, name, patched, dry_run),
        )
        .await
        .map(Json)
}

async fn delete(
    State(api): Api,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Status>> {
    api.delete(&caller.subject, &namespace, &name)
        .await
        .map(Json)
}

pub fn router(rules: Arc<ImmutableTagRules>) -> Router {
    Router::new()
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/immutabletagrules",
            get(list).post(create),
        )
        .route(
            "/apis/berth.io/v1/namespaces/{namespace}/immutabletagrules/{name}",
            get(get_one).put(update).patch(patch).delete(delete),
        )
        .with_state(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(repositories: &[&str], tags: &[&str], tags_exclude: &[&str]) -> ImmutableTagRuleSpec {
        let strings = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
        ImmutableTagRuleSpec {
            repositories: PatternLists {
                include: strings(repositories),
                exclude: Vec::new(),
            },
            tags: PatternLists {
                include: strings(tags),
                exclude: strings(tags_exclude),
            },
            disabled: false,
        }
    }

    fn fields(result: Result<ImmutableTagRuleSpec, Vec<FieldError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(causes) => causes.into_iter().map(|c| c.field).collect(),
        }
    }

    #[test]
    fn a_spec_is_checked_field_by_field_and_defaulted() {
        let checked = check("releases", &spec(&[], &["v*"], &["*-rc*"])).unwrap();
        assert_eq!(checked.repositories.include, ["**"]);
        assert_eq!(checked.tags.exclude, ["*-rc*"]);
        assert_eq!(
            fields(check("Releases", &spec(&["{a"], &[], &["[z-a]", "ok"]))),
            [
                "metadata.name",
                "spec.tags.include",
                "spec.repositories.include[0]",
                "spec.tags.exclude[0]"
            ]
        );
        let Err(causes) = check("r", &spec(&["**"], &["v*", "{x,y"], &[])) else {
            panic!("accepted");
        };
        assert_eq!(causes[0].field, "spec.tags.include[1]");
        assert!(
            causes[0]
                .message
                .starts_with("\"{x,y\" is not a valid pattern"),
            "{}",
            causes[0].message
        );
        let many: Vec<String> = (0..33).map(|n| format!("v{n}")).collect();
        let mut too_many = spec(&[], &["v*"], &[]);
        too_many.tags.exclude = many;
        assert_eq!(fields(check("r", &too_many)), ["spec.tags.exclude"]);
    }

    #[test]
    fn dry_run_takes_all_only() {
        let params = |value: Option<&str>| WriteParams {
            dry_run: value.map(str::to_owned),
        };
        assert!(!params(None).dry_run().unwrap());
        assert!(params(Some("All")).dry_run().unwrap());
        assert!(params(Some("all")).dry_run().is_err());
    }
}
