//! `slurm_jobs*` from squeue: jobs by state, partition, account and user; pending jobs by
//! reason; CPUs, memory and GPUs allocated to running jobs; job arrays. Also the
//! prometheus-slurm-exporter `slurm_queue_<state>` families.

use std::collections::{BTreeMap, HashMap};

use hpcmon_kit::MetricSet;

use super::Inputs;

/// Job states whose resources count as allocated.
pub const ALLOCATING_STATES: &[&str] = &["RUNNING", "COMPLETING", "CONFIGURING"];

/// The states reported as `slurm_queue_<state>` (prometheus-slurm-exporter), and the squeue
/// state each counts.
pub const QUEUE_COMPAT: &[(&str, &str)] = &[
    ("pending", "PENDING"),
    ("running", "RUNNING"),
    ("suspended", "SUSPENDED"),
    ("cancelled", "CANCELLED"),
    ("completing", "COMPLETING"),
    ("completed", "COMPLETED"),
    ("configuring", "CONFIGURING"),
    ("failed", "FAILED"),
    ("timeout", "TIMEOUT"),
    ("preempted", "PREEMPTED"),
    ("node_fail", "NODE_FAIL"),
];

/// A pending reason as a label: node names in `ReqNodeNotAvail, UnavailableNodes:n[1-3]`
/// are dropped to bound cardinality.
pub fn reason_label(r: &str) -> &str {
    match r.find(", UnavailableNodes") {
        Some(i) => &r[..i],
        None => r,
    }
}

#[derive(Default, Clone, Copy)]
struct Alloc {
    cpus: f64,
    mem: f64,
    gpus: f64,
    nodes: f64,
}

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Squeue];

/// The `jobs` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("jobs", SOURCES, collect))
}

/// Renders the jobs metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let Some(q) = inp.squeue() else { return };
    let by_user = inp.labels.by_user;
    let by_account = inp.labels.by_account;
    let ranked = super::Ranked::new(q, inp.labels);
    fn who<'j>(
        j: &'j crate::parse::squeue::Job,
        r: &super::Ranked<'_>,
        by_account: bool,
        by_user: bool,
    ) -> (&'j str, &'j str) {
        (
            if by_account {
                r.account(&j.account)
            } else {
                ""
            },
            if by_user { r.user(&j.user) } else { "" },
        )
    }

    let mut counts: HashMap<(&str, &str, &str, &str), f64> = HashMap::new();
    let mut pending: HashMap<(&str, &str), f64> = HashMap::new();
    let mut alloc: HashMap<(&str, &str, &str), Alloc> = HashMap::new();
    let mut gpu_types: HashMap<(&str, &str, &str), BTreeMap<&str, f64>> = HashMap::new();
    let mut by_state: BTreeMap<&str, f64> = BTreeMap::new();
    let mut array_tasks: BTreeMap<&str, f64> = BTreeMap::new();
    let mut arrays: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut pending_dep = 0.0;
    for j in &q.jobs {
        let (a, u) = who(j, &ranked, by_account, by_user);
        *counts
            .entry((&*j.state, j.primary_partition(), a, u))
            .or_default() += 1.0;
        *by_state.entry(&*j.state).or_default() += 1.0;
        if &*j.state == "PENDING" {
            *pending
                .entry((j.primary_partition(), reason_label(&j.reason)))
                .or_default() += 1.0;
            if &*j.reason == "Dependency" {
                pending_dep += 1.0;
            }
        }
        if ALLOCATING_STATES.contains(&&*j.state) {
            let e = alloc.entry((j.primary_partition(), a, u)).or_default();
            e.cpus += if j.tres.cpus > 0.0 {
                j.tres.cpus
            } else {
                j.cpus
            };
            e.mem += j.tres.memory_bytes;
            e.gpus += j.tres.gpus;
            let g = gpu_types.entry((j.primary_partition(), a, u)).or_default();
            for (t, n) in j.gpu_types.iter() {
                *g.entry(&**t).or_default() += n;
            }
            e.nodes += if j.tres.nodes > 0.0 {
                j.tres.nodes
            } else {
                j.nodes
            };
        }
        if j.is_array_task() {
            *array_tasks.entry(&*j.state).or_default() += 1.0;
            arrays.insert(j.array_job_id);
        }
    }

    let who_labels = |a: &str, u: &str, mut l: Vec<(String, String)>| {
        if by_account {
            l.push(("account".into(), a.to_string()));
        }
        if by_user {
            l.push(("user".into(), u.to_string()));
        }
        l
    };

    let mut keys: Vec<_> = counts.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let f = out.gauge(
        "slurm_jobs",
        "Jobs (array tasks counted one by one) by state, partition, account and user, as squeue lists them.",
    );
    for ((state, part, a, u), v) in keys {
        let l = who_labels(
            a,
            u,
            vec![
                ("state".into(), state.to_string()),
                ("partition".into(), part.to_string()),
            ],
        );
        f.sample_owned(l, v);
    }

    let mut pend: Vec<_> = pending.into_iter().collect();
    pend.sort_by(|a, b| a.0.cmp(&b.0));
    let f = out.gauge(
        "slurm_jobs_pending",
        "Pending jobs by partition and pending reason.",
    );
    for ((part, reason), v) in pend {
        f.sample(&[("partition", part), ("reason", reason)], v);
    }

    let mut al: Vec<_> = alloc.into_iter().collect();
    al.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, help, get) in [
        ("slurm_jobs_cpus_allocated", "CPUs allocated to running jobs, by partition, account and user.", (|x: &Alloc| x.cpus) as fn(&Alloc) -> f64),
        ("slurm_jobs_memory_allocated_bytes", "Memory allocated to running jobs (TRES mem), by partition, account and user.", |x: &Alloc| x.mem),
        ("slurm_jobs_nodes_allocated", "Nodes allocated to running jobs (a shared node counts once per job), by partition, account and user.", |x: &Alloc| x.nodes),
    ] {
        let f = out.gauge(name, help);
        for ((part, a, u), x) in &al {
            f.sample_owned(who_labels(a, u, vec![("partition".into(), part.to_string())]), get(x));
        }
    }

    let f = out.gauge(
        "slurm_jobs_gpus_allocated",
        "GPUs allocated to running jobs (TRES gres/gpu), by partition, account, user and GRES type (type=\"\" for untyped GPUs).",
    );
    for ((part, a, u), x) in &al {
        let types = gpu_types.get(&(*part, *a, *u));
        let mut typed = 0.0;
        for (t, n) in types.into_iter().flatten() {
            typed += n;
            f.sample_owned(
                who_labels(
                    a,
                    u,
                    vec![
                        ("partition".into(), part.to_string()),
                        ("type".into(), t.to_string()),
                    ],
                ),
                *n,
            );
        }
        if typed == 0.0 {
            f.sample_owned(
                who_labels(
                    a,
                    u,
                    vec![
                        ("partition".into(), part.to_string()),
                        ("type".into(), String::new()),
                    ],
                ),
                x.gpus,
            );
        }
    }

    let f = out.gauge("slurm_jobs_array_tasks", "Job array tasks by state.");
    for (s, v) in &array_tasks {
        f.sample(&[("state", s)], *v);
    }
    out.gauge(
        "slurm_job_arrays",
        "Job arrays with at least one task in squeue.",
    )
    .sample(&[], arrays.len() as f64);

    // prometheus-slurm-exporter compatibility: one unlabelled gauge per state.
    for (name, state) in QUEUE_COMPAT {
        out.gauge(
            format!("slurm_queue_{name}"),
            format!("Jobs in state {state} (prometheus-slurm-exporter name; = sum(slurm_jobs{{state=\"{state}\"}}))."),
        )
        .sample(&[], by_state.get(state).copied().unwrap_or(0.0));
    }
    out.gauge(
        "slurm_queue_pending_dependency",
        "Pending jobs waiting for a dependency (prometheus-slurm-exporter name).",
    )
    .sample(&[], pending_dep);

    if by_user {
        out.gauge(
            "slurm_exporter_users_folded",
            "Users with jobs whose job families are summed under user=\"other\" (beyond --slurm.top-users).",
        )
        .sample(&[], ranked.users_folded as f64);
    }
    if by_account {
        out.gauge(
            "slurm_exporter_accounts_folded",
            "Accounts with jobs whose job families are summed under account=\"other\" (beyond --slurm.top-accounts).",
        )
        .sample(&[], ranked.accounts_folded as f64);
    }
}
