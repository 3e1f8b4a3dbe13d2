//! Notation (Notary Project) signatures: referrers of artifact type
//! `application/vnd.cncf.notary.signature` whose layer is a JWS envelope in JSON serialization
//! (`application/jose+json`) or a COSE_Sign1 (`application/cose`). What the console shows: the
//! leaf certificate's subject (`x5c`, in the unprotected header; a protected one is read too),
//! the signing time, and whether the payload's target digest is the image's. The X.509 chain is
//! not checked against a trust policy, so a notation signature is never shown as verified.

use app::api::signatures::Verification;
use base64::Engine;
use serde::Deserialize;

use super::certificates::holder_of_der;

pub const SIGNATURE_ARTIFACT: &str = "application/vnd.cncf.notary.signature";
pub const JWS: &str = "application/jose+json";
pub const COSE: &str = "application/cose";
pub const MAX_ENVELOPE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
struct Envelope {
    payload: String,
    protected: String,
    #[serde(default)]
    header: Header,
}

#[derive(Debug, Default, Deserialize)]
struct Header {
    #[serde(default)]
    x5c: Vec<String>,
    #[serde(rename = "io.cncf.notary.signingTime", default)]
    signing_time: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target_artifact: Target,
}

#[derive(Debug, Deserialize)]
struct Target {
    digest: String,
}

/// What is read of a notation signature.
pub struct NotationCheck {
    pub signed_by: Option<String>,
    pub signed_at: Option<String>,
    pub verification: Verification,
}

fn not_verified(reason: impl Into<String>) -> Verification {
    Verification::NotVerified {
        reason: reason.into(),
    }
}

fn base64url(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

/// Reads a JWS envelope as a signature of `image` (`sha256:…`).
pub fn check_jws(envelope: &[u8], image: &str) -> NotationCheck {
    let malformed = |why: &str| NotationCheck {
        signed_by: None,
        signed_at: None,
        verification: not_verified(format!("malformed: {why}")),
    };
    let Ok(envelope) = serde_json::from_slice::<Envelope>(envelope) else {
        return malformed("not a JWS envelope in JSON serialization");
    };
    let Some(protected) = base64url(&envelope.protected)
        .and_then(|bytes| serde_json::from_slice::<Header>(&bytes).ok())
    else {
        return malformed("the protected header is not base64url JSON");
    };
    let chain = if envelope.header.x5c.is_empty() {
        &protected.x5c
    } else {
        &envelope.header.x5c
    };
    let signed_by = chain
        .first()
        .and_then(|leaf| base64::engine::general_purpose::STANDARD.decode(leaf).ok())
        .and_then(|der| holder_of_der(&der))
        .map(|holder| holder.name);
    let signed_at = protected.signing_time.or(envelope.header.signing_time);
    let verification = match base64url(&envelope.payload)
        .and_then(|bytes| serde_json::from_slice::<Payload>(&bytes).ok())
    {
        None => not_verified("malformed: the payload names no target artifact"),
        Some(payload) if payload.target_artifact.digest != image => not_verified(format!(
            "signs another image: the payload names {}",
            payload.target_artifact.digest
        )),
        Some(_) if signed_by.is_none() => {
            not_verified("malformed: no readable signing certificate (x5c)")
        }
        Some(_) => not_verified(
            "the payload names this image; the certificate chain is not checked against a trust policy",
        ),
    };
    NotationCheck {
        signed_by,
        signed_at,
        verification,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_jws_names_its_signer_time_and_target() {
        let cert = rcgen::generate_simple_self_signed(vec!["signer.example".into()]).unwrap();
        let image = format!("sha256:{}", "c".repeat(64));
        let envelope = serde_json::json!({
            "payload": b64(format!(r#"{{"targetArtifact":{{"mediaType":"x","digest":"{image}","size":1}}}}"#).as_bytes()),
            "protected": b64(br#"{"alg":"PS256","io.cncf.notary.signingTime":"2026-12-06T10:00:00Z"}"#),
            "header": {"x5c": [base64::engine::general_purpose::STANDARD.encode(cert.cert.der())]},
            "signature": "AAAA"
        });
        let read = check_jws(&serde_json::to_vec(&envelope).unwrap(), &image);
        assert_eq!(read.signed_by.as_deref(), Some("signer.example"));
        assert_eq!(read.signed_at.as_deref(), Some("2026-12-06T10:00:00Z"));
        assert!(
            matches!(read.verification, Verification::NotVerified { reason } if reason.contains("not checked"))
        );
        let other = check_jws(&serde_json::to_vec(&envelope).unwrap(), "sha256:00");
        assert!(
            matches!(other.verification, Verification::NotVerified { reason } if reason.starts_with("signs another image"))
        );
        for hostile in [
            &b"nope"[..],
            br#"{"payload":"!","protected":"!"}"#,
            br#"{"payload":"e30","protected":"e30"}"#,
        ] {
            assert!(
                matches!(check_jws(hostile, &image).verification, Verification::NotVerified { reason } if reason.starts_with("malformed"))
            );
        }
    }
}
