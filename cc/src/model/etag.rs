//! Etags: CC sends `process.updated_at.to_f.to_s`, a string that looks like a float.

use serde::{Deserialize, Serialize};

/// An app's etag as CC sends it (`"1700000000.123456"`). Compared as a string,
/// never parsed: two etags are equal exactly when their strings are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Etag(pub String);

impl Etag {
    /// The etag CC derives from an `updated_at` timestamp in microseconds since the
    /// epoch: Ruby's `Float#to_s`, which always keeps a fractional part (`"12.0"`).
    pub fn from_updated_at_micros(micros: i64) -> Self {
        // Rust prints the shortest representation that round-trips, as Ruby does,
        // and never uses exponents for values of this size.
        let mut text = (micros as f64 / 1_000_000.0).to_string();
        if !text.contains('.') {
            text.push_str(".0");
        }
        Etag(text)
    }

    /// The etag as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn looks_like_ruby_float_to_s() {
        assert_eq!(Etag::from_updated_at_micros(12_000_000).as_str(), "12.0");
        assert_eq!(
            Etag::from_updated_at_micros(1_700_000_000_123_456).as_str(),
            "1700000000.123456"
        );
        assert_eq!(
            Etag::from_updated_at_micros(1_700_000_000_500_000).as_str(),
            "1700000000.5"
        );
    }

    #[test]
    fn compared_as_strings_not_numbers() {
        // 1.10 and 1.1 are the same float but different etags.
        assert_ne!(Etag("1.10".into()), Etag("1.1".into()));
    }

    proptest! {
        /// Distinct timestamps (at CC's microsecond resolution, within this
        /// century) give distinct etags, so every update is visible to the Sink.
        #[test]
        fn distinct_times_give_distinct_etags(a in 946_684_800_000_000i64..4_102_444_800_000_000, d in 1i64..1_000_000) {
            prop_assert_ne!(Etag::from_updated_at_micros(a), Etag::from_updated_at_micros(a + d));
        }

        #[test]
        fn always_has_a_fraction(a in 0i64..4_102_444_800_000_000) {
            prop_assert!(Etag::from_updated_at_micros(a).as_str().contains('.'));
        }
    }
}
