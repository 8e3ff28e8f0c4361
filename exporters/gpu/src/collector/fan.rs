//! `fan` collector: fan speed as a ratio of the maximum, per fan (passively cooled data
//! centre GPUs report none).

use hpcmon_kit::MetricSet;

use super::ratio;
use crate::backend::Device as _;
use crate::gpus::Gpu;

/// The `fan` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "fan", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    if let Some(fans) = gpu.ok(dev.fan_speeds()) {
        let f = out.gauge(
            "gpu_fan_speed_ratio",
            "Fan speed as a fraction of its maximum.",
        );
        for (i, v) in fans.iter().enumerate() {
            f.sample(&[("uuid", &gpu.uuid), ("fan", &i.to_string())], ratio(*v));
        }
    }
}
