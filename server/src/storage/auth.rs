//! What the metadata store keeps for identity and access, and the [`AuthStore`] trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StorageResult;
use crate::config::auth::MappingMethod;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub uid: String,
    pub password_hash: Option<String>,
    pub identity_provider: String,
    pub full_name: Option<String>,
    /// Groups from the local group table and the provider's claim, together.
    pub groups: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub members: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ServiceAccountRecord {
    pub id: i64,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Personal,
    ServiceAccount,
    OAuth,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "personal",
            TokenKind::ServiceAccount => "serviceaccount",
            TokenKind::OAuth => "oauth",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "personal" => Some(TokenKind::Personal),
            "serviceaccount" => Some(TokenKind::ServiceAccount),
            "oauth" => Some(TokenKind::OAuth),
            _ => None,
        }
    }
}

/// Whose a token is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenOwner {
    User(i64),
    ServiceAccount(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub kind: TokenKind,
    pub owner: TokenOwner,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| expiry > now)
    }
}

/// A token found by its secret, with the identity it stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenIdentity {
    User(UserRecord),
    ServiceAccount(ServiceAccountRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BindingRecord {
    pub name: String,
    /// `None`: the whole registry.
    pub namespace: Option<String>,
    /// `None`: the whole namespace.
    pub stream: Option<String>,
    pub role: String,
    pub subject_kind: String,
    pub subject_name: String,
    pub subject_namespace: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Who signed in at an external provider.
#[derive(Debug, Clone)]
pub struct ExternalIdentity<'a> {
    /// `oidc:<issuer>`.
    pub provider: &'a str,
    /// The provider's stable id of the person (`sub`).
    pub subject: &'a str,
    /// The user name the provider suggests (its `preferred_username`, say).
    pub preferred_name: &'a str,
    pub full_name: Option<&'a str>,
    pub groups: &'a [String],
}

/// What signing in with an external identity comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityMapping {
    Mapped(UserRecord),
    /// `lookup`: no user has this identity.
    NotMapped,
    /// `claim`: the preferred name is a user that is not this identity's.
    NameTaken,
}

/// An identity and its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
    pub user: String,
    pub created_at: DateTime<Utc>,
}

/// What linking an identity to a user by hand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    NoSuchUser,
    /// The identity belongs to a user already.
    Taken,
}

/// An authorization code of the embedded OAuth server.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: i64,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// An audit entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub success: bool,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// Users, groups, service accounts, tokens, role bindings, OAuth codes, the audit log and the
/// server's secrets.
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    async fn user(&self, name: &str) -> StorageResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: i64) -> StorageResult<Option<UserRecord>>;
    async fn list_users(&self) -> StorageResult<Vec<UserRecord>>;
    /// Creates a user; `None` when the name is taken.
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        identity_provider: &str,
        full_name: Option<&str>,
    ) -> StorageResult<Option<UserRecord>>;
    async fn set_password(&self, name: &str, password_hash: &str) -> StorageResult<bool>;
    /// The user of an external identity, found or made by `method` in one transaction; its
    /// groups claim and full name recorded.
    async fn map_identity(
        &self,
        identity: &ExternalIdentity<'_>,
        method: MappingMethod,
    ) -> StorageResult<IdentityMapping>;
    /// Links an identity to a user (for `lookup`).
    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
    ) -> StorageResult<LinkOutcome>;
    async fn list_identities(&self) -> StorageResult<Vec<IdentityRecord>>;
    async fn count_users(&self) -> StorageResult<u64>;

    async fn list_groups(&self) -> StorageResult<Vec<GroupRecord>>;
    /// Adds a user to a group, creating the group when needed.
    async fn add_group_member(&self, group: &str, user: &str) -> StorageResult<bool>;
    async fn remove_group_member(&self, group: &str, user: &str) -> StorageResult<bool>;

    async fn list_service_accounts(
        &self,
        namespace: &str,
    ) -> StorageResult<Vec<ServiceAccountRecord>>;
    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ServiceAccountRecord>>;
    async fn create_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<ServiceAccountRecord>>;
    /// Deletes a service account with its tokens and every binding to it.
    async fn delete_service_account(&self, namespace: &str, name: &str) -> StorageResult<bool>;

    async fn create_token(
        &self,
        kind: TokenKind,
        owner: &TokenOwner,
        name: &str,
        secret_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> StorageResult<TokenRecord>;
    /// The token with this secret hash and whose it is, valid or not.
    async fn find_token(
        &self,
        secret_hash: &str,
    ) -> StorageResult<Option<(TokenRecord, TokenIdentity)>>;
    async fn list_tokens(&self, owner: &TokenOwner) -> StorageResult<Vec<TokenRecord>>;
    async fn revoke_token(&self, owner: &TokenOwner, uid: &str) -> StorageResult<bool>;
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> StorageResult<()>;

    async fn list_all_bindings(&self) -> StorageResult<Vec<BindingRecord>>;
    async fn list_bindings(&self, namespace: Option<&str>) -> StorageResult<Vec<BindingRecord>>;
    /// Creates a binding; `None` when the name is taken in its namespace, or the service
    /// account it binds does not exist.
    async fn create_binding(&self, binding: &BindingRecord)
    -> StorageResult<Option<BindingRecord>>;
    async fn delete_binding(&self, namespace: Option<&str>, name: &str) -> StorageResult<bool>;
    /// Makes a namespace that does not exist, with `admin` (its creator's binding) in the same
    /// transaction; false, and nothing written, when it exists already: of two first pushes,
    /// exactly one makes it.
    async fn create_namespace_with_admin(
        &self,
        namespace: &str,
        admin: Option<&BindingRecord>,
    ) -> StorageResult<bool>;

    async fn put_oauth_code(&self, code_hash: &str, code: &OAuthCode) -> StorageResult<()>;
    /// Takes a code once: it is marked used, and a second take finds nothing.
    async fn take_oauth_code(&self, code_hash: &str) -> StorageResult<Option<OAuthCode>>;

    async fn append_audit(&self, entry: &NewAudit) -> StorageResult<()>;
    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StorageResult<Vec<AuditRecord>>;
    /// Deletes audit entries older than `before` (in batches, so that writers are not held up);
    /// answers how many.
    async fn delete_audit_before(&self, before: DateTime<Utc>) -> StorageResult<u64>;

    /// A secret of the server: the stored one, or `candidate`, stored now, the first time.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StorageResult<Vec<u8>>;
}
