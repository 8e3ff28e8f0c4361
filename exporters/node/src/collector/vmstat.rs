//! `vmstat` collector: the fields of `/proc/vmstat` selected by `--collector.vmstat.fields`
//! as untyped `node_vmstat_<field>`, like node_exporter 1.5.
//!
//! The field regex is evaluated when the list of fields changes (in practice once), so a
//! scrape does no regex matching or per-field hashing once the set of fields is known.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::read;
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

/// A field regex whose verdicts are kept per *header*: the list of field names a file
/// section carries (a `Proto: names...` line of /proc/net/netstat, the names of /proc/vmstat).
/// Headers are the same on every scrape, so a scrape compares each header with the one seen
/// last time (one string comparison), and reuses the selected columns with their metric names,
/// instead of hashing every field name under a lock.
pub(crate) struct FieldFilter {
    re: Regex,
    /// Selected columns per header, in the order headers were first seen (bounded).
    plans: Mutex<Vec<(String, Arc<Plan>)>>,
}

/// The columns of one header that the regex selects, as `(column, metric, help)`.
pub(crate) type Plan = Vec<(usize, String, String)>;

/// At most this many distinct headers are remembered (a file has a dozen).
const MAX_PLANS: usize = 64;

impl FieldFilter {
    /// A filter from `pattern`; `flag` names the flag in the error.
    pub(crate) fn new(pattern: &str, flag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            re: Regex::new(pattern).with_context(|| format!("invalid {flag} regexp"))?,
            plans: Mutex::new(Vec::new()),
        })
    }

    /// Whether the field `name` is selected.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.re.is_match(name)
    }

    /// The selected columns of `header`, computed by `build` (with this filter) the first
    /// time a header is seen. `build` gets the filter and returns the plan.
    pub(crate) fn plan(&self, header: &str, build: impl FnOnce(&Self) -> Plan) -> Arc<Plan> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = plans.iter().find(|(h, _)| h == header) {
            return p.clone();
        }
        let p = Arc::new(build(self));
        if plans.len() >= MAX_PLANS {
            plans.remove(0);
        }
        plans.push((header.to_owned(), p.clone()));
        p
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
    path: KeptFile,
    fields: FieldFilter,
}

/// Builds the `vmstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(VmStat {
        path: KeptFile::new(cfg.paths.proc("vmstat")),
        fields: FieldFilter::new(&cfg.flags::<Flags>()?.fields, "--collector.vmstat.fields")?,
    }))
}

/// Whether `name` is usable in a metric name.
pub(crate) fn valid_name_part(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Collector for VmStat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        // The "header" of /proc/vmstat is its list of names, one per line.
        let mut header = String::with_capacity(text.len() / 2);
        let mut values = Vec::with_capacity(256);
        for (name, v) in parse(&text) {
            header.push_str(name);
            header.push('\n');
            values.push(v);
        }
        let plan = self.fields.plan(&header, |f| {
            let mut seen = std::collections::HashSet::new();
            parse(&text)
                .enumerate()
                .filter(|(_, (name, _))| {
                    valid_name_part(name) && f.matches(name) && seen.insert(*name)
                })
                .map(|(i, (name, _))| {
                    (
                        i,
                        format!("node_vmstat_{name}"),
                        format!("/proc/vmstat information field {name}."),
                    )
                })
                .collect()
        });
        for (i, metric, help) in plan.iter() {
            if let Some(v) = values.get(*i) {
                out.untyped_dyn(metric, help).sample(&[], *v);
            }
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
    fn changed_fields_are_planned_afresh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        let file = dir.path().join("proc/vmstat");
        std::fs::write(&file, "nr_free 1\npgfault 2\noom_kill 3\n").unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        let first = render(&*c).unwrap();
        assert!(
            first.contains("node_vmstat_pgfault 2\n") && first.contains("node_vmstat_oom_kill 3\n"),
            "{first}"
        );
        assert!(!first.contains("nr_free"), "{first}");
        std::fs::write(&file, "oom_kill 30\nnr_free 1\npgmajfault 4\n").unwrap();
        let second = render(&*c).unwrap();
        assert!(
            second.contains("node_vmstat_oom_kill 30\n")
                && second.contains("node_vmstat_pgmajfault 4\n"),
            "{second}"
        );
        assert!(!second.contains("node_vmstat_pgfault "), "{second}");
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
