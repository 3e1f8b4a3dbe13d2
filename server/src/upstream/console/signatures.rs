//! Signatures, SBOMs and attestations in front of a cluster: the cluster's API decides that the
//! user may see the image (its `ImageStreamImage`), then its registry is read with the user's
//! token, as the image page reads it. Trusted keys are Berth's own resource, which a cluster
//! does not have: signatures are listed and their payloads checked, never shown as verified.

use app::api::signatures::{SignatureData, SupplyChain, TrustedKeyRow};
use app::api::{ConsoleError, ConsoleResult};
use async_trait::async_trait;
use bytes::Bytes;

use super::{UpstreamConsoleData, image_path};
use crate::import::remote::{RemoteError, RemoteReference, RemoteRegistry};
use crate::oci::Digest;
use crate::signatures::{ArtifactSource, SourceError, supply_chain};

/// Said of trusted keys in this mode.
const NO_TRUSTED_KEYS: &str = "Trusted signing keys are Berth's own: they are not available in front of a cluster, so signatures are listed but not verified here.";

/// One repository of the cluster's registry, read with the user's token.
struct RegistryArtifacts {
    registry: RemoteRegistry,
    host: String,
    repository: String,
}

fn unreadable(err: RemoteError) -> SourceError {
    SourceError::Unreadable(err.to_string())
}

impl RegistryArtifacts {
    async fn manifest_at(&self, reference: &str) -> Result<Option<(Digest, Bytes)>, SourceError> {
        let reference =
            RemoteReference::parse(&format!("{}/{}{reference}", self.host, self.repository))
                .map_err(unreadable)?;
        match self.registry.manifest(&reference).await {
            Ok(found) => Ok(Some((found.digest, found.content))),
            Err(RemoteError::NotFound(_)) => Ok(None),
            Err(err) => Err(unreadable(err)),
        }
    }
}

#[async_trait]
impl ArtifactSource for RegistryArtifacts {
    async fn tagged(&self, tag: &str) -> Result<Option<(Digest, Bytes)>, SourceError> {
        self.manifest_at(&format!(":{tag}")).await
    }

    async fn manifest(&self, digest: &Digest) -> Result<Option<Bytes>, SourceError> {
        Ok(self
            .manifest_at(&format!("@{digest}"))
            .await?
            .map(|(_, content)| content))
    }

    async fn blob(&self, digest: &Digest, limit: u64) -> Result<Bytes, SourceError> {
        self.registry
            .blob_bytes(
                &self.repository,
                digest,
                usize::try_from(limit).unwrap_or(usize::MAX),
            )
            .await
            .map_err(unreadable)
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<Digest>, SourceError> {
        let found = match self.registry.referrers(&self.repository, subject).await {
            Ok(found) => found,
            // A registry without the referrers API has none to list.
            Err(RemoteError::NotFound(_)) => Vec::new(),
            Err(err) => return Err(unreadable(err)),
        };
        Ok(found
            .into_iter()
            .filter_map(|r| r.digest.parse().ok())
            .collect())
    }
}

fn not_here<T>() -> ConsoleResult<T> {
    Err(ConsoleError::NotHere(NO_TRUSTED_KEYS.into()))
}

#[async_trait]
impl SignatureData for UpstreamConsoleData {
    async fn supply_chain(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<SupplyChain> {
        let signed = self.signed().await?;
        let parsed: Digest = digest
            .parse()
            .map_err(|_| ConsoleError::NotFound(format!("{digest:?} is not an image digest")))?;
        // The cluster's decision that the user may see the image, as for its page.
        let _: serde_json::Value = self
            .get(
                &signed,
                &image_path(
                    namespace,
                    "imagestreamimages",
                    Some(&format!("{stream}@{digest}")),
                ),
            )
            .await?;
        let source = RegistryArtifacts {
            registry: self.api.registry(&signed.token),
            host: self.api.registry_host.clone(),
            repository: format!("{namespace}/{stream}"),
        };
        let mut chain = supply_chain(&source, &parsed, &[]).await;
        if !chain.signatures.is_empty() {
            chain.notes.push(NO_TRUSTED_KEYS.into());
        }
        Ok(chain)
    }

    async fn trusted_keys(&self, _namespace: &str) -> ConsoleResult<Vec<TrustedKeyRow>> {
        not_here()
    }

    async fn add_trusted_key(
        &self,
        _namespace: &str,
        _name: &str,
        _public_key: &str,
    ) -> ConsoleResult<TrustedKeyRow> {
        not_here()
    }

    async fn delete_trusted_key(&self, _namespace: &str, _name: &str) -> ConsoleResult<()> {
        not_here()
    }
}
