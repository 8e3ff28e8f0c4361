//! `slurm_job` collector: which Slurm job uses which GPU, as one join series per (GPU, job):
//! `gpu_slurm_job_info{uuid,jobid,user,account} 1` (`account` is empty when unknown), and the
//! device memory each job's processes use on the GPU, `gpu_slurm_job_memory_used_bytes{uuid,jobid}`.
//! Join them onto any GPU family, e.g.
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
//!
//! A process's memory counts for the job of its cgroup; a process in no Slurm cgroup counts
//! for the GPU's job when the GPU has exactly one. Only the NVML reads (processes, MIG
//! devices) run on the GPU's worker thread; the `/proc` and mapping-file reads and the
//! uid → user name lookups (NSS, possibly LDAP; cached for ten minutes) run on the
//! collector's own thread, so a slow filesystem or directory server delays this collector
//! only, never the GPU's other reads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::check_outcomes;
use crate::backend::{Device as _, Process};
use crate::gpus::{unavailable, Gpu, GpuSet};

/// A job using a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobRef {
    /// Slurm job id (`42`, or `42_7` for an array task).
    pub jobid: String,
    /// User name, or numeric uid (resolved to a name by the collector when it can be;
    /// empty if unknown).
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
/// `jobid=.. user=.. account=..`. Lines that do not start with a job id are ignored. A
/// numeric uid is kept as it is (the collector resolves it).
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
                        "uid" | "SLURM_JOB_UID" if j.user.is_empty() => j.user = v.to_string(),
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
                .unwrap_or_default()
                .to_string();
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

/// Looks up user names by uid, remembering answers (and misses) for ten minutes, so an NSS
/// or LDAP lookup happens once per uid, not once per process per scrape.
pub struct UserNames {
    lookup: fn(u32) -> Option<String>,
    cache: Mutex<HashMap<u32, (Option<String>, Instant)>>,
}

impl UserNames {
    /// How long an answer is remembered.
    pub const TTL: Duration = Duration::from_secs(600);
    /// Most uids remembered (the cache starts over beyond).
    pub const CAP: usize = 4096;

    /// A cache over `lookup`.
    pub fn new(lookup: fn(u32) -> Option<String>) -> Self {
        UserNames {
            lookup,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The user name of `uid`, or the uid as text when it has none.
    pub fn name(&self, uid: u32) -> String {
        let now = Instant::now();
        if let Some((n, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
        {
            if now.duration_since(*at) < Self::TTL {
                return n.clone().unwrap_or_else(|| uid.to_string());
            }
        }
        let n = (self.lookup)(uid);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= Self::CAP {
            c.clear();
        }
        c.insert(uid, (n.clone(), now));
        n.unwrap_or_else(|| uid.to_string())
    }

    /// `user` as a name: a numeric uid is looked up, a name is kept.
    pub fn resolve(&self, user: &str) -> String {
        match user.parse::<u32>() {
            Ok(uid) => self.name(uid),
            Err(_) => user.to_string(),
        }
    }
}

/// The system's user database (NSS).
pub fn getpwuid(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn real_uid(procfs: &Path, pid: u32) -> Option<u32> {
    let status = read_small(&procfs.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// The Slurm job of process `pid` (from its cgroup under `procfs`), with its user as a uid
/// (cgroup v1 path, else the process's real uid).
pub fn job_of_pid(procfs: &Path, pid: u32) -> Option<JobRef> {
    let cg = read_small(&procfs.join(pid.to_string()).join("cgroup")).ok()?;
    let (jobid, uid) = job_from_cgroup(&cg)?;
    let uid = uid.or_else(|| real_uid(procfs, pid));
    Some(JobRef {
        jobid,
        user: uid.map(|u| u.to_string()).unwrap_or_default(),
        account: String::new(),
    })
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

/// What the GPU's worker reads from NVML for the attribution.
struct GpuData {
    /// The compute processes (`None` when NVML would not list them).
    procs: Option<Vec<Process>>,
    /// The GPU's MIG device UUIDs.
    migs: Vec<String>,
}

fn device_read(gpu: &Gpu, want_migs: bool) -> GpuData {
    let Some(dev) = &gpu.dev else {
        return GpuData {
            procs: None,
            migs: Vec::new(),
        };
    };
    let migs = match want_migs && gpu.ok(dev.mig_enabled()) == Some(true) {
        true => gpu
            .ok(dev.mig_devices())
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.uuid)
            .collect(),
        false => Vec::new(),
    };
    GpuData {
        procs: gpu.ok(dev.compute_processes()),
        migs,
    }
}

/// Flags of the `slurm_job` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Directory of GPU → job mapping files written by Slurm prolog/epilog (one file per GPU
    /// index, UUID or MIG UUID naming the job; dcgm-exporter's and jobstats' layouts).
    #[arg(long = "gpu.job-map-dir", id = "gpu.job-map-dir", value_name = "DIR")]
    pub job_map_dir: Option<PathBuf>,

    /// procfs mount point (for the cgroups of processes running on GPUs).
    #[arg(
        long = "path.procfs",
        id = "path.procfs",
        value_name = "DIR",
        default_value = "/proc"
    )]
    pub procfs: PathBuf,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            job_map_dir: None,
            procfs: PathBuf::from("/proc"),
        }
    }
}

/// The `slurm_job` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(SlurmJob::new(
        cfg.gpus.clone(),
        cfg.flags::<Flags>()?,
    )))
}

/// The collector.
pub struct SlurmJob {
    gpus: Arc<GpuSet>,
    procfs: PathBuf,
    dir: Option<PathBuf>,
    users: UserNames,
    read: Arc<dyn Fn(&Gpu) -> GpuData + Send + Sync>,
}

impl SlurmJob {
    /// Attributes `gpus` using `cfg`'s procfs and mapping directory.
    pub fn new(gpus: Arc<GpuSet>, cfg: &Flags) -> Self {
        Self::with_user_lookup(gpus, cfg, getpwuid)
    }

    /// The same, with `lookup` for user names (tests count the lookups).
    pub fn with_user_lookup(
        gpus: Arc<GpuSet>,
        cfg: &Flags,
        lookup: fn(u32) -> Option<String>,
    ) -> Self {
        let want_migs = cfg.job_map_dir.is_some();
        SlurmJob {
            gpus,
            procfs: cfg.procfs.clone(),
            dir: cfg.job_map_dir.clone(),
            users: UserNames::new(lookup),
            read: Arc::new(move |gpu| device_read(gpu, want_migs)),
        }
    }

    /// Attributes one GPU (runs on the collector's thread: filesystem and NSS only).
    fn attribute(&self, gpu: &Gpu, data: &GpuData, out: &mut MetricSet) {
        let map = match &self.dir {
            Some(d) => jobs_from_map_dir(d, gpu.index, &gpu.uuid, &data.migs),
            None => Vec::new(),
        };
        let procs = data.procs.as_deref().unwrap_or_default();
        let pid_jobs: Vec<Option<JobRef>> = procs
            .iter()
            .map(|p| job_of_pid(&self.procfs, p.pid))
            .collect();
        let mut jobs = merge(map, pid_jobs.iter().flatten().cloned().collect());
        for j in &mut jobs {
            j.user = self.users.resolve(&j.user);
        }
        let f = out.gauge(
            "gpu_slurm_job_info",
            "A Slurm job using the GPU (from its processes' cgroups or the prolog's mapping directory).",
        );
        for j in &jobs {
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
        if data.procs.is_none() {
            return; // NVML would not list the processes: memory unknown.
        }
        let mut mem: BTreeMap<&str, u64> = jobs.iter().map(|j| (j.jobid.as_str(), 0)).collect();
        let only = (jobs.len() == 1).then(|| jobs[0].jobid.as_str());
        for (p, j) in procs.iter().zip(&pid_jobs) {
            let job = j.as_ref().map(|j| j.jobid.as_str()).or(only);
            if let (Some(job), Some(m)) = (job, p.used_memory) {
                *mem.entry(job).or_insert(0) += m;
            }
        }
        let f = out.gauge(
            "gpu_slurm_job_memory_used_bytes",
            "Device memory used on the GPU by the job's processes, in bytes.",
        );
        for (job, m) in mem {
            f.sample(&[("uuid", &gpu.uuid), ("jobid", job)], m as f64);
        }
    }
}

impl Collector for SlurmJob {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let reads = self
            .gpus
            .read_each_with(ctx, "slurm_job", self.read.clone());
        let mut outcomes = Vec::with_capacity(reads.len());
        for r in reads {
            if let Some(data) = &r.value {
                unavailable(out, &r.gpu, "slurm_job", &r.log);
                self.attribute(&r.gpu, data, out);
            }
            outcomes.push((r.gpu, r.outcome));
        }
        check_outcomes(&outcomes)
    }
}
