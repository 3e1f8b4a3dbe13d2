//! Pull specs for imports: no text panics the parser; what it accepts keeps to the registry's
//! grammars (host, path components, tag) and prints as a spec that reads back the same.
#![no_main]

use berth::import::remote::RemoteReference;
use berth::oci::{Tag, is_valid_component, is_valid_registry_host};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(reference) = RemoteReference::parse(text) else {
        return;
    };
    assert!(is_valid_registry_host(&reference.registry));
    assert!(reference.repository.split('/').all(is_valid_component));
    if let Some(tag) = &reference.tag {
        assert!(tag.parse::<Tag>().is_ok());
    }
    assert!(reference.tag.is_some() || reference.digest.is_some());
    let printed = reference.to_string();
    assert_eq!(RemoteReference::parse(&printed), Ok(reference));
});
