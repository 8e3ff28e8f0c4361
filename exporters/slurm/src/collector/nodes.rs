//! `slurm_node_*` (per node) and `slurm_nodes_*` (counts) from sinfo: base state and flags,
//! CPUs, memory, GPUs, load, drain reasons and features. Also the prometheus-slurm-exporter
//! `slurm_nodes_<state>`, `slurm_cpus_*` and `slurm_gpus_*` families, which sum the same nodes.

use std::collections::BTreeMap;

use hpcmon_kit::MetricSet;

use super::{Inputs, NodeFamilies, NodeFamily};
use crate::parse::state::{BASE_STATES, KNOWN_FLAGS};

/// The `slurm_nodes_<name>` families of prometheus-slurm-exporter.
pub const NODES_COMPAT: &[&str] = &[
    "alloc", "comp", "down", "drain", "err", "fail", "idle", "maint", "mix", "resv",
];

/// Flags of the `nodes` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Per-node families of the nodes collector to export, comma-separated: `cpus`, `memory`,
    /// `gpus`, `load`, `state`, `flags`, `reason`, `info`; `all` or `none`. The cluster-level
    /// families (`slurm_nodes_*`, `slurm_cpus_*`, `slurm_gpus_*`) are always exported.
    #[arg(long = "slurm.node-families", id = "slurm.node-families", default_value = "all", value_parser = NodeFamilies::parse, value_name = "LIST")]
    pub node_families: NodeFamilies,
}

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Sinfo];

/// The `nodes` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    let flags = cfg.flags::<Flags>()?.clone();
    Ok(cfg.snapshot("nodes", SOURCES, move |inp, out| collect(inp, &flags, out)))
}

/// Renders the node metrics.
pub fn collect(inp: &Inputs<'_>, opts: &Flags, out: &mut MetricSet) {
    let Some(s) = inp.sinfo() else { return };
    let mut base: BTreeMap<&str, f64> = BASE_STATES.iter().map(|b| (*b, 0.0)).collect();
    let mut flags: BTreeMap<&str, f64> = KNOWN_FLAGS.iter().map(|f| (*f, 0.0)).collect();
    let mut compat: BTreeMap<&str, f64> = NODES_COMPAT.iter().map(|c| (*c, 0.0)).collect();
    let (mut ca, mut ci, mut co, mut ct) = (0.0, 0.0, 0.0, 0.0);
    let (mut gt, mut gu) = (0.0, 0.0);
    for n in s.nodes.values() {
        *base.entry(n.state.base.as_str()).or_default() += 1.0;
        for f in &n.state.flags {
            *flags.entry(f.as_str()).or_default() += 1.0;
        }
        if let Some(c) = n.state.compat_bucket() {
            *compat.entry(c).or_default() += 1.0;
        }
        ca += n.cpus_alloc;
        ci += n.cpus_idle;
        co += n.cpus_other;
        ct += n.cpus_total;
        gt += n.gpus_total;
        gu += n.gpus_used;
    }
    let f = out.gauge(
        "slurm_nodes_state",
        "Nodes by base state (allocated, idle, mixed, down, ...); flags are in slurm_nodes_flag.",
    );
    for (k, v) in &base {
        f.sample(&[("state", k)], *v);
    }
    let f = out.gauge("slurm_nodes_flag", "Nodes with each state flag set (drain, not_responding, powered_down, maint, reserved, completing, fail, ...).");
    for (k, v) in &flags {
        f.sample(&[("flag", k)], *v);
    }

    let on = |g: NodeFamily| opts.node_families.has(g);
    macro_rules! per_node {
        ($name:expr, $help:expr, $get:expr) => {{
            let f = out.gauge($name, $help);
            for n in s.nodes.values() {
                #[allow(clippy::redundant_closure_call)]
                if let Some(v) = ($get)(n) {
                    f.sample(&[("node", n.name.as_str())], v);
                }
            }
        }};
    }
    use crate::parse::sinfo::Node;
    if on(NodeFamily::Cpus) {
        per_node!(
            "slurm_node_cpus_allocated",
            "CPUs allocated on the node.",
            |n: &Node| Some(n.cpus_alloc)
        );
        per_node!(
            "slurm_node_cpus_idle",
            "Idle CPUs on the node.",
            |n: &Node| Some(n.cpus_idle)
        );
        per_node!(
            "slurm_node_cpus_other",
            "CPUs of the node neither allocated nor idle (down, drained).",
            |n: &Node| Some(n.cpus_other)
        );
        per_node!("slurm_node_cpus_total", "CPUs of the node.", |n: &Node| {
            Some(n.cpus_total)
        });
    }

    if on(NodeFamily::Memory) {
        per_node!(
            "slurm_node_memory_total_bytes",
            "Configured memory (RealMemory) of the node.",
            |n: &Node| Some(n.memory_total_bytes)
        );
        per_node!(
            "slurm_node_memory_allocated_bytes",
            "Memory allocated to jobs on the node.",
            |n: &Node| Some(n.memory_alloc_bytes)
        );
        per_node!(
            "slurm_node_memory_free_bytes",
            "Free memory reported by the node's slurmd.",
            |n: &Node| n.memory_free_bytes
        );
    }

    for (name, help, total) in [
        (
            "slurm_node_gpus_total",
            "GPUs (gres/gpu) configured on the node, by GRES type (type=\"\" for untyped GPUs).",
            true,
        ),
        (
            "slurm_node_gpus_used",
            "GPUs (gres/gpu) in use on the node, by GRES type (type=\"\" for untyped GPUs).",
            false,
        ),
    ]
    .into_iter()
    .filter(|_| on(NodeFamily::Gpus))
    {
        let f = out.gauge(name, help);
        for n in s.nodes.values() {
            if n.gpu_types.is_empty() {
                let v = if total { n.gpus_total } else { n.gpus_used };
                f.sample(&[("node", n.name.as_str()), ("type", "")], v);
            }
            for (t, tot, used) in &n.gpu_types {
                f.sample(
                    &[("node", n.name.as_str()), ("type", t.as_str())],
                    if total { *tot } else { *used },
                );
            }
        }
    }
    if on(NodeFamily::Load) {
        per_node!(
            "slurm_node_cpu_load",
            "CPU load of the node as reported by slurmd.",
            |n: &Node| n.cpu_load
        );
    }

    if on(NodeFamily::State) {
        let f = out.gauge(
            "slurm_node_state",
            "The node's base state (1 for the current one).",
        );
        for n in s.nodes.values() {
            f.sample(
                &[("node", n.name.as_str()), ("state", n.state.base.as_str())],
                1.0,
            );
        }
    }

    if on(NodeFamily::Flags) {
        let f = out.gauge(
            "slurm_node_state_flag",
            "State flags set on the node (1 per set flag).",
        );
        for n in s.nodes.values() {
            for fl in &n.state.flags {
                f.sample(&[("node", n.name.as_str()), ("flag", fl.as_str())], 1.0);
            }
        }
    }

    if on(NodeFamily::Reason) {
        let f = out.gauge(
            "slurm_node_reason_info",
            "Why the node is down or drained (the admin's reason), 1 per node with a reason.",
        );
        for n in s.nodes.values() {
            if let Some(r) = &n.reason {
                f.sample(&[("node", n.name.as_str()), ("reason", r.as_str())], 1.0);
            }
        }
    }

    if on(NodeFamily::Info) {
        let f = out.gauge(
            "slurm_node_info",
            "Node facts: partitions, features and configured GRES (value 1).",
        );
        for n in s.nodes.values() {
            let parts = n.partitions.join(",");
            f.sample(
                &[
                    ("node", n.name.as_str()),
                    ("partitions", parts.as_str()),
                    ("features", n.features.as_deref().unwrap_or("")),
                    ("gres", n.gres.as_deref().unwrap_or("")),
                ],
                1.0,
            );
        }
    }

    // prometheus-slurm-exporter compatibility.
    for (k, v) in &compat {
        out.gauge(
            format!("slurm_nodes_{k}"),
            format!("Nodes sinfo shows as {k} (prometheus-slurm-exporter name; drain includes draining and drained)."),
        )
        .sample(&[], *v);
    }
    for (k, v, what) in [
        ("alloc", ca, "allocated"),
        ("idle", ci, "idle"),
        ("other", co, "other (down, drained)"),
        ("total", ct, "all"),
    ] {
        out.gauge(format!("slurm_cpus_{k}"), format!("CPUs {what} over all nodes (prometheus-slurm-exporter name; = sum(slurm_node_cpus_*)).")).sample(&[], v);
    }
    out.gauge(
        "slurm_gpus_alloc",
        "GPUs in use over all nodes (prometheus-slurm-exporter name).",
    )
    .sample(&[], gu);
    out.gauge(
        "slurm_gpus_idle",
        "GPUs not in use over all nodes (prometheus-slurm-exporter name).",
    )
    .sample(&[], gt - gu);
    out.gauge(
        "slurm_gpus_total",
        "GPUs over all nodes (prometheus-slurm-exporter name).",
    )
    .sample(&[], gt);
    out.gauge(
        "slurm_gpus_utilization",
        "Fraction of GPUs in use (prometheus-slurm-exporter name).",
    )
    .sample(&[], if gt > 0.0 { gu / gt } else { 0.0 });
}
