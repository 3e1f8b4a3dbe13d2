//! Tag immutability rules: what the metadata store keeps of them ([`ImmutableTagRuleRecord`],
//! the [`ImmutableTagRuleStore`] trait), how their patterns match ([`CompiledRule`]), and the
//! refusal a protected tag's change ends in ([`ImmutableTag`]).
//!
//! A rule of a namespace names streams and tags by glob patterns, as Harbor's rules do: each
//! list has `include` and `exclude` patterns, and a stream (tag) is matched when an `include`
//! pattern matches it and no `exclude` pattern does (an empty `include` matches everything).
//! `*` and `?` stay within one `/`-separated component of a stream name, `**` crosses them,
//! `{a,b}` is either, `[a-z]` one of a class. A tag that names an image is immutable when an
//! enabled rule matches its stream and it: it cannot be moved to another image or removed,
//! nor can the image it names, its stream or its namespace be deleted. The enforcement is
//! `stream_rules.rs`', inside each change's write transaction.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{StorageError, StorageResult};

/// The patterns of one side of a rule (streams, or tags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PatternLists {
    /// Matched when one of these matches; an empty list matches everything.
    #[serde(default)]
    pub include: Vec<String>,
    /// Not matched when one of these matches.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A namespace's tag immutability rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ImmutableTagRuleRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Stream names within the namespace (`app`, `team/app`).
    pub repositories: PatternLists,
    pub tags: PatternLists,
    /// A disabled rule protects nothing.
    pub disabled: bool,
    /// From 1, up by one at each update (given by the store; ignored when storing).
    pub resource_version: i64,
    pub created_at: DateTime<Utc>,
}

/// What writing a rule came to.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleWrite {
    /// Stored; the rule as it is now.
    Written(ImmutableTagRuleRecord),
    /// A creation whose name the namespace has already.
    Exists,
    /// An update of a rule the namespace does not have.
    Missing,
    /// An update that expected another resourceVersion than the rule's (`current`).
    Conflict { current: i64 },
    /// The namespace does not exist.
    NoNamespace,
}

/// The refusal of a change to a protected tag: which tag, and the rule that protects it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tag \"{tag}\" of {namespace}/{stream} is immutable: the tag immutability rule \"{rule}\" of namespace \"{namespace}\" protects it from being overwritten or deleted"
)]
pub struct ImmutableTag {
    pub namespace: String,
    pub stream: String,
    pub tag: String,
    pub rule: String,
}

/// Tag immutability rules (deleted with their namespace). Every write of a rule is serialised
/// with the image stream writes, so that a rule and a push racing cannot both win.
#[async_trait]
pub trait ImmutableTagRuleStore: Send + Sync + 'static {
    /// Stores a new rule at resourceVersion 1.
    async fn create_tag_rule(&self, rule: &ImmutableTagRuleRecord) -> StorageResult<RuleWrite>;
    /// Replaces a rule's patterns and `disabled`, if it is at `expected_version` when given;
    /// its resourceVersion goes up by one.
    async fn update_tag_rule(
        &self,
        rule: &ImmutableTagRuleRecord,
        expected_version: Option<i64>,
    ) -> StorageResult<RuleWrite>;
    /// The namespace's rules, by name.
    async fn tag_rules(&self, namespace: &str) -> StorageResult<Vec<ImmutableTagRuleRecord>>;
    async fn tag_rule(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ImmutableTagRuleRecord>>;
    /// Deletes a rule; false when there was none.
    async fn delete_tag_rule(&self, namespace: &str, name: &str) -> StorageResult<bool>;
}

/// The statements the rule writes need, inside a write transaction serialised with the image
/// stream writes.
#[async_trait]
pub(super) trait TagRuleTx: Send {
    async fn namespace_exists(&mut self, namespace: &str) -> StorageResult<bool>;
    /// The rule's resourceVersion, when it exists.
    async fn rule_version(&mut self, namespace: &str, name: &str) -> StorageResult<Option<i64>>;
    /// Inserts the rule at resourceVersion 1; false when its name is taken.
    async fn insert_rule(&mut self, rule: &ImmutableTagRuleRecord) -> StorageResult<bool>;
    /// Writes the rule's patterns and `disabled` at resourceVersion `version`.
    async fn rewrite_rule(
        &mut self,
        rule: &ImmutableTagRuleRecord,
        version: i64,
    ) -> StorageResult<()>;
    async fn load_rule(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ImmutableTagRuleRecord>>;
}

/// Stores a new rule (see [`ImmutableTagRuleStore::create_tag_rule`]).
pub(super) async fn create_rule(
    tx: &mut (impl TagRuleTx + ?Sized),
    rule: &ImmutableTagRuleRecord,
) -> StorageResult<RuleWrite> {
    if !tx.namespace_exists(&rule.namespace).await? {
        return Ok(RuleWrite::NoNamespace);
    }
    if !tx.insert_rule(rule).await? {
        return Ok(RuleWrite::Exists);
    }
    written(tx, rule).await
}

/// Replaces a rule (see [`ImmutableTagRuleStore::update_tag_rule`]).
pub(super) async fn update_rule(
    tx: &mut (impl TagRuleTx + ?Sized),
    rule: &ImmutableTagRuleRecord,
    expected_version: Option<i64>,
) -> StorageResult<RuleWrite> {
    if !tx.namespace_exists(&rule.namespace).await? {
        return Ok(RuleWrite::NoNamespace);
    }
    let Some(current) = tx.rule_version(&rule.namespace, &rule.name).await? else {
        return Ok(RuleWrite::Missing);
    };
    if expected_version.is_some_and(|expected| expected != current) {
        return Ok(RuleWrite::Conflict { current });
    }
    tx.rewrite_rule(rule, current + 1).await?;
    written(tx, rule).await
}

async fn written(
    tx: &mut (impl TagRuleTx + ?Sized),
    rule: &ImmutableTagRuleRecord,
) -> StorageResult<RuleWrite> {
    tx.load_rule(&rule.namespace, &rule.name)
        .await?
        .map(RuleWrite::Written)
        .ok_or_else(|| StorageError::Corrupt(format!("rule {} vanished", rule.name)))
}

/// One list of patterns, compiled into one matcher.
#[derive(Debug)]
struct Globs {
    /// `None` for an empty list.
    set: Option<GlobSet>,
}

impl Globs {
    fn compile(patterns: &[String]) -> Result<Self, PatternError> {
        if patterns.is_empty() {
            return Ok(Globs { set: None });
        }
        let mut set = GlobSetBuilder::new();
        for (index, pattern) in patterns.iter().enumerate() {
            set.add(compile_pattern(pattern).map_err(|why| PatternError { index, why })?);
        }
        let set = set.build().map_err(|err| PatternError {
            index: 0,
            why: err.to_string(),
        })?;
        Ok(Globs { set: Some(set) })
    }

    fn any(&self, text: &str) -> bool {
        self.set.as_ref().is_some_and(|set| set.is_match(text))
    }
}

/// Which pattern of a list does not compile, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub index: usize,
    pub why: String,
}

/// The longest pattern kept; stream names are at most 255 bytes.
pub const MAX_PATTERN_BYTES: usize = 255;

/// One pattern as rules match it: `*` and `?` never cross a `/`; `**` as a whole component
/// crosses any number of them (elsewhere it is `*`), as Harbor's doublestar patterns do.
fn compile_pattern(pattern: &str) -> Result<globset::Glob, String> {
    if pattern.is_empty() {
        return Err("must not be empty (\"**\" matches everything)".into());
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!("must have at most {MAX_PATTERN_BYTES} bytes"));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| format!("is not a valid pattern: {}", err.kind()))
}

/// Why each pattern of `patterns` that does not compile fails, with its index.
pub fn check_patterns(patterns: &[String]) -> Vec<PatternError> {
    patterns
        .iter()
        .enumerate()
        .filter_map(|(index, pattern)| {
            compile_pattern(pattern)
                .err()
                .map(|why| PatternError { index, why })
        })
        .collect()
}

/// One side of a rule, compiled.
#[derive(Debug)]
struct Selector {
    include: Globs,
    exclude: Globs,
}

impl Selector {
    fn compile(lists: &PatternLists) -> Result<Self, PatternError> {
        Ok(Selector {
            include: Globs::compile(&lists.include)?,
            exclude: Globs::compile(&lists.exclude)?,
        })
    }

    fn matches(&self, text: &str) -> bool {
        (self.include.set.is_none() || self.include.any(text)) && !self.exclude.any(text)
    }
}

/// A rule's patterns compiled: [`CompiledRule::protects`] is a few automaton runs.
#[derive(Debug)]
pub struct CompiledRule {
    pub name: String,
    repositories: Selector,
    tags: Selector,
}

impl CompiledRule {
    pub fn compile(
        name: &str,
        repositories: &PatternLists,
        tags: &PatternLists,
    ) -> Result<Self, PatternError> {
        Ok(CompiledRule {
            name: name.to_owned(),
            repositories: Selector::compile(repositories)?,
            tags: Selector::compile(tags)?,
        })
    }

    /// Whether the rule matches tag `tag` of stream `stream` (its name within the namespace).
    pub fn protects(&self, stream: &str, tag: &str) -> bool {
        self.repositories.matches(stream) && self.tags.matches(tag)
    }
}

/// The first of `rules` (in their order) that protects `stream:tag`.
pub fn protecting_rule<'a>(
    rules: &'a [Arc<CompiledRule>],
    stream: &str,
    tag: &str,
) -> Option<&'a str> {
    rules
        .iter()
        .find(|rule| rule.protects(stream, tag))
        .map(|rule| rule.name.as_str())
}

/// A rule as the enforcement reads it inside a write transaction: its patterns as JSON,
/// compiled only when this version of the rule was not compiled before.
#[derive(sqlx::FromRow)]
pub(super) struct EnforcedRuleRow {
    pub uid: String,
    pub name: String,
    pub resource_version: i64,
    pub repositories: String,
    pub tags: String,
}

/// A rule as stored: its pattern lists as JSON ([`RULE_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct RuleRow {
    namespace: String,
    name: String,
    uid: String,
    repositories: String,
    tags: String,
    disabled: bool,
    resource_version: i64,
    created_at: DateTime<Utc>,
}

pub(super) const RULE_COLUMNS: &str =
    "namespace, name, uid, repositories, tags, disabled, resource_version, created_at";

impl RuleRow {
    pub fn into_record(self) -> StorageResult<ImmutableTagRuleRecord> {
        let lists = |text: &str| {
            serde_json::from_str::<PatternLists>(text).map_err(|err| {
                StorageError::Corrupt(format!("rule {}/{}: {err}", self.namespace, self.name))
            })
        };
        Ok(ImmutableTagRuleRecord {
            repositories: lists(&self.repositories)?,
            tags: lists(&self.tags)?,
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
            disabled: self.disabled,
            resource_version: self.resource_version,
            created_at: self.created_at,
        })
    }
}

/// A rule's pattern lists as stored (JSON).
pub(super) fn lists_to_db(lists: &PatternLists) -> StorageResult<String> {
    super::rows::to_json(lists)
}

/// Rules compiled so far, by uid and resourceVersion (which name one content for good): a
/// push that reads the rules compiles none of them again. Cleared when it grows past
/// [`COMPILED_KEPT`].
static COMPILED: LazyLock<Mutex<CompiledRules>> = LazyLock::new(Mutex::default);

/// Compiled rules by (uid, resourceVersion).
type CompiledRules = HashMap<(String, i64), Arc<CompiledRule>>;
const COMPILED_KEPT: usize = 4096;

impl EnforcedRuleRow {
    pub fn compiled(self) -> StorageResult<Arc<CompiledRule>> {
        let EnforcedRuleRow {
            uid,
            name,
            resource_version,
            repositories,
            tags,
        } = self;
        cached(uid, resource_version, || {
            let lists = |text: &str| {
                serde_json::from_str::<PatternLists>(text)
                    .map_err(|err| StorageError::Corrupt(format!("rule {name}: {err}")))
            };
            compile_stored(&name, &lists(&repositories)?, &lists(&tags)?)
        })
    }
}

impl ImmutableTagRuleRecord {
    /// The rule's patterns compiled (once per version, as the enforcement compiles them).
    pub fn compiled(&self) -> StorageResult<Arc<CompiledRule>> {
        cached(self.uid.clone(), self.resource_version, || {
            compile_stored(&self.name, &self.repositories, &self.tags)
        })
    }
}

/// A stored rule compiled: its patterns were checked when it was written, so a failure is
/// corruption (and fails the change: a protection is never skipped).
fn compile_stored(
    name: &str,
    repositories: &PatternLists,
    tags: &PatternLists,
) -> StorageResult<CompiledRule> {
    CompiledRule::compile(name, repositories, tags)
        .map_err(|err| StorageError::Corrupt(format!("rule {name}: {}", err.why)))
}

/// The rule of `uid` at `version`, compiled by `compile` unless it was before.
fn cached(
    uid: String,
    version: i64,
    compile: impl FnOnce() -> StorageResult<CompiledRule>,
) -> StorageResult<Arc<CompiledRule>> {
    let key = (uid, version);
    if let Some(rule) = lock_compiled().get(&key) {
        return Ok(rule.clone());
    }
    let rule = Arc::new(compile()?);
    let mut compiled = lock_compiled();
    if compiled.len() >= COMPILED_KEPT {
        compiled.clear();
    }
    compiled.insert(key, rule.clone());
    Ok(rule)
}

fn lock_compiled() -> std::sync::MutexGuard<'static, CompiledRules> {
    // The map holds finished values only: a panic elsewhere leaves it usable.
    COMPILED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(include: &[&str], exclude: &[&str]) -> PatternLists {
        PatternLists {
            include: include.iter().map(|p| p.to_string()).collect(),
            exclude: exclude.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn rule(repositories: PatternLists, tags: PatternLists) -> CompiledRule {
        CompiledRule::compile("r", &repositories, &tags).unwrap()
    }

    #[test]
    fn patterns_match_as_harbor_doublestar_patterns_do() {
        let any_tag = lists(&["**"], &[]);
        let streams = |pattern: &str, stream: &str| {
            rule(lists(&[pattern], &[]), any_tag.clone()).protects(stream, "v1")
        };
        assert!(streams("**", "app"));
        assert!(streams("**", "team/app"));
        assert!(streams("*", "app"));
        assert!(!streams("*", "team/app"), "* stays within a component");
        assert!(streams("team/*", "team/app"));
        assert!(!streams("team/*", "team/a/b"));
        assert!(streams("team/**", "team/a/b"));
        assert!(streams("**/app", "app"));
        assert!(streams("**/app", "x/y/app"));
        assert!(streams("{app,web}", "web"));
        assert!(!streams("{app,web}", "db"));
        assert!(streams("app-?", "app-1"));
        assert!(!streams("app-?", "app-10"));
        assert!(streams("app-[0-9]", "app-7"));
        assert!(streams("a**", "abc"), "** inside a component is *");
        assert!(!streams("a**", "a/b"));
    }

    #[test]
    fn excludes_win_and_an_empty_include_matches_everything() {
        let protected = rule(lists(&[], &["scratch-*"]), lists(&["v*"], &["*-rc*"]));
        assert!(protected.protects("app", "v1.2"));
        assert!(protected.protects("team/app", "v1.2"));
        assert!(!protected.protects("app", "v1.2-rc1"));
        assert!(!protected.protects("app", "latest"));
        assert!(!protected.protects("scratch-1", "v1.2"));
        let all = rule(PatternLists::default(), PatternLists::default());
        assert!(all.protects("x", "y"));
    }

    #[test]
    fn the_first_protecting_rule_is_named() {
        let rules = [
            Arc::new(
                CompiledRule::compile("a-releases", &lists(&["app"], &[]), &lists(&["v*"], &[]))
                    .unwrap(),
            ),
            Arc::new(
                CompiledRule::compile("b-all", &lists(&["**"], &[]), &lists(&["**"], &[])).unwrap(),
            ),
        ];
        assert_eq!(protecting_rule(&rules, "app", "v1"), Some("a-releases"));
        assert_eq!(protecting_rule(&rules, "app", "latest"), Some("b-all"));
        assert_eq!(protecting_rule(&rules[..1], "web", "v1"), None);
    }

    #[test]
    fn bad_patterns_are_named_by_index_with_the_reason() {
        let errors = check_patterns(&[
            "v*".into(),
            "{a,b".into(),
            String::new(),
            "[z-a]".into(),
            "x".repeat(256),
            "a\\".into(),
        ]);
        let indexes: Vec<usize> = errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, [1, 2, 3, 4, 5]);
        assert!(
            errors[0].why.contains("unclosed alternate"),
            "{:?}",
            errors[0]
        );
        assert!(errors[1].why.contains("must not be empty"));
        assert!(errors[2].why.contains("invalid range"), "{:?}", errors[2]);
        assert!(errors[3].why.contains("255"));
        assert!(check_patterns(&["{a,{b,c}}".into(), "**/x".into()]).is_empty());
    }

    #[test]
    fn a_rule_is_compiled_once_per_version() {
        let row = |version: i64, tags: &str| EnforcedRuleRow {
            uid: "uid-of-a-test-rule".into(),
            name: "r".into(),
            resource_version: version,
            repositories: r#"{"include":["**"]}"#.into(),
            tags: tags.into(),
        };
        let first = row(1, r#"{"include":["v*"]}"#).compiled().unwrap();
        let again = row(1, r#"{"include":["v*"]}"#).compiled().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let updated = row(2, r#"{"include":["latest"]}"#).compiled().unwrap();
        assert!(updated.protects("app", "latest"));
        assert!(!updated.protects("app", "v1"));
        assert!(matches!(
            row(3, "not json").compiled(),
            Err(StorageError::Corrupt(_))
        ));
    }
}
