//! How a stored stream renders as an `ImageStream`: its spec tags, and its status with each
//! tag's history as pull specs on the registry's (and the public) address.

use super::ImageStreamApi;
use super::model::*;
use crate::kube::ObjectMeta;
use crate::storage::{SpecTagRecord, StatusTagRecord, StreamRecord, TagItem};

impl ImageStreamApi {
    fn repository_host(&self, host: &str, namespace: &str, name: &str) -> String {
        format!("{host}/{namespace}/{name}")
    }

    /// The pull spec of a status item.
    pub(super) fn pull_spec(&self, namespace: &str, stream: &str, item: &TagItem) -> String {
        match (&item.external_reference, &item.digest) {
            (Some(reference), _) => reference.clone(),
            (None, Some(digest)) => format!(
                "{}@{digest}",
                self.repository_host(&self.registry_host, namespace, stream)
            ),
            (None, None) => String::new(),
        }
    }

    fn item_image(item: &TagItem) -> String {
        match (&item.digest, &item.external_reference) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(reference)) => reference
                .rsplit_once('@')
                .map(|(_, digest)| digest.to_owned())
                .unwrap_or_default(),
            (None, None) => String::new(),
        }
    }

    /// A status tag's conditions (stored as JSON).
    pub(super) fn conditions(tag: &StatusTagRecord) -> Vec<TagEventCondition> {
        tag.conditions
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }

    /// A stored spec tag as the `TagReference` it was written as, with its generation.
    pub(super) fn spec_tag(record: &SpecTagRecord) -> TagReference {
        let mut tag: TagReference = serde_json::from_str(&record.reference).unwrap_or_default();
        tag.name = record.name.clone();
        tag.generation = Some(record.generation);
        tag
    }

    /// The `ImageStream` of a stored stream.
    pub fn stream_object(&self, record: &StreamRecord) -> ImageStream {
        ImageStream {
            kind: kinds::image_stream(),
            api_version: kinds::image_api(),
            metadata: ObjectMeta {
                name: record.name.clone(),
                namespace: Some(record.namespace.clone()),
                uid: record.uid.clone(),
                resource_version: record.resource_version.to_string(),
                generation: record.generation,
                creation_timestamp: Some(record.created_at),
                labels: record.labels.clone(),
                annotations: record.annotations.clone(),
            },
            spec: ImageStreamSpec {
                lookup_policy: ImageLookupPolicy {
                    local: record.lookup_local,
                },
                docker_image_repository: String::new(),
                tags: record.spec_tags.iter().map(Self::spec_tag).collect(),
            },
            status: ImageStreamStatus {
                docker_image_repository: self.repository_host(
                    &self.registry_host,
                    &record.namespace,
                    &record.name,
                ),
                public_docker_image_repository: self
                    .public_host
                    .as_deref()
                    .map(|host| self.repository_host(host, &record.namespace, &record.name))
                    .unwrap_or_default(),
                tags: record
                    .status_tags
                    .iter()
                    .map(|tag| NamedTagEventList {
                        tag: tag.name.clone(),
                        items: tag
                            .items
                            .iter()
                            .map(|item| TagEvent {
                                created: item.created,
                                docker_image_reference: self.pull_spec(
                                    &record.namespace,
                                    &record.name,
                                    item,
                                ),
                                image: Self::item_image(item),
                                generation: item.generation,
                                actor: item.actor.clone(),
                            })
                            .collect(),
                        conditions: Self::conditions(tag),
                    })
                    .collect(),
            },
        }
    }
}
