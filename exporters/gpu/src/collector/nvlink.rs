//! `nvlink` collector: per link, whether it is up and its error counters. GPUs without
//! NVLink report nothing.

use hpcmon_kit::MetricSet;

use crate::backend::{Device as _, NvLinkError, NVLINK_MAX_LINKS};
use crate::gpus::Gpu;

/// The `nvlink` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "nvlink", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    for link in 0..NVLINK_MAX_LINKS {
        // A link that does not exist answers NotSupported / InvalidArg; skip it.
        let Ok(active) = dev.nvlink_active(link) else {
            continue;
        };
        let ls = link.to_string();
        out.gauge("gpu_nvlink_up", "Whether the NVLink link is active.")
            .sample(
                &[("uuid", &gpu.uuid), ("link", &ls)],
                if active { 1.0 } else { 0.0 },
            );
        for e in NvLinkError::ALL {
            if let Some(v) = gpu.ok(dev.nvlink_errors(link, e)) {
                out.counter(
                    "gpu_nvlink_errors_total",
                    "NVLink data link errors by type.",
                )
                .sample(
                    &[("uuid", &gpu.uuid), ("link", &ls), ("type", e.label())],
                    v as f64,
                );
            }
        }
    }
}
