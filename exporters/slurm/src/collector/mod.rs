//! The Slurm exporter's collectors, one file each, named after the metrics they expose
//! (`slurm_jobs_*` in [`jobs`], `slurm_node_*`/`slurm_nodes_*` in [`nodes`], ...). Each
//! reads the poller's last snapshot of the sources it needs and never runs a command.
//! The compatibility families of prometheus-slurm-exporter and OpenSCOW are produced next to
//! the native ones they derive from (see the crate README for the mapping).

use std::sync::Arc;

use hpcmon_kit::{Collector, CollectorSpec, Context, MetricSet, PartialMetrics};

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

/// Label cardinality switches.
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
    /// Most jobs exported in each per-job family (`slurm_job_info`, `slurm_job_cpus`, ...);
    /// the jobs with the lowest ids are kept, the rest counted in `slurm_job_series_dropped`.
    #[arg(
        long = "slurm.job-series-limit",
        default_value_t = 20000,
        value_name = "N"
    )]
    pub job_series_limit: usize,
    /// Also export pending jobs in the per-job families (not only jobs holding resources).
    #[arg(long = "slurm.job-info-pending", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub job_info_pending: bool,
    /// Per-node families of the nodes collector to export, comma-separated: `cpus`, `memory`,
    /// `gpus`, `load`, `state`, `flags`, `reason`, `info`; `all` or `none`. The cluster-level
    /// families (`slurm_nodes_*`, `slurm_cpus_*`, `slurm_gpus_*`) are always exported.
    #[arg(long = "slurm.node-families", default_value = "all", value_parser = NodeFamilies::parse, value_name = "LIST")]
    pub node_families: NodeFamilies,
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
            job_series_limit: 20000,
            job_info_pending: false,
            node_families: NodeFamilies::ALL,
        }
    }
}

/// Every collector, its default and what it reads.
pub const SPECS: &[CollectorSpec] = &[
    CollectorSpec {
        name: "cluster",
        default_enabled: true,
        help: "slurm_cluster_info and slurm_exporter_private_data from scontrol show config",
    },
    CollectorSpec {
        name: "command",
        default_enabled: true,
        help: "Success, duration and data age of each Slurm command the poller runs",
    },
    CollectorSpec {
        name: "fairshare",
        default_enabled: true,
        help: "Fair share per account (and user) from sshare",
    },
    CollectorSpec {
        name: "job",
        default_enabled: true,
        help: "Per-job identity and resources of running jobs: slurm_job_info, slurm_job_cpus, ... (squeue)",
    },
    CollectorSpec {
        name: "jobs",
        default_enabled: true,
        help: "Jobs by state/partition/account/user, pending reasons, allocated CPUs/memory/GPUs, arrays (squeue)",
    },
    CollectorSpec {
        name: "licenses",
        default_enabled: true,
        help: "License totals and use from scontrol show licenses",
    },
    CollectorSpec {
        name: "nodes",
        default_enabled: true,
        help: "Node states and flags, per-node CPUs/memory/GPUs/load, drain reasons (sinfo)",
    },
    CollectorSpec {
        name: "partitions",
        default_enabled: true,
        help: "Per-partition CPUs/GPUs/nodes by state and jobs by state (sinfo + squeue)",
    },
    CollectorSpec {
        name: "reservations",
        default_enabled: true,
        help: "Reservations from scontrol show reservation",
    },
    CollectorSpec {
        name: "scheduler",
        default_enabled: true,
        help: "Scheduler cycle times, queues, threads and RPC statistics from sdiag",
    },
];

/// The sources a collector reads.
pub fn sources_of(name: &str) -> &'static [Source] {
    match name {
        "cluster" => &[Source::Config],
        // squeue: per-user fair share only for associations with jobs, ranked like the jobs.
        "fairshare" => &[Source::Sshare, Source::Squeue],
        "job" | "jobs" => &[Source::Squeue],
        "licenses" => &[Source::Licenses],
        "nodes" => &[Source::Sinfo],
        "partitions" => &[Source::Sinfo, Source::Squeue],
        "reservations" => &[Source::Reservations],
        "scheduler" => &[Source::Sdiag],
        _ => &[],
    }
}

/// The sources the enabled collectors need (the poller runs only these).
pub fn sources_for(enabled: &[&str]) -> Vec<Source> {
    Source::ALL
        .into_iter()
        .filter(|s| enabled.iter().any(|c| sources_of(c).contains(s)))
        .collect()
}

/// Builds the collector named `name` (one of [`SPECS`]).
pub fn build(
    name: &str,
    poller: &Poller,
    labels: &LabelFlags,
) -> anyhow::Result<Arc<dyn Collector>> {
    let p = poller.clone();
    let l = labels.clone();
    let c: Arc<dyn Collector> = match name {
        "command" => Arc::new(command::CommandCollector(p)),
        "cluster" => Arc::new(FromSnapshot::new("cluster", p, l, cluster::collect)),
        "fairshare" => Arc::new(FromSnapshot::new("fairshare", p, l, fairshare::collect)),
        "job" => Arc::new(FromSnapshot::new("job", p, l, job::collect)),
        "jobs" => Arc::new(FromSnapshot::new("jobs", p, l, jobs::collect)),
        "licenses" => Arc::new(FromSnapshot::new("licenses", p, l, licenses::collect)),
        "nodes" => Arc::new(FromSnapshot::new("nodes", p, l, nodes::collect)),
        "partitions" => Arc::new(FromSnapshot::new("partitions", p, l, partitions::collect)),
        "reservations" => Arc::new(FromSnapshot::new(
            "reservations",
            p,
            l,
            reservations::collect,
        )),
        "scheduler" => Arc::new(FromSnapshot::new("scheduler", p, l, scheduler::collect)),
        other => anyhow::bail!("unknown collector {other:?}"),
    };
    Ok(c)
}

/// The data a collector reads: one entry per source of [`sources_of`], in that order.
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

type CollectFn = fn(&Inputs<'_>, &mut MetricSet);

/// A collector computed from the poller's snapshot of its sources.
pub struct FromSnapshot {
    name: &'static str,
    poller: Poller,
    labels: LabelFlags,
    f: CollectFn,
}

impl FromSnapshot {
    /// A collector `name` that renders its sources' data with `f`.
    pub fn new(name: &'static str, poller: Poller, labels: LabelFlags, f: CollectFn) -> Self {
        Self {
            name,
            poller,
            labels,
            f,
        }
    }
}

impl Collector for FromSnapshot {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        self.poller.wait_first_poll(ctx.deadline);
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for &s in sources_of(self.name) {
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
