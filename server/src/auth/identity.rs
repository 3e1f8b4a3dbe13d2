//! Authentication: turning a password, a token or a registry token into a [`Subject`], with
//! login throttling, a short cache of token lookups, and the audit of what happens. A change
//! of credentials (a token revoked or deleted, a user's groups) clears the caches on every
//! replica through the notifier ([`Topic::Credentials`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::authorizer::Authorizer;
use super::credentials::{
    RegistryClaims, RegistryTokens, TOKEN_PREFIX, hash_password, needs_rehash, secret_hash,
    verify_password,
};
use super::model::Subject;
use super::names::MAX_USER_NAME;
use super::throttle::LoginThrottle;
use crate::storage::StorageError;
use crate::storage::auth::{AuthStore, BindingRecord, NewAudit, TokenIdentity, UserRecord};
use crate::storage::coordination::{Coordination, LeaseTiming, Notifier, ThrottleStore, Topic};

/// A user name as part of a binding name: lowercase letters, digits and `-`.
pub fn binding_name_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The admin binding of a namespace's creator (a user; a service account creates none).
fn creator_binding(namespace: &str, creator: &Subject) -> Option<BindingRecord> {
    let Subject::User { name, .. } = creator else {
        return None;
    };
    Some(BindingRecord {
        name: format!("admin-{}", binding_name_part(name)),
        namespace: Some(namespace.to_owned()),
        stream: None,
        role: "admin".into(),
        subject_kind: "User".into(),
        subject_name: name.clone(),
        subject_namespace: None,
        created_at: Utc::now(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("the token is not valid: unknown, expired or revoked")]
    InvalidToken,
    #[error("too many login attempts; try again in {} seconds", .retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How long a token lookup is trusted before the store is asked again. A revocation through
/// any replica clears every replica's cache at once (by notification); this bounds what a
/// writer that notifies no one (another process on SQLite) leaves cached.
const TOKEN_CACHE: Duration = Duration::from_secs(10);
/// Entries each credential cache holds at most: when full of fresh entries (a flood of
/// unknown tokens), it starts again empty rather than grow.
const CACHE_ENTRIES: usize = 10_000;
/// A token's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How long a verified user and password pair is remembered for Basic requests, so that a
/// client sending them on every request is neither re-hashed nor throttled each time.
const PASSWORD_CACHE: Duration = Duration::from_secs(60);

/// Stripes of [`AuthContext::basic`]'s checks: this many different pairs are checked at once.
const PASSWORD_CHECK_STRIPES: usize = 64;

struct CachedToken {
    fetched: Instant,
    subject: Option<Subject>,
    /// A token's expiry ends it on time, cached or not.
    expires_at: Option<chrono::DateTime<Utc>>,
    token_id: i64,
    touched: Instant,
}

/// An access change as the console's feed tells it: a binding, service account or token of a
/// namespace (`namespace`), or a user's own personal token (`user`), made or removed. Only
/// what it is about, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessChange {
    /// The namespace whose access changed; `None` for the whole registry or a user's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The user whose personal tokens changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `binding`, `serviceaccount` or `token`.
    pub what: String,
    /// The changed object's name.
    pub name: String,
}

/// The authentication context every surface shares: the store of users, tokens and bindings, the
/// authorizer, the registry token keys, and the caches and throttle of credential checks. The
/// API, the registry, the console and the sign-in flows hold one `Arc` of it.
pub struct AuthContext {
    pub store: Arc<dyn AuthStore>,
    pub authorizer: Arc<Authorizer>,
    pub registry_tokens: RegistryTokens,
    pub registry_token_ttl: Duration,
    tokens: Mutex<HashMap<String, CachedToken>>,
    passwords: Mutex<HashMap<String, (Instant, Subject)>>,
    /// One check at a time per stripe of user and password pairs: requests sent at once with
    /// the same credentials (a client pushing many layers in parallel, when the cache entry has
    /// just expired) wait for the first check's answer instead of each being hashed and
    /// charged against the throttle's budget, which a burst of them would overrun (429).
    password_checks: Vec<tokio::sync::Mutex<()>>,
    /// Registry tokens already verified, so that a client's every request does not re-check
    /// the signature (they expire within minutes; expiry is checked on every use).
    registry_claims: Mutex<HashMap<String, Arc<RegistryClaims>>>,
    /// Bumped whenever the credential caches are cleared: a lookup that started before may
    /// have read what was just revoked, and is not cached.
    credentials_generation: AtomicU64,
    throttle: LoginThrottle,
    notifier: Arc<dyn Notifier>,
}

fn subject_of(identity: TokenIdentity) -> Subject {
    match identity {
        TokenIdentity::User(user) => Subject::User {
            name: user.name,
            groups: user.groups,
        },
        TokenIdentity::ServiceAccount(account) => Subject::ServiceAccount {
            namespace: account.namespace,
            name: account.name,
        },
    }
}

pub fn user_subject(user: &UserRecord) -> Subject {
    Subject::User {
        name: user.name.clone(),
        groups: user.groups.clone(),
    }
}

impl AuthContext {
    pub fn new(
        store: Arc<dyn AuthStore>,
        authorizer: Arc<Authorizer>,
        registry_tokens: RegistryTokens,
        registry_token_ttl: Duration,
        throttle: Arc<dyn ThrottleStore>,
        attempts_per_minute: u32,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        AuthContext {
            store,
            authorizer,
            registry_tokens,
            registry_token_ttl,
            tokens: Mutex::new(HashMap::new()),
            passwords: Mutex::new(HashMap::new()),
            password_checks: (0..PASSWORD_CHECK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            registry_claims: Mutex::new(HashMap::new()),
            credentials_generation: AtomicU64::new(0),
            throttle: LoginThrottle::new(throttle, attempts_per_minute),
            notifier,
        }
    }

    /// Deletes audit entries older than `audit_retention` every hour, on one replica at a time
    /// (the holder of the `audit-retention` lease).
    pub fn spawn_upkeep(
        self: &Arc<Self>,
        coordination: &Coordination,
        audit_retention: Option<chrono::TimeDelta>,
    ) {
        let Some(retention) = audit_retention else {
            return;
        };
        let auth = Arc::downgrade(self);
        coordination.spawn_leased("audit-retention", LeaseTiming::STANDARD, move || {
            let auth = auth.clone();
            async move {
                loop {
                    let Some(store) = auth.upgrade().map(|auth| auth.store.clone()) else {
                        return;
                    };
                    if let Some(before) = Utc::now().checked_sub_signed(retention) {
                        match store.delete_audit_before(before).await {
                            Ok(0) => {}
                            Ok(deleted) => {
                                tracing::info!(deleted, "deleted audit entries past retention")
                            }
                            Err(err) => {
                                tracing::warn!(%err, "deleting old audit entries failed")
                            }
                        }
                    }
                    drop(store);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            }
        });
    }

    /// Clears the credential caches whenever another replica changed credentials, or
    /// notifications may have been lost.
    pub fn spawn_credential_follower(self: &Arc<Self>) {
        let mut notices = self.notifier.subscribe(Topic::Credentials);
        let auth = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(notice) = notices.next().await {
                if !notice.is_news() {
                    continue;
                }
                let Some(auth) = auth.upgrade() else {
                    return;
                };
                auth.forget_credentials();
            }
        });
    }

    pub async fn audit(&self, entry: NewAudit) {
        if let Err(err) = self.store.append_audit(&entry).await {
            tracing::error!(%err, action = entry.action, "writing the audit log failed");
        }
    }

    /// Records a change `who` made (it succeeded; refusals are not changes).
    pub async fn audit_change(
        &self,
        who: &Subject,
        action: &'static str,
        target: String,
        detail: Option<String>,
    ) {
        self.audit(NewAudit {
            actor: who.display_name(),
            action,
            target,
            success: true,
            address: None,
            detail,
        })
        .await;
    }

    /// Checks a user's password. Throttled by failures per address and per user and address
    /// (refused), and per user (slowed); a name longer than any user's is refused before any
    /// lookup. Failures are audited, with names no longer than a user name can be; throttled
    /// attempts once per key and minute.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
        how: &'static str,
    ) -> Result<UserRecord, AuthError> {
        let possible = !name.is_empty() && name.len() <= MAX_USER_NAME;
        let actor = if possible {
            name.to_owned()
        } else {
            format!(
                "{}… ({} bytes)",
                name.chars().take(32).collect::<String>(),
                name.len()
            )
        };
        let audit = |success: bool, detail: Option<String>| NewAudit {
            actor: actor.clone(),
            action: how,
            target: "berth".into(),
            success,
            address: address.map(|a| a.to_string()),
            detail,
        };
        let wait = match self
            .throttle
            .admit(possible.then_some(name), address)
            .await?
        {
            Ok(wait) => wait,
            Err(refusal) => {
                if refusal.note {
                    let detail = format!(
                        "throttled ({}); further refusals of this key within a minute are not recorded",
                        refusal.scope
                    );
                    self.audit(audit(false, Some(detail))).await;
                }
                return Err(AuthError::Throttled {
                    retry_after: refusal.retry_after,
                });
            }
        };
        if !possible {
            self.audit(audit(false, Some("no user has such a name".into())))
                .await;
            return Err(AuthError::InvalidCredentials);
        }
        if !wait.is_zero() {
            // Over the user's budget from an address it has not signed in from: in turn.
            tokio::time::sleep(wait).await;
        }
        let user = self.store.user(name).await?;
        let verified = match &user {
            Some(user) if !user.disabled => match &user.password_hash {
                Some(hash) => {
                    let (password, hash) = (password.to_owned(), hash.clone());
                    // argon2 is deliberately slow: keep it off the async workers.
                    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                        .await
                        .unwrap_or(false)
                }
                None => false,
            },
            _ => false,
        };
        let Some(user) = user.filter(|_| verified) else {
            self.throttle.failed(name).await?;
            self.audit(audit(false, None)).await;
            return Err(AuthError::InvalidCredentials);
        };
        self.throttle.succeeded(name, address).await?;
        if user.password_hash.as_deref().is_some_and(needs_rehash)
            && let Ok(hash) = hash_password(password)
        {
            self.store.set_password(&user.name, &hash).await?;
        }
        self.audit(audit(true, None)).await;
        Ok(user)
    }

    /// The subject of a token secret (personal, service account or OAuth access token).
    pub async fn token_subject(&self, secret: &str) -> Result<Subject, AuthError> {
        Ok(self.token(secret).await?.0)
    }

    /// The subject of a token secret, and when the token expires.
    pub async fn token(
        &self,
        secret: &str,
    ) -> Result<(Subject, Option<chrono::DateTime<Utc>>), AuthError> {
        let hash = secret_hash(secret);
        let now = Instant::now();
        let mut touch = None;
        if let Ok(mut cache) = self.tokens.lock()
            && let Some(entry) = cache.get_mut(&hash)
            && now.duration_since(entry.fetched) < TOKEN_CACHE
            && entry.expires_at.is_none_or(|expiry| expiry > Utc::now())
        {
            if now.duration_since(entry.touched) >= TOUCH_EVERY {
                entry.touched = now;
                touch = Some(entry.token_id);
            }
            let subject = entry.subject.clone();
            let expires_at = entry.expires_at;
            drop(cache);
            if let Some(id) = touch {
                self.touch(id);
            }
            return subject
                .map(|subject| (subject, expires_at))
                .ok_or(AuthError::InvalidToken);
        }
        let generation = self.credentials_generation.load(Ordering::Acquire);
        let found = self.store.find_token(&hash).await?;
        let (subject, token_id, expires_at) = match found {
            Some((token, identity)) if token.is_valid_at(Utc::now()) => {
                let disabled = matches!(&identity, TokenIdentity::User(user) if user.disabled);
                (
                    (!disabled).then(|| subject_of(identity)),
                    token.id,
                    token.expires_at,
                )
            }
            Some((token, _)) => (None, token.id, None),
            None => (None, 0, None),
        };
        if let Ok(mut cache) = self.tokens.lock()
            && self.credentials_generation.load(Ordering::Acquire) == generation
        {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, e| now.duration_since(e.fetched) < TOKEN_CACHE);
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(
                hash,
                CachedToken {
                    fetched: now,
                    subject: subject.clone(),
                    expires_at,
                    token_id,
                    touched: now,
                },
            );
        }
        if subject.is_some() && token_id != 0 {
            self.touch(token_id);
        }
        subject
            .map(|subject| (subject, expires_at))
            .ok_or(AuthError::InvalidToken)
    }

    fn touch(&self, token_id: i64) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.touch_token(token_id, Utc::now()).await {
                tracing::warn!(%err, "recording a token's last use failed");
            }
        });
    }

    /// The claims of a registry token from the token endpoint, if it is valid now.
    pub fn registry_claims(&self, token: &str) -> Option<Arc<RegistryClaims>> {
        let now = Utc::now().timestamp();
        if let Ok(cache) = self.registry_claims.lock()
            && let Some(claims) = cache.get(token)
        {
            return (claims.exp > now).then(|| claims.clone());
        }
        let claims = Arc::new(self.registry_tokens.verify(token)?);
        if let Ok(mut cache) = self.registry_claims.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, c| c.exp > now);
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), claims.clone());
        }
        Some(claims)
    }

    /// Forgets cached token lookups and verified passwords here.
    fn forget_credentials(&self) {
        // Bumped first: a lookup that read the store before the change must not cache it.
        self.credentials_generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut cache) = self.tokens.lock() {
            cache.clear();
        }
        if let Ok(mut cache) = self.passwords.lock() {
            cache.clear();
        }
    }

    /// After credentials changed (`what`: a token revoked or deleted, a service account
    /// deleted, a user's groups changed; a user disabled or deleted, when there is a way to):
    /// forgets cached checks here and on every replica.
    pub async fn credentials_changed(&self, what: &str) {
        self.forget_credentials();
        if let Err(err) = self.notifier.publish(Topic::Credentials, what).await {
            tracing::error!(%err, what, "telling other replicas of a credential change failed");
        }
    }

    /// After access changed (`change` says where): every replica's console feed tells the
    /// open pages that show it. A lost message costs only a page that refreshes later.
    pub async fn access_changed(&self, change: &AccessChange) {
        let Ok(body) = serde_json::to_string(change) else {
            return;
        };
        if let Err(err) = self.notifier.publish(Topic::Access, &body).await {
            tracing::warn!(%err, "telling the consoles of an access change failed");
        }
    }

    /// Access changes as they are published on any replica ([`AuthContext::access_changed`]).
    pub fn access_changes(&self) -> crate::storage::coordination::Subscription {
        self.notifier.subscribe(Topic::Access)
    }

    /// Whether `who` hears of `change`: a user of their own tokens, those who see a namespace
    /// of its access, those who manage the registry's access of the registry's.
    pub fn hears_of(&self, who: &Subject, change: &AccessChange) -> bool {
        match (&change.user, &change.namespace) {
            (Some(user), _) => matches!(who, Subject::User { name, .. } if name == user),
            (None, Some(namespace)) => self.authorizer.visible_namespaces(who).contains(namespace),
            (None, None) => self.authorizer.allows(
                who,
                super::model::Action::ManageAccess,
                super::model::Target::REGISTRY,
            ),
        }
    }

    /// Makes the user who created a namespace (through the API) its admin, as OpenShift makes a
    /// project's requester its admin.
    pub async fn namespace_created(
        &self,
        namespace: &str,
        creator: &Subject,
    ) -> Result<(), StorageError> {
        let Some(binding) = creator_binding(namespace, creator) else {
            return Ok(());
        };
        self.store.create_binding(&binding).await?;
        self.authorizer.changed().await?;
        self.audit_creation(
            namespace,
            creator,
            "created through the API; the creator is its admin",
        )
        .await;
        Ok(())
    }

    /// Makes a namespace by a first push, with the pusher as its admin, in one transaction:
    /// false when it exists already (someone else's push or request made it first), and then
    /// the push is decided as any push to an existing namespace.
    pub async fn claim_namespace(
        &self,
        namespace: &str,
        creator: &Subject,
    ) -> Result<bool, StorageError> {
        let binding = creator_binding(namespace, creator);
        if !self
            .store
            .create_namespace_with_admin(namespace, binding.as_ref())
            .await?
        {
            return Ok(false);
        }
        self.authorizer.changed().await?;
        self.audit_creation(
            namespace,
            creator,
            "created by a push; the creator is its admin",
        )
        .await;
        Ok(true)
    }

    async fn audit_creation(&self, namespace: &str, creator: &Subject, detail: &str) {
        self.audit_change(
            creator,
            "namespace-create",
            namespace.to_owned(),
            Some(detail.into()),
        )
        .await;
    }

    /// Basic credentials: a token as the password (any user name, as `podman login -u any -p
    /// TOKEN`), or a user's own password.
    pub async fn basic(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Subject, AuthError> {
        if password.starts_with(TOKEN_PREFIX) {
            return self.token_subject(password).await;
        }
        // Keyed by a hash of both, so the cache never holds a password.
        let key = secret_hash(&format!("{user}\u{0}{password}"));
        let cached = |now: Instant| {
            let cache = self.passwords.lock().ok()?;
            let (at, subject) = cache.get(&key)?;
            (now.duration_since(*at) < PASSWORD_CACHE).then(|| subject.clone())
        };
        if let Some(subject) = cached(Instant::now()) {
            return Ok(subject);
        }
        // The key is hex: its first two digits pick the stripe.
        let stripe = key
            .get(..2)
            .and_then(|digits| usize::from_str_radix(digits, 16).ok())
            .unwrap_or_default();
        let _turn = self.password_checks[stripe % PASSWORD_CHECK_STRIPES]
            .lock()
            .await;
        let now = Instant::now();
        if let Some(subject) = cached(now) {
            return Ok(subject);
        }
        let generation = self.credentials_generation.load(Ordering::Acquire);
        let user = self
            .login(user, password, address, "login-password")
            .await?;
        let subject = user_subject(&user);
        if let Ok(mut cache) = self.passwords.lock()
            && self.credentials_generation.load(Ordering::Acquire) == generation
        {
            cache.retain(|_, (at, _)| now.duration_since(*at) < PASSWORD_CACHE);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (now, subject.clone()));
        }
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credentials::new_token_secret;
    use crate::config::auth::NamespaceCreation;
    use crate::storage::auth::{TokenKind, TokenOwner};
    use crate::storage::sqlite::SqliteMetadata;

    /// One replica: its own store on the shared database file, notifying through `notifier`
    /// (its own store when `None`), with its followers running.
    async fn replica_with(
        dir: &tempfile::TempDir,
        notifier: Option<Arc<dyn Notifier>>,
    ) -> (Arc<SqliteMetadata>, Arc<AuthContext>) {
        let store = Arc::new(
            SqliteMetadata::open(&dir.path().join("berth.db"))
                .await
                .unwrap(),
        );
        let notifier = notifier.unwrap_or_else(|| store.clone());
        let authorizer = Authorizer::load(
            store.clone(),
            notifier.clone(),
            NamespaceCreation::Authenticated,
        )
        .await
        .unwrap();
        authorizer.spawn_refresh();
        let auth = Arc::new(AuthContext::new(
            store.clone(),
            authorizer,
            RegistryTokens::new(&[0; 32], "berth"),
            Duration::from_secs(300),
            store.clone(),
            10,
            notifier,
        ));
        auth.spawn_credential_follower();
        (store, auth)
    }

    async fn replica(dir: &tempfile::TempDir) -> (Arc<SqliteMetadata>, Arc<AuthContext>) {
        replica_with(dir, None).await
    }

    /// Two replicas whose notifiers are two pools on one PostgreSQL database (their records
    /// are SQLite's until the access store is on PostgreSQL here too).
    async fn replicas_notifying_through_postgres(
        dir: &tempfile::TempDir,
    ) -> (Arc<SqliteMetadata>, Arc<AuthContext>, Arc<AuthContext>) {
        use crate::storage::postgres::{PostgresDatabase, PostgresSettings};
        let url = crate::storage::test_infra::postgres().database();
        let mut replicas = Vec::new();
        for _ in 0..2 {
            let database = PostgresDatabase::open(&url, &PostgresSettings::default())
                .await
                .unwrap();
            replicas.push(replica_with(dir, Some(Arc::new(database))).await);
        }
        let (_, b) = replicas.pop().unwrap();
        let (store, a) = replicas.pop().unwrap();
        (store, a, b)
    }

    /// Polls `check` every 20 ms for up to a second; how long it took to hold.
    async fn within_a_second(mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            if check().await {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_requests_at_once_with_a_right_password_are_all_let_in() {
        let dir = tempfile::tempdir().unwrap();
        let (store, auth) = replica(&dir).await;
        store
            .create_user(
                "ann",
                Some(&hash_password("ann-password").unwrap()),
                "local",
                None,
            )
            .await
            .unwrap();
        // Twice the throttle's budget per user and address, all before the first answer.
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        let checks = (0..20).map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.basic("ann", "ann-password", address).await })
        });
        for outcome in futures_util::future::join_all(checks).await {
            assert!(matches!(outcome.unwrap(), Ok(Subject::User { .. })));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_token_stops_working_on_every_replica_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let (store, a) = replica(&dir).await;
        let (_, b) = replica(&dir).await;
        a_revoked_token_stops_working_on(&store, &a, &b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_token_stops_working_on_every_replica_within_a_second_through_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let (store, a, b) = replicas_notifying_through_postgres(&dir).await;
        a_revoked_token_stops_working_on(&store, &a, &b).await;
    }

    async fn a_revoked_token_stops_working_on(
        store: &SqliteMetadata,
        a: &AuthContext,
        b: &AuthContext,
    ) {
        let user = store
            .create_user("tom", None, "local", None)
            .await
            .unwrap()
            .unwrap();
        let secret = new_token_secret();
        let token = store
            .create_token(
                TokenKind::Personal,
                &TokenOwner::User(user.id),
                "ci",
                &secret_hash(&secret),
                None,
            )
            .await
            .unwrap();
        // Both replicas have checked it, and cached the answer.
        assert!(a.token_subject(&secret).await.is_ok());
        assert!(b.token_subject(&secret).await.is_ok());
        assert!(
            store
                .revoke_token(&TokenOwner::User(user.id), &token.uid)
                .await
                .unwrap()
        );
        // Without a word, replica b trusts its cache (for up to TOKEN_CACHE).
        assert!(b.token_subject(&secret).await.is_ok());
        a.credentials_changed(&format!("token {}", token.uid)).await;
        assert!(matches!(
            a.token_subject(&secret).await,
            Err(AuthError::InvalidToken)
        ));
        let took = within_a_second(async || b.token_subject(&secret).await.is_err()).await;
        assert!(took.is_some(), "replica b still accepts the revoked token");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_binding_made_on_one_replica_is_decided_on_another_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let (store, a) = replica(&dir).await;
        let (_, b) = replica(&dir).await;
        a_binding_is_decided_on(&store, &a, &b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_binding_made_on_one_replica_is_decided_on_another_within_a_second_through_postgres()
    {
        let dir = tempfile::tempdir().unwrap();
        let (store, a, b) = replicas_notifying_through_postgres(&dir).await;
        a_binding_is_decided_on(&store, &a, &b).await;
    }

    async fn a_binding_is_decided_on(store: &SqliteMetadata, a: &AuthContext, b: &AuthContext) {
        use crate::auth::model::{Action, Target};
        let tom = Subject::User {
            name: "tom".into(),
            groups: Vec::new(),
        };
        let target = Target::namespace("team");
        assert!(!b.authorizer.allows(&tom, Action::Pull, target));
        store
            .create_binding(&BindingRecord {
                name: "tom-viewer".into(),
                // Registry-wide: a namespace binding needs its namespace made first.
                namespace: None,
                stream: None,
                role: "viewer".into(),
                subject_kind: "User".into(),
                subject_name: "tom".into(),
                subject_namespace: None,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        a.authorizer.changed().await.unwrap();
        assert!(a.authorizer.allows(&tom, Action::Pull, target));
        let took = within_a_second(async || b.authorizer.allows(&tom, Action::Pull, target)).await;
        assert!(took.is_some(), "replica b does not see the binding");
    }
}
