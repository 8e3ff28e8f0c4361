//! `slurm_cluster_info{cluster,version}` from scontrol show config.

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::poller::Data;

/// Renders `slurm_cluster_info`.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    if let Some(c) = inp.data.iter().find_map(|d| match d {
        Data::Config(c) => Some(c),
        _ => None,
    }) {
        out.gauge(
            "slurm_cluster_info",
            "The Slurm cluster's name and the controller's version (value 1).",
        )
        .sample(
            &[
                ("cluster", c.cluster.as_str()),
                ("version", c.version.as_str()),
            ],
            1.0,
        );
    }
}
