//! The console's views built from the services' answers, by the same functions in both modes
//! (in-process and in front of a cluster): a stream's tags with their history, sizes and
//! platforms, an image's page, the rows of bindings, tokens, pull secrets and deliveries, and a
//! namespace's quota bars and image limits.

use std::collections::{BTreeSet, HashMap};

use app::api::Permissions;
use app::api::access::BindingRow;
use app::api::images::{
    BuildStep, ImageDetail, LayerRow, PlatformRow, PushedBy, ReferrerRow, RunConfigView,
};
use app::api::namespaces::NamespaceContents;
use app::api::pull_secrets::PullSecretRow;
use app::api::quotas::{LimitRow, QuotaBar};
use app::api::streams::{HistoryItem, StreamDetail, TagRow};
use app::api::tokens::TokenRow;
use app::api::webhooks::{AttemptRow, DeliveryRow};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::auth::api::bindings::RoleBinding;
use crate::imagestream::model::{ImageStream, NamedTagEventList, TagEvent, TagReference};
use crate::kube::Quantity;
use crate::oci::Digest;
use crate::quota::LimitRange;
use crate::quota::resource_quotas::ResourceQuotaStatus;
use crate::registry::image_metadata::{ChildManifest, ImageMetadata, RunConfig};
use crate::storage::auth::TokenRecord;
use crate::storage::quotas::{
    IMAGE_LIMIT, IMAGE_SIZE_RESOURCE, IMAGE_STREAM_LIMIT, IMAGE_STREAMS_RESOURCE, STORAGE_RESOURCE,
};

/// Index annotations (BuildKit's) marking a child as an attestation of another child.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION: &str = "attestation-manifest";

pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn token_row(record: &TokenRecord) -> TokenRow {
    TokenRow {
        uid: record.uid.clone(),
        name: record.name.clone(),
        created: time(record.created_at),
        expires: record.expires_at.map(time),
        last_used: record.last_used_at.map(time),
        revoked: record.revoked_at.is_some(),
    }
}

/// A JSON document as stored, byte for byte (the bytes its digest is of: a re-serialised copy
/// would differ); `None` when the bytes are not JSON.
pub(crate) fn stored_json(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).ok()?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The child of an index that an attestation is attached to, when `child` is one.
pub(crate) fn attestation_for(child: &ChildManifest) -> Option<String> {
    (child.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION)).then(|| {
        child
            .annotations
            .get(REFERENCE_DIGEST)
            .cloned()
            .unwrap_or_default()
    })
}

/// `linux/arm64/v8`.
pub(crate) fn platform_name(
    os: Option<&str>,
    architecture: Option<&str>,
    variant: Option<&str>,
) -> Option<String> {
    let (os, architecture) = (
        os.filter(|o| !o.is_empty())?,
        architecture.filter(|a| !a.is_empty())?,
    );
    Some(match variant.filter(|v| !v.is_empty()) {
        Some(variant) => format!("{os}/{architecture}/{variant}"),
        None => format!("{os}/{architecture}"),
    })
}

/// What was read of some images at push time, with their children's (for an index's size).
#[derive(Default)]
pub(crate) struct Images(pub(crate) HashMap<String, ImageMetadata>);

impl Images {
    fn get(&self, digest: &str) -> Option<&ImageMetadata> {
        self.0.get(digest)
    }

    /// Bytes of an image and of its children, as the stream listing counts them.
    pub(crate) fn size(&self, digest: &str) -> Option<u64> {
        let image = self.get(digest)?;
        Some(
            image
                .manifests
                .iter()
                .filter_map(|child| self.get(&child.digest))
                .fold(image.size, |total, child| total.saturating_add(child.size)),
        )
    }

    /// The platforms an image runs on: its own, or its children's (attestations are not).
    fn platforms(&self, digest: &str) -> Vec<String> {
        let Some(image) = self.get(digest) else {
            return Vec::new();
        };
        if image.manifests.is_empty() {
            return platform_name(
                image.os.as_deref(),
                image.architecture.as_deref(),
                image.variant.as_deref(),
            )
            .into_iter()
            .collect();
        }
        image
            .manifests
            .iter()
            .filter(|child| attestation_for(child).is_none())
            .filter_map(|child| {
                platform_name(
                    child.os.as_deref(),
                    child.architecture.as_deref(),
                    child.variant.as_deref(),
                )
            })
            .collect()
    }
}

/// The images that a stream's status names, current first.
pub(crate) fn current_digests(stream: &ImageStream) -> Vec<Digest> {
    stream
        .status
        .tags
        .iter()
        .filter_map(|tag| tag.items.first())
        .filter_map(|item| item.image.parse().ok())
        .collect()
}

fn pull_repository(stream: &ImageStream) -> String {
    if stream.status.public_docker_image_repository.is_empty() {
        stream.status.docker_image_repository.clone()
    } else {
        stream.status.public_docker_image_repository.clone()
    }
}

/// A tag's history, newest first, with the time of each item (for merging).
fn history(status: &NamedTagEventList) -> Vec<(DateTime<Utc>, HistoryItem)> {
    status
        .items
        .iter()
        .map(|item| {
            (
                item.created,
                HistoryItem {
                    tag: status.tag.clone(),
                    image: item.image.clone(),
                    pull_spec: item.docker_image_reference.clone(),
                    created: time(item.created),
                    generation: item.generation,
                    by: item.actor.clone(),
                },
            )
        })
        .collect()
}

fn tag_row(stream: &ImageStream, name: &str, images: &Images) -> TagRow {
    let status = stream.status.tags.iter().find(|t| t.tag == name);
    let spec = stream.spec.tags.iter().find(|t| t.name == name);
    let current = status.and_then(|s| s.items.first());
    let digest = current
        .map(|item| item.image.clone())
        .filter(|image| !image.is_empty());
    TagRow {
        name: name.to_owned(),
        size: digest.as_deref().and_then(|d| images.size(d)),
        platforms: digest
            .as_deref()
            .map(|d| images.platforms(d))
            .unwrap_or_default(),
        digest,
        updated: current.map(|item| time(item.created)),
        // The spec's source only while it is what the tag shows: a push after an `oc tag` (a
        // rollback) leaves the spec tag in place (as in OpenShift) but not its image.
        from: spec
            .filter(|spec| spec_in_effect(stream, spec, current))
            .and_then(|s| s.from.as_ref())
            .map(|from| {
                if from.namespace.is_empty() {
                    format!("{} {}", from.kind, from.name)
                } else {
                    format!("{} {}/{}", from.kind, from.namespace, from.name)
                }
            }),
        warning: status.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.condition_type == "ImportSuccess" && c.status == "False")
                .map(|c| {
                    if c.message.is_empty() {
                        c.reason.clone()
                    } else {
                        c.message.clone()
                    }
                })
        }),
        // Berth's own rules, filled in by the in-process console (a cluster has none).
        immutable_rule: None,
        signed: false,
        history: status
            .map(|s| history(s).into_iter().map(|(_, item)| item).collect())
            .unwrap_or_default(),
    }
}

/// Whether a spec tag still says where its tag's current image came from. A push moves only
/// the status, with the stream's generation, which may be the spec tag's own (a push right
/// after a rollback): so the image is compared too, where the source names one.
fn spec_in_effect(stream: &ImageStream, spec: &TagReference, current: Option<&TagEvent>) -> bool {
    let Some(item) = current else {
        return true;
    };
    if spec
        .generation
        .is_some_and(|generation| item.generation > generation)
    {
        return false;
    }
    let Some(from) = &spec.from else {
        return true;
    };
    let same_stream = |name: &str| {
        name == stream.metadata.name
            && (from.namespace.is_empty()
                || stream.metadata.namespace.as_deref() == Some(from.namespace.as_str()))
    };
    match from.kind.as_str() {
        "ImageStreamImage" => from
            .name
            .split_once('@')
            .is_none_or(|(_, digest)| digest == item.image),
        "ImageStreamTag" => match from.name.split_once(':') {
            Some((name, tracked)) if same_stream(name) => stream
                .status
                .tags
                .iter()
                .find(|t| t.tag == tracked)
                .and_then(|t| t.items.first())
                .is_none_or(|source| source.image == item.image),
            _ => true,
        },
        _ => true,
    }
}

/// A binding's subject as the console shows it: a service account of another namespace is
/// `namespace:name`.
pub(super) fn binding_row(binding: RoleBinding, namespace: &str) -> BindingRow {
    let subject_name = match &binding.subject.namespace {
        Some(other) if binding.subject.kind == "ServiceAccount" && other != namespace => {
            format!("{other}:{}", binding.subject.name)
        }
        _ => binding.subject.name,
    };
    BindingRow {
        name: binding.metadata.name,
        role: binding.role_ref.name,
        subject_kind: binding.subject.kind,
        subject_name,
        stream: binding.image_stream,
    }
}

/// A stream's page: its tags (spec and status), each tag's history and the stream's.
pub(crate) fn stream_detail(
    namespace: &str,
    stream: &str,
    object: &ImageStream,
    images: &Images,
    permissions: Permissions,
) -> StreamDetail {
    let names: BTreeSet<&str> = object
        .spec
        .tags
        .iter()
        .map(|t| t.name.as_str())
        .chain(object.status.tags.iter().map(|t| t.tag.as_str()))
        .collect();
    // cosign's `sha256-<hex>.sig` tags sign the images they name: no artifact is read here.
    let signed = crate::signatures::signed_by_tags(names.iter().copied());
    let tags = names
        .into_iter()
        .map(|name| {
            let mut row = tag_row(object, name, images);
            row.signed = row.digest.as_ref().is_some_and(|d| signed.contains(d));
            row
        })
        .collect();
    let mut merged: Vec<(DateTime<Utc>, HistoryItem)> =
        object.status.tags.iter().flat_map(history).collect();
    merged.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
    StreamDetail {
        namespace: namespace.to_owned(),
        name: stream.to_owned(),
        pull_repository: pull_repository(object),
        tags,
        history: merged.into_iter().map(|(_, item)| item).collect(),
        permissions,
        labels: pairs(&object.metadata.labels),
        annotations: pairs(&object.metadata.annotations),
    }
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// What deleting a namespace of these streams takes with it: streams, tags (spec or status)
/// and the distinct images their histories name.
pub(crate) fn namespace_contents(streams: &[ImageStream]) -> NamespaceContents {
    let mut images = BTreeSet::new();
    let mut tags = 0;
    for stream in streams {
        let names: BTreeSet<&str> = stream
            .spec
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .chain(stream.status.tags.iter().map(|t| t.tag.as_str()))
            .collect();
        tags += names.len() as u64;
        images.extend(
            stream
                .status
                .tags
                .iter()
                .flat_map(|t| &t.items)
                .map(|item| item.image.as_str())
                .filter(|image| !image.is_empty()),
        );
    }
    NamespaceContents {
        streams: streams.len() as u64,
        tags,
        images: images.len() as u64,
    }
}

/// What an image's page is made of, however it was read.
pub(crate) struct ImageParts<'a> {
    pub namespace: &'a str,
    pub stream: &'a str,
    pub digest: &'a str,
    pub media_type: String,
    pub image: &'a ImageMetadata,
    /// The image and its children, for sizes.
    pub images: &'a Images,
    /// The stream, for the tags that name the image and its pull address.
    pub object: &'a ImageStream,
    pub referrers: Vec<ReferrerRow>,
    pub raw_manifest: String,
    pub raw_config: Option<String>,
}

/// The run configuration as the console shows it (and compares it).
pub(crate) fn run_config_view(run: &RunConfig) -> RunConfigView {
    RunConfigView {
        env: run.env.clone().unwrap_or_default(),
        entrypoint: run.entrypoint.clone().unwrap_or_default(),
        cmd: run.cmd.clone().unwrap_or_default(),
        ports: run
            .exposed_ports
            .iter()
            .flat_map(|ports| ports.keys().cloned())
            .collect(),
        volumes: run
            .volumes
            .iter()
            .flat_map(|volumes| volumes.keys().cloned())
            .collect(),
        labels: run
            .labels
            .iter()
            .flat_map(|labels| labels.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect(),
        user: run.user.clone().filter(|u| !u.is_empty()),
        working_dir: run.working_dir.clone().filter(|w| !w.is_empty()),
    }
}

/// An image's page: summary, platforms, layers, run configuration, build history.
/// Who first brought `digest` into the stream (its oldest history item), when that is known.
fn first_arrival(object: &ImageStream, digest: &str) -> Option<PushedBy> {
    let first = object
        .status
        .tags
        .iter()
        .flat_map(|t| &t.items)
        .filter(|item| item.image == digest)
        .min_by_key(|item| item.created)?;
    Some(PushedBy {
        by: first.actor.clone()?,
        at: time(first.created),
    })
}

pub(crate) fn image_detail(parts: ImageParts<'_>) -> ImageDetail {
    let ImageParts {
        namespace,
        stream,
        digest,
        media_type,
        image,
        images,
        object,
        referrers,
        raw_manifest,
        raw_config,
    } = parts;
    let tags = object
        .status
        .tags
        .iter()
        .filter(|t| t.items.first().is_some_and(|i| i.image == digest))
        .map(|t| t.tag.clone())
        .collect();
    let pushed = first_arrival(object, digest);
    let platforms = image
        .manifests
        .iter()
        .map(|child| PlatformRow {
            digest: child.digest.clone(),
            os: child.os.clone().unwrap_or_default(),
            architecture: child.architecture.clone().unwrap_or_default(),
            variant: child.variant.clone().filter(|v| !v.is_empty()),
            size: images.size(&child.digest).unwrap_or(child.size),
            attestation_for: attestation_for(child),
        })
        .collect();
    let config = image.run.as_ref().map(run_config_view);
    ImageDetail {
        pushed,
        namespace: namespace.to_owned(),
        stream: stream.to_owned(),
        size: images.size(digest).unwrap_or(image.size),
        digest: digest.to_owned(),
        media_type,
        created: image.created.clone(),
        author: image.author.clone(),
        os: image.os.clone(),
        architecture: image.architecture.clone(),
        variant: image.variant.clone(),
        platforms,
        layers: image
            .layers
            .iter()
            .map(|l| LayerRow {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
            .collect(),
        config,
        annotations: image
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        history: image
            .history
            .iter()
            .map(|h| BuildStep {
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                empty_layer: h.empty_layer,
            })
            .collect(),
        referrers,
        tags,
        pull_repository: pull_repository(object),
        raw_manifest,
        raw_config,
    }
}

/// A pull secret's row: its name, registries and age, never its data.
pub(crate) fn pull_secret_row(secret: &crate::kube::Secret) -> PullSecretRow {
    PullSecretRow {
        name: secret.metadata.name.clone(),
        registries: crate::secrets::object::secret_registries(secret),
        created: secret
            .metadata
            .creation_timestamp
            .map(time)
            .unwrap_or_default(),
    }
}

/// A webhook delivery as the delivery log shows it.
pub(super) fn delivery_row(delivery: crate::webhooks::deliveries::WebhookDelivery) -> DeliveryRow {
    DeliveryRow {
        id: delivery.id,
        event: delivery.event,
        state: delivery.state.to_owned(),
        created: delivery.creation_timestamp.to_rfc3339(),
        body: delivery.body,
        attempts: delivery
            .attempts
            .into_iter()
            .map(|attempt| AttemptRow {
                summary: match (&attempt.status_code, &attempt.error) {
                    (Some(code), _) => format!("{}: HTTP {code}", attempt.number),
                    (None, Some(error)) => format!("{}: {error}", attempt.number),
                    (None, None) => attempt.number.to_string(),
                },
                response_body: attempt.response_body,
                truncated: attempt.response_body_truncated,
            })
            .collect(),
        redelivery_of: delivery.redelivery_of,
    }
}

/// A quantity as a quota or limit writes it, a string or (as YAML gives it) a number.
fn quantity_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The bars of one `ResourceQuota`: each image limit it sets (`openshift.io/imagestreams`,
/// `berth.io/storage`) with what its status says is used. Other resources (a cluster's pods,
/// CPU) are not the console's.
pub(crate) fn quota_bars(quota: &str, status: &ResourceQuotaStatus) -> Vec<QuotaBar> {
    [STORAGE_RESOURCE, IMAGE_STREAMS_RESOURCE]
        .into_iter()
        .filter_map(|resource| {
            let hard_text = status.hard.get(resource)?;
            let hard = Quantity::parse(hard_text).ok()?.value;
            let used = status
                .used
                .get(resource)
                .and_then(|used| Quantity::parse(used).ok())
                .map_or(0, |used| used.value);
            Some(QuotaBar {
                quota: quota.to_owned(),
                resource: resource.to_owned(),
                used,
                hard,
                hard_text: hard_text.clone(),
                bytes: resource == STORAGE_RESOURCE,
            })
        })
        .collect()
}

/// The image limits of one `LimitRange`: each `max` of its `openshift.io/Image` and
/// `openshift.io/ImageStream` items.
pub(crate) fn limit_rows(range: &LimitRange) -> Vec<LimitRow> {
    range
        .spec
        .limits
        .iter()
        .filter(|item| item.limit_type == IMAGE_LIMIT || item.limit_type == IMAGE_STREAM_LIMIT)
        .flat_map(|item| {
            item.max.iter().filter_map(|(resource, value)| {
                let max_text = quantity_text(value)?;
                Some(LimitRow {
                    range: range.metadata.name.clone(),
                    limit_type: item.limit_type.clone(),
                    resource: resource.clone(),
                    max: Quantity::parse(&max_text).ok()?.value,
                    max_text,
                    bytes: item.limit_type == IMAGE_LIMIT && resource == IMAGE_SIZE_RESOURCE,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn child(digest: &str, platform: (&str, &str), annotations: &[(&str, &str)]) -> ChildManifest {
        ChildManifest {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 500,
            os: Some(platform.0.into()),
            architecture: Some(platform.1.into()),
            variant: None,
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn an_index_runs_on_its_children_but_not_its_attestations() {
        let amd = child("sha256:a", ("linux", "amd64"), &[]);
        let attestation = child(
            "sha256:b",
            ("unknown", "unknown"),
            &[
                (REFERENCE_TYPE, ATTESTATION),
                (REFERENCE_DIGEST, "sha256:a"),
            ],
        );
        assert_eq!(attestation_for(&amd), None);
        assert_eq!(attestation_for(&attestation).as_deref(), Some("sha256:a"));
        let index = ImageMetadata {
            size: 1000,
            manifests: vec![amd, attestation],
            ..ImageMetadata::default()
        };
        let leaf = ImageMetadata {
            size: 4000,
            os: Some("linux".into()),
            architecture: Some("arm64".into()),
            variant: Some("v8".into()),
            ..ImageMetadata::default()
        };
        let images = Images(HashMap::from([
            ("sha256:index".to_owned(), index),
            (
                "sha256:a".to_owned(),
                ImageMetadata {
                    size: 300,
                    ..ImageMetadata::default()
                },
            ),
            ("sha256:leaf".to_owned(), leaf),
        ]));
        assert_eq!(images.platforms("sha256:index"), ["linux/amd64"]);
        assert_eq!(images.platforms("sha256:leaf"), ["linux/arm64/v8"]);
        assert!(images.platforms("sha256:absent").is_empty());
        // An index's bytes count the children that are known.
        assert_eq!(images.size("sha256:index"), Some(1300));
        assert_eq!(images.size("sha256:absent"), None);
    }

    /// A stream whose tag `latest` was rolled back to `sha256:old` (spec generation 2) and
    /// then, when `pushed_after`, pushed with `sha256:new`.
    fn rolled_back(pushed_after: bool) -> ImageStream {
        let mut items = vec![
            serde_json::json!({"created": "2026-12-01T10:00:00Z", "dockerImageReference": "r/ns/app@sha256:old", "image": "sha256:old", "generation": 2}),
        ];
        if pushed_after {
            // A push takes the stream's generation: the rollback's own.
            items.insert(0, serde_json::json!({"created": "2026-12-01T11:00:00Z", "dockerImageReference": "r/ns/app@sha256:new", "image": "sha256:new", "generation": 2}));
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"tags": [{"name": "latest", "generation": 2,
                "from": {"kind": "ImageStreamImage", "name": "app@sha256:old"}}]},
            "status": {"dockerImageRepository": "r/ns/app", "tags": [{"tag": "latest", "items": items}]},
        }))
        .unwrap()
    }

    #[test]
    fn a_push_after_a_rollback_is_not_shown_as_pinned() {
        let row = tag_row(&rolled_back(false), "latest", &Images::default());
        assert_eq!(row.from.as_deref(), Some("ImageStreamImage app@sha256:old"));
        let row = tag_row(&rolled_back(true), "latest", &Images::default());
        assert_eq!(row.digest.as_deref(), Some("sha256:new"));
        assert_eq!(
            row.from, None,
            "the spec tag's `from` is not the pushed image's"
        );
    }

    #[test]
    fn a_namespace_counts_its_streams_tags_and_distinct_images() {
        let other: ImageStream = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"tags": [{"name": "next", "from": {"kind": "DockerImage", "name": "q.io/x:1"}}]},
            "status": {"tags": [{"tag": "v1", "items": [
                {"created": "2026-12-01T10:00:00Z", "dockerImageReference": "", "image": "sha256:old", "generation": 1}
            ]}]},
        }))
        .unwrap();
        let contents = namespace_contents(&[rolled_back(true), other]);
        // app: latest; web: next (spec only) and v1. Images: old (twice) and new.
        assert_eq!(
            contents,
            NamespaceContents {
                streams: 2,
                tags: 3,
                images: 2
            }
        );
    }
}
