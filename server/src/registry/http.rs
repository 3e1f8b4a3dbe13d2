//! HTTP details of the Distribution API: its header names and the small grammars of `Range`,
//! `Content-Range` and `Accept` that the handlers need.

use axum::http::{HeaderMap, HeaderName, header};

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const DOCKER_DISTRIBUTION_API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
pub const API_VERSION: &str = "registry/2.0";

/// The `Range` header value of an upload holding `size` bytes: `0-<last byte>`, and `0-0` when
/// empty, as distribution answers.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// A satisfiable byte range of a blob, end inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range (never zero: the end is inclusive).
    pub fn length(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// What a `Range` request header asks of a blob of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or several, which a server may answer with the whole blob).
    Whole,
    Partial(ByteRange),
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` against a blob of `size` bytes.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(value) = value else {
        return RangeRequest::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Unsatisfiable;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let range = match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(n) if n > 0 && size > 0 => Some(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
            _ => None,
        },
        (false, true) => match number(first) {
            Some(start) if start < size => Some(ByteRange {
                start,
                end: size - 1,
            }),
            _ => None,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < size => Some(ByteRange {
                start,
                end: end.min(size - 1),
            }),
            _ => None,
        },
        (true, true) => None,
    };
    range.map_or(RangeRequest::Unsatisfiable, RangeRequest::Partial)
}

/// A decimal number of ASCII digits only (`u64::from_str` also takes a leading `+`).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        None
    } else {
        text.parse().ok()
    }
}

/// Parses an upload chunk's `Content-Range`: `<start>-<end>` as the OCI spec writes it, also
/// accepting the RFC form `bytes <start>-<end>/<total>`. Returns (start, end) inclusive.
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let value = value.trim();
    let value = value.strip_prefix("bytes ").unwrap_or(value).trim();
    let value = value.split_once('/').map_or(value, |(range, _total)| range);
    let (start, end) = value.split_once('-')?;
    let start = number(start.trim())?;
    let end = number(end.trim())?;
    (start <= end).then_some((start, end))
}

/// The media types an `Accept` header list names (all header lines, comma-separated, parameters
/// dropped). Empty when the client sent none.
pub fn accepted_media_types(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|item| !item.is_empty())
        .collect()
}

/// Whether `media_type` satisfies the client's `Accept` list (no list accepts anything).
pub fn accepts(accepted: &[String], media_type: &str) -> bool {
    accepted.is_empty()
        || accepted.iter().any(|a| {
            a == "*/*"
                || a.eq_ignore_ascii_case(media_type)
                || a.strip_suffix("/*")
                    .is_some_and(|kind| media_type.split('/').next() == Some(kind))
        })
}

/// The media type of a `Content-Type` header, parameters dropped.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ranges() {
        let r = |start, end| RangeRequest::Partial(ByteRange { start, end });
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), r(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), r(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), r(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), r(0, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), r(8, 9));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeRequest::Whole);
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=a-b",
            "items=0-1",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(
                parse_range(Some(bad), 10),
                RangeRequest::Unsatisfiable,
                "{bad}"
            );
        }
        assert_eq!(
            parse_range(Some("bytes=0-0"), 0),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            r(2, 4),
            RangeRequest::Partial(ByteRange { start: 2, end: 4 })
        );
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, 199)));
        assert_eq!(parse_content_range("9-1"), None);
        assert_eq!(parse_content_range("x-1"), None);
        // Digits only: no sign, as the grammar says (found by the property tests).
        assert_eq!(parse_content_range("+0-+5"), None);
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(10), "0-9");
    }

    #[test]
    fn accept_lists() {
        let mut headers = HeaderMap::new();
        assert!(accepts(&accepted_media_types(&headers), "anything/at-all"));
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.index.v1+json; q=0.5, application/vnd.docker.distribution.manifest.v2+json"),
        );
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        );
        let accepted = accepted_media_types(&headers);
        assert_eq!(accepted.len(), 3);
        assert!(accepts(
            &accepted,
            "application/vnd.oci.image.manifest.v1+json"
        ));
        assert!(!accepts(
            &accepted,
            "application/vnd.docker.distribution.manifest.list.v2+json"
        ));
        assert!(accepts(&["application/*".into()], "application/x"));
        assert!(accepts(&["*/*".into()], "application/x"));
    }
}

/// Properties over generated headers: nothing panics, a range is always inside the blob, and
/// `Content-Range` is accepted exactly when it follows its grammar.
#[cfg(test)]
mod properties {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    /// `[bytes ]<start>-<end>[/<anything>]`, spaces allowed around the parts.
    static CONTENT_RANGE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)^\s*(?:bytes )?\s*([0-9]+)\s*-\s*([0-9]+)\s*(?:/.*)?$").unwrap()
    });

    fn grammar_content_range(text: &str) -> Option<(u64, u64)> {
        let captures = CONTENT_RANGE.captures(text)?;
        let start: u64 = captures[1].parse().ok()?;
        let end: u64 = captures[2].parse().ok()?;
        (start <= end).then_some((start, end))
    }

    fn check_range(value: Option<&str>, size: u64) -> Result<(), TestCaseError> {
        if let RangeRequest::Partial(range) = parse_range(value, size) {
            prop_assert!(
                range.start <= range.end && range.end < size,
                "{value:?} {size}"
            );
            prop_assert!(range.length() <= size);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_range_header(value in any::<Option<String>>(), size in any::<u64>()) {
            check_range(value.as_deref(), size)?;
        }

        #[test]
        fn range_headers_near_the_grammar(value in "(bytes=|items=|)[-0-9, +]{0,30}", size in 0u64..1000) {
            check_range(Some(&value), size)?;
        }

        #[test]
        fn ranges_mean_what_rfc_9110_says(
            first in any::<u64>(), last in any::<u64>(), size in any::<u64>(),
        ) {
            let partial = |start, end| RangeRequest::Partial(ByteRange { start, end });
            let expected = if first <= last && first < size {
                partial(first, last.min(size - 1))
            } else {
                RangeRequest::Unsatisfiable
            };
            prop_assert_eq!(parse_range(Some(&format!("bytes={first}-{last}")), size), expected);
            let expected = if first < size { partial(first, size - 1) } else { RangeRequest::Unsatisfiable };
            prop_assert_eq!(parse_range(Some(&format!("bytes={first}-")), size), expected);
            let expected = if last > 0 && size > 0 {
                partial(size - last.min(size), size - 1)
            } else {
                RangeRequest::Unsatisfiable
            };
            prop_assert_eq!(parse_range(Some(&format!("bytes=-{last}")), size), expected);
        }

        #[test]
        fn any_content_range(value in any::<String>()) {
            prop_assert_eq!(parse_content_range(&value), grammar_content_range(&value));
        }

        #[test]
        fn content_ranges_near_the_grammar(value in "(bytes |bytes|)[ 0-9+*/-]{0,30}") {
            prop_assert_eq!(parse_content_range(&value), grammar_content_range(&value), "{:?}", value);
        }

        #[test]
        fn content_ranges_round_trip(start in any::<u64>(), length in any::<u64>()) {
            let end = start.saturating_add(length);
            prop_assert_eq!(parse_content_range(&format!("{start}-{end}")), Some((start, end)));
            prop_assert_eq!(parse_content_range(&format!("bytes {start}-{end}/*")), Some((start, end)));
            // What the server answers in `Range` reads back as the bytes held.
            if length > 0 {
                prop_assert_eq!(parse_content_range(&upload_range(length)), Some((0, length - 1)));
            }
        }
    }
}
