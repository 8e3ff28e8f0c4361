//! A job's [`Usage`] from Prometheus: a fixed set of [`QUERIES`] instant queries over the
//! job's life, whatever its node and GPU count (a 1000-node job costs what a 1-node job
//! costs: each query returns one sample per node or GPU and aggregates on the server).
//!
//! The series are the node exporter's `node_slurm_job_*{jobid}` (cgroup counters that start
//! at zero with the job, so `max_over_time` of a counter is what the job consumed) and the
//! GPU rollups of `rules/jobs.rules.yml` (`uuid_jobid:gpu_utilization:ratio`,
//! `uuid_jobid:gpu_memory_used_bytes:sum`). `jobid` there is Slurm's raw job id.
//!
//! The window: from the job's start to its end (or now), evaluated at the window's end plus
//! [`GRACE`] so the last scrape before the cgroup vanished is included.

use std::collections::BTreeMap;

use crate::model::{GpuUsage, JobHeader, NodeUsage, Usage};
use crate::prom::{quote, Prom, PromError, Sample};

/// Time after the job's end still searched for its last samples (one scrape interval or more).
pub const GRACE: i64 = 120;

/// The queries, by what they give; `$JOB` is the quoted raw job id and `$W` the window.
pub const QUERIES: &[(&str, &str)] = &[
    ("cpu_seconds", "max by (instance) (max_over_time(node_slurm_job_cpu_seconds_total{jobid=$JOB}[$W]))"),
    ("cpus", "max by (instance) (max_over_time(node_slurm_job_cpus{jobid=$JOB}[$W]))"),
    ("mem_peak", "max by (instance) (max_over_time(node_slurm_job_memory_max_usage_bytes{jobid=$JOB}[$W]))"),
    ("mem_limit", "max by (instance) (max_over_time(node_slurm_job_memory_limit_bytes{jobid=$JOB}[$W]))"),
    ("mem_used", "max by (instance) (last_over_time(node_slurm_job_memory_rss_bytes{jobid=$JOB}[$W]))"),
    ("oom_kills", "max by (instance) (max_over_time(node_slurm_job_oom_kills_total{jobid=$JOB}[$W]))"),
    ("gpu_util", "max by (instance, uuid) (avg_over_time(uuid_jobid:gpu_utilization:ratio{jobid=$JOB}[$W]))"),
    ("gpu_mem", "max by (instance, uuid) (max_over_time(uuid_jobid:gpu_memory_used_bytes:sum{jobid=$JOB}[$W]))"),
    ("gpu_mem_total", "max by (instance, uuid) (last_over_time(gpu_memory_total_bytes[$W]) * on (uuid) group_left () max by (uuid) (last_over_time(gpu_slurm_job_info{jobid=$JOB}[$W])))"),
];

/// The node name of an `instance` label: the host without its port.
pub fn node_of(instance: &str) -> String {
    if let Some(rest) = instance.strip_prefix('[') {
        // [::1]:9100
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match instance.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => instance.to_string(),
    }
}

/// The window `(from, eval_at)` of a job, or `None` for a job that never started.
pub fn window(job: &JobHeader, now: i64) -> Option<(i64, i64)> {
    let start = job.start_time?;
    let end = match job.end_time {
        Some(e) if !job.is_active() => e,
        _ => now,
    };
    let at = (end + GRACE).min(now).max(start + 1);
    Some((start, at))
}

fn expand(q: &str, jobid: &str, window_s: i64) -> String {
    q.replace("$JOB", &quote(jobid))
        .replace("$W", &format!("{window_s}s"))
}

/// Queries the job's usage; `Ok(None)` when Prometheus has no series of the job.
pub async fn gather(prom: &Prom, job: &JobHeader, now: i64) -> Result<Option<Usage>, PromError> {
    let Some((from, at)) = window(job, now) else {
        return Ok(None);
    };
    let w = (at - from).max(60);
    let jobid = if job.jobid_raw.is_empty() {
        &job.jobid
    } else {
        &job.jobid_raw
    };
    let mut futs = Vec::new();
    for (_, q) in QUERIES {
        let q = expand(q, jobid, w);
        let p = prom.clone();
        futs.push(tokio::spawn(async move { p.instant(&q, Some(at)).await }));
    }
    let mut results: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for ((name, _), f) in QUERIES.iter().zip(futs) {
        let r = f
            .await
            .map_err(|e| PromError::Config(format!("query task failed: {e}")))??;
        results.insert(name, r);
    }
    let elapsed = job
        .elapsed_seconds
        .filter(|e| *e > 0.0)
        .unwrap_or((at.min(job.end_time.unwrap_or(at)) - from).max(1) as f64);
    Ok(assemble(&results, elapsed, from, at).map(|mut u| {
        u.allocated_cpus = f64::from(job.cpus);
        u
    }))
}

/// Builds the usage from the queries' results (pure; `elapsed` is the job's run time).
pub fn assemble(
    r: &BTreeMap<&str, Vec<Sample>>,
    elapsed: f64,
    from: i64,
    to: i64,
) -> Option<Usage> {
    let per_node = |name: &str| -> BTreeMap<String, f64> {
        r.get(name)
            .map(|v| {
                v.iter()
                    .map(|s| (node_of(s.label("instance")), s.value))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cpu_s = per_node("cpu_seconds");
    let cpus = per_node("cpus");
    let peak = per_node("mem_peak");
    let limit = per_node("mem_limit");
    let used = per_node("mem_used");
    let oom = per_node("oom_kills");
    let mut names: Vec<&String> = cpu_s.keys().chain(cpus.keys()).chain(peak.keys()).collect();
    names.sort();
    names.dedup();
    let nodes: Vec<NodeUsage> = names
        .into_iter()
        .map(|n| {
            let c = cpus.get(n).copied().unwrap_or(0.0);
            let cores_used = cpu_s.get(n).copied().unwrap_or(0.0) / elapsed.max(1.0);
            NodeUsage {
                node: n.clone(),
                cpus: c,
                cores_used,
                cpu_efficiency: (c > 0.0).then(|| (cores_used / c).min(1.0)),
                mem_used_bytes: used.get(n).copied(),
                mem_peak_bytes: peak.get(n).copied(),
                mem_limit_bytes: limit.get(n).copied(),
                oom_kills: oom.get(n).copied().unwrap_or(0.0),
            }
        })
        .collect();
    let per_gpu = |name: &str| -> BTreeMap<(String, String), f64> {
        r.get(name)
            .map(|v| {
                v.iter()
                    .map(|s| {
                        (
                            (node_of(s.label("instance")), s.label("uuid").to_string()),
                            s.value,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let util = per_gpu("gpu_util");
    let gmem = per_gpu("gpu_mem");
    let gtot = per_gpu("gpu_mem_total");
    let mut keys: Vec<&(String, String)> = util.keys().chain(gmem.keys()).collect();
    keys.sort();
    keys.dedup();
    let gpus: Vec<GpuUsage> = keys
        .into_iter()
        .map(|k| GpuUsage {
            node: k.0.clone(),
            uuid: k.1.clone(),
            utilization: util.get(k).copied(),
            mem_used_max_bytes: gmem.get(k).copied(),
            mem_total_bytes: gtot.get(k).copied(),
        })
        .collect();
    if nodes.is_empty() && gpus.is_empty() {
        return None;
    }
    Some(Usage {
        from,
        to,
        nodes,
        gpus,
        allocated_cpus: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(instance: &str, uuid: Option<&str>, v: f64) -> Sample {
        let mut labels = BTreeMap::from([("instance".to_string(), instance.to_string())]);
        if let Some(u) = uuid {
            labels.insert("uuid".into(), u.into());
        }
        Sample { labels, value: v }
    }

    #[test]
    fn node_names() {
        assert_eq!(node_of("n1:9100"), "n1");
        assert_eq!(node_of("n1.cluster:9100"), "n1.cluster");
        assert_eq!(node_of("n1"), "n1");
        assert_eq!(node_of("[::1]:9100"), "::1");
        assert_eq!(node_of("fe80::1"), "fe80::1");
    }

    #[test]
    fn queries_are_fixed_and_quoted() {
        for (_, q) in QUERIES {
            let e = expand(q, "12\"3", 3600);
            assert!(
                e.contains("jobid=\"12\\\"3\"") || !q.contains("$JOB"),
                "{e}"
            );
            assert!(!e.contains('$'), "{e}");
        }
        assert_eq!(QUERIES.len(), 9);
    }

    #[test]
    fn window_of_running_and_finished_jobs() {
        let mut j = JobHeader {
            state: "RUNNING".into(),
            start_time: Some(1000),
            ..Default::default()
        };
        assert_eq!(window(&j, 5000), Some((1000, 5000)));
        j.state = "COMPLETED".into();
        j.end_time = Some(2000);
        assert_eq!(window(&j, 5000), Some((1000, 2000 + GRACE)));
        assert_eq!(window(&j, 2010), Some((1000, 2010)));
        j.start_time = None;
        assert_eq!(window(&j, 5000), None);
    }

    #[test]
    fn assembles_per_node_and_gpu() {
        let r: BTreeMap<&str, Vec<Sample>> = BTreeMap::from([
            (
                "cpu_seconds",
                vec![s("n1:9100", None, 800.0), s("n2:9100", None, 100.0)],
            ),
            (
                "cpus",
                vec![s("n1:9100", None, 8.0), s("n2:9100", None, 8.0)],
            ),
            ("mem_peak", vec![s("n1:9100", None, 2e9)]),
            ("mem_limit", vec![s("n1:9100", None, 4e9)]),
            ("oom_kills", vec![s("n2:9100", None, 1.0)]),
            ("gpu_util", vec![s("g1:9835", Some("GPU-1"), 0.5)]),
            ("gpu_mem", vec![s("g1:9835", Some("GPU-1"), 1e9)]),
        ]);
        let u = assemble(&r, 100.0, 0, 100).unwrap();
        assert_eq!(u.nodes.len(), 2);
        assert_eq!(u.nodes[0].node, "n1");
        assert_eq!(u.nodes[0].cores_used, 8.0);
        assert_eq!(u.nodes[0].cpu_efficiency, Some(1.0));
        assert_eq!(u.nodes[1].cpu_efficiency, Some(0.125));
        assert_eq!(u.cpu_efficiency(), Some(9.0 / 16.0));
        // A third node where the job ran nothing has no series: Slurm's count includes it.
        let u = Usage {
            allocated_cpus: 24.0,
            ..u
        };
        assert_eq!(u.cpu_efficiency(), Some(9.0 / 24.0));
        assert_eq!(u.oom_kills(), 1.0);
        assert_eq!(u.mem_peak_bytes(), Some(2e9));
        assert_eq!(u.gpus[0].utilization, Some(0.5));
        assert_eq!(u.gpus[0].mem_total_bytes, None);
        assert!(assemble(&BTreeMap::new(), 1.0, 0, 1).is_none());
    }
}
