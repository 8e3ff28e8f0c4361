//! `memory` collector: frame buffer and BAR1 memory in bytes. The driver sets part of the
//! frame buffer aside (`gpu_memory_reserved_bytes`): used + free + reserved = total.

use hpcmon_kit::MetricSet;

use crate::backend::Device as _;
use crate::gpus::Gpu;

/// The `memory` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "memory", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    if let Some(m) = gpu.ok(dev.memory_info()) {
        out.gauge(
            "gpu_memory_total_bytes",
            "Total frame buffer memory in bytes.",
        )
        .sample(&l, m.total as f64);
        out.gauge(
            "gpu_memory_used_bytes",
            "Used frame buffer memory in bytes.",
        )
        .sample(&l, m.used as f64);
        out.gauge(
            "gpu_memory_free_bytes",
            "Free frame buffer memory in bytes.",
        )
        .sample(&l, m.free as f64);
        out.gauge(
            "gpu_memory_reserved_bytes",
            "Frame buffer memory the driver sets aside, in bytes.",
        )
        .sample(&l, m.reserved as f64);
    }
    if let Some(m) = gpu.ok(dev.bar1_memory_info()) {
        out.gauge("gpu_bar1_memory_total_bytes", "Total BAR1 memory in bytes.")
            .sample(&l, m.total as f64);
        out.gauge("gpu_bar1_memory_used_bytes", "Used BAR1 memory in bytes.")
            .sample(&l, m.used as f64);
        out.gauge("gpu_bar1_memory_free_bytes", "Free BAR1 memory in bytes.")
            .sample(&l, m.free as f64);
    }
}
