//! Tag immutability rules inside Berth: a namespace's rules through `ImmutableTagRules` (its
//! admins'), listed with what each matches now, previewed with a dry run, added and deleted.

use app::api::ConsoleResult;
use app::api::immutability::{TagRuleData, TagRuleForm, TagRuleRow};
use async_trait::async_trait;

use super::LocalConsoleData;
use crate::console::forms::{TAG_RULE_LABELS, form_refusal, tag_rule_body};
use crate::console::session::caller;
use crate::immutability::ImmutableTagRule;

/// A rule as the console lists it.
fn tag_rule_row(rule: ImmutableTagRule) -> TagRuleRow {
    let status = rule.status.unwrap_or_default();
    TagRuleRow {
        name: rule.metadata.name,
        streams: rule.spec.repositories.include,
        exclude_streams: rule.spec.repositories.exclude,
        tags: rule.spec.tags.include,
        exclude_tags: rule.spec.tags.exclude,
        disabled: rule.spec.disabled,
        matching: status.matching_tags,
        matching_tags: status.tags,
    }
}

#[async_trait]
impl TagRuleData for LocalConsoleData {
    async fn tag_rules(&self, namespace: &str) -> ConsoleResult<Vec<TagRuleRow>> {
        let who = caller().await?;
        let rules = self.tag_rules.list(&who, namespace).await?;
        Ok(rules.items.into_iter().map(tag_rule_row).collect())
    }

    async fn create_tag_rule(
        &self,
        namespace: &str,
        form: TagRuleForm,
        dry_run: bool,
    ) -> ConsoleResult<TagRuleRow> {
        let who = caller().await?;
        let made = self
            .tag_rules
            .create(&who, namespace, tag_rule_body(&form), dry_run)
            .await
            .map_err(|err| form_refusal(err, TAG_RULE_LABELS))?;
        Ok(tag_rule_row(made))
    }

    async fn delete_tag_rule(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.tag_rules.delete(&who, namespace, name).await?;
        Ok(())
    }
}
