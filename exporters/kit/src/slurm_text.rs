//! Fields of Slurm's text output, shared by the Slurm exporter and `hpcmon-jobstats`: one
//! line split at `|` (`-P`/`-O` formats with the free-text field last), memory amounts with
//! Slurm's binary suffixes, and durations as Slurm prints time limits. Pure functions that
//! never panic; Slurm's spellings of "nothing" (`N/A`, `UNLIMITED`, `(null)`, ...) give `None`.

/// One megabyte, the unit of Slurm's unsuffixed memory numbers.
pub const MB: f64 = 1024.0 * 1024.0;

/// Splits `line` into exactly `N` fields at `|`: the last field takes the rest of the line
/// (so a free-text field printed last may contain `|`). `None` if there are fewer than `N`.
pub fn split_fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut it = line.splitn(N, '|');
    for o in out.iter_mut() {
        *o = it.next()?;
    }
    Some(out)
}

/// A memory amount in bytes: a number with an optional `K`/`M`/`G`/`T`/`P` suffix (binary
/// units, as Slurm prints them); without a suffix the number is in `default_unit` bytes
/// (Slurm's plain memory numbers are megabytes: [`MB`]).
pub fn memory_bytes(s: &str, default_unit: f64) -> Option<f64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let p = match c.to_ascii_uppercase() {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                'P' => 5,
                _ => return None,
            };
            (&t[..i], 1024f64.powi(p))
        }
        _ => (t, default_unit),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

/// Seconds of a Slurm duration as `squeue`/`sinfo`/`sacct` print time limits:
/// `[days-]hours:minutes:seconds`, `minutes:seconds`, `minutes`, or `days-hours[:minutes]`.
/// `None` for `UNLIMITED`, `Partition_Limit`, `INVALID`, `NOT_SET`, `N/A` and garbage.
pub fn duration_seconds(s: &str) -> Option<f64> {
    let t = s.trim();
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(d.parse::<f64>().ok()?), r)
        }
        Some(_) => return None,
        None => (None, t),
    };
    let mut parts = [0f64; 3];
    let n = rest.split(':').count();
    if n > 3 {
        return None;
    }
    for (i, p) in rest.split(':').enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parts[i] = p.parse().ok()?;
    }
    let secs = match (days, n) {
        // With days: hours[:minutes[:seconds]].
        (Some(d), _) => d * 86400.0 + parts[0] * 3600.0 + parts[1] * 60.0 + parts[2],
        (None, 1) => parts[0] * 60.0,
        (None, 2) => parts[0] * 60.0 + parts[1],
        (None, _) => parts[0] * 3600.0 + parts[1] * 60.0 + parts[2],
    };
    secs.is_finite().then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields() {
        assert_eq!(split_fields::<3>("a|b|c|d"), Some(["a", "b", "c|d"]));
        assert_eq!(split_fields::<3>("a|b"), None);
        assert_eq!(split_fields::<1>("a|b"), Some(["a|b"]));
    }

    #[test]
    fn memory_units() {
        assert_eq!(memory_bytes("2000", MB), Some(2000.0 * MB));
        assert_eq!(memory_bytes("8G", MB), Some(8.0 * 1024.0 * MB));
        assert_eq!(memory_bytes("1.5T", MB), Some(1.5 * 1024f64.powi(4)));
        assert_eq!(memory_bytes("512K", MB), Some(512.0 * 1024.0));
        assert_eq!(memory_bytes(" 4000M ", MB), Some(4000.0 * MB));
        for bad in ["N/A", "(null)", "none", "12X", "-1", "-1M", ""] {
            assert_eq!(memory_bytes(bad, MB), None, "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("1-00:00:00"), Some(86400.0));
        assert_eq!(duration_seconds("1-02:03:04"), Some(93784.0));
        assert_eq!(duration_seconds("2-12"), Some(2.5 * 86400.0));
        assert_eq!(duration_seconds("01:30:05"), Some(5405.0));
        assert_eq!(duration_seconds("10:00"), Some(600.0));
        assert_eq!(duration_seconds("45"), Some(2700.0));
        for bad in [
            "UNLIMITED",
            "Partition_Limit",
            "INVALID",
            "NOT_SET",
            "N/A",
            "Unknown",
            "",
            "1:2:3:4",
            "-1:00",
            "a-1",
            "1:-2",
        ] {
            assert_eq!(duration_seconds(bad), None, "{bad:?}");
        }
        assert_eq!(
            duration_seconds("99999999999999999999-0"),
            Some(99999999999999999999.0 * 86400.0)
        );
    }

    proptest! {
        #[test]
        fn never_panic(s in "\\PC*") {
            let _ = memory_bytes(&s, MB);
            let _ = duration_seconds(&s);
            let _ = split_fields::<4>(&s);
        }
    }
}
