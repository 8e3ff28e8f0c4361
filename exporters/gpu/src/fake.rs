//! A scripted stand-in for NVML, for tests and for benchmarking without a GPU.
//!
//! A [`FakeWorld`] holds what the "driver" reports: the GPUs with every value, which fields
//! fail and how ([`FakeGpu::errors`]), how long each call takes ([`FakeGpu::latency`]), GPUs
//! that hang ([`FakeGpu::hang`]) or fell off the bus ([`FakeGpu::lost`]), how many
//! initialisations fail first, and XID events to deliver. Tests change the world while the
//! exporter runs (a GPU is lost, the driver appears) and read back which calls were made, on
//! which thread ([`FakeWorld::calls`]).
//!
//! The defaults answer the way a real H100/H200 did (probed field by field with
//! `scripts/nvml_probe.py` on an H200, driver 580): no fans, retired pages `NotSupported`
//! (Hopper remaps rows instead), nine clock event reasons advertised, ECC on, reserved frame
//! buffer memory (`used + free < total`), no utilisation for a GPU in MIG mode or its MIG
//! devices, GPM supported. [`FakeGpu::h100`] is the SXM board with 18 NVLinks;
//! [`FakeGpu::h100_pcie`] has none (every link `NotSupported`, as on the H200 PCIe card).
//! It is reachable from the binary only through hidden `--gpu.fake-*` flags used by the
//! benchmark; no real NVIDIA GPU is ever faked in production.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Utilisation (`NotSupported` while MIG is on, like the real driver).
    pub utilization: Utilization,
    /// Encoder utilisation.
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
    /// Slowdown and shutdown thresholds.
    pub thresholds: (u32, u32),
    /// Fan speeds (none on passively cooled boards).
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
    /// Clock event reasons the GPU can report.
    pub supported_throttle: u64,
    /// ECC on.
    pub ecc_enabled: bool,
    /// ECC counters: volatile corrected, volatile uncorrected, aggregate corrected,
    /// aggregate uncorrected.
    pub ecc: [u64; 4],
    /// Retired pages (multiple single-bit, double-bit) and pending (pre-Ampere GPUs only;
    /// the H100 default answers `NotSupported` through [`errors`](Self::errors)).
    pub retired: (u32, u32, bool),
    /// Row remapping.
    pub remapped: RemappedRows,
    /// PCIe replays.
    pub pcie_replays: u32,
    /// PCIe KB/s tx, rx.
    pub pcie_throughput: (u32, u32),
    /// Current PCIe link.
    pub pcie_link: PcieLink,
    /// Maximum PCIe link.
    pub pcie_link_max: PcieLink,
    /// NVLink links: (active, [replay, recovery, crc_flit, crc_data]). Empty: the GPU has no
    /// NVLink and every link answers `NotSupported`; otherwise links past the end answer
    /// `NotFound`.
    pub nvlinks: Vec<(bool, [u64; 4])>,
    /// Compute processes.
    pub processes: Vec<Process>,
    /// MIG mode.
    pub mig_enabled: bool,
    /// MIG devices.
    pub mig: Vec<MigDevice>,
    /// GPM metrics of the whole GPU in percent (`None`: GPM not supported).
    pub gpm: Option<Vec<(GpmMetric, f64)>>,
    /// GPM metrics per MIG GPU instance id, in percent.
    pub gpm_instances: BTreeMap<u32, Vec<(GpmMetric, f64)>>,
    /// Per-method scripted errors, keyed by the [`Device`] method name (and
    /// `register_events` for XID event registration).
    pub errors: HashMap<&'static str, GpuError>,
    /// Per-method latency: the call sleeps this long.
    pub latency: HashMap<&'static str, Duration>,
    /// Every call sleeps this long first (a hung GPU).
    pub hang: Option<Duration>,
    /// Every call fails with `GpuLost` (fell off the bus).
    pub lost: bool,
    /// Every call fails with `ResetRequired`.
    pub reset_required: bool,
}

/// GPM values of a busy H100.
fn gpm_values(scale: f64) -> Vec<(GpmMetric, f64)> {
    [
        (GpmMetric::Graphics, 92.0),
        (GpmMetric::Sm, 81.5),
        (GpmMetric::SmOccupancy, 40.0),
        (GpmMetric::Tensor, 55.0),
        (GpmMetric::Dram, 33.0),
        (GpmMetric::Fp64, 0.0),
        (GpmMetric::Fp32, 12.5),
        (GpmMetric::Fp16, 2.0),
    ]
    .into_iter()
    .map(|(m, v)| (m, v * scale))
    .collect()
}

impl FakeGpu {
    /// An H100 SXM (18 NVLinks) with index `i`, answering like the real one.
    pub fn h100(i: u32) -> Self {
        let gib = 1u64 << 30;
        let mib = 1u64 << 20;
        let total = 80 * gib;
        let reserved = 542 * mib;
        let used = 30 * gib;
        let mut nvlinks = vec![(true, [0, 0, 0, 0]); 18];
        nvlinks[1].1 = [0, 0, 1, 0];
        let mut errors = HashMap::new();
        for m in ["retired_pages", "retired_pages_pending"] {
            errors.insert(m, GpuError::NotSupported);
        }
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
                total,
                used,
                free: total - used - reserved,
                reserved,
            },
            bar1: MemoryInfo {
                total: 128 * gib,
                used: 2 * gib,
                free: 126 * gib,
                reserved: 0,
            },
            temperature: 54,
            memory_temperature: 61,
            thresholds: (87, 92),
            fans: vec![],
            power_usage: 412_500,
            power_limit: 700_000,
            energy: 123_456_789,
            clocks: [1755, 1755, 2619, 1590],
            max_clocks: [1980, 1980, 2619, 1755],
            throttle: 0x4,
            supported_throttle: 0x1ff,
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
            },
            pcie_link_max: PcieLink {
                generation: 5,
                width: 16,
            },
            nvlinks,
            processes: vec![Process {
                pid: 4242,
                used_memory: Some(used - 512 * mib),
            }],
            mig_enabled: false,
            mig: vec![],
            gpm: Some(gpm_values(1.0)),
            gpm_instances: BTreeMap::new(),
            errors,
            latency: HashMap::new(),
            hang: None,
            lost: false,
            reset_required: false,
        }
    }

    /// An H100 PCIe board: no NVLink (every link `NotSupported`).
    pub fn h100_pcie(i: u32) -> Self {
        FakeGpu {
            name: "NVIDIA H100 PCIe".into(),
            nvlinks: Vec::new(),
            ..FakeGpu::h100(i)
        }
    }

    /// Keeps the first `n` NVLinks (0: a PCIe board).
    pub fn with_nvlinks(mut self, n: usize) -> Self {
        self.nvlinks.resize(n, (true, [0; 4]));
        self
    }

    /// Turns MIG on with two `3g.40gb` instances (GPU instances 1 and 2), each with its own
    /// GPM values; NVML's utilisation is then `NotSupported` for the GPU and the instances.
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
                    reserved: 0,
                }),
                utilization: Err(GpuError::NotSupported),
            })
            .collect();
        self.gpm_instances = [(1, gpm_values(0.25)), (2, gpm_values(0.5))].into();
        self
    }

    /// The per-call latencies measured on a real H200 (driver 580, `nvml_probe.py --timing`,
    /// medians; calls under 100 µs are left at zero), so a benchmark without a GPU shows
    /// what the scrape pays.
    pub fn with_measured_latency(mut self) -> Self {
        let us = Duration::from_micros;
        self.latency = [
            ("total_energy", us(3272)),
            ("max_clock", us(1378)),
            ("pcie_replay_counter", us(170)),
            ("bar1_memory_info", us(161)),
            ("mig_enabled", us(154)),
            ("ecc_enabled", us(148)),
            ("pcie_throughput", us(20_000)),
        ]
        .into();
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
    /// Whether XID events can be watched at all (`false`: every registration answers
    /// `NotSupported`).
    pub events_supported: bool,
    /// XID events waiting to be delivered (to the event sets their GPU is registered in).
    pub events: VecDeque<RawXid>,
    /// Errors the next event-set waits return, in order.
    pub wait_errors: VecDeque<GpuError>,
    /// Event sets created so far.
    pub event_sets_created: u64,
    /// Registration attempts per GPU index.
    pub registrations: BTreeMap<u32, u64>,
    /// Calls made, per name of the calling thread and method.
    pub calls: HashMap<String, HashMap<&'static str, u64>>,
    next_sample: u64,
}

impl FakeWorld {
    /// `n` H100 SXMs, initialisation succeeds at once.
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
            wait_errors: VecDeque::new(),
            event_sets_created: 0,
            registrations: BTreeMap::new(),
            calls: HashMap::new(),
            next_sample: 0,
        }
    }

    /// How many calls of `method` were made on threads whose name `thread` accepts.
    pub fn calls(&self, method: &str, thread: impl Fn(&str) -> bool) -> u64 {
        self.calls
            .iter()
            .filter(|(t, _)| thread(t))
            .filter_map(|(_, m)| m.get(method))
            .sum()
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

    /// Reads something from the world.
    pub fn read<T>(&self, f: impl FnOnce(&FakeWorld) -> T) -> T {
        f(&self.world.lock().unwrap_or_else(|e| e.into_inner()))
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
    fn event_set(&self) -> R<Box<dyn EventSet>> {
        self.lock().event_sets_created += 1;
        Ok(Box::new(FakeEventSet {
            world: self.world.clone(),
            registered: BTreeSet::new(),
        }))
    }
}

struct FakeEventSet {
    world: Arc<Mutex<FakeWorld>>,
    registered: BTreeSet<u32>,
}

impl EventSet for FakeEventSet {
    fn register(&mut self, index: u32) -> R<()> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        *w.registrations.entry(index).or_insert(0) += 1;
        if !w.events_supported {
            return Err(GpuError::NotSupported);
        }
        let g = w.gpus.get(index as usize).ok_or(GpuError::NotFound)?;
        if g.lost {
            return Err(GpuError::GpuLost);
        }
        if let Some(e) = g.errors.get("register_events") {
            return Err(e.clone());
        }
        self.registered.insert(index);
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> R<Option<RawXid>> {
        {
            let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = w.wait_errors.pop_front() {
                return Err(e);
            }
            while let Some(ev) = w.events.pop_front() {
                // A real set only delivers events of the GPUs registered in it.
                if ev.index.is_some_and(|i| self.registered.contains(&i)) {
                    return Ok(Some(ev));
                }
            }
        }
        std::thread::sleep(timeout.min(Duration::from_millis(10)));
        Ok(None)
    }
}

struct FakeDevice {
    world: Arc<Mutex<FakeWorld>>,
    index: usize,
}

/// A fake GPM sample: which GPU instance, and when it was taken.
struct FakeSample {
    seq: u64,
    gpu_instance: Option<u32>,
}

impl FakeDevice {
    /// Records the call, applies the GPU's scripted failures and latency for `method`, then
    /// reads a value.
    fn get<T>(&self, method: &'static str, f: impl FnOnce(&mut FakeGpu) -> R<T>) -> R<T> {
        let current = std::thread::current();
        let thread = current.name().unwrap_or("");
        let (sleep, result) = {
            let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            match w.calls.get_mut(thread) {
                Some(m) => *m.entry(method).or_insert(0) += 1,
                None => {
                    w.calls.insert(thread.to_string(), [(method, 1)].into());
                }
            }
            let Some(g) = w.gpus.get_mut(self.index) else {
                return Err(GpuError::GpuLost);
            };
            let r = if g.lost {
                Err(GpuError::GpuLost)
            } else if g.reset_required {
                Err(GpuError::ResetRequired)
            } else if let Some(e) = g.errors.get(method) {
                Err(e.clone())
            } else {
                f(g)
            };
            let lat = g.latency.get(method).copied().unwrap_or_default();
            (g.hang.unwrap_or_default().max(lat), r)
        };
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
        result
    }

    fn val<T>(&self, method: &'static str, f: impl FnOnce(&FakeGpu) -> T) -> R<T> {
        self.get(method, |g| Ok(f(g)))
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

fn link(g: &FakeGpu, link: u32) -> R<&(bool, [u64; 4])> {
    if g.nvlinks.is_empty() {
        return Err(GpuError::NotSupported);
    }
    g.nvlinks.get(link as usize).ok_or(GpuError::NotFound)
}

impl Device for FakeDevice {
    fn uuid(&self) -> R<String> {
        self.val("uuid", |g| g.uuid.clone())
    }
    fn name(&self) -> R<String> {
        self.val("name", |g| g.name.clone())
    }
    fn pci_bus_id(&self) -> R<String> {
        self.val("pci_bus_id", |g| g.pci_bus_id.clone())
    }
    fn serial(&self) -> R<String> {
        self.val("serial", |g| g.serial.clone())
    }
    fn vbios_version(&self) -> R<String> {
        self.val("vbios_version", |_| "96.00.89.00.01".to_string())
    }
    fn minor_number(&self) -> R<u32> {
        self.val("minor_number", |g| g.minor)
    }
    fn performance_state(&self) -> R<u32> {
        self.val("performance_state", |g| g.pstate)
    }
    fn utilization(&self) -> R<Utilization> {
        self.get("utilization", |g| {
            if g.mig_enabled {
                Err(GpuError::NotSupported)
            } else {
                Ok(g.utilization)
            }
        })
    }
    fn encoder_utilization(&self) -> R<u32> {
        self.val("encoder_utilization", |g| g.encoder)
    }
    fn decoder_utilization(&self) -> R<u32> {
        self.val("decoder_utilization", |g| g.decoder)
    }
    fn memory_info(&self) -> R<MemoryInfo> {
        self.val("memory_info", |g| g.memory)
    }
    fn bar1_memory_info(&self) -> R<MemoryInfo> {
        self.val("bar1_memory_info", |g| g.bar1)
    }
    fn temperature(&self) -> R<u32> {
        self.val("temperature", |g| g.temperature)
    }
    fn memory_temperature(&self) -> R<u32> {
        self.val("memory_temperature", |g| g.memory_temperature)
    }
    fn temperature_threshold(&self, t: TempThreshold) -> R<u32> {
        self.val("temperature_threshold", |g| match t {
            TempThreshold::Slowdown => g.thresholds.0,
            TempThreshold::Shutdown => g.thresholds.1,
        })
    }
    fn fan_speeds(&self) -> R<Vec<u32>> {
        self.val("fan_speeds", |g| g.fans.clone())
    }
    fn power_usage(&self) -> R<u32> {
        self.val("power_usage", |g| g.power_usage)
    }
    fn power_limit(&self) -> R<u32> {
        self.val("power_limit", |g| g.power_limit)
    }
    fn total_energy(&self) -> R<u64> {
        self.val("total_energy", |g| g.energy)
    }
    fn clock(&self, c: Clock) -> R<u32> {
        self.val("clock", |g| g.clocks[clock_idx(c)])
    }
    fn max_clock(&self, c: Clock) -> R<u32> {
        self.val("max_clock", |g| g.max_clocks[clock_idx(c)])
    }
    fn throttle_reasons(&self) -> R<u64> {
        self.val("throttle_reasons", |g| g.throttle)
    }
    fn supported_throttle_reasons(&self) -> R<u64> {
        self.val("supported_throttle_reasons", |g| g.supported_throttle)
    }
    fn ecc_enabled(&self) -> R<bool> {
        self.val("ecc_enabled", |g| g.ecc_enabled)
    }
    fn ecc_errors(&self, t: EccType, c: EccCounter) -> R<u64> {
        let i = match (c, t) {
            (EccCounter::Volatile, EccType::Corrected) => 0,
            (EccCounter::Volatile, EccType::Uncorrected) => 1,
            (EccCounter::Aggregate, EccType::Corrected) => 2,
            (EccCounter::Aggregate, EccType::Uncorrected) => 3,
        };
        self.val("ecc_errors", |g| g.ecc[i])
    }
    fn retired_pages(&self, c: RetirementCause) -> R<u32> {
        self.val("retired_pages", |g| match c {
            RetirementCause::MultipleSingleBit => g.retired.0,
            RetirementCause::DoubleBit => g.retired.1,
        })
    }
    fn retired_pages_pending(&self) -> R<bool> {
        self.val("retired_pages_pending", |g| g.retired.2)
    }
    fn remapped_rows(&self) -> R<RemappedRows> {
        self.val("remapped_rows", |g| g.remapped)
    }
    fn pcie_replay_counter(&self) -> R<u32> {
        self.val("pcie_replay_counter", |g| g.pcie_replays)
    }
    fn pcie_throughput(&self, d: PcieDirection) -> R<u32> {
        self.val("pcie_throughput", |g| match d {
            PcieDirection::Tx => g.pcie_throughput.0,
            PcieDirection::Rx => g.pcie_throughput.1,
        })
    }
    fn pcie_link(&self) -> R<PcieLink> {
        self.val("pcie_link", |g| g.pcie_link)
    }
    fn pcie_link_max(&self) -> R<PcieLink> {
        self.val("pcie_link_max", |g| g.pcie_link_max)
    }
    fn nvlink_active(&self, l: u32) -> R<bool> {
        self.get("nvlink_active", |g| link(g, l).map(|l| l.0))
    }
    fn nvlink_errors(&self, l: u32, e: NvLinkError) -> R<u64> {
        let i = NvLinkError::ALL.iter().position(|k| *k == e).unwrap_or(0);
        self.get("nvlink_errors", |g| link(g, l).map(|l| l.1[i]))
    }
    fn compute_processes(&self) -> R<Vec<Process>> {
        self.val("compute_processes", |g| g.processes.clone())
    }
    fn mig_enabled(&self) -> R<bool> {
        self.val("mig_enabled", |g| g.mig_enabled)
    }
    fn mig_devices(&self) -> R<Vec<MigDevice>> {
        self.val("mig_devices", |g| {
            if g.mig_enabled {
                g.mig.clone()
            } else {
                Vec::new()
            }
        })
    }
    fn gpm_supported(&self) -> R<bool> {
        self.val("gpm_supported", |g| g.gpm.is_some())
    }
    fn gpm_sample(&self, gpu_instance: Option<u32>) -> R<GpmSample> {
        let seq = {
            let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            w.next_sample += 1;
            w.next_sample
        };
        self.get("gpm_sample", |g| {
            if g.gpm.is_none() {
                return Err(GpuError::NotSupported);
            }
            if let Some(gi) = gpu_instance {
                if !g.mig_enabled || !g.gpm_instances.contains_key(&gi) {
                    return Err(GpuError::NotFound);
                }
            }
            Ok(GpmSample(Box::new(FakeSample { seq, gpu_instance })))
        })
    }
    fn gpm_metrics(&self, earlier: &GpmSample, later: &GpmSample) -> R<GpmValues> {
        let (Some(a), Some(b)) = (
            earlier.0.downcast_ref::<FakeSample>(),
            later.0.downcast_ref::<FakeSample>(),
        ) else {
            return Err(GpuError::Other("not a fake GPM sample".into()));
        };
        if a.gpu_instance != b.gpu_instance || a.seq >= b.seq {
            return Err(GpuError::Other("GPM samples out of order".into()));
        }
        self.get("gpm_metrics", |g| {
            let values = match a.gpu_instance {
                None => g.gpm.clone().ok_or(GpuError::NotSupported)?,
                Some(gi) => g
                    .gpm_instances
                    .get(&gi)
                    .cloned()
                    .ok_or(GpuError::NotFound)?,
            };
            Ok(values.into_iter().map(|(m, v)| (m, Ok(v))).collect())
        })
    }
}
