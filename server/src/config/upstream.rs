//! `[upstream]`: an OpenShift-compatible cluster the console is put in front of.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_file};

/// An OpenShift-compatible cluster the console is put in front of: its API (image streams,
/// namespaces, access reviews), its registry, and its OAuth server (found from the API's
/// `/.well-known/oauth-authorization-server`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub api_url: String,
    pub registry_url: String,
    /// The registry's address in pull commands [default: the host of `registry_url`].
    #[serde(default)]
    pub registry_hostname: Option<String>,
    /// PEM CA bundle for the API, registry and OAuth server (besides the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The console's OAuth client at the upstream (an `OAuthClient` on OpenShift).
    #[serde(default = "default_upstream_client")]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// Scopes asked for at sign-in (`user:full`: the user's own permissions, as `oc login`).
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    /// The largest answer read from the upstream, in bytes.
    #[serde(default = "default_upstream_response_bytes")]
    pub max_response_bytes: usize,
    /// Bytes of layers (with their file indexes) kept under `<data_dir>/upstream-layers` for
    /// the console's file views; the least recently used go first.
    #[serde(default = "default_layer_cache_bytes")]
    pub layer_cache_bytes: u64,
}

fn default_upstream_client() -> String {
    "berth-console".into()
}

fn default_upstream_scopes() -> Vec<String> {
    vec!["user:full".into()]
}

fn default_upstream_response_bytes() -> usize {
    32 * 1024 * 1024
}

fn default_layer_cache_bytes() -> u64 {
    10 << 30
}

impl UpstreamConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (field, url) in [
            ("upstream.api_url", &self.api_url),
            ("upstream.registry_url", &self.registry_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!("{url:?} must start with http:// or https://"),
                });
            }
        }
        if let Some(path) = &self.ca_file {
            check_file("upstream.ca_file", path)?;
        }
        for (field, value) in [
            (
                "upstream.max_response_bytes",
                self.max_response_bytes as u64,
            ),
            ("upstream.layer_cache_bytes", self.layer_cache_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        Ok(())
    }
}
