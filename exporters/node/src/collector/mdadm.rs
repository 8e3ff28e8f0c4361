//! `mdadm` collector: Software RAID status from /proc/mdstat.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Builds the `mdadm` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the mdadm collector is not written yet")
}
