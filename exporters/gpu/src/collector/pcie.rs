//! `pcie` collector: PCIe link generation and width (current and maximum), the replay
//! counter, and with `--gpu.pcie-throughput` the throughput in bytes per second (NVML
//! samples it for 20 ms per direction, so it is off by default, and read in the background
//! like the other slow values).

use hpcmon_kit::MetricSet;

use crate::backend::{Device as _, PcieDirection};
use crate::gpus::Gpu;

/// Flags of the `pcie` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Also report PCIe throughput (NVML samples it for 20 ms per direction per GPU; read in
    /// the background like the other slow values).
    #[arg(long = "gpu.pcie-throughput", id = "gpu.pcie-throughput")]
    pub pcie_throughput: bool,
}

/// The `pcie` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    let throughput = cfg.flags::<Flags>()?.pcie_throughput;
    Ok(super::PerDevice::shared(
        cfg.gpus.clone(),
        "pcie",
        move |gpu, out| read(gpu, out, throughput),
    ))
}

/// Reads one GPU.
pub fn read(gpu: &Gpu, out: &mut MetricSet, throughput: bool) {
    let Some(dev) = &gpu.dev else { return };
    let l = gpu.labels();
    if let Some(v) = gpu.ok(dev.pcie_replay_counter()) {
        out.counter("gpu_pcie_replays_total", "PCIe replay counter.")
            .sample(&l, f64::from(v));
    }
    if let Some(k) = gpu.ok(dev.pcie_link()) {
        out.gauge("gpu_pcie_link_generation", "Current PCIe link generation.")
            .sample(&l, f64::from(k.generation));
        out.gauge("gpu_pcie_link_width", "Current PCIe link width (lanes).")
            .sample(&l, f64::from(k.width));
    }
    if let Some(k) = gpu.ok(dev.pcie_link_max()) {
        out.gauge(
            "gpu_pcie_link_max_generation",
            "Maximum PCIe link generation.",
        )
        .sample(&l, f64::from(k.generation));
        out.gauge(
            "gpu_pcie_link_max_width",
            "Maximum PCIe link width (lanes).",
        )
        .sample(&l, f64::from(k.width));
    }
    if throughput {
        for (d, dl) in [(PcieDirection::Tx, "tx"), (PcieDirection::Rx, "rx")] {
            if let Some(kb) = gpu.ok(dev.pcie_throughput(d)) {
                out.gauge(
                    "gpu_pcie_throughput_bytes_per_second",
                    "PCIe throughput over a 20 ms sample (taken in the background), in bytes per second.",
                )
                .sample(
                    &[("uuid", &gpu.uuid), ("direction", dl)],
                    f64::from(kb) * 1024.0,
                );
            }
        }
    }
}
