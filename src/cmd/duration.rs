//! Durations on the command line, for every subcommand: `500ms`, `15s`, `2m`,
//! `1h`, `2d`, or plain seconds.

use std::time::Duration;

/// Parses `500ms`, `15s`, `2m`, `1h`, `2d` or plain seconds (`7`). Zero is a
/// duration (`--grace 0`: nothing is young enough to keep); flags for which
/// it is meaningless parse with [`positive`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 15s, 2m, 1h or 2d"))?;
    let seconds = |per: u64| Duration::from_secs(value.saturating_mul(per));
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "d" => Ok(seconds(86_400)),
        other => Err(format!(
            "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
        )),
    }
}

/// [`parse`], refusing zero: for intervals, timeouts and lease durations.
pub fn positive(text: &str) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?}: the duration must be more than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse(" 30m "), Ok(Duration::from_secs(1800)));
    }

    #[test]
    fn zero_is_a_duration_but_not_a_positive_one() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert!(positive("0s").unwrap_err().contains("more than zero"));
        assert_eq!(positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn bad_text_is_named() {
        assert!(parse("soon").unwrap_err().contains("\"soon\""));
        assert!(parse("h").is_err());
        assert!(parse("1w").unwrap_err().contains("unknown unit"));
        assert!(parse("-1s").is_err());
    }
}
