//! A scripted stand-in for NVML, for tests and for benchmarking without a GPU.
//!
//! A [`FakeWorld`] holds what the "driver" reports: the GPUs with every value, which fields
//! fail and how ([`FakeGpu::errors`]), GPUs that hang ([`FakeGpu::hang`]) or fell off the
//! bus ([`FakeGpu::lost`]), how many initialisations fail first, and XID events to deliver.
//! Tests change the world while the exporter runs (a GPU is lost, the driver appears).
//! It is reachable from the binary only through a hidden `--gpu.fake-devices` flag used by
//! the benchmark; no real NVIDIA GPU is ever faked in production.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::*;

/// One fake GPU: its values and its scripted failures.
#[derive(Debug, Clone)]
pub struct FakeGpu {
    /// UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// Serial.
    pub serial: String,
    /// Minor number.
    pub minor: u32,
    /// P-state.
    pub pstate: u32,
    /// Utilisation.
    pub utilization: Utilization,
    /// Encoder / decoder utilisation.
    pub encoder: u32,
    /// Decoder utilisation.
    pub decoder: u32,
    /// Frame buffer.
    pub memory: MemoryInfo,
    /// BAR1.
    pub bar1: MemoryInfo,
    /// Core temperature.
    pub temperature: u32,
    /// HBM temperature.
    pub memory_temperature: u32,
    /// Fan speeds.
    pub fans: Vec<u32>,
    /// mW.
    pub power_usage: u32,
    /// mW.
    pub power_limit: u32,
    /// mJ.
    pub energy: u64,
    /// MHz: graphics, sm, memory, video.
    pub clocks: [u32; 4],
    /// MHz maxima.
    pub max_clocks: [u32; 4],
    /// Active clock event reasons.
    pub throttle: u64,
    /// ECC on.
    pub ecc_enabled: bool,
    /// ECC counters: volatile corrected, volatile uncorrected, aggregate corrected,
    /// aggregate uncorrected.
    pub ecc: [u64; 4],
    /// Retired pages (multiple single-bit, double-bit) and pending.
    pub retired: (u32, u32, bool),
    /// Row remapping.
    pub remapped: RemappedRows,
    /// PCIe replays.
    pub pcie_replays: u32,
    /// PCIe KB/s tx, rx.
    pub pcie_throughput: (u32, u32),
    /// PCIe link.
    pub pcie_link: PcieLink,
    /// NVLink links: (active, [replay, recovery, crc_flit, crc_data]).
    pub nvlinks: Vec<(bool, [u64; 4])>,
    /// Compute processes.
    pub processes: Vec<Process>,
    /// MIG mode.
    pub mig_enabled: bool,
    /// MIG devices.
    pub mig: Vec<MigDevice>,
    /// Per-method scripted errors, keyed by the [`Device`] method name.
    pub errors: HashMap<&'static str, GpuError>,
    /// Every call sleeps this long first (a hung GPU).
    pub hang: Option<Duration>,
    /// Every call fails with `GpuLost` (fell off the bus).
    pub lost: bool,
    /// Every call fails with `ResetRequired`.
    pub reset_required: bool,
}

impl FakeGpu {
    /// A plausible H100 with index `i`, every field set.
    pub fn h100(i: u32) -> Self {
        let gib = 1u64 << 30;
        FakeGpu {
            uuid: format!("GPU-{i:08x}-1111-2222-3333-444455556666"),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_bus_id: format!("00000000:{:02X}:00.0", 0x18 + i * 0x10),
            serial: format!("165412345{i:04}"),
            minor: i,
            pstate: 0,
            utilization: Utilization {
                gpu: 87,
                memory: 41,
            },
            encoder: 0,
            decoder: 3,
            memory: MemoryInfo {
                total: 80 * gib,
                used: 30 * gib,
                free: 50 * gib,
            },
            bar1: MemoryInfo {
                total: 128 * gib,
                used: 2 * gib,
                free: 126 * gib,
            },
            temperature: 54,
            memory_temperature: 61,
            fans: vec![],
            power_usage: 412_500,
            power_limit: 700_000,
            energy: 123_456_789,
            clocks: [1755, 1755, 2619, 1590],
            max_clocks: [1980, 1980, 2619, 1755],
            throttle: 0x4,
            ecc_enabled: true,
            ecc: [12, 0, 340, 1],
            retired: (0, 0, false),
            remapped: RemappedRows {
                correctable: 0,
                uncorrectable: 1,
                pending: false,
                failure: false,
            },
            pcie_replays: 2,
            pcie_throughput: (1500, 2500),
            pcie_link: PcieLink {
                generation: 5,
                width: 16,
                max_generation: 5,
                max_width: 16,
            },
            nvlinks: vec![
                (true, [0, 0, 1, 0]),
                (true, [0, 0, 0, 0]),
                (false, [3, 1, 0, 0]),
            ],
            processes: vec![Process {
                pid: 4242,
                used_memory: Some(30 * gib - 512 * (1 << 20)),
            }],
            mig_enabled: false,
            mig: vec![],
            errors: HashMap::new(),
            hang: None,
            lost: false,
            reset_required: false,
        }
    }

    /// Turns MIG on with two `3g.40gb` instances.
    pub fn with_mig(mut self) -> Self {
        let gib = 1u64 << 30;
        self.mig_enabled = true;
        self.mig = (0..2)
            .map(|k| MigDevice {
                uuid: format!("MIG-{k:08x}-aaaa-bbbb-cccc-{}", &self.uuid[4..16]),
                gpu_instance_id: 1 + k,
                compute_instance_id: 0,
                profile: "3g.40gb".into(),
                memory: Ok(MemoryInfo {
                    total: 40 * gib,
                    used: (k as u64 + 1) * gib,
                    free: 40 * gib - (k as u64 + 1) * gib,
                }),
                utilization: Err(GpuError::NotSupported),
            })
            .collect();
        self
    }
}

/// What the fake driver reports; shared with the test that scripts it.
#[derive(Debug, Clone)]
pub struct FakeWorld {
    /// GPUs.
    pub gpus: Vec<FakeGpu>,
    /// Initialisations that fail (with `init_error`) before one succeeds.
    pub init_failures: u32,
    /// The error those initialisations return.
    pub init_error: GpuError,
    /// Whether `device_count` fails (e.g. after a driver unload) with this error.
    pub count_error: Option<GpuError>,
    /// Driver version.
    pub driver_version: String,
    /// CUDA version code.
    pub cuda_version: i32,
    /// Whether the event set is supported.
    pub events_supported: bool,
    /// XID events waiting to be delivered.
    pub events: VecDeque<XidEvent>,
}

impl FakeWorld {
    /// `n` H100s, initialisation succeeds at once.
    pub fn with_gpus(n: u32) -> Self {
        FakeWorld {
            gpus: (0..n).map(FakeGpu::h100).collect(),
            init_failures: 0,
            init_error: GpuError::DriverNotLoaded,
            count_error: None,
            driver_version: "550.54.15".into(),
            cuda_version: 12040,
            events_supported: true,
            events: VecDeque::new(),
        }
    }
}

/// The fake [`Backend`]: every `init` consults the shared world.
#[derive(Clone)]
pub struct FakeBackend {
    /// The scripted world; lock it to change what the driver reports.
    pub world: Arc<Mutex<FakeWorld>>,
    /// Number of `init` calls so far.
    pub inits: Arc<AtomicU64>,
}

impl FakeBackend {
    /// A backend over `world`.
    pub fn new(world: FakeWorld) -> Self {
        FakeBackend {
            world: Arc::new(Mutex::new(world)),
            inits: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Runs `f` on the world.
    pub fn edit(&self, f: impl FnOnce(&mut FakeWorld)) {
        f(&mut self.world.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Backend for FakeBackend {
    fn init(&self) -> R<Arc<dyn Nvml>> {
        self.inits.fetch_add(1, Ordering::SeqCst);
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        if w.init_failures > 0 {
            w.init_failures -= 1;
            return Err(w.init_error.clone());
        }
        Ok(Arc::new(FakeNvml {
            world: self.world.clone(),
        }))
    }
}

struct FakeNvml {
    world: Arc<Mutex<FakeWorld>>,
}

impl FakeNvml {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeWorld> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Nvml for FakeNvml {
    fn driver_version(&self) -> R<String> {
        Ok(self.lock().driver_version.clone())
    }
    fn nvml_version(&self) -> R<String> {
        Ok(format!("12.{}", self.lock().driver_version))
    }
    fn cuda_driver_version(&self) -> R<i32> {
        Ok(self.lock().cuda_version)
    }
    fn device_count(&self) -> R<u32> {
        let w = self.lock();
        match &w.count_error {
            Some(e) => Err(e.clone()),
            None => Ok(w.gpus.len() as u32),
        }
    }
    fn device(&self, index: u32) -> R<Arc<dyn Device>> {
        let w = self.lock();
        let g = w.gpus.get(index as usize).ok_or(GpuError::NotFound)?;
        if g.lost {
            return Err(GpuError::GpuLost);
        }
        Ok(Arc::new(FakeDevice {
            world: self.world.clone(),
            index: index as usize,
        }))
    }
    fn watch_events(&self, stop: &AtomicBool, on_event: &mut dyn FnMut(XidEvent)) -> R<()> {
        if !self.lock().events_supported {
            return Err(GpuError::NotSupported);
        }
        while !stop.load(Ordering::Acquire) {
            let next = self.lock().events.pop_front();
            match next {
                Some(e) => on_event(e),
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        Ok(())
    }
}

struct FakeDevice {
    world: Arc<Mutex<FakeWorld>>,
    index: usize,
}

impl FakeDevice {
    /// Applies the GPU's scripted failures for `method`, then reads a value.
    fn get<T>(&self, method: &'static str, f: impl FnOnce(&FakeGpu) -> T) -> R<T> {
        let (hang, result) = {
            let w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            let Some(g) = w.gpus.get(self.index) else {
                return Err(GpuError::GpuLost);
            };
            let r = if g.lost {
                Err(GpuError::GpuLost)
            } else if g.reset_required {
                Err(GpuError::ResetRequired)
            } else if let Some(e) = g.errors.get(method) {
                Err(e.clone())
            } else {
                Ok(f(g))
            };
            (g.hang, r)
        };
        if let Some(d) = hang {
            std::thread::sleep(d);
        }
        result
    }
}

fn clock_idx(c: Clock) -> usize {
    match c {
        Clock::Graphics => 0,
        Clock::Sm => 1,
        Clock::Memory => 2,
        Clock::Video => 3,
    }
}

impl Device for FakeDevice {
    fn uuid(&self) -> R<String> {
        self.get("uuid", |g| g.uuid.clone())
    }
    fn name(&self) -> R<String> {
        self.get("name", |g| g.name.clone())
    }
    fn pci_bus_id(&self) -> R<String> {
        self.get("pci_bus_id", |g| g.pci_bus_id.clone())
    }
    fn serial(&self) -> R<String> {
        self.get("serial", |g| g.serial.clone())
    }
    fn vbios_version(&self) -> R<String> {
        self.get("vbios_version", |_| "96.00.89.00.01".to_string())
    }
    fn minor_number(&self) -> R<u32> {
        self.get("minor_number", |g| g.minor)
    }
    fn performance_state(&self) -> R<u32> {
        self.get("performance_state", |g| g.pstate)
    }
    fn utilization(&self) -> R<Utilization> {
        self.get("utilization", |g| g.utilization)
    }
    fn encoder_utilization(&self) -> R<u32> {
        self.get("encoder_utilization", |g| g.encoder)
    }
    fn decoder_utilization(&self) -> R<u32> {
        self.get("decoder_utilization", |g| g.decoder)
    }
    fn memory_info(&self) -> R<MemoryInfo> {
        self.get("memory_info", |g| g.memory)
    }
    fn bar1_memory_info(&self) -> R<MemoryInfo> {
        self.get("bar1_memory_info", |g| g.bar1)
    }
    fn temperature(&self) -> R<u32> {
        self.get("temperature", |g| g.temperature)
    }
    fn memory_temperature(&self) -> R<u32> {
        self.get("memory_temperature", |g| g.memory_temperature)
    }
    fn temperature_threshold(&self, t: TempThreshold) -> R<u32> {
        self.get("temperature_threshold", |_| match t {
            TempThreshold::Slowdown => 87,
            TempThreshold::Shutdown => 92,
        })
    }
    fn fan_speeds(&self) -> R<Vec<u32>> {
        self.get("fan_speeds", |g| g.fans.clone())
    }
    fn power_usage(&self) -> R<u32> {
        self.get("power_usage", |g| g.power_usage)
    }
    fn power_limit(&self) -> R<u32> {
        self.get("power_limit", |g| g.power_limit)
    }
    fn total_energy(&self) -> R<u64> {
        self.get("total_energy", |g| g.energy)
    }
    fn clock(&self, c: Clock) -> R<u32> {
        self.get("clock", |g| g.clocks[clock_idx(c)])
    }
    fn max_clock(&self, c: Clock) -> R<u32> {
        self.get("max_clock", |g| g.max_clocks[clock_idx(c)])
    }
    fn throttle_reasons(&self) -> R<u64> {
        self.get("throttle_reasons", |g| g.throttle)
    }
    fn supported_throttle_reasons(&self) -> R<u64> {
        self.get("supported_throttle_reasons", |_| 0x1ff)
    }
    fn ecc_enabled(&self) -> R<bool> {
        self.get("ecc_enabled", |g| g.ecc_enabled)
    }
    fn ecc_errors(&self, t: EccType, c: EccCounter) -> R<u64> {
        let i = match (c, t) {
            (EccCounter::Volatile, EccType::Corrected) => 0,
            (EccCounter::Volatile, EccType::Uncorrected) => 1,
            (EccCounter::Aggregate, EccType::Corrected) => 2,
            (EccCounter::Aggregate, EccType::Uncorrected) => 3,
        };
        self.get("ecc_errors", |g| g.ecc[i])
    }
    fn retired_pages(&self, c: RetirementCause) -> R<u32> {
        self.get("retired_pages", |g| match c {
            RetirementCause::MultipleSingleBit => g.retired.0,
            RetirementCause::DoubleBit => g.retired.1,
        })
    }
    fn retired_pages_pending(&self) -> R<bool> {
        self.get("retired_pages_pending", |g| g.retired.2)
    }
    fn remapped_rows(&self) -> R<RemappedRows> {
        self.get("remapped_rows", |g| g.remapped)
    }
    fn pcie_replay_counter(&self) -> R<u32> {
        self.get("pcie_replay_counter", |g| g.pcie_replays)
    }
    fn pcie_throughput(&self, d: PcieDirection) -> R<u32> {
        self.get("pcie_throughput", |g| match d {
            PcieDirection::Tx => g.pcie_throughput.0,
            PcieDirection::Rx => g.pcie_throughput.1,
        })
    }
    fn pcie_link(&self) -> R<PcieLink> {
        self.get("pcie_link", |g| g.pcie_link)
    }
    fn nvlink_active(&self, link: u32) -> R<bool> {
        self.get("nvlink_active", |g| {
            g.nvlinks.get(link as usize).map(|l| l.0)
        })?
        .ok_or(GpuError::NotFound)
    }
    fn nvlink_errors(&self, link: u32, e: NvLinkError) -> R<u64> {
        let i = NvLinkError::ALL.iter().position(|k| *k == e).unwrap_or(0);
        self.get("nvlink_errors", |g| {
            g.nvlinks.get(link as usize).map(|l| l.1[i])
        })?
        .ok_or(GpuError::NotFound)
    }
    fn compute_processes(&self) -> R<Vec<Process>> {
        self.get("compute_processes", |g| g.processes.clone())
    }
    fn mig_enabled(&self) -> R<bool> {
        self.get("mig_enabled", |g| g.mig_enabled)
    }
    fn mig_devices(&self) -> R<Vec<MigDevice>> {
        self.get("mig_devices", |g| {
            if g.mig_enabled {
                g.mig.clone()
            } else {
                Vec::new()
            }
        })
    }
}
