//! `textfile` collector: metrics from every `*.prom` file in `--collector.textfile.directory`,
//! plus `node_textfile_mtime_seconds{file}` and `node_textfile_scrape_error`.
//!
//! Files are parsed with a full Prometheus text-format (0.0.4) parser ([`parse`]): `# HELP`
//! (with `\\` and `\n` escapes), `# TYPE`, comments, label values with `\\`, `\"` and `\n`
//! escapes, `NaN`/`+Inf`/`-Inf` values, counters, gauges, untyped, histograms and summaries.
//! As in node_exporter 1.5:
//! - a file that does not parse, or that has a sample with a client-side **timestamp**, is
//!   skipped entirely and sets `node_textfile_scrape_error 1`; the other files are still served;
//! - a family without `# HELP` gets the help `Metric read from <path>`;
//! - samples of one family that lack some of the family's label names get them as `""`;
//! - labels are written sorted by name, and `node_textfile_mtime_seconds{file}` carries the
//!   file's full path and its mtime in whole seconds, for successfully read files only.
//!
//! **Summaries.** The kit's metric model has no summary type, so a summary `X` is exposed as
//! three untyped families with exactly the series names a summary has: `X{quantile=...}`,
//! `X_sum` and `X_count`. Prometheus stores the same series; only the `# TYPE` line differs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use hpcmon_kit::metrics::MetricType;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// Flags of the `textfile` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Directory to read text files with metrics from (every `*.prom` file in it).
    #[arg(
        long = "collector.textfile.directory",
        default_value = "/var/lib/prometheus/node-exporter"
    )]
    pub directory: PathBuf,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            directory: PathBuf::from("/var/lib/prometheus/node-exporter"),
        }
    }
}

/// Builds the `textfile` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Textfile {
        dir: cfg.flags::<Flags>()?.directory.clone(),
    }))
}

/// The `textfile` collector.
pub struct Textfile {
    dir: PathBuf,
}

/// The declared type of a family in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `untyped` (or no TYPE line)
    Untyped,
    /// `histogram`
    Histogram,
    /// `summary`
    Summary,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The sample's own name (`x_bucket`, `x_sum`, ...).
    pub name: String,
    /// Labels in file order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A parsed family: name, help, type and its sample lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFamily {
    /// Family name (for histograms and summaries, without the suffixes).
    pub name: String,
    /// `# HELP` text, unescaped.
    pub help: Option<String>,
    /// Declared type.
    pub kind: Kind,
    /// Sample lines in file order.
    pub lines: Vec<Line>,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            let b = s.as_bytes();
            // Rust also accepts "infinity" and friends; the format does not.
            if b.is_empty() || !b.iter().all(|c| c.is_ascii_digit() || b"+-.eE".contains(c)) {
                return None;
            }
            s.parse().ok()
        }
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Length of the first blank-delimited token of `s`.
fn value_len(s: &str) -> usize {
    s.find([' ', '\t']).unwrap_or(s.len())
}

/// Parses one sample line; `Err` says why it is invalid, `Ok(Some(ts))` in the second field
/// when it carries a timestamp.
fn parse_sample(line: &str) -> Result<(Line, bool), String> {
    let b = line.as_bytes();
    let mut i = 0;
    if b.is_empty() || !is_name_start(b[0]) {
        return Err("invalid metric name".into());
    }
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    let name = line[..i].to_owned();
    let mut labels: Vec<(String, String)> = Vec::new();
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label set".into());
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let start = i;
            if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(format!("invalid label name for metric {name:?}"));
            }
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let lname = &line[start..i];
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' {
                return Err(format!("expected '=' after label name {lname:?}"));
            }
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() || b[i] != b'"' {
                return Err(format!("expected '\"' for label {lname:?}"));
            }
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            let mut seg = i;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        value.push_str(&line[seg..i]);
                        i += 1;
                        closed = true;
                        break;
                    }
                    b'\\' => {
                        value.push_str(&line[seg..i]);
                        match b.get(i + 1) {
                            Some(b'\\') => value.push('\\'),
                            Some(b'"') => value.push('"'),
                            Some(b'n') => value.push('\n'),
                            _ => return Err("invalid escape in label value".into()),
                        }
                        i += 2;
                        seg = i;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return Err("unterminated label value".into());
            }
            if labels.iter().any(|(k, _)| k == lname) {
                return Err(format!("duplicate label name {lname:?}"));
            }
            labels.push((lname.to_owned(), value));
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' in label set".into()),
            }
        }
    }
    // Like expfmt: blanks after the value announce a timestamp, which must then follow.
    let blank = |c: char| c == ' ' || c == '\t';
    let rest = line[i..].trim_start_matches(blank);
    let (value, after) = rest.split_once(blank).unwrap_or((rest, ""));
    if value.is_empty() {
        return Err(format!("missing value for metric {name:?}"));
    }
    let value = parse_value(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    let ts = if rest.len() == value_len(rest) {
        false
    } else {
        let after = after.trim_start_matches(blank);
        let (t, tail) = after.split_once(blank).unwrap_or((after, ""));
        if t.is_empty() {
            return Err("expected integer as timestamp".into());
        }
        t.parse::<i64>()
            .map_err(|_| format!("invalid timestamp {t:?}"))?;
        if !tail.trim_matches(blank).is_empty() {
            return Err("trailing characters after sample".into());
        }
        true
    };
    Ok((
        Line {
            name,
            labels,
            value,
        },
        ts,
    ))
}

/// Which declared family a sample name belongs to (`x_bucket` → `x` when `x` is a histogram).
fn owner<'a>(name: &'a str, kinds: &BTreeMap<String, Kind>) -> &'a str {
    for (suffix, for_kinds) in [
        ("_bucket", &[Kind::Histogram][..]),
        ("_sum", &[Kind::Histogram, Kind::Summary][..]),
        ("_count", &[Kind::Histogram, Kind::Summary][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if kinds.get(base).is_some_and(|k| for_kinds.contains(k)) {
                return base;
            }
        }
    }
    name
}

/// Parses a whole file in the text format. Any syntax error, a timestamp, a second TYPE or HELP
/// for a family, or a TYPE after its samples rejects the file, like node_exporter does.
pub fn parse(text: &str) -> Result<Vec<ParsedFamily>, String> {
    let mut fams: Vec<ParsedFamily> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    let mut typed: BTreeMap<String, bool> = BTreeMap::new();
    let get = |fams: &mut Vec<ParsedFamily>, index: &mut BTreeMap<String, usize>, name: &str| {
        *index.entry(name.to_owned()).or_insert_with(|| {
            fams.push(ParsedFamily {
                name: name.to_owned(),
                help: None,
                kind: Kind::Untyped,
                lines: Vec::new(),
            });
            fams.len() - 1
        })
    };
    for (n, raw) in text.lines().enumerate() {
        // Trailing blanks matter in HELP text (kept, as expfmt does) but not elsewhere.
        let line = raw.trim_start_matches([' ', '\t']).trim_end_matches('\r');
        let err = |m: String| format!("line {}: {m}", n + 1);
        if line.trim_end_matches([' ', '\t']).is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim_start_matches([' ', '\t']);
            let (kw, rest) = c.split_once([' ', '\t']).unwrap_or((c, ""));
            if kw != "HELP" && kw != "TYPE" {
                continue; // plain comment
            }
            let rest = rest.trim_start_matches([' ', '\t']);
            let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            let nb = name.as_bytes();
            if nb.is_empty() || !is_name_start(nb[0]) || !nb.iter().all(|&c| is_name_char(c)) {
                return Err(err(format!("invalid metric name in {kw} line")));
            }
            let i = get(&mut fams, &mut index, name);
            if kw == "HELP" {
                if fams[i].help.is_some() {
                    return Err(err(format!("second HELP line for metric name {name:?}")));
                }
                fams[i].help = Some(unescape_help(arg.trim_start_matches([' ', '\t'])));
            } else {
                if typed.contains_key(name) || !fams[i].lines.is_empty() {
                    return Err(err(format!(
                        "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                    )));
                }
                let kind = match arg.trim() {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "untyped" => Kind::Untyped,
                    "histogram" => Kind::Histogram,
                    "summary" => Kind::Summary,
                    other => return Err(err(format!("unknown metric type {other:?}"))),
                };
                fams[i].kind = kind;
                kinds.insert(name.to_owned(), kind);
                typed.insert(name.to_owned(), true);
            }
            continue;
        }
        let (sample, ts) = parse_sample(line).map_err(err)?;
        if ts {
            return Err("contains unsupported client-side timestamps".into());
        }
        let fam = owner(&sample.name, &kinds).to_owned();
        let i = get(&mut fams, &mut index, &fam);
        match fams[i].kind {
            Kind::Histogram if sample.name.ends_with("_bucket") => {
                let le = sample.labels.iter().find(|(k, _)| k == "le");
                if le.and_then(|(_, v)| parse_value(v)).is_none() {
                    return Err(err(format!("bucket of {fam:?} without a valid le label")));
                }
            }
            Kind::Summary if sample.name == fam => {
                let q = sample.labels.iter().find(|(k, _)| k == "quantile");
                if q.and_then(|(_, v)| parse_value(v)).is_none() {
                    return Err(err(format!(
                        "summary {fam:?} sample without a valid quantile"
                    )));
                }
            }
            Kind::Histogram if sample.name == fam => {
                return Err(err(format!("histogram {fam:?} has a plain sample")));
            }
            _ => {}
        }
        fams[i].lines.push(sample);
    }
    fams.retain(|f| !f.lines.is_empty());
    Ok(fams)
}

type Labels = Vec<(String, String)>;
/// A histogram's buckets, sum and count while they are gathered.
type HistogramParts = (Vec<(f64, u64)>, f64, u64);

/// Sorted labels with every `names` entry present (missing ones as `""`), minus `skip`.
fn full_labels(l: &Line, names: &[String], skip: &str) -> Vec<(String, String)> {
    names
        .iter()
        .filter(|n| n.as_str() != skip)
        .map(|n| {
            let v = l
                .labels
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (n.clone(), v)
        })
        .collect()
}

/// Adds a parsed file's families to `out`, with node_exporter's defaults for help and labels.
pub fn emit(fams: Vec<ParsedFamily>, path: &str, out: &mut MetricSet) {
    for f in fams {
        let help = f
            .help
            .clone()
            .unwrap_or_else(|| format!("Metric read from {path}"));
        // Every label name used in the family, sorted: samples lacking one get "".
        let mut names: Vec<String> = f
            .lines
            .iter()
            .flat_map(|l| l.labels.iter().map(|(k, _)| k.clone()))
            .collect();
        names.sort();
        names.dedup();
        match f.kind {
            Kind::Histogram => {
                // Group bucket/sum/count lines by their label set without `le`.
                let mut groups: BTreeMap<Labels, HistogramParts> = BTreeMap::new();
                for l in &f.lines {
                    let key = full_labels(l, &names, "le");
                    let g = groups.entry(key).or_default();
                    if l.name.ends_with("_bucket") && l.name.len() == f.name.len() + 7 {
                        let le = l
                            .labels
                            .iter()
                            .find(|(k, _)| k == "le")
                            .and_then(|(_, v)| parse_value(v))
                            .unwrap_or(f64::INFINITY);
                        g.0.push((le, l.value.max(0.0) as u64));
                    } else if l.name.ends_with("_sum") {
                        g.1 = l.value;
                    } else {
                        g.2 = l.value.max(0.0) as u64;
                    }
                }
                let fam = out.family_dyn(&f.name, &help, MetricType::Histogram);
                for (labels, (mut buckets, sum, count)) in groups {
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    fam.histogram(labels, buckets, sum, count);
                }
            }
            Kind::Summary => {
                for l in &f.lines {
                    let (name, skip) = if l.name == f.name {
                        (f.name.clone(), "")
                    } else {
                        (l.name.clone(), "quantile")
                    };
                    let labels = full_labels(l, &names, skip);
                    out.family_dyn(&name, &help, MetricType::Untyped)
                        .sample_owned(labels, l.value);
                }
            }
            kind => {
                let t = match kind {
                    Kind::Counter => MetricType::Counter,
                    Kind::Gauge => MetricType::Gauge,
                    _ => MetricType::Untyped,
                };
                let fam = out.family_dyn(&f.name, &help, t);
                for l in &f.lines {
                    fam.sample_owned(full_labels(l, &names, ""), l.value);
                }
            }
        }
    }
}

/// Reads `path` if it is a regular file (`Ok(Some)`); a directory reads as empty, as in
/// node_exporter. Any other kind of file (FIFO, socket, device) gives `Ok(None)` without
/// blocking: the file is opened with `O_NONBLOCK` and its type checked on the open handle,
/// so a file swapped for a FIFO between listing and reading cannot block either.
fn read_regular(path: &std::path::Path) -> std::io::Result<Option<(std::fs::Metadata, Vec<u8>)>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let m = std::fs::metadata(path)?;
    if m.is_dir() {
        return Ok(Some((m, Vec::new())));
    }
    if !m.is_file() {
        return Ok(None);
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut bytes)?;
    Ok(Some((m, bytes)))
}

impl Collector for Textfile {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mut errored = false;
        let mut mtimes: Vec<(String, f64)> = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Err(e) => {
                errored = true;
                tracing::error!(path = %self.dir.display(), error = %e, "failed to read textfile collector directory");
            }
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".prom"))
                    .map(|e| e.path())
                    .collect();
                files.sort();
                for path in files {
                    let shown = path.to_string_lossy().into_owned();
                    let (meta, bytes) = match read_regular(&path) {
                        Ok(Some(x)) => x,
                        Ok(None) => {
                            // A FIFO, socket or device named *.prom: reading it could block
                            // the scrape forever, so it is skipped and reported.
                            errored = true;
                            tracing::error!(file = %shown, "skipping textfile: not a regular file");
                            continue;
                        }
                        Err(e) => {
                            errored = true;
                            tracing::error!(file = %shown, error = %e, "failed to read textfile");
                            continue;
                        }
                    };
                    let text = String::from_utf8_lossy(&bytes);
                    match parse(&text) {
                        Ok(fams) => {
                            emit(fams, &shown, out);
                            let mtime = meta
                                .modified()
                                .ok()
                                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                                .map(|d| d.as_secs() as f64)
                                .unwrap_or(0.0);
                            mtimes.push((shown, mtime));
                        }
                        Err(e) => {
                            errored = true;
                            tracing::error!(file = %shown, error = %e, "failed to parse textfile data");
                        }
                    }
                }
            }
        }
        let fam = out.gauge(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
        );
        for (file, t) in mtimes {
            fam.sample(&[("file", &file)], t);
        }
        out.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
        )
        .sample(&[], if errored { 1.0 } else { 0.0 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn parses_types_escapes_and_fills_labels() {
        let f = parse(
            "# HELP a Help with \\\\ and \\n.\n# TYPE a counter\na_total 1\na{x=\"q\\\"\\\\\\n\",} 2\n\
             # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
             plain -Inf\n",
        )
        .unwrap();
        assert_eq!(f.len(), 4);
        let a = f.iter().find(|x| x.name == "a").unwrap();
        assert_eq!(a.help.as_deref(), Some("Help with \\ and \n."));
        assert_eq!(a.lines[0].labels, vec![("x".into(), "q\"\\\n".into())]);
        assert!(f.iter().any(|x| x.name == "a_total"));
        let h = f.iter().find(|x| x.name == "h").unwrap();
        assert_eq!(h.kind, Kind::Histogram);
        assert_eq!(h.lines.len(), 4);
    }

    #[test]
    fn rejects_what_node_exporter_rejects() {
        for bad in [
            "x 1 1700000000000\n",
            "broken{ 1\n",
            "x{a=\"1\",a=\"2\"} 1\n",
            "x{a=\"1} 1\n",
            "x notanumber\n",
            "# TYPE x gauge\n# TYPE x counter\nx 1\n",
            "x 1\n# TYPE x gauge\n",
            "# HELP x a\n# HELP x b\nx 1\n",
            "# TYPE h histogram\nh_bucket 1\n",
            "# TYPE x weird\nx 1\n",
            "x infinity\n",
            "x 1 \n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn golden() {
        let dir = testdata().join("fixtures/b-textfile");
        let c = Textfile {
            dir: dir.join("textfile"),
        };
        // Modification times depend on the checkout; mask them.
        let text = render(&c).unwrap();
        let base = dir.to_string_lossy().into_owned();
        let masked: String = text
            .replace(&base, "FIXTURE")
            .lines()
            .map(|l| {
                if l.starts_with("node_textfile_mtime_seconds{") {
                    format!("{} <mtime>\n", &l[..l.rfind(' ').unwrap()])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(masked.contains("node_textfile_scrape_error 1"));
        assert_golden("textfile", &masked);
    }

    #[test]
    fn fifo_named_prom_is_skipped_not_blocking() {
        // A FIFO (no writer) named *.prom used to block the collector forever in read().
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.prom"), "a_metric 1\n").unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("b.prom"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        std::fs::write(dir.path().join("c.prom"), "c_metric 3\n").unwrap();
        let c = Textfile {
            dir: dir.path().to_path_buf(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(render(&c).unwrap());
        });
        let text = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("textfile collector blocked on a FIFO");
        assert!(text.contains("a_metric 1"), "{text}");
        assert!(text.contains("c_metric 3"), "{text}");
        assert!(!text.contains("b.prom"), "{text}");
        assert!(text.contains("node_textfile_scrape_error 1"), "{text}");
    }

    #[test]
    fn missing_directory_is_an_error_but_not_a_failure() {
        let c = Textfile {
            dir: "/nonexistent/hpcmon".into(),
        };
        let text = render(&c).unwrap();
        assert!(text.contains("node_textfile_scrape_error 1"), "{text}");
    }

    proptest! {
        /// Whatever the kit writes (any label value and help text, escapes included), the
        /// parser reads back unchanged.
        #[test]
        fn parses_what_the_kit_writes(
            help in "\\PC*",
            values in proptest::collection::vec(("[a-z_][a-z0-9_]{0,5}", "\\PC*"), 1..4),
            v in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
        ) {
            let mut set = MetricSet::new();
            let labels: Vec<(String, String)> = {
                let mut seen = std::collections::BTreeMap::new();
                for (k, val) in &values {
                    seen.entry(k.clone()).or_insert_with(|| val.clone());
                }
                seen.into_iter().collect()
            };
            set.gauge("x_metric", help.clone()).sample_owned(labels.clone(), v);
            set.normalize();
            let text = hpcmon_kit::metrics::encode_text(&set);
            let fams = parse(&text).unwrap();
            prop_assert_eq!(fams.len(), 1);
            // expfmt skips blanks before the help text, so only compare what can round-trip.
            let help_rt = help.trim_start_matches([' ', '\t']);
            prop_assert_eq!(fams[0].help.as_deref(), Some(help_rt));
            prop_assert_eq!(&fams[0].lines[0].labels, &labels);
            prop_assert_eq!(fams[0].lines[0].value, v);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_structured_junk(
            lines in proptest::collection::vec(
                "(# (HELP|TYPE) [a-z_]{0,4}( (gauge|counter|histogram|summary|untyped|x))?|[a-z_]{1,4}(_bucket|_sum|_count)?(\\{([a-z]{1,3}=\"[^\"]{0,3}\"(,)?){0,3}\\})? ([0-9.eE+-]{1,6}|NaN|\\+Inf)( [0-9]{1,3})?)",
                0..12)
        ) {
            let text = lines.join("\n");
            if let Ok(f) = parse(&text) {
                let mut out = MetricSet::new();
                emit(f, "p", &mut out);
                out.normalize();
                let _ = hpcmon_kit::metrics::encode_text(&out);
            }
        }
    }
}
