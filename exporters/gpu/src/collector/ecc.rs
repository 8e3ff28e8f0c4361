//! `ecc` collector: ECC mode and error counters (corrected / uncorrected, volatile since
//! the driver loaded / aggregate over the GPU's life), retired pages (up to Volta) and
//! remapped rows (Ampere and newer).

use hpcmon_kit::MetricSet;

use crate::backend::{Device as _, EccCounter, EccType, RetirementCause};
use crate::gpus::Gpu;

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The `ecc` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    super::per_device(cfg, "ecc", read)
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    let u = gpu.uuid.as_str();
    if let Some(on) = gpu.ok(dev.ecc_enabled()) {
        out.gauge("gpu_ecc_mode_enabled", "Whether ECC is enabled.")
            .sample(&l, flag(on));
    }
    for (c, cl) in [
        (EccCounter::Volatile, "volatile"),
        (EccCounter::Aggregate, "aggregate"),
    ] {
        for (t, tl) in [
            (EccType::Corrected, "corrected"),
            (EccType::Uncorrected, "uncorrected"),
        ] {
            if let Some(v) = gpu.ok(dev.ecc_errors(t, c)) {
                out.counter(
                    "gpu_ecc_errors_total",
                    "ECC errors; counter=volatile since the driver loaded, aggregate over the GPU's life.",
                )
                .sample(&[("uuid", u), ("type", tl), ("counter", cl)], v as f64);
            }
        }
    }
    for (c, cl) in [
        (RetirementCause::MultipleSingleBit, "multiple_single_bit"),
        (RetirementCause::DoubleBit, "double_bit"),
    ] {
        if let Some(v) = gpu.ok(dev.retired_pages(c)) {
            out.gauge("gpu_retired_pages", "Retired device memory pages.")
                .sample(&[("uuid", u), ("cause", cl)], f64::from(v));
        }
    }
    if let Some(p) = gpu.ok(dev.retired_pages_pending()) {
        out.gauge(
            "gpu_retired_pages_pending",
            "Whether a page retirement waits for a reboot.",
        )
        .sample(&l, flag(p));
    }
    if let Some(r) = gpu.ok(dev.remapped_rows()) {
        let f = out.gauge(
            "gpu_remapped_rows",
            "Memory rows remapped, by the error that caused it.",
        );
        f.sample(
            &[("uuid", u), ("type", "correctable")],
            f64::from(r.correctable),
        );
        f.sample(
            &[("uuid", u), ("type", "uncorrectable")],
            f64::from(r.uncorrectable),
        );
        out.gauge(
            "gpu_remapped_rows_pending",
            "Whether a row remapping waits for a GPU reset.",
        )
        .sample(&l, flag(r.pending));
        out.gauge(
            "gpu_remapped_rows_failure",
            "Whether a row remapping failed (the GPU should be replaced).",
        )
        .sample(&l, flag(r.failure));
    }
}
