//! `stat` collector: boot time, context switches, forks, interrupts and process counts from
//! `/proc/stat` (`node_boot_time_seconds`, `node_context_switches_total`, `node_forks_total`,
//! `node_intr_total`, `node_procs_running`, `node_procs_blocked`), as node_exporter 1.5.

use std::sync::Arc;

use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// The system-wide lines of /proc/stat that this collector exposes.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct SystemStat {
    pub intr: Option<u64>,
    pub ctxt: Option<u64>,
    pub btime: Option<u64>,
    pub processes: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

/// Parses /proc/stat's system-wide lines. Per-CPU lines are skipped without splitting them,
/// and of `intr` (one column per interrupt, thousands on big machines) only the total is read.
pub(crate) fn parse(text: &str) -> SystemStat {
    let mut s = SystemStat::default();
    for line in text.lines() {
        if line.starts_with("cpu") {
            continue;
        }
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let slot = match key {
            "intr" => &mut s.intr,
            "ctxt" => &mut s.ctxt,
            "btime" => &mut s.btime,
            "processes" => &mut s.processes,
            "procs_running" => &mut s.procs_running,
            "procs_blocked" => &mut s.procs_blocked,
            _ => continue,
        };
        if let Ok(v) = value.parse() {
            *slot = Some(v);
        }
    }
    s
}

struct Stat {
    path: KeptFile,
}

/// Builds the `stat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Stat {
        path: KeptFile::new(cfg.paths.proc("stat")),
    }))
}

impl Collector for Stat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let s = parse(&text);
        if s == SystemStat::default() {
            anyhow::bail!(
                "no system-wide statistics in {}",
                self.path.path().display()
            );
        }
        let v = |x: Option<u64>| x.map(|x| x as f64);
        if let Some(x) = v(s.intr) {
            out.counter("node_intr_total", "Total number of interrupts serviced.")
                .sample(&[], x);
        }
        if let Some(x) = v(s.ctxt) {
            out.counter(
                "node_context_switches_total",
                "Total number of context switches.",
            )
            .sample(&[], x);
        }
        if let Some(x) = v(s.processes) {
            out.counter("node_forks_total", "Total number of forks.")
                .sample(&[], x);
        }
        if let Some(x) = v(s.btime) {
            out.gauge("node_boot_time_seconds", "Node boot time, in unixtime.")
                .sample(&[], x);
        }
        if let Some(x) = v(s.procs_running) {
            out.gauge(
                "node_procs_running",
                "Number of processes in runnable state.",
            )
            .sample(&[], x);
        }
        if let Some(x) = v(s.procs_blocked) {
            out.gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
            )
            .sample(&[], x);
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

    fn collector(dir: &std::path::Path) -> Arc<dyn Collector> {
        new(&test_config(dir, &[])).unwrap()
    }

    #[test]
    fn golden_this_machine() {
        let c = collector(&testdata().join("fixtures/a-cpu"));
        assert_golden("stat", &render(&*c).unwrap());
    }

    #[test]
    fn golden_truncated() {
        // Truncated file: the `intr` line is the last one and has no newline.
        let c = collector(&testdata().join("fixtures/a-cpu-truncated"));
        assert_golden("stat_truncated", &render(&*c).unwrap());
    }

    #[test]
    fn four_thousand_cpus() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/stat"),
            crate::collector::cpu::stat_4096(),
        )
        .unwrap();
        let t = render(&*collector(dir.path())).unwrap();
        assert!(t.contains("\nnode_intr_total 123456\n"), "{t}");
        assert!(t.contains("\nnode_procs_running 17\n"), "{t}");
        assert!(t.contains("\nnode_boot_time_seconds 1795287856\n"), "{t}");
    }

    #[test]
    fn missing_or_empty_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*collector(dir.path())).is_err());
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/stat"), "cpu0 1 2 3\n").unwrap();
        assert!(render(&*collector(dir.path())).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..4000, junk in "[ a-z0-9_\\n]{0,20}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-cpu/proc/stat")).unwrap();
            let cut = cut.min(real.len());
            let mutated = format!("{}{}{}", &real[..cut], junk, &real[cut..]);
            let _ = parse(&mutated);
        }
    }
}
