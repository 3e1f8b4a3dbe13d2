//! Docker config.json, as pull secrets hold it: the credentials it has per registry, and
//! registry hosts in one normal form (lowercase `host[:port]`, Docker Hub as `docker.io`), so a
//! secret written for `https://index.docker.io/v1/` answers an import from `docker.io`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

/// Docker Hub, whatever name it is given (`index.docker.io`, `registry-1.docker.io`,
/// `https://index.docker.io/v1/`).
pub const DOCKER_HUB: &str = "docker.io";

/// A registry's user name and password (or token).
pub type Credentials = (String, String);

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuthEntry>,
}

#[derive(Deserialize)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `host[:port]` of a registry as written in a config.json or a pull spec, lowercase, without
/// a scheme or path; Docker Hub's names become `docker.io`. `None` when it names no host.
pub fn normalize_registry_host(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or_default();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    if !valid {
        return None;
    }
    Some(match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        other => other.to_owned(),
    })
}

/// Base64 with or without padding, as tools write `auth`.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn entry_credentials(entry: &DockerAuthEntry) -> Result<Credentials, String> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let text = LENIENT_BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("\"auth\" is not base64 of user:password")?;
        let (user, password) = text
            .split_once(':')
            .ok_or("\"auth\" is not base64 of user:password")?;
        if user.is_empty() {
            return Err("\"auth\" has an empty user name".into());
        }
        return Ok((user.to_owned(), password.to_owned()));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) if !user.is_empty() => Ok((user.clone(), password.clone())),
        _ => Err(
            "has neither \"auth\" nor \"username\" and \"password\" (identity tokens and credential helpers are not supported)"
                .into(),
        ),
    }
}

/// The credentials of a Docker config.json (`{"auths": {"host": {"auth": base64(user:pass)}}}`,
/// or `{"username": ..., "password": ...}` in place of `auth`), by normalised registry host.
/// The error says what is wrong, for a field cause.
pub fn parse_docker_config(bytes: &[u8]) -> Result<BTreeMap<String, Credentials>, String> {
    let not_config = |err: String| format!("is not a Docker config.json: {err}");
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| not_config(err.to_string()))?;
    if !value.is_object() {
        return Err(not_config("not a JSON object".into()));
    }
    let config: DockerConfigFile =
        serde_json::from_value(value).map_err(|err| not_config(err.to_string()))?;
    if config.auths.is_empty() {
        return Err("has no credentials: \"auths\" is missing or empty".into());
    }
    let mut found = BTreeMap::new();
    for (registry, entry) in &config.auths {
        let host = normalize_registry_host(registry)
            .ok_or_else(|| format!("auths: {registry:?} is not a registry host"))?;
        let credentials =
            entry_credentials(entry).map_err(|why| format!("auths[{registry}] {why}"))?;
        if let Some(previous) = found.insert(host.clone(), credentials.clone())
            && previous != credentials
        {
            return Err(format!(
                "auths: {registry:?} names {host} again, with other credentials"
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
pub(super) mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// A config.json with these `auths`.
    pub(in crate::secrets) fn config_json(auths: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap()
    }

    /// An `auth` field: base64 of `user:password`.
    pub(in crate::secrets) fn basic(user: &str, password: &str) -> String {
        STANDARD.encode(format!("{user}:{password}"))
    }

    #[test]
    fn registry_hosts_are_normalised() {
        for (written, host) in [
            ("quay.io", Some("quay.io")),
            ("Quay.IO", Some("quay.io")),
            ("https://quay.io", Some("quay.io")),
            ("http://localhost:5000/v2/", Some("localhost:5000")),
            (
                "registry.example.com:8443/some/path",
                Some("registry.example.com:8443"),
            ),
            ("[::1]:5000", Some("[::1]:5000")),
            ("docker.io", Some("docker.io")),
            ("index.docker.io", Some("docker.io")),
            ("registry-1.docker.io", Some("docker.io")),
            ("https://index.docker.io/v1/", Some("docker.io")),
            ("https://registry-1.docker.io/v2/", Some("docker.io")),
            // Docker Hub's names only: another port is another registry.
            ("docker.io:5000", Some("docker.io:5000")),
            ("", None),
            ("https://", None),
            ("user@quay.io", None),
            ("two words", None),
        ] {
            assert_eq!(
                normalize_registry_host(written).as_deref(),
                host,
                "{written:?}"
            );
        }
    }

    #[test]
    fn docker_configs_with_auth_or_username_and_password() {
        let config = config_json(serde_json::json!({
            "https://index.docker.io/v1/": {"auth": basic("hubuser", "hub:pass"), "email": "a@b.c"},
            "quay.io": {"username": "robot+ci", "password": "quay-token"},
            // Unpadded base64, as some tools write it.
            "http://localhost:5000": {"auth": STANDARD.encode("u:p").trim_end_matches('=')},
        }));
        let parsed = parse_docker_config(&config).unwrap();
        assert_eq!(
            parsed,
            BTreeMap::from([
                ("docker.io".into(), ("hubuser".into(), "hub:pass".into())),
                ("localhost:5000".into(), ("u".into(), "p".into())),
                ("quay.io".into(), ("robot+ci".into(), "quay-token".into())),
            ])
        );
        // `auth` wins over username and password, as in Docker.
        let both = config_json(serde_json::json!({
            "quay.io": {"auth": basic("a", "b"), "username": "c", "password": "d"},
        }));
        assert_eq!(
            parse_docker_config(&both).unwrap()["quay.io"],
            ("a".into(), "b".into())
        );

        for (bad, expected) in [
            (b"{not json".to_vec(), "is not a Docker config.json"),
            (b"[]".to_vec(), "is not a Docker config.json"),
            (b"{}".to_vec(), "has no credentials"),
            (config_json(serde_json::json!({})), "has no credentials"),
            (
                config_json(serde_json::json!({"quay.io": {"auth": "!!!"}})),
                "auths[quay.io] \"auth\" is not base64",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"auth": STANDARD.encode("nocolon")}})),
                "not base64 of user:password",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"identitytoken": "t"}})),
                "has neither",
            ),
            (
                config_json(serde_json::json!({"quay.io": {"username": "u"}})),
                "has neither",
            ),
            (
                config_json(serde_json::json!({"not a host": {"auth": basic("u", "p")}})),
                "is not a registry host",
            ),
            (
                config_json(serde_json::json!({
                    "docker.io": {"auth": basic("u", "p")},
                    "index.docker.io": {"auth": basic("v", "q")},
                })),
                "names docker.io again",
            ),
        ] {
            let err = parse_docker_config(&bad).unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}

/// Properties over generated input: no config.json or host panics the parsers, hosts come out
/// in one normal form, and what the console's form writes reads back as the same credentials.
#[cfg(test)]
mod properties {
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::secrets::object::{DOCKER_CONFIG_KEY, pull_secret};

    fn hosts() -> impl Strategy<Value = String> {
        "(https?://)?[a-zA-Z0-9](?:[a-zA-Z0-9.-]{0,20}[a-zA-Z0-9])?(:[0-9]{1,5})?(/[a-z]{0,5})?"
    }

    fn auth_entries() -> impl Strategy<Value = Value> {
        let text = prop_oneof![".{0,16}", "[A-Za-z0-9+/=]{0,24}", Just(String::new())];
        let field = prop_oneof![
            text.clone().prop_map(Value::from),
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            Just(json!({})),
        ];
        proptest::collection::btree_map(
            prop_oneof![
                Just("auth"),
                Just("username"),
                Just("password"),
                Just("identitytoken")
            ],
            field,
            0..4,
        )
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    proptest! {
        #[test]
        fn any_host(text in any::<String>()) {
            if let Some(host) = normalize_registry_host(&text) {
                prop_assert!(!host.is_empty());
                prop_assert!(host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_:[]".contains(&b)), "{:?}", host);
                prop_assert_eq!(normalize_registry_host(&host), Some(host.clone()));
            }
        }

        #[test]
        fn hosts_as_people_write_them(text in hosts()) {
            let host = normalize_registry_host(&text);
            prop_assert!(host.is_some(), "{:?}", text);
            let host = host.unwrap();
            prop_assert!(!host.contains('/'));
            prop_assert_eq!(normalize_registry_host(&host), Some(host));
        }

        #[test]
        fn any_bytes_as_a_config(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_docker_config(&bytes);
        }

        #[test]
        fn any_config_shaped_json(
            auths in proptest::collection::btree_map(prop_oneof![hosts(), ".{0,10}"], auth_entries(), 0..4),
            wrap in any::<bool>(),
        ) {
            let config = if wrap { json!({"auths": auths}) } else { json!(auths) };
            if let Ok(found) = parse_docker_config(config.to_string().as_bytes()) {
                for (host, (user, _)) in &found {
                    prop_assert_eq!(normalize_registry_host(host), Some(host.clone()));
                    prop_assert!(!user.is_empty());
                }
            }
        }

        #[test]
        fn what_the_form_writes_reads_back(
            host in hosts(),
            username in "[^:\\s]{1,16}",
            password in ".{1,24}",
            plain_fields in any::<bool>(),
        ) {
            let expected = BTreeMap::from([(
                normalize_registry_host(&host).unwrap(),
                (username.clone(), password.clone()),
            )]);
            let secret = pull_secret("creds", &host, &username, &password).unwrap();
            let config = STANDARD.decode(&secret.data[DOCKER_CONFIG_KEY]).unwrap();
            prop_assert_eq!(parse_docker_config(&config), Ok(expected.clone()));
            if plain_fields {
                let config = json!({"auths": {host: {"username": username, "password": password}}});
                prop_assert_eq!(parse_docker_config(config.to_string().as_bytes()), Ok(expected));
            }
        }
    }
}
