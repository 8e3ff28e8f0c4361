//! `edac` collector: memory controller error counters from
//! `/sys/devices/system/edac/mc/mc<N>/`: `node_edac_{correctable,uncorrectable}_errors_total
//! {controller}` and `node_edac_csrow_{correctable,uncorrectable}_errors_total
//! {controller,csrow}`, where the `ce_noinfo_count`/`ue_noinfo_count` errors (no csrow
//! known) appear as `csrow="unknown"`, as in node_exporter 1.5.
//!
//! A missing or unparsable counter file is left out (node_exporter fails the collector).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// Builds the `edac` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Edac {
        mc: cfg.paths.sys("devices/system/edac/mc"),
    }))
}

/// The `edac` collector.
pub struct Edac {
    mc: PathBuf,
}

fn count(dir: &Path, name: &str) -> Option<f64> {
    hpcmon_kit::sysfs::attr_u64(&dir.join(name))
        .ok()
        .map(|v| v as f64)
}

/// Numbered subdirectories `<prefix><N>` of `dir`, sorted by number.
fn numbered(dir: &Path, prefix: &str) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Collector for Edac {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for (n, mc) in numbered(&self.mc, "mc") {
            let ctrl = n.to_string();
            let c = [("controller", ctrl.as_str())];
            if let Some(v) = count(&mc, "ce_count") {
                out.counter(
                    "node_edac_correctable_errors_total",
                    "Total correctable memory errors.",
                )
                .sample(&c, v);
            }
            if let Some(v) = count(&mc, "ue_count") {
                out.counter(
                    "node_edac_uncorrectable_errors_total",
                    "Total uncorrectable memory errors.",
                )
                .sample(&c, v);
            }
            let mut rows: Vec<(String, PathBuf, &str, &str)> = numbered(&mc, "csrow")
                .into_iter()
                .map(|(r, p)| (r.to_string(), p, "ce_count", "ue_count"))
                .collect();
            rows.push((
                "unknown".into(),
                mc.clone(),
                "ce_noinfo_count",
                "ue_noinfo_count",
            ));
            for (row, dir, ce, ue) in &rows {
                let l = [("controller", ctrl.as_str()), ("csrow", row.as_str())];
                if let Some(v) = count(dir, ce) {
                    out.counter(
                        "node_edac_csrow_correctable_errors_total",
                        "Total correctable memory errors for this csrow.",
                    )
                    .sample(&l, v);
                }
                if let Some(v) = count(dir, ue) {
                    out.counter(
                        "node_edac_csrow_uncorrectable_errors_total",
                        "Total uncorrectable memory errors for this csrow.",
                    )
                    .sample(&l, v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};

    #[test]
    fn golden() {
        let c = Edac {
            mc: testdata().join("fixtures/b-edac/sys/devices/system/edac/mc"),
        };
        assert_golden("edac", &render(&c).unwrap());
    }

    #[test]
    fn no_edac_is_empty() {
        let c = Edac {
            mc: "/nonexistent".into(),
        };
        assert_eq!(render(&c).unwrap(), "");
    }
}
