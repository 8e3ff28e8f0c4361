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
//! - [`backend`](mod@backend): the narrow trait over NVML; [`nvml`] implements it with `nvml-wrapper`
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

/// The exporter: who it is and its collectors.
pub const EXPORTER: hpcmon_kit::registry::Exporter<collector::Config> =
    hpcmon_kit::registry::Exporter {
        meta: META,
        registry: collector::REGISTRY,
        ignored_flags: &[],
        ignored_collectors: &[],
    };

/// The backend the flags ask for: real NVML, or (hidden, for benchmarks) scripted fakes.
pub fn backend(flags: &collector::GpuFlags) -> Arc<dyn backend::Backend> {
    match flags.fake_devices {
        Some(n) => {
            let mut w = fake::FakeWorld::with_gpus(n);
            if flags.fake_latency {
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

/// The GPU set's options for these flags and the collectors' flags (which say which
/// collectors are enabled).
pub fn options(
    flags: &collector::GpuFlags,
    collectors: &hpcmon_kit::registry::CollectorFlags,
) -> gpus::Options {
    gpus::Options {
        cache: flags.cache_options(collectors),
        ..gpus::Options::default()
    }
}
