//! Repository names and manifest references (tags or digests), validated per
//! the OCI distribution spec grammar.

use std::fmt;

use crate::{Digest, Error};

/// Longest repository name accepted (the spec's interoperability bound).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag accepted.
pub const MAX_TAG_LEN: usize = 128;

/// A validated repository name such as `cloudfoundry/6a1c...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates `text` against
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.is_empty() || text.len() > MAX_NAME_LEN {
            return Err(Error::NameInvalid(format!(
                "repository name must be 1 to {MAX_NAME_LEN} characters: {text:?}"
            )));
        }
        if !text.split('/').all(component_ok) {
            return Err(Error::NameInvalid(format!(
                "repository name must be lowercase path components of [a-z0-9] joined by `.`, `_`, `__` or dashes: {text:?}"
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators between alphanumeric runs: `.`, `_`, `__`, or any number of `-`.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Validates a tag.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_TAG_LEN
            && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::ReferenceInvalid(format!(
                "tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}: {text:?}"
            )))
        }
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable content digest.
    Digest(Digest),
}

impl Reference {
    /// A digest if the text contains `:`, otherwise a tag.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.contains(':') {
            Ok(Self::Digest(text.parse()?))
        } else {
            Ok(Self::Tag(Tag::parse(text)?))
        }
    }

    /// Parses a reference a client asks for (GET, HEAD, DELETE): one that cannot
    /// be valid names no manifest, so it is `MANIFEST_UNKNOWN` (404), with the
    /// reason, as the distribution spec's conformance suite and clients expect.
    /// Only a push of such a reference is a client error (`MANIFEST_INVALID`).
    pub fn lookup(text: &str) -> Result<Self, Error> {
        Self::parse(text).map_err(|e| {
            Error::ManifestUnknown(format!("{text:?} names no manifest: {}", e.detail()))
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(tag) => tag.fmt(f),
            Self::Digest(digest) => digest.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_spec_names() {
        for good in [
            "a",
            "library/busybox",
            "cloudfoundry/6a1c0f7e-3b2d-4c1e-9f00-0123456789ab",
            "a.b_c__d---e/f0",
            "x/y/z",
        ] {
            assert!(Name::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/_manifests",
            "a/../b",
            "a b",
            &"a".repeat(256),
        ] {
            assert!(
                matches!(Name::parse(bad), Err(Error::NameInvalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(&Digest::of(b"x").to_string()),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(
            Reference::parse(".hidden"),
            Err(Error::ReferenceInvalid(_))
        ));
        assert!(matches!(
            Reference::parse(&"t".repeat(129)),
            Err(Error::ReferenceInvalid(_))
        ));
        assert!(matches!(
            Reference::parse("sha256:zz"),
            Err(Error::DigestInvalid(_))
        ));
    }

    proptest! {
        #[test]
        fn generated_names_are_valid(name in "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}(/[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}){0,3}") {
            prop_assert!(Name::parse(&name).is_ok());
        }

        #[test]
        fn valid_names_are_safe_path_keys(text in "[a-z0-9._/-]{1,40}") {
            if let Ok(name) = Name::parse(&text) {
                for component in name.as_str().split('/') {
                    prop_assert!(component != "." && component != ".." && !component.is_empty());
                    prop_assert!(!component.starts_with('_'));
                }
            }
        }

        #[test]
        fn valid_tags_are_single_safe_path_components(text in "[a-zA-Z0-9._/-]{1,20}") {
            if let Ok(tag) = Tag::parse(&text) {
                prop_assert!(!tag.as_str().contains('/'));
                prop_assert!(!tag.as_str().starts_with('.'));
            }
        }
    }
}
