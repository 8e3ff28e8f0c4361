//! `mig` collector: MIG mode, and per MIG device its identity
//! (`gpu_mig_info{uuid,mig_uuid,gpu_instance_id,compute_instance_id,profile} 1`), memory,
//! and utilisation where the driver reports it. The parent GPU's own families keep working
//! in MIG mode (from their own collectors).

use hpcmon_kit::MetricSet;

use super::ratio;
use crate::backend::Device as _;
use crate::gpus::Gpu;

/// The `mig` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "mig", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let Some(enabled) = gpu.ok(dev.mig_enabled()) else {
        return;
    };
    out.gauge("gpu_mig_mode_enabled", "Whether MIG mode is enabled.")
        .sample(&gpu.labels(), if enabled { 1.0 } else { 0.0 });
    if !enabled {
        return;
    }
    let Some(migs) = gpu.ok(dev.mig_devices()) else {
        return;
    };
    for m in migs {
        let gi = m.gpu_instance_id.to_string();
        let ci = m.compute_instance_id.to_string();
        out.gauge("gpu_mig_info", "A MIG device of a GPU; join on mig_uuid.")
            .sample(
                &[
                    ("uuid", &gpu.uuid),
                    ("mig_uuid", &m.uuid),
                    ("gpu_instance_id", &gi),
                    ("compute_instance_id", &ci),
                    ("profile", &m.profile),
                ],
                1.0,
            );
        let l = [("uuid", gpu.uuid.as_str()), ("mig_uuid", m.uuid.as_str())];
        if let Ok(mem) = m.memory {
            out.gauge("gpu_mig_memory_total_bytes", "MIG device memory in bytes.")
                .sample(&l, mem.total as f64);
            out.gauge(
                "gpu_mig_memory_used_bytes",
                "Used MIG device memory in bytes.",
            )
            .sample(&l, mem.used as f64);
            out.gauge(
                "gpu_mig_memory_free_bytes",
                "Free MIG device memory in bytes.",
            )
            .sample(&l, mem.free as f64);
        }
        if let Ok(u) = m.utilization {
            out.gauge(
                "gpu_mig_utilization_ratio",
                "MIG device utilisation (0-1), where the driver reports it.",
            )
            .sample(&l, ratio(u.gpu));
        }
    }
}
