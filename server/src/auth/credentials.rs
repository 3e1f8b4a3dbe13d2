//! Secrets and how they are checked: argon2 password hashes (and bcrypt ones from an htpasswd
//! file, rehashed at the first login), token secrets (random, shown once, kept as SHA-256), and
//! the short-lived signed tokens of the Docker registry token flow.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Every token secret starts with this, so that a password and a token are told apart.
pub const TOKEN_PREFIX: &str = "berth_";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("the htpasswd line {0:?} is not `name:bcrypt-hash`")]
    Htpasswd(String),
}

pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|err| CredentialError::Hash(err.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| CredentialError::Hash(err.to_string()))
}

/// Checks a password against an argon2 or bcrypt hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Whether a stored hash should be replaced by an argon2 one after a successful login.
pub fn needs_rehash(hash: &str) -> bool {
    !hash.starts_with("$argon2")
}

/// Parses an htpasswd file of bcrypt entries: (name, hash) pairs.
pub fn parse_htpasswd(text: &str) -> Result<Vec<(String, String)>, CredentialError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| CredentialError::Htpasswd(line.to_owned()))?;
            if name.is_empty() || !hash.starts_with("$2") {
                return Err(CredentialError::Htpasswd(line.to_owned()));
            }
            Ok((name.to_owned(), hash.to_owned()))
        })
        .collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new token secret: the prefix and 256 random bits.
pub fn new_token_secret() -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// A random password for the bootstrap administrator.
pub fn new_password() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<18>())
}

/// A random value for OAuth codes, CSRF tokens and the like.
pub fn new_nonce() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<24>())
}

pub fn new_key() -> Vec<u8> {
    random_bytes::<32>().to_vec()
}

/// How a token secret is kept: its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One grant of a registry token: the Docker token spec's `access` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Who a registry token was issued to, so that it can be decided on without the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TokenSubject {
    Anonymous,
    User { name: String, groups: Vec<String> },
    ServiceAccount { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
    pub berth: TokenSubject,
}

/// Signs and checks registry tokens (HS256 with a key the server keeps in its store).
pub struct RegistryTokens {
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    pub issuer: String,
    pub service: String,
}

impl RegistryTokens {
    pub fn new(key: &[u8], service: &str) -> Self {
        RegistryTokens {
            encoding: jsonwebtoken::EncodingKey::from_secret(key),
            decoding: jsonwebtoken::DecodingKey::from_secret(key),
            issuer: "berth".into(),
            service: service.into(),
        }
    }

    pub fn sign(&self, claims: &RegistryClaims) -> Option<String> {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &self.encoding,
        )
        .ok()
    }

    /// The claims of a token this server signed, for this service, not expired.
    pub fn verify(&self, token: &str) -> Option<RegistryClaims> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[&self.service]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 5;
        jsonwebtoken::decode::<RegistryClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
        let bcrypt_hash = bcrypt::hash("pw", 4).unwrap();
        assert!(verify_password("pw", &bcrypt_hash));
        assert!(needs_rehash(&bcrypt_hash));
        assert!(!needs_rehash(&hash));
    }

    #[test]
    fn htpasswd_lines() {
        let parsed = parse_htpasswd("# users\nalice:$2y$05$abcdefghijklmnopqrstuv\n\n").unwrap();
        assert_eq!(parsed[0].0, "alice");
        assert!(parse_htpasswd("bob:{SHA}xyz").is_err());
        assert!(parse_htpasswd("nocolon").is_err());
    }

    #[test]
    fn token_secrets_and_pkce() {
        let secret = new_token_secret();
        assert!(secret.starts_with(TOKEN_PREFIX));
        assert_ne!(secret, new_token_secret());
        assert_eq!(secret_hash(&secret).len(), 64);
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
    }

    #[test]
    fn registry_tokens_round_trip_and_refuse_tampering() {
        let tokens = RegistryTokens::new(b"0123456789abcdef0123456789abcdef", "berth");
        let now = chrono::Utc::now().timestamp();
        let claims = RegistryClaims {
            iss: "berth".into(),
            sub: "alice".into(),
            aud: "berth".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: "1".into(),
            access: vec![Access {
                resource_type: "repository".into(),
                name: "team/app".into(),
                actions: vec!["pull".into()],
            }],
            berth: TokenSubject::User {
                name: "alice".into(),
                groups: vec![],
            },
        };
        let token = tokens.sign(&claims).unwrap();
        assert_eq!(tokens.verify(&token), Some(claims.clone()));
        let other = RegistryTokens::new(b"another key, another server....!", "berth");
        assert_eq!(other.verify(&token), None);
        let expired = RegistryClaims {
            exp: now - 60,
            ..claims
        };
        assert_eq!(tokens.verify(&tokens.sign(&expired).unwrap()), None);
    }
}
