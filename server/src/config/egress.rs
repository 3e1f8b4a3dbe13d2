//! `[egress]`: where Berth's own outbound calls (imports, webhooks, sign-in) may go.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_file, check_networks};

/// The egress policy's settings: what outbound calls may reach besides the public internet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Networks (CIDRs such as `10.0.0.0/8`, or single addresses) that imports, webhooks and
    /// sign-in may reach although they are internal. A cloud metadata address opens only to an
    /// entry naming exactly that address.
    pub allow: Vec<String>,
    /// Hosts a registry's bearer challenge may name as its token realm besides the registry's
    /// own host and site (`auth.docker.io` for `registry-1.docker.io` needs no entry).
    pub token_realm_hosts: Vec<String>,
    /// PEM CA bundle trusted for outbound HTTPS besides the built-in roots.
    pub ca_file: Option<PathBuf>,
}

impl EgressConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_networks("egress.allow", &self.allow)?;
        if let Some(host) = self.token_realm_hosts.iter().find(|host| {
            host.is_empty() || host.contains(['/', ':', '@', ' ']) || host.starts_with('.')
        }) {
            return Err(ConfigError::Invalid {
                field: "egress.token_realm_hosts",
                reason: format!("{host:?} is not a host name"),
            });
        }
        if let Some(path) = &self.ca_file {
            check_file("egress.ca_file", path)?;
        }
        Ok(())
    }
}
