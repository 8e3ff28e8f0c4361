//! # hpcmon-gpu-exporter
//!
//! A Prometheus exporter for NVIDIA GPUs that talks to NVML in process (no `nvidia-smi`,
//! no DCGM): utilisation, memory, temperature, power and energy, clocks, throttle reasons,
//! ECC, retired/remapped rows, PCIe, NVLink, processes and MIG devices per GPU (label
//! `uuid`), XID errors from an NVML event thread, GPUs that fell off the bus reported as
//! `gpu_up 0`, and which Slurm job uses which GPU (`gpu_slurm_job_info`).
//!
//! - [`backend`]: the narrow trait over NVML; [`nvml`] implements it with `nvml-wrapper`
//!   (library loaded at run time), [`fake`] is the scripted fake the tests use.
//! - [`gpus`]: NVML's life cycle (init with backoff, re-init after a driver reload), the
//!   per-device read threads, the XID store.
//! - [`collector`]: one file per collector, named after its metrics.

pub mod backend;
pub mod collector;
pub mod fake;
pub mod gpus;
pub mod nvml;

#[cfg(test)]
mod tests;

use std::sync::Arc;

/// Who this exporter is.
pub const META: hpcmon_kit::Meta = hpcmon_kit::Meta {
    namespace: "gpu",
    binary: "hpcmon-gpu-exporter",
    description: "Prometheus exporter for NVIDIA GPUs (NVML in process), with XID events, MIG and Slurm job attribution.",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: ":9835",
};

/// Builds the scraper for the enabled collectors over `gpus`.
pub fn scraper(
    enabled: &[&'static str],
    cfg: &collector::Config,
    gpus: &Arc<gpus::GpuSet>,
) -> anyhow::Result<hpcmon_kit::Scraper> {
    let mut s = hpcmon_kit::Scraper::new(META.namespace);
    for name in enabled {
        s.add(*name, collector::build(name, cfg, gpus)?);
    }
    Ok(s)
}

/// The backend the flags ask for: real NVML, or (hidden, for benchmarks) scripted fakes.
pub fn backend(cfg: &collector::Config) -> Arc<dyn backend::Backend> {
    match cfg.fake_devices {
        Some(n) => Arc::new(fake::FakeBackend::new(fake::FakeWorld::with_gpus(n))),
        None => Arc::new(nvml::RealBackend),
    }
}
