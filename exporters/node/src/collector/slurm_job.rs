//! `slurm_job` collector: per-Slurm-job resource usage from the cgroups slurmd creates, so a
//! node's dashboard can show which job uses its CPUs and memory. Labels `{jobid,uid}`.
//!
//! | metric | cgroup v1 | cgroup v2 |
//! | --- | --- | --- |
//! | `node_slurm_job_cpu_seconds_total` | `cpuacct.usage` / 1e9 | `cpu.stat` `usage_usec` / 1e6 |
//! | `node_slurm_job_cpu_user_seconds_total`, `..._system_...` | `cpuacct.stat` ticks / USER_HZ | `cpu.stat` `user_usec`, `system_usec` |
//! | `node_slurm_job_memory_usage_bytes` | `memory.usage_in_bytes` | `memory.current` |
//! | `node_slurm_job_memory_rss_bytes` | `memory.stat` `total_rss` | `memory.stat` `anon` |
//! | `node_slurm_job_memory_cache_bytes` | `memory.stat` `total_cache` | `memory.stat` `file` |
//! | `node_slurm_job_memory_limit_bytes` | `memory.limit_in_bytes` | `memory.max` |
//! | `node_slurm_job_memory_max_usage_bytes` | `memory.max_usage_in_bytes` | `memory.peak` |
//! | `node_slurm_job_oom_kills_total` | `memory.oom_control` `oom_kill` | `memory.events` `oom_kill` |
//! | `node_slurm_job_cpus` | `cpuset.cpus` (count) | `cpuset.cpus.effective` (count) |
//! | `node_slurm_job_processes` | `cgroup.procs` of the job and all its steps | `pids.current`, else the same count |
//! | `node_slurm_job_io_{read,write}_bytes_total` | `blkio.throttle.io_service_bytes_recursive` | `io.stat` `rbytes`/`wbytes` |
//!
//! A metric whose file is missing (a controller Slurm was not configured to use, a kernel
//! without `memory.peak`) is left out; an unlimited memory limit is left out rather than
//! reported as 2^63. Layouts:
//! - **v1** (`<cgroup root>/<controller>/slurm[_<node>]/uid_<uid>/job_<id>/step_*`): the uid
//!   comes from the path. Several slurmd on one machine (`slurmd -N`, each with its own
//!   `slurm_<node>` tree) that share a job report its sum over their trees.
//! - **v2** (`<cgroup root>/system.slice/[<node>_]slurmstepd.scope/job_<id>/step_*/user/task_*`,
//!   detected by `<cgroup root>/cgroup.controllers`): the path has no uid, so it is the owner
//!   (`Uid:` in `<procfs>/<pid>/status`) of the first process in the job's `user` subtrees, or
//!   `""` while the job has none.
//!
//! The cgroup root is `<sysfs>/fs/cgroup` unless `--collector.slurm_job.cgroup-root` says
//! otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::metrics::MetricType;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// Flags of the `slurm_job` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// cgroup filesystem root (default: <path.sysfs>/fs/cgroup).
    #[arg(long = "collector.slurm_job.cgroup-root")]
    pub cgroup_root: Option<PathBuf>,
}

/// Builds the `slurm_job` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(SlurmJob {
        root: cfg
            .flags::<Flags>()?
            .cgroup_root
            .clone()
            .unwrap_or_else(|| cfg.paths.sys("fs/cgroup")),
        procfs: cfg.paths.procfs.clone(),
    }))
}

/// The `slurm_job` collector.
pub struct SlurmJob {
    root: PathBuf,
    procfs: PathBuf,
}

/// Kernel clock ticks per second for `cpuacct.stat` (USER_HZ is 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;
/// Limits at or above this are "unlimited" (v1 reports PAGE_COUNTER_MAX * page size).
const UNLIMITED: u64 = 1 << 62;

/// Usage of one job, each field absent when its file is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct JobUsage {
    /// Total CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// User-mode CPU seconds.
    pub cpu_user_seconds: Option<f64>,
    /// Kernel-mode CPU seconds.
    pub cpu_system_seconds: Option<f64>,
    /// Current memory charge.
    pub memory_usage: Option<f64>,
    /// Anonymous memory.
    pub memory_rss: Option<f64>,
    /// Page cache.
    pub memory_cache: Option<f64>,
    /// Memory limit (None if unlimited).
    pub memory_limit: Option<f64>,
    /// Peak memory charge.
    pub memory_max_usage: Option<f64>,
    /// OOM kills in the job.
    pub oom_kills: Option<f64>,
    /// CPUs in the job's cpuset.
    pub cpus: Option<f64>,
    /// Processes in the job.
    pub processes: Option<f64>,
    /// Bytes read from block devices.
    pub io_read_bytes: Option<f64>,
    /// Bytes written to block devices.
    pub io_write_bytes: Option<f64>,
}

/// A whole cgroup file (`cgroup.procs`, `memory.stat` and the like can exceed a page).
fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// A single-number cgroup attribute.
fn read_u64(p: &Path) -> Option<u64> {
    hpcmon_kit::sysfs::attr_u64(p).ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `memory.events`, `cpuacct.stat`).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = read(p)?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// OOM kills of a v1 job: `oom_kill` of the job's memory cgroup and of every cgroup below it
/// (steps, tasks). v1 counts a kill in the cgroup whose limit was hit and does not add it to
/// the parents, and Slurm gives each step the job's limit, so a job-level read misses them.
fn oom_kills_v1(job: &Path) -> Option<f64> {
    fn walk(dir: &Path, depth: u32, total: &mut Option<f64>) {
        if let Some(n) = keyed(&dir.join("memory.oom_control"), "oom_kill") {
            *total = Some(total.unwrap_or(0.0) + n as f64);
        }
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if (name.starts_with("step_") || name.starts_with("task_"))
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                walk(&e.path(), depth - 1, total);
            }
        }
    }
    let mut total = None;
    walk(job, 2, &mut total);
    total
}

/// Number of CPUs in a cpuset list such as `0-3,8,10-11` (None if it does not parse).
pub fn cpuset_count(list: &str) -> Option<u64> {
    let list = list.trim();
    if list.is_empty() {
        return Some(0);
    }
    let mut n: u64 = 0;
    for part in list.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u64 = a.parse().ok()?;
                let b: u64 = b.parse().ok()?;
                if b < a {
                    return None;
                }
                n = n.checked_add(b - a + 1)?;
            }
            None => {
                part.parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// Processes in `dir` and every cgroup below it.
fn count_procs(dir: &Path, depth: usize) -> u64 {
    let mut n = read(&dir.join("cgroup.procs"))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count() as u64)
        .unwrap_or(0);
    if depth < 8 {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    n += count_procs(&e.path(), depth + 1);
                }
            }
        }
    }
    n
}

/// Pids in `dir`'s subtree (depth-first, sorted), at most `max`.
fn pids_under(dir: &Path, depth: usize, max: usize, out: &mut Vec<u32>) {
    if let Some(t) = read(&dir.join("cgroup.procs")) {
        out.extend(t.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if depth >= 8 || out.len() >= max {
        return;
    }
    let mut subs: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(_) => return,
    };
    subs.sort();
    for s in subs {
        pids_under(&s, depth + 1, max, out);
        if out.len() >= max {
            return;
        }
    }
}

/// Sums `Read`/`Write` over the devices of `blkio.throttle.io_service_bytes_recursive`.
fn blkio_bytes(p: &Path) -> Option<(f64, f64)> {
    let text = read(p)?;
    let (mut r, mut w) = (0.0, 0.0);
    for l in text.lines() {
        let mut f = l.split_ascii_whitespace();
        let (Some(_dev), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let v: f64 = v.parse().unwrap_or(0.0);
        match op {
            "Read" => r += v,
            "Write" => w += v,
            _ => {}
        }
    }
    Some((r, w))
}

/// Sums `rbytes=`/`wbytes=` over the devices of a v2 `io.stat`.
fn iostat_bytes(p: &Path) -> Option<(f64, f64)> {
    let text = read(p)?;
    let (mut r, mut w) = (0.0, 0.0);
    for kv in text.split_ascii_whitespace() {
        if let Some(v) = kv.strip_prefix("rbytes=") {
            r += v.parse::<f64>().unwrap_or(0.0);
        } else if let Some(v) = kv.strip_prefix("wbytes=") {
            w += v.parse::<f64>().unwrap_or(0.0);
        }
    }
    Some((r, w))
}

fn limit(v: Option<u64>) -> Option<f64> {
    v.filter(|&l| l < UNLIMITED).map(|l| l as f64)
}

/// Adds `v` to `acc` (a job seen in several `slurm_<node>` trees of one machine).
fn add(acc: &mut Option<f64>, v: Option<f64>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(0.0) + v);
    }
}

/// `job_<id>` directories under the slurm trees of a v1 controller: `(jobid, uid, dir)`.
fn v1_jobs(ctrl: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(ctrl) else {
        return out;
    };
    for slurm in rd.flatten() {
        let name = slurm.file_name();
        let name = name.to_string_lossy();
        if name != "slurm" && !name.starts_with("slurm_") {
            continue;
        }
        let Ok(uids) = std::fs::read_dir(slurm.path()) else {
            continue;
        };
        for u in uids.flatten() {
            let uname = u.file_name();
            let Some(uid) = uname.to_str().and_then(|s| s.strip_prefix("uid_")) else {
                continue;
            };
            let Ok(jobs) = std::fs::read_dir(u.path()) else {
                continue;
            };
            for j in jobs.flatten() {
                let jname = j.file_name();
                if let Some(id) = jname.to_str().and_then(|s| s.strip_prefix("job_")) {
                    if j.path().is_dir() {
                        out.push((id.to_owned(), uid.to_owned(), j.path()));
                    }
                }
            }
        }
    }
    out
}

impl SlurmJob {
    /// v1: the same job appears under each controller; merge by job id. With several slurmd
    /// on one machine (`slurmd -N`, multiple-slurmd) a job that spans two of them appears in
    /// each one's `slurm_<node>` tree: its usage on this machine is the sum.
    fn collect_v1(&self) -> BTreeMap<(String, String), JobUsage> {
        let mut jobs: BTreeMap<(String, String), JobUsage> = BTreeMap::new();
        // Jobs with an unlimited memory limit in some tree: unlimited on the machine.
        let mut unlimited = std::collections::BTreeSet::new();
        let cpuacct = ["cpuacct", "cpu,cpuacct"]
            .iter()
            .map(|c| self.root.join(c))
            .find(|p| p.is_dir());
        if let Some(ctrl) = cpuacct {
            for (id, uid, dir) in v1_jobs(&ctrl) {
                let j = jobs.entry((id, uid)).or_default();
                let usage = read_u64(&dir.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9);
                add(&mut j.cpu_seconds, usage);
                let stat = dir.join("cpuacct.stat");
                add(
                    &mut j.cpu_user_seconds,
                    keyed(&stat, "user").map(|t| t as f64 / USER_HZ),
                );
                add(
                    &mut j.cpu_system_seconds,
                    keyed(&stat, "system").map(|t| t as f64 / USER_HZ),
                );
            }
        }
        for (id, uid, dir) in v1_jobs(&self.root.join("memory")) {
            let raw_limit = read_u64(&dir.join("memory.limit_in_bytes"));
            if raw_limit.is_some() && limit(raw_limit).is_none() {
                unlimited.insert((id.clone(), uid.clone()));
            }
            let j = jobs.entry((id, uid)).or_default();
            let f = |v: Option<u64>| v.map(|v| v as f64);
            add(
                &mut j.memory_usage,
                f(read_u64(&dir.join("memory.usage_in_bytes"))),
            );
            let stat = dir.join("memory.stat");
            add(&mut j.memory_rss, f(keyed(&stat, "total_rss")));
            add(&mut j.memory_cache, f(keyed(&stat, "total_cache")));
            add(&mut j.memory_limit, limit(raw_limit));
            // Peaks of different trees may fall at different times: the sum is an upper bound.
            add(
                &mut j.memory_max_usage,
                f(read_u64(&dir.join("memory.max_usage_in_bytes"))),
            );
            add(&mut j.oom_kills, oom_kills_v1(&dir));
        }
        for (id, uid, dir) in v1_jobs(&self.root.join("cpuset")) {
            let j = jobs.entry((id, uid)).or_default();
            add(
                &mut j.cpus,
                read(&dir.join("cpuset.cpus"))
                    .and_then(|s| cpuset_count(&s))
                    .map(|n| n as f64),
            );
        }
        // Processes: freezer is where proctrack/cgroup puts every task; fall back to others.
        for ctrl in ["freezer", "cpuacct", "memory", "cpuset"] {
            let found = v1_jobs(&self.root.join(ctrl));
            if found.is_empty() {
                continue;
            }
            for (id, uid, dir) in found {
                let j = jobs.entry((id, uid)).or_default();
                add(&mut j.processes, Some(count_procs(&dir, 0) as f64));
            }
            break;
        }
        for (id, uid, dir) in v1_jobs(&self.root.join("blkio")) {
            let j = jobs.entry((id, uid)).or_default();
            if let Some((r, w)) =
                blkio_bytes(&dir.join("blkio.throttle.io_service_bytes_recursive"))
            {
                add(&mut j.io_read_bytes, Some(r));
                add(&mut j.io_write_bytes, Some(w));
            }
        }
        for key in unlimited {
            if let Some(j) = jobs.get_mut(&key) {
                j.memory_limit = None;
            }
        }
        jobs
    }

    fn uid_of_pid(&self, pid: u32) -> Option<String> {
        let status = read(&self.procfs.join(pid.to_string()).join("status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_ascii_whitespace().next())
            .map(str::to_owned)
    }

    fn collect_v2(&self) -> BTreeMap<(String, String), JobUsage> {
        let mut jobs = BTreeMap::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("system.slice")) else {
            return jobs;
        };
        let mut scopes: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with("slurmstepd.scope")
            })
            .map(|e| e.path())
            .collect();
        scopes.sort();
        for scope in scopes {
            let Ok(rd) = std::fs::read_dir(&scope) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(id) = name.to_str().and_then(|s| s.strip_prefix("job_")) else {
                    continue;
                };
                let dir = e.path();
                if !dir.is_dir() {
                    continue;
                }
                // The job's own processes live in step_*/user/...; slurmstepd (root) does not.
                let mut steps: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.path().join("user"))
                            .filter(|p| p.is_dir())
                            .collect()
                    })
                    .unwrap_or_default();
                steps.sort();
                let mut pids = Vec::new();
                for s in &steps {
                    pids_under(s, 0, 16, &mut pids);
                }
                // A process may exit between listing and reading: try a few.
                let uid = pids
                    .iter()
                    .find_map(|&pid| self.uid_of_pid(pid))
                    .unwrap_or_default();
                let cpu = dir.join("cpu.stat");
                let mem = dir.join("memory.stat");
                let (io_r, io_w) = iostat_bytes(&dir.join("io.stat")).unzip();
                let j = JobUsage {
                    cpu_seconds: keyed(&cpu, "usage_usec").map(|u| u as f64 / 1e6),
                    cpu_user_seconds: keyed(&cpu, "user_usec").map(|u| u as f64 / 1e6),
                    cpu_system_seconds: keyed(&cpu, "system_usec").map(|u| u as f64 / 1e6),
                    memory_usage: read_u64(&dir.join("memory.current")).map(|v| v as f64),
                    memory_rss: keyed(&mem, "anon").map(|v| v as f64),
                    memory_cache: keyed(&mem, "file").map(|v| v as f64),
                    // "max" does not parse: unlimited, left out.
                    memory_limit: limit(read_u64(&dir.join("memory.max"))),
                    memory_max_usage: read_u64(&dir.join("memory.peak")).map(|v| v as f64),
                    oom_kills: keyed(&dir.join("memory.events"), "oom_kill").map(|v| v as f64),
                    cpus: read(&dir.join("cpuset.cpus.effective"))
                        .and_then(|s| cpuset_count(&s))
                        .map(|n| n as f64),
                    processes: read_u64(&dir.join("pids.current"))
                        .map(|v| v as f64)
                        .or_else(|| Some(count_procs(&dir, 0) as f64)),
                    io_read_bytes: io_r,
                    io_write_bytes: io_w,
                };
                jobs.insert((id.to_owned(), uid), j);
            }
        }
        jobs
    }
}

/// `(metric, help, type, field)` for every per-job metric.
type Getter = fn(&JobUsage) -> Option<f64>;
const METRICS: &[(&str, &str, MetricType, Getter)] = &[
    (
        "node_slurm_job_cpu_seconds_total",
        "CPU time consumed by the Slurm job's processes, in seconds.",
        MetricType::Counter,
        |j| j.cpu_seconds,
    ),
    (
        "node_slurm_job_cpu_user_seconds_total",
        "User-mode CPU time of the Slurm job, in seconds.",
        MetricType::Counter,
        |j| j.cpu_user_seconds,
    ),
    (
        "node_slurm_job_cpu_system_seconds_total",
        "Kernel-mode CPU time of the Slurm job, in seconds.",
        MetricType::Counter,
        |j| j.cpu_system_seconds,
    ),
    (
        "node_slurm_job_memory_usage_bytes",
        "Memory charged to the Slurm job's cgroup (including page cache), in bytes.",
        MetricType::Gauge,
        |j| j.memory_usage,
    ),
    (
        "node_slurm_job_memory_rss_bytes",
        "Anonymous (RSS) memory of the Slurm job, in bytes.",
        MetricType::Gauge,
        |j| j.memory_rss,
    ),
    (
        "node_slurm_job_memory_cache_bytes",
        "Page cache charged to the Slurm job, in bytes.",
        MetricType::Gauge,
        |j| j.memory_cache,
    ),
    (
        "node_slurm_job_memory_limit_bytes",
        "Memory limit of the Slurm job's cgroup, in bytes (absent when unlimited).",
        MetricType::Gauge,
        |j| j.memory_limit,
    ),
    (
        "node_slurm_job_memory_max_usage_bytes",
        "Peak memory charged to the Slurm job's cgroup, in bytes.",
        MetricType::Gauge,
        |j| j.memory_max_usage,
    ),
    (
        "node_slurm_job_oom_kills_total",
        "Processes of the Slurm job killed by the OOM killer.",
        MetricType::Counter,
        |j| j.oom_kills,
    ),
    (
        "node_slurm_job_cpus",
        "CPUs in the Slurm job's cpuset.",
        MetricType::Gauge,
        |j| j.cpus,
    ),
    (
        "node_slurm_job_processes",
        "Processes in the Slurm job's cgroups.",
        MetricType::Gauge,
        |j| j.processes,
    ),
    (
        "node_slurm_job_io_read_bytes_total",
        "Bytes the Slurm job read from block devices.",
        MetricType::Counter,
        |j| j.io_read_bytes,
    ),
    (
        "node_slurm_job_io_write_bytes_total",
        "Bytes the Slurm job wrote to block devices.",
        MetricType::Counter,
        |j| j.io_write_bytes,
    ),
];

impl Collector for SlurmJob {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let jobs = if self.root.join("cgroup.controllers").exists() {
            self.collect_v2()
        } else {
            self.collect_v1()
        };
        for (name, help, kind, get) in METRICS {
            let fam = out.family(*name, *help, *kind);
            for ((jobid, uid), j) in &jobs {
                if let Some(v) = get(j) {
                    fam.sample(&[("jobid", jobid), ("uid", uid)], v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    fn at(name: &str) -> SlurmJob {
        let dir = testdata().join("fixtures").join(name);
        SlurmJob {
            root: dir.join("sys/fs/cgroup"),
            procfs: dir.join("proc"),
        }
    }

    #[test]
    fn golden_v1() {
        assert_golden("slurm_job_v1", &render(&at("b-slurm_job-v1")).unwrap());
    }

    /// Recorded from a live Slurm 22.05 job on this VM (cgroup v1, `proctrack/cgroup`,
    /// `task/cgroup`): `sbatch -c 1 --wrap "python3 -c 'x=bytearray(30_000_000); ...'"`.
    #[test]
    fn golden_v1_live() {
        let text = render(&at("b-slurm_job-live")).unwrap();
        assert!(text.contains("node_slurm_job_memory_rss_bytes{jobid=\"1\",uid=\"0\"}"));
        assert_golden("slurm_job_live", &text);
    }

    /// Recorded from a live two-node job (`sbatch -p gpu -N 2 -c 1 --mem=100M --wrap 'srun
    /// sleep 300'`) on the test cluster of `scripts/slurm-cluster.sh` in its cgroup mode:
    /// several `slurmd -N` on one machine, each with its own `slurm_<node>` tree, so the same
    /// job appears under `slurm_gpu1` and `slurm_gpu2`. The machine's usage of the job is the
    /// sum of both (it was the last tree read, overwriting the other field by field).
    #[test]
    fn multiple_slurmd_trees_are_summed() {
        let text = render(&at("b-slurm_job-multi")).unwrap();
        let l = "{jobid=\"10\",uid=\"0\"}";
        for want in [
            format!("node_slurm_job_cpus{l} 2\n"),
            format!("node_slurm_job_memory_limit_bytes{l} 209715200\n"),
            format!("node_slurm_job_memory_usage_bytes{l} 6414336\n"),
            format!("node_slurm_job_memory_rss_bytes{l} 4640768\n"),
            format!("node_slurm_job_memory_cache_bytes{l} 208896\n"),
            format!("node_slurm_job_cpu_seconds_total{l} 0.02544132\n"),
            format!("node_slurm_job_cpu_system_seconds_total{l} 0.01\n"),
            format!("node_slurm_job_processes{l} 5\n"),
            format!("node_slurm_job_oom_kills_total{l} 0\n"),
        ] {
            assert!(text.contains(&want), "missing {want:?} in\n{text}");
        }
        assert_golden("slurm_job_multi", &text);
    }

    /// On cgroup v1 `oom_kill` counts in the memory cgroup that hit its limit and is not
    /// summed into its parents: a kill in a step (which carries the job's limit too) shows in
    /// `step_*/memory.oom_control` only. Seen on this VM's kernel with a real job.
    #[test]
    fn v1_oom_kills_in_steps_count() {
        let t = tempfile::tempdir().unwrap();
        let job = t.path().join("memory/slurm/uid_0/job_7");
        for (d, n) in [
            ("", 0),
            ("step_batch", 1),
            ("step_batch/task_0", 0),
            ("step_0", 2),
        ] {
            let dir = job.join(d);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("memory.oom_control"),
                format!("oom_kill_disable 0\nunder_oom 0\noom_kill {n}\n"),
            )
            .unwrap();
        }
        let c = SlurmJob {
            root: t.path().into(),
            procfs: "/nonexistent".into(),
        };
        let text = render(&c).unwrap();
        assert!(
            text.contains("node_slurm_job_oom_kills_total{jobid=\"7\",uid=\"0\"} 3\n"),
            "{text}"
        );
    }

    #[test]
    fn golden_v2() {
        assert_golden("slurm_job_v2", &render(&at("b-slurm_job-v2")).unwrap());
    }

    #[test]
    fn no_slurm_no_samples() {
        let c = SlurmJob {
            root: "/nonexistent".into(),
            procfs: "/nonexistent".into(),
        };
        assert_eq!(render(&c).unwrap(), "");
    }

    #[test]
    fn cpuset_lists() {
        assert_eq!(cpuset_count("0-3,8,10-11\n"), Some(7));
        assert_eq!(cpuset_count(""), Some(0));
        assert_eq!(cpuset_count("5"), Some(1));
        assert_eq!(cpuset_count("3-1"), None);
        assert_eq!(cpuset_count("a"), None);
    }

    proptest! {
        #[test]
        fn cpuset_never_panics(s in "\\PC*") {
            let _ = cpuset_count(&s);
        }

        #[test]
        fn cpuset_ranges_count(a in 0u64..10_000, len in 0u64..10_000) {
            prop_assert_eq!(cpuset_count(&format!("{a}-{}", a + len)), Some(len + 1));
        }
    }
}
