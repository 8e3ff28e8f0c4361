//! Declarative advice rules: a YAML file of conditions on a report's **facts** and message
//! templates. Nothing from the file is evaluated as code; a rule can only compare facts
//! computed here with constants.
//!
//! The defaults ship in `jobstats/advice.yml` (embedded, [`Rules::builtin`]); a site may
//! load its own file with [`Rules::load`].
//!
//! # File format
//!
//! ```yaml
//! version: 1                        # required, must be 1
//! rules:
//!   - id: cpu_efficiency_low        # unique, shown with the note
//!     severity: warning             # info | notice | warning | critical
//!     when:                         # a condition (below)
//!       all:
//!         - {fact: cpu_efficiency, lt: 0.65}
//!         - {fact: elapsed_seconds, ge: 60}
//!     message: "CPU efficiency is {cpu_efficiency:pct}% of {cpus} cores."
//! ```
//!
//! Unknown keys anywhere are errors, so a typo never silently disables a rule.
//!
//! ## Conditions
//!
//! | form | true when |
//! | --- | --- |
//! | `{fact: NAME, lt: N}` (also `le`, `gt`, `ge`, `eq`, `ne`) | the numeric fact compares so with the number `N` |
//! | `{fact: NAME, eq: "TEXT"}` / `{fact: NAME, ne: "TEXT"}` | a text fact equals / differs from `TEXT` |
//! | `{fact: NAME, in: [A, B]}` | the text fact is one of the strings |
//! | `{fact: NAME, not_in: [A, B]}` | the text fact is none of the strings |
//! | `{exists: NAME}` | the fact is known for this report |
//! | `{all: [C, ...]}` / `{any: [C, ...]}` / `{not: C}` | logic |
//!
//! A comparison (`lt` ... `not_in`) on an **absent** fact is *unknown*, and the logic is
//! three-valued (Kleene): `not unknown` is unknown, `all` is false if any part is false,
//! else unknown if any part is unknown; `any` is true if any part is true, else unknown if
//! any part is unknown. A rule fires only when its condition is *true*, so a rule whose facts
//! are absent never fires, not even under `not`. Use `exists` to test for absence explicitly.
//! Numeric facts are never NaN or infinite (such values make the fact absent).
//!
//! At load time each fact name must be known, numeric operators must be used on numeric
//! facts and `in`/`not_in` (and text `eq`/`ne`) on text facts; errors name the rule.
//!
//! ## Message templates
//!
//! `{NAME}` or `{NAME:FORMAT}` inserts a fact; `{{` and `}}` are literal braces. A rule
//! fires only when every fact its message uses is present, so messages never show holes.
//!
//! | format | meaning | example |
//! | --- | --- | --- |
//! | (none) | numbers: integer if whole, else 2 decimals; text as is | `32`, `0.37` |
//! | `pct` | ×100, 0 decimals | `0.374` → `37` |
//! | `pct1` | ×100, 1 decimal | `37.4` |
//! | `int` | rounded, 0 decimals | `3` |
//! | `f1` / `f2` | 1 / 2 decimals | `3.2` |
//! | `gib` | bytes → GiB, 1 decimal | `3.9` |
//! | `mib` | bytes → MiB, 0 decimals | `4000` |
//! | `bytes` | bytes with a binary unit | `3.9 GiB` |
//! | `hours` | seconds → hours, 1 decimal | `2.5` |
//! | `minutes` | seconds → minutes, 0 decimals | `150` |
//! | `duration` | seconds → Slurm's `[D-]HH:MM:SS` | `02:30:00` |
//!
//! Formats apply to numeric facts only; text facts take no format.
//!
//! # Facts
//!
//! [`facts`] computes these from a [`Report`]; a fact whose data is missing is absent.
//! The list with one line each is also in [`FACTS`].
//!
//! | fact | kind | meaning |
//! | --- | --- | --- |
//! | `state` | text | Slurm state (`RUNNING`, `COMPLETED`, `OUT_OF_MEMORY`, `TIMEOUT`, ...) |
//! | `user`, `account`, `partition`, `name` | text | from the job header (absent when empty) |
//! | `exit_code` | text | Slurm's `N:M` |
//! | `source` | text | `prometheus`, `summary` or `none`: where the usage came from |
//! | `is_active` | 1/0 | the job still runs (its numbers are "so far") |
//! | `is_pending` | 1/0 | the job never started |
//! | `has_metrics` | 1/0 | usage numbers exist (from Prometheus or the stored summary) |
//! | `cpus` | number | allocated cores (header; else the cpusets seen in the metrics) |
//! | `nodes` | number | allocated nodes (header; else nodes seen in the metrics) |
//! | `gpus` | number | allocated GPUs (the larger of the header's count and the GPUs seen) |
//! | `cores_used` | number | mean cores busy over the job's life, all nodes |
//! | `cpu_efficiency` | 0..1 | `cores_used / cpus` over the job's cpusets |
//! | `max_node_cpu_efficiency`, `min_node_cpu_efficiency` | 0..1 | best / worst node |
//! | `cpu_hours_unused` | number | (cores − cores used) × elapsed, in core-hours |
//! | `suggested_cpus` | number | `ceil(cores_used × 1.2)`, at least 1 |
//! | `elapsed_seconds` | number | run time (so far) |
//! | `time_limit_seconds` | number | time limit (absent: unlimited) |
//! | `time_used_ratio` | number | elapsed / limit |
//! | `suggested_time` | text | elapsed × 1.5 rounded up (15 min steps under 1 h, hours under 2 days, then 12 h), as `--time` takes it |
//! | `timeout_suggested_time` | text | time limit × 2 rounded up the same way (after a TIMEOUT) |
//! | `mem_requested_bytes` | number | memory requested for the whole job |
//! | `mem_requested_per_node_bytes` | number | the same divided by `nodes` (what `--mem` sets) |
//! | `mem_peak_bytes` | number | sum of the nodes' cgroup peaks (an upper bound of the job's peak) |
//! | `max_node_mem_peak_bytes` | number | the largest per-node peak |
//! | `mem_used_ratio` | number | `mem_peak_bytes / mem_requested_bytes` |
//! | `max_node_mem_ratio` | number | the largest per-node peak / cgroup limit |
//! | `suggested_mem` | text | `--mem` (per node) value: largest node peak × 1.2 rounded up (128M steps under 1G, whole G under 16G, 4G steps under 128G, then 16G) |
//! | `oom_suggested_mem` | text | `--mem` (per node) after an OOM: twice the larger of per-node request and peak, rounded up the same way |
//! | `oom_kills` | number | OOM kills over all nodes (absent without metrics) |
//! | `gpu_utilization` | 0..1 | mean utilisation over the GPUs with data |
//! | `min_gpu_utilization` | 0..1 | the least used GPU |
//! | `gpus_measured` | number | GPUs with utilisation data |
//! | `gpus_idle` | number | GPUs with data under 1% utilisation |
//! | `gpu_mem_used_ratio` | 0..1 | the largest GPU memory peak / that GPU's memory |
//! | `cores_per_gpu` | number | `cpus / gpus` (absent without GPUs) |

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::model::{Note, Report, Severity, Source};

/// One fact's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A finite number.
    Num(f64),
    /// A text.
    Str(String),
}

/// The facts of one report, by name.
pub type Facts = BTreeMap<String, Fact>;

/// Whether a fact is a number or a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// [`Fact::Num`].
    Num,
    /// [`Fact::Str`].
    Str,
}

/// Every fact [`facts`] may produce: name, kind and a one-line description.
pub const FACTS: &[(&str, FactKind, &str)] = &[
    (
        "state",
        FactKind::Str,
        "Slurm state (RUNNING, COMPLETED, OUT_OF_MEMORY, TIMEOUT, ...)",
    ),
    ("user", FactKind::Str, "user name"),
    ("account", FactKind::Str, "account"),
    ("partition", FactKind::Str, "partition"),
    ("name", FactKind::Str, "job name"),
    (
        "exit_code",
        FactKind::Str,
        "exit code as Slurm prints it (N:M)",
    ),
    (
        "source",
        FactKind::Str,
        "where the usage came from: prometheus, summary or none",
    ),
    ("is_active", FactKind::Num, "1 while the job runs, else 0"),
    (
        "is_pending",
        FactKind::Num,
        "1 when the job never started, else 0",
    ),
    (
        "has_metrics",
        FactKind::Num,
        "1 when usage numbers exist, else 0",
    ),
    ("cpus", FactKind::Num, "allocated cores"),
    ("nodes", FactKind::Num, "allocated nodes"),
    ("gpus", FactKind::Num, "allocated GPUs"),
    (
        "cores_used",
        FactKind::Num,
        "mean cores busy over the job's life",
    ),
    ("cpu_efficiency", FactKind::Num, "cores_used / cpus (0..1)"),
    (
        "max_node_cpu_efficiency",
        FactKind::Num,
        "CPU efficiency of the busiest node (0..1)",
    ),
    (
        "min_node_cpu_efficiency",
        FactKind::Num,
        "CPU efficiency of the least busy node (0..1)",
    ),
    (
        "cpu_hours_unused",
        FactKind::Num,
        "allocated but idle core-hours",
    ),
    (
        "suggested_cpus",
        FactKind::Num,
        "ceil(cores_used * 1.2), at least 1",
    ),
    (
        "elapsed_seconds",
        FactKind::Num,
        "run time (so far), seconds",
    ),
    ("time_limit_seconds", FactKind::Num, "time limit, seconds"),
    ("time_used_ratio", FactKind::Num, "elapsed / time limit"),
    (
        "suggested_time",
        FactKind::Str,
        "--time value: elapsed * 1.5 rounded up",
    ),
    (
        "timeout_suggested_time",
        FactKind::Str,
        "--time value after a TIMEOUT: limit * 2 rounded up",
    ),
    (
        "mem_requested_bytes",
        FactKind::Num,
        "memory requested for the whole job, bytes",
    ),
    (
        "mem_requested_per_node_bytes",
        FactKind::Num,
        "memory requested per node, bytes",
    ),
    (
        "mem_peak_bytes",
        FactKind::Num,
        "sum of the nodes' memory peaks, bytes",
    ),
    (
        "max_node_mem_peak_bytes",
        FactKind::Num,
        "largest per-node memory peak, bytes",
    ),
    (
        "mem_used_ratio",
        FactKind::Num,
        "mem_peak_bytes / mem_requested_bytes",
    ),
    (
        "max_node_mem_ratio",
        FactKind::Num,
        "largest per-node peak / cgroup limit",
    ),
    (
        "suggested_mem",
        FactKind::Str,
        "--mem value (per node): largest node peak * 1.2 rounded up",
    ),
    (
        "oom_suggested_mem",
        FactKind::Str,
        "--mem value (per node) after an OOM: 2 * max(request, peak)",
    ),
    ("oom_kills", FactKind::Num, "OOM kills over all nodes"),
    (
        "gpu_utilization",
        FactKind::Num,
        "mean GPU utilisation (0..1)",
    ),
    (
        "min_gpu_utilization",
        FactKind::Num,
        "utilisation of the least used GPU (0..1)",
    ),
    ("gpus_measured", FactKind::Num, "GPUs with utilisation data"),
    ("gpus_idle", FactKind::Num, "GPUs under 1% utilisation"),
    (
        "gpu_mem_used_ratio",
        FactKind::Num,
        "largest GPU memory peak / GPU memory (0..1)",
    ),
    ("cores_per_gpu", FactKind::Num, "cpus / gpus"),
];

fn fact_kind(name: &str) -> Option<FactKind> {
    FACTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Computes every fact of a report (see the module docs); missing data leaves a fact out.
pub fn facts(report: &Report) -> Facts {
    let mut f = Facts::new();
    let job = &report.job;
    let num = |f: &mut Facts, name: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            f.insert(name.to_string(), Fact::Num(v));
        }
    };
    let text = |f: &mut Facts, name: &str, v: &str| {
        if !v.is_empty() {
            f.insert(name.to_string(), Fact::Str(v.to_string()));
        }
    };
    text(&mut f, "state", &job.state);
    text(&mut f, "user", &job.user);
    text(&mut f, "account", &job.account);
    text(&mut f, "partition", &job.partition);
    text(&mut f, "name", &job.name);
    if let Some(e) = &job.exit_code {
        text(&mut f, "exit_code", e);
    }
    let source = match report.source {
        Source::Prometheus => "prometheus",
        Source::Summary => "summary",
        Source::None => "none",
    };
    text(&mut f, "source", source);
    let flag = |b: bool| Some(if b { 1.0 } else { 0.0 });
    num(&mut f, "is_active", flag(job.is_active()));
    num(&mut f, "is_pending", flag(job.is_pending()));
    num(&mut f, "has_metrics", flag(report.usage.is_some()));

    let usage = report.usage.as_ref();
    let nodes_seen = usage.map(|u| u.nodes.len()).unwrap_or(0);
    let usage_cpus = usage
        .map(|u| u.cpus())
        .filter(|c| c.is_finite() && *c > 0.0);
    let cpus = if job.cpus > 0 {
        Some(job.cpus as f64)
    } else {
        usage_cpus
    };
    num(&mut f, "cpus", cpus);
    let nodes = if job.nodes > 0 {
        Some(job.nodes as f64)
    } else if nodes_seen > 0 {
        Some(nodes_seen as f64)
    } else {
        None
    };
    num(&mut f, "nodes", nodes);
    let gpus = job
        .gpus
        .max(usage.map(|u| u.gpus.len() as u32).unwrap_or(0)) as f64;
    num(&mut f, "gpus", Some(gpus));

    // CPU.
    let elapsed = job.elapsed_seconds.filter(|e| e.is_finite() && *e >= 0.0);
    if let Some(u) = usage.filter(|u| !u.nodes.is_empty()) {
        let used = u.cores_used();
        num(&mut f, "cores_used", Some(used));
        num(&mut f, "cpu_efficiency", u.cpu_efficiency());
        let effs: Vec<f64> = u
            .nodes
            .iter()
            .filter_map(|n| {
                n.cpu_efficiency
                    .or_else(|| (n.cpus > 0.0).then(|| n.cores_used / n.cpus))
                    .filter(|e| e.is_finite())
            })
            .collect();
        num(
            &mut f,
            "max_node_cpu_efficiency",
            effs.iter().copied().reduce(f64::max),
        );
        num(
            &mut f,
            "min_node_cpu_efficiency",
            effs.iter().copied().reduce(f64::min),
        );
        if let (Some(c), Some(e)) = (usage_cpus, elapsed) {
            num(
                &mut f,
                "cpu_hours_unused",
                Some(((c - used) * e / 3600.0).max(0.0)),
            );
        }
        if used.is_finite() {
            num(&mut f, "suggested_cpus", Some((used * 1.2).ceil().max(1.0)));
        }
        num(&mut f, "oom_kills", Some(u.oom_kills()));
    }

    // Time.
    let limit = job.time_limit_seconds.filter(|l| l.is_finite() && *l > 0.0);
    num(&mut f, "elapsed_seconds", elapsed);
    num(&mut f, "time_limit_seconds", limit);
    if let (Some(e), Some(l)) = (elapsed, limit) {
        num(&mut f, "time_used_ratio", Some(e / l));
    }
    if let Some(e) = elapsed.filter(|e| *e > 0.0) {
        if let Some(s) = slurm_time(e * 1.5) {
            text(&mut f, "suggested_time", &s);
        }
    }
    if let Some(s) = limit.and_then(|l| slurm_time(l * 2.0)) {
        text(&mut f, "timeout_suggested_time", &s);
    }

    // Memory.
    let requested = job
        .mem_requested_bytes
        .filter(|m| m.is_finite() && *m > 0.0);
    num(&mut f, "mem_requested_bytes", requested);
    let req_per_node = requested.map(|r| r / nodes.filter(|n| *n >= 1.0).unwrap_or(1.0));
    num(&mut f, "mem_requested_per_node_bytes", req_per_node);
    let peak = usage
        .and_then(|u| u.mem_peak_bytes())
        .filter(|p| p.is_finite() && *p >= 0.0);
    num(&mut f, "mem_peak_bytes", peak);
    let node_peak = usage.and_then(|u| {
        u.nodes
            .iter()
            .filter_map(|n| n.mem_peak_bytes)
            .filter(|p| p.is_finite())
            .reduce(f64::max)
    });
    num(&mut f, "max_node_mem_peak_bytes", node_peak);
    if let (Some(p), Some(r)) = (peak, requested) {
        num(&mut f, "mem_used_ratio", Some(p / r));
    }
    let node_ratio = usage.and_then(|u| {
        u.nodes
            .iter()
            .filter_map(|n| match (n.mem_peak_bytes, n.mem_limit_bytes) {
                (Some(p), Some(l)) if l > 0.0 => Some(p / l),
                _ => None,
            })
            .filter(|r| r.is_finite())
            .reduce(f64::max)
    });
    num(&mut f, "max_node_mem_ratio", node_ratio);
    if let Some(s) = node_peak.and_then(|p| slurm_mem(p * 1.2)) {
        text(&mut f, "suggested_mem", &s);
    }
    let base = match (req_per_node, node_peak) {
        (Some(r), Some(p)) => Some(r.max(p)),
        (a, b) => a.or(b),
    };
    if let Some(s) = base.and_then(|b| slurm_mem(b * 2.0)) {
        text(&mut f, "oom_suggested_mem", &s);
    }

    // GPUs.
    if let Some(u) = usage {
        let utils: Vec<f64> = u
            .gpus
            .iter()
            .filter_map(|g| g.utilization)
            .filter(|x| x.is_finite())
            .collect();
        if !utils.is_empty() {
            num(
                &mut f,
                "gpu_utilization",
                Some(utils.iter().sum::<f64>() / utils.len() as f64),
            );
            num(
                &mut f,
                "min_gpu_utilization",
                utils.iter().copied().reduce(f64::min),
            );
            num(&mut f, "gpus_measured", Some(utils.len() as f64));
            num(
                &mut f,
                "gpus_idle",
                Some(utils.iter().filter(|x| **x < 0.01).count() as f64),
            );
        }
        let mem = u
            .gpus
            .iter()
            .filter_map(|g| match (g.mem_used_max_bytes, g.mem_total_bytes) {
                (Some(m), Some(t)) if t > 0.0 => Some(m / t),
                _ => None,
            })
            .filter(|r| r.is_finite())
            .reduce(f64::max);
        num(&mut f, "gpu_mem_used_ratio", mem);
    }
    if gpus > 0.0 {
        num(&mut f, "cores_per_gpu", cpus.map(|c| c / gpus));
    }
    f
}

/// A Slurm `--mem` value at least `bytes`, rounded up to a sensible step: 128M under 1G,
/// whole G under 16G, 4G under 128G, 16G above. None for non-finite or non-positive input.
pub fn slurm_mem(bytes: f64) -> Option<String> {
    if !bytes.is_finite() || bytes <= 0.0 || bytes > 1e21 {
        return None;
    }
    if bytes <= GIB {
        let m = ((bytes / MIB / 128.0).ceil() * 128.0).max(128.0);
        if m >= 1024.0 {
            return Some("1G".into());
        }
        return Some(format!("{m:.0}M"));
    }
    let g = bytes / GIB;
    let step = if g <= 16.0 {
        1.0
    } else if g <= 128.0 {
        4.0
    } else {
        16.0
    };
    Some(format!("{:.0}G", (g / step).ceil() * step))
}

/// A Slurm `--time` value at least `seconds`, rounded up to 15 minutes under 1 h, whole
/// hours under 2 days, 12 hours above; `[D-]HH:MM:SS`. None for non-finite/non-positive.
pub fn slurm_time(seconds: f64) -> Option<String> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e12 {
        return None;
    }
    let step = if seconds <= 3600.0 {
        900.0
    } else if seconds <= 2.0 * 86400.0 {
        3600.0
    } else {
        43200.0
    };
    Some(duration((seconds / step).ceil() * step))
}

/// Seconds as Slurm prints them: `HH:MM:SS`, or `D-HH:MM:SS` from one day.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let s = seconds.round().min(1e15) as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Bytes with a binary unit (`512.0 MiB`, `3.9 GiB`).
pub fn human_bytes(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "?".into();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

// ---------------------------------------------------------------------------------------
// Rules

/// Comparison operators on numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "lt" => Op::Lt,
            "le" => Op::Le,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            _ => return None,
        })
    }
    fn apply(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Num {
        fact: String,
        op: Op,
        value: f64,
    },
    In {
        fact: String,
        values: Vec<String>,
        negate: bool,
    },
    Exists(String),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// Kleene logic: None is "unknown" (an absent fact).
    fn eval(&self, f: &Facts) -> Option<bool> {
        match self {
            Cond::Num { fact, op, value } => match f.get(fact) {
                Some(Fact::Num(v)) if v.is_finite() => Some(op.apply(*v, *value)),
                _ => None,
            },
            Cond::In {
                fact,
                values,
                negate,
            } => match f.get(fact) {
                Some(Fact::Str(s)) => Some(values.iter().any(|v| v == s) != *negate),
                _ => None,
            },
            Cond::Exists(fact) => Some(f.contains_key(fact)),
            Cond::All(cs) => {
                let mut unknown = false;
                for c in cs {
                    match c.eval(f) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Cond::Any(cs) => {
                let mut unknown = false;
                for c in cs {
                    match c.eval(f) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Cond::Not(c) => c.eval(f).map(|b| !b),
        }
    }

    fn parse(v: &Value) -> anyhow::Result<Cond> {
        let map = v
            .as_mapping()
            .ok_or_else(|| anyhow!("a condition must be a mapping, got {}", show(v)))?;
        let mut keys: Vec<&str> = Vec::new();
        for k in map.keys() {
            keys.push(
                k.as_str()
                    .ok_or_else(|| anyhow!("condition keys must be strings, got {}", show(k)))?,
            );
        }
        let get = |k: &str| map.get(k).expect("key listed");
        let single = |what: &str| -> anyhow::Result<()> {
            if keys.len() != 1 {
                bail!(
                    "`{what}` must be the only key of its condition, found: {}",
                    keys.join(", ")
                );
            }
            Ok(())
        };
        if keys.contains(&"all") || keys.contains(&"any") {
            let what = if keys.contains(&"all") { "all" } else { "any" };
            single(what)?;
            let seq = get(what)
                .as_sequence()
                .ok_or_else(|| anyhow!("`{what}` takes a list of conditions"))?;
            if seq.is_empty() {
                bail!("`{what}` needs at least one condition");
            }
            let cs = seq
                .iter()
                .map(Cond::parse)
                .collect::<anyhow::Result<Vec<_>>>()?;
            return Ok(if what == "all" {
                Cond::All(cs)
            } else {
                Cond::Any(cs)
            });
        }
        if keys.contains(&"not") {
            single("not")?;
            return Ok(Cond::Not(Box::new(Cond::parse(get("not"))?)));
        }
        if keys.contains(&"exists") {
            single("exists")?;
            let name = get("exists")
                .as_str()
                .ok_or_else(|| anyhow!("`exists` takes a fact name"))?;
            known_fact(name)?;
            return Ok(Cond::Exists(name.to_string()));
        }
        if keys.contains(&"fact") {
            let name = get("fact")
                .as_str()
                .ok_or_else(|| anyhow!("`fact` takes a fact name"))?;
            let kind = known_fact(name)?;
            let ops: Vec<&str> = keys.iter().copied().filter(|k| *k != "fact").collect();
            let [op] = ops.as_slice() else {
                if ops.is_empty() {
                    bail!("condition on `{name}` has no operator (lt, le, gt, ge, eq, ne, in, not_in)");
                }
                bail!(
                    "condition on `{name}` has several operators: {}",
                    ops.join(", ")
                );
            };
            let arg = get(op);
            if *op == "in" || *op == "not_in" {
                if kind != FactKind::Str {
                    bail!("`{op}` needs a text fact, `{name}` is a number (use lt, le, gt, ge, eq, ne)");
                }
                let seq = arg
                    .as_sequence()
                    .ok_or_else(|| anyhow!("`{op}` takes a list of strings"))?;
                let values = seq
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| anyhow!("`{op}` takes strings, got {}", show(s)))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                return Ok(Cond::In {
                    fact: name.into(),
                    values,
                    negate: *op == "not_in",
                });
            }
            let o = Op::parse(op).ok_or_else(|| {
                anyhow!("unknown operator `{op}` (known: lt, le, gt, ge, eq, ne, in, not_in)")
            })?;
            return match kind {
                FactKind::Num => {
                    let value = arg.as_f64().filter(|x| !x.is_nan()).ok_or_else(|| {
                        anyhow!("`{op}` on `{name}` takes a number, got {}", show(arg))
                    })?;
                    Ok(Cond::Num {
                        fact: name.into(),
                        op: o,
                        value,
                    })
                }
                FactKind::Str => {
                    let s = arg.as_str().ok_or_else(|| {
                        anyhow!(
                            "`{op}` on text fact `{name}` takes a string, got {}",
                            show(arg)
                        )
                    })?;
                    match o {
                        Op::Eq | Op::Ne => Ok(Cond::In { fact: name.into(), values: vec![s.into()], negate: o == Op::Ne }),
                        _ => bail!("`{op}` needs a numeric fact, `{name}` is text (use eq, ne, in, not_in)"),
                    }
                }
            };
        }
        bail!(
            "unknown condition with keys {} (expected fact+operator, exists, all, any or not)",
            keys.join(", ")
        )
    }
}

fn show(v: &Value) -> String {
    serde_yaml_ng::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn known_fact(name: &str) -> anyhow::Result<FactKind> {
    fact_kind(name).ok_or_else(|| {
        anyhow!(
            "unknown fact `{name}` (known: {})",
            FACTS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Template formats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fmt {
    Plain,
    Pct,
    Pct1,
    Int,
    F1,
    F2,
    Gib,
    Mib,
    Bytes,
    Hours,
    Minutes,
    Duration,
}

impl Fmt {
    fn parse(s: &str) -> Option<Fmt> {
        Some(match s {
            "pct" => Fmt::Pct,
            "pct1" => Fmt::Pct1,
            "int" => Fmt::Int,
            "f1" => Fmt::F1,
            "f2" => Fmt::F2,
            "gib" => Fmt::Gib,
            "mib" => Fmt::Mib,
            "bytes" => Fmt::Bytes,
            "hours" => Fmt::Hours,
            "minutes" => Fmt::Minutes,
            "duration" => Fmt::Duration,
            _ => return None,
        })
    }
    fn apply(self, v: f64) -> String {
        match self {
            Fmt::Plain => plain(v),
            Fmt::Pct => format!("{:.0}", v * 100.0),
            Fmt::Pct1 => format!("{:.1}", v * 100.0),
            Fmt::Int => format!("{v:.0}"),
            Fmt::F1 => format!("{v:.1}"),
            Fmt::F2 => format!("{v:.2}"),
            Fmt::Gib => format!("{:.1}", v / GIB),
            Fmt::Mib => format!("{:.0}", v / MIB),
            Fmt::Bytes => human_bytes(v),
            Fmt::Hours => format!("{:.1}", v / 3600.0),
            Fmt::Minutes => format!("{:.0}", v / 60.0),
            Fmt::Duration => duration(v),
        }
    }
}

fn plain(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Fact(String, Fmt),
}

fn parse_template(t: &str) -> anyhow::Result<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => bail!("unmatched `}}` in message (write `}}}}` for a brace)"),
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            bail!("unclosed `{{` in message (write `{{{{` for a brace)")
                        }
                        Some(c) => inner.push(c),
                    }
                }
                let (name, fmt) = match inner.split_once(':') {
                    Some((n, f)) => (n.trim(), Some(f.trim())),
                    None => (inner.trim(), None),
                };
                let kind = known_fact(name)?;
                let fmt = match fmt {
                    None => Fmt::Plain,
                    Some(f) => {
                        let fmt = Fmt::parse(f).ok_or_else(|| {
                            anyhow!(
                                "unknown format `{f}` for `{name}` (known: pct, pct1, int, f1, f2, gib, mib, bytes, hours, minutes, duration)"
                            )
                        })?;
                        if kind == FactKind::Str {
                            bail!("format `{f}` needs a numeric fact, `{name}` is text");
                        }
                        fmt
                    }
                };
                if !lit.is_empty() {
                    segs.push(Seg::Lit(std::mem::take(&mut lit)));
                }
                segs.push(Seg::Fact(name.to_string(), fmt));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        segs.push(Seg::Lit(lit));
    }
    Ok(segs)
}

/// Renders a template; None when a fact it uses is absent.
fn render(segs: &[Seg], f: &Facts) -> Option<String> {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Lit(l) => out.push_str(l),
            Seg::Fact(name, fmt) => match f.get(name)? {
                Fact::Num(v) if v.is_finite() => out.push_str(&fmt.apply(*v)),
                Fact::Num(_) => return None,
                Fact::Str(s) => out.push_str(s),
            },
        }
    }
    Some(out)
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Severity of its note.
    pub severity: Severity,
    when: Cond,
    message: Vec<Seg>,
}

/// A validated set of advice rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    severity: Severity,
    when: Value,
    message: String,
}

/// The default rules (`jobstats/advice.yml`).
pub const BUILTIN_YAML: &str = include_str!("../advice.yml");

impl Rules {
    /// The default rules shipped in `jobstats/advice.yml`.
    pub fn builtin() -> Rules {
        Rules::from_yaml(BUILTIN_YAML).expect("the builtin advice.yml is valid (tested)")
    }

    /// Reads and validates a rules file.
    pub fn load(path: &Path) -> anyhow::Result<Rules> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading advice rules {}", path.display()))?;
        Rules::from_yaml(&text).with_context(|| format!("advice rules {}", path.display()))
    }

    /// Parses and validates rules from YAML text.
    pub fn from_yaml(text: &str) -> anyhow::Result<Rules> {
        let raw: RawFile = serde_yaml_ng::from_str(text).context("invalid advice rules YAML")?;
        if raw.version != 1 {
            bail!(
                "unsupported advice rules version {} (this program reads version 1)",
                raw.version
            );
        }
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            if r.id.trim().is_empty() {
                bail!("rule #{} has an empty id", i + 1);
            }
            if !seen.insert(r.id.clone()) {
                bail!("rule `{}`: duplicate id", r.id);
            }
            let when =
                Cond::parse(&r.when).with_context(|| format!("rule `{}`: bad `when`", r.id))?;
            let message = parse_template(&r.message)
                .with_context(|| format!("rule `{}`: bad `message`", r.id))?;
            rules.push(Rule {
                id: r.id,
                severity: r.severity,
                when,
                message,
            });
        }
        Ok(Rules { rules })
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The notes of every rule that fires, critical first, then in file order.
    pub fn evaluate(&self, f: &Facts) -> Vec<Note> {
        let mut notes: Vec<Note> = self
            .rules
            .iter()
            .filter(|r| r.when.eval(f) == Some(true))
            .filter_map(|r| {
                Some(Note {
                    rule: r.id.clone(),
                    severity: r.severity,
                    message: render(&r.message, f)?,
                })
            })
            .collect();
        notes.sort_by_key(|n| std::cmp::Reverse(n.severity));
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuUsage, JobHeader, NodeUsage, Usage, REPORT_VERSION};
    use proptest::prelude::*;

    const G: f64 = GIB;

    /// A finished, well-behaved 1-node job: 8 cores at 95%, 16 GiB requested, 14 GiB peak,
    /// 2 h limit, 1.5 h run. No default rule fires on it.
    fn good() -> Report {
        Report {
            version: REPORT_VERSION,
            job: JobHeader {
                jobid: "42".into(),
                jobid_raw: "42".into(),
                user: "alice".into(),
                account: "phys".into(),
                partition: "cpu".into(),
                name: "sim".into(),
                state: "COMPLETED".into(),
                nodelist: "n1".into(),
                nodes: 1,
                cpus: 8,
                gpus: 0,
                mem_requested_bytes: Some(16.0 * G),
                submit_time: Some(1_700_000_000),
                start_time: Some(1_700_000_100),
                end_time: Some(1_700_005_500),
                elapsed_seconds: Some(5400.0),
                time_limit_seconds: Some(7200.0),
                exit_code: Some("0:0".into()),
            },
            source: Source::Prometheus,
            usage: Some(Usage {
                allocated_cpus: 0.0,
                from: 1_700_000_100,
                to: 1_700_005_500,
                nodes: vec![NodeUsage {
                    node: "n1".into(),
                    cpus: 8.0,
                    cores_used: 7.6,
                    cpu_efficiency: Some(0.95),
                    mem_used_bytes: Some(10.0 * G),
                    mem_peak_bytes: Some(14.0 * G),
                    mem_limit_bytes: Some(16.0 * G),
                    oom_kills: 0.0,
                }],
                gpus: vec![],
            }),
            notes: vec![],
            dashboard_url: None,
        }
    }

    fn with_cores_used(mut r: Report, used: f64) -> Report {
        let u = r.usage.as_mut().unwrap();
        let n = &mut u.nodes[0];
        n.cores_used = used;
        n.cpu_efficiency = Some(used / n.cpus);
        r
    }

    fn gpu_job(utils: &[f64]) -> Report {
        let mut r = good();
        r.job.gpus = utils.len() as u32;
        r.job.partition = "gpu".into();
        r.usage.as_mut().unwrap().gpus = utils
            .iter()
            .enumerate()
            .map(|(i, u)| GpuUsage {
                node: "n1".into(),
                uuid: format!("GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd"),
                utilization: Some(*u),
                mem_used_max_bytes: Some(10.0 * G),
                mem_total_bytes: Some(80.0 * G),
            })
            .collect();
        r
    }

    fn ids(r: &Report) -> Vec<String> {
        Rules::builtin()
            .evaluate(&facts(r))
            .into_iter()
            .map(|n| n.rule)
            .collect()
    }

    fn note(r: &Report, id: &str) -> Option<Note> {
        Rules::builtin()
            .evaluate(&facts(r))
            .into_iter()
            .find(|n| n.rule == id)
    }

    #[test]
    fn builtin_loads_and_good_job_has_no_notes() {
        let rules = Rules::builtin();
        assert!(rules.rules().len() >= 12);
        assert_eq!(ids(&good()), Vec::<String>::new());
    }

    #[test]
    fn facts_of_good_job() {
        let f = facts(&good());
        assert_eq!(f["state"], Fact::Str("COMPLETED".into()));
        assert_eq!(f["cpus"], Fact::Num(8.0));
        assert_eq!(f["cpu_efficiency"], Fact::Num(0.95));
        assert_eq!(f["time_used_ratio"], Fact::Num(0.75));
        assert_eq!(f["mem_used_ratio"], Fact::Num(14.0 / 16.0));
        // 14 GiB * 1.2 = 16.8 GiB: above 16G the step is 4G, so 20G.
        assert_eq!(f["suggested_mem"], Fact::Str("20G".into()));
        // 5400 s * 1.5 = 8100 s -> 3 h.
        assert_eq!(f["suggested_time"], Fact::Str("03:00:00".into()));
        assert_eq!(f["is_active"], Fact::Num(0.0));
        assert_eq!(f["gpus"], Fact::Num(0.0));
        assert!(!f.contains_key("cores_per_gpu"));
        assert!(!f.contains_key("gpu_utilization"));
    }

    #[test]
    fn rounding_helpers() {
        assert_eq!(slurm_mem(300.0 * MIB).as_deref(), Some("384M"));
        assert_eq!(slurm_mem(1.0).as_deref(), Some("128M"));
        assert_eq!(slurm_mem(1000.0 * MIB).as_deref(), Some("1G"));
        assert_eq!(slurm_mem(3.3 * G).as_deref(), Some("4G"));
        assert_eq!(slurm_mem(17.0 * G).as_deref(), Some("20G"));
        assert_eq!(slurm_mem(130.0 * G).as_deref(), Some("144G"));
        assert_eq!(slurm_mem(f64::NAN), None);
        assert_eq!(slurm_mem(0.0), None);
        assert_eq!(slurm_time(60.0).as_deref(), Some("00:15:00"));
        assert_eq!(slurm_time(1.2 * 3600.0 * 1.5).as_deref(), Some("02:00:00"));
        assert_eq!(slurm_time(50.0 * 3600.0).as_deref(), Some("2-12:00:00"));
        assert_eq!(slurm_time(f64::INFINITY), None);
        assert_eq!(duration(90061.0), "1-01:01:01");
        assert_eq!(human_bytes(1536.0 * MIB), "1.5 GiB");
    }

    #[test]
    fn cpu_efficiency_rules() {
        // 4.0 of 8 cores = 50% < 65%: warning, suggest ceil(4*1.2)=5 cores.
        let r = with_cores_used(good(), 4.0);
        let n = note(&r, "cpu_efficiency_low").expect("fires");
        assert_eq!(n.severity, Severity::Warning);
        assert!(n.message.contains("50%"), "{}", n.message);
        assert!(n.message.contains("--cpus-per-task"), "{}", n.message);
        assert!(n.message.contains("5 cores"), "{}", n.message);
        assert!(note(&r, "cpu_efficiency_notice").is_none());
        // 6.0 of 8 = 75%: notice only.
        let r = with_cores_used(good(), 6.0);
        assert!(note(&r, "cpu_efficiency_low").is_none());
        assert_eq!(
            note(&r, "cpu_efficiency_notice").unwrap().severity,
            Severity::Notice
        );
        // 95%: neither.
        assert!(note(&good(), "cpu_efficiency_notice").is_none());
        // A 30 s job is too short to judge.
        let mut r = with_cores_used(good(), 4.0);
        r.job.elapsed_seconds = Some(30.0);
        assert!(note(&r, "cpu_efficiency_low").is_none());
    }

    #[test]
    fn serial_code_rule() {
        let mut r = with_cores_used(good(), 1.0);
        r.job.cpus = 16;
        r.usage.as_mut().unwrap().nodes[0].cpus = 16.0;
        r.usage.as_mut().unwrap().nodes[0].cpu_efficiency = Some(1.0 / 16.0);
        let got = ids(&r);
        assert!(got.contains(&"serial_code".to_string()), "{got:?}");
        // The low-efficiency note is replaced by the serial one.
        assert!(!got.contains(&"cpu_efficiency_low".to_string()), "{got:?}");
        // 1 core busy on 4 cores: not "many cores" -> plain low efficiency.
        let r = with_cores_used(
            {
                let mut r = good();
                r.job.cpus = 4;
                r.usage.as_mut().unwrap().nodes[0].cpus = 4.0;
                r
            },
            1.0,
        );
        let got = ids(&r);
        assert!(!got.contains(&"serial_code".to_string()), "{got:?}");
        assert!(got.contains(&"cpu_efficiency_low".to_string()), "{got:?}");
    }

    #[test]
    fn idle_node_rule() {
        let mut r = good();
        r.job.nodes = 2;
        r.job.cpus = 16;
        let u = r.usage.as_mut().unwrap();
        let mut n2 = u.nodes[0].clone();
        n2.node = "n2".into();
        n2.cores_used = 0.1;
        n2.cpu_efficiency = Some(0.1 / 8.0);
        u.nodes.push(n2);
        let n = note(&r, "idle_nodes").expect("fires");
        assert!(n.message.contains("2 nodes"), "{}", n.message);
        assert!(note(&good(), "idle_nodes").is_none());
    }

    #[test]
    fn gpu_rules() {
        // Mean 10% < 15%: low utilisation; no GPU at 0%.
        let r = gpu_job(&[0.1, 0.1]);
        assert!(note(&r, "gpu_utilization_low").is_some());
        assert!(note(&r, "gpu_idle").is_none());
        // One of 2 GPUs idle (0%): gpu_idle; the mean 40% is fine.
        let r = gpu_job(&[0.8, 0.0]);
        let n = note(&r, "gpu_idle").expect("fires");
        assert!(
            n.message.starts_with("1 of the 2 allocated GPUs"),
            "{}",
            n.message
        );
        assert!(note(&r, "gpu_utilization_low").is_none());
        // All busy: neither.
        let r = gpu_job(&[0.9, 0.7]);
        assert!(note(&r, "gpu_idle").is_none());
        assert!(note(&r, "gpu_utilization_low").is_none());
        // 8 cores per GPU is fine; 64 cores on 2 GPUs is not.
        assert!(note(&r, "cores_per_gpu_high").is_none());
        let mut r = gpu_job(&[0.9, 0.7]);
        r.job.cpus = 64;
        r.usage.as_mut().unwrap().nodes[0].cpus = 64.0;
        r.usage.as_mut().unwrap().nodes[0].cores_used = 60.0;
        r.usage.as_mut().unwrap().nodes[0].cpu_efficiency = Some(60.0 / 64.0);
        let n = note(&r, "cores_per_gpu_high").expect("fires");
        assert!(n.message.contains("32 cores per GPU"), "{}", n.message);
    }

    #[test]
    fn memory_overrequested_rule() {
        // 4 GiB peak of 16 GiB = 25%: suggest 4 GiB * 1.2 = 4.8 -> 5G.
        let mut r = good();
        r.usage.as_mut().unwrap().nodes[0].mem_peak_bytes = Some(4.0 * G);
        let n = note(&r, "memory_overrequested").expect("fires");
        assert!(n.message.contains("--mem=5G"), "{}", n.message);
        assert!(n.message.contains("25%"), "{}", n.message);
        // Small requests (under 2 GiB) are not worth a note.
        r.job.mem_requested_bytes = Some(1.5 * G);
        r.usage.as_mut().unwrap().nodes[0].mem_peak_bytes = Some(0.1 * G);
        assert!(note(&r, "memory_overrequested").is_none());
        // 14 of 16 GiB: fine.
        assert!(note(&good(), "memory_overrequested").is_none());
        // Running for 10 minutes: the peak may still grow.
        let mut r = good();
        r.job.state = "RUNNING".into();
        r.job.elapsed_seconds = Some(600.0);
        r.usage.as_mut().unwrap().nodes[0].mem_peak_bytes = Some(4.0 * G);
        assert!(note(&r, "memory_overrequested").is_none());
    }

    #[test]
    fn time_limit_rule() {
        // 1 h of a 24 h limit: 4% < 25%, suggest 1.5 h -> 02:00:00.
        let mut r = good();
        r.job.elapsed_seconds = Some(3600.0);
        r.job.time_limit_seconds = Some(86400.0);
        let n = note(&r, "time_limit_overestimated").expect("fires");
        assert!(n.message.contains("--time=02:00:00"), "{}", n.message);
        assert!(
            n.message.contains("01:00:00 of its 1-00:00:00"),
            "{}",
            n.message
        );
        // Running jobs are not judged.
        r.job.state = "RUNNING".into();
        assert!(note(&r, "time_limit_overestimated").is_none());
        // 75% used: fine.
        assert!(note(&good(), "time_limit_overestimated").is_none());
    }

    #[test]
    fn oom_rules() {
        let mut r = good();
        r.job.state = "OUT_OF_MEMORY".into();
        r.usage.as_mut().unwrap().nodes[0].oom_kills = 1.0;
        r.usage.as_mut().unwrap().nodes[0].mem_peak_bytes = Some(16.0 * G);
        let n = &Rules::builtin().evaluate(&facts(&r))[0];
        assert_eq!(n.rule, "out_of_memory");
        assert_eq!(n.severity, Severity::Critical);
        // 2 x 16 GiB = 32G.
        assert!(n.message.contains("--mem=32G"), "{}", n.message);
        assert!(note(&r, "oom_kills").is_none());
        assert!(note(&r, "out_of_memory_unknown_request").is_none());
        // Without request and usage: the generic message.
        r.job.mem_requested_bytes = None;
        r.usage = None;
        r.source = Source::None;
        let got = ids(&r);
        assert!(
            got.contains(&"out_of_memory_unknown_request".to_string()),
            "{got:?}"
        );
        assert!(!got.contains(&"out_of_memory".to_string()), "{got:?}");
        // A process OOM-killed in a job that completed: warning.
        let mut r = good();
        r.usage.as_mut().unwrap().nodes[0].oom_kills = 2.0;
        let n = note(&r, "oom_kills").expect("fires");
        assert_eq!(n.severity, Severity::Warning);
        assert!(n.message.contains("2 process"), "{}", n.message);
    }

    #[test]
    fn timeout_rule() {
        let mut r = good();
        r.job.state = "TIMEOUT".into();
        r.job.elapsed_seconds = Some(7200.0);
        let n = note(&r, "timeout").expect("fires");
        assert_eq!(n.severity, Severity::Critical);
        assert!(n.message.contains("02:00:00"), "{}", n.message);
        assert!(n.message.contains("--time=04:00:00"), "{}", n.message);
        assert!(n.message.contains("checkpoint"), "{}", n.message);
        assert!(note(&good(), "timeout").is_none());
        r.job.time_limit_seconds = None;
        assert!(note(&r, "timeout").is_none());
        assert!(note(&r, "timeout_unknown_limit").is_some());
    }

    #[test]
    fn no_metrics_rule() {
        let mut r = good();
        r.usage = None;
        r.source = Source::None;
        assert_eq!(ids(&r), vec!["no_metrics".to_string()]);
        assert!(note(&good(), "no_metrics").is_none());
        // A pending job has no metrics for an obvious reason.
        r.job.state = "PENDING".into();
        r.job.start_time = None;
        assert!(note(&r, "no_metrics").is_none());
    }

    #[test]
    fn notes_sorted_by_severity_then_order() {
        let mut r = with_cores_used(good(), 2.0);
        r.job.state = "TIMEOUT".into();
        r.usage.as_mut().unwrap().nodes[0].mem_peak_bytes = Some(2.0 * G);
        let notes = Rules::builtin().evaluate(&facts(&r));
        let sev: Vec<Severity> = notes.iter().map(|n| n.severity).collect();
        let mut sorted = sev.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(sev, sorted);
        assert_eq!(notes[0].rule, "timeout");
    }

    #[test]
    fn three_valued_logic() {
        let rules = Rules::from_yaml(
            "version: 1\nrules:\n  - {id: a, severity: info, when: {not: {fact: cpus, gt: 4}}, message: x}\n  - {id: b, severity: info, when: {any: [{fact: cpus, gt: 4}, {exists: state}]}, message: y}\n  - {id: c, severity: info, when: {not: {exists: cpus}}, message: z}\n",
        )
        .unwrap();
        let mut f = Facts::new();
        f.insert("state".into(), Fact::Str("RUNNING".into()));
        let got: Vec<String> = rules.evaluate(&f).into_iter().map(|n| n.rule).collect();
        // a: not(unknown) = unknown -> does not fire; b: unknown or true = true; c: true.
        assert_eq!(got, vec!["b", "c"]);
        f.insert("cpus".into(), Fact::Num(2.0));
        let got: Vec<String> = rules.evaluate(&f).into_iter().map(|n| n.rule).collect();
        assert_eq!(got, vec!["a", "b"]);
    }

    #[test]
    fn templates() {
        let segs = parse_template("{{x}} {cpu_efficiency:pct}% {mem_peak_bytes:gib} GiB {elapsed_seconds:hours} h {elapsed_seconds:duration} {state} {cpus} {cores_used}").unwrap();
        let mut f = Facts::new();
        f.insert("cpu_efficiency".into(), Fact::Num(0.374));
        f.insert("mem_peak_bytes".into(), Fact::Num(3.95 * G));
        f.insert("elapsed_seconds".into(), Fact::Num(9000.0));
        f.insert("state".into(), Fact::Str("COMPLETED".into()));
        f.insert("cpus".into(), Fact::Num(32.0));
        f.insert("cores_used".into(), Fact::Num(3.456));
        assert_eq!(
            render(&segs, &f).unwrap(),
            "{x} 37% 4.0 GiB 2.5 h 02:30:00 COMPLETED 32 3.46"
        );
        f.remove("cpus");
        assert_eq!(render(&segs, &f), None);
        let s = parse_template("{mem_peak_bytes:bytes}|{cpu_efficiency:pct1}|{cores_used:f1}|{cores_used:int}|{mem_peak_bytes:mib}|{elapsed_seconds:minutes}").unwrap();
        f.insert("mem_peak_bytes".into(), Fact::Num(1.5 * G));
        assert_eq!(render(&s, &f).unwrap(), "1.5 GiB|37.4|3.5|3|1536|150");
    }

    fn err(yaml: &str) -> String {
        format!("{:#}", Rules::from_yaml(yaml).unwrap_err())
    }

    #[test]
    fn loading_errors() {
        let e = err("version: 1\nrules:\n  - {id: r1, severity: info, when: {fact: cpu_eff, lt: 1}, message: x}");
        assert!(
            e.contains("rule `r1`") && e.contains("unknown fact `cpu_eff`"),
            "{e}"
        );
        let e = err("version: 1\nrules:\n  - {id: r2, severity: info, when: {fact: cpus, lte: 1}, message: x}");
        assert!(
            e.contains("rule `r2`") && e.contains("unknown operator `lte`"),
            "{e}"
        );
        let e = err("version: 1\nrules:\n  - {id: r3, severity: info, when: {exists: cpus}, message: '{cpus:percent}'}");
        assert!(
            e.contains("rule `r3`") && e.contains("unknown format `percent`"),
            "{e}"
        );
        let e = err("version: 1\nrules:\n  - {id: r4, severity: info, when: {exists: cpus}, message: '{nope}'}");
        assert!(
            e.contains("rule `r4`") && e.contains("unknown fact `nope`"),
            "{e}"
        );
        let e = err("version: 1\nrules:\n  - {id: r5, severity: info, when: {fact: state, lt: 1}, message: x}");
        assert!(e.contains("rule `r5`") && e.contains("text"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r6, severity: info, when: {fact: cpus, in: [a]}, message: x}");
        assert!(e.contains("rule `r6`") && e.contains("number"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r7, severity: info, when: {fact: cpus, lt: 1, gt: 0}, message: x}");
        assert!(
            e.contains("rule `r7`") && e.contains("several operators"),
            "{e}"
        );
        let e = err("version: 1\nrules:\n  - {id: r8, severity: info, when: {all: [], not: {exists: cpus}}, message: x}");
        assert!(e.contains("rule `r8`"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r9, severity: info, when: {fact: cpus, lt: abc}, message: x}");
        assert!(
            e.contains("rule `r9`") && e.contains("takes a number"),
            "{e}"
        );
        let e = err(
            "version: 1\nrules:\n  - {id: r10, severity: urgent, when: {exists: cpus}, message: x}",
        );
        assert!(e.contains("urgent"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: d, severity: info, when: {exists: cpus}, message: x}\n  - {id: d, severity: info, when: {exists: cpus}, message: x}");
        assert!(e.contains("duplicate"), "{e}");
        let e = err("version: 2\nrules: []");
        assert!(e.contains("version 2"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r11, severity: info, when: {exists: cpus}, message: x, extra: 1}");
        assert!(e.contains("extra"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r12, severity: info, when: {exists: cpus}, message: '{cpus'}");
        assert!(e.contains("rule `r12`") && e.contains("unclosed"), "{e}");
        let e = err("version: 1\nrules:\n  - {id: r13, severity: info, when: {exists: cpus}, message: '{state:pct}'}");
        assert!(e.contains("rule `r13`") && e.contains("text"), "{e}");
        assert!(Rules::from_yaml("version: 1\nrules: []")
            .unwrap()
            .rules()
            .is_empty());
    }

    #[test]
    fn load_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yml");
        std::fs::write(&p, BUILTIN_YAML).unwrap();
        assert_eq!(Rules::load(&p).unwrap(), Rules::builtin());
        let e = format!(
            "{:#}",
            Rules::load(&dir.path().join("missing.yml")).unwrap_err()
        );
        assert!(e.contains("missing.yml"), "{e}");
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            -1e12f64..1e12,
            any::<f64>(),
        ]
    }

    proptest! {
        #[test]
        fn facts_and_evaluate_never_panic(
            cpus in prop_oneof![Just(0u32), any::<u32>(), 1u32..128],
            nodes in prop_oneof![Just(0u32), any::<u32>()],
            gpus in prop_oneof![Just(0u32), 0u32..8, any::<u32>()],
            state in prop_oneof![Just("COMPLETED"), Just("RUNNING"), Just("OUT_OF_MEMORY"), Just("TIMEOUT"), Just("")],
            xs in proptest::collection::vec(any_f64(), 16),
            opt in proptest::collection::vec(any::<bool>(), 8),
            n_nodes in 0usize..3,
            n_gpus in 0usize..3,
        ) {
            let o = |i: usize, v: f64| opt[i].then_some(v);
            let mut r = good();
            r.job.cpus = cpus;
            r.job.nodes = nodes;
            r.job.gpus = gpus;
            r.job.state = state.into();
            r.job.elapsed_seconds = o(0, xs[0]);
            r.job.time_limit_seconds = o(1, xs[1]);
            r.job.mem_requested_bytes = o(2, xs[2]);
            let node = NodeUsage {
                node: "n".into(), cpus: xs[3], cores_used: xs[4], cpu_efficiency: o(3, xs[5]),
                mem_used_bytes: o(4, xs[6]), mem_peak_bytes: o(5, xs[7]), mem_limit_bytes: o(6, xs[8]), oom_kills: xs[9],
            };
            let gpu = GpuUsage { node: "n".into(), uuid: "u".into(), utilization: o(7, xs[10]),
                mem_used_max_bytes: Some(xs[11]), mem_total_bytes: Some(xs[12]) };
            r.usage = if opt[0] && opt[1] { None } else {
                Some(Usage { from: 0, to: 0, nodes: vec![node; n_nodes], gpus: vec![gpu; n_gpus], allocated_cpus: 0.0 })
            };
            let f = facts(&r);
            for (k, v) in &f {
                prop_assert!(fact_kind(k).is_some(), "undocumented fact {}", k);
                if let Fact::Num(x) = v { prop_assert!(x.is_finite(), "{} = {}", k, x); }
            }
            let notes = Rules::builtin().evaluate(&f);
            let brace = '{';
            for n in notes { prop_assert!(!n.message.contains(brace), "unrendered: {}", n.message); }
        }
    }
}
