//! `softnet` collector: per-CPU packet processing statistics from `/proc/net/softnet_stat`,
//! as node_exporter 1.5: `node_softnet_processed_total`, `node_softnet_dropped_total` and
//! `node_softnet_times_squeezed_total`, each with label `cpu`.
//!
//! As in node_exporter 1.5 the `cpu` label is the line's position in the file (the kernel
//! skips offline CPUs, so on a machine with offline CPUs it is not the CPU number), and the
//! counters are the kernel's 32-bit hexadecimal values.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `[processed, dropped, time_squeezed]` per line. Every line needs at least 9 columns (the
/// oldest kernel format) and hexadecimal 32-bit values in the first three.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<[u32; 3]>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        anyhow::ensure!(
            cols.len() >= 9,
            "{} columns were detected, but at least 9 were expected",
            cols.len()
        );
        let mut v = [0u32; 3];
        for (d, s) in v.iter_mut().zip(&cols) {
            *d = u32::from_str_radix(s, 16)
                .ok()
                .filter(|_| !s.starts_with('+'))
                .with_context(|| format!("invalid hexadecimal {s:?}"))?;
        }
        out.push(v);
    }
    Ok(out)
}

struct Softnet {
    path: KeptFile,
}

/// Builds the `softnet` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Softnet {
        path: KeptFile::new(cfg.paths.proc("net/softnet_stat")),
    }))
}

impl Collector for Softnet {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let stats = parse(&text).context("could not get softnet statistics")?;
        let names = [
            (
                "node_softnet_processed_total",
                "Number of processed packets",
            ),
            ("node_softnet_dropped_total", "Number of dropped packets"),
            (
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
            ),
        ];
        for (i, (name, help)) in names.iter().enumerate() {
            let fam = out.counter(*name, *help);
            for (cpu, v) in stats.iter().enumerate() {
                fam.sample(&[("cpu", &cpu.to_string())], v[i] as f64);
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
        let c = new(&test_config(&testdata().join("fixtures/a-softnet"), &[])).unwrap();
        assert_golden("softnet", &render(&*c).unwrap());
    }

    #[test]
    fn short_or_bad_lines_are_errors() {
        assert!(parse("0 0 0 0 0 0 0 0\n").is_err());
        assert!(parse("0 0 zz 0 0 0 0 0 0\n").is_err());
        assert!(parse("100000000 0 0 0 0 0 0 0 0\n").is_err());
        assert_eq!(
            parse("ff 1 a 0 0 0 0 0 0 0 0\n").unwrap(),
            vec![[255, 1, 10]]
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
