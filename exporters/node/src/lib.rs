//! # hpcmon-node-exporter
//!
//! A drop-in replacement for Prometheus' node_exporter on HPC nodes: the same metric names,
//! types, labels and units for the collectors listed in [`collector::REGISTRY`], at a fraction
//! of the cost per scrape, with hard deadlines (a hung NFS mount cannot stall a scrape), plus
//! per-Slurm-job cgroup usage.
//!
//! Each collector is one file in [`collector`], named after its metrics.

pub mod cli;
pub mod collector;

/// Who this exporter is.
pub const META: hpcmon_kit::Meta = hpcmon_kit::Meta {
    namespace: "node",
    binary: "hpcmon-node-exporter",
    description: "Prometheus exporter for machine metrics (node_exporter compatible), with per-Slurm-job usage.",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: ":9100",
};
