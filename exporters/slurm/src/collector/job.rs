//! `slurm_job_*` from squeue: one series per running job (and, with
//! `--slurm.job-info-pending`, per pending job) so that dashboards, rules and reports can
//! name a job's user, account, partition and nodes and compare what it asked for with what it
//! uses: `slurm_job_info` (identity as labels) and the gauges `slurm_job_cpus`,
//! `slurm_job_memory_bytes`, `slurm_job_gpus`, `slurm_job_nodes`,
//! `slurm_job_start_time_seconds` and `slurm_job_time_limit_seconds`, all keyed by `jobid`.
//!
//! `jobid` is the id as Slurm prints it (`123`, or `123_4` for an array task, with
//! `array_job_id`/`array_task_id` labels); `jobid_raw` on `slurm_job_info` is the unique id
//! (sacct's `JobIDRaw`) that the node exporter's cgroup metrics and the GPU exporter use, so
//! rules can join the two. Both come from the poller's one `squeue`: no extra RPC.
//!
//! Cardinality: at most `--slurm.job-series-limit` jobs (default 20000) are exported per
//! family; the jobs with the lowest ids are kept (so a job, once exported, stays exported as
//! newer jobs arrive) and `slurm_job_series_dropped` counts those left out.

use hpcmon_kit::MetricSet;

use super::jobs::ALLOCATING_STATES;
use super::Inputs;
use crate::parse::squeue::Job;

/// States reported besides the allocating ones: the job still holds its nodes.
const HOLDING_STATES: &[&str] = &["SUSPENDED", "STOPPED", "SIGNALING", "RESIZING"];

/// Longest job name kept in the `name` label (longer names are cut at a character boundary).
pub const MAX_NAME_LEN: usize = 256;

fn reported(j: &Job, pending: bool) -> bool {
    let s = &*j.state;
    ALLOCATING_STATES.contains(&s) || HOLDING_STATES.contains(&s) || (pending && s == "PENDING")
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// Flags of the `job` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Most jobs exported in each per-job family (`slurm_job_info`, `slurm_job_cpus`, ...);
    /// the jobs with the lowest ids are kept, the rest counted in `slurm_job_series_dropped`.
    #[arg(
        long = "slurm.job-series-limit",
        id = "slurm.job-series-limit",
        default_value_t = 20000,
        value_name = "N"
    )]
    pub job_series_limit: usize,
    /// Also export pending jobs in the per-job families (not only jobs holding resources).
    #[arg(long = "slurm.job-info-pending", id = "slurm.job-info-pending", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub job_info_pending: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            job_series_limit: 20000,
            job_info_pending: false,
        }
    }
}

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Squeue];

/// The `job` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    let flags = cfg.flags::<Flags>()?.clone();
    Ok(cfg.snapshot("job", SOURCES, move |inp, out| collect(inp, &flags, out)))
}

/// Renders the per-job metrics.
pub fn collect(inp: &Inputs<'_>, flags: &Flags, out: &mut MetricSet) {
    let Some(q) = inp.squeue() else { return };
    let limit = flags.job_series_limit;
    let mut jobs: Vec<&Job> = q
        .jobs
        .iter()
        .filter(|j| reported(j, flags.job_info_pending))
        .collect();
    jobs.sort_by_key(|j| (j.job_id, j.array_job_id));
    let dropped = jobs.len().saturating_sub(limit);
    jobs.truncate(limit);
    let ids: Vec<String> = jobs.iter().map(|j| j.display_id()).collect();

    let info = out.gauge(
        "slurm_job_info",
        "A job that holds (or, with --slurm.job-info-pending, waits for) resources; jobid as Slurm prints it, jobid_raw the unique id the node and GPU exporters use.",
    );
    for (j, id) in jobs.iter().zip(&ids) {
        let mut l: Vec<(String, String)> = vec![
            ("jobid".into(), id.clone()),
            ("jobid_raw".into(), j.job_id.to_string()),
            ("user".into(), j.user.to_string()),
            ("account".into(), j.account.to_string()),
            ("partition".into(), j.partition.to_string()),
            ("name".into(), cut(&j.name, MAX_NAME_LEN).to_string()),
            ("qos".into(), j.qos.to_string()),
            ("state".into(), j.state.to_string()),
            (
                "nodes".into(),
                j.nodelist.as_deref().unwrap_or("").to_string(),
            ),
        ];
        if let Some(t) = &j.array_task_id {
            l.push(("array_job_id".into(), j.array_job_id.to_string()));
            l.push(("array_task_id".into(), t.to_string()));
        }
        info.sample_owned(l, 1.0);
    }

    type Get = fn(&Job) -> Option<f64>;
    let gauges: [(&str, &str, Get); 6] = [
        (
            "slurm_job_cpus",
            "CPUs allocated to the job (requested while pending).",
            |j| {
                Some(if j.tres.cpus > 0.0 {
                    j.tres.cpus
                } else {
                    j.cpus
                })
            },
        ),
        (
            "slurm_job_memory_bytes",
            "Memory allocated to the job (requested while pending), in bytes (TRES mem).",
            |j| (j.tres.memory_bytes > 0.0).then_some(j.tres.memory_bytes),
        ),
        (
            "slurm_job_gpus",
            "GPUs allocated to the job (requested while pending).",
            |j| Some(j.tres.gpus),
        ),
        (
            "slurm_job_nodes",
            "Nodes allocated to the job (requested while pending).",
            |j| {
                Some(if j.tres.nodes > 0.0 {
                    j.tres.nodes
                } else {
                    j.nodes
                })
            },
        ),
        (
            "slurm_job_start_time_seconds",
            "When the job started (expected start while pending), in unix seconds.",
            |j| j.start_time,
        ),
        (
            "slurm_job_time_limit_seconds",
            "The job's time limit in seconds (absent when unlimited).",
            |j| j.time_limit,
        ),
    ];
    for (name, help, get) in gauges {
        let f = out.gauge(name, help);
        for (j, id) in jobs.iter().zip(&ids) {
            if let Some(v) = get(j) {
                f.sample(&[("jobid", id)], v);
            }
        }
    }

    out.gauge(
        "slurm_job_series_dropped",
        "Jobs left out of the slurm_job_* families in the latest snapshot because of --slurm.job-series-limit.",
    )
    .sample(&[], dropped as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_at_char_boundary() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("aé", 2), "a");
    }
}
