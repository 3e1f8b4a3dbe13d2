//! [`ImmutableTagRuleStore`] on SQLite: rules are written in `BEGIN IMMEDIATE` transactions,
//! so that they queue with image stream writes on SQLite's one write lock. The rules of the
//! writes are `storage/immutability.rs`'; their enforcement `storage/stream_rules.rs`'.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::SqliteMetadata;
use crate::storage::StorageResult;
use crate::storage::immutability::{
    self, ImmutableTagRuleRecord, ImmutableTagRuleStore, RULE_COLUMNS, RuleRow, RuleWrite,
    TagRuleTx, lists_to_db,
};

async fn load_rule(
    conn: &mut SqliteConnection,
    namespace: &str,
    name: &str,
) -> StorageResult<Option<ImmutableTagRuleRecord>> {
    let row: Option<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM immutable_tag_rules WHERE namespace = ? AND name = ?"
    ))
    .bind(namespace)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(RuleRow::into_record).transpose()
}

#[async_trait]
impl TagRuleTx for SqliteConnection {
    async fn namespace_exists(&mut self, namespace: &str) -> StorageResult<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM namespaces WHERE name = ?")
            .bind(namespace)
            .fetch_optional(self)
            .await?;
        Ok(found.is_some())
    }

    async fn rule_version(&mut self, namespace: &str, name: &str) -> StorageResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT resource_version FROM immutable_tag_rules WHERE namespace = ? AND name = ?",
        )
        .bind(namespace)
        .bind(name)
        .fetch_optional(self)
        .await?)
    }

    async fn insert_rule(&mut self, rule: &ImmutableTagRuleRecord) -> StorageResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO immutable_tag_rules (namespace, name, uid, repositories, tags, disabled,
                 resource_version, created_at)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(&rule.namespace)
        .bind(&rule.name)
        .bind(&rule.uid)
        .bind(lists_to_db(&rule.repositories)?)
        .bind(lists_to_db(&rule.tags)?)
        .bind(rule.disabled)
        .bind(rule.created_at)
        .execute(self)
        .await?
        .rows_affected()
            == 1)
    }

    async fn rewrite_rule(
        &mut self,
        rule: &ImmutableTagRuleRecord,
        version: i64,
    ) -> StorageResult<()> {
        sqlx::query(
            "UPDATE immutable_tag_rules SET repositories = ?, tags = ?, disabled = ?,
                 resource_version = ?
             WHERE namespace = ? AND name = ?",
        )
        .bind(lists_to_db(&rule.repositories)?)
        .bind(lists_to_db(&rule.tags)?)
        .bind(rule.disabled)
        .bind(version)
        .bind(&rule.namespace)
        .bind(&rule.name)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn load_rule(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ImmutableTagRuleRecord>> {
        load_rule(self, namespace, name).await
    }
}

#[async_trait]
impl ImmutableTagRuleStore for SqliteMetadata {
    async fn create_tag_rule(&self, rule: &ImmutableTagRuleRecord) -> StorageResult<RuleWrite> {
        let mut tx = self.begin_write().await?;
        let written = immutability::create_rule(&mut *tx, rule).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn update_tag_rule(
        &self,
        rule: &ImmutableTagRuleRecord,
        expected_version: Option<i64>,
    ) -> StorageResult<RuleWrite> {
        let mut tx = self.begin_write().await?;
        let written = immutability::update_rule(&mut *tx, rule, expected_version).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn tag_rules(&self, namespace: &str) -> StorageResult<Vec<ImmutableTagRuleRecord>> {
        let rows: Vec<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM immutable_tag_rules WHERE namespace = ? ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(RuleRow::into_record).collect()
    }

    async fn tag_rule(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ImmutableTagRuleRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_rule(&mut conn, namespace, name).await
    }

    async fn delete_tag_rule(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        // Removing a rule only lifts a protection: it needs no ordering with the writes.
        Ok(
            sqlx::query("DELETE FROM immutable_tag_rules WHERE namespace = ? AND name = ?")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}
