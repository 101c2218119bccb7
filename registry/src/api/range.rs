//! `Range: bytes=...` on blob reads (one range; a multi-range request gets the
//! whole blob, which RFC 9110 allows).

use std::ops::Range;

use crate::Error;

/// The byte range a `Range` header asks of a blob of `size` bytes; `None`
/// serves the whole blob.
pub fn parse(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, Error> {
    let Some(header) = header else {
        return Ok(None);
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let invalid = || Error::RangeInvalid(format!("{header:?} for a blob of {size} bytes"));
    let (start, end) = spec.split_once('-').ok_or_else(invalid)?;
    let number = |text: &str| text.trim().parse::<u64>().map_err(|_| invalid());
    let range = match (start.trim(), end.trim()) {
        ("", "") => return Err(invalid()),
        ("", suffix) => {
            let suffix = number(suffix)?;
            if suffix == 0 {
                return Err(invalid());
            }
            size.saturating_sub(suffix)..size
        }
        (start, "") => number(start)?..size,
        (start, end) => {
            let (start, end) = (number(start)?, number(end)?);
            if end < start {
                return Err(invalid());
            }
            start..end.saturating_add(1).min(size)
        }
    };
    if range.start >= size {
        return Err(invalid());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10).unwrap(), None);
        assert_eq!(parse(Some("bytes=0-3"), 10).unwrap(), Some(0..4));
        assert_eq!(parse(Some("bytes=5-"), 10).unwrap(), Some(5..10));
        assert_eq!(parse(Some("bytes=-3"), 10).unwrap(), Some(7..10));
        assert_eq!(parse(Some("bytes=8-100"), 10).unwrap(), Some(8..10));
        assert_eq!(parse(Some("bytes=0-1,4-5"), 10).unwrap(), None);
        for bad in ["bytes=10-", "bytes=5-2", "bytes=-0", "bytes=a-b", "bytes=-"] {
            assert!(
                matches!(parse(Some(bad), 10), Err(Error::RangeInvalid(_))),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn satisfiable_ranges_lie_inside(size in 1u64..1000, a in 0u64..1200, b in 0u64..1200) {
            if let Ok(Some(range)) = parse(Some(&format!("bytes={a}-{b}")), size) {
                prop_assert!(range.start < range.end && range.end <= size);
                prop_assert_eq!(range.start, a);
            }
        }
    }
}
