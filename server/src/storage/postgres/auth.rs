//! [`AuthStore`] on PostgreSQL. The rules are `storage/auth_rules.rs`' (as on SQLite); what
//! SQLite gets from having one writer is made explicit here: signing in with an external
//! identity holds [`IDENTITY_LOCK`], and a binding locks the subject it needs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PostgresDatabase;
use crate::config::auth::MappingMethod;
use crate::storage::StorageResult;
use crate::storage::auth::{
    AuditRecord, AuthStore, BindingRecord, ExternalIdentity, GroupRecord, IdentityMapping,
    IdentityRecord, LinkOutcome, NewAudit, OAuthCode, ServiceAccountRecord, TokenIdentity,
    TokenKind, TokenOwner, TokenRecord, UserRecord,
};
use crate::storage::auth_rules::{
    self, BINDING_COLUMNS, BindingTx, GroupMemberRow, IdentityTx, NamedUser,
    SERVICE_ACCOUNT_COLUMNS, TOKEN_COLUMNS, TokenRow, USER_COLUMNS, UserRow, binding_made,
    groups_from_rows, owner_columns,
};

/// The advisory lock key of identity mapping ("berthid"), held by each transaction that maps or
/// links an external identity until it ends: two first sign-ins of one person (or of two
/// people suggesting one name) are one after the other, as on SQLite, instead of one failing
/// on a unique key.
const IDENTITY_LOCK: i64 = 0x62_6572_7468_6964;

/// Audit entries deleted per statement, so that writers are not held up.
const AUDIT_DELETE_BATCH: u64 = 5000;

/// The user of `row`, with its local groups.
async fn user_record(conn: &mut PgConnection, row: UserRow) -> StorageResult<UserRecord> {
    let local: Vec<String> = sqlx::query_scalar(
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1",
    )
    .bind(row.id)
    .fetch_all(conn)
    .await?;
    row.into_record(local)
}

async fn user_by_id(conn: &mut PgConnection, id: i64) -> StorageResult<Option<UserRecord>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some(row) => Ok(Some(user_record(conn, row).await?)),
        None => Ok(None),
    }
}

/// The identity rules' statements, inside a transaction that holds [`IDENTITY_LOCK`].
#[async_trait]
impl IdentityTx for PgConnection {
    async fn identity_owner(
        &mut self,
        provider: &str,
        subject: &str,
    ) -> StorageResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM identities WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(self)
        .await?)
    }

    async fn named_user(&mut self, name: &str) -> StorageResult<Option<NamedUser>> {
        Ok(sqlx::query_as(
            "SELECT id, password_hash IS NOT NULL AS has_password, identity_provider,
                    EXISTS (SELECT 1 FROM identities i WHERE i.user_id = users.id) AS has_identity
             FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self)
        .await?)
    }

    async fn user_id(&mut self, name: &str) -> StorageResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(self)
            .await?)
    }

    async fn insert_external_user(&mut self, name: &str, provider: &str) -> StorageResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO users (name, uid, identity_provider, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(provider)
        .bind(Utc::now())
        .fetch_one(self)
        .await?)
    }

    async fn insert_identity(
        &mut self,
        provider: &str,
        subject: &str,
        user_id: i64,
    ) -> StorageResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO identities (provider, subject, user_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING",
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(Utc::now())
        .execute(self)
        .await?
        .rows_affected()
            == 1)
    }

    async fn record_claims(
        &mut self,
        user_id: i64,
        groups: &str,
        full_name: Option<&str>,
    ) -> StorageResult<()> {
        sqlx::query(
            "UPDATE users SET external_groups = $1, full_name = coalesce($2, full_name)
             WHERE id = $3",
        )
        .bind(groups)
        .bind(full_name)
        .bind(user_id)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn user_by_id(&mut self, id: i64) -> StorageResult<Option<UserRecord>> {
        user_by_id(self, id).await
    }
}

/// The subject's row is locked (`FOR SHARE`) by the check, so that a deletion waits for the
/// insert to commit and its trigger then deletes the binding too, or commits first and the
/// check finds nothing.
#[async_trait]
impl BindingTx for PgConnection {
    async fn insert_binding(&mut self, binding: &BindingRecord) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "INSERT INTO role_bindings
                 (name, namespace, stream, role, subject_kind, subject_name, subject_namespace, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE CASE
                 WHEN $5 = 'ServiceAccount' THEN EXISTS (
                     SELECT 1 FROM service_accounts WHERE namespace = $7 AND name = $6 FOR SHARE)
                 WHEN $5 = 'Group' AND substr($6, 1, 23) = 'system:serviceaccounts:' THEN EXISTS (
                     SELECT 1 FROM namespaces WHERE name = substr($6, 24) FOR SHARE)
                 ELSE TRUE
             END",
        )
        .bind(&binding.name)
        .bind(&binding.namespace)
        .bind(&binding.stream)
        .bind(&binding.role)
        .bind(&binding.subject_kind)
        .bind(&binding.subject_name)
        .bind(&binding.subject_namespace)
        .bind(binding.created_at)
        .execute(self)
        .await?
        .rows_affected())
    }
}

impl PostgresDatabase {
    /// Begins a transaction that maps or links identities, holding [`IDENTITY_LOCK`].
    async fn begin_identity_write(
        &self,
    ) -> StorageResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(IDENTITY_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Wakes this replica's watchers after a change of access (as SQLite does).
    fn changed(&self) {
        self.changes.send_modify(|count| *count += 1);
    }
}

#[async_trait]
impl AuthStore for PostgresDatabase {
    async fn user(&self, name: &str) -> StorageResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        match row {
            Some(row) => Ok(Some(user_record(&mut conn, row).await?)),
            None => Ok(None),
        }
    }

    async fn user_by_id(&self, id: i64) -> StorageResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        user_by_id(&mut conn, id).await
    }

    async fn list_users(&self) -> StorageResult<Vec<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(&mut *conn)
                .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            users.push(user_record(&mut conn, row).await?);
        }
        Ok(users)
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        identity_provider: &str,
        full_name: Option<&str>,
    ) -> StorageResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "INSERT INTO users (name, uid, password_hash, identity_provider, full_name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING
             RETURNING {USER_COLUMNS}"
        ))
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(password_hash)
        .bind(identity_provider)
        .bind(full_name)
        .bind(Utc::now())
        .fetch_optional(&self.pool)
        .await?;
        // A new user is in no group yet.
        row.map(|row| row.into_record(Vec::new())).transpose()
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> StorageResult<bool> {
        Ok(
            sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
                .bind(password_hash)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn map_identity(
        &self,
        identity: &ExternalIdentity<'_>,
        method: MappingMethod,
    ) -> StorageResult<IdentityMapping> {
        let mut tx = self.begin_identity_write().await?;
        let mapping = auth_rules::map_identity(&mut *tx, identity, method).await?;
        if let IdentityMapping::Mapped(_) = mapping {
            tx.commit().await?;
        }
        Ok(mapping)
    }

    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
    ) -> StorageResult<LinkOutcome> {
        let mut tx = self.begin_identity_write().await?;
        let outcome = auth_rules::link_identity(&mut *tx, provider, subject, user).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_identities(&self) -> StorageResult<Vec<IdentityRecord>> {
        Ok(sqlx::query_as(
            "SELECT i.provider, i.subject, u.name AS \"user\", i.created_at
             FROM identities i JOIN users u ON u.id = i.user_id
             ORDER BY i.provider, i.subject",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn count_users(&self) -> StorageResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn list_groups(&self) -> StorageResult<Vec<GroupRecord>> {
        let rows: Vec<GroupMemberRow> = sqlx::query_as(
            "SELECT g.name, g.created_at, u.name AS member FROM groups g
             LEFT JOIN group_members m ON m.group_id = g.id
             LEFT JOIN users u ON u.id = m.user_id
             ORDER BY g.name, u.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(groups_from_rows(rows))
    }

    async fn add_group_member(&self, group: &str, user: &str) -> StorageResult<bool> {
        let mut tx = self.begin().await?;
        let group_id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(group)
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await?;
        let added = sqlx::query(
            "INSERT INTO group_members (group_id, user_id)
             SELECT $1, id FROM users WHERE name = $2 ON CONFLICT DO NOTHING",
        )
        .bind(group_id)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_group_member(&self, group: &str, user: &str) -> StorageResult<bool> {
        Ok(sqlx::query(
            "DELETE FROM group_members
             WHERE group_id = (SELECT id FROM groups WHERE name = $1)
               AND user_id = (SELECT id FROM users WHERE name = $2)",
        )
        .bind(group)
        .bind(user)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn list_service_accounts(
        &self,
        namespace: &str,
    ) -> StorageResult<Vec<ServiceAccountRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SERVICE_ACCOUNT_COLUMNS} FROM service_accounts WHERE namespace = $1
             ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ServiceAccountRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SERVICE_ACCOUNT_COLUMNS} FROM service_accounts
             WHERE namespace = $1 AND name = $2"
        ))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn create_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ServiceAccountRecord>> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO service_accounts (namespace, name, uid, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, name) DO NOTHING RETURNING {SERVICE_ACCOUNT_COLUMNS}"
        ))
        .bind(namespace)
        .bind(name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(Utc::now())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_service_account(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        // Its tokens go by foreign key, its bindings by trigger.
        let deleted =
            sqlx::query("DELETE FROM service_accounts WHERE namespace = $1 AND name = $2")
                .bind(namespace)
                .bind(name)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1;
        if deleted {
            self.changed();
        }
        Ok(deleted)
    }

    async fn create_token(
        &self,
        kind: TokenKind,
        owner: &TokenOwner,
        name: &str,
        secret_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StorageResult<TokenRecord> {
        let (user_id, account_id) = owner_columns(owner);
        let row: TokenRow = sqlx::query_as(&format!(
            "INSERT INTO tokens (uid, name, secret_hash, kind, user_id, service_account_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(secret_hash)
        .bind(kind.as_str())
        .bind(user_id)
        .bind(account_id)
        .bind(Utc::now())
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        row.into_record()
    }

    async fn find_token(
        &self,
        secret_hash: &str,
    ) -> StorageResult<Option<(TokenRecord, TokenIdentity)>> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let token = row.into_record()?;
        let identity = match token.owner {
            TokenOwner::User(id) => user_by_id(&mut conn, id).await?.map(TokenIdentity::User),
            TokenOwner::ServiceAccount(id) => {
                let account: Option<ServiceAccountRecord> = sqlx::query_as(&format!(
                    "SELECT {SERVICE_ACCOUNT_COLUMNS} FROM service_accounts WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                account.map(TokenIdentity::ServiceAccount)
            }
        };
        Ok(identity.map(|identity| (token, identity)))
    }

    async fn list_tokens(&self, owner: &TokenOwner) -> StorageResult<Vec<TokenRecord>> {
        // Exactly one of the two is given, and a token has exactly one owner column: a NULL
        // never equals, so the other side of the OR finds nothing.
        let (user_id, account_id) = owner_columns(owner);
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens
             WHERE (user_id = $1 OR service_account_id = $2) AND kind <> 'oauth'
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id)
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    async fn revoke_token(&self, owner: &TokenOwner, uid: &str) -> StorageResult<bool> {
        let (user_id, account_id) = owner_columns(owner);
        Ok(sqlx::query(
            "UPDATE tokens SET revoked_at = $1
             WHERE uid = $2 AND (user_id = $3 OR service_account_id = $4) AND revoked_at IS NULL",
        )
        .bind(Utc::now())
        .bind(uid)
        .bind(user_id)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> StorageResult<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_all_bindings(&self) -> StorageResult<Vec<BindingRecord>> {
        // Registry-wide bindings first, as SQLite sorts NULL.
        Ok(sqlx::query_as(&format!(
            "SELECT {BINDING_COLUMNS} FROM role_bindings ORDER BY namespace NULLS FIRST, name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_bindings(&self, namespace: Option<&str>) -> StorageResult<Vec<BindingRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {BINDING_COLUMNS} FROM role_bindings WHERE namespace IS NOT DISTINCT FROM $1
             ORDER BY name"
        ))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_binding(
        &self,
        binding: &BindingRecord,
    ) -> StorageResult<Option<BindingRecord>> {
        let mut conn = self.pool.acquire().await?;
        let made = binding_made(conn.insert_binding(binding).await, binding)?;
        if made.is_some() {
            self.changed();
        }
        Ok(made)
    }

    async fn delete_binding(&self, namespace: Option<&str>, name: &str) -> StorageResult<bool> {
        let deleted = sqlx::query(
            "DELETE FROM role_bindings WHERE namespace IS NOT DISTINCT FROM $1 AND name = $2",
        )
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if deleted {
            self.changed();
        }
        Ok(deleted)
    }

    async fn create_namespace_with_admin(
        &self,
        namespace: &str,
        admin: Option<&BindingRecord>,
    ) -> StorageResult<bool> {
        let mut tx = self.begin_stream_write().await?;
        let made = auth_rules::create_namespace_with_admin(&mut *tx, namespace, admin).await?;
        if made {
            self.commit(tx).await?;
        }
        Ok(made)
    }

    async fn put_oauth_code(&self, code_hash: &str, code: &OAuthCode) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO oauth_codes
                 (code_hash, client_id, redirect_uri, user_id, code_challenge, nonce, scope, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(code_hash)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(code.user_id)
        .bind(&code.code_challenge)
        .bind(&code.nonce)
        .bind(&code.scope)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await?;
        // Expired codes are of no use to anyone.
        sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
            .bind(Utc::now() - chrono::Duration::hours(1))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_oauth_code(&self, code_hash: &str) -> StorageResult<Option<OAuthCode>> {
        Ok(sqlx::query_as(
            "UPDATE oauth_codes SET used = TRUE WHERE code_hash = $1 AND NOT used
             RETURNING client_id, redirect_uri, user_id, code_challenge, nonce, scope, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn append_audit(&self, entry: &NewAudit) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (time, actor, action, target, outcome, address, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Utc::now())
        .bind(&entry.actor)
        .bind(entry.action)
        .bind(&entry.target)
        .bind(if entry.success { "success" } else { "failure" })
        .bind(&entry.address)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StorageResult<Vec<AuditRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, time, actor, action, target, outcome, address, detail FROM audit_log
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_audit_before(&self, before: DateTime<Utc>) -> StorageResult<u64> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM audit_log WHERE id IN
                     (SELECT id FROM audit_log WHERE time < $1 ORDER BY time LIMIT $2)",
            )
            .bind(before)
            .bind(AUDIT_DELETE_BATCH as i64)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < AUDIT_DELETE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StorageResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::storage::postgres::PostgresSettings;
    use crate::storage::test_infra::postgres;

    #[tokio::test]
    async fn a_binding_made_while_its_service_account_is_deleted_goes_with_it() {
        let database = Arc::new(
            PostgresDatabase::open(&postgres().database(), &PostgresSettings::default())
                .await
                .unwrap(),
        );
        for namespace in ["team", "other"] {
            database
                .create_namespace_with_admin(namespace, None)
                .await
                .unwrap();
        }
        database
            .create_service_account("team", "robot")
            .await
            .unwrap()
            .unwrap();
        // A deletion in flight: to everyone else the account is still there.
        let mut deleting = database.pool.begin().await.unwrap();
        sqlx::query("DELETE FROM service_accounts WHERE namespace = 'team' AND name = 'robot'")
            .execute(&mut *deleting)
            .await
            .unwrap();
        let binding = BindingRecord {
            name: "robot".into(),
            namespace: Some("other".into()),
            stream: None,
            role: "editor".into(),
            subject_kind: "ServiceAccount".into(),
            subject_name: "robot".into(),
            subject_namespace: Some("team".into()),
            created_at: Utc::now(),
        };
        let creating = tokio::spawn({
            let database = database.clone();
            async move { database.create_binding(&binding).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !creating.is_finished(),
            "the binding waits for the deletion"
        );
        deleting.commit().await.unwrap();
        assert_eq!(creating.await.unwrap().unwrap(), None);
        assert!(database.list_all_bindings().await.unwrap().is_empty());
    }
}
