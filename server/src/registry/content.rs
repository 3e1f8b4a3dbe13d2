//! What a pushed manifest says: its media type, what it refers to, its subject and artifact
//! type. Parsing refuses what the registry cannot serve correctly (schema 1, unknown types,
//! malformed descriptors) with a message that says what to do instead.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::error::{RegistryError, RegistryResult};
use crate::oci::{
    DOCKER_FOREIGN_LAYER, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED, Digest, ManifestKind, OCI_INDEX, OCI_MANIFEST, kind_of,
};
use crate::storage::{NewManifest, Referenced};

/// The fields read before the full parse, to choose how to parse.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    config: Option<serde::de::IgnoredAny>,
    manifests: Option<serde::de::IgnoredAny>,
    fs_layers: Option<serde::de::IgnoredAny>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(message.into())
}

fn schema1_refused() -> RegistryError {
    invalid(
        "Docker schema 1 manifests are not supported (deprecated since Docker 1.10); push the image as Docker schema 2 or OCI, for example with `skopeo copy --format v2s2` or `--format oci`",
    )
}

/// A pushed manifest: what to store, and the parsed document.
#[derive(Debug)]
pub struct ParsedManifest {
    pub manifest: NewManifest,
    pub document: Document,
}

#[derive(Debug)]
pub enum Document {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Parses a pushed manifest. `content_type` is the request's `Content-Type` media type.
pub fn parse(content: Bytes, content_type: Option<&str>) -> RegistryResult<ParsedManifest> {
    let envelope: Envelope = serde_json::from_slice(&content)
        .map_err(|err| invalid(format!("the manifest is not a JSON object: {err}")))?;
    let declared = envelope.media_type.as_deref();
    // Generic JSON content types say nothing about the manifest's kind.
    let header =
        content_type.filter(|t| !matches!(*t, "application/json" | "application/octet-stream"));
    for media_type in [declared, header].into_iter().flatten() {
        if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
            return Err(schema1_refused());
        }
    }
    if envelope.fs_layers.is_some() || envelope.schema_version == Some(serde_json::json!(1)) {
        return Err(schema1_refused());
    }
    if envelope.schema_version != Some(serde_json::json!(2)) {
        return Err(invalid("schemaVersion must be 2"));
    }
    if let (Some(declared), Some(header)) = (declared, header)
        && declared != header
    {
        return Err(invalid(format!(
            "Content-Type {header} does not match the manifest's mediaType {declared}"
        )));
    }
    let media_type = match declared.or(header) {
        Some(media_type) => media_type.to_owned(),
        // OCI allows an absent mediaType; the shape tells.
        None if envelope.manifests.is_some() => OCI_INDEX.to_owned(),
        None if envelope.config.is_some() => OCI_MANIFEST.to_owned(),
        None => {
            return Err(invalid(
                "the manifest has no mediaType and is neither an image manifest nor an index",
            ));
        }
    };
    match kind_of(&media_type) {
        Some(ManifestKind::Image) => parse_image(content, media_type),
        Some(ManifestKind::Index) => parse_index(content, media_type),
        None => Err(invalid(format!(
            "manifest media type {media_type} is not supported; push one of {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_MANIFEST_LIST}"
        ))),
    }
}

/// The largest size a descriptor may declare: what the metadata store holds (a signed 64-bit
/// integer), so that no declared size is refused later or wraps.
pub const MAX_DECLARED_SIZE: u64 = i64::MAX as u64;

fn descriptor_digest(descriptor: &Descriptor, what: &str) -> RegistryResult<Digest> {
    descriptor
        .digest()
        .to_string()
        .parse::<Digest>()
        .map_err(|err| invalid(format!("{what}: {err}")))
}

/// A descriptor's digest and declared size, the size checked against [`MAX_DECLARED_SIZE`].
fn referenced(descriptor: &Descriptor, what: &str) -> RegistryResult<Referenced> {
    let digest = descriptor_digest(descriptor, what)?;
    let size = descriptor.size();
    if size > MAX_DECLARED_SIZE {
        return Err(invalid(format!(
            "{what} ({digest}) declares a size of {size} bytes, more than the largest possible ({MAX_DECLARED_SIZE})"
        )));
    }
    Ok(Referenced { digest, size })
}

fn annotations_json(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Option<String> {
    annotations
        .filter(|a| !a.is_empty())
        .map(|a| a.iter().collect::<BTreeMap<_, _>>())
        .and_then(|a| serde_json::to_string(&a).ok())
}

fn subject_digest(subject: Option<&Descriptor>) -> RegistryResult<Option<Digest>> {
    subject
        .map(|s| referenced(s, "subject").map(|r| r.digest))
        .transpose()
}

fn is_foreign(layer: &Descriptor) -> bool {
    let media_type = layer.media_type().to_string();
    let nondistributable = media_type == DOCKER_FOREIGN_LAYER
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.");
    nondistributable && layer.urls().as_ref().is_some_and(|urls| !urls.is_empty())
}

fn parse_image(content: Bytes, media_type: String) -> RegistryResult<ParsedManifest> {
    let manifest: ImageManifest = serde_json::from_slice(&content)
        .map_err(|err| invalid(format!("not a valid image manifest: {err}")))?;
    let mut blobs = vec![referenced(manifest.config(), "config")?];
    for (i, layer) in manifest.layers().iter().enumerate() {
        let layer_reference = referenced(layer, &format!("layer {i}"))?;
        // Foreign layers live at their `urls`: the registry holds (and checks) none of them.
        if !is_foreign(layer) {
            blobs.push(layer_reference);
        }
    }
    blobs.sort();
    blobs.dedup();
    // The referrers API reports an image's artifactType, or else its config's media type (OCI
    // Distribution 1.1: "if the artifactType is empty or missing in the image manifest, the
    // value of artifactType MUST be set to the config descriptor mediaType value").
    let artifact_type = Some(
        manifest
            .artifact_type()
            .as_ref()
            .unwrap_or(manifest.config().media_type())
            .to_string(),
    );
    Ok(ParsedManifest {
        manifest: NewManifest {
            digest: Digest::sha256_of(&content),
            media_type,
            artifact_type,
            subject: subject_digest(manifest.subject().as_ref())?,
            annotations: annotations_json(manifest.annotations().as_ref()),
            image: None,
            blobs,
            manifests: Vec::new(),
            content,
            pushed_by: None,
        },
        document: Document::Image(Box::new(manifest)),
    })
}

fn parse_index(content: Bytes, media_type: String) -> RegistryResult<ParsedManifest> {
    let index: ImageIndex = serde_json::from_slice(&content)
        .map_err(|err| invalid(format!("not a valid image index: {err}")))?;
    let mut manifests = index
        .manifests()
        .iter()
        .enumerate()
        .map(|(i, m)| referenced(m, &format!("manifest {i}")))
        .collect::<RegistryResult<Vec<_>>>()?;
    manifests.sort();
    manifests.dedup();
    Ok(ParsedManifest {
        manifest: NewManifest {
            digest: Digest::sha256_of(&content),
            media_type,
            artifact_type: index.artifact_type().as_ref().map(MediaType::to_string),
            subject: subject_digest(index.subject().as_ref())?,
            annotations: annotations_json(index.annotations().as_ref()),
            image: None,
            blobs: Vec::new(),
            manifests,
            content,
            pushed_by: None,
        },
        document: Document::Index(Box::new(index)),
    })
}

/// Says which descriptors declare another size than the content they name.
pub fn wrong_sizes(mismatched: &[crate::storage::SizeMismatch]) -> String {
    let each: Vec<String> = mismatched
        .iter()
        .map(|m| {
            format!(
                "{} is declared as {} bytes but is {} bytes",
                m.digest, m.declared, m.stored
            )
        })
        .collect();
    format!(
        "descriptor sizes do not match the content: {}",
        each.join("; ")
    )
}

/// A child of an index, with its platform, for choosing one for clients that cannot take an index.
pub struct IndexEntry {
    pub digest: Digest,
    pub media_type: String,
    pub os: String,
    pub architecture: String,
}

pub fn index_entries(content: &[u8]) -> Vec<IndexEntry> {
    let Ok(index) = serde_json::from_slice::<ImageIndex>(content) else {
        return Vec::new();
    };
    index
        .manifests()
        .iter()
        .filter_map(|m| {
            let platform = m.platform().as_ref()?;
            Some(IndexEntry {
                digest: m.digest().to_string().parse().ok()?,
                media_type: m.media_type().to_string(),
                os: platform.os().to_string(),
                architecture: platform.architecture().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::OCI_IMAGE_CONFIG;

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const LAYER: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    fn image(media_type: &str, extra: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}",
               "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG}","size":2}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{LAYER}","size":11}}]{extra}}}"#
        ))
    }

    #[test]
    fn reads_an_image_manifest() {
        let m = parse(image(OCI_MANIFEST, ""), Some(OCI_MANIFEST))
            .unwrap()
            .manifest;
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.blobs.len(), 2);
        assert!(m.manifests.is_empty());
        // Without artifactType, the referrers API lists an image under its config's type.
        assert_eq!(m.artifact_type.as_deref(), Some(OCI_IMAGE_CONFIG));
        let docker = parse(image(DOCKER_MANIFEST, ""), None).unwrap().manifest;
        assert_eq!(docker.media_type, DOCKER_MANIFEST);
    }

    #[test]
    fn reads_subject_artifact_type_and_annotations() {
        let extra = format!(
            r#","artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{LAYER}","size":1}},"annotations":{{"b":"2","a":"1"}}"#
        );
        let m = parse(image(OCI_MANIFEST, &extra), None).unwrap().manifest;
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(m.subject.unwrap().to_string(), LAYER);
        assert_eq!(m.annotations.as_deref(), Some(r#"{"a":"1","b":"2"}"#));
    }

    #[test]
    fn reads_an_index_without_media_type() {
        let index = Bytes::from(format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{LAYER}","size":5,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        ));
        let m = parse(index.clone(), None).unwrap().manifest;
        assert_eq!(m.media_type, OCI_INDEX);
        assert_eq!(m.manifests.len(), 1);
        let entries = index_entries(&index);
        assert_eq!(entries[0].architecture, "arm64");
    }

    #[test]
    fn refuses_sizes_beyond_what_the_store_holds() {
        let with_layer_size = |size: &str| {
            let text = String::from_utf8(image(OCI_MANIFEST, "").to_vec()).unwrap();
            Bytes::from(text.replace("\"size\":11", &format!("\"size\":{size}")))
        };
        for size in [u64::MAX, i64::MAX as u64 + 1] {
            let err = parse(with_layer_size(&size.to_string()), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(LAYER) && err.contains("largest"), "{err}");
        }
        let largest = parse(with_layer_size(&i64::MAX.to_string()), None)
            .unwrap()
            .manifest;
        assert!(largest.blobs.iter().any(|b| b.size == MAX_DECLARED_SIZE));
        assert!(parse(with_layer_size("-1"), None).is_err());
    }

    #[test]
    fn refuses_schema1_mismatches_and_garbage() {
        let schema1 = Bytes::from(r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#);
        let err = parse(schema1, None).unwrap_err().to_string();
        assert!(err.contains("schema 1"), "{err}");
        let err = parse(image(OCI_MANIFEST, ""), Some(DOCKER_MANIFEST))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(parse(Bytes::from("not json"), None).is_err());
        assert!(
            parse(
                Bytes::from(r#"{"schemaVersion":2,"mediaType":"text/plain"}"#),
                None
            )
            .is_err()
        );
        let bad_digest = image(OCI_MANIFEST, "").slice(..).to_vec();
        let bad_digest = String::from_utf8(bad_digest)
            .unwrap()
            .replace(LAYER, "sha256:1234");
        assert!(parse(Bytes::from(bad_digest), None).is_err());
    }
}

/// Properties over generated documents: no bytes, JSON or content type panics the parser, and
/// a well-formed manifest or index is read for exactly what it refers to.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn digests() -> impl Strategy<Value = String> {
        "[a-f0-9]{64}".prop_map(|hex| format!("sha256:{hex}"))
    }

    /// JSON made of the words manifests use, nested, with wrong types where they may be.
    fn manifest_like() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just(OCI_MANIFEST.to_owned()),
                Just(OCI_INDEX.to_owned()),
                Just(DOCKER_MANIFEST.to_owned()),
                Just(DOCKER_SCHEMA1.to_owned()),
                Just(DOCKER_FOREIGN_LAYER.to_owned()),
                digests(),
                ".{0,12}",
            ]
            .prop_map(Value::from),
        ];
        let keys = prop_oneof![
            Just("schemaVersion"),
            Just("mediaType"),
            Just("config"),
            Just("layers"),
            Just("manifests"),
            Just("subject"),
            Just("digest"),
            Just("size"),
            Just("urls"),
            Just("artifactType"),
            Just("annotations"),
            Just("platform"),
            Just("fsLayers"),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|map| {
                    Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    fn content_types() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just(OCI_MANIFEST.to_owned()),
            Just(OCI_INDEX.to_owned()),
            Just(DOCKER_MANIFEST_LIST.to_owned()),
            Just("application/json".to_owned()),
            ".{0,20}",
        ])
    }

    fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }

    proptest! {
        #[test]
        fn any_bytes(content in proptest::collection::vec(any::<u8>(), 0..400), content_type in content_types()) {
            let _ = parse(Bytes::from(content), content_type.as_deref());
        }

        #[test]
        fn any_manifest_like_json(
            mut document in manifest_like(),
            schema_version in prop_oneof![Just(json!(2)), Just(json!(1)), Just(json!("2"))],
            content_type in content_types(),
        ) {
            if let Value::Object(map) = &mut document {
                map.insert("schemaVersion".into(), schema_version);
            }
            let content = Bytes::from(serde_json::to_vec(&document).unwrap());
            if let Ok(parsed) = parse(content.clone(), content_type.as_deref()) {
                prop_assert_eq!(parsed.manifest.digest, Digest::sha256_of(&content));
                prop_assert!(kind_of(&parsed.manifest.media_type).is_some());
            }
            let _ = index_entries(&content);
        }

        #[test]
        fn an_image_manifest_is_read_for_what_it_refers_to(
            config in digests(),
            layers in proptest::collection::vec((digests(), 0..=i64::MAX as u64, any::<bool>()), 0..6),
            artifact_type in proptest::option::of("[a-z]{1,8}/[a-z.+-]{1,16}"),
            subject in proptest::option::of(digests()),
            docker in any::<bool>(),
        ) {
            let media_type = if docker { DOCKER_MANIFEST } else { OCI_MANIFEST };
            let config_type = "application/vnd.example.config.v1+json";
            let mut document = json!({
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": descriptor(config_type, &config, 2),
                "layers": layers.iter().map(|(digest, size, foreign)| {
                    let mut layer = descriptor(
                        if *foreign { DOCKER_FOREIGN_LAYER } else { "application/vnd.oci.image.layer.v1.tar" },
                        digest,
                        *size,
                    );
                    if *foreign {
                        layer["urls"] = json!(["https://example.com/layer"]);
                    }
                    layer
                }).collect::<Vec<_>>(),
            });
            if let Some(artifact_type) = &artifact_type {
                document["artifactType"] = json!(artifact_type);
            }
            if let Some(subject) = &subject {
                document["subject"] = descriptor(OCI_MANIFEST, subject, 1);
            }
            let content = Bytes::from(serde_json::to_vec(&document).unwrap());
            let parsed = parse(content.clone(), Some(media_type)).unwrap().manifest;
            let mut expected: Vec<Digest> = std::iter::once(&config)
                .chain(layers.iter().filter(|(_, _, foreign)| !foreign).map(|(digest, _, _)| digest))
                .map(|digest| digest.parse().unwrap())
                .collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(parsed.blobs.iter().map(|r| r.digest.clone()).collect::<Vec<_>>(), expected);
            prop_assert!(parsed.manifests.is_empty());
            prop_assert_eq!(parsed.media_type, media_type);
            prop_assert_eq!(parsed.digest, Digest::sha256_of(&content));
            prop_assert_eq!(parsed.artifact_type.as_deref(), Some(artifact_type.as_deref().unwrap_or(config_type)));
            prop_assert_eq!(parsed.subject.map(|d| d.to_string()), subject);
        }

        #[test]
        fn an_index_is_read_for_its_children(
            children in proptest::collection::vec((digests(), "[a-z0-9]{1,8}", "[a-z0-9]{1,8}"), 0..6),
            declared in any::<bool>(),
        ) {
            let mut document = json!({
                "schemaVersion": 2,
                "manifests": children.iter().map(|(digest, os, architecture)| {
                    let mut child = descriptor(OCI_MANIFEST, digest, 10);
                    child["platform"] = json!({"os": os, "architecture": architecture});
                    child
                }).collect::<Vec<_>>(),
            });
            if declared {
                document["mediaType"] = json!(OCI_INDEX);
            }
            let content = Bytes::from(serde_json::to_vec(&document).unwrap());
            let parsed = parse(content.clone(), None).unwrap().manifest;
            let mut expected: Vec<Digest> = children.iter().map(|(d, _, _)| d.parse().unwrap()).collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(parsed.manifests.iter().map(|r| r.digest.clone()).collect::<Vec<_>>(), expected);
            prop_assert!(parsed.blobs.is_empty());
            prop_assert_eq!(parsed.media_type, OCI_INDEX);
            let entries = index_entries(&content);
            prop_assert_eq!(entries.len(), children.len());
            for (entry, (digest, os, architecture)) in entries.iter().zip(&children) {
                prop_assert_eq!(&entry.digest.to_string(), digest);
                prop_assert_eq!((&entry.os, &entry.architecture), (os, architecture));
            }
        }
    }
}
