//! `stat` collector: Boot time, context switches, forks, interrupts and processes from /proc/stat.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Builds the `stat` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the stat collector is not written yet")
}
