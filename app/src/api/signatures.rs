//! Signatures, SBOMs and attestations of an image (cosign and notation signatures with their
//! verification against the namespace's trusted keys, SPDX and CycloneDX package lists, in-toto
//! attestations), and the trusted public keys a namespace's admins manage.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ConsoleResult;
#[cfg(feature = "ssr")]
use super::{changing, console_data};

/// What the check of one signature found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verification {
    /// The signature verifies with this trusted key (its name).
    Verified { key: String },
    /// It does not verify, for this reason (no trusted key matches, signature invalid, the
    /// payload names another image, malformed, certificate not checked against a trust root).
    NotVerified { reason: String },
}

/// One signature of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRow {
    /// `cosign` or `notation`.
    pub scheme: String,
    /// Where it was found: the tag (`sha256-….sig`) or `referrer`.
    pub found_as: String,
    /// The artifact manifest that holds it.
    pub artifact: String,
    /// Who the signature's certificate names, when it has one.
    pub signed_by: Option<String>,
    /// When it was signed, when the signature says.
    pub signed_at: Option<String>,
    pub verification: Verification,
}

/// One package of an SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRow {
    pub name: String,
    pub version: String,
    /// The package URL's type (`npm`, `deb`, `cargo`), else the component's type.
    pub kind: String,
    pub licence: String,
}

/// One SBOM of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomView {
    /// `SPDX 2.3`, `CycloneDX 1.5`.
    pub format: String,
    pub found_as: String,
    pub artifact: String,
    /// The document's name, when it has one.
    pub name: Option<String>,
    pub packages: Vec<PackageRow>,
    /// Why the packages could not be read (too large, not JSON of a known format).
    pub problem: Option<String>,
}

/// One in-toto attestation of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRow {
    pub predicate_type: String,
    pub found_as: String,
    pub artifact: String,
    /// The subjects' digests the statement names (`sha256:…`).
    pub subjects: Vec<String>,
    pub problem: Option<String>,
}

/// Everything that signs, describes or attests an image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SupplyChain {
    pub signatures: Vec<SignatureRow>,
    pub sboms: Vec<SbomView>,
    pub attestations: Vec<AttestationRow>,
    /// Said once for the whole image (no trusted keys here, an artifact not read).
    pub notes: Vec<String>,
}

/// A namespace's trusted public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKeyRow {
    pub name: String,
    /// `ECDSA P-256` or `Ed25519`.
    pub algorithm: String,
    /// SHA-256 of the key's DER, hex.
    pub fingerprint: String,
    pub created: String,
}

/// An image's signatures, SBOMs and attestations, and a namespace's trusted keys.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait SignatureData: Send + Sync {
    /// What signs, describes or attests the image (behind the same check as pulling it).
    async fn supply_chain(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<SupplyChain>;
    /// The namespace's trusted keys, for its admins.
    async fn trusted_keys(&self, namespace: &str) -> ConsoleResult<Vec<TrustedKeyRow>>;
    async fn add_trusted_key(
        &self,
        namespace: &str,
        name: &str,
        public_key: &str,
    ) -> ConsoleResult<TrustedKeyRow>;
    async fn delete_trusted_key(&self, namespace: &str, name: &str) -> ConsoleResult<()>;
}

#[server(prefix = "/console/api", endpoint = "supply_chain", input = GetUrl)]
pub async fn get_supply_chain(
    namespace: String,
    stream: String,
    digest: String,
) -> ConsoleResult<SupplyChain> {
    console_data()?
        .supply_chain(&namespace, &stream, &digest)
        .await
}

#[server(prefix = "/console/api", endpoint = "trusted_keys", input = GetUrl)]
pub async fn list_trusted_keys(namespace: String) -> ConsoleResult<Vec<TrustedKeyRow>> {
    console_data()?.trusted_keys(&namespace).await
}

#[server(prefix = "/console/api", endpoint = "add_trusted_key")]
pub async fn add_trusted_key(
    csrf: String,
    namespace: String,
    name: String,
    public_key: String,
) -> ConsoleResult<TrustedKeyRow> {
    changing(&csrf)
        .await?
        .add_trusted_key(&namespace, &name, &public_key)
        .await
}

#[server(prefix = "/console/api", endpoint = "delete_trusted_key")]
pub async fn delete_trusted_key(
    csrf: String,
    namespace: String,
    name: String,
) -> ConsoleResult<()> {
    changing(&csrf)
        .await?
        .delete_trusted_key(&namespace, &name)
        .await
}
