//! `clocks` collector: current and maximum clocks per domain (`graphics`, `sm`, `memory`,
//! `video`) in hertz, and the performance state (0 = fastest, 15 = slowest).

use hpcmon_kit::MetricSet;

use crate::backend::{Clock, Device as _};
use crate::gpus::Gpu;

const MHZ: f64 = 1e6;

/// The `clocks` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "clocks", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    for c in Clock::ALL {
        if let Some(v) = gpu.ok(dev.clock(c)) {
            out.gauge("gpu_clock_hertz", "Current clock frequency in hertz.")
                .sample(
                    &[("uuid", &gpu.uuid), ("clock", c.label())],
                    f64::from(v) * MHZ,
                );
        }
    }
    for c in Clock::ALL {
        if let Some(v) = gpu.ok(dev.max_clock(c)) {
            out.gauge("gpu_clock_max_hertz", "Maximum clock frequency in hertz.")
                .sample(
                    &[("uuid", &gpu.uuid), ("clock", c.label())],
                    f64::from(v) * MHZ,
                );
        }
    }
    if let Some(p) = gpu.ok(dev.performance_state()) {
        out.gauge(
            "gpu_performance_state",
            "Performance state (P-state): 0 is the fastest, 15 the slowest.",
        )
        .sample(&gpu.labels(), f64::from(p));
    }
}
