//! The Slurm exporter's collectors, one file each, named after the metrics they expose
//! (`slurm_jobs_*` in [`jobs`], `slurm_node_*`/`slurm_nodes_*` in [`nodes`], ...). Each
//! reads the poller's last snapshot of the sources it needs and never runs a command.
//! The compatibility families of prometheus-slurm-exporter and OpenSCOW are produced next to
//! the native ones they derive from (see the crate README for the mapping).
//!
//! To add a collector: write `NAME.rs` with a `pub fn new(&Config) -> anyhow::Result<Arc<dyn
//! Collector>>` (usually `cfg.snapshot("NAME", collect)`; if it has flags, a
//! `#[group(skip)] pub struct Flags` deriving `clap::Args`, read with `cfg.flags::<Flags>()`),
//! then add `pub mod NAME;` and one row to [`REGISTRY`]. The sources it names in
//! `cfg.snapshot` are what the poller runs for it: the poller starts after the enabled
//! collectors are built and runs only the Slurm commands they read.

use std::sync::Arc;

use hpcmon_kit::registry::{flags, CollectorFlags, Registration};
use hpcmon_kit::{Collector, Context, MetricSet, PartialMetrics};

use crate::poller::{Data, Poller, Source};

pub mod cluster;
pub mod command;
pub mod fairshare;
pub mod job;
pub mod jobs;
pub mod licenses;
pub mod nodes;
pub mod partitions;
pub mod reservations;
pub mod scheduler;

/// Label cardinality switches, shared by the collectors that label by user or account
/// (the per-collector caps are in their files: [`job::Flags`], [`nodes::Flags`]).
#[derive(Debug, Clone, clap::Args)]
pub struct LabelFlags {
    /// Break job counts and allocations down by user; also gates every other per-user
    /// family (`slurm_user_*` fair share, `slurm_scheduler_rpc_user_*`).
    #[arg(long = "slurm.jobs-by-user", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub by_user: bool,
    /// Break job counts and allocations down by account.
    #[arg(long = "slurm.jobs-by-account", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub by_account: bool,
    /// Most users given their own `user` label value; the rest (ranked by activity: allocated
    /// CPUs plus pending jobs) are summed under `user="other"`. 0: no limit.
    #[arg(long = "slurm.top-users", default_value_t = 100, value_name = "N")]
    pub top_users: usize,
    /// Most accounts given their own `account` label value in the job families; the rest are
    /// summed under `account="other"`. 0: no limit.
    #[arg(long = "slurm.top-accounts", default_value_t = 100, value_name = "N")]
    pub top_accounts: usize,
}

/// A group of per-node families of the nodes collector (`--slurm.node-families`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFamily {
    /// `slurm_node_cpus_{allocated,idle,other,total}`.
    Cpus,
    /// `slurm_node_memory_{total,allocated,free}_bytes`.
    Memory,
    /// `slurm_node_gpus_{total,used}`.
    Gpus,
    /// `slurm_node_cpu_load`.
    Load,
    /// `slurm_node_state`.
    State,
    /// `slurm_node_state_flag`.
    Flags,
    /// `slurm_node_reason_info`.
    Reason,
    /// `slurm_node_info`.
    Info,
}

impl NodeFamily {
    /// Every group with its flag name.
    pub const ALL: [(NodeFamily, &'static str); 8] = [
        (NodeFamily::Cpus, "cpus"),
        (NodeFamily::Memory, "memory"),
        (NodeFamily::Gpus, "gpus"),
        (NodeFamily::Load, "load"),
        (NodeFamily::State, "state"),
        (NodeFamily::Flags, "flags"),
        (NodeFamily::Reason, "reason"),
        (NodeFamily::Info, "info"),
    ];
}

/// The per-node family groups exported (a bit per [`NodeFamily`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFamilies(u16);

impl Default for NodeFamilies {
    fn default() -> Self {
        Self::ALL
    }
}

impl NodeFamilies {
    /// Every group.
    pub const ALL: Self = Self((1 << NodeFamily::ALL.len()) - 1);
    /// No group.
    pub const NONE: Self = Self(0);

    /// Whether group `f` is exported.
    pub fn has(self, f: NodeFamily) -> bool {
        self.0 & (1 << f as u16) != 0
    }

    /// Parses `cpus,memory,...`, `all` or `none`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut m = 0u16;
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t {
                "all" => m = Self::ALL.0,
                "none" => {}
                _ => match NodeFamily::ALL.iter().find(|(_, n)| *n == t) {
                    Some((f, _)) => m |= 1 << *f as u16,
                    None => {
                        let names: Vec<&str> = NodeFamily::ALL.iter().map(|(_, n)| *n).collect();
                        return Err(format!(
                            "unknown node family {t:?} (one of {}, all, none)",
                            names.join(", ")
                        ));
                    }
                },
            }
        }
        Ok(Self(m))
    }
}

impl Default for LabelFlags {
    fn default() -> Self {
        Self {
            by_user: true,
            by_account: true,
            top_users: 100,
            top_accounts: 100,
        }
    }
}

const ON: bool = true;

/// Every collector: name, default, help line, flags and constructor. One row each.
pub const REGISTRY: &[Registration<Config>] = &[
    Registration::new(
        "cluster",
        ON,
        "slurm_cluster_info and slurm_exporter_private_data from scontrol show config",
        cluster::new,
    ),
    Registration::new(
        "command",
        ON,
        "Success, duration and data age of each Slurm command the poller runs",
        command::new,
    ),
    Registration::new(
        "fairshare",
        ON,
        "Fair share per account (and user) from sshare",
        fairshare::new,
    ),
    Registration::new(
        "job",
        ON,
        "Per-job identity and resources of running jobs: slurm_job_info, slurm_job_cpus, ... (squeue)",
        job::new,
    )
    .flags(flags::<job::Flags>()),
    Registration::new(
        "jobs",
        ON,
        "Jobs by state/partition/account/user, pending reasons, allocated CPUs/memory/GPUs, arrays (squeue)",
        jobs::new,
    ),
    Registration::new(
        "licenses",
        ON,
        "License totals and use from scontrol show licenses",
        licenses::new,
    ),
    Registration::new(
        "nodes",
        ON,
        "Node states and flags, per-node CPUs/memory/GPUs/load, drain reasons (sinfo)",
        nodes::new,
    )
    .flags(flags::<nodes::Flags>()),
    Registration::new(
        "partitions",
        ON,
        "Per-partition CPUs/GPUs/nodes by state and jobs by state (sinfo + squeue)",
        partitions::new,
    ),
    Registration::new(
        "reservations",
        ON,
        "Reservations from scontrol show reservation",
        reservations::new,
    ),
    Registration::new(
        "scheduler",
        ON,
        "Scheduler cycle times, queues, threads and RPC statistics from sdiag",
        scheduler::new,
    ),
];

/// What every collector is built from: the poller (one, shared by all collectors), the
/// label switches and each collector's own flags.
#[derive(Clone)]
pub struct Config {
    /// The poller whose snapshot the collectors read.
    pub poller: Poller,
    /// Label cardinality switches.
    pub labels: LabelFlags,
    /// Every registered collector's flags, by type (see [`Config::flags`]).
    pub collector_flags: CollectorFlags,
}

impl Config {
    /// Settings over `poller` with `labels` and every collector's default flags (tests
    /// replace some with [`Config::with`]).
    pub fn new(poller: Poller, labels: LabelFlags) -> Self {
        let mut collector_flags = CollectorFlags::default();
        collector_flags.set(job::Flags::default());
        collector_flags.set(nodes::Flags::default());
        Self {
            poller,
            labels,
            collector_flags,
        }
    }

    /// The same settings with the flags `f` of one collector.
    pub fn with<F: std::any::Any + Send + Sync>(mut self, f: F) -> Self {
        self.collector_flags.set(f);
        self
    }

    /// The parsed flags of type `F` (a collector's `Flags`, registered in its row).
    pub fn flags<F: std::any::Any>(&self) -> anyhow::Result<&F> {
        self.collector_flags.get::<F>()
    }

    /// A collector `name` that renders the data of `sources` (which the poller then runs)
    /// with `f`.
    pub fn snapshot(
        &self,
        name: &'static str,
        sources: &'static [Source],
        f: impl Fn(&Inputs<'_>, &mut MetricSet) + Send + Sync + 'static,
    ) -> Arc<dyn Collector> {
        self.poller.need(sources);
        Arc::new(FromSnapshot::new(
            name,
            sources,
            self.poller.clone(),
            self.labels.clone(),
            f,
        ))
    }
}

/// Builds the registered collector called `name` (tests and benchmarks; the binary builds
/// the enabled ones through the kit).
pub fn build(name: &str, cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    hpcmon_kit::registry::build_named(REGISTRY, name, cfg)
}

/// The data a collector reads: one entry per source it declared, in that order.
pub struct Inputs<'a> {
    /// The data.
    pub data: Vec<&'a Data>,
    /// Label switches.
    pub labels: &'a LabelFlags,
}

impl Inputs<'_> {
    /// The jobs, when this collector reads squeue.
    pub fn squeue(&self) -> Option<&crate::parse::squeue::Squeue> {
        self.data.iter().find_map(|d| match d {
            Data::Squeue(s) => Some(s),
            _ => None,
        })
    }
    /// The nodes, when this collector reads sinfo.
    pub fn sinfo(&self) -> Option<&crate::parse::sinfo::Sinfo> {
        self.data.iter().find_map(|d| match d {
            Data::Sinfo(s) => Some(s),
            _ => None,
        })
    }
}

/// The label value of users and accounts folded together by `--slurm.top-users` and
/// `--slurm.top-accounts`.
pub const OTHER: &str = "other";

/// The `n` keys with the highest activity (ties broken by name; `n == 0`: all of them).
pub fn top_n<'a>(
    activity: &std::collections::HashMap<&'a str, f64>,
    n: usize,
) -> std::collections::HashSet<&'a str> {
    let mut v: Vec<(&str, f64)> = activity.iter().map(|(k, v)| (*k, *v)).collect();
    if n > 0 && v.len() > n {
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
    }
    v.into_iter().map(|(k, _)| k).collect()
}

/// The users and accounts of the squeue jobs that keep their own label value: the
/// `--slurm.top-users`/`--slurm.top-accounts` most active (allocated CPUs of running jobs
/// plus pending jobs).
pub struct Ranked<'a> {
    /// Users kept.
    pub users: std::collections::HashSet<&'a str>,
    /// Accounts kept.
    pub accounts: std::collections::HashSet<&'a str>,
    /// Users with jobs that are folded into `other`.
    pub users_folded: usize,
    /// Accounts with jobs that are folded into `other`.
    pub accounts_folded: usize,
}

impl<'a> Ranked<'a> {
    /// Ranks the users and accounts of `q`.
    pub fn new(q: &'a crate::parse::squeue::Squeue, labels: &LabelFlags) -> Self {
        let mut users: std::collections::HashMap<&str, f64> = Default::default();
        let mut accounts: std::collections::HashMap<&str, f64> = Default::default();
        for j in &q.jobs {
            let a = if jobs::ALLOCATING_STATES.contains(&&*j.state) {
                if j.tres.cpus > 0.0 {
                    j.tres.cpus
                } else {
                    j.cpus
                }
            } else if &*j.state == "PENDING" {
                1.0
            } else {
                0.0
            };
            *users.entry(&*j.user).or_default() += a;
            *accounts.entry(&*j.account).or_default() += a;
        }
        let ku = top_n(&users, labels.top_users);
        let ka = top_n(&accounts, labels.top_accounts);
        Self {
            users_folded: users.len() - ku.len(),
            accounts_folded: accounts.len() - ka.len(),
            users: ku,
            accounts: ka,
        }
    }
    /// The label value of user `u`.
    pub fn user<'b>(&self, u: &'b str) -> &'b str {
        if self.users.contains(u) {
            u
        } else {
            OTHER
        }
    }
    /// The label value of account `a`.
    pub fn account<'b>(&self, a: &'b str) -> &'b str {
        if self.accounts.contains(a) {
            a
        } else {
            OTHER
        }
    }
}

type CollectFn = Box<dyn Fn(&Inputs<'_>, &mut MetricSet) + Send + Sync>;

/// A collector computed from the poller's snapshot of its sources.
pub struct FromSnapshot {
    name: &'static str,
    sources: &'static [Source],
    poller: Poller,
    labels: LabelFlags,
    f: CollectFn,
}

impl FromSnapshot {
    /// A collector `name` that renders the data of `sources` with `f`.
    pub fn new(
        name: &'static str,
        sources: &'static [Source],
        poller: Poller,
        labels: LabelFlags,
        f: impl Fn(&Inputs<'_>, &mut MetricSet) + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            sources,
            poller,
            labels,
            f: Box::new(f),
        }
    }
}

impl Collector for FromSnapshot {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        self.poller.wait_first_poll(ctx.deadline);
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for &s in self.sources {
            let st = self.poller.state(s).unwrap_or_default();
            match &st.data {
                Some(d) => data.push(d.clone()),
                None => anyhow::bail!(
                    "no data from {} yet: {}",
                    s.name(),
                    st.error.as_deref().unwrap_or("not polled yet")
                ),
            }
            if !st.ok {
                errors.push(format!(
                    "{} failed, serving data from the last good snapshot: {}",
                    s.name(),
                    st.error.as_deref().unwrap_or("unknown error")
                ));
            }
        }
        let inputs = Inputs {
            data: data.iter().map(|d| d.as_ref()).collect(),
            labels: &self.labels,
        };
        (self.f)(&inputs, out);
        out.gauge(
            "slurm_collector_stale",
            "Whether the collector serves data from an earlier snapshot because a Slurm command failed in the latest poll.",
        )
        .sample(&[("collector", self.name)], if errors.is_empty() { 0.0 } else { 1.0 });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PartialMetrics {
                metrics: std::mem::take(out),
                error: errors.join("; "),
            }
            .into())
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
