//! `processes` collector: how many compute processes run on each GPU and how much device
//! memory they use together, and per process `gpu_process_memory_bytes{uuid,pid}` for the
//! `--gpu.process-series-limit` processes using the most memory on each GPU (the rest are
//! counted in `gpu_process_series_dropped{uuid}`). Which job a process belongs to is
//! `gpu_slurm_job_info` / `gpu_slurm_job_memory_used_bytes`. Processes whose memory NVML
//! does not report are counted in `gpu_processes` only.

use hpcmon_kit::MetricSet;

use crate::backend::Device as _;
use crate::gpus::Gpu;

/// Flags of the `processes` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Most processes per GPU exported in `gpu_process_memory_bytes` (those using the most
    /// memory); the rest are counted in `gpu_process_series_dropped`.
    #[arg(
        long = "gpu.process-series-limit",
        id = "gpu.process-series-limit",
        value_name = "N",
        default_value_t = 64
    )]
    pub process_series_limit: usize,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            process_series_limit: 64,
        }
    }
}

/// The `processes` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    let limit = cfg.flags::<Flags>()?.process_series_limit;
    Ok(super::PerDevice::shared(
        cfg.gpus.clone(),
        "processes",
        move |gpu, out| read(gpu, out, limit),
    ))
}

/// Reads one GPU, exporting at most `limit` per-process series (0: no limit).
pub fn read(gpu: &Gpu, out: &mut MetricSet, limit: usize) {
    let Some(dev) = &gpu.dev else { return };
    let Some(procs) = gpu.ok(dev.compute_processes()) else {
        return;
    };
    let l = gpu.labels();
    out.gauge(
        "gpu_processes",
        "Number of compute processes running on the GPU.",
    )
    .sample(&l, procs.len() as f64);
    let mem: u64 = procs.iter().filter_map(|p| p.used_memory).sum();
    out.gauge(
        "gpu_processes_memory_used_bytes",
        "Device memory used by the GPU's compute processes, in bytes.",
    )
    .sample(&l, mem as f64);
    let mut each: Vec<(u32, u64)> = procs
        .iter()
        .filter_map(|p| p.used_memory.map(|m| (p.pid, m)))
        .collect();
    each.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keep = if limit == 0 { each.len() } else { limit };
    let dropped = each.len().saturating_sub(keep);
    let f = out.gauge(
        "gpu_process_memory_bytes",
        "Device memory used by one compute process on the GPU, in bytes (the processes using the most, up to --gpu.process-series-limit per GPU).",
    );
    for (pid, m) in each.iter().take(keep) {
        f.sample(&[("uuid", &gpu.uuid), ("pid", &pid.to_string())], *m as f64);
    }
    out.gauge(
        "gpu_process_series_dropped",
        "Processes left out of gpu_process_memory_bytes in this scrape because of --gpu.process-series-limit.",
    )
    .sample(&l, dropped as f64);
}
