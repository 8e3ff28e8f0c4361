//! `edac` collector: EDAC memory error counters from sysfs.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Builds the `edac` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the edac collector is not written yet")
}
