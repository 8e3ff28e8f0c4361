//! `hwmon` collector: Hardware monitoring sensors from /sys/class/hwmon.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `hwmon` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `hwmon` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the hwmon collector is not written yet")
}
