//! `lnstat` collector: the kernel's network cache statistics from `/proc/net/stat/*`
//! (`arp_cache`, `ndisc_cache`, `nf_conntrack`, `rt_cache`, ...), one hexadecimal counter
//! per column and CPU, as node_exporter 1.5: `node_lnstat_<column>_total{subsystem,cpu}`.
//! Off by default, as there.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(column, per-CPU values)` of one stat file: a header line of column names, then one
/// line of hexadecimal values per CPU.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<(&str, Vec<u64>)>> {
    let mut lines = text.lines();
    let headers: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let mut cols: Vec<(&str, Vec<u64>)> = headers.iter().map(|h| (*h, Vec::new())).collect();
    for line in lines {
        for (i, v) in line.split_whitespace().enumerate() {
            let col = cols
                .get_mut(i)
                .with_context(|| format!("more values than columns in {line:?}"))?;
            let v = u64::from_str_radix(v, 16)
                .ok()
                .filter(|_| !v.starts_with('+'))
                .with_context(|| format!("invalid hexadecimal {v:?}"))?;
            col.1.push(v);
        }
    }
    Ok(cols)
}

struct Lnstat {
    dir: PathBuf,
}

/// Builds the `lnstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Lnstat {
        dir: cfg.paths.proc("net/stat"),
    }))
}

impl Collector for Lnstat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let files = read::entries_or_empty(&self.dir).context("lnstat error")?;
        let mut all = Vec::new();
        for (name, p) in files {
            all.push((name, read::text(&p).context("lnstat error")?));
        }
        for (name, text) in &all {
            for (col, values) in parse(text).with_context(|| format!("lnstat error in {name}"))? {
                let fam = out.counter(
                    format!("node_lnstat_{col}_total"),
                    "linux network cache stats",
                );
                for (cpu, v) in values.iter().enumerate() {
                    fam.sample(&[("subsystem", name), ("cpu", &cpu.to_string())], *v as f64);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-lnstat"), &[])).unwrap();
        assert_golden("lnstat", &render(&*c).unwrap());
    }

    #[test]
    fn columns() {
        let p = parse("entries in_hit\n0000000a 00000001\n0000000b 00000002\n").unwrap();
        assert_eq!(p, vec![("entries", vec![10, 11]), ("in_hit", vec![1, 2])]);
        assert!(parse("entries\n1 2\n").is_err());
        assert!(parse("entries\nzz\n").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
