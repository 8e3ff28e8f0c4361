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

pub use hpcmon_kit::slurm_text::{duration_seconds, memory_bytes, split_fields, MB};

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

/// Seconds since the epoch of a Slurm timestamp printed with `SLURM_TIME_FORMAT=standard`
/// (`2026-11-22T20:36:04`, the local time of the machine running the command); `None` for
/// `Unknown`, `N/A`, `None` and garbage.
pub fn local_time_seconds(s: &str) -> Option<f64> {
    use chrono::TimeZone;
    let t = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S").ok()?;
    let dt = chrono::Local.from_local_datetime(&t).earliest()?;
    Some(dt.timestamp() as f64)
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
