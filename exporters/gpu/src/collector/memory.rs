//! `memory` collector: frame buffer and BAR1 memory in bytes.

use hpcmon_kit::MetricSet;

use crate::gpus::Gpu;

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
