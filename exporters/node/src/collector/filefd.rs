//! `filefd` collector: `node_filefd_allocated` and `node_filefd_maximum` from
//! `/proc/sys/fs/file-nr`.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// Parses file-nr: `allocated  unused  maximum`.
pub(crate) fn parse(text: &str) -> anyhow::Result<(f64, f64)> {
    let f: Vec<&str> = text.split_ascii_whitespace().collect();
    anyhow::ensure!(
        f.len() == 3,
        "expected 3 fields in file-nr, got {}",
        f.len()
    );
    let num = |s: &str| -> anyhow::Result<f64> {
        s.parse::<u64>()
            .map(|v| v as f64)
            .with_context(|| format!("invalid number {s:?} in file-nr"))
    };
    Ok((num(f[0])?, num(f[2])?))
}

struct FileFd {
    path: KeptFile,
}

/// Builds the `filefd` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(FileFd {
        path: KeptFile::new(cfg.paths.proc("sys/fs/file-nr")),
    }))
}

impl Collector for FileFd {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let (allocated, maximum) = parse(&text)?;
        out.gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
        )
        .sample(&[], allocated);
        out.gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
        )
        .sample(&[], maximum);
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
        let c = new(&test_config(&testdata().join("fixtures/a-filefd"), &[])).unwrap();
        assert_golden("filefd", &render(&*c).unwrap());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse("1535\t0").is_err());
        assert!(parse("a 0 1").is_err());
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
