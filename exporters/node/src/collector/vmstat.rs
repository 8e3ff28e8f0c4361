//! `vmstat` collector: Virtual memory statistics from /proc/vmstat.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `vmstat` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `vmstat` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the vmstat collector is not written yet")
}
