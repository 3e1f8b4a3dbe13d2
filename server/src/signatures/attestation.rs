//! in-toto attestations: DSSE envelopes (`application/vnd.dsse.envelope.v1+json`, cosign's
//! `.att` tags and referrers) whose payload is an in-toto Statement, and bare Statements
//! (`application/vnd.in-toto+json`, the layers of buildx's attestation manifests).

use base64::Engine;
use serde::Deserialize;

pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The layer annotation buildx and cosign write with a statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
pub const MAX_ATTESTATION_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    predicate_type: String,
    #[serde(default)]
    subject: Vec<Subject>,
    #[serde(default)]
    predicate: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// A statement read.
#[derive(Debug, PartialEq)]
pub struct Attestation {
    pub predicate_type: String,
    /// `algorithm:hex` of each subject.
    pub subjects: Vec<String>,
    /// The predicate, when it is an SBOM document (SPDX or CycloneDX predicates).
    pub predicate: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AttestationError {
    #[error("not a DSSE envelope: {0}")]
    NotEnvelope(String),
    #[error("the envelope's payload is not base64")]
    BadPayload,
    #[error("the payload is not an in-toto statement: {0}")]
    NotStatement(String),
}

/// Reads a DSSE envelope carrying an in-toto statement.
pub fn parse_envelope(bytes: &[u8]) -> Result<Attestation, AttestationError> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|err| AttestationError::NotEnvelope(err.to_string()))?;
    if envelope.payload_type != IN_TOTO {
        return Err(AttestationError::NotStatement(format!(
            "payload type {:?}",
            envelope.payload_type
        )));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload.trim())
        .map_err(|_| AttestationError::BadPayload)?;
    parse_statement(&payload)
}

/// Reads a bare in-toto statement.
pub fn parse_statement(bytes: &[u8]) -> Result<Attestation, AttestationError> {
    let statement: Statement = serde_json::from_slice(bytes)
        .map_err(|err| AttestationError::NotStatement(err.to_string()))?;
    let sbom = statement.predicate_type.contains("spdx.dev")
        || statement.predicate_type.contains("cyclonedx.org");
    Ok(Attestation {
        subjects: statement
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}")))
            .collect(),
        predicate_type: statement.predicate_type,
        predicate: statement.predicate.filter(|_| sbom),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_statements() {
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"ab"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
        let envelope = serde_json::json!({
            "payloadType": IN_TOTO,
            "payload": base64::engine::general_purpose::STANDARD.encode(statement),
            "signatures": [{"keyid": "", "sig": "AA=="}]
        });
        let read = parse_envelope(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(read.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(read.subjects, ["sha256:ab"]);
        assert_eq!(read.predicate, None);
        assert_eq!(
            parse_envelope(br#"{"payloadType":"application/vnd.in-toto+json","payload":"%%"}"#),
            Err(AttestationError::BadPayload)
        );
        assert!(matches!(
            parse_envelope(b"[]"),
            Err(AttestationError::NotEnvelope(_))
        ));
        assert!(matches!(
            parse_envelope(br#"{"payloadType":"text/plain","payload":""}"#),
            Err(AttestationError::NotStatement(_))
        ));
        assert!(parse_statement(br#"{"predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3"}}"#).unwrap().predicate.is_some());
    }
}
