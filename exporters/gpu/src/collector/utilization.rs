//! `utilization` collector: how busy each GPU is, as ratios (0–1) over NVML's last sample
//! period (1/6 s to 1 s depending on the GPU).

use hpcmon_kit::MetricSet;

use super::ratio;
use crate::backend::Device as _;
use crate::gpus::Gpu;

/// The `utilization` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "utilization", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    if let Some(u) = gpu.ok(dev.utilization()) {
        out.gauge(
            "gpu_utilization_ratio",
            "Fraction of time over the last sample period during which a kernel ran on the GPU.",
        )
        .sample(&l, ratio(u.gpu));
        out.gauge(
            "gpu_memory_utilization_ratio",
            "Fraction of time over the last sample period during which device memory was read or written.",
        )
        .sample(&l, ratio(u.memory));
    }
    if let Some(v) = gpu.ok(dev.encoder_utilization()) {
        out.gauge(
            "gpu_encoder_utilization_ratio",
            "Video encoder utilisation (0-1).",
        )
        .sample(&l, ratio(v));
    }
    if let Some(v) = gpu.ok(dev.decoder_utilization()) {
        out.gauge(
            "gpu_decoder_utilization_ratio",
            "Video decoder utilisation (0-1).",
        )
        .sample(&l, ratio(v));
    }
}
