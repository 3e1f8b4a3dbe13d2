//! Repository names, tags and `/v2/` paths: no input panics, what parses prints back as it was
//! written, and a path's endpoint keeps the name it was given.
#![no_main]

use berth::oci::{RepositoryName, Tag};
use berth::registry::routes::RegistryRoute;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(name) = text.parse::<RepositoryName>() {
        assert_eq!(name.as_str(), text);
        assert_eq!(format!("{}/{}", name.namespace(), name.stream()), text);
        assert_eq!(
            RegistryRoute::parse(&format!("{name}/tags/list")).ok(),
            Some(RegistryRoute::Tags(name.clone()))
        );
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.as_str(), text);
        assert!(!tag.as_str().is_empty() && tag.as_str().len() <= 128);
    }
    let _ = RegistryRoute::parse(text);
});
