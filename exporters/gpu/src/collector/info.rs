//! `info` collector: NVML's state and each GPU's identity and liveness.
//!
//! - `gpu_nvml_up` 1 when NVML is initialised; 0 on a node without a GPU or driver (with
//!   `gpu_nvml_up_reason{reason}` 1 saying why, e.g. `library_not_found`,
//!   `driver_not_loaded`). The exporter keeps retrying in the background.
//! - `gpu_nvml_info{driver_version,nvml_version,cuda_version}` 1 and `gpu_devices`.
//! - `gpu_info{uuid,index,name,pci_bus_id,driver_version,cuda_version,serial,vbios_version,minor_number}` 1.
//! - `gpu_up{uuid}`: 1 when the GPU answers a cheap probe (its performance state); 0 when it
//!   fell off the bus, needs a reset or did not answer in time, with
//!   `gpu_up_reason{uuid,reason}` 1 (`gpu_lost`, `reset_required`, `timeout`, ...) present
//!   only while it is down.
//! - `gpu_cached_values_age_seconds{uuid}`: how old the values read in the background are
//!   (see [`crate::cache`]).

use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::backend::{Device as _, GpuError};
use crate::gpus::{Gpu, GpuSet, ReadFn, ReadOutcome};

/// The collector.
pub struct Info {
    gpus: Arc<GpuSet>,
    probe: ReadFn,
}

/// The `info` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<Arc<dyn hpcmon_kit::Collector>> {
    Ok(Arc::new(Info::new(cfg.gpus.clone())))
}

impl Info {
    /// Reports on `gpus`.
    pub fn new(gpus: Arc<GpuSet>) -> Self {
        Info {
            gpus,
            probe: Arc::new(probe),
        }
    }
}

fn up(out: &mut MetricSet, gpu: &Gpu, err: Option<&GpuError>) {
    out.gauge(
        "gpu_up",
        "Whether the GPU answers NVML (0: lost, needs a reset, or hung; see gpu_up_reason).",
    )
    .sample(&gpu.labels(), if err.is_none() { 1.0 } else { 0.0 });
    if let Some(e) = err {
        out.gauge(
            "gpu_up_reason",
            "Why gpu_up is 0 (present only while the GPU is down).",
        )
        .sample(&[("uuid", &gpu.uuid), ("reason", e.reason())], 1.0);
    }
}

fn probe(gpu: &Gpu, out: &mut MetricSet) {
    let Some(dev) = &gpu.dev else { return };
    let err = match dev.performance_state() {
        Ok(_) | Err(GpuError::NotSupported) => None,
        Err(e) => Some(e),
    };
    if let Some(e) = &err {
        if e.needs_reinit() {
            gpu.ok::<()>(Err(e.clone()));
        }
    }
    *gpu.last_probe.lock().unwrap_or_else(|e| e.into_inner()) = err.clone();
    up(out, gpu, err.as_ref());
}

impl Collector for Info {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let snap = self.gpus.snapshot();
        out.gauge(
            "gpu_nvml_up",
            "Whether NVML is initialised (0 on a node without an NVIDIA GPU or driver).",
        )
        .sample(&[], if snap.up { 1.0 } else { 0.0 });
        if !snap.up {
            if let Some(e) = &snap.error {
                out.gauge("gpu_nvml_up_reason", "Why gpu_nvml_up is 0.")
                    .sample(&[("reason", e.reason())], 1.0);
            }
            return Ok(());
        }
        out.gauge("gpu_nvml_info", "NVML, driver and CUDA versions.")
            .sample(
                &[
                    ("driver_version", &snap.driver_version),
                    ("nvml_version", &snap.nvml_version),
                    ("cuda_version", &snap.cuda_version),
                ],
                1.0,
            );
        out.gauge("gpu_devices", "Number of GPUs NVML reports.")
            .sample(&[], snap.gpus.len() as f64);
        for g in &snap.gpus {
            let index = g.index.to_string();
            let minor = g.minor_number.map(|m| m.to_string()).unwrap_or_default();
            out.gauge("gpu_info", "GPU identity; join on uuid.").sample(
                &[
                    ("uuid", &g.uuid),
                    ("index", &index),
                    ("name", &g.name),
                    ("pci_bus_id", &g.pci_bus_id),
                    ("driver_version", &snap.driver_version),
                    ("cuda_version", &snap.cuda_version),
                    ("serial", &g.serial),
                    ("vbios_version", &g.vbios_version),
                    ("minor_number", &minor),
                ],
                1.0,
            );
            if g.dev.is_none() {
                up(
                    out,
                    g,
                    Some(g.enum_error.as_ref().unwrap_or(&GpuError::GpuLost)),
                );
            }
        }
        for g in &snap.gpus {
            if let Some(age) = g.dev.as_ref().and_then(|d| d.age()) {
                out.gauge(
                    "gpu_cached_values_age_seconds",
                    "Age of the GPU's values read in the background (energy, ECC/MIG mode, PCIe replays, BAR1, fans, NVLink, MIG devices, GPM).",
                )
                .sample(&g.labels(), age.as_secs_f64());
            }
        }
        let (set, outcomes) = self.gpus.read_each(ctx, "info", &self.probe);
        out.extend(set);
        for (g, o) in &outcomes {
            // A probe that returned has reported gpu_up itself.
            let err = match o {
                ReadOutcome::Failed("panic") => GpuError::Other("panic".into()),
                ReadOutcome::Done | ReadOutcome::Failed(_) => continue,
                ReadOutcome::TimedOut | ReadOutcome::Busy => GpuError::Timeout,
            };
            *g.last_probe.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
            up(out, g, Some(&err));
        }
        Ok(())
    }
}
