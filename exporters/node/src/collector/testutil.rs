//! Golden-file testing for collectors: run a collector against a fixture tree under
//! `testdata/` and compare its text exposition with `testdata/golden/<name>.prom`.
//! Run with `UPDATE_GOLDEN=1` to (re)write the golden files, then review the diff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hpcmon_kit::{metrics, Collector, Context, MetricSet};

/// The crate's `testdata/` folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Runs `c` once and returns its normalized text exposition, or the collector's error.
pub fn render(c: &dyn Collector) -> anyhow::Result<String> {
    let mut set = MetricSet::new();
    c.collect(&Context::with_timeout(Duration::from_secs(5)), &mut set)?;
    set.normalize();
    Ok(metrics::encode_text(&set))
}

/// Compares `actual` with `testdata/golden/<name>.prom` (or rewrites it under UPDATE_GOLDEN).
pub fn assert_golden(name: &str, actual: &str) {
    let path = testdata().join("golden").join(format!("{name}.prom"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = diff_lines(&expected, actual);
        panic!(
            "{} differs from the collector's output:\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}

fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
    let e: std::collections::BTreeSet<&str> = expected.lines().collect();
    let a: std::collections::BTreeSet<&str> = actual.lines().collect();
    let mut out: Vec<String> = e.difference(&a).map(|l| format!("- {l}")).collect();
    out.extend(a.difference(&e).map(|l| format!("+ {l}")));
    out
}

/// The collectors' [`Config`] from command-line `args`, with every path under the fixture
/// tree `dir` (`dir/proc`, `dir/sys`, `dir/root`), for the collectors' tests.
pub fn test_config(dir: &std::path::Path, args: &[&str]) -> crate::collector::Config {
    let mut cfg = crate::collector::Config::from_args(args).expect("test arguments parse");
    cfg.paths = crate::collector::Paths::fixture(dir);
    cfg
}
