//! `loadavg` collector: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// Parses the three load averages at the start of /proc/loadavg.
pub(crate) fn parse(text: &str) -> anyhow::Result<[f64; 3]> {
    let mut f = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        let s = f.next().context("too few fields in loadavg")?;
        *slot = s
            .parse()
            .with_context(|| format!("invalid load average {s:?}"))?;
    }
    Ok(out)
}

struct LoadAvg {
    path: KeptFile,
}

/// Builds the `loadavg` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(LoadAvg {
        path: KeptFile::new(cfg.paths.proc("loadavg")),
    }))
}

impl Collector for LoadAvg {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let [l1, l5, l15] = parse(&text)?;
        out.gauge("node_load1", "1m load average.").sample(&[], l1);
        out.gauge("node_load5", "5m load average.").sample(&[], l5);
        out.gauge("node_load15", "15m load average.")
            .sample(&[], l15);
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
        let c = new(&test_config(&testdata().join("fixtures/a-loadavg"), &[])).unwrap();
        assert_golden("loadavg", &render(&*c).unwrap());
    }

    #[test]
    fn truncated_or_missing_is_an_error() {
        assert!(parse("0.5 0.2").is_err());
        assert!(parse("0.5 x 0.1 1/2 3").is_err());
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
