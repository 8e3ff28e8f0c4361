//! `textfile` collector: Metrics from *.prom files in --collector.textfile.directory.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `textfile` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `textfile` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the textfile collector is not written yet")
}
