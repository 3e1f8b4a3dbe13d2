//! Digests and saved hash states: no input panics; a parsed digest prints as written and keeps
//! to lowercase hex of its algorithm's length (it names files on disk); a saved state is
//! refused or resumes without panicking.
#![no_main]

use berth::oci::{Algorithm, Digest, DigestHasher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(digest) = text.parse::<Digest>()
    {
        assert_eq!(digest.to_string(), text);
        let expected = match digest.algorithm() {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        };
        assert_eq!(digest.hex().len(), expected);
        assert!(
            digest
                .hex()
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
    // The first 8 bytes are the size the session would have recorded; the rest the state.
    if data.len() >= 8 {
        let (size, state) = data.split_at(8);
        let size = u64::from_le_bytes(size.try_into().unwrap_or_default());
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            if let Ok(mut hasher) = DigestHasher::restore(algorithm, state, size) {
                hasher.update(b"more");
                hasher.finish();
            }
        }
    }
});
