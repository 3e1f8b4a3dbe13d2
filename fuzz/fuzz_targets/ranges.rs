//! `Range` and `Content-Range`: no header panics; a range is always inside the blob; a parsed
//! `Content-Range` is ordered and prints back to itself.
#![no_main]

use berth::registry::http::{RangeRequest, parse_content_range, parse_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, &str)| {
    let (size, text) = input;
    if let RangeRequest::Partial(range) = parse_range(Some(text), size) {
        assert!(range.start <= range.end && range.end < size);
        assert!(range.length() <= size);
    }
    if let Some((start, end)) = parse_content_range(text) {
        assert!(start <= end);
        assert_eq!(
            parse_content_range(&format!("{start}-{end}")),
            Some((start, end))
        );
    }
});
