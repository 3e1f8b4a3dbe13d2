//! cosign's signatures: a manifest (tag `sha256-<hex>.sig`, or a referrer of artifact type
//! `application/vnd.dev.cosign.artifact.sig.v1+json`) whose layers are simple-signing payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`), each signed in its annotation
//! `dev.cosignproject.cosign/signature` (base64), with an optional certificate.

use std::collections::BTreeMap;

use app::api::signatures::Verification;
use base64::Engine;
use serde::Deserialize;

use super::certificates::holder_of_pem;
use super::keys::PublicKey;

pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// A simple-signing payload is a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

/// The part of a simple-signing payload that is checked.
#[derive(Debug, Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Debug, Deserialize)]
struct Critical {
    image: SignedImage,
}

#[derive(Debug, Deserialize)]
struct SignedImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// One verification's outcome with who signed, when a certificate says.
pub struct CosignCheck {
    pub signed_by: Option<String>,
    pub verification: Verification,
}

fn not_verified(reason: impl Into<String>) -> Verification {
    Verification::NotVerified {
        reason: reason.into(),
    }
}

/// Checks one simple-signing layer (`payload`, the layer's annotations) as a signature of
/// `image` (`sha256:…`) against `trusted` keys (name, key).
pub fn check(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    image: &str,
    trusted: &[(String, PublicKey)],
) -> CosignCheck {
    let holder = annotations
        .get(CERTIFICATE_ANNOTATION)
        .and_then(|pem| holder_of_pem(pem));
    let signed_by = holder.as_ref().map(|h| h.name.clone());
    let verification = verify(
        payload,
        annotations,
        image,
        trusted,
        holder.and_then(|h| h.key),
    );
    CosignCheck {
        signed_by,
        verification,
    }
}

fn verify(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    image: &str,
    trusted: &[(String, PublicKey)],
    certificate_key: Option<PublicKey>,
) -> Verification {
    let Ok(parsed) = serde_json::from_slice::<Payload>(payload) else {
        return not_verified(
            "malformed: the payload is not a simple-signing document naming an image digest",
        );
    };
    let named = parsed.critical.image.docker_manifest_digest;
    if named != image {
        return not_verified(format!("signs another image: the payload names {named}"));
    }
    let Some(encoded) = annotations.get(SIGNATURE_ANNOTATION) else {
        return not_verified(format!("malformed: no {SIGNATURE_ANNOTATION} annotation"));
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return not_verified("malformed: the signature is not base64");
    };
    if let Some((name, _)) = trusted
        .iter()
        .find(|(_, key)| key.verifies(payload, &signature))
    {
        return Verification::Verified { key: name.clone() };
    }
    match certificate_key {
        Some(key) if key.verifies(payload, &signature) => {
            not_verified("certificate not verified against a trust root (keyless signing)")
        }
        Some(_) => not_verified("signature invalid: it does not verify with its certificate's key"),
        None if trusted.is_empty() => {
            not_verified("no trusted key matches: this namespace has no trusted keys")
        }
        None => not_verified("no trusted key matches (or the signature is invalid)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    fn payload(digest: &str) -> Vec<u8> {
        format!(r#"{{"critical":{{"identity":{{"docker-reference":"r/a"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
    }

    fn signed(payload: &[u8], key: &ed25519_dalek::SigningKey) -> BTreeMap<String, String> {
        let sig = key.sign(payload).to_bytes();
        BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        )])
    }

    #[test]
    fn verified_wrong_key_other_digest_and_malformed() {
        let image = format!("sha256:{}", "a".repeat(64));
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
        let trusted = vec![("ci".to_owned(), PublicKey::Ed25519(key.verifying_key()))];
        let body = payload(&image);
        let reason = |v: Verification| match v {
            Verification::NotVerified { reason } => reason,
            Verification::Verified { key } => format!("verified by {key}"),
        };
        assert_eq!(
            check(&body, &signed(&body, &key), &image, &trusted).verification,
            Verification::Verified { key: "ci".into() }
        );
        assert!(
            reason(check(&body, &signed(&body, &other), &image, &trusted).verification)
                .starts_with("no trusted key matches")
        );
        assert!(
            reason(check(&body, &signed(&body, &key), &image, &[]).verification)
                .contains("has no trusted keys")
        );
        let elsewhere = payload(&format!("sha256:{}", "b".repeat(64)));
        assert!(
            reason(check(&elsewhere, &signed(&elsewhere, &key), &image, &trusted).verification)
                .starts_with("signs another image")
        );
        let bad = BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), "!!!".to_owned())]);
        assert!(reason(check(&body, &bad, &image, &trusted).verification).contains("not base64"));
        assert!(reason(check(b"{}", &bad, &image, &trusted).verification).starts_with("malformed"));
        assert!(
            reason(check(&body, &BTreeMap::new(), &image, &trusted).verification)
                .starts_with("malformed")
        );
    }
}
