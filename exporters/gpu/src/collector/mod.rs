//! The collectors: one file per collector, named after its metrics.
//!
//! Every per-GPU family carries the label `uuid`; join on `gpu_info` for the index, name,
//! PCI bus id, driver and serial. Values are in base units: ratios (0–1), bytes, celsius,
//! watts, joules, hertz.
//!
//! | collector | file | families |
//! |---|---|---|
//! | `info` | [`info`] | `gpu_nvml_up`, `gpu_nvml_up_reason`, `gpu_nvml_info`, `gpu_devices`, `gpu_info`, `gpu_up`, `gpu_up_reason` |
//! | `utilization` | [`utilization`] | `gpu_utilization_ratio`, `gpu_memory_utilization_ratio`, `gpu_encoder_utilization_ratio`, `gpu_decoder_utilization_ratio` |
//! | `memory` | [`memory`] | `gpu_memory_{total,used,free,reserved}_bytes`, `gpu_bar1_memory_{total,used,free}_bytes` |
//! | `temperature` | [`temperature`] | `gpu_temperature_celsius`, `gpu_memory_temperature_celsius`, `gpu_temperature_{slowdown,shutdown}_threshold_celsius` |
//! | `fan` | [`fan`] | `gpu_fan_speed_ratio` |
//! | `power` | [`power`] | `gpu_power_usage_watts`, `gpu_power_limit_watts`, `gpu_energy_joules_total` |
//! | `clocks` | [`clocks`] | `gpu_clock_hertz`, `gpu_clock_max_hertz`, `gpu_performance_state` |
//! | `throttle` | [`throttle`] | `gpu_throttle_reason_active` |
//! | `ecc` | [`ecc`] | `gpu_ecc_mode_enabled`, `gpu_ecc_errors_total`, `gpu_retired_pages`, `gpu_retired_pages_pending`, `gpu_remapped_rows`, `gpu_remapped_rows_pending`, `gpu_remapped_rows_failure` |
//! | `pcie` | [`pcie`] | `gpu_pcie_replays_total`, `gpu_pcie_link_{generation,width}`, `gpu_pcie_link_max_{generation,width}`, `gpu_pcie_throughput_bytes_per_second` (with `--gpu.pcie-throughput`) |
//! | `nvlink` | [`nvlink`] | `gpu_nvlink_up`, `gpu_nvlink_errors_total` |
//! | `processes` | [`processes`] | `gpu_processes`, `gpu_processes_memory_used_bytes`, `gpu_process_memory_bytes`, `gpu_process_series_dropped` |
//! | `mig` | [`mig`] | `gpu_mig_mode_enabled`, `gpu_mig_info`, `gpu_mig_memory_{total,used,free}_bytes`, `gpu_mig_utilization_ratio` |
//! | `gpm` (off by default) | [`gpm`] | `gpu_gpm_*_ratio`, `gpu_mig_gpm_*_ratio` |
//! | `xid` | [`xid`] | `gpu_xid_errors_total`, `gpu_last_xid`, `gpu_last_xid_timestamp_seconds`, `gpu_xid_event_watch_up`, `gpu_xid_event_watched`, `gpu_xid_event_watched_reason` |
//! | `slurm_job` | [`slurm_job`] | `gpu_slurm_job_info`, `gpu_slurm_job_memory_used_bytes` |
//!
//! Every per-device collector also reports `gpu_field_unavailable{uuid,collector,field,reason}`
//! for the fields NVML refused (e.g. `no_permission` when not running as root), and fails
//! (`gpu_scrape_collector_success 0`) when no GPU answered or every field of every GPU
//! failed.
//!
//! To add a collector: write `NAME.rs` with a `pub fn new(&Config) -> anyhow::Result<Arc<dyn
//! Collector>>` (and, if it has flags, a `#[group(skip)] pub struct Flags` deriving
//! `clap::Args`, read with `cfg.flags::<Flags>()`), then add `pub mod NAME;` and one row to
//! [`REGISTRY`]. `--collector.NAME`, `--no-collector.NAME`, the collector's own flags,
//! `collect[]` and the landing page follow from the row.

use std::sync::Arc;
use std::time::Duration;

use hpcmon_kit::registry::{flags, CollectorFlags, Registration};
use hpcmon_kit::{Collector, Context, MetricSet};

use crate::gpus::{Gpu, GpuSet, ReadFn, ReadOutcome};

pub mod clocks;
pub mod ecc;
pub mod fan;
pub mod gpm;
pub mod info;
pub mod memory;
pub mod mig;
pub mod nvlink;
pub mod pcie;
pub mod power;
pub mod processes;
pub mod slurm_job;
pub mod temperature;
pub mod throttle;
pub mod utilization;
pub mod xid;

const ON: bool = true;
const OFF: bool = false;

/// Every collector: name, default, help line, flags and constructor. One row each.
pub const REGISTRY: &[Registration<Config>] = &[
    Registration::new(
        "info",
        ON,
        "NVML state, GPU identity (gpu_info) and gpu_up",
        info::new,
    ),
    Registration::new(
        "utilization",
        ON,
        "GPU, memory, encoder and decoder utilisation",
        utilization::new,
    ),
    Registration::new("memory", ON, "frame buffer and BAR1 memory", memory::new),
    Registration::new(
        "temperature",
        ON,
        "GPU and memory temperature and thresholds",
        temperature::new,
    ),
    Registration::new("fan", ON, "fan speed", fan::new),
    Registration::new("power", ON, "power draw, limit and energy", power::new),
    Registration::new(
        "clocks",
        ON,
        "SM, memory, graphics and video clocks, performance state",
        clocks::new,
    ),
    Registration::new(
        "throttle",
        ON,
        "clock event (throttle) reasons",
        throttle::new,
    ),
    Registration::new(
        "ecc",
        ON,
        "ECC error counters, retired pages, remapped rows",
        ecc::new,
    ),
    Registration::new(
        "pcie",
        ON,
        "PCIe link, replay counter (and throughput with --gpu.pcie-throughput)",
        pcie::new,
    )
    .flags(flags::<pcie::Flags>()),
    Registration::new("nvlink", ON, "NVLink state and error counters", nvlink::new),
    Registration::new(
        "processes",
        ON,
        "running compute processes and their memory, per GPU and per process",
        processes::new,
    )
    .flags(flags::<processes::Flags>()),
    Registration::new("mig", ON, "MIG mode and MIG devices", mig::new),
    Registration::new(
        "gpm",
        OFF,
        "GPM activity ratios (SM, tensor, DRAM, ...) of GPUs and MIG instances (Hopper and newer)",
        gpm::new,
    ),
    Registration::new("xid", ON, "XID errors from the NVML event thread", xid::new),
    Registration::new(
        "slurm_job",
        ON,
        "which Slurm job uses which GPU (processes' cgroups and --gpu.job-map-dir)",
        slurm_job::new,
    )
    .flags(flags::<slurm_job::Flags>()),
];

/// The exporter's own flags (the collectors' are in their files, e.g. [`pcie::Flags`]).
#[derive(Debug, Clone, clap::Args)]
pub struct GpuFlags {
    /// How often the slow NVML values (energy, ECC and MIG mode, PCIe replays, BAR1, fans,
    /// NVLink, MIG devices, PCIe throughput, GPM) are read in the background; scrapes serve
    /// the last reading (at most three intervals old).
    #[arg(long = "gpu.refresh-interval", value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub refresh_interval: Duration,

    /// Test and benchmark only: serve N scripted fake H100s instead of loading NVML.
    #[arg(long = "gpu.fake-devices", value_name = "N", hide = true)]
    pub fake_devices: Option<u32>,

    /// Test and benchmark only: the fake GPUs take as long per NVML call as a real H200 did.
    #[arg(long = "gpu.fake-latency", hide = true)]
    pub fake_latency: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(10) {
        return Err("at least 10ms".into());
    }
    Ok(d)
}

impl Default for GpuFlags {
    fn default() -> Self {
        GpuFlags {
            refresh_interval: Duration::from_secs(5),
            fake_devices: None,
            fake_latency: false,
        }
    }
}

impl GpuFlags {
    /// What the GPUs read in the background, given the collectors' flags (and which
    /// collectors are enabled).
    pub fn cache_options(&self, collectors: &CollectorFlags) -> crate::cache::CacheOptions {
        crate::cache::CacheOptions {
            refresh_interval: self.refresh_interval,
            pcie_throughput: collectors.is_enabled("pcie")
                && collectors
                    .get::<pcie::Flags>()
                    .is_ok_and(|f| f.pcie_throughput),
            gpm: collectors.is_enabled("gpm"),
        }
    }
}

/// What every collector is built from: the GPUs (one set, shared by all collectors) and
/// each collector's own flags.
#[derive(Clone)]
pub struct Config {
    /// The GPUs.
    pub gpus: Arc<GpuSet>,
    /// Every registered collector's flags, by type (see [`Config::flags`]).
    pub collector_flags: CollectorFlags,
}

impl Config {
    /// Settings over `gpus` with every collector's default flags (tests replace some with
    /// [`Config::with`]).
    pub fn new(gpus: Arc<GpuSet>) -> Self {
        let mut collector_flags = CollectorFlags::default();
        collector_flags.set(pcie::Flags::default());
        collector_flags.set(processes::Flags::default());
        collector_flags.set(slurm_job::Flags::default());
        Self {
            gpus,
            collector_flags,
        }
    }

    /// The same settings with the flags `f` of one collector.
    pub fn with<F: std::any::Any + Send + Sync>(mut self, f: F) -> Self {
        self.collector_flags.set(f);
        self
    }

    /// The parsed flags of type `F` (a collector's `Flags`, registered in its row).
    pub fn flags<F: std::any::Any>(&self) -> anyhow::Result<&F> {
        self.collector_flags.get::<F>()
    }
}

/// Builds the registered collector called `name` (tests and benchmarks; the binary builds
/// the enabled ones through the kit).
pub fn build(name: &str, cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    hpcmon_kit::registry::build_named(REGISTRY, name, cfg)
}

/// A [`PerDevice`] collector named `name` running `read` for each GPU of `cfg`.
pub fn per_device(
    cfg: &Config,
    name: &'static str,
    read: fn(&Gpu, &mut MetricSet),
) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(PerDevice::shared(cfg.gpus.clone(), name, read))
}

/// A collector that reads each GPU with one function, on per-device threads.
pub struct PerDevice {
    gpus: Arc<GpuSet>,
    name: &'static str,
    read: ReadFn,
}

impl PerDevice {
    /// A collector named `name` running `read` for each GPU.
    pub fn shared(
        gpus: Arc<GpuSet>,
        name: &'static str,
        read: impl Fn(&Gpu, &mut MetricSet) + Send + Sync + 'static,
    ) -> Arc<dyn Collector> {
        Arc::new(PerDevice {
            gpus,
            name,
            read: Arc::new(read),
        })
    }
}

impl Collector for PerDevice {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let (set, outcomes) = self.gpus.read_each(ctx, self.name, &self.read);
        out.extend(set);
        check_outcomes(&outcomes)
    }
}

/// Fails the collector only when no GPU gave anything: every read timed out, was still
/// busy, or had every field fail (some GPUs read is a partial success: the others are
/// reported by `gpu_up` and `gpu_field_unavailable`).
pub fn check_outcomes(outcomes: &[(Arc<Gpu>, ReadOutcome)]) -> anyhow::Result<()> {
    if !outcomes.is_empty() && outcomes.iter().all(|(_, o)| *o != ReadOutcome::Done) {
        let why: std::collections::BTreeSet<&str> = outcomes
            .iter()
            .map(|(_, o)| match o {
                ReadOutcome::Done => "done",
                ReadOutcome::Failed(r) => r,
                ReadOutcome::TimedOut => "timeout",
                ReadOutcome::Busy => "previous read still running",
            })
            .collect();
        anyhow::bail!(
            "no GPU answered ({} tried: {})",
            outcomes.len(),
            why.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// A ratio from a percentage.
pub fn ratio(percent: u32) -> f64 {
    f64::from(percent) / 100.0
}

#[cfg(test)]
pub mod testutil;
