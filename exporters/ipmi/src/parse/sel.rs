//! `ipmi-sel --info` (entry count, free space, last addition) and
//! `ipmi-sel --comma-separated-output --output-event-state` (the entries with their state).
//!
//! ```text
//! Number of log entries                  : 5
//! Free space remaining                   : 15920 bytes
//! Recent addition timestamp              : 11/21/2026 - 20:35:00     (or "Post-Init 1917 s")
//!
//! ID,Date,Time,Name,Type,State,Event
//! 2,PostInit,PostInit,CPU1 Temp,Temperature,Critical,Upper Critical - going high ; ...
//! ```

use super::sensors::State;
use super::{kv, split_csv, timestamp, ParseError};

/// `ipmi-sel --info`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelInfo {
    /// Number of entries.
    pub entries: u64,
    /// Free space in bytes.
    pub free_bytes: u64,
    /// Last addition as Unix seconds; `None` when the BMC's clock is relative (Post-Init).
    pub last_addition: Option<f64>,
}

fn leading_u64(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

fn stamp(s: &str) -> Option<f64> {
    let (d, t) = s.split_once(" - ")?;
    timestamp(d, t)
}

/// Parses `ipmi-sel --info`; the entry count and free space are required.
pub fn parse_info(text: &str) -> Result<SelInfo, ParseError> {
    let entries = kv(text, "Number of log entries")
        .and_then(leading_u64)
        .ok_or_else(|| ParseError("no 'Number of log entries' line".into()))?;
    let free_bytes = kv(text, "Free space remaining")
        .and_then(leading_u64)
        .ok_or_else(|| ParseError("no 'Free space remaining' line".into()))?;
    Ok(SelInfo {
        entries,
        free_bytes,
        last_addition: kv(text, "Recent addition timestamp").and_then(stamp),
    })
}

/// One SEL entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Record ID.
    pub id: String,
    /// Unix seconds, when the BMC's clock is absolute.
    pub time: Option<f64>,
    /// Sensor name.
    pub name: String,
    /// Sensor type.
    pub kind: String,
    /// Event state (severity).
    pub state: State,
    /// Event text.
    pub event: String,
}

/// Parses the entries (CSV with header and State column). Malformed rows are skipped and
/// counted in the second value.
pub fn parse_entries(text: &str) -> Result<(Vec<Entry>, usize), ParseError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok((Vec::new(), 0));
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |n: &str| cols.iter().position(|c| c.eq_ignore_ascii_case(n));
    let (Some(id), Some(name), Some(kind), Some(state)) =
        (col("ID"), col("Name"), col("Type"), col("State"))
    else {
        return Err(ParseError(format!(
            "no ID,...,Name,Type,State header in {:?}",
            header.chars().take(80).collect::<String>()
        )));
    };
    let (date, time, event) = (col("Date"), col("Time"), col("Event"));
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in lines {
        let Some(f) = split_csv(line, cols.len()) else {
            skipped += 1;
            continue;
        };
        out.push(Entry {
            id: f[id].trim().to_string(),
            time: match (date, time) {
                (Some(d), Some(t)) => timestamp(f[d], f[t]),
                _ => None,
            },
            name: f[name].trim().to_string(),
            kind: f[kind].trim().to_string(),
            state: State::parse(f[state]),
            event: event.map_or(String::new(), |i| f[i].trim().to_string()),
        });
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn info_samples() {
        let i = parse_info(include_str!("../../testdata/samples/ipmi-sel-info.txt")).unwrap();
        assert_eq!((i.entries, i.free_bytes, i.last_addition), (5, 15920, None));
        let i = parse_info(include_str!(
            "../../testdata/samples/ipmi-sel-info-dated.handmade.txt"
        ))
        .unwrap();
        assert_eq!(i.entries, 3);
        assert_eq!(i.free_bytes, 65472);
        assert_eq!(i.last_addition, Some(1795293300.0));
    }

    #[test]
    fn entries_samples() {
        let (e, skipped) =
            parse_entries(include_str!("../../testdata/samples/ipmi-sel-state.csv")).unwrap();
        assert_eq!(skipped, 0);
        let states: Vec<State> = e.iter().map(|x| x.state).collect();
        assert_eq!(
            states,
            vec![
                State::Warning,
                State::Critical,
                State::Warning,
                State::Critical
            ]
        );
        assert_eq!(e[3].name, "Fan1");
        assert!(e[0].time.is_none());
        assert!(e[1].event.contains("Threshold = 90.00 C"));
        let (e, _) = parse_entries(include_str!(
            "../../testdata/samples/ipmi-sel-state-dated.handmade.csv"
        ))
        .unwrap();
        assert_eq!(e[0].kind, "Power Supply");
        assert_eq!(e[2].time, Some(1795293300.0));
        assert_eq!(e[2].state, State::Nominal);
    }

    #[test]
    fn edge_cases() {
        assert!(parse_info("").is_err());
        assert!(parse_info("Number of log entries : 3\n").is_err());
        assert_eq!(parse_entries("").unwrap().0.len(), 0);
        // The plain (non-CSV) listing has no usable header.
        assert!(parse_entries(include_str!("../../testdata/samples/ipmi-sel.txt")).is_err());
        let (e, skipped) =
            parse_entries("ID,Name,Type,State,Event\n1,a\n2,b,c,Critical,x,y\n").unwrap();
        assert_eq!((e.len(), skipped), (1, 1));
        assert_eq!(e[0].event, "x,y");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_info(&s);
            let _ = parse_entries(&s);
            let _ = parse_entries(&format!("ID,Date,Time,Name,Type,State,Event\n{s}"));
        }
    }
}
