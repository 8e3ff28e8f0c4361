//! `processes` collector: how many compute processes run on each GPU and how much device
//! memory they use together (per-process series would multiply cardinality; which job they
//! belong to is `gpu_slurm_job_info`).

use hpcmon_kit::MetricSet;

use crate::gpus::Gpu;

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    if let Some(procs) = gpu.ok(dev.compute_processes()) {
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
    }
}
