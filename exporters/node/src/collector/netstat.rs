//! `netstat` collector: Network statistics from /proc/net/{netstat,snmp,snmp6}.

use std::sync::Arc;

use hpcmon_kit::Collector;

use super::Config;

/// Flags of the `netstat` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {}

/// Builds the `netstat` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    anyhow::bail!("the netstat collector is not written yet")
}
