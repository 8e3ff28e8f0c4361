//! `throttle` collector: clock event ("throttle") reasons as a labelled gauge,
//! `gpu_throttle_reason_active{uuid,reason}` 1 while the reason holds the clocks down,
//! for every reason the GPU can report.

use hpcmon_kit::MetricSet;

use crate::backend::{Device as _, THROTTLE_REASONS};
use crate::gpus::Gpu;

/// The `throttle` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "throttle", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let Some(active) = gpu.ok(dev.throttle_reasons()) else {
        return;
    };
    let supported = gpu.ok(dev.supported_throttle_reasons()).unwrap_or(u64::MAX);
    let f = out.gauge(
        "gpu_throttle_reason_active",
        "Whether a clock event (throttle) reason currently limits the GPU's clocks.",
    );
    for (bit, name) in THROTTLE_REASONS {
        if supported & bit != 0 {
            let v = if active & bit != 0 { 1.0 } else { 0.0 };
            f.sample(&[("uuid", &gpu.uuid), ("reason", name)], v);
        }
    }
}
