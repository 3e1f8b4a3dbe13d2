//! Docker config.json (pull secrets) and registry hosts: no input panics; hosts come out in one
//! normal form, and every credential read has a user name.
#![no_main]

use berth::secrets::docker_config::{normalize_registry_host, parse_docker_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) = parse_docker_config(data) {
        for (host, (user, _password)) in &found {
            assert_eq!(normalize_registry_host(host).as_ref(), Some(host));
            assert!(!user.is_empty());
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(host) = normalize_registry_host(text)
    {
        assert!(!host.is_empty() && !host.contains('/'));
        assert_eq!(normalize_registry_host(&host), Some(host));
    }
});
