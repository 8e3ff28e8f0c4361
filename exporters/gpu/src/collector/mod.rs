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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hpcmon_kit::{Collector, CollectorSpec, Context, MetricSet};

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

/// Every collector, for `--collector.NAME` / `--no-collector.NAME`.
pub const SPECS: &[CollectorSpec] = &[
    spec("info", "NVML state, GPU identity (gpu_info) and gpu_up"),
    spec(
        "utilization",
        "GPU, memory, encoder and decoder utilisation",
    ),
    spec("memory", "frame buffer and BAR1 memory"),
    spec("temperature", "GPU and memory temperature and thresholds"),
    spec("fan", "fan speed"),
    spec("power", "power draw, limit and energy"),
    spec(
        "clocks",
        "SM, memory, graphics and video clocks, performance state",
    ),
    spec("throttle", "clock event (throttle) reasons"),
    spec("ecc", "ECC error counters, retired pages, remapped rows"),
    spec(
        "pcie",
        "PCIe link, replay counter (and throughput with --gpu.pcie-throughput)",
    ),
    spec("nvlink", "NVLink state and error counters"),
    spec(
        "processes",
        "running compute processes and their memory, per GPU and per process",
    ),
    spec("mig", "MIG mode and MIG devices"),
    CollectorSpec {
        name: "gpm",
        default_enabled: false,
        help: "GPM activity ratios (SM, tensor, DRAM, ...) of GPUs and MIG instances (Hopper and newer)",
    },
    spec("xid", "XID errors from the NVML event thread"),
    spec(
        "slurm_job",
        "which Slurm job uses which GPU (processes' cgroups and --gpu.job-map-dir)",
    ),
];

const fn spec(name: &'static str, help: &'static str) -> CollectorSpec {
    CollectorSpec {
        name,
        default_enabled: true,
        help,
    }
}

/// The collectors' flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory of GPU → job mapping files written by Slurm prolog/epilog (one file per GPU
    /// index, UUID or MIG UUID naming the job; dcgm-exporter's and jobstats' layouts).
    #[arg(long = "gpu.job-map-dir", value_name = "DIR")]
    pub job_map_dir: Option<PathBuf>,

    /// procfs mount point (for the cgroups of processes running on GPUs).
    #[arg(long = "path.procfs", value_name = "DIR", default_value = "/proc")]
    pub procfs: PathBuf,

    /// Also report PCIe throughput (NVML samples it for 20 ms per direction per GPU; read in
    /// the background like the other slow values).
    #[arg(long = "gpu.pcie-throughput")]
    pub pcie_throughput: bool,

    /// How often the slow NVML values (energy, ECC and MIG mode, PCIe replays, BAR1, fans,
    /// NVLink, MIG devices, PCIe throughput, GPM) are read in the background; scrapes serve
    /// the last reading (at most three intervals old).
    #[arg(long = "gpu.refresh-interval", value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub refresh_interval: Duration,

    /// Most processes per GPU exported in `gpu_process_memory_bytes` (those using the most
    /// memory); the rest are counted in `gpu_process_series_dropped`.
    #[arg(
        long = "gpu.process-series-limit",
        value_name = "N",
        default_value_t = 64
    )]
    pub process_series_limit: usize,

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

impl Default for Config {
    fn default() -> Self {
        Config {
            job_map_dir: None,
            procfs: PathBuf::from("/proc"),
            pcie_throughput: false,
            refresh_interval: Duration::from_secs(5),
            process_series_limit: 64,
            fake_devices: None,
            fake_latency: false,
        }
    }
}

impl Config {
    /// What the GPUs read in the background, given the enabled collectors.
    pub fn cache_options(&self, enabled: &[&str]) -> crate::cache::CacheOptions {
        crate::cache::CacheOptions {
            refresh_interval: self.refresh_interval,
            pcie_throughput: self.pcie_throughput && enabled.contains(&"pcie"),
            gpm: enabled.contains(&"gpm"),
        }
    }
}

/// The collector called `name`.
pub fn build(name: &str, cfg: &Config, gpus: &Arc<GpuSet>) -> anyhow::Result<Arc<dyn Collector>> {
    let g = gpus.clone();
    Ok(match name {
        "info" => Arc::new(info::Info::new(g)),
        "utilization" => per_device(g, "utilization", utilization::read),
        "memory" => per_device(g, "memory", memory::read),
        "temperature" => per_device(g, "temperature", temperature::read),
        "fan" => per_device(g, "fan", fan::read),
        "power" => per_device(g, "power", power::read),
        "clocks" => per_device(g, "clocks", clocks::read),
        "throttle" => per_device(g, "throttle", throttle::read),
        "ecc" => per_device(g, "ecc", ecc::read),
        "pcie" => {
            let throughput = cfg.pcie_throughput;
            PerDevice::shared(g, "pcie", move |gpu, out| pcie::read(gpu, out, throughput))
        }
        "nvlink" => per_device(g, "nvlink", nvlink::read),
        "processes" => {
            let limit = cfg.process_series_limit;
            PerDevice::shared(g, "processes", move |gpu, out| {
                processes::read(gpu, out, limit)
            })
        }
        "mig" => per_device(g, "mig", mig::read),
        "gpm" => per_device(g, "gpm", gpm::read),
        "xid" => Arc::new(xid::Xid::new(g)),
        "slurm_job" => Arc::new(slurm_job::SlurmJob::new(g, cfg)),
        other => anyhow::bail!("unknown collector {other}"),
    })
}

fn per_device(
    gpus: Arc<GpuSet>,
    name: &'static str,
    read: fn(&Gpu, &mut MetricSet),
) -> Arc<dyn Collector> {
    PerDevice::shared(gpus, name, read)
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
