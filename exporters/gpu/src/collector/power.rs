//! `power` collector: power draw and enforced limit in watts, and energy since the driver
//! loaded as a counter in joules.

use hpcmon_kit::MetricSet;

use crate::backend::Device as _;
use crate::gpus::Gpu;

/// The `power` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "power", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    if let Some(mw) = gpu.ok(dev.power_usage()) {
        out.gauge("gpu_power_usage_watts", "Power draw in watts.")
            .sample(&l, f64::from(mw) / 1000.0);
    }
    if let Some(mw) = gpu.ok(dev.power_limit()) {
        out.gauge("gpu_power_limit_watts", "Enforced power limit in watts.")
            .sample(&l, f64::from(mw) / 1000.0);
    }
    if let Some(mj) = gpu.ok(dev.total_energy()) {
        out.counter(
            "gpu_energy_joules_total",
            "Energy consumed since the driver was loaded, in joules.",
        )
        .sample(&l, mj as f64 / 1000.0);
    }
}
