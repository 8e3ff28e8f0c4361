//! Per-scrape metric snapshots and their two text encodings.
//!
//! Collectors build a [`MetricSet`] on every scrape (the equivalent of client_golang's
//! "const metrics"): families with a name, help, type and samples. The kit then encodes
//! the snapshot either as the Prometheus text format 0.0.4 (written here: prometheus-client
//! does not produce it) or as OpenMetrics 1.0 through the `prometheus-client` crate's
//! encoder (see [`encode_openmetrics`]).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A label's name (almost always a literal: borrowed, not copied) and value.
pub type Label = (Cow<'static, str>, String);

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricType {
    /// A monotonically increasing value. The family name must end in `_total`.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// A value of unknown type (`untyped` in 0.0.4, `unknown` in OpenMetrics).
    Untyped,
    /// A classic histogram; samples are added with [`Family::histogram`].
    Histogram,
}

impl MetricType {
    fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
        }
    }
}

/// One sample of a family: its label pairs and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label name/value pairs, in the order they are written.
    pub labels: Vec<Label>,
    /// The value (for histograms, the sum).
    pub value: f64,
    /// Histogram data: cumulative `(upper bound, count)` buckets and the total count.
    pub histogram: Option<HistogramData>,
}

/// A classic histogram's buckets (cumulative, as exposed) and count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramData {
    /// `(le, cumulative count)`, ascending; a `+Inf` bucket is added on output if missing.
    pub buckets: Vec<(f64, u64)>,
    /// Total number of observations.
    pub count: u64,
}

/// A metric family: name, help text, type and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name, e.g. `node_cpu_seconds_total` (a literal is borrowed, not copied:
    /// a scrape builds hundreds of families).
    pub name: Cow<'static, str>,
    /// Help text (escaped on output).
    pub help: Cow<'static, str>,
    /// The family's type.
    pub kind: MetricType,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// Adds a sample with the given labels (names are literals; for names made at run time
    /// use [`Family::sample_owned`]).
    pub fn sample(&mut self, labels: &[(&'static str, &str)], value: f64) -> &mut Self {
        self.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_owned()))
                .collect(),
            value,
            histogram: None,
        });
        self
    }

    /// Adds a sample with owned labels (for labels built at run time).
    /// Names are `String`s or `Cow`s; the vector is converted in place.
    pub fn sample_owned<K: Into<Cow<'static, str>>>(
        &mut self,
        labels: Vec<(K, String)>,
        value: f64,
    ) -> &mut Self {
        self.samples.push(Sample {
            labels: into_labels(labels),
            value,
            histogram: None,
        });
        self
    }

    /// Adds a histogram sample: cumulative buckets, sum and count.
    pub fn histogram<K: Into<Cow<'static, str>>>(
        &mut self,
        labels: Vec<(K, String)>,
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.samples.push(Sample {
            labels: into_labels(labels),
            value: sum,
            histogram: Some(HistogramData { buckets, count }),
        });
        self
    }
}

/// `(name, value)` pairs with `String` or `Cow` names as [`Label`]s (`String` and
/// `Cow<str>` have the same size, so the vector's buffer is reused).
fn into_labels<K: Into<Cow<'static, str>>>(labels: Vec<(K, String)>) -> Vec<Label> {
    labels.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

/// The metrics one collector produced in one scrape.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricSet {
    families: Vec<Family>,
}

impl MetricSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or continues) a family and returns it for adding samples. Calling it twice with
    /// the same name appends to the same family.
    pub fn family(
        &mut self,
        name: impl Into<Cow<'static, str>> + AsRef<str>,
        help: impl Into<Cow<'static, str>>,
        kind: MetricType,
    ) -> &mut Family {
        match self.find(name.as_ref()) {
            Some(i) => &mut self.families[i],
            None => self.push(name.into(), help.into(), kind),
        }
    }

    /// The index of the family named `name` (the latest, when a collector made two).
    fn find(&self, name: &str) -> Option<usize> {
        self.families.iter().rposition(|f| f.name == name)
    }

    fn push(
        &mut self,
        name: Cow<'static, str>,
        help: Cow<'static, str>,
        kind: MetricType,
    ) -> &mut Family {
        self.families.push(Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        self.families.last_mut().expect("just pushed")
    }

    /// Shorthand for a gauge family.
    pub fn gauge(
        &mut self,
        name: impl Into<Cow<'static, str>> + AsRef<str>,
        help: impl Into<Cow<'static, str>>,
    ) -> &mut Family {
        self.family(name, help, MetricType::Gauge)
    }

    /// Shorthand for a counter family (`name` must end in `_total`).
    pub fn counter(
        &mut self,
        name: impl Into<Cow<'static, str>> + AsRef<str>,
        help: impl Into<Cow<'static, str>>,
    ) -> &mut Family {
        debug_assert!(
            name.as_ref().ends_with("_total"),
            "counter {} must end in _total",
            name.as_ref()
        );
        self.family(name, help, MetricType::Counter)
    }

    /// Shorthand for an untyped family.
    pub fn untyped(
        &mut self,
        name: impl Into<Cow<'static, str>> + AsRef<str>,
        help: impl Into<Cow<'static, str>>,
    ) -> &mut Family {
        self.family(name, help, MetricType::Untyped)
    }

    /// [`MetricSet::family`] for a name and help made at run time (kept in a reused buffer
    /// or a per-header plan): they are copied only when the family is new.
    pub fn family_dyn(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Family {
        match self.find(name) {
            Some(i) => &mut self.families[i],
            None => self.push(name.to_owned().into(), help.to_owned().into(), kind),
        }
    }

    /// [`MetricSet::gauge`] with a run-time name (see [`MetricSet::family_dyn`]).
    pub fn gauge_dyn(&mut self, name: &str, help: &str) -> &mut Family {
        self.family_dyn(name, help, MetricType::Gauge)
    }

    /// [`MetricSet::counter`] with a run-time name (see [`MetricSet::family_dyn`]).
    pub fn counter_dyn(&mut self, name: &str, help: &str) -> &mut Family {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        self.family_dyn(name, help, MetricType::Counter)
    }

    /// [`MetricSet::untyped`] with a run-time name (see [`MetricSet::family_dyn`]).
    pub fn untyped_dyn(&mut self, name: &str, help: &str) -> &mut Family {
        self.family_dyn(name, help, MetricType::Untyped)
    }

    /// The families in this set.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// Moves every family of `other` into this set.
    pub fn extend(&mut self, other: MetricSet) {
        self.families.extend(other.families);
    }

    /// Number of samples over all families.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// Sorts families by name and merges families that share a name (keeping the first help
    /// and type), dropping families without samples. Output is then valid exposition.
    pub fn normalize(&mut self) {
        self.families.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Family> = Vec::with_capacity(self.families.len());
        for f in self.families.drain(..) {
            match out.last_mut() {
                Some(last) if last.name == f.name => last.samples.extend(f.samples),
                _ => out.push(f),
            }
        }
        out.retain(|f| !f.samples.is_empty());
        self.families = out;
    }
}

/// `Content-Type` of the 0.0.4 text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics in preference to the text format.
pub fn wants_openmetrics(accept: &str) -> bool {
    let mut best_om = -1.0f32;
    let mut best_text = -1.0f32;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in params {
            if let Some(v) = p.strip_prefix("q=") {
                q = v.parse().unwrap_or(0.0);
            }
        }
        if media == "application/openmetrics-text" {
            best_om = best_om.max(q);
        } else if media == "text/plain" || media == "*/*" {
            best_text = best_text.max(q);
        }
    }
    best_om > 0.0 && best_om >= best_text
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_help(out: &mut String, s: &str) {
    if !s.contains(['\\', '\n']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_label_value(out: &mut String, s: &str) {
    if !s.contains(['\\', '\n', '"']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_labels(out: &mut String, labels: &[Label], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_str()))
        .chain(extra)
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

fn le_string(le: f64) -> String {
    let mut s = String::new();
    if le.is_infinite() && le > 0.0 {
        s.push_str("+Inf");
    } else {
        let _ = write!(s, "{le}");
    }
    s
}

fn write_histogram_lines(out: &mut String, name: &str, s: &Sample, h: &HistogramData) {
    let mut saw_inf = false;
    for (le, c) in &h.buckets {
        saw_inf |= le.is_infinite();
        out.push_str(name);
        out.push_str("_bucket");
        let les = le_string(*le);
        write_labels(out, &s.labels, Some(("le", &les)));
        let _ = writeln!(out, " {c}");
    }
    if !saw_inf {
        out.push_str(name);
        out.push_str("_bucket");
        write_labels(out, &s.labels, Some(("le", "+Inf")));
        let _ = writeln!(out, " {}", h.count);
    }
    out.push_str(name);
    out.push_str("_sum");
    write_labels(out, &s.labels, None);
    out.push(' ');
    write_value(out, s.value);
    out.push('\n');
    out.push_str(name);
    out.push_str("_count");
    write_labels(out, &s.labels, None);
    let _ = writeln!(out, " {}", h.count);
}

/// Encodes families (already [normalized](MetricSet::normalize)) in the text format 0.0.4.
pub fn encode_text(set: &MetricSet) -> String {
    let mut out = String::with_capacity(64 * set.sample_count() + 128);
    for f in set.families() {
        out.push_str("# HELP ");
        out.push_str(&f.name);
        out.push(' ');
        escape_help(&mut out, &f.help);
        out.push_str("\n# TYPE ");
        out.push_str(&f.name);
        out.push(' ');
        out.push_str(f.kind.text_name());
        out.push('\n');
        for s in &f.samples {
            match &s.histogram {
                Some(h) => write_histogram_lines(&mut out, &f.name, s, h),
                None => {
                    out.push_str(&f.name);
                    write_labels(&mut out, &s.labels, None);
                    out.push(' ');
                    write_value(&mut out, s.value);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Adapter that lets prometheus-client's OpenMetrics encoder write a [`MetricSet`].
#[derive(Debug)]
struct SnapshotCollector(MetricSet);

impl prometheus_client::collector::Collector for SnapshotCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::MetricType as PT;
        let mut help = String::new();
        for f in self.0.families() {
            help.clear();
            escape_help(&mut help, &f.help);
            // OpenMetrics names a counter family without its `_total` suffix; a "counter"
            // without that suffix would be renamed, so it is exposed as unknown instead.
            let (name, kind) = match f.kind {
                MetricType::Counter => match f.name.strip_suffix("_total") {
                    Some(base) => (base, PT::Counter),
                    None => (f.name.as_ref(), PT::Unknown),
                },
                MetricType::Gauge => (f.name.as_ref(), PT::Gauge),
                MetricType::Untyped => (f.name.as_ref(), PT::Unknown),
                MetricType::Histogram => (f.name.as_ref(), PT::Histogram),
            };
            let mut fam = encoder.encode_descriptor(name, &help, None, kind)?;
            for s in &f.samples {
                let mut m = fam.encode_family(&s.labels)?;
                match (&s.histogram, kind) {
                    (Some(h), _) => {
                        // prometheus-client expects per-bucket (non-cumulative) counts.
                        let mut prev = 0u64;
                        let mut buckets: Vec<(f64, u64)> = h
                            .buckets
                            .iter()
                            .map(|&(le, c)| {
                                let d = c.saturating_sub(prev);
                                prev = c;
                                (le, d)
                            })
                            .collect();
                        if !buckets.iter().any(|(le, _)| le.is_infinite()) {
                            buckets.push((f64::INFINITY, h.count.saturating_sub(prev)));
                        }
                        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                            s.value, h.count, &buckets, None,
                        )?;
                    }
                    (None, PT::Counter) => {
                        // OpenMetrics forbids negative or NaN counters; clamp rather than fail.
                        let v = if s.value.is_nan() || s.value < 0.0 {
                            0.0
                        } else {
                            s.value
                        };
                        m.encode_counter::<prometheus_client::encoding::NoLabelSet, f64, f64>(
                            &v, None,
                        )?;
                    }
                    (None, _) => m.encode_gauge(&s.value)?,
                }
            }
        }
        Ok(())
    }
}

/// Encodes families (already [normalized](MetricSet::normalize)) as OpenMetrics 1.0 text,
/// through prometheus-client's encoder, terminated by `# EOF`.
pub fn encode_openmetrics(set: MetricSet) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(set)));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_set() -> MetricSet {
        let mut m = MetricSet::new();
        m.counter(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
        )
        .sample(&[("cpu", "0"), ("mode", "idle")], 12.5)
        .sample(&[("cpu", "0"), ("mode", "user")], 3.0);
        m.gauge("node_load1", "1m load average.").sample(&[], 0.25);
        m.gauge("a_info", "odd \"label\" values\nand help")
            .sample(&[("v", "quote\" back\\ nl\n")], 1.0);
        m.family("lat_seconds", "Latency.", MetricType::Histogram)
            .histogram(Vec::<Label>::new(), vec![(0.1, 2), (1.0, 5)], 3.5, 6);
        m.normalize();
        m
    }

    #[test]
    fn text_format_is_sorted_escaped_and_typed() {
        let t = encode_text(&sample_set());
        let expected = "# HELP a_info odd \"label\" values\\nand help\n# TYPE a_info gauge\n\
a_info{v=\"quote\\\" back\\\\ nl\\n\"} 1\n\
# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
lat_seconds_bucket{le=\"0.1\"} 2\nlat_seconds_bucket{le=\"1\"} 5\nlat_seconds_bucket{le=\"+Inf\"} 6\n\
lat_seconds_sum 3.5\nlat_seconds_count 6\n\
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\nnode_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 3\n\
# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.25\n";
        assert_eq!(t, expected);
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let t = encode_openmetrics(sample_set());
        assert!(t.contains("# TYPE node_cpu_seconds counter\n"), "{t}");
        assert!(
            t.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n"),
            "{t}"
        );
        assert!(t.contains("lat_seconds_bucket{le=\"1.0\"} 5\n"), "{t}");
        assert!(t.contains("lat_seconds_bucket{le=\"+Inf\"} 6\n"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    #[test]
    fn normalize_merges_same_name_and_drops_empty() {
        let mut m = MetricSet::new();
        m.gauge("b", "B").sample(&[("x", "1")], 1.0);
        m.gauge("empty", "E");
        let mut other = MetricSet::new();
        other.gauge("b", "B").sample(&[("x", "2")], 2.0);
        m.extend(other);
        m.normalize();
        assert_eq!(m.families().len(), 1);
        assert_eq!(m.families()[0].samples.len(), 2);
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics(""));
    }

    #[test]
    fn values_render_like_prometheus() {
        let mut s = String::new();
        for v in [
            1.0,
            -2.0,
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e20,
            1.5e-7,
        ] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(
            s,
            "1 -2 0.5 NaN +Inf -Inf 100000000000000000000 0.00000015 "
        );
    }
}
