//! A small parser for the Prometheus text exposition format (0.0.4), enough to compare two
//! exporters: family names, types, label names and sample counts.
//!
//! Shared by the compatibility test (`tests/compat.rs`) and the benchmark (`bench/node.rs`,
//! which includes this file with `#[path]`), so it depends on `std` only.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family as seen in an exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped` (from `# TYPE`, else untyped).
    pub typ: String,
    /// Union of the label names over all samples (without `le`/`quantile`).
    pub labels: BTreeSet<String>,
    /// Number of sample lines (histogram/summary: every `_bucket`, `_sum`, `_count` line).
    pub samples: usize,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (for histograms with its `_bucket`/`_sum`/`_count` suffix).
    pub name: String,
    /// Label pairs in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN`, `+Inf`, `-Inf` included).
    pub value: f64,
}

/// A parsed exposition: families by name, plus every sample.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Families that have at least one sample, by family name.
    pub families: BTreeMap<String, Family>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the first sample named `name` whose labels include all of `want`.
    pub fn value(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }
}

/// Parses a text-format exposition. Errors name the line (1-based) and what is wrong.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |m: &str| format!("line {}: {m}: {raw:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.split_whitespace();
            if parts.next() == Some("TYPE") {
                let name = parts.next().ok_or_else(|| err("TYPE without a name"))?;
                let typ = parts.next().ok_or_else(|| err("TYPE without a type"))?;
                if !matches!(
                    typ,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(err("unknown type"));
                }
                if types.insert(name.to_string(), typ.to_string()).is_some() {
                    return Err(err("second TYPE line for the same family"));
                }
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|m| err(&m))?;
        let (family, typ) = family_of(&sample.name, &types);
        let f = out.families.entry(family).or_insert_with(|| Family {
            typ: typ.clone(),
            ..Family::default()
        });
        f.samples += 1;
        for (k, _) in &sample.labels {
            let special =
                (typ == "histogram" && k == "le") || (typ == "summary" && k == "quantile");
            if !special {
                f.labels.insert(k.clone());
            }
        }
        out.samples.push(sample);
    }
    Ok(out)
}

/// The family a sample name belongs to, and that family's type.
fn family_of(name: &str, types: &BTreeMap<String, String>) -> (String, String) {
    if let Some(t) = types.get(name) {
        return (name.to_string(), t.clone());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(t) = types.get(base) {
                let ok = match t.as_str() {
                    "histogram" => true,
                    "summary" => suffix != "_bucket",
                    _ => false,
                };
                if ok {
                    return (base.to_string(), t.clone());
                }
            }
        }
    }
    (name.to_string(), "untyped".to_string())
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .ok_or("sample without a value")?;
    let name = &line[..name_end];
    if !valid_name(name, true) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let close;
        loop {
            // Skip spaces and separating commas.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            let (start, c) = *chars.peek().ok_or("unterminated label set")?;
            if c == '}' {
                close = start;
                break;
            }
            let mut end = start;
            while let Some(&(j, c)) = chars.peek() {
                if c == '=' {
                    end = j;
                    break;
                }
                chars.next();
            }
            let key = r[start..end].trim();
            if !valid_name(key, false) {
                return Err(format!("invalid label name {key:?}"));
            }
            chars.next(); // '='
            match chars.next() {
                Some((_, '"')) => {}
                _ => return Err(format!("label {key} value is not quoted")),
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, other)) => return Err(format!("bad escape \\{other}")),
                        None => return Err("unterminated label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("duplicate label {key}"));
            }
            labels.push((key.to_string(), value));
        }
        rest = &r[close + 1..];
    }
    let mut fields = rest.split_whitespace();
    let v = fields.next().ok_or("sample without a value")?;
    let value = match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing garbage".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_labels_and_histograms() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"uo,te}\"} 3\n\
                    a_total{x=\"2\"} 4 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"1\",k=\"v\"} 1\nh_bucket{le=\"+Inf\",k=\"v\"} 2\n\
                    h_sum{k=\"v\"} 0.5\nh_count{k=\"v\"} 2\nloose 1e-3\nnan_one NaN\n";
        let e = parse(text).unwrap();
        let a = &e.families["a_total"];
        assert_eq!(a.typ, "counter");
        assert_eq!(a.samples, 2);
        assert_eq!(a.labels.iter().collect::<Vec<_>>(), ["x", "y"]);
        let h = &e.families["h"];
        assert_eq!((h.typ.as_str(), h.samples), ("histogram", 4));
        assert_eq!(h.labels.iter().collect::<Vec<_>>(), ["k"]);
        assert_eq!(e.families["loose"].typ, "untyped");
        assert_eq!(e.value("a_total", &[("y", "q\"uo,te}")]), Some(3.0));
        assert_eq!(e.value("loose", &[]), Some(0.001));
        assert!(e.value("nan_one", &[]).unwrap().is_nan());
        assert_eq!(e.families.len(), 4);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "x{a=\"1\" 2",
            "x{a=1} 2",
            "x two",
            "x",
            "1x 2",
            "x{a=\"1\",a=\"2\"} 1",
            "x 1 2 3",
            "# TYPE x gauge\n# TYPE x gauge",
            "# TYPE x weird",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
