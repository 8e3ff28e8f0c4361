//! `netdev` collector: Network interface counters from /proc/net/dev.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `netdev` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `netdev` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the netdev collector is not written yet")
}
