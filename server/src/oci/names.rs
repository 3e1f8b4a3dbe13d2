//! Repository names, tags and manifest references, validated against the OCI Distribution
//! grammar before anything reaches storage.

use std::fmt;
use std::str::FromStr;

use crate::oci::Digest;

/// The longest repository name accepted, as in distribution (a reference with a registry host
/// must stay under 256 characters).
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A repository name: `/`-separated components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "repository name {0:?} is invalid: use lowercase letters, digits and separators (., _, __, -) in /-separated components, each starting and ending with a letter or digit"
    )]
    Repository(String),
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("repository {0:?} has no namespace: push to <namespace>/{0}, for example library/{0}")]
    NoNamespace(String),
    #[error(
        "namespace {0:?} is invalid: a namespace is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit"
    )]
    Namespace(String),
    #[error(
        "tag {0:?} is invalid: a tag is 1 to 128 characters of letters, digits, _, . and -, not starting with . or -"
    )]
    Tag(String),
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: alphanumeric runs joined by exactly one separator: `.`, `_`, `__` or
/// a run of `-`.
pub fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !is_lower_alnum(first) || !is_lower_alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_lower_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_lower_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

/// A Kubernetes namespace name (an RFC 1123 label): what the first component of a repository
/// name must be.
pub fn is_valid_namespace(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(|&b| is_lower_alnum(b))
        && bytes.last().is_some_and(|&b| is_lower_alnum(b))
        && bytes.iter().all(|&b| is_lower_alnum(b) || b == b'-')
}

/// A registry host as a pull spec names it (distribution's `domain`): dot-separated labels of
/// letters, digits and inner `-`, or an IPv6 address in brackets; then an optional `:port`.
pub fn is_valid_registry_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port))
            if !name.ends_with(':') && (!name.contains(':') || name.ends_with(']')) =>
        {
            (name, Some(port))
        }
        _ => (host, None),
    };
    let port_ok = port.is_none_or(|port| {
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    let bytes = label.as_bytes();
                    bytes.len() <= 63
                        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
                        && bytes
                            .iter()
                            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    };
    port_ok && name_ok
}

impl RepositoryName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace (project) holding the repository: its first component.
    pub fn namespace(&self) -> &str {
        self.0
            .split_once('/')
            .map_or(&self.0, |(namespace, _)| namespace)
    }

    /// The image stream's name: everything after the namespace.
    pub fn stream(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, stream)| stream)
    }

    /// The repository of stream `stream` in `namespace`.
    pub fn of_stream(namespace: &str, stream: &str) -> Result<Self, NameError> {
        format!("{namespace}/{stream}").parse()
    }
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if s.is_empty() || !s.split('/').all(is_valid_component) {
            return Err(NameError::Repository(s.to_owned()));
        }
        match s.split_once('/') {
            None => Err(NameError::NoNamespace(s.to_owned())),
            Some((namespace, _)) if !is_valid_namespace(namespace) => {
                Err(NameError::Namespace(namespace.to_owned()))
            }
            Some(_) => Ok(RepositoryName(s.to_owned())),
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let valid = match bytes.first() {
            Some(&first) => {
                bytes.len() <= MAX_TAG_LEN
                    && (first.is_ascii_alphanumeric() || first == b'_')
                    && bytes
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            }
            None => false,
        };
        if valid {
            Ok(Tag(s.to_owned()))
        } else {
            Err(NameError::Tag(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar_of_repository_names() {
        for good in [
            "library/busybox",
            "ns/stream",
            "deeply/nested/path/to/repo",
            "a-b/c.d_e__f---g",
            "0/0",
            "foo/blobs",
            "x/manifests/y",
        ] {
            assert!(good.parse::<RepositoryName>().is_ok(), "{good:?} refused");
        }
        let name: RepositoryName = "team/group/app".parse().unwrap();
        assert_eq!((name.namespace(), name.stream()), ("team", "group/app"));
    }

    #[test]
    fn refuses_names_outside_the_grammar() {
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a//b",
            "A",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/.b",
            "..",
            "a/../b",
            "a b",
            "a%2fb",
            "a/_catalog",
            "ns/st:ream",
            "busybox",
            "a.b/c",
            "a_b/c",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(long.parse::<RepositoryName>(), Err(NameError::TooLong));
    }

    #[test]
    fn registry_hosts() {
        for good in [
            "docker.io",
            "localhost",
            "127.0.0.1:5000",
            "Quay.IO",
            "my-registry.example.com:443",
            "[::1]:5000",
            "[fe80::1]",
        ] {
            assert!(is_valid_registry_host(good), "{good:?} refused");
        }
        for bad in [
            "", "a..b", ".a", "a.", "-a.b", "a-.b", "h:", "h:x", "a#b", "a?b", "a@b", "[::1", "[]",
            "a b",
        ] {
            assert!(!is_valid_registry_host(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags_follow_the_spec() {
        for good in ["latest", "v1.2.3", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(good.parse::<Tag>().is_ok(), "{good:?} refused");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"t".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?} accepted");
        }
    }
}

/// Properties over generated input: no input panics, and what is accepted is exactly what the
/// Distribution grammar (written again here as regular expressions) accepts.
#[cfg(test)]
mod properties {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    const COMPONENT: &str = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
    static NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{COMPONENT}(?:/{COMPONENT})*$")).unwrap());
    static NAMESPACE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$").unwrap());
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap());

    fn grammar_accepts_name(s: &str) -> bool {
        s.len() <= MAX_NAME_LEN
            && NAME.is_match(s)
            && s.split_once('/')
                .is_some_and(|(namespace, _)| NAMESPACE.is_match(namespace))
    }

    proptest! {
        #[test]
        fn any_text_as_a_repository_name(text in any::<String>()) {
            let parsed = text.parse::<RepositoryName>();
            prop_assert_eq!(parsed.is_ok(), grammar_accepts_name(&text));
        }

        #[test]
        fn text_near_the_name_grammar(text in "[a-z0-9._/A-]{0,24}") {
            let parsed = text.parse::<RepositoryName>();
            prop_assert_eq!(parsed.is_ok(), grammar_accepts_name(&text), "{:?}", text);
            if let Ok(name) = parsed {
                prop_assert_eq!(name.as_str(), text.as_str());
                prop_assert_eq!(format!("{}/{}", name.namespace(), name.stream()), text);
            }
        }

        #[test]
        fn names_written_by_the_grammar_round_trip(
            namespace in "[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?",
            components in proptest::collection::vec(COMPONENT, 1..5),
        ) {
            let text = format!("{namespace}/{}", components.join("/"));
            let parsed = text.parse::<RepositoryName>();
            prop_assert_eq!(parsed.is_ok(), text.len() <= MAX_NAME_LEN);
            if let Ok(name) = parsed {
                prop_assert_eq!(name.to_string(), text.clone());
                prop_assert_eq!(RepositoryName::of_stream(name.namespace(), name.stream()), Ok(name));
            }
        }

        #[test]
        fn any_text_as_a_tag(text in any::<String>()) {
            prop_assert_eq!(text.parse::<Tag>().is_ok(), TAG.is_match(&text));
        }

        #[test]
        fn text_near_the_tag_grammar(text in "[a-zA-Z0-9._:/-]{0,130}") {
            let parsed = text.parse::<Tag>();
            prop_assert_eq!(parsed.is_ok(), TAG.is_match(&text), "{:?}", text);
            if let Ok(tag) = parsed {
                prop_assert_eq!(tag.to_string(), text);
            }
        }
    }
}
