//! `[storage]`: where blobs live, the data folder (`file://PATH`) or an S3-compatible bucket
//! (`s3://BUCKET/PREFIX`, reached as `[storage.s3]` and the standard `AWS_*` variables say),
//! and whether blob GETs are redirected to the bucket.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `file://PATH` or `s3://BUCKET/PREFIX`; the data folder when absent.
    pub url: Option<String>,
    /// Blob GETs answer 307 to a presigned URL of the object (S3 only), after the same access
    /// checks, instead of streaming it through Berth.
    pub redirect: bool,
    pub s3: S3Config,
}

/// How to reach the bucket of an `s3://` storage URL. What is left out comes from the standard
/// `AWS_*` variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), else from
/// object_store's defaults (AWS itself, `us-east-1`, instance or web-identity credentials).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// `https://host[:port]` (plain `http://` is allowed only when written here, or in
    /// `AWS_ENDPOINT`); AWS's regional endpoint when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The bucket in the path (`endpoint/bucket/key`, what MinIO, SeaweedFS and Garage expect)
    /// rather than in the host name (`bucket.endpoint/key`).
    pub path_style: bool,
    pub access_key_id: Option<String>,
    /// Read from the file, never written out: a serialised configuration leaves it out.
    #[serde(skip_serializing)]
    pub secret_access_key: Option<String>,
    /// PEM bundle of CA certificates trusted for the endpoint besides the system's roots (a
    /// store behind an internal CA); `AWS_CA_BUNDLE` when absent, as the AWS tools read it.
    pub ca_file: Option<PathBuf>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            ca_file: None,
        }
    }
}

impl S3Config {
    /// The CA bundle named for the endpoint, and by what: `ca_file`, else the `AWS_CA_BUNDLE`
    /// variable (read here: object_store does not know it).
    fn ca_bundle(&self) -> Option<(&'static str, PathBuf)> {
        if let Some(path) = &self.ca_file {
            return Some(("storage.s3.ca_file", path.clone()));
        }
        std::env::var_os("AWS_CA_BUNDLE")
            .filter(|path| !path.is_empty())
            .map(|path| ("AWS_CA_BUNDLE", PathBuf::from(path)))
    }

    /// The certificates of the CA bundle (none when no bundle is named), each checked to be
    /// usable as a root, so that a wrong file stops Berth at start naming it.
    pub fn ca_certificates(&self) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let Some((field, path)) = self.ca_bundle() else {
            return Ok(Vec::new());
        };
        let invalid = |reason: String| ConfigError::Invalid {
            field,
            reason: format!("{} {reason}", path.display()),
        };
        let pem = std::fs::read(&path).map_err(|err| invalid(format!("cannot be read: {err}")))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid(format!("is not a PEM bundle: {err}")))?;
        if certificates.is_empty() {
            return Err(invalid(
                "holds no certificate (-----BEGIN CERTIFICATE----- blocks)".into(),
            ));
        }
        let mut roots = rustls::RootCertStore::empty();
        for (index, certificate) in certificates.iter().enumerate() {
            roots.add(certificate.clone()).map_err(|err| {
                invalid(format!(
                    "holds a certificate that cannot be a root (number {} of {}): {err}",
                    index + 1,
                    certificates.len()
                ))
            })?;
        }
        Ok(certificates)
    }
}

/// The secret key never reaches a log line or a dump of the settings.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("ca_file", &self.ca_file)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where blobs live, as `[storage] url` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// `blobs/` and `uploads/` under this folder.
    Files(PathBuf),
    /// Keys under `prefix` (no leading or trailing `/`; empty for the bucket's root).
    S3 { bucket: String, prefix: String },
}

impl StorageConfig {
    /// Where blobs live; `data_dir` when no URL is set.
    pub fn location(&self, data_dir: &Path) -> Result<BlobLocation, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            field: "storage.url",
            reason,
        };
        let Some(url) = &self.url else {
            return Ok(BlobLocation::Files(data_dir.to_owned()));
        };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(invalid(format!(
                    "{url:?} names no folder (file:///srv/berth)"
                )));
            }
            return Ok(BlobLocation::Files(PathBuf::from(path)));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(invalid(format!(
                "{url:?} is neither file://PATH nor s3://BUCKET/PREFIX"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if bucket.is_empty() || !bucket.chars().all(bucket_chars) {
            return Err(invalid(format!(
                "{url:?} does not name a bucket (letters, digits, '.', '-' and '_')"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            let segments_ok = prefix.split('/').all(|segment| {
                !matches!(segment, "" | "." | "..")
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            });
            if !segments_ok {
                return Err(invalid(format!(
                    "the prefix {prefix:?} of {url:?} must be '/'-separated names of letters, digits, '.', '-' and '_'"
                )));
            }
        }
        Ok(BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    pub(super) fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        let location = self.location(data_dir)?;
        if self.redirect && !matches!(location, BlobLocation::S3 { .. }) {
            return Err(ConfigError::Invalid {
                field: "storage.redirect",
                reason: "redirects need blobs in a bucket (storage.url = \"s3://BUCKET/PREFIX\")"
                    .into(),
            });
        }
        if let Some(endpoint) = &self.s3.endpoint {
            let parsed = url::Url::parse(endpoint).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            if parsed.is_none() {
                return Err(ConfigError::Invalid {
                    field: "storage.s3.endpoint",
                    reason: format!(
                        "{endpoint:?} is not an http(s)://host[:port] address (credentials go in access_key_id and secret_access_key)"
                    ),
                });
            }
        }
        if self.s3.region.as_deref() == Some("") {
            return Err(ConfigError::Invalid {
                field: "storage.s3.region",
                reason: "must not be empty".into(),
            });
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return Err(ConfigError::Invalid {
                field: "storage.s3",
                reason: "access_key_id and secret_access_key go together".into(),
            });
        }
        if matches!(location, BlobLocation::S3 { .. }) {
            self.s3.ca_certificates()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> StorageConfig {
        StorageConfig {
            url: Some(url.into()),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn urls_name_a_folder_or_a_bucket_and_prefix() {
        let data = Path::new("/srv/data");
        assert_eq!(
            StorageConfig::default().location(data).unwrap(),
            BlobLocation::Files(data.into())
        );
        assert_eq!(
            with_url("file:///mnt/blobs").location(data).unwrap(),
            BlobLocation::Files("/mnt/blobs".into())
        );
        assert_eq!(
            with_url("file://relative/blobs").location(data).unwrap(),
            BlobLocation::Files("relative/blobs".into())
        );
        for (url, bucket, prefix) in [
            ("s3://registry", "registry", ""),
            ("s3://registry/", "registry", ""),
            ("s3://registry/berth/prod/", "registry", "berth/prod"),
            ("s3://my.bucket-1/a_b", "my.bucket-1", "a_b"),
        ] {
            assert_eq!(
                with_url(url).location(data).unwrap(),
                BlobLocation::S3 {
                    bucket: bucket.into(),
                    prefix: prefix.into()
                },
                "{url}"
            );
        }
        for bad in [
            "file://",
            "/srv/blobs",
            "gs://bucket",
            "s3://",
            "s3:///prefix",
            "s3://bucket name",
            "s3://bucket/a//b",
            "s3://bucket/a/../b",
            "s3://bucket/a b",
        ] {
            let err = with_url(bad).location(data).unwrap_err().to_string();
            assert!(err.starts_with("storage.url: "), "{bad}: {err}");
        }
    }

    fn with_ca_file(path: &Path) -> S3Config {
        S3Config {
            ca_file: Some(path.to_owned()),
            ..S3Config::default()
        }
    }

    #[test]
    fn a_ca_file_gives_each_certificate_of_its_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let pem: String = (0..2)
            .map(|_| {
                rcgen::generate_simple_self_signed(vec!["ca.internal".into()])
                    .unwrap()
                    .cert
                    .pem()
            })
            .collect();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("two internal CAs\n{pem}")).unwrap();
        assert_eq!(with_ca_file(&bundle).ca_certificates().unwrap().len(), 2);
        // The system's bundle, which AWS_CA_BUNDLE names on many machines, is one too.
        let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if system.is_file() {
            assert!(with_ca_file(system).ca_certificates().unwrap().len() > 10);
        }
    }

    #[test]
    fn a_ca_file_that_gives_no_root_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        for (path, reason) in [
            (dir.path().join("missing.pem"), "cannot be read"),
            (write("empty.pem", ""), "holds no certificate"),
            (write("text.pem", "not PEM\n"), "holds no certificate"),
            (
                write(
                    "key.pem",
                    &rcgen::KeyPair::generate().unwrap().serialize_pem(),
                ),
                "holds no certificate",
            ),
            (
                write(
                    "broken.pem",
                    "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                ),
                "is not a PEM bundle",
            ),
            (
                write(
                    "garbage.pem",
                    "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
                ),
                "cannot be a root",
            ),
        ] {
            let err = with_ca_file(&path)
                .ca_certificates()
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("storage.s3.ca_file: {}", path.display()))
                    && err.contains(reason),
                "{err}"
            );
        }
        // Checked at start only when blobs are in a bucket.
        let config = StorageConfig {
            s3: with_ca_file(&dir.path().join("missing.pem")),
            ..StorageConfig::default()
        };
        config.validate(dir.path()).unwrap();
        let err = StorageConfig {
            url: Some("s3://registry".into()),
            ..config
        }
        .validate(dir.path())
        .unwrap_err();
        assert!(
            err.to_string().contains("missing.pem cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn the_secret_key_is_not_in_debug_output() {
        let config = S3Config {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI-very-secret".into()),
            ..S3Config::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        let whole = super::super::Config {
            storage: StorageConfig {
                s3: config,
                ..StorageConfig::default()
            },
            ..super::super::Config::default()
        };
        assert!(!format!("{whole:?}").contains("very-secret"));
        assert!(!format!("{whole:#?}").contains("very-secret"));
    }
}
