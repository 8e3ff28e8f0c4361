//! `slurm_job` collector: which Slurm job uses which GPU, as one join series per (GPU, job):
//! `gpu_slurm_job_info{uuid,jobid,user,account} 1` (`account` is empty when unknown).
//! Join it onto any GPU family, e.g.
//! `gpu_utilization_ratio * on(uuid) group_left(jobid,user) gpu_slurm_job_info`.
//!
//! Two sources, merged per job id:
//!
//! 1. **Processes on the GPU** (NVML's compute processes) → `/proc/PID/cgroup` → the job id
//!    in the Slurm cgroup path: cgroup v1 `.../slurm/uid_1000/job_42/step_0/...` (the uid
//!    gives the user) and v2 `.../slurmstepd.scope/job_42/step_0/...` (the user is the
//!    process's real uid from `/proc/PID/status`).
//! 2. **A mapping directory** (`--gpu.job-map-dir`) written by Slurm prolog/epilog scripts,
//!    one file per GPU, named by the GPU's index (`0`), UUID (`GPU-...`), MIG UUID
//!    (`MIG-...`) or `INDEX.MIG` (dcgm-exporter's HPC job mapping), each line naming a
//!    job: `JOBID [UID|USER [ACCOUNT]]` — dcgm-exporter writes bare job ids, Princeton's
//!    jobstats `JOBID UID`; `jobid=.. user=.. account=..` also works. This attributes a GPU
//!    that is allocated to a job but runs no process. See `contrib/prolog.sh`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::check_outcomes;
use crate::gpus::{Gpu, GpuSet, ReadFn};

/// A job using a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobRef {
    /// Slurm job id (`42`, or `42_7` for an array task).
    pub jobid: String,
    /// User name (or numeric uid when it cannot be resolved; empty if unknown).
    pub user: String,
    /// Account (empty if unknown).
    pub account: String,
}

static JOBID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+(?:[_+][0-9]+)?$").expect("valid regex"));
static CG_JOB: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/job_([0-9]+)(?:/|$)").expect("valid regex"));
static CG_UID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/uid_([0-9]+)(?:/|$)").expect("valid regex"));

/// Parses a mapping file: one job per line, `JOBID [UID|USER [ACCOUNT]]` or
/// `jobid=.. user=.. account=..`. Lines that do not start with a job id are ignored.
pub fn parse_map_file(content: &str) -> Vec<JobRef> {
    let mut out = Vec::new();
    for line in content.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut j = JobRef::default();
        if line.contains('=') {
            for kv in line.split_whitespace() {
                if let Some((k, v)) = kv.split_once('=') {
                    match k {
                        "jobid" | "job" | "SLURM_JOB_ID" => j.jobid = v.to_string(),
                        "user" | "SLURM_JOB_USER" => j.user = v.to_string(),
                        "uid" | "SLURM_JOB_UID" if j.user.is_empty() => j.user = user_name(v),
                        "account" | "SLURM_JOB_ACCOUNT" => j.account = v.to_string(),
                        _ => {}
                    }
                }
            }
        } else {
            let mut t = line.split_whitespace();
            j.jobid = t.next().unwrap_or_default().to_string();
            j.user = t
                .next()
                .filter(|u| *u != "-")
                .map(user_name)
                .unwrap_or_default();
            j.account = t.next().unwrap_or_default().to_string();
        }
        if JOBID.is_match(&j.jobid) {
            out.push(j);
        }
    }
    out
}

/// The Slurm job id and (cgroup v1) uid in a `/proc/PID/cgroup` file.
pub fn job_from_cgroup(content: &str) -> Option<(String, Option<u32>)> {
    for line in content.lines() {
        // hierarchy-ID:controllers:path
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        if !path.contains("slurm") {
            continue;
        }
        if let Some(c) = CG_JOB.captures(path) {
            let uid = CG_UID.captures(path).and_then(|u| u[1].parse::<u32>().ok());
            return Some((c[1].to_string(), uid));
        }
    }
    None
}

/// A user name for a numeric uid (or the text itself when it is already a name).
fn user_name(v: &str) -> String {
    match v.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string()),
        Err(_) => v.to_string(),
    }
}

fn real_uid(procfs: &Path, pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(procfs.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// The jobs whose processes run on `pids`, from their cgroups under `procfs`.
pub fn jobs_from_pids(procfs: &Path, pids: &[u32]) -> Vec<JobRef> {
    let mut out: Vec<JobRef> = Vec::new();
    for pid in pids {
        let Ok(cg) = std::fs::read_to_string(procfs.join(pid.to_string()).join("cgroup")) else {
            continue;
        };
        let Some((jobid, uid)) = job_from_cgroup(&cg) else {
            continue;
        };
        if out.iter().any(|j| j.jobid == jobid) {
            continue;
        }
        let uid = uid.or_else(|| real_uid(procfs, *pid));
        out.push(JobRef {
            jobid,
            user: uid.map(|u| user_name(&u.to_string())).unwrap_or_default(),
            account: String::new(),
        });
    }
    out
}

/// The jobs the mapping directory names for a GPU (by index, UUID, `INDEX.MIG` or one of
/// its MIG UUIDs).
pub fn jobs_from_map_dir(dir: &Path, index: u32, uuid: &str, mig_uuids: &[String]) -> Vec<JobRef> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let idx = index.to_string();
    let idx_dot = format!("{idx}.");
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name == idx
            || name == uuid
            || (name.starts_with(&idx_dot) && name[idx_dot.len()..].parse::<u32>().is_ok())
            || mig_uuids.iter().any(|m| m == name);
        if !ours {
            continue;
        }
        // Bounded read: these files hold a line or two.
        let Ok(content) = read_small(&e.path()) else {
            continue;
        };
        out.extend(parse_map_file(&content));
    }
    out
}

fn read_small(p: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(p)?
        .take(64 * 1024)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// Merges job references by job id; the mapping directory's user/account win over the
/// cgroup's.
pub fn merge(map: Vec<JobRef>, procs: Vec<JobRef>) -> Vec<JobRef> {
    let mut by: BTreeMap<String, JobRef> = BTreeMap::new();
    for j in procs.into_iter().chain(map) {
        let e = by.entry(j.jobid.clone()).or_insert_with(|| j.clone());
        if !j.user.is_empty() {
            e.user = j.user;
        }
        if !j.account.is_empty() {
            e.account = j.account;
        }
    }
    by.into_values().collect()
}

/// The collector.
pub struct SlurmJob {
    gpus: Arc<GpuSet>,
    read: ReadFn,
}

impl SlurmJob {
    /// Attributes `gpus` using `cfg`'s procfs and mapping directory.
    pub fn new(gpus: Arc<GpuSet>, cfg: &super::Config) -> Self {
        let procfs = cfg.procfs.clone();
        let dir = cfg.job_map_dir.clone();
        SlurmJob {
            gpus,
            read: Arc::new(move |gpu, out| read(gpu, out, &procfs, dir.as_deref())),
        }
    }
}

fn read(gpu: &Gpu, out: &mut MetricSet, procfs: &Path, dir: Option<&Path>) {
    let Some(dev) = &gpu.dev else { return };
    let map = match dir {
        Some(d) => {
            let migs: Vec<String> = match gpu.ok(dev.mig_enabled()) {
                Some(true) => gpu
                    .ok(dev.mig_devices())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| m.uuid)
                    .collect(),
                _ => Vec::new(),
            };
            jobs_from_map_dir(d, gpu.index, &gpu.uuid, &migs)
        }
        None => Vec::new(),
    };
    let pids: Vec<u32> = gpu
        .ok(dev.compute_processes())
        .unwrap_or_default()
        .iter()
        .map(|p| p.pid)
        .collect();
    let procs = jobs_from_pids(procfs, &pids);
    let f = out.gauge(
        "gpu_slurm_job_info",
        "A Slurm job using the GPU (from its processes' cgroups or the prolog's mapping directory).",
    );
    for j in merge(map, procs) {
        f.sample(
            &[
                ("uuid", &gpu.uuid),
                ("jobid", &j.jobid),
                ("user", &j.user),
                ("account", &j.account),
            ],
            1.0,
        );
    }
}

impl Collector for SlurmJob {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let (set, outcomes) = self.gpus.read_each(ctx, "slurm_job", &self.read);
        out.extend(set);
        check_outcomes(&outcomes)
    }
}
