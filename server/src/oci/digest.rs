//! Content digests (`sha256:…`, `sha512:…`) and the hashers that compute them while data streams.
//!
//! A parsed [`Digest`] is the only way a blob is named in storage, so its grammar is also what
//! keeps file paths inside the data folder: the encoded part is lowercase hex of a fixed length.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> DigestHasher {
        match self {
            Algorithm::Sha256 => DigestHasher::Sha256(Box::default()),
            Algorithm::Sha512 => DigestHasher::Sha512(Box::default()),
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::Unsupported(other.to_owned())),
        }
    }
}

/// A validated content digest. Displays as `algorithm:hex`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} is not of the form algorithm:hex")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported; use sha256 or sha512")]
    Unsupported(String),
    #[error(
        "digest {digest:?} must have {expected} lowercase hexadecimal characters after the colon"
    )]
    BadEncoding { digest: String, expected: usize },
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The sha256 digest of `data`, the canonical digest of content pushed without one.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Self::of(Algorithm::Sha256, data)
    }

    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut hasher = algorithm.hasher();
        hasher.update(data);
        hasher.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, encoded) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        let algorithm_is_well_formed = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !algorithm_is_well_formed || encoded.is_empty() {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        let algorithm: Algorithm = algorithm.parse()?;
        let expected = algorithm.hex_len();
        let is_hex = encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if encoded.len() != expected || !is_hex {
            return Err(DigestError::BadEncoding {
                digest: s.to_owned(),
                expected,
            });
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A running hash whose state can be saved between requests, so that an upload can continue on
/// another request, after a restart, or on another replica.
#[derive(Clone)]
pub enum DigestHasher {
    Sha256(Box<Sha256>),
    Sha512(Box<Sha512>),
}

#[derive(Debug, thiserror::Error)]
#[error("saved hash state is corrupt")]
pub struct CorruptHashState;

/// The most bytes a resumed hash may have taken: SHA-256 counts bits in a `u64`.
const MAX_HASHED_BYTES: u64 = u64::MAX / 8;

impl DigestHasher {
    /// How many bytes a saved state has hashed, read from `sha2`'s layout: the core (the
    /// state words, then the count of whole blocks, little-endian: a `u64` for SHA-256, a `u128`
    /// for SHA-512), then the buffer (its length in one byte, then the block less one byte:
    /// it never holds a whole block). `None` when the state is not of that shape.
    fn hashed_bytes(algorithm: Algorithm, state: &[u8]) -> Option<u64> {
        let (words, count, block) = match algorithm {
            Algorithm::Sha256 => (32, 8, 64),
            Algorithm::Sha512 => (64, 16, 128),
        };
        if state.len() != words + count + block {
            return None;
        }
        let mut blocks = [0u8; 16];
        blocks[..count].copy_from_slice(&state[words..words + count]);
        let blocks = u128::from_le_bytes(blocks);
        let buffered = u128::from(state[words + count]);
        let total = blocks.checked_mul(block as u128)?.checked_add(buffered)?;
        u64::try_from(total).ok()
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            DigestHasher::Sha256(_) => Algorithm::Sha256,
            DigestHasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            DigestHasher::Sha256(h) => h.update(data),
            DigestHasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            DigestHasher::Sha256(h) => hex::encode(h.finalize()),
            DigestHasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest { algorithm, hex }
    }

    /// The hash state as bytes, to be stored with the upload session.
    pub fn save(&self) -> Vec<u8> {
        match self {
            DigestHasher::Sha256(h) => h.serialize().to_vec(),
            DigestHasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// A hasher from a saved state that has hashed `hashed` bytes. A state that says otherwise
    /// is corrupt: it is refused rather than trusted, since finishing a hash whose length
    /// field was tampered with overflows inside `sha2`.
    pub fn restore(
        algorithm: Algorithm,
        state: &[u8],
        hashed: u64,
    ) -> Result<DigestHasher, CorruptHashState> {
        if Self::hashed_bytes(algorithm, state) != Some(hashed) || hashed > MAX_HASHED_BYTES {
            return Err(CorruptHashState);
        }
        Ok(match algorithm {
            Algorithm::Sha256 => DigestHasher::Sha256(Box::new(
                Sha256::deserialize(state.try_into().map_err(|_| CorruptHashState)?)
                    .map_err(|_| CorruptHashState)?,
            )),
            Algorithm::Sha512 => DigestHasher::Sha512(Box::new(
                Sha512::deserialize(state.try_into().map_err(|_| CorruptHashState)?)
                    .map_err(|_| CorruptHashState)?,
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_sha256_and_sha512() {
        let d: Digest = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
            .parse()
            .unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d, Digest::sha256_of(b"hello world"));
        let d512 = Digest::of(Algorithm::Sha512, b"hello world");
        assert_eq!(d512.hex().len(), 128);
        assert_eq!(d512.to_string().parse::<Digest>().unwrap(), d512);
    }

    #[test]
    fn refuses_what_could_escape_a_path_or_is_malformed() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:../../etc/passwd",
            "SHA256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            "sha256:B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde",
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9/x",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            "blake3:abcd".parse::<Digest>(),
            Err(DigestError::Unsupported("blake3".into()))
        );
    }

    #[test]
    fn saved_state_resumes_the_same_hash() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut first = algorithm.hasher();
            first.update(b"hello ");
            let state = first.save();
            let mut resumed = DigestHasher::restore(algorithm, &state, 6).unwrap();
            resumed.update(b"world");
            assert_eq!(resumed.finish(), Digest::of(algorithm, b"hello world"));
            // A state that disagrees with the recorded size is corrupt.
            assert!(DigestHasher::restore(algorithm, &state, 7).is_err());
        }
        assert!(DigestHasher::restore(Algorithm::Sha256, b"short", 0).is_err());
    }
}

/// Properties over generated input: no text panics the parser, exactly the grammar's digests
/// parse, and a parsed digest prints as it was written.
#[cfg(test)]
mod properties {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    static GRAMMAR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$").unwrap());

    fn check(text: &str) -> Result<(), TestCaseError> {
        let parsed = text.parse::<Digest>();
        prop_assert_eq!(parsed.is_ok(), GRAMMAR.is_match(text), "{:?}", text);
        if let Ok(digest) = parsed {
            prop_assert_eq!(digest.to_string(), text);
            let json = serde_json::to_string(&digest).unwrap();
            prop_assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text(text in any::<String>()) {
            check(&text)?;
        }

        #[test]
        fn text_near_the_grammar(text in "(sha256|sha512|SHA256|md5|sha-256|)(:|)[a-fA-F0-9./:]{0,130}") {
            check(&text)?;
        }

        #[test]
        fn digests_of_the_grammar(hex in "[a-f0-9]{64}", long in "[a-f0-9]{128}") {
            check(&format!("sha256:{hex}"))?;
            check(&format!("sha512:{long}"))?;
        }

        #[test]
        fn any_saved_state_restores_or_is_refused(state in proptest::collection::vec(any::<u8>(), 0..300)) {
            for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
                // Either refused, or a hasher that finishes without panicking.
                if let Ok(hasher) = DigestHasher::restore(algorithm, &state, 0) {
                    hasher.finish();
                }
            }
        }

        #[test]
        fn any_state_of_the_right_length_restores_or_is_refused(
            sha256 in proptest::collection::vec(any::<u8>(), Algorithm::Sha256.hasher().save().len()),
            sha512 in proptest::collection::vec(any::<u8>(), Algorithm::Sha512.hasher().save().len()),
        ) {
            for (algorithm, state) in [(Algorithm::Sha256, sha256), (Algorithm::Sha512, sha512)] {
                // Under the size the state itself claims, and under others.
                let claimed = DigestHasher::hashed_bytes(algorithm, &state);
                for hashed in [claimed.unwrap_or(0), 0, 1, 64, u64::MAX] {
                    if let Ok(mut hasher) = DigestHasher::restore(algorithm, &state, hashed) {
                        hasher.update(b"more");
                        hasher.finish();
                    }
                }
            }
        }

        #[test]
        fn a_hash_saved_anywhere_resumes_to_the_same_digest(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in any::<proptest::sample::Index>(),
        ) {
            let cut = cut.index(data.len() + 1);
            for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
                let mut first = algorithm.hasher();
                first.update(&data[..cut]);
                let mut resumed =
                    DigestHasher::restore(algorithm, &first.save(), cut as u64).unwrap();
                resumed.update(&data[cut..]);
                prop_assert_eq!(resumed.finish(), Digest::of(algorithm, &data));
            }
        }
    }
}
