//! `entropy` collector: `node_entropy_available_bits` and `node_entropy_pool_size_bits` from
//! `/proc/sys/kernel/random/{entropy_avail,poolsize}`.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

struct Entropy {
    avail: KeptFile,
    poolsize: KeptFile,
}

/// Builds the `entropy` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Entropy {
        avail: KeptFile::new(cfg.paths.proc("sys/kernel/random/entropy_avail")),
        poolsize: KeptFile::new(cfg.paths.proc("sys/kernel/random/poolsize")),
    }))
}

/// Reads a kernel file holding one unsigned integer.
pub(crate) fn read_number(file: &KeptFile) -> anyhow::Result<f64> {
    let path = file.path();
    let t = file
        .attr()
        .with_context(|| format!("reading {}", path.display()))?;
    let v: u64 = t
        .parse()
        .with_context(|| format!("invalid number {t:?} in {}", path.display()))?;
    Ok(v as f64)
}

impl Collector for Entropy {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let avail = read_number(&self.avail).context("couldn't get entropy_avail")?;
        out.gauge("node_entropy_available_bits", "Bits of available entropy.")
            .sample(&[], avail);
        // Like node_exporter, a missing poolsize only drops that metric.
        if let Ok(pool) = read_number(&self.poolsize) {
            out.gauge("node_entropy_pool_size_bits", "Bits of entropy pool.")
                .sample(&[], pool);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-entropy"), &[])).unwrap();
        assert_golden("entropy", &render(&*c).unwrap());
    }

    #[test]
    fn missing_or_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err());
        let p = dir.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("entropy_avail"), "lots\n").unwrap();
        assert!(render(&*c).is_err());
        std::fs::write(p.join("entropy_avail"), "256\n").unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("node_entropy_available_bits 256\n"));
        assert!(!t.contains("pool_size"));
    }
}
