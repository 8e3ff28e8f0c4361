//! `cpufreq` collector: CPU frequency scaling from sysfs.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Builds the `cpufreq` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the cpufreq collector is not written yet")
}
