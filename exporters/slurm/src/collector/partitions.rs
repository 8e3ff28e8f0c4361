//! `slurm_partition_*` from sinfo (nodes, CPUs, GPUs) and squeue (jobs): per partition
//! CPUs/GPUs/nodes by state, jobs by state, and the size of the pending work. The CPU
//! families are also prometheus-slurm-exporter's names, and
//! `slurm_partition_jobs_{running,pending,suspended,completing}` are OpenSCOW's.

use std::collections::BTreeMap;

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::parse::state::BASE_STATES;

#[derive(Default)]
struct Part {
    cpus: [f64; 4],
    gpus: BTreeMap<String, (f64, f64)>,
    nodes: BTreeMap<String, f64>,
    flags: BTreeMap<String, f64>,
    jobs: BTreeMap<std::sync::Arc<str>, f64>,
    pending_cpus: f64,
    pending_nodes: f64,
    pending_max_cpus: f64,
}

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] =
    &[crate::poller::Source::Sinfo, crate::poller::Source::Squeue];

/// The `partitions` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("partitions", SOURCES, collect))
}

/// Renders the partition metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let (Some(s), Some(q)) = (inp.sinfo(), inp.squeue()) else {
        return;
    };
    let mut parts: BTreeMap<&str, Part> = BTreeMap::new();
    for p in &s.partitions {
        let e = parts.entry(p.as_str()).or_default();
        for b in BASE_STATES {
            e.nodes.insert(b.to_string(), 0.0);
        }
    }
    for n in s.nodes.values() {
        for p in &n.partitions {
            let e = parts.entry(p.as_str()).or_default();
            e.cpus[0] += n.cpus_alloc;
            e.cpus[1] += n.cpus_idle;
            e.cpus[2] += n.cpus_other;
            e.cpus[3] += n.cpus_total;
            for (t, tot, used) in &n.gpu_types {
                let g = e.gpus.entry(t.clone()).or_default();
                g.0 += tot;
                g.1 += used;
            }
            *e.nodes.entry(n.state.base.clone()).or_default() += 1.0;
            for f in &n.state.flags {
                *e.flags.entry(f.clone()).or_default() += 1.0;
            }
        }
    }
    for j in &q.jobs {
        // A pending job may name several partitions (`gpu,debug`); like slurm_jobs, it
        // counts once, under the first one listed.
        let Some(e) = parts.get_mut(j.primary_partition()) else {
            continue;
        };
        *e.jobs.entry(j.state.clone()).or_default() += 1.0;
        if &*j.state == "PENDING" {
            e.pending_cpus += j.cpus;
            e.pending_nodes += j.nodes;
            e.pending_max_cpus = e.pending_max_cpus.max(j.cpus);
        }
    }

    for (i, (k, what)) in [
        ("allocated", "allocated"),
        ("idle", "idle"),
        ("other", "neither allocated nor idle (down, drained)"),
        ("total", "in total"),
    ]
    .iter()
    .enumerate()
    {
        let f = out.gauge(
            format!("slurm_partition_cpus_{k}"),
            format!(
                "CPUs {what} in the partition's nodes (also prometheus-slurm-exporter's name)."
            ),
        );
        for (p, e) in &parts {
            f.sample(&[("partition", p)], e.cpus[i]);
        }
    }
    for (name, help, total) in [
        (
            "slurm_partition_gpus_total",
            "GPUs in the partition's nodes, by GRES type (type=\"\" for untyped GPUs).",
            true,
        ),
        (
            "slurm_partition_gpus_allocated",
            "GPUs in use in the partition's nodes, by GRES type (type=\"\" for untyped GPUs).",
            false,
        ),
    ] {
        let f = out.gauge(name, help);
        for (p, e) in &parts {
            if e.gpus.is_empty() {
                f.sample(&[("partition", p), ("type", "")], 0.0);
            }
            for (t, (tot, used)) in &e.gpus {
                f.sample(
                    &[("partition", p), ("type", t.as_str())],
                    if total { *tot } else { *used },
                );
            }
        }
    }
    let f = out.gauge(
        "slurm_partition_nodes",
        "The partition's nodes by base state.",
    );
    for (p, e) in &parts {
        for (st, v) in &e.nodes {
            f.sample(&[("partition", p), ("state", st)], *v);
        }
    }
    let f = out.gauge(
        "slurm_partition_nodes_flag",
        "The partition's nodes with each state flag set.",
    );
    for (p, e) in &parts {
        for (fl, v) in &e.flags {
            f.sample(&[("partition", p), ("flag", fl)], *v);
        }
    }
    let f = out.gauge("slurm_partition_jobs", "Jobs in the partition by state.");
    for (p, e) in &parts {
        for (st, v) in &e.jobs {
            f.sample(&[("partition", p), ("state", st)], *v);
        }
    }
    for (name, help, get) in [
        (
            "slurm_partition_pending_cpus",
            "CPUs requested by the partition's pending jobs.",
            (|e: &Part| e.pending_cpus) as fn(&Part) -> f64,
        ),
        (
            "slurm_partition_pending_nodes",
            "Nodes requested by the partition's pending jobs.",
            |e: &Part| e.pending_nodes,
        ),
        (
            "slurm_partition_pending_job_max_cpus",
            "CPUs requested by the partition's largest pending job.",
            |e: &Part| e.pending_max_cpus,
        ),
    ] {
        let f = out.gauge(name, help);
        for (p, e) in &parts {
            f.sample(&[("partition", p)], get(e));
        }
    }
    // OpenSCOW's job-scheduler dashboard.
    for (k, st) in [
        ("running", "RUNNING"),
        ("pending", "PENDING"),
        ("suspended", "SUSPENDED"),
        ("completing", "COMPLETING"),
    ] {
        let f = out.gauge(
            format!("slurm_partition_jobs_{k}"),
            format!("Jobs in state {st} in the partition (OpenSCOW name; = slurm_partition_jobs{{state=\"{st}\"}})."),
        );
        for (p, e) in &parts {
            f.sample(&[("partition", p)], e.jobs.get(st).copied().unwrap_or(0.0));
        }
    }
}
