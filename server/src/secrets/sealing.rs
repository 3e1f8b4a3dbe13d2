//! Values sealed under the server's key: XChaCha20-Poly1305 with a random 24-byte nonce per
//! value and, as associated data, what the value belongs to ([`SealedFor`]), so a ciphertext
//! copied to another owner (another secret, another namespace, a webhook) does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::key::SecretsKey;
use crate::kube::ApiError;

const NONCE_BYTES: usize = 24;

/// What a sealed value belongs to. Its associated data is fixed by what is stored already:
/// changing it would leave every stored value unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFor<'a> {
    /// A registry secret's Docker config: `namespace/name`.
    RegistrySecret { namespace: &'a str, name: &'a str },
    /// A webhook's signing secret: `namespace/webhook:name`. No registry secret can be called
    /// `webhook:…` (`:` is not allowed in its name), so neither ciphertext opens as the other.
    Webhook { namespace: &'a str, name: &'a str },
}

impl SealedFor<'_> {
    /// The bytes bound to the ciphertext (neither namespaces nor names can contain `/`).
    fn associated_data(&self) -> String {
        match self {
            SealedFor::RegistrySecret { namespace, name } => format!("{namespace}/{name}"),
            SealedFor::Webhook { namespace, name } => format!("{namespace}/webhook:{name}"),
        }
    }
}

/// How errors name the owner: "registry secret team/quay", "the secret of webhook team/ci".
impl std::fmt::Display for SealedFor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealedFor::RegistrySecret { namespace, name } => {
                write!(f, "registry secret {namespace}/{name}")
            }
            SealedFor::Webhook { namespace, name } => {
                write!(f, "the secret of webhook {namespace}/{name}")
            }
        }
    }
}

/// A sealed value, as stored beside its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Why a value cannot be sealed or opened; the message names its owner.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error(
        "{owner} cannot be decrypted: it was stored under another key (secrets.key_file), or altered"
    )]
    Undecryptable { owner: String },
    #[error("{owner} is corrupt: {reason}")]
    Corrupt { owner: String, reason: String },
    #[error("encrypting {owner} failed")]
    Encrypt { owner: String },
}

/// For the APIs: a value that cannot be sealed or opened is the server's fault (a 500, its
/// cause logged).
impl From<SealingError> for ApiError {
    fn from(err: SealingError) -> Self {
        ApiError::internal(err)
    }
}

impl SecretsKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Encrypts `plaintext` for `owner` under a fresh nonce.
    pub fn seal(&self, owner: SealedFor<'_>, plaintext: &[u8]) -> Result<Sealed, SealingError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = owner.associated_data();
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealingError::Encrypt {
                owner: owner.to_string(),
            })?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a stored value; fails unless it was sealed with this key for this owner.
    pub fn open(
        &self,
        owner: SealedFor<'_>,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, SealingError> {
        if nonce.len() != NONCE_BYTES {
            return Err(SealingError::Corrupt {
                owner: owner.to_string(),
                reason: format!("a nonce of {} bytes", nonce.len()),
            });
        }
        let aad = owner.associated_data();
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealingError::Undecryptable {
                owner: owner.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_secret<'a>(namespace: &'a str, name: &'a str) -> SealedFor<'a> {
        SealedFor::RegistrySecret { namespace, name }
    }

    fn webhook<'a>(namespace: &'a str, name: &'a str) -> SealedFor<'a> {
        SealedFor::Webhook { namespace, name }
    }

    fn opens(
        key: &SecretsKey,
        owner: SealedFor<'_>,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, SealingError> {
        key.open(owner, &sealed.nonce, &sealed.ciphertext)
    }

    #[test]
    fn sealed_values_open_only_as_themselves_under_their_key() {
        let key = SecretsKey::generate();
        let plaintext = b"{\"auths\":{}}";
        let owner = registry_secret("team", "quay");
        let sealed = key.seal(owner, plaintext).unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_BYTES);
        assert!(
            !sealed
                .ciphertext
                .windows(plaintext.len())
                .any(|w| w == plaintext.as_slice())
        );
        assert_eq!(opens(&key, owner, &sealed).unwrap(), plaintext);

        // A fresh nonce every time: the same value sealed twice differs.
        let again = key.seal(owner, plaintext).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);

        // The ciphertext copied to another name, another namespace, or a webhook, does not open.
        for other in [
            registry_secret("team", "other"),
            registry_secret("other", "quay"),
            registry_secret("team/quay", ""),
            webhook("team", "quay"),
        ] {
            assert!(
                matches!(
                    opens(&key, other, &sealed),
                    Err(SealingError::Undecryptable { .. })
                ),
                "{other}"
            );
        }
        // Nor under another key, nor altered.
        assert!(matches!(
            opens(&SecretsKey::generate(), owner, &sealed),
            Err(SealingError::Undecryptable { .. })
        ));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(matches!(
            opens(&key, owner, &altered),
            Err(SealingError::Undecryptable { .. })
        ));
        let mut short_nonce = sealed;
        short_nonce.nonce.pop();
        let err = opens(&key, owner, &short_nonce).unwrap_err();
        assert!(matches!(err, SealingError::Corrupt { .. }));
        assert_eq!(
            err.to_string(),
            "registry secret team/quay is corrupt: a nonce of 23 bytes"
        );
    }

    #[test]
    fn webhook_secrets_open_only_as_the_webhook_they_were_sealed_for() {
        let key = SecretsKey::generate();
        let sealed = key.seal(webhook("team", "ci"), b"s3cret").unwrap();
        assert_eq!(
            opens(&key, webhook("team", "ci"), &sealed).unwrap(),
            b"s3cret"
        );
        for other in [
            webhook("team", "cd"),
            webhook("other", "ci"),
            // A registry secret of the same namespace and name does not open it either.
            registry_secret("team", "ci"),
        ] {
            let err = opens(&key, other, &sealed).unwrap_err();
            assert!(matches!(err, SealingError::Undecryptable { .. }), "{other}");
        }
        let err = opens(&SecretsKey::generate(), webhook("team", "ci"), &sealed).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the secret of webhook team/ci cannot be decrypted"),
            "{err}"
        );
    }

    /// Values sealed before the key, sealing and webhooks shared this module (by
    /// `import::secrets`, with the webhook's name sealed as `webhook:NAME`) still open: stored
    /// databases depend on it.
    #[test]
    fn values_sealed_by_earlier_versions_still_open() {
        let key = SecretsKey::from_bytes([7u8; 32]);
        let registry = Sealed {
            nonce: hex::decode("61cbc12f7ff8b8a9108c9c546d80900f35a23758eaed5293").unwrap(),
            ciphertext: hex::decode(
                "fcc54ed07e421d117134f3af2de071e6c89726ab224b5f1d2f9452df23861b504ea69c467c67a02a9c056fbd4c853da929c81a8e9c",
            )
            .unwrap(),
        };
        assert_eq!(
            opens(&key, registry_secret("team", "quay"), &registry).unwrap(),
            br#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#
        );
        let webhook_secret = Sealed {
            nonce: hex::decode("fd79c0900eee62321cb0e9290d6bc1ee3b887ed6b5bec207").unwrap(),
            ciphertext: hex::decode("11ce76ff127b9624c2f6c36bce71481ed52295298012").unwrap(),
        };
        assert_eq!(
            opens(&key, webhook("team", "ci"), &webhook_secret).unwrap(),
            b"s3cret"
        );
    }
}
