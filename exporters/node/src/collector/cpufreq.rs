//! `cpufreq` collector: CPU frequency scaling from `devices/system/cpu/cpu*/cpufreq/` in
//! sysfs: `node_cpu_frequency_{,max_,min_}hertz` (cpuinfo_*_freq) and
//! `node_cpu_scaling_frequency_{,max_,min_}hertz` (scaling_*_freq), like node_exporter 1.5,
//! plus `node_cpu_scaling_governor{cpu,governor}` (1 for the active governor, 0 for the
//! other available ones) as later node_exporter versions expose it. Machines without cpufreq
//! (most VMs) produce no samples and no error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::{sysfs, Collector, Context, MetricSet};

use super::Config;

/// Files (kHz) and the metrics they become.
const FREQS: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum cpu thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum cpu thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

/// One CPU's cpufreq directory, read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CpuFreq {
    pub cpu: u64,
    /// Values of [`FREQS`] in kHz (`None`: file absent or unreadable, e.g. cpuinfo_cur_freq
    /// is root-only).
    pub khz: [Option<u64>; 6],
    pub governor: Option<String>,
    pub available_governors: Vec<String>,
}

/// Reads `cpu_dir/cpuN/cpufreq/` for every CPU that has it, in CPU order.
pub(crate) fn read_all(cpu_dir: &Path) -> Vec<CpuFreq> {
    let Ok(entries) = std::fs::read_dir(cpu_dir) else {
        return Vec::new();
    };
    let mut cpus: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok()?;
            let dir = e.path().join("cpufreq");
            dir.is_dir().then_some((n, dir))
        })
        .collect();
    cpus.sort();
    cpus.into_iter()
        .map(|(cpu, dir)| {
            let mut khz = [None; 6];
            for (slot, (file, _, _)) in khz.iter_mut().zip(FREQS) {
                *slot = sysfs::attr(&dir.join(file))
                    .ok()
                    .and_then(|s| s.parse().ok());
            }
            CpuFreq {
                cpu,
                khz,
                governor: sysfs::attr(&dir.join("scaling_governor"))
                    .ok()
                    .filter(|g| !g.is_empty()),
                available_governors: sysfs::attr(&dir.join("scaling_available_governors"))
                    .ok()
                    .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Writes the metrics for `cpus`.
pub(crate) fn emit(cpus: &[CpuFreq], out: &mut MetricSet) {
    for (i, (_, name, help)) in FREQS.iter().enumerate() {
        let fam = out.gauge(*name, *help);
        for c in cpus {
            if let Some(v) = c.khz[i] {
                fam.sample(&[("cpu", &c.cpu.to_string())], v as f64 * 1000.0);
            }
        }
    }
    let fam = out.gauge(
        "node_cpu_scaling_governor",
        "Current enabled CPU frequency governor.",
    );
    for c in cpus {
        let Some(cur) = &c.governor else { continue };
        let cpu = c.cpu.to_string();
        let mut govs: Vec<&str> = c.available_governors.iter().map(String::as_str).collect();
        if !govs.contains(&cur.as_str()) {
            govs.push(cur);
        }
        for g in govs {
            let v = if g == cur { 1.0 } else { 0.0 };
            fam.sample(&[("cpu", &cpu), ("governor", g)], v);
        }
    }
}

struct CpuFreqCollector {
    cpu_dir: PathBuf,
}

/// Builds the `cpufreq` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(CpuFreqCollector {
        cpu_dir: cfg.paths.sys("devices/system/cpu"),
    }))
}

impl Collector for CpuFreqCollector {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        emit(&read_all(&self.cpu_dir), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};

    #[test]
    fn golden_intel_pstate_with_offline_cpu() {
        // cpu0, cpu1 (no cpuinfo_cur_freq: root-only), cpu3 (performance); cpu2 is offline
        // and has no cpufreq directory.
        let c = new(&test_config(&testdata().join("fixtures/a-cpufreq"), &[])).unwrap();
        assert_golden("cpufreq", &render(&*c).unwrap());
    }

    #[test]
    fn this_machine_has_none() {
        // A VM without cpufreq: no samples, no error.
        let c = new(&test_config(&testdata().join("fixtures/a-cpu"), &[])).unwrap();
        assert_eq!(render(&*c).unwrap(), "");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap(),
            ""
        );
    }
}
