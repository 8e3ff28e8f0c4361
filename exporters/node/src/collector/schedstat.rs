//! `schedstat` collector: per-CPU scheduler statistics from `/proc/schedstat`, as
//! node_exporter 1.5: `node_schedstat_running_seconds_total`,
//! `node_schedstat_waiting_seconds_total` and `node_schedstat_timeslices_total`, label `cpu`.
//!
//! A kernel built without `CONFIG_SCHEDSTATS` has no `/proc/schedstat`: the collector then
//! fails, as node_exporter reports it.

use std::path::PathBuf;
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(cpu, running ns, waiting ns, timeslices)` from each `cpuN` line with at least nine
/// numbers (the 7th to 9th are the ones exposed). Other lines (`version`, `timestamp`,
/// `domainN`) and malformed `cpu` lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<(&str, u64, u64, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(cpu) = f.next().and_then(|c| c.strip_prefix("cpu")) else {
            continue;
        };
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(v) = read::u64s(f.take(9)).filter(|v| v.len() == 9) else {
            continue;
        };
        out.push((cpu, v[6], v[7], v[8]));
    }
    out
}

struct Schedstat {
    path: PathBuf,
}

/// Builds the `schedstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Schedstat {
        path: cfg.paths.proc("schedstat"),
    }))
}

impl Collector for Schedstat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::text(&self.path)?;
        let cpus = parse(&text);
        let run = out.counter(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
        );
        for (cpu, r, _, _) in &cpus {
            run.sample(&[("cpu", cpu)], *r as f64 / 1e9);
        }
        let wait = out.counter(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
        );
        for (cpu, _, w, _) in &cpus {
            wait.sample(&[("cpu", cpu)], *w as f64 / 1e9);
        }
        let slices = out.counter(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
        );
        for (cpu, _, _, t) in &cpus {
            slices.sample(&[("cpu", cpu)], *t as f64);
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
    fn golden() {
        let c = new(&test_config(&testdata().join("fixtures/a-schedstat"), &[])).unwrap();
        assert_golden("schedstat", &render(&*c).unwrap());
    }

    #[test]
    fn lines_and_missing_file() {
        let t = "version 15\ntimestamp 1\ncpu0 0 0 0 0 0 0 2000000000 500 7\n\
                 domain0 00000003 1 2 3\ncpu1 0 0 0 0 0 0 1 2\ncpux 1 2 3 4 5 6 7 8 9\n";
        assert_eq!(parse(t), vec![("0", 2_000_000_000, 500, 7)]);
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
