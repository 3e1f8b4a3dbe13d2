//! Retention policies inside Berth: a namespace's policies through `Pruning` (its admins'),
//! listed with their rules in words and their last run, added from the console's form,
//! deleted, and run (a dry run, then for real once confirmed).

use app::api::ConsoleResult;
use app::api::prune::PruneResult;
use app::api::retention::{RetentionData, RetentionForm, RetentionPolicyRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use super::prune::prune_result;
use crate::console::forms::{RETENTION_LABELS, form_refusal, retention_body};
use crate::console::session::caller;
use crate::console::views::time;
use crate::prune::retention::{RetentionPolicy, RetentionRule, RetentionRunRequest, Selector};

/// Globs in words: `every tag`, `v*, release-*`, `v*, not v*-rc*`.
fn selector_text(selector: &Selector, every: &str) -> String {
    let mut text = if selector.include.is_empty() {
        every.to_owned()
    } else {
        selector.include.join(", ")
    };
    if !selector.exclude.is_empty() {
        text.push_str(&format!(", not {}", selector.exclude.join(", ")));
    }
    text
}

/// What a rule keeps, in words.
fn rule_text(rule: &RetentionRule) -> String {
    let tags = selector_text(&rule.tags, "every tag");
    let most_recently = |n: u32, what: &str| match n {
        1 => format!("the most recently {what} of {tags}"),
        n => format!("the {n} most recently {what} of {tags}"),
    };
    let within = |days: u32, what: &str| match days {
        1 => format!("{tags} {what} within a day"),
        days => format!("{tags} {what} within {days} days"),
    };
    if let Some(n) = rule.most_recently_pushed {
        most_recently(n, "pushed")
    } else if let Some(n) = rule.most_recently_pulled {
        most_recently(n, "pulled")
    } else if let Some(days) = rule.pushed_within_days {
        within(days, "pushed")
    } else if let Some(days) = rule.pulled_within_days {
        within(days, "pulled")
    } else {
        format!("{tags}, always")
    }
}

/// A policy as the console lists it.
fn policy_row(policy: RetentionPolicy) -> RetentionPolicyRow {
    let last = policy.status.and_then(|status| status.last_run);
    RetentionPolicyRow {
        name: policy.metadata.name,
        streams: selector_text(&policy.spec.repositories, "every stream"),
        rules: policy.spec.rules.iter().map(rule_text).collect(),
        untagged: policy.spec.untagged,
        schedule: policy.spec.schedule,
        suspended: policy.spec.suspend,
        last_run: last.as_ref().map(|run| time(run.completion_time)),
        last_result: last.as_ref().map(prune_result),
    }
}

#[async_trait]
impl RetentionData for LocalConsoleData {
    async fn retention_policies(&self, namespace: &str) -> ConsoleResult<Vec<RetentionPolicyRow>> {
        let who = caller().await?;
        let policies = self.pruning.list_policies(&who, namespace).await?;
        Ok(policies.items.into_iter().map(policy_row).collect())
    }

    async fn create_retention_policy(
        &self,
        namespace: &str,
        form: RetentionForm,
    ) -> ConsoleResult<RetentionPolicyRow> {
        let who = caller().await?;
        let body = retention_body(&form)?;
        let name = body.metadata.name.clone();
        let made = self
            .pruning
            .put_policy(&who, namespace, &name, body, true)
            .await
            .map_err(|err| form_refusal(err, RETENTION_LABELS))?;
        Ok(policy_row(made))
    }

    async fn delete_retention_policy(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.pruning.delete_policy(&who, namespace, name).await?;
        Ok(())
    }

    async fn run_retention_policy(
        &self,
        namespace: &str,
        name: &str,
        confirm: bool,
    ) -> ConsoleResult<PruneResult> {
        let who = caller().await?;
        let run = self
            .pruning
            .run_policy_now(&who, namespace, name, RetentionRunRequest { confirm })
            .await?;
        Ok(prune_result(&run.status))
    }
}
