//! `netclass` collector: Network interface properties from /sys/class/net.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `netclass` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `netclass` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the netclass collector is not written yet")
}
