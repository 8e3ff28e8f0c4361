//! `gpm` collector (off by default; `--collector.gpm`): GPU performance monitoring (GPM)
//! activity ratios of Hopper and newer GPUs, the DCGM profiling ratios without DCGM. NVML's
//! plain utilisation is `NotSupported` for a GPU in MIG mode and for its MIG devices; GPM
//! measures each MIG GPU instance too.
//!
//! - whole GPU: `gpu_gpm_<metric>_ratio{uuid}`;
//! - MIG GPU instance: `gpu_mig_gpm_<metric>_ratio{uuid,gpu_instance_id}` (join on
//!   `gpu_mig_info` for its MIG devices);
//!
//! with `<metric>` one of `graphics_activity`, `sm_activity`, `sm_occupancy`,
//! `tensor_activity`, `dram_activity`, `fp64_activity`, `fp32_activity`, `fp16_activity`
//! (0–1). The GPU's refresh thread takes a GPM sample every `--gpu.refresh-interval`; each
//! value covers the interval between its last two samples (so none is served until the
//! second sample, about a second after start). GPUs without GPM report nothing.

use hpcmon_kit::MetricSet;

use crate::gpus::Gpu;

/// The `gpm` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "gpm", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let Some(readings) = gpu.ok(dev.gpm()) else {
        return;
    };
    for r in readings {
        let gi = r.gpu_instance.map(|g| g.to_string());
        for (m, v) in &r.values {
            let Ok(v) = v else { continue };
            let help = format!("{} (0-1, GPM, over the last refresh interval).", m.help());
            match &gi {
                None => out
                    .gauge_dyn(&format!("gpu_gpm_{}_ratio", m.name()), &help)
                    .sample(&gpu.labels(), v / 100.0),
                Some(gi) => out
                    .gauge(
                        format!("gpu_mig_gpm_{}_ratio", m.name()),
                        format!("{} in the MIG GPU instance (0-1, GPM, over the last refresh interval).", m.help()),
                    )
                    .sample(&[("uuid", &gpu.uuid), ("gpu_instance_id", gi)], v / 100.0),
            };
        }
    }
}
