//! Pushed manifests: no body or `Content-Type` panics the parser; what it accepts is an image
//! or an index, named by the sha256 of its bytes, and an index's children read without panic.
#![no_main]

use berth::oci::{Digest, ManifestKind, kind_of};
use berth::registry::content;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let body = Bytes::copy_from_slice(body);
    if let Ok(parsed) = content::parse(body.clone(), content_type) {
        let manifest = parsed.manifest;
        assert_eq!(manifest.digest, Digest::sha256_of(&body));
        match kind_of(&manifest.media_type) {
            Some(ManifestKind::Image) => assert!(manifest.manifests.is_empty()),
            Some(ManifestKind::Index) => assert!(manifest.blobs.is_empty()),
            None => panic!("accepted media type {}", manifest.media_type),
        }
    }
    let _ = content::index_entries(&body);
});
