//! Retention policies, tag immutability rules and pruning in front of a cluster: they are
//! Berth's own resources, which a cluster does not have, so every call says so (the page shows
//! it instead of an error).

use app::api::immutability::{TagRuleData, TagRuleForm, TagRuleRow};
use app::api::prune::{PruneData, PruneOptions, PruneResult, PrunerRow};
use app::api::retention::{RetentionData, RetentionForm, RetentionPolicyRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;

use super::UpstreamConsoleData;

/// Said of Berth's lifecycle resources in this mode.
const BERTH_ONLY: &str = "Retention policies, tag immutability rules and image pruning are Berth's own: they are not available in front of a cluster, where oc adm prune images prunes.";

fn not_here<T>() -> ConsoleResult<T> {
    Err(ConsoleError::NotHere(BERTH_ONLY.into()))
}

#[async_trait]
impl RetentionData for UpstreamConsoleData {
    async fn retention_policies(&self, _namespace: &str) -> ConsoleResult<Vec<RetentionPolicyRow>> {
        not_here()
    }

    async fn create_retention_policy(
        &self,
        _namespace: &str,
        _form: RetentionForm,
    ) -> ConsoleResult<RetentionPolicyRow> {
        not_here()
    }

    async fn delete_retention_policy(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        not_here()
    }

    async fn run_retention_policy(
        &self,
        _namespace: &str,
        _name: &str,
        _confirm: bool,
    ) -> ConsoleResult<PruneResult> {
        not_here()
    }
}

#[async_trait]
impl TagRuleData for UpstreamConsoleData {
    async fn tag_rules(&self, _namespace: &str) -> ConsoleResult<Vec<TagRuleRow>> {
        not_here()
    }

    async fn create_tag_rule(
        &self,
        _namespace: &str,
        _form: TagRuleForm,
        _dry_run: bool,
    ) -> ConsoleResult<TagRuleRow> {
        not_here()
    }

    async fn delete_tag_rule(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        not_here()
    }
}

#[async_trait]
impl PruneData for UpstreamConsoleData {
    async fn pruner(&self) -> ConsoleResult<Option<PrunerRow>> {
        not_here()
    }

    async fn prune_images(
        &self,
        _options: PruneOptions,
        _confirm: bool,
    ) -> ConsoleResult<PruneResult> {
        not_here()
    }
}
