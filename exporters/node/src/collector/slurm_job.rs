//! `slurm_job` collector: Per-Slurm-job CPU, memory and I/O usage from cgroups.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `slurm_job` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `slurm_job` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the slurm_job collector is not written yet")
}
