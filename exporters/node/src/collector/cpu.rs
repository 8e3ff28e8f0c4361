//! `cpu` collector: CPU time per mode, node_cpu_info, guest time, throttles.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `cpu` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `cpu` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the cpu collector is not written yet")
}
