//! `uname` collector: Kernel and host identification from uname(2).

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Builds the `uname` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the uname collector is not written yet")
}
