//! The access store's rules and rows, written once for every SQL backend (SQLite, PostgreSQL):
//! how signing in with an external identity finds or makes its user ([`map_identity`]) and how
//! an identity is linked by hand ([`link_identity`]), over [`IdentityTx`], the statements they
//! need, which a backend implements on a connection inside a transaction it began and commits;
//! a namespace made with its admin's binding ([`create_namespace_with_admin`], over the image
//! stream rules' [`StreamTx`] and [`BindingTx`]) and what making a binding comes to
//! ([`binding_made`]); and the rows of the access tables, generic over the database, whose
//! `into_record` makes the record and holds the checks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::auth::{
    BindingRecord, ExternalIdentity, GroupRecord, IdentityMapping, LinkOutcome, TokenKind,
    TokenOwner, TokenRecord, UserRecord,
};
use super::rows::json_array;
use super::stream_rules::{StreamTx, add_namespace};
use super::{Labels, StorageError, StorageResult};
use crate::config::auth::MappingMethod;

/// A user as `users` keeps it: the local groups are in `group_members`, the provider's claim
/// (a JSON array) in `external_groups`.
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub id: i64,
    name: String,
    uid: String,
    password_hash: Option<String>,
    identity_provider: String,
    full_name: Option<String>,
    external_groups: Option<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
}

pub(super) const USER_COLUMNS: &str = "id, name, uid, password_hash, identity_provider, full_name, external_groups, disabled, created_at";

impl UserRow {
    /// The user with its groups: `local` (from `group_members`) and the claimed ones, sorted
    /// and once each.
    pub fn into_record(self, mut local: Vec<String>) -> StorageResult<UserRecord> {
        if let Some(external) = self.external_groups {
            let claimed: Vec<String> = serde_json::from_str(&external)
                .map_err(|err| StorageError::Corrupt(format!("external groups: {err}")))?;
            local.extend(claimed);
        }
        local.sort();
        local.dedup();
        Ok(UserRecord {
            id: self.id,
            name: self.name,
            uid: self.uid,
            password_hash: self.password_hash,
            identity_provider: self.identity_provider,
            full_name: self.full_name,
            groups: local,
            disabled: self.disabled,
            created_at: self.created_at,
        })
    }
}

/// A group with one of its members (none when it has none): one row a member, by group name
/// and member name.
#[derive(sqlx::FromRow)]
pub(super) struct GroupMemberRow {
    name: String,
    created_at: DateTime<Utc>,
    member: Option<String>,
}

/// The groups of [`GroupMemberRow`]s read in order.
pub(super) fn groups_from_rows(rows: Vec<GroupMemberRow>) -> Vec<GroupRecord> {
    let mut groups: Vec<GroupRecord> = Vec::new();
    for row in rows {
        if groups.last().is_none_or(|g| g.name != row.name) {
            groups.push(GroupRecord {
                name: row.name,
                members: Vec::new(),
                created_at: row.created_at,
            });
        }
        if let (Some(member), Some(group)) = (row.member, groups.last_mut()) {
            group.members.push(member);
        }
    }
    groups
}

pub(super) const SERVICE_ACCOUNT_COLUMNS: &str = "id, namespace, name, uid, created_at";

/// A token: its owner is a user or a service account, one of the two columns.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: i64,
    uid: String,
    name: String,
    kind: String,
    user_id: Option<i64>,
    service_account_id: Option<i64>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

pub(super) const TOKEN_COLUMNS: &str = "id, uid, name, kind, user_id, service_account_id, created_at, expires_at, last_used_at, revoked_at";

impl TokenRow {
    pub fn into_record(self) -> StorageResult<TokenRecord> {
        let owner = match (self.user_id, self.service_account_id) {
            (Some(user), None) => TokenOwner::User(user),
            (None, Some(account)) => TokenOwner::ServiceAccount(account),
            _ => {
                return Err(StorageError::Corrupt(format!(
                    "token {} has no single owner",
                    self.uid
                )));
            }
        };
        Ok(TokenRecord {
            id: self.id,
            kind: TokenKind::parse(&self.kind)
                .ok_or_else(|| StorageError::Corrupt(format!("token kind {}", self.kind)))?,
            uid: self.uid,
            name: self.name,
            owner,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A token owner as the columns `user_id` and `service_account_id`.
pub(super) fn owner_columns(owner: &TokenOwner) -> (Option<i64>, Option<i64>) {
    match owner {
        TokenOwner::User(id) => (Some(*id), None),
        TokenOwner::ServiceAccount(id) => (None, Some(*id)),
    }
}

pub(super) const BINDING_COLUMNS: &str =
    "name, namespace, stream, role, subject_kind, subject_name, subject_namespace, created_at";

/// The statement making a binding.
#[async_trait]
pub(super) trait BindingTx: Send {
    /// Inserts a binding; answers the rows written: none when it binds a service account, or
    /// the group of a namespace's service accounts, that does not exist (such bindings go with
    /// their subject). A taken name is a unique violation.
    async fn insert_binding(&mut self, binding: &BindingRecord) -> Result<u64, sqlx::Error>;
}

/// Makes a namespace that does not exist, with `admin` (its creator's binding); false, and
/// nothing written, when it exists already.
pub(super) async fn create_namespace_with_admin(
    tx: &mut (impl StreamTx + BindingTx + ?Sized),
    namespace: &str,
    admin: Option<&BindingRecord>,
) -> StorageResult<bool> {
    if add_namespace(tx, namespace, &Labels::new(), &Labels::new())
        .await?
        .is_none()
    {
        return Ok(false);
    }
    if let Some(binding) = admin {
        tx.insert_binding(binding).await?;
    }
    Ok(true)
}

/// What inserting `binding` (answering the rows written) comes to: `None` when nothing was
/// written (its service account, or the namespace of its service accounts group, does not
/// exist) or its name is taken (a unique violation).
pub(super) fn binding_made(
    inserted: Result<u64, sqlx::Error>,
    binding: &BindingRecord,
) -> StorageResult<Option<BindingRecord>> {
    match inserted {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(binding.clone())),
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The user of a preferred name, as far as claiming it goes.
#[derive(sqlx::FromRow)]
pub(super) struct NamedUser {
    pub id: i64,
    pub has_password: bool,
    pub identity_provider: String,
    pub has_identity: bool,
}

/// The statements signing in with an external identity needs, inside one transaction.
#[async_trait]
pub(super) trait IdentityTx: Send {
    /// The user an identity belongs to.
    async fn identity_owner(&mut self, provider: &str, subject: &str)
    -> StorageResult<Option<i64>>;
    async fn named_user(&mut self, name: &str) -> StorageResult<Option<NamedUser>>;
    async fn user_id(&mut self, name: &str) -> StorageResult<Option<i64>>;
    /// Makes a user of an external provider, with no password; answers its id.
    async fn insert_external_user(&mut self, name: &str, provider: &str) -> StorageResult<i64>;
    /// Links an identity to a user; false when the identity belongs to a user already.
    async fn insert_identity(
        &mut self,
        provider: &str,
        subject: &str,
        user_id: i64,
    ) -> StorageResult<bool>;
    /// Records the groups claim (a JSON array) and, when given, the full name.
    async fn record_claims(
        &mut self,
        user_id: i64,
        groups: &str,
        full_name: Option<&str>,
    ) -> StorageResult<()>;
    async fn user_by_id(&mut self, id: i64) -> StorageResult<Option<UserRecord>>;
}

/// The user of an external identity, found or made by `method`, with its groups claim and full
/// name recorded. Nothing is written unless it answers [`IdentityMapping::Mapped`].
pub(super) async fn map_identity(
    tx: &mut (impl IdentityTx + ?Sized),
    identity: &ExternalIdentity<'_>,
    method: MappingMethod,
) -> StorageResult<IdentityMapping> {
    let linked = tx
        .identity_owner(identity.provider, identity.subject)
        .await?;
    let user_id = match (linked, method) {
        (Some(id), _) => id,
        (None, MappingMethod::Lookup) => return Ok(IdentityMapping::NotMapped),
        (None, MappingMethod::Claim | MappingMethod::Add) => {
            let id = match tx.named_user(identity.preferred_name).await? {
                None => {
                    tx.insert_external_user(identity.preferred_name, identity.provider)
                        .await?
                }
                // A user of this provider from before identities were kept, with no password
                // and no identity: the same person, by the only key there was.
                Some(user)
                    if method == MappingMethod::Claim
                        && !user.has_password
                        && !user.has_identity
                        && user.identity_provider == identity.provider =>
                {
                    user.id
                }
                Some(_) if method == MappingMethod::Claim => {
                    return Ok(IdentityMapping::NameTaken);
                }
                Some(user) => user.id,
            };
            if !tx
                .insert_identity(identity.provider, identity.subject, id)
                .await?
            {
                // Checked absent above, in the same transaction.
                return Err(StorageError::Corrupt(format!(
                    "identity {} of {} appeared while it was mapped",
                    identity.subject, identity.provider
                )));
            }
            id
        }
    };
    tx.record_claims(user_id, &json_array(identity.groups)?, identity.full_name)
        .await?;
    let user = tx
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("user {user_id} vanished")))?;
    Ok(IdentityMapping::Mapped(user))
}

/// Links an identity to the user named `user`.
pub(super) async fn link_identity(
    tx: &mut (impl IdentityTx + ?Sized),
    provider: &str,
    subject: &str,
    user: &str,
) -> StorageResult<LinkOutcome> {
    let Some(user_id) = tx.user_id(user).await? else {
        return Ok(LinkOutcome::NoSuchUser);
    };
    Ok(if tx.insert_identity(provider, subject, user_id).await? {
        LinkOutcome::Linked
    } else {
        LinkOutcome::Taken
    })
}
