//! Parsers for FreeIPMI's outputs: pure functions from text to values, one file per tool.
//!
//! None of them panics on any input (each file has a proptest saying so); text they do not
//! understand is an error or is skipped, never a guess.

pub mod bmc_info;
pub mod chassis;
pub mod dcmi;
pub mod sel;
pub mod sensors;
pub mod watchdog;

/// Output that does not look like the tool's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected output: {0}")]
pub struct ParseError(pub String);

/// `Key : Value` lines (FreeIPMI's plain output) → the value of the first line whose key
/// equals `key` (case-insensitive, surrounding spaces ignored).
pub(crate) fn kv<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Splits one FreeIPMI comma-separated line into exactly `n` fields; the last field takes
/// the rest of the line (FreeIPMI does not quote, and event texts may contain commas).
/// `None` when there are fewer than `n` fields.
pub(crate) fn split_csv(line: &str, n: usize) -> Option<Vec<&str>> {
    if n == 0 {
        return None;
    }
    let v: Vec<&str> = line.splitn(n, ',').collect();
    (v.len() == n).then_some(v)
}

/// A FreeIPMI number: `45.00`, `N/A` → `None`.
pub(crate) fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("n/a") || s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// FreeIPMI's `MM/DD/YYYY` and `HH:MM:SS` (the BMC's clock, taken as UTC) → Unix seconds.
/// `PostInit` and other relative stamps → `None`.
pub(crate) fn timestamp(date: &str, time: &str) -> Option<f64> {
    let mut d = date.trim().split('/');
    let (mo, da, ye) = (d.next()?, d.next()?, d.next()?);
    let (mo, da, ye): (u32, u32, i64) = (mo.parse().ok()?, da.parse().ok()?, ye.parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || !(1970..=9999).contains(&ye) {
        return None;
    }
    let mut t = time.trim().split(':');
    let (h, mi, s) = (t.next()?, t.next()?, t.next()?);
    let (h, mi, s): (u32, u32, u32) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(ye, mo, da);
    Some((days * 86400 + (h * 3600 + mi * 60 + s) as i64) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            kv("A : 1\nFree space : 2 bytes\n", "free SPACE"),
            Some("2 bytes")
        );
        assert_eq!(kv("nothing", "x"), None);
        assert_eq!(split_csv("a,b,c,d", 3), Some(vec!["a", "b", "c,d"]));
        assert_eq!(split_csv("a", 3), None);
        assert_eq!(number("N/A"), None);
        assert_eq!(number(" 12.50 "), Some(12.5));
        assert_eq!(number("nan"), None);
        assert_eq!(timestamp("01/01/1970", "00:00:00"), Some(0.0));
        assert_eq!(timestamp("11/21/2026", "20:34:00"), Some(1795293240.0));
        assert_eq!(timestamp("PostInit", "PostInit"), None);
        assert_eq!(timestamp("13/01/2026", "00:00:00"), None);
    }
}
