//! `conntrack` collector: connection tracking table usage (`node_nf_conntrack_entries`,
//! `node_nf_conntrack_entries_limit`) from `/proc/sys/net/netfilter/` and the per-CPU
//! statistics of `/proc/net/stat/nf_conntrack` summed over CPUs
//! (`node_nf_conntrack_stat_found`, `..._invalid`, `..._drop`, ...), like node_exporter 1.5.
//! Without the nf_conntrack module the files are absent and the collector fails, as
//! node_exporter's does (it returns "no data").

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet, PartialMetrics};

use super::entropy::read_number;
use super::Config;

/// The statistics node_exporter exposes: column name in the file header, metric, help.
const STATS: [(&str, &str, &str); 8] = [
    ("found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."),
    ("invalid", "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."),
    ("insert_failed", "node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "node_nf_conntrack_stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

/// Parses /proc/net/stat/nf_conntrack (a header naming the columns, then one line of hex
/// numbers per CPU) and sums the [`STATS`] columns over CPUs. Columns are found by name, so
/// older layouts work; lines whose column count differs from the header are skipped.
pub(crate) fn parse_stat(text: &str) -> anyhow::Result<[u64; 8]> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty nf_conntrack statistics")?
        .split_ascii_whitespace()
        .collect();
    let idx: Vec<Option<usize>> = STATS
        .iter()
        .map(|(col, _, _)| header.iter().position(|h| h == col))
        .collect();
    let mut sums = [0u64; 8];
    let mut rows = 0;
    for line in lines {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() != header.len() {
            continue;
        }
        let Ok(values) = f
            .iter()
            .map(|v| u64::from_str_radix(v, 16))
            .collect::<Result<Vec<u64>, _>>()
        else {
            continue;
        };
        rows += 1;
        for (sum, i) in sums.iter_mut().zip(&idx) {
            if let Some(i) = i {
                *sum = sum.wrapping_add(values[*i]);
            }
        }
    }
    anyhow::ensure!(rows > 0, "no per-CPU lines in nf_conntrack statistics");
    Ok(sums)
}

struct Conntrack {
    count: KeptFile,
    max: KeptFile,
    stat: KeptFile,
}

/// Builds the `conntrack` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Conntrack {
        count: KeptFile::new(cfg.paths.proc("sys/net/netfilter/nf_conntrack_count")),
        max: KeptFile::new(cfg.paths.proc("sys/net/netfilter/nf_conntrack_max")),
        stat: KeptFile::new(cfg.paths.proc("net/stat/nf_conntrack")),
    }))
}

impl Collector for Conntrack {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let count = read_number(&self.count).context("conntrack is probably not loaded")?;
        out.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
        )
        .sample(&[], count);
        let max = read_number(&self.max)?;
        out.gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
        )
        .sample(&[], max);
        // Like node_exporter, a failure to read the statistics still serves the two gauges
        // above (and marks the collector failed).
        let sums = match self
            .stat
            .read_to_string()
            .with_context(|| format!("reading {}", self.stat.path().display()))
            .and_then(|text| parse_stat(&text))
        {
            Ok(s) => s,
            Err(e) => {
                return Err(PartialMetrics {
                    metrics: std::mem::take(out),
                    error: format!("{e:#}"),
                }
                .into())
            }
        };
        for ((_, name, help), v) in STATS.iter().zip(sums) {
            out.gauge(*name, *help).sample(&[], v as f64);
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
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-conntrack"), &[])).unwrap();
        assert_golden("conntrack", &render(&*c).unwrap());
    }

    #[test]
    fn golden_old_kernel_layout_busy() {
        // A 4.x kernel's layout (`searched` column, no `clashres`), busy counters, one
        // truncated CPU line.
        let c = new(&test_config(
            &testdata().join("fixtures/a-conntrack-old"),
            &[],
        ))
        .unwrap();
        assert_golden("conntrack_old", &render(&*c).unwrap());
    }

    #[test]
    fn module_not_loaded_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("not loaded"), "{err:#}");
    }

    #[test]
    fn missing_statistics_keep_the_entries() {
        let dir = tempfile::tempdir().unwrap();
        let nf = dir.path().join("proc/sys/net/netfilter");
        std::fs::create_dir_all(&nf).unwrap();
        std::fs::write(nf.join("nf_conntrack_count"), "7\n").unwrap();
        std::fs::write(nf.join("nf_conntrack_max"), "100\n").unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        let mut set = MetricSet::new();
        let ctx = Context::with_timeout(std::time::Duration::from_secs(5));
        let err = c.collect(&ctx, &mut set).unwrap_err();
        let partial = err.downcast::<PartialMetrics>().expect("partial metrics");
        assert!(partial.error.contains("nf_conntrack"), "{}", partial.error);
        assert_eq!(partial.metrics.sample_count(), 2);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_stat(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..700, junk in "[ a-f0-9\\n]{0,20}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-conntrack/proc/net/stat/nf_conntrack")).unwrap();
            let cut = cut.min(real.len());
            let _ = parse_stat(&format!("{}{}{}", &real[..cut], junk, &real[cut..]));
        }
    }
}
