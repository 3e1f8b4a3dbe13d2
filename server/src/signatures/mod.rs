//! Signatures, SBOMs and attestations of an image, and the public keys a namespace trusts.
//!
//! - What refers to an image is found three ways, each read through an [`ArtifactSource`]
//!   (Berth's stores inside Berth, the cluster's registry with the user's token in front of
//!   one): cosign's tag scheme (`sha256-<hex>.sig`, `.att`, `.sbom` in the image's
//!   repository), the referrers API (OCI 1.1 artifacts: cosign, notation, SBOMs, attestations),
//!   and, for an index, buildx's attestation manifests among its children.
//! - Each artifact's layers are read by media type: cosign simple-signing payloads checked
//!   against the namespace's trusted keys (`cosign`), notation JWS envelopes (`notation`),
//!   SPDX and CycloneDX JSON (`sbom`), DSSE envelopes and in-toto statements (`attestation`);
//!   every read is bounded and every parse tolerant, so a hostile artifact is a row saying why.
//! - Trusted keys are a per-namespace resource of Berth's API group (`trusted_keys`).

pub mod attestation;
pub mod certificates;
pub mod cosign;
pub mod keys;
pub mod notation;
pub mod sbom;
pub mod trusted_keys;

use std::collections::{BTreeMap, HashSet};

use app::api::signatures::{AttestationRow, SbomView, SignatureRow, SupplyChain, Verification};
use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use crate::oci::Digest;
use keys::PublicKey;

/// Artifacts read for one image at most (tags, referrers and attestation manifests together).
pub const MAX_ARTIFACTS: usize = 32;
/// Layers read of one artifact at most.
const MAX_LAYERS: usize = 16;
/// The annotations buildx writes on an attestation manifest inside an index.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// Why something could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("larger than the {0} bytes read of it")]
    TooLarge(u64),
    #[error("{0}")]
    Unreadable(String),
}

/// Where an image's artifacts are read from: one repository, with the caller's access to it
/// decided before the source is made.
#[async_trait]
pub trait ArtifactSource: Send + Sync {
    /// The manifest a tag of the repository names.
    async fn tagged(&self, tag: &str) -> Result<Option<(Digest, Bytes)>, SourceError>;
    async fn manifest(&self, digest: &Digest) -> Result<Option<Bytes>, SourceError>;
    /// A blob of the repository, refused past `limit` bytes.
    async fn blob(&self, digest: &Digest, limit: u64) -> Result<Bytes, SourceError>;
    /// The digests of the manifests whose subject is `subject`.
    async fn referrers(&self, subject: &Digest) -> Result<Vec<Digest>, SourceError>;
}

/// The tag cosign gives an image's signatures, attestations or SBOMs (`suffix` `sig`, `att`,
/// `sbom`).
pub fn cosign_tag(image: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", image.algorithm().as_str(), image.hex())
}

/// The images (`sha256:…`) that a list of tag names signs by cosign's tag scheme: what a
/// stream's page marks "signed" without reading any artifact.
pub fn signed_by_tags<'a>(tags: impl Iterator<Item = &'a str>) -> HashSet<String> {
    tags.filter_map(|tag| {
        let (algorithm, rest) = tag.split_once('-')?;
        let hex = rest.strip_suffix(".sig")?;
        let digest: Digest = format!("{algorithm}:{hex}").parse().ok()?;
        Some(digest.to_string())
    })
    .collect()
}

/// Whether a referrer's artifact type is a signature's.
pub fn is_signature_type(artifact_type: &str) -> bool {
    artifact_type == cosign::SIGNATURE_ARTIFACT || artifact_type == notation::SIGNATURE_ARTIFACT
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ArtifactManifest {
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
    /// ORAS artifact manifests (notation's first form) name their blobs so.
    blobs: Vec<Descriptor>,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Descriptor {
    media_type: String,
    digest: String,
    annotations: BTreeMap<String, String>,
}

/// One artifact found for the image.
struct Found {
    found_as: String,
    digest: Digest,
    content: Bytes,
}

/// Reads what signs, describes and attests `image` from `source`, checking cosign signatures
/// against `trusted` (name, key).
pub async fn supply_chain(
    source: &dyn ArtifactSource,
    image: &Digest,
    trusted: &[(String, PublicKey)],
) -> SupplyChain {
    let mut chain = SupplyChain::default();
    let found = find_artifacts(source, image, &mut chain.notes).await;
    let image_text = image.to_string();
    for artifact in found {
        read_artifact(source, &artifact, &image_text, trusted, &mut chain).await;
    }
    chain
}

async fn find_artifacts(
    source: &dyn ArtifactSource,
    image: &Digest,
    notes: &mut Vec<String>,
) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for suffix in ["sig", "att", "sbom"] {
        let tag = cosign_tag(image, suffix);
        match source.tagged(&tag).await {
            Ok(Some((digest, content))) => found.push(Found {
                found_as: format!("tag {tag}"),
                digest,
                content,
            }),
            Ok(None) => {}
            Err(err) => notes.push(format!("The tag {tag} could not be read: {err}.")),
        }
    }
    match source.referrers(image).await {
        Ok(referrers) => {
            for digest in referrers {
                if found.len() >= MAX_ARTIFACTS {
                    notes.push(format!(
                        "Only the first {MAX_ARTIFACTS} artifacts referring to this image are read."
                    ));
                    break;
                }
                if found.iter().any(|f| f.digest == digest) {
                    continue;
                }
                if let Ok(Some(content)) = source.manifest(&digest).await {
                    found.push(Found {
                        found_as: "referrer".into(),
                        digest,
                        content,
                    });
                }
            }
        }
        Err(err) => notes.push(format!("The referrers could not be read: {err}.")),
    }
    // buildx's attestations are children of the index, each naming the image it attests.
    if let Ok(Some(own)) = source.manifest(image).await {
        let index: ArtifactManifest = serde_json::from_slice(&own).unwrap_or_default();
        for child in index.manifests.iter().filter(|child| {
            child.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST)
        }) {
            if found.len() >= MAX_ARTIFACTS {
                break;
            }
            let Ok(digest) = child.digest.parse::<Digest>() else {
                continue;
            };
            let attests = child
                .annotations
                .get(REFERENCE_DIGEST)
                .cloned()
                .unwrap_or_default();
            if let Ok(Some(content)) = source.manifest(&digest).await {
                found.push(Found {
                    found_as: format!("attestation manifest for {attests}"),
                    digest,
                    content,
                });
            }
        }
    }
    found
}

fn not_verified(reason: impl Into<String>) -> Verification {
    Verification::NotVerified {
        reason: reason.into(),
    }
}

async fn read_artifact(
    source: &dyn ArtifactSource,
    artifact: &Found,
    image: &str,
    trusted: &[(String, PublicKey)],
    chain: &mut SupplyChain,
) {
    let manifest: ArtifactManifest = match serde_json::from_slice(&artifact.content) {
        Ok(manifest) => manifest,
        Err(_) => {
            chain.notes.push(format!(
                "Artifact {} ({}) is not a JSON manifest.",
                artifact.digest, artifact.found_as
            ));
            return;
        }
    };
    let kind = manifest
        .artifact_type
        .clone()
        .or_else(|| manifest.config.as_ref().map(|c| c.media_type.clone()))
        .unwrap_or_default();
    let layers = manifest.layers.iter().chain(manifest.blobs.iter());
    let artifact_digest = artifact.digest.to_string();
    let signature = |scheme: &str, signed_by, signed_at, verification| SignatureRow {
        scheme: scheme.into(),
        found_as: artifact.found_as.clone(),
        artifact: artifact_digest.clone(),
        signed_by,
        signed_at,
        verification,
    };
    for layer in layers.take(MAX_LAYERS) {
        let media_type = layer.media_type.as_str();
        let Ok(digest) = layer.digest.parse::<Digest>() else {
            continue;
        };
        if media_type == cosign::SIMPLE_SIGNING {
            let row = match source.blob(&digest, cosign::MAX_PAYLOAD_BYTES).await {
                Ok(payload) => {
                    let checked = cosign::check(&payload, &layer.annotations, image, trusted);
                    signature("cosign", checked.signed_by, None, checked.verification)
                }
                Err(err) => signature(
                    "cosign",
                    None,
                    None,
                    not_verified(format!("malformed: the payload is {err}")),
                ),
            };
            chain.signatures.push(row);
        } else if media_type == notation::JWS {
            let row = match source.blob(&digest, notation::MAX_ENVELOPE_BYTES).await {
                Ok(envelope) => {
                    let read = notation::check_jws(&envelope, image);
                    signature(
                        "notation",
                        read.signed_by,
                        read.signed_at,
                        read.verification,
                    )
                }
                Err(err) => signature(
                    "notation",
                    None,
                    None,
                    not_verified(format!("malformed: the envelope is {err}")),
                ),
            };
            chain.signatures.push(row);
        } else if media_type == notation::COSE {
            chain.signatures.push(signature(
                "notation",
                None,
                None,
                not_verified("a COSE envelope: not read by Berth (JWS envelopes are)"),
            ));
        } else if sbom::is_sbom_type(media_type)
            || (sbom::is_sbom_type(&kind) && media_type.contains("json"))
        {
            let view = read_sbom(source, &digest, artifact).await;
            chain.sboms.push(view);
        } else if media_type == attestation::DSSE || media_type == attestation::IN_TOTO {
            read_attestation(source, &digest, layer, artifact, chain).await;
        }
    }
    if kind == notation::SIGNATURE_ARTIFACT
        && !chain
            .signatures
            .iter()
            .any(|s| s.artifact == artifact_digest)
    {
        chain.signatures.push(signature(
            "notation",
            None,
            None,
            not_verified("malformed: the signature manifest has no envelope layer"),
        ));
    }
}

async fn read_sbom(source: &dyn ArtifactSource, digest: &Digest, artifact: &Found) -> SbomView {
    let mut view = SbomView {
        format: "SBOM".into(),
        found_as: artifact.found_as.clone(),
        artifact: artifact.digest.to_string(),
        name: None,
        packages: Vec::new(),
        problem: None,
    };
    match source.blob(digest, sbom::MAX_SBOM_BYTES).await {
        Ok(bytes) => match sbom::parse(&bytes) {
            Ok(read) => {
                view.format = read.format;
                view.name = read.name;
                view.packages = read.packages;
            }
            Err(err) => view.problem = Some(err.to_string()),
        },
        Err(SourceError::TooLarge(limit)) => {
            view.problem = Some(format!(
                "The SBOM is larger than {} MiB, the most Berth reads; its packages are not listed.",
                limit / (1024 * 1024)
            ));
        }
        Err(err) => view.problem = Some(format!("The SBOM could not be read: {err}.")),
    }
    view
}

async fn read_attestation(
    source: &dyn ArtifactSource,
    digest: &Digest,
    layer: &Descriptor,
    artifact: &Found,
    chain: &mut SupplyChain,
) {
    let annotated = layer
        .annotations
        .get(attestation::PREDICATE_TYPE_ANNOTATION)
        .cloned();
    let mut row = AttestationRow {
        predicate_type: annotated.clone().unwrap_or_default(),
        found_as: artifact.found_as.clone(),
        artifact: artifact.digest.to_string(),
        subjects: Vec::new(),
        problem: None,
    };
    let read = match source
        .blob(digest, attestation::MAX_ATTESTATION_BYTES)
        .await
    {
        Ok(bytes) if layer.media_type == attestation::DSSE => {
            attestation::parse_envelope(&bytes).map_err(|err| err.to_string())
        }
        Ok(bytes) => attestation::parse_statement(&bytes).map_err(|err| err.to_string()),
        Err(err) => Err(format!("the attestation is {err}")),
    };
    match read {
        Ok(statement) => {
            row.predicate_type = statement.predicate_type;
            row.subjects = statement.subjects;
            if let Some(predicate) = statement.predicate {
                let bytes = serde_json::to_vec(&predicate).unwrap_or_default();
                if let Ok(read) = sbom::parse(&bytes) {
                    chain.sboms.push(SbomView {
                        format: read.format,
                        found_as: format!("attestation ({})", artifact.found_as),
                        artifact: artifact.digest.to_string(),
                        name: read.name,
                        packages: read.packages,
                        problem: None,
                    });
                }
            }
        }
        Err(problem) => row.problem = Some(problem),
    }
    chain.attestations.push(row);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_tags_name_their_images() {
        let hex = "d".repeat(64);
        let signed = signed_by_tags(
            [
                format!("sha256-{hex}.sig"),
                format!("sha256-{hex}.att"),
                "latest".into(),
                "sha256-zz.sig".into(),
            ]
            .iter()
            .map(String::as_str),
        );
        assert_eq!(signed, HashSet::from([format!("sha256:{hex}")]));
        let digest: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(cosign_tag(&digest, "sbom"), format!("sha256-{hex}.sbom"));
    }
}
