//! `vmstat` collector: the fields of `/proc/vmstat` selected by `--collector.vmstat.fields`
//! as untyped `node_vmstat_<field>`, like node_exporter 1.5.
//!
//! The field regex is evaluated once per field name and the decision cached, so a scrape
//! does no regex matching once the set of fields is known.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::Config;

/// Flags of the `vmstat` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of fields to return for vmstat collector.
    #[arg(
        long = "collector.vmstat.fields",
        id = "collector.vmstat.fields",
        default_value = "^(oom_kill|pgpg|pswp|pg.*fault).*",
        value_name = "REGEX"
    )]
    pub fields: String,
}

/// Caches a regex's verdict per field name: fields are the same on every scrape.
pub(crate) struct FieldFilter {
    re: Regex,
    cache: Mutex<HashMap<String, bool>>,
}

impl FieldFilter {
    /// A filter from `pattern`; `flag` names the flag in the error.
    pub(crate) fn new(pattern: &str, flag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            re: Regex::new(pattern).with_context(|| format!("invalid {flag} regexp"))?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `name` matches (computed once per distinct name; the cache is bounded).
    pub(crate) fn matches(&self, name: &str) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&m) = cache.get(name) {
            return m;
        }
        let m = self.re.is_match(name);
        if cache.len() < 4096 {
            cache.insert(name.to_owned(), m);
        }
        m
    }
}

/// Parses /proc/vmstat (`name value` lines) into pairs; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines().filter_map(|line| {
        let mut f = line.split_ascii_whitespace();
        let (name, value) = (f.next()?, f.next()?);
        if f.next().is_some() {
            return None;
        }
        Some((name, value.parse::<f64>().ok()?))
    })
}

struct VmStat {
    path: PathBuf,
    fields: FieldFilter,
}

/// Builds the `vmstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(VmStat {
        path: cfg.paths.proc("vmstat"),
        fields: FieldFilter::new(&cfg.vmstat.fields, "--collector.vmstat.fields")?,
    }))
}

/// Whether `name` is usable in a metric name.
pub(crate) fn valid_name_part(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Collector for VmStat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        let mut seen = std::collections::HashSet::new();
        let mut metric = String::with_capacity(48);
        let mut help = String::with_capacity(64);
        for (name, v) in parse(&text) {
            if !valid_name_part(name) || !self.fields.matches(name) || !seen.insert(name) {
                continue;
            }
            metric.clear();
            metric.push_str("node_vmstat_");
            metric.push_str(name);
            help.clear();
            help.push_str("/proc/vmstat information field ");
            help.push_str(name);
            help.push('.');
            out.untyped(&metric, &help).sample(&[], v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_default_fields() {
        let c = new(&test_config(&testdata().join("fixtures/a-vmstat"), &[])).unwrap();
        assert_golden("vmstat", &render(&*c).unwrap());
    }

    #[test]
    fn golden_custom_fields() {
        let c = new(&test_config(
            &testdata().join("fixtures/a-vmstat"),
            &["--collector.vmstat.fields=^nr_(free|dirty)"],
        ))
        .unwrap();
        assert_golden("vmstat_custom", &render(&*c).unwrap());
    }

    #[test]
    fn bad_regex_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(new(&test_config(dir.path(), &["--collector.vmstat.fields=("])).is_err());
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s).count();
        }
    }
}
