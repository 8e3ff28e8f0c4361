//! `temperature` collector: GPU core and HBM temperature, and the GPU's slowdown and
//! shutdown thresholds, in celsius.

use hpcmon_kit::MetricSet;

use crate::backend::{Device as _, TempThreshold};
use crate::gpus::Gpu;

/// The `temperature` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "temperature", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    if let Some(t) = gpu.ok(dev.temperature()) {
        out.gauge(
            "gpu_temperature_celsius",
            "GPU core temperature in celsius.",
        )
        .sample(&l, f64::from(t));
    }
    if let Some(t) = gpu.ok(dev.memory_temperature()) {
        out.gauge(
            "gpu_memory_temperature_celsius",
            "GPU memory (HBM) temperature in celsius.",
        )
        .sample(&l, f64::from(t));
    }
    if let Some(t) = gpu.ok(dev.temperature_threshold(TempThreshold::Slowdown)) {
        out.gauge(
            "gpu_temperature_slowdown_threshold_celsius",
            "Temperature at which the GPU slows down its clocks, in celsius.",
        )
        .sample(&l, f64::from(t));
    }
    if let Some(t) = gpu.ok(dev.temperature_threshold(TempThreshold::Shutdown)) {
        out.gauge(
            "gpu_temperature_shutdown_threshold_celsius",
            "Temperature at which the GPU shuts down, in celsius.",
        )
        .sample(&l, f64::from(t));
    }
}
