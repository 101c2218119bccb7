//! Content digests (`sha256:<hex>`): parsing, display and hashing.
//!
//! Only `sha256` is stored; other well-formed algorithms are refused with a clear
//! error rather than silently mishandled.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::Error;

/// A validated `sha256` content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).as_slice())
    }

    /// Wraps the output of a finished SHA-256 hasher.
    pub fn from_sha256(raw: &[u8]) -> Self {
        Self {
            hex: hex::encode(raw),
        }
    }

    /// The lowercase hex part, 64 characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Parses a digest a client asks for (GET, HEAD, DELETE of a blob): one that
    /// cannot be valid names no blob, so it is `BLOB_UNKNOWN` (404), with the
    /// reason. Only an upload with such a digest is a client error
    /// (`DIGEST_INVALID`).
    pub fn lookup(text: &str) -> Result<Self, Error> {
        text.parse().map_err(|e: Error| {
            Error::BlobUnknown(format!("{text:?} names no blob: {}", e.detail()))
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Parses `algorithm:encoded` per the OCI grammar; accepts only `sha256` with
    /// 64 lowercase hex characters.
    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::DigestInvalid(format!("{why}: {text:?}"));
        let (algorithm, encoded) = text
            .split_once(':')
            .ok_or_else(|| invalid("digest must be `algorithm:hex`"))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm.split(['+', '.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !algorithm_ok {
            return Err(invalid("malformed digest algorithm"));
        }
        if algorithm != "sha256" {
            return Err(invalid("unsupported digest algorithm (only sha256)"));
        }
        if encoded.len() != 64
            || !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid("sha256 digest must be 64 lowercase hex characters"));
        }
        Ok(Self {
            hex: encoded.to_owned(),
        })
    }
}

/// An incremental SHA-256 with a byte count, for streams.
#[derive(Default, Clone)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest::from_sha256(self.inner.finalize().as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_digest_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_malformed_and_unsupported() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            let error = bad.parse::<Digest>().unwrap_err();
            assert!(matches!(error, Error::DigestInvalid(_)), "{bad}: {error}");
        }
    }

    #[test]
    fn hasher_matches_one_shot() {
        let mut hasher = Hasher::default();
        hasher.update(b"hello ");
        hasher.update(b"world");
        assert_eq!(hasher.len(), 11);
        assert_eq!(hasher.finish(), Digest::of(b"hello world"));
    }

    proptest! {
        #[test]
        fn display_parses_back(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let digest = Digest::of(&bytes);
            prop_assert_eq!(digest.to_string().parse::<Digest>().unwrap(), digest);
        }

        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = text.parse::<Digest>();
        }
    }
}
