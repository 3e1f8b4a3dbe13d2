//! A pull secret as a Kubernetes `Secret` object of type `kubernetes.io/dockerconfigjson`, as
//! `oc create secret docker-registry` makes it: its name and type checked, its Docker config
//! taken out of a request, made from the console's form, its registries read for a list, and a
//! stored one shown without its data (annotation `berth.io/registries` in its place).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::docker_config::normalize_registry_host;
use crate::kube::{ApiError, ApiResult, FieldError, ObjectMeta, SECRETS, Secret};
use crate::storage::secrets::RegistrySecretRecord;

/// The only secret type Berth keeps.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The key of the Docker config.json in `data` and `stringData`.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";
/// The annotation listing the registries a secret has credentials for: `"docker.io,quay.io"`.
pub const REGISTRIES_ANNOTATION: &str = "berth.io/registries";
/// Largest Docker config accepted, as Kubernetes limits a secret.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// A pull secret as `oc create secret docker-registry NAME --docker-server=REGISTRY
/// --docker-username=USERNAME --docker-password=PASSWORD` makes it: a Docker config.json with
/// `auths.{host}.auth` = base64(`username:password`), the host normalised. The name is left to
/// whoever stores it to check; the field at fault is named as the console's form names it.
pub fn pull_secret(
    name: &str,
    registry: &str,
    username: &str,
    password: &str,
) -> ApiResult<Secret> {
    let name = name.trim();
    let invalid = |field: &str, message: String| {
        ApiError::invalid(SECRETS, name, FieldError::new(field, message))
    };
    let host = normalize_registry_host(registry).ok_or_else(|| {
        invalid(
            "registry",
            format!(
                "{:?} is not a registry host: a host name with an optional port, such as quay.io or 127.0.0.1:5000",
                registry.trim()
            ),
        )
    })?;
    let username = username.trim();
    if username.is_empty() {
        return Err(invalid("username", "Required value".into()));
    }
    if username.contains(':') {
        return Err(invalid(
            "username",
            "cannot contain ':' (the Docker config joins the user name and password with it)"
                .into(),
        ));
    }
    if password.is_empty() {
        return Err(invalid("password", "Required value".into()));
    }
    let config = serde_json::json!({
        "auths": {host: {"auth": STANDARD.encode(format!("{username}:{password}"))}}
    });
    Ok(Secret {
        kind: crate::kube::kinds::secret(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: name.to_owned(),
            ..ObjectMeta::default()
        },
        secret_type: DOCKER_CONFIG_JSON.to_owned(),
        data: BTreeMap::from([(
            DOCKER_CONFIG_KEY.to_owned(),
            STANDARD.encode(config.to_string()),
        )]),
        string_data: BTreeMap::new(),
    })
}

/// The registries a pull secret has credentials for: its `berth.io/registries` annotation when
/// it has one (Berth's answers), else the hosts of its config.json's `auths` (a cluster's
/// answers carry the data). Only host names are read out of the data; a config that cannot be
/// read names none.
pub fn secret_registries(secret: &Secret) -> Vec<String> {
    if let Some(listed) = secret.metadata.annotations.get(REGISTRIES_ANNOTATION) {
        return listed
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(str::to_owned)
            .collect();
    }
    #[derive(Deserialize)]
    struct Hosts {
        #[serde(default)]
        auths: BTreeMap<String, serde::de::IgnoredAny>,
    }
    let hosts = secret
        .data
        .get(DOCKER_CONFIG_KEY)
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|config| serde_json::from_slice::<Hosts>(&config).ok())
        .map(|config| config.auths)
        .unwrap_or_default();
    let hosts: std::collections::BTreeSet<String> = hosts
        .keys()
        .map(|key| normalize_registry_host(key).unwrap_or_else(|| key.clone()))
        .collect();
    hosts.into_iter().collect()
}

/// Kubernetes object names (DNS-1123 subdomains): dot-separated labels of lowercase letters,
/// digits and `-`, each starting and ending with a letter or digit, 253 characters at most.
pub(super) fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The Docker config of a secret in a request, from `stringData` (which wins, as in
/// Kubernetes) or `data`, with the field it came from; or the field at fault and why.
pub(super) fn submitted_config(secret: &Secret) -> Result<(String, Vec<u8>), FieldError> {
    let data_field = format!("data[{DOCKER_CONFIG_KEY}]");
    let string_field = format!("stringData[{DOCKER_CONFIG_KEY}]");
    if let Some(key) = secret.data.keys().find(|k| *k != DOCKER_CONFIG_KEY) {
        return Err(FieldError::new(
            format!("data[{key}]"),
            format!("a {DOCKER_CONFIG_JSON} secret holds {DOCKER_CONFIG_KEY} only"),
        ));
    }
    if let Some(key) = secret.string_data.keys().find(|k| *k != DOCKER_CONFIG_KEY) {
        return Err(FieldError::new(
            format!("stringData[{key}]"),
            format!("a {DOCKER_CONFIG_JSON} secret holds {DOCKER_CONFIG_KEY} only"),
        ));
    }
    let (field, config) = match (
        secret.string_data.get(DOCKER_CONFIG_KEY),
        secret.data.get(DOCKER_CONFIG_KEY),
    ) {
        (Some(text), _) => (string_field, text.as_bytes().to_vec()),
        (None, Some(encoded)) => {
            let config = STANDARD.decode(encoded.trim()).map_err(|err| {
                FieldError::new(&data_field, format!("is not valid base64: {err}"))
            })?;
            (data_field, config)
        }
        (None, None) => {
            return Err(FieldError::new(
                data_field,
                "Required value: a Docker config.json in base64 (or as text in stringData)",
            ));
        }
    };
    if config.len() > MAX_CONFIG_BYTES {
        return Err(FieldError::new(
            field,
            format!("Too long: must have at most {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok((field, config))
}

/// A stored secret as the API shows it: never its data.
pub(super) fn secret_object(record: &RegistrySecretRecord) -> Secret {
    Secret {
        kind: crate::kube::kinds::secret(),
        api_version: crate::kube::kinds::core_api(),
        metadata: ObjectMeta {
            name: record.name.clone(),
            namespace: Some(record.namespace.clone()),
            creation_timestamp: Some(record.created_at),
            annotations: BTreeMap::from([(
                REGISTRIES_ANNOTATION.to_owned(),
                record.hosts.join(","),
            )]),
            ..ObjectMeta::default()
        },
        secret_type: record.secret_type.clone(),
        data: BTreeMap::new(),
        string_data: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::secrets::docker_config::parse_docker_config;
    use crate::secrets::docker_config::tests::basic;

    #[test]
    fn the_console_form_makes_a_docker_config_and_rows_name_only_hosts() {
        let secret = pull_secret(" quay ", "https://Quay.io/v2/", "robot", "p:a:ss").unwrap();
        assert_eq!(secret.metadata.name, "quay");
        assert_eq!(secret.secret_type, DOCKER_CONFIG_JSON);
        let config = STANDARD.decode(&secret.data[DOCKER_CONFIG_KEY]).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(value["auths"]["quay.io"]["auth"], basic("robot", "p:a:ss"));
        assert_eq!(
            parse_docker_config(&config).unwrap()["quay.io"],
            ("robot".into(), "p:a:ss".into())
        );
        // A cluster's answer carries the data: the hosts are read from it, nothing else.
        assert_eq!(secret_registries(&secret), ["quay.io"]);
        let local = pull_secret("local", "127.0.0.1:5000", "u", "p").unwrap();
        assert_eq!(secret_registries(&local), ["127.0.0.1:5000"]);
        // Berth's answers have no data, and the annotation.
        let mut annotated = secret_object(&RegistrySecretRecord {
            namespace: "team".into(),
            name: "quay".into(),
            secret_type: DOCKER_CONFIG_JSON.into(),
            nonce: vec![0; 24],
            ciphertext: Vec::new(),
            hosts: vec!["quay.io".into()],
            created_at: Utc::now(),
        });
        annotated
            .metadata
            .annotations
            .insert(REGISTRIES_ANNOTATION.into(), "docker.io, quay.io,".into());
        assert_eq!(secret_registries(&annotated), ["docker.io", "quay.io"]);
        let mut unreadable = secret.clone();
        unreadable
            .data
            .insert(DOCKER_CONFIG_KEY.into(), "not base64!".into());
        assert!(secret_registries(&unreadable).is_empty());

        for (registry, user, password, field) in [
            ("not a host", "u", "p", "registry: "),
            ("", "u", "p", "registry: "),
            ("quay.io", " ", "p", "username: Required"),
            ("quay.io", "a:b", "p", "username: cannot contain ':'"),
            ("quay.io", "u", "", "password: Required"),
        ] {
            let err = pull_secret("s", registry, user, password).unwrap_err();
            assert!(
                matches!(err, ApiError::Invalid { .. }) && err.to_string().contains(field),
                "{err} lacks {field:?}"
            );
        }
    }

    #[test]
    fn secret_names_are_kubernetes_names() {
        for good in ["quay", "quay-io", "pull.secret-2", "a"] {
            assert!(is_valid_secret_name(good), "{good}");
        }
        for bad in [
            "",
            "Quay",
            "-quay",
            "quay-",
            "a..b",
            "a/b",
            "a_b",
            &"a".repeat(254),
        ] {
            assert!(!is_valid_secret_name(bad), "{bad}");
        }
    }
}
