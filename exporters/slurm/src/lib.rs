//! # hpcmon-slurm-exporter
//!
//! Exports the Slurm scheduler's logical state — jobs, nodes, partitions, scheduler
//! statistics, fair share, reservations, licenses — without loading `slurmctld`: a
//! background [`poller`] takes one snapshot per `--slurm.poll-interval` (one `squeue` for all
//! jobs, one `sinfo` for all nodes, one `sdiag`, and `sshare`/`scontrol` less often), and
//! every scrape is served from the last snapshot by the collectors in [`collector`], one file
//! each, named after their metrics. Text output with explicit format strings is parsed by
//! the pure functions in [`parse`].
//!
//! A failing or hung command (each runs under `--slurm.command-timeout` and is killed with
//! its process group) marks the collectors that need it unsuccessful
//! (`slurm_scrape_collector_success 0`) while the last good data is still served, flagged by
//! `slurm_collector_stale 1`.
//!
//! The same snapshot feeds Prometheus' HTTP service discovery of the cluster's nodes
//! (`/sd/nodes`, [`sd`]).

pub mod collector;
pub mod parse;
pub mod poller;
pub mod sd;

/// Who this exporter is.
pub const META: hpcmon_kit::Meta = hpcmon_kit::Meta {
    namespace: "slurm",
    binary: "hpcmon-slurm-exporter",
    description: "Prometheus exporter for the Slurm scheduler: jobs, nodes, partitions, scheduler statistics, fair share, reservations and licenses, from one snapshot per poll interval.",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: ":9341",
};
