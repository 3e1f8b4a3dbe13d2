//! Retention policies: a namespace's rules of what stays (Harbor's and zot's shape), listed,
//! added, deleted, and run: a dry run first, whose result is shown, then for real once
//! confirmed.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
use super::prune::{PruneResult, ShownPrune};
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// A retention policy as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicyRow {
    pub name: String,
    /// The streams it governs, in words (`every stream`, `app-*, not app-test`).
    pub streams: String,
    /// Each rule of what stays, in words; none keeps every tag.
    pub rules: Vec<String>,
    /// Images no tag names go too.
    pub untagged: bool,
    pub schedule: Option<String>,
    pub suspended: bool,
    pub last_run: Option<String>,
    /// What its last confirmed run removed (the counts).
    pub last_result: Option<PruneResult>,
}

/// A policy as the console's form gives it: one rule of what stays.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetentionForm {
    pub name: String,
    /// Globs, comma-separated; empty for every stream.
    pub streams: String,
    pub exclude_streams: String,
    /// Globs, comma-separated; empty for every tag.
    pub tags: String,
    pub exclude_tags: String,
    /// `pushed` / `pulled` (the N most recently), `pushed_days` / `pulled_days` (within N
    /// days), `always`.
    pub keep: String,
    /// N, for every `keep` but `always`.
    pub count: String,
    pub untagged: bool,
    /// Cron's five fields; empty to run by hand only.
    pub schedule: String,
}

/// A namespace's retention policies.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait RetentionData: Send + Sync {
    /// The namespace's policies, for its admins (others are refused, as the API refuses).
    async fn retention_policies(&self, namespace: &str) -> ConsoleResult<Vec<RetentionPolicyRow>>;
    async fn create_retention_policy(
        &self,
        namespace: &str,
        form: RetentionForm,
    ) -> ConsoleResult<RetentionPolicyRow>;
    async fn delete_retention_policy(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
    /// What the policy removes now, or (unless `confirm`) would remove.
    async fn run_retention_policy(
        &self,
        namespace: &str,
        name: &str,
        confirm: bool,
    ) -> ConsoleResult<PruneResult>;
}

#[server(prefix = "/console/api", endpoint = "retention_policies", input = GetUrl)]
pub async fn list_retention_policies(namespace: String) -> ConsoleResult<Vec<RetentionPolicyRow>> {
    console_data()?.retention_policies(&namespace).await
}

/// Adds a policy: the form's fields arrive as `form[name]`, `form[keep]`, ...
#[server(prefix = "/console/api", endpoint = "create_retention_policy")]
pub async fn create_retention_policy(
    csrf: String,
    namespace: String,
    form: RetentionForm,
) -> ConsoleResult<RetentionPolicyRow> {
    changing(&csrf)
        .await?
        .create_retention_policy(&namespace, form)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_retention_policy")]
pub async fn delete_retention_policy(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_retention_policy(&namespace, &name)
        .await
}

/// A run: a dry run unless `confirm`.
#[server(prefix = "/console/api", endpoint = "run_retention_policy")]
pub async fn run_retention_policy(
    csrf: String,
    namespace: String,
    name: String,
    confirm: bool,
) -> ConsoleResult<ShownPrune> {
    changing(&csrf)
        .await?
        .run_retention_policy(&namespace, &name, confirm)
        .await
        .map(ShownPrune::from)
}
