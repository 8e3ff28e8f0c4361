//! The report's data model, shared by every part of the crate: what Slurm says about a job
//! ([`JobHeader`]), what the metrics say it used ([`Usage`]), the advice ([`Note`]) and the
//! whole [`Report`] that is printed, served as JSON and summarised at job end.

use serde::{Deserialize, Serialize};

/// What Slurm knows about a job (from `sacct`, or `squeue` where accounting is absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobHeader {
    /// The id as Slurm prints it (`123`, or `120_4` for an array task).
    pub jobid: String,
    /// The unique id (sacct's `JobIDRaw`), the one in cgroup paths and `node_slurm_job_*`.
    pub jobid_raw: String,
    /// User name.
    pub user: String,
    /// Account.
    pub account: String,
    /// Partition.
    pub partition: String,
    /// Job name.
    pub name: String,
    /// State as Slurm prints it, upper case, without the `by UID` suffix (`RUNNING`,
    /// `COMPLETED`, `CANCELLED`, `OUT_OF_MEMORY`, `TIMEOUT`, ...).
    pub state: String,
    /// Allocated nodes as a compressed hostlist (`n[1-2]`), empty while pending.
    pub nodelist: String,
    /// Node count.
    pub nodes: u32,
    /// Allocated CPUs (cores).
    pub cpus: u32,
    /// Allocated GPUs.
    pub gpus: u32,
    /// Requested/allocated memory for the whole job, in bytes (None: unknown/unlimited).
    pub mem_requested_bytes: Option<f64>,
    /// Submit time, unix seconds.
    pub submit_time: Option<i64>,
    /// Start time, unix seconds (None while pending).
    pub start_time: Option<i64>,
    /// End time, unix seconds (None while running).
    pub end_time: Option<i64>,
    /// Run time so far / in total, seconds.
    pub elapsed_seconds: Option<f64>,
    /// Time limit, seconds (None: unlimited).
    pub time_limit_seconds: Option<f64>,
    /// Exit code as Slurm prints it (`0:0`).
    pub exit_code: Option<String>,
}

impl JobHeader {
    /// Whether the job still runs (or is completing/suspended): its series are still growing.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING"
                | "COMPLETING"
                | "CONFIGURING"
                | "SUSPENDED"
                | "STOPPED"
                | "SIGNALING"
                | "RESIZING"
        )
    }
    /// Whether the job never started.
    pub fn is_pending(&self) -> bool {
        self.state == "PENDING" || self.start_time.is_none()
    }
}

/// One node's share of a job, averaged over the job's life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// Node name (the node exporter's `instance` without the port).
    pub node: String,
    /// CPUs in the job's cpuset on this node.
    pub cpus: f64,
    /// Mean cores busy over the job's life (CPU seconds / elapsed).
    pub cores_used: f64,
    /// `cores_used / cpus` (0..1).
    pub cpu_efficiency: Option<f64>,
    /// Memory in use at the end (or now): RSS, bytes.
    pub mem_used_bytes: Option<f64>,
    /// Peak memory charged to the job's cgroup on this node, bytes.
    pub mem_peak_bytes: Option<f64>,
    /// The cgroup's memory limit on this node, bytes.
    pub mem_limit_bytes: Option<f64>,
    /// OOM kills on this node.
    pub oom_kills: f64,
}

/// One GPU used by a job, averaged over the job's life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuUsage {
    /// Node name.
    pub node: String,
    /// GPU UUID.
    pub uuid: String,
    /// Mean utilisation (0..1).
    pub utilization: Option<f64>,
    /// Peak memory used, bytes.
    pub mem_used_max_bytes: Option<f64>,
    /// Memory of the GPU, bytes.
    pub mem_total_bytes: Option<f64>,
}

/// What the metrics say the job used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The window the numbers cover, unix seconds.
    pub from: i64,
    /// End of the window, unix seconds.
    pub to: i64,
    /// Per node, sorted by node name.
    pub nodes: Vec<NodeUsage>,
    /// Per GPU, sorted by node then uuid.
    pub gpus: Vec<GpuUsage>,
    /// CPUs Slurm allocated to the job (0: unknown). A node where the job ran no process has
    /// no cgroup and so no series; its CPUs count here, as unused.
    #[serde(default)]
    pub allocated_cpus: f64,
}

impl Usage {
    /// Total CPUs over nodes.
    pub fn cpus(&self) -> f64 {
        self.nodes.iter().map(|n| n.cpus).sum()
    }
    /// Total mean cores used over nodes.
    pub fn cores_used(&self) -> f64 {
        self.nodes.iter().map(|n| n.cores_used).sum()
    }
    /// Overall CPU efficiency (0..1): mean cores used over the CPUs allocated (or, when
    /// Slurm's count is unknown, those measured); None without CPUs.
    pub fn cpu_efficiency(&self) -> Option<f64> {
        let c = self.cpus().max(self.allocated_cpus);
        (c > 0.0).then(|| (self.cores_used() / c).min(1.0))
    }
    /// Sum of the nodes' peaks (an upper bound of the job's peak), None without data.
    pub fn mem_peak_bytes(&self) -> Option<f64> {
        let v: Vec<f64> = self.nodes.iter().filter_map(|n| n.mem_peak_bytes).collect();
        (!v.is_empty()).then(|| v.iter().sum())
    }
    /// OOM kills over all nodes.
    pub fn oom_kills(&self) -> f64 {
        self.nodes.iter().map(|n| n.oom_kills).sum()
    }
    /// Mean GPU utilisation over the job's GPUs (0..1), None without GPU data.
    pub fn gpu_utilization(&self) -> Option<f64> {
        let v: Vec<f64> = self.gpus.iter().filter_map(|g| g.utilization).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// How bad a note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Good to know.
    Info,
    /// Worth changing.
    Notice,
    /// Wastes the machine: change it.
    Warning,
    /// The job failed or will fail because of it.
    Critical,
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The rule that produced it.
    pub rule: String,
    /// How bad.
    pub severity: Severity,
    /// The text shown to the user.
    pub message: String,
}

/// Where the usage numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Queried from Prometheus now.
    Prometheus,
    /// Read from the summary stored at job end.
    Summary,
    /// No metrics for the job.
    None,
}

/// Version of the report/summary format.
pub const REPORT_VERSION: u32 = 1;

/// A job's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Format version ([`REPORT_VERSION`]).
    pub version: u32,
    /// Slurm's view.
    pub job: JobHeader,
    /// Where `usage` came from.
    pub source: Source,
    /// The metrics' view (None: no metrics and no summary).
    pub usage: Option<Usage>,
    /// Advice.
    pub notes: Vec<Note>,
    /// Link to the Grafana Job dashboard, when a Grafana URL is configured.
    pub dashboard_url: Option<String>,
}

/// One finished run of a program, from accounting history (the input of the scaling
/// prediction).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Job id as Slurm prints it.
    pub jobid: String,
    /// User name.
    pub user: String,
    /// Job name.
    pub name: String,
    /// Allocated CPUs (the `p` of the scaling model).
    pub cpus: u32,
    /// Allocated nodes.
    pub nodes: u32,
    /// Run time, seconds.
    pub elapsed_seconds: f64,
    /// Final state (`COMPLETED`, ...).
    pub state: String,
    /// Hash of the batch script, where Slurm stores it (None otherwise).
    pub script_hash: Option<String>,
    /// End time, unix seconds.
    pub end_time: Option<i64>,
}
