//! Signatures, SBOMs and attestations inside Berth: read from the image's repository in the
//! stores once the API has decided the caller may pull the image; cosign signatures checked
//! against the namespace's trusted keys, which its admins manage through `TrustedKeys`.

use app::api::ConsoleResult;
use app::api::signatures::{SignatureData, SupplyChain, TrustedKeyRow};
use async_trait::async_trait;
use bytes::Bytes;

use super::LocalConsoleData;
use crate::console::forms::form_refusal;
use crate::console::session::caller;
use crate::console::views::time;
use crate::imagestream::names::{repository, split_stream_image};
use crate::kube::ObjectMeta;
use crate::oci::{Digest, RepositoryName, Tag};
use crate::signatures::trusted_keys::{TrustedKey, TrustedKeySpec};
use crate::signatures::{ArtifactSource, SourceError, supply_chain};
use crate::storage::{BlobStore, MetadataStore, read_blob};

/// The labels of the trusted key form, by the fields of a `TrustedKey`.
const TRUSTED_KEY_LABELS: &[(&str, &str)] =
    &[("metadata.name", "Name"), ("spec.publicKey", "Public key")];

/// One repository's artifacts in the stores.
struct StoredArtifacts<'a> {
    metadata: &'a dyn MetadataStore,
    blobs: &'a dyn BlobStore,
    repository: RepositoryName,
}

fn unreadable(err: impl std::fmt::Display) -> SourceError {
    SourceError::Unreadable(err.to_string())
}

#[async_trait]
impl ArtifactSource for StoredArtifacts<'_> {
    async fn tagged(&self, tag: &str) -> Result<Option<(Digest, Bytes)>, SourceError> {
        let Ok(tag) = tag.parse::<Tag>() else {
            return Ok(None);
        };
        let found = self
            .metadata
            .manifest_by_tag(&self.repository, &tag)
            .await
            .map_err(unreadable)?;
        Ok(found.map(|m| (m.digest, m.content)))
    }

    async fn manifest(&self, digest: &Digest) -> Result<Option<Bytes>, SourceError> {
        let found = self
            .metadata
            .manifest_by_digest(&self.repository, digest)
            .await
            .map_err(unreadable)?;
        Ok(found.map(|m| m.content))
    }

    async fn blob(&self, digest: &Digest, limit: u64) -> Result<Bytes, SourceError> {
        // Only a blob linked into this repository, at its recorded size.
        let size = self
            .metadata
            .blob_size(&self.repository, digest)
            .await
            .map_err(unreadable)?
            .ok_or_else(|| SourceError::Unreadable(format!("blob {digest} is not stored")))?;
        if size > limit {
            return Err(SourceError::TooLarge(limit));
        }
        read_blob(self.blobs, digest, size)
            .await
            .map(Bytes::from)
            .map_err(unreadable)
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<Digest>, SourceError> {
        let found = self
            .metadata
            .referrers(&self.repository, subject)
            .await
            .map_err(unreadable)?;
        Ok(found.into_iter().map(|r| r.digest).collect())
    }
}

fn key_row(key: TrustedKey) -> TrustedKeyRow {
    let status = key.status.unwrap_or_default();
    TrustedKeyRow {
        name: key.metadata.name,
        algorithm: status.algorithm,
        fingerprint: status.fingerprint,
        created: key
            .metadata
            .creation_timestamp
            .map(time)
            .unwrap_or_default(),
    }
}

#[async_trait]
impl SignatureData for LocalConsoleData {
    async fn supply_chain(
        &self,
        namespace: &str,
        stream: &str,
        digest: &str,
    ) -> ConsoleResult<SupplyChain> {
        let who = caller().await?;
        let name = format!("{stream}@{digest}");
        // The pull check (and not found) is the API's, as for the image's page.
        self.image_streams
            .get_stream_image(&who, namespace, &name)
            .await?;
        let (_, digest) = split_stream_image(&name)?;
        let source = StoredArtifacts {
            metadata: self.metadata.as_ref(),
            blobs: self.blobs.as_ref(),
            repository: repository(namespace, stream)?,
        };
        let trusted = self.trusted_keys.keys_for(namespace).await?;
        let mut chain = supply_chain(&source, &digest, &trusted).await;
        if trusted.is_empty() && !chain.signatures.is_empty() {
            chain.notes.push(format!(
                "Namespace {namespace} has no trusted keys: its admins add them on the namespace's signing keys page."
            ));
        }
        Ok(chain)
    }

    async fn trusted_keys(&self, namespace: &str) -> ConsoleResult<Vec<TrustedKeyRow>> {
        let who = caller().await?;
        let keys = self.trusted_keys.list(&who, namespace).await?;
        Ok(keys.items.into_iter().map(key_row).collect())
    }

    async fn add_trusted_key(
        &self,
        namespace: &str,
        name: &str,
        public_key: &str,
    ) -> ConsoleResult<TrustedKeyRow> {
        let who = caller().await?;
        let body = TrustedKey {
            metadata: ObjectMeta {
                name: name.trim().to_owned(),
                ..ObjectMeta::default()
            },
            spec: TrustedKeySpec {
                public_key: public_key.to_owned(),
            },
            ..TrustedKey::default()
        };
        let made = self
            .trusted_keys
            .create(&who, namespace, body)
            .await
            .map_err(|err| form_refusal(err, TRUSTED_KEY_LABELS))?;
        Ok(key_row(made))
    }

    async fn delete_trusted_key(&self, namespace: &str, name: &str) -> ConsoleResult<()> {
        let who = caller().await?;
        self.trusted_keys.delete(&who, namespace, name).await?;
        Ok(())
    }
}
