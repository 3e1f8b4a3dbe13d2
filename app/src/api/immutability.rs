//! Tag immutability rules: a namespace's rules of which tags cannot be overwritten, moved or
//! deleted, listed with the tags each matches now, previewed (a dry run), added and deleted.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// A rule with what it matches now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRuleRow {
    pub name: String,
    pub streams: Vec<String>,
    pub exclude_streams: Vec<String>,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub disabled: bool,
    /// How many tags of the namespace it matches.
    pub matching: u64,
    /// The first of them, `stream:tag`.
    pub matching_tags: Vec<String>,
}

/// A rule as the console's form gives it: globs, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagRuleForm {
    pub name: String,
    /// Empty for every stream.
    pub streams: String,
    pub exclude_streams: String,
    pub tags: String,
    pub exclude_tags: String,
}

/// A namespace's tag immutability rules.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TagRuleData: Send + Sync {
    /// The namespace's rules, for its admins (others are refused, as the API refuses).
    async fn tag_rules(&self, namespace: &str) -> ConsoleResult<Vec<TagRuleRow>>;
    /// Stores a rule, or with `dry_run` only checks it; either way answers with what it
    /// matches.
    async fn create_tag_rule(
        &self,
        namespace: &str,
        form: TagRuleForm,
        dry_run: bool,
    ) -> ConsoleResult<TagRuleRow>;
    async fn delete_tag_rule(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "tag_rules", input = GetUrl)]
pub async fn list_tag_rules(namespace: String) -> ConsoleResult<Vec<TagRuleRow>> {
    console_data()?.tag_rules(&namespace).await
}

/// Adds a rule (the form's fields arrive as `form[name]`, `form[tags]`, ...); a preview
/// (nothing stored) with `dry_run`.
#[server(prefix = "/console/api", endpoint = "create_tag_rule")]
pub async fn create_tag_rule(
    csrf: String,
    namespace: String,
    form: TagRuleForm,
    dry_run: bool,
) -> ConsoleResult<TagRuleRow> {
    changing(&csrf)
        .await?
        .create_tag_rule(&namespace, form, dry_run)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_tag_rule")]
pub async fn delete_tag_rule(csrf: String, namespace: String, name: String) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_tag_rule(&namespace, &name)
        .await
}
