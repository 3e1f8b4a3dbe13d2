//! The console's data source inside Berth: the console's data interface
//! ([`app::api::ConsoleData`]) answered by the services behind the HTTP APIs
//! ([`ImageStreamApi`], [`AccessApi`], personal tokens, webhooks, pull secrets, quotas,
//! retention and pruning, tag immutability rules, layers' files), so that every
//! decision is the one the APIs make for the same caller. One file per resource implements its
//! part; their answers become views in `crate::console::views`, their errors the console's in
//! `crate::console::errors`. Here the services, and what several resources read alike.

mod access;
mod audit;
pub(crate) mod diff;
mod images;
mod immutability;
mod imports;
pub mod layers;
mod namespaces;
mod prune;
mod pull_secrets;
mod quotas;
mod retention;
mod session;
mod signatures;
mod streams;
mod tokens;
mod users;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;

use app::api::ConsoleResult;

use super::views::Images;
use crate::auth::AuthContext;
use crate::auth::api::AccessApi;
use crate::imagestream::ImageStreamApi;
use crate::oci::Digest;
use crate::registry::image_metadata::ImageMetadata;
use crate::storage::{BlobStore, MetadataStore};

/// The services the console is answered from: the ones behind the APIs.
pub struct LocalConsoleData {
    pub image_streams: Arc<ImageStreamApi>,
    pub access: Arc<AccessApi>,
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<AuthContext>,
    pub importer: Arc<crate::import::importer::Importer>,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub secrets: Arc<crate::secrets::api::RegistrySecrets>,
    /// Tag immutability rules, and which tags are immutable for a stream's page.
    pub tag_rules: Arc<crate::immutability::ImmutableTagRules>,
    /// The public keys each namespace trusts for its images' signatures.
    pub trusted_keys: Arc<crate::signatures::trusted_keys::TrustedKeys>,
    /// Quotas and limit ranges, and what a namespace uses.
    pub quotas: Arc<crate::quota::Quotas>,
    /// Retention policies, prunes and the scheduled pruner.
    pub pruning: Arc<crate::prune::Pruning>,
    /// Layers' file indexes.
    pub layers: Arc<crate::layers::Layers>,
}

impl LocalConsoleData {
    /// The images `digests` name, and the children of those that are indexes: what a stream's
    /// and an image's pages show of sizes and platforms.
    async fn images(&self, digests: &[Digest]) -> ConsoleResult<Images> {
        let store = &self.image_streams.store;
        let mut images: HashMap<String, ImageMetadata> = store
            .get_images(digests)
            .await?
            .iter()
            .map(|record| (record.digest.to_string(), ImageMetadata::of(record)))
            .collect();
        let children: Vec<Digest> = images
            .values()
            .flat_map(|image| image.manifests.iter())
            .filter(|child| !images.contains_key(&child.digest))
            .filter_map(|child| child.digest.parse().ok())
            .collect();
        if !children.is_empty() {
            for record in store.get_images(&children).await? {
                images.insert(record.digest.to_string(), ImageMetadata::of(&record));
            }
        }
        Ok(Images(images))
    }
}
