//! Parsers for the text output of the Slurm commands the poller runs, one file per command.
//!
//! Every parser is a pure function from the command's stdout to plain data. They never panic:
//! malformed lines are skipped (and counted where that is useful), unknown states and flags
//! are kept as they are, `N/A`, `(null)` and empty fields become `None`, and numbers too big
//! for an integer are still read as `f64`. The output formats are the explicit `-O`/`-o`
//! strings in [`crate::poller`], with a `|` delimiter and the only free-text field last.

pub mod licenses;
pub mod reservations;
pub mod scontrol_config;
pub mod sdiag;
pub mod sinfo;
pub mod squeue;
pub mod sshare;
pub mod state;
pub mod tres;

/// `None` for Slurm's spellings of "nothing": empty, `N/A`, `n/a`, `(null)`, `none`.
pub fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    match t {
        "" | "N/A" | "n/a" | "(null)" | "None" | "none" | "n/s" => None,
        _ => Some(t),
    }
}

/// A number, or `None` (`N/A`, empty, garbage). Accepts huge values and decimals.
pub fn number(s: &str) -> Option<f64> {
    let t = non_empty(s)?;
    let v: f64 = t.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A memory amount in bytes: a number with an optional `K`/`M`/`G`/`T`/`P` suffix (binary
/// units, as Slurm prints them); without a suffix the number is in `default_unit` bytes
/// (Slurm's plain memory numbers are megabytes).
pub fn memory_bytes(s: &str, default_unit: f64) -> Option<f64> {
    let t = non_empty(s)?;
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1024f64,
                'M' => 1024f64.powi(2),
                'G' => 1024f64.powi(3),
                'T' => 1024f64.powi(4),
                'P' => 1024f64.powi(5),
                _ => return None,
            };
            (&t[..i], m)
        }
        _ => (t, default_unit),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

/// Seconds since the epoch of a Slurm timestamp printed with `SLURM_TIME_FORMAT=standard`
/// (`2026-11-22T20:36:04`, the local time of the machine running the command); `None` for
/// `Unknown`, `N/A`, `None` and garbage.
pub fn local_time_seconds(s: &str) -> Option<f64> {
    use chrono::TimeZone;
    let t = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S").ok()?;
    let dt = chrono::Local.from_local_datetime(&t).earliest()?;
    Some(dt.timestamp() as f64)
}

/// Seconds of a Slurm duration as `squeue`/`sinfo` print time limits: `[days-]hours:minutes:seconds`,
/// `minutes:seconds`, `minutes`, or `days-hours[:minutes]`. `None` for `UNLIMITED`,
/// `Partition_Limit`, `INVALID`, `NOT_SET`, `N/A` and garbage.
pub fn duration_seconds(s: &str) -> Option<f64> {
    let t = non_empty(s)?;
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(d.parse::<f64>().ok()?), r)
        }
        Some(_) => return None,
        None => (None, t),
    };
    let mut parts = [0f64; 3];
    let n = rest.split(':').count();
    if n == 0 || n > 3 {
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

/// One megabyte, the unit of Slurm's unsuffixed memory numbers.
pub const MB: f64 = 1024.0 * 1024.0;

/// Splits `line` into exactly `N` fields at `|`: the last field takes the rest of the line
/// (so a free-text field may contain `|`). `None` if there are fewer than `N` fields.
pub fn split_fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let b = line.as_bytes();
    let mut start = 0;
    let mut k = 0;
    if N == 0 {
        return Some(out);
    }
    for (i, &c) in b.iter().enumerate() {
        if c == b'|' && k + 1 < N {
            out[k] = &line[start..i];
            k += 1;
            start = i + 1;
        }
    }
    if k + 1 != N {
        return None;
    }
    out[N - 1] = &line[start..];
    Some(out)
}

/// Splits at `sep` outside parentheses: `gpu:a100:1(IDX:0,2),mps:0` gives two items.
pub fn split_outside_parens(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = (depth - 1).max(0),
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Key=value pairs of one `scontrol -o show ...` line. Values run to the next ` Key=`
/// (a value may contain spaces, e.g. a reason); keys start with an uppercase letter.
pub fn key_values(line: &str) -> Vec<(&str, &str)> {
    // Find the starts of all `Key=` tokens (preceded by start or a space).
    let b = line.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (i == 0 || b[i - 1] == b' ') && b[i].is_ascii_alphabetic() {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'/' || b[j] == b':')
            {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' && j > i {
                starts.push((i, j));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(ks, eq)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|&(s, _)| s).unwrap_or(line.len());
        out.push((&line[ks..eq], line[eq + 1..end].trim_end()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(memory_bytes("2000", MB), Some(2000.0 * MB));
        assert_eq!(memory_bytes("8G", MB), Some(8.0 * 1024.0 * MB));
        assert_eq!(memory_bytes("1.5T", MB), Some(1.5 * 1024f64.powi(4)));
        assert_eq!(memory_bytes("512K", MB), Some(512.0 * 1024.0));
        assert_eq!(memory_bytes("N/A", MB), None);
        assert_eq!(memory_bytes("12X", MB), None);
        assert_eq!(memory_bytes("-1", MB), None);
        assert_eq!(memory_bytes("", MB), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(number("18446744073709551615"), Some(18446744073709551615.0));
        assert_eq!(number("0.72"), Some(0.72));
        assert_eq!(number("N/A"), None);
        assert_eq!(number("inf"), None);
    }

    #[test]
    fn parens_and_keys() {
        assert_eq!(
            split_outside_parens("gpu:a100:1(IDX:0,2),mps:0", ','),
            vec!["gpu:a100:1(IDX:0,2)", "mps:0"]
        );
        let kv = key_values("LicenseName=matlab Total=4 Used=0 Reason=a b c Flags=X");
        assert_eq!(
            kv,
            vec![
                ("LicenseName", "matlab"),
                ("Total", "4"),
                ("Used", "0"),
                ("Reason", "a b c"),
                ("Flags", "X")
            ]
        );
        assert_eq!(split_fields::<3>("a|b|c|d"), Some(["a", "b", "c|d"]));
        assert_eq!(split_fields::<3>("a|b"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("1-00:00:00"), Some(86400.0));
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
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use crate::poller::{parse_output, Source};

    fn slurmish() -> impl Strategy<Value = String> {
        // Lines built from the characters Slurm output is made of, plus anything.
        prop_oneof![
            proptest::collection::vec("[a-zA-Z0-9_|=:,/()*~#$@^%!+. \\-\\[\\]]{0,80}", 0..20)
                .prop_map(|v| v.join("\n")),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in slurmish()) {
            for src in crate::poller::Source::ALL {
                let _ = parse_output(src, &s);
            }
            let _ = super::state::parse_node_state(&s);
            let _ = super::tres::parse_tres(&s);
            let _ = super::tres::gres_gpus(&s);
            let _ = super::memory_bytes(&s, super::MB);
            let _ = super::key_values(&s);
            let _ = super::local_time_seconds(&s);
        }

        #[test]
        fn squeue_lines_with_random_fields_parse_or_skip(fields in proptest::collection::vec("[^\n]{0,30}", 13)) {
            let line = fields.join("|");
            let _ = super::squeue::parse(&line);
            let _ = super::sinfo::parse(&line);
            let _ = parse_output(Source::Sshare, &line);
        }

        #[test]
        fn tres_numbers_roundtrip(cpu in 0u64..1_000_000_000, gpus in 0u32..100_000, mem_g in 0u32..100_000) {
            let t = super::tres::parse_tres(&format!("cpu={cpu},mem={mem_g}G,node=1,billing=1,gres/gpu={gpus}"));
            prop_assert_eq!(t.cpus, cpu as f64);
            prop_assert_eq!(t.gpus, gpus as f64);
            prop_assert_eq!(t.memory_bytes, mem_g as f64 * 1024.0 * super::MB);
        }
    }
}
