//! # hpcmon-gpu-exporter
//!
//! A Prometheus exporter for NVIDIA GPUs that talks to NVML in process (no `nvidia-smi`,
//! no DCGM): utilisation, memory, temperature, power and energy, clocks, throttle reasons,
//! ECC, retired/remapped rows, PCIe, NVLink, processes (per GPU and per process) and MIG
//! devices per GPU (label `uuid`), GPM activity ratios for GPUs and MIG instances, XID
//! errors with their description from an NVML event thread, GPUs that fell off the bus
//! reported as `gpu_up 0`, fields NVML refuses (e.g. to a non-root user) as
//! `gpu_field_unavailable`, and which Slurm job uses which GPU and how much of its memory
//! (`gpu_slurm_job_info`, `gpu_slurm_job_memory_used_bytes`).
//!
//! - [`backend`]: the narrow trait over NVML; [`nvml`] implements it with `nvml-wrapper`
//!   (library loaded at run time), [`fake`] is the scripted fake the tests use.
//! - [`cache`]: what is remembered per GPU between scrapes (static values, `NotSupported`
//!   answers, slow values refreshed in the background), so a scrape pays only fast calls.
//! - [`gpus`]: NVML's life cycle (init with backoff, re-init after a driver reload), the
//!   per-device read threads.
//! - [`events`]: the XID event thread, its store and the XID descriptions.
//! - [`collector`]: one file per collector, named after its metrics.

pub mod backend;
pub mod cache;
pub mod collector;
pub mod events;
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
        Some(n) => {
            let mut w = fake::FakeWorld::with_gpus(n);
            if cfg.fake_latency {
                w.gpus = w
                    .gpus
                    .into_iter()
                    .map(|g| g.with_measured_latency())
                    .collect();
            }
            Arc::new(fake::FakeBackend::new(w))
        }
        None => Arc::new(nvml::RealBackend),
    }
}

/// The GPU set's options for these flags and enabled collectors.
pub fn options(cfg: &collector::Config, enabled: &[&str]) -> gpus::Options {
    gpus::Options {
        cache: cfg.cache_options(enabled),
        ..gpus::Options::default()
    }
}
