//! Authentication: turning a password, a token or a registry token into a [`Subject`], with
//! login throttling, a short cache of token lookups, and the audit of what happens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::authorizer::Authorizer;
use super::credentials::{
    RegistryClaims, RegistryTokens, TOKEN_PREFIX, hash_password, needs_rehash, secret_hash,
    verify_password,
};
use super::model::Subject;
use crate::storage::StorageError;
use crate::storage::auth::{AuthStore, BindingRecord, NewAudit, TokenIdentity, UserRecord};

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

/// How long a token lookup is trusted before the store is asked again (a revocation made by
/// another replica takes effect within this).
const TOKEN_CACHE: Duration = Duration::from_secs(10);
/// Entries each credential cache holds at most: when full of fresh entries (a flood of
/// unknown tokens), it starts again empty rather than grow.
const CACHE_ENTRIES: usize = 10_000;
/// A token's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How long a verified user and password pair is remembered for Basic requests, so that a
/// client sending them on every request is neither re-hashed nor throttled each time.
const PASSWORD_CACHE: Duration = Duration::from_secs(60);

struct CachedToken {
    fetched: Instant,
    subject: Option<Subject>,
    /// A token's expiry ends it on time, cached or not.
    expires_at: Option<chrono::DateTime<Utc>>,
    token_id: i64,
    touched: Instant,
}

pub struct Identities {
    pub store: Arc<dyn AuthStore>,
    pub authorizer: Arc<Authorizer>,
    pub registry_tokens: RegistryTokens,
    pub registry_token_ttl: Duration,
    /// Where clients reach the server, when configured (else taken from each request).
    pub public_url: Option<String>,
    /// `https` when Berth serves TLS itself: the scheme of addresses taken from a request.
    pub scheme: &'static str,
    tokens: Mutex<HashMap<String, CachedToken>>,
    passwords: Mutex<HashMap<String, (Instant, Subject)>>,
    /// Registry tokens already verified, so that a client's every request does not re-check
    /// the signature (they expire within minutes; expiry is checked on every use).
    registry_claims: Mutex<HashMap<String, Arc<RegistryClaims>>>,
    per_user: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
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

impl Identities {
    pub fn new(
        store: Arc<dyn AuthStore>,
        authorizer: Arc<Authorizer>,
        registry_tokens: RegistryTokens,
        registry_token_ttl: Duration,
        attempts_per_minute: u32,
        public_url: Option<String>,
        scheme: &'static str,
    ) -> Self {
        let per_minute = NonZeroU32::new(attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute);
        Identities {
            store,
            authorizer,
            registry_tokens,
            registry_token_ttl,
            public_url,
            scheme,
            tokens: Mutex::new(HashMap::new()),
            passwords: Mutex::new(HashMap::new()),
            registry_claims: Mutex::new(HashMap::new()),
            per_user: RateLimiter::keyed(quota),
            // An address may carry several people (a NAT): more room, the same shape.
            per_address: RateLimiter::keyed(Quota::per_minute(
                per_minute.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN)),
            )),
        }
    }

    pub async fn audit(&self, entry: NewAudit) {
        if let Err(err) = self.store.append_audit(&entry).await {
            tracing::error!(%err, action = entry.action, "writing the audit log failed");
        }
    }

    fn throttle(&self, user: &str, address: Option<IpAddr>) -> Result<(), AuthError> {
        let clock = governor::clock::DefaultClock::default();
        let limited = |wait: governor::NotUntil<governor::clock::QuantaInstant>| {
            use governor::clock::Clock;
            AuthError::Throttled {
                retry_after: wait.wait_time_from(clock.now()),
            }
        };
        self.per_user.check_key(&user.to_owned()).map_err(limited)?;
        if let Some(address) = address {
            self.per_address.check_key(&address).map_err(limited)?;
        }
        Ok(())
    }

    /// Checks a user's password (throttled per user and per address; every attempt audited).
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
        how: &'static str,
    ) -> Result<UserRecord, AuthError> {
        let audit = |success: bool, detail: Option<String>| NewAudit {
            actor: name.to_owned(),
            action: how,
            target: "berth".into(),
            success,
            address: address.map(|a| a.to_string()),
            detail,
        };
        if let Err(err) = self.throttle(name, address) {
            self.audit(audit(false, Some(err.to_string()))).await;
            return Err(err);
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
            self.audit(audit(false, None)).await;
            return Err(AuthError::InvalidCredentials);
        };
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
            drop(cache);
            if let Some(id) = touch {
                self.touch(id);
            }
            return subject.ok_or(AuthError::InvalidToken);
        }
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
        if let Ok(mut cache) = self.tokens.lock() {
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
        subject.ok_or(AuthError::InvalidToken)
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

    /// Forgets cached token lookups and verified passwords (after a revocation or a password
    /// change here).
    pub fn forget_credentials(&self) {
        if let Ok(mut cache) = self.tokens.lock() {
            cache.clear();
        }
        if let Ok(mut cache) = self.passwords.lock() {
            cache.clear();
        }
    }

    /// Makes the user who created a namespace (by pushing to it) its admin, as OpenShift makes a
    /// project's requester its admin.
    pub async fn namespace_created(
        &self,
        namespace: &str,
        creator: &Subject,
    ) -> Result<(), StorageError> {
        let Subject::User { name, .. } = creator else {
            return Ok(());
        };
        self.store
            .create_binding(&BindingRecord {
                name: format!("admin-{}", binding_name_part(name)),
                namespace: Some(namespace.to_owned()),
                stream: None,
                role: "admin".into(),
                subject_kind: "User".into(),
                subject_name: name.clone(),
                subject_namespace: None,
                created_at: Utc::now(),
            })
            .await?;
        self.authorizer.reload().await?;
        self.audit(NewAudit {
            actor: name.clone(),
            action: "namespace-create",
            target: namespace.to_owned(),
            success: true,
            address: None,
            detail: Some("created by a push; the creator is its admin".into()),
        })
        .await;
        Ok(())
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
        let now = Instant::now();
        if let Ok(cache) = self.passwords.lock()
            && let Some((at, subject)) = cache.get(&key)
            && now.duration_since(*at) < PASSWORD_CACHE
        {
            return Ok(subject.clone());
        }
        let user = self
            .login(user, password, address, "login-password")
            .await?;
        let subject = user_subject(&user);
        if let Ok(mut cache) = self.passwords.lock() {
            cache.retain(|_, (at, _)| now.duration_since(*at) < PASSWORD_CACHE);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (now, subject.clone()));
        }
        Ok(subject)
    }
}
