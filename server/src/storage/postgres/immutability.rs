//! [`ImmutableTagRuleStore`] on PostgreSQL: a rule is created or updated holding the image
//! stream writers' lock ([`PostgresDatabase::begin_stream_write`]), which every change to a
//! tag holds while it reads the rules: a rule and a push racing are ordered, so they cannot
//! both win. The rules of the writes are `storage/immutability.rs`'; their enforcement
//! `storage/stream_rules.rs`'.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::PostgresDatabase;
use crate::storage::StorageResult;
use crate::storage::immutability::{
    self, ImmutableTagRuleRecord, ImmutableTagRuleStore, RULE_COLUMNS, RuleRow, RuleWrite,
    TagRuleTx, lists_to_db,
};

async fn load_rule(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> StorageResult<Option<ImmutableTagRuleRecord>> {
    let row: Option<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM immutable_tag_rules WHERE namespace = $1 AND name = $2"
    ))
    .bind(namespace)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(RuleRow::into_record).transpose()
}

#[async_trait]
impl TagRuleTx for PgConnection {
    async fn namespace_exists(&mut self, namespace: &str) -> StorageResult<bool> {
        // A namespace is deleted under the same lock: it stays until the rule is stored.
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM namespaces WHERE name = $1")
            .bind(namespace)
            .fetch_optional(self)
            .await?;
        Ok(found.is_some())
    }

    async fn rule_version(&mut self, namespace: &str, name: &str) -> StorageResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT resource_version FROM immutable_tag_rules WHERE namespace = $1 AND name = $2",
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
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7) ON CONFLICT (namespace, name) DO NOTHING",
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
            "UPDATE immutable_tag_rules SET repositories = $1, tags = $2, disabled = $3,
                 resource_version = $4
             WHERE namespace = $5 AND name = $6",
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
impl ImmutableTagRuleStore for PostgresDatabase {
    async fn create_tag_rule(&self, rule: &ImmutableTagRuleRecord) -> StorageResult<RuleWrite> {
        let mut tx = self.begin_stream_write().await?;
        let written = immutability::create_rule(&mut *tx, rule).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn update_tag_rule(
        &self,
        rule: &ImmutableTagRuleRecord,
        expected_version: Option<i64>,
    ) -> StorageResult<RuleWrite> {
        let mut tx = self.begin_stream_write().await?;
        let written = immutability::update_rule(&mut *tx, rule, expected_version).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn tag_rules(&self, namespace: &str) -> StorageResult<Vec<ImmutableTagRuleRecord>> {
        let rows: Vec<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM immutable_tag_rules WHERE namespace = $1 ORDER BY name"
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
            sqlx::query("DELETE FROM immutable_tag_rules WHERE namespace = $1 AND name = $2")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}
