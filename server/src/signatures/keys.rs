//! Public keys as cosign writes them (`cosign.pub`: a PEM `PUBLIC KEY`, the DER of an X.509
//! SubjectPublicKeyInfo) and certificates' keys: ECDSA P-256 and Ed25519, the two a trusted key
//! may be; and the check of a signature over a payload with one.

use p256::ecdsa::signature::Verifier;
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_ED25519: &str = "1.3.101.112";
/// A PEM key is a few hundred bytes; anything past this is not one.
pub const MAX_PEM_BYTES: usize = 16 * 1024;

/// Why a text is not a key Berth can trust, in words for the person who pasted it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "not a PEM public key: paste the whole \"-----BEGIN PUBLIC KEY-----\" block (cosign.pub)"
    )]
    NotPem,
    #[error("a PEM \"{0}\" block, not a \"PUBLIC KEY\": give the public key, never a private one")]
    WrongLabel(String),
    #[error("the PEM block is not a public key's DER (SubjectPublicKeyInfo)")]
    BadDer,
    #[error("the key is {0}: only ECDSA P-256 and Ed25519 keys are supported")]
    Unsupported(String),
    #[error("the key's bytes are not a valid {0} point")]
    BadPoint(&'static str),
    #[error("the key is longer than {MAX_PEM_BYTES} bytes")]
    TooLong,
}

/// A key a signature can be checked with.
#[derive(Clone, Debug)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// What is known of a key once read: the key, its kind in words and its fingerprint.
#[derive(Clone, Debug)]
pub struct ReadKey {
    pub key: PublicKey,
    /// SHA-256 of the SubjectPublicKeyInfo's DER, lowercase hex.
    pub fingerprint: String,
}

impl PublicKey {
    /// `ECDSA P-256` or `Ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "ECDSA P-256",
            PublicKey::Ed25519(_) => "Ed25519",
        }
    }

    /// Whether `signature` signs `payload` with this key: ECDSA over SHA-256 of the payload
    /// (DER, or the 64-byte fixed form), Ed25519 over the payload itself.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::P256(key) => {
                let parsed = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
                parsed.is_ok_and(|sig| key.verify(payload, &sig).is_ok())
            }
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(payload, &sig).is_ok()),
        }
    }
}

/// Reads a PEM `PUBLIC KEY` block (text around it, as `cosign.pub` may have, is ignored).
pub fn read_pem_public_key(text: &str) -> Result<ReadKey, KeyError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(KeyError::TooLong);
    }
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|_| KeyError::NotPem)?;
    if pem.label != "PUBLIC KEY" {
        return Err(KeyError::WrongLabel(pem.label));
    }
    read_spki(&pem.contents)
}

/// Reads the DER of a SubjectPublicKeyInfo.
pub fn read_spki(der: &[u8]) -> Result<ReadKey, KeyError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| KeyError::BadDer)?;
    if !rest.is_empty() {
        return Err(KeyError::BadDer);
    }
    let key = key_of(&spki)?;
    Ok(ReadKey {
        key,
        fingerprint: hex::encode(Sha256::digest(spki.raw)),
    })
}

/// The key of a parsed SubjectPublicKeyInfo (a certificate's too).
pub fn key_of(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, KeyError> {
    let algorithm = spki.algorithm.algorithm.to_id_string();
    let bytes: &[u8] = &spki.subject_public_key.data;
    match algorithm.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.clone().oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            if curve != OID_P256 {
                return Err(KeyError::Unsupported(format!(
                    "an elliptic-curve key on curve {}",
                    if curve.is_empty() {
                        "(none named)"
                    } else {
                        &curve
                    }
                )));
            }
            p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(PublicKey::P256)
                .map_err(|_| KeyError::BadPoint("P-256"))
        }
        OID_ED25519 => {
            let point: &[u8; 32] = bytes
                .try_into()
                .map_err(|_| KeyError::BadPoint("Ed25519"))?;
            ed25519_dalek::VerifyingKey::from_bytes(point)
                .map(PublicKey::Ed25519)
                .map_err(|_| KeyError::BadPoint("Ed25519"))
        }
        "1.2.840.113549.1.1.1" => Err(KeyError::Unsupported("an RSA key".into())),
        other => Err(KeyError::Unsupported(format!("of algorithm {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SubjectPublicKeyInfo DER prefixes, so tests make keys without an encoder.
    const ED25519_SPKI: &str = "302a300506032b6570032100";
    const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

    fn pem(der: &[u8]) -> String {
        use base64::Engine;
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }

    #[test]
    fn ed25519_and_p256_keys_read_and_verify() {
        use ed25519_dalek::Signer;
        let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let der = [
            hex::decode(ED25519_SPKI).unwrap(),
            ed.verifying_key().to_bytes().to_vec(),
        ]
        .concat();
        let read = read_pem_public_key(&pem(&der)).unwrap();
        assert_eq!(read.key.algorithm(), "Ed25519");
        let sig = ed.sign(b"payload");
        assert!(read.key.verifies(b"payload", &sig.to_bytes()));
        assert!(!read.key.verifies(b"other", &sig.to_bytes()));

        let ec = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let point = ec.verifying_key().to_sec1_point(false);
        let der = [hex::decode(P256_SPKI).unwrap(), point.as_bytes().to_vec()].concat();
        let read = read_pem_public_key(&pem(&der)).unwrap();
        assert_eq!(read.key.algorithm(), "ECDSA P-256");
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&ec, b"payload");
        assert!(read.key.verifies(b"payload", sig.to_der().as_bytes()));
        assert!(!read.key.verifies(b"payload!", sig.to_der().as_bytes()));
        assert!(!read.key.verifies(b"payload", b"not a signature"));
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(read_pem_public_key("hello").unwrap_err(), KeyError::NotPem);
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            read_pem_public_key(private).unwrap_err(),
            KeyError::WrongLabel(_)
        ));
        assert_eq!(
            read_pem_public_key(&pem(b"junk")).unwrap_err(),
            KeyError::BadDer
        );
        // An ed25519 SPKI with 31 bytes of key.
        let short = [
            hex::decode("3029300506032b6570032000").unwrap(),
            vec![1; 31],
        ]
        .concat();
        assert_eq!(
            read_pem_public_key(&pem(&short)).unwrap_err(),
            KeyError::BadPoint("Ed25519")
        );
        // A P-256 SPKI whose point is not on the curve.
        let off = [hex::decode(P256_SPKI).unwrap(), vec![4; 65]].concat();
        assert_eq!(
            read_pem_public_key(&pem(&off)).unwrap_err(),
            KeyError::BadPoint("P-256")
        );
        assert_eq!(
            read_pem_public_key(&"x".repeat(MAX_PEM_BYTES + 1)).unwrap_err(),
            KeyError::TooLong
        );
    }
}
