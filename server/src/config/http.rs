//! `[http]`: the HTTP edge's settings.

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_networks, parse_network};

/// The HTTP edge: which proxies are believed, and how long a client may take to send headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Addresses or networks (`10.0.0.0/8`, `192.0.2.7`) of proxies whose `X-Forwarded-Proto`,
    /// `X-Forwarded-Host` and `X-Forwarded-For` are believed. From anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers (HTTP/1); a connection that stops
    /// mid-header, or stays idle that long between requests, is closed.
    pub header_read_timeout_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            trusted_proxies: Vec::new(),
            header_read_timeout_seconds: 10,
        }
    }
}

impl HttpConfig {
    /// The trusted proxies as networks (checked at start, so none is dropped here).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|text| parse_network(text).ok())
            .collect()
    }

    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_networks("http.trusted_proxies", &self.trusted_proxies)?;
        if self.header_read_timeout_seconds == 0 {
            return Err(ConfigError::Invalid {
                field: "http.header_read_timeout_seconds",
                reason: "must be greater than 0".into(),
            });
        }
        Ok(())
    }
}
