//! `diskstats` collector: Block device I/O statistics from /proc/diskstats.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `diskstats` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `diskstats` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the diskstats collector is not written yet")
}
