//! The narrow interface the collectors use to talk to NVML.
//!
//! Everything the exporter reads from a GPU goes through [`Nvml`] and [`Device`], so the
//! collectors, the MIG handling, the error paths and the job attribution are tested against
//! the scripted fake in [`crate::fake`], and the real implementation in [`crate::nvml`] is a
//! thin mapping onto `nvml-wrapper`. Every read returns [`R`]: a field a GPU does not have is
//! [`GpuError::NotSupported`] (skipped), a GPU that fell off the bus is
//! [`GpuError::GpuLost`] (reported as `gpu_up 0`), and so on.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why an NVML call failed, reduced to what the exporter acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    /// The device does not have this field (skip it).
    NotSupported,
    /// The GPU is inaccessible (fell off the bus, XID 79).
    GpuLost,
    /// The GPU needs a reset before it can be used again.
    ResetRequired,
    /// The call did not return in time.
    Timeout,
    /// The NVIDIA kernel driver is not loaded.
    DriverNotLoaded,
    /// `libnvidia-ml.so.1` could not be loaded.
    LibraryNotFound,
    /// Not allowed to talk to the driver.
    NoPermission,
    /// NVML is not (or no longer) initialised; re-initialise.
    Uninitialized,
    /// The user-space library and the kernel driver versions differ (driver upgraded
    /// underneath a running process); re-initialise.
    VersionMismatch,
    /// An index or link that does not exist.
    NotFound,
    /// Anything else, with NVML's description.
    Other(String),
}

impl GpuError {
    /// The value of the `reason` label for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            GpuError::NotSupported => "not_supported",
            GpuError::GpuLost => "gpu_lost",
            GpuError::ResetRequired => "reset_required",
            GpuError::Timeout => "timeout",
            GpuError::DriverNotLoaded => "driver_not_loaded",
            GpuError::LibraryNotFound => "library_not_found",
            GpuError::NoPermission => "no_permission",
            GpuError::Uninitialized => "uninitialized",
            GpuError::VersionMismatch => "driver_version_mismatch",
            GpuError::NotFound => "not_found",
            GpuError::Other(_) => "error",
        }
    }

    /// Whether this error means the device itself is unusable (as opposed to one field).
    pub fn device_down(&self) -> bool {
        matches!(
            self,
            GpuError::GpuLost | GpuError::ResetRequired | GpuError::Timeout
        )
    }

    /// Whether NVML itself must be initialised again (driver reloaded or upgraded).
    pub fn needs_reinit(&self) -> bool {
        matches!(
            self,
            GpuError::Uninitialized | GpuError::DriverNotLoaded | GpuError::VersionMismatch
        )
    }
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::Other(s) => write!(f, "NVML error: {s}"),
            e => f.write_str(e.reason()),
        }
    }
}

impl std::error::Error for GpuError {}

/// The result of one NVML read.
pub type R<T> = Result<T, GpuError>;

/// Utilisation over NVML's last sample period, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Utilization {
    /// Percent of time a kernel was running.
    pub gpu: u32,
    /// Percent of time device memory was being read or written.
    pub memory: u32,
}

/// A memory pool, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryInfo {
    /// Total.
    pub total: u64,
    /// Free.
    pub free: u64,
    /// Used.
    pub used: u64,
    /// Set aside by the driver (frame buffer only: `used + free + reserved = total`).
    pub reserved: u64,
}

/// A clock domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Graphics.
    Graphics,
    /// Streaming multiprocessors.
    Sm,
    /// Memory.
    Memory,
    /// Video encoder/decoder.
    Video,
}

impl Clock {
    /// Every clock domain.
    pub const ALL: [Clock; 4] = [Clock::Graphics, Clock::Sm, Clock::Memory, Clock::Video];

    /// The `clock` label value.
    pub fn label(self) -> &'static str {
        match self {
            Clock::Graphics => "graphics",
            Clock::Sm => "sm",
            Clock::Memory => "memory",
            Clock::Video => "video",
        }
    }
}

/// A temperature threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempThreshold {
    /// Hardware slowdown starts here.
    Slowdown,
    /// The GPU shuts down here.
    Shutdown,
}

/// Corrected or uncorrected ECC errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EccType {
    /// Single-bit, corrected.
    Corrected,
    /// Double-bit, uncorrected.
    Uncorrected,
}

/// Since the last driver load (volatile) or over the GPU's lifetime (aggregate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EccCounter {
    /// Reset when the driver reloads.
    Volatile,
    /// Persistent across reboots.
    Aggregate,
}

/// Why a memory page was retired (pre-Ampere GPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetirementCause {
    /// Multiple single-bit errors.
    MultipleSingleBit,
    /// A double-bit error.
    DoubleBit,
}

/// Row remapping state (Ampere and newer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemappedRows {
    /// Rows remapped after correctable errors.
    pub correctable: u32,
    /// Rows remapped after uncorrectable errors.
    pub uncorrectable: u32,
    /// A remapping waits for a GPU reset.
    pub pending: bool,
    /// A remapping failed (the GPU should be replaced).
    pub failure: bool,
}

/// A PCIe link's generation and width (current, or the maximum the GPU and slot allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcieLink {
    /// Generation.
    pub generation: u32,
    /// Width (lanes).
    pub width: u32,
}

/// PCIe traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcieDirection {
    /// Sent by the GPU.
    Tx,
    /// Received by the GPU.
    Rx,
}

/// NVLink error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvLinkError {
    /// Data link transmit replays.
    Replay,
    /// Data link transmit recoveries.
    Recovery,
    /// Receive flow-control digit CRC errors.
    CrcFlit,
    /// Receive data CRC errors.
    CrcData,
}

impl NvLinkError {
    /// Every counter.
    pub const ALL: [NvLinkError; 4] = [
        NvLinkError::Replay,
        NvLinkError::Recovery,
        NvLinkError::CrcFlit,
        NvLinkError::CrcData,
    ];

    /// The `type` label value.
    pub fn label(self) -> &'static str {
        match self {
            NvLinkError::Replay => "replay",
            NvLinkError::Recovery => "recovery",
            NvLinkError::CrcFlit => "crc_flit",
            NvLinkError::CrcData => "crc_data",
        }
    }
}

/// The most NVLink links NVML knows of (`NVML_NVLINK_MAX_LINKS`).
pub const NVLINK_MAX_LINKS: u32 = 18;

/// A compute process on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    /// Host PID.
    pub pid: u32,
    /// Device memory it uses, if the driver says.
    pub used_memory: Option<u64>,
}

/// A MIG device (a compute instance inside a GPU instance) and what it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigDevice {
    /// `MIG-...` UUID.
    pub uuid: String,
    /// GPU instance id.
    pub gpu_instance_id: u32,
    /// Compute instance id.
    pub compute_instance_id: u32,
    /// Profile, e.g. `1g.10gb`.
    pub profile: String,
    /// Its memory.
    pub memory: R<MemoryInfo>,
    /// Its utilisation (most drivers do not report it for MIG devices).
    pub utilization: R<Utilization>,
}

/// Clock event ("throttle") reason bits, as NVML defines them, with their label values.
pub const THROTTLE_REASONS: &[(u64, &str)] = &[
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// An XID error as recorded: the GPU's UUID (as known when its events were registered, so
/// a GPU that fell off the bus keeps it) and the XID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidEvent {
    /// The GPU's UUID.
    pub uuid: String,
    /// The XID, or `None` when NVML could not tell.
    pub xid: Option<u64>,
}

/// An XID error as an [`EventSet`] delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawXid {
    /// NVML index of the GPU it came from (`None` if the set cannot tell).
    pub index: Option<u32>,
    /// The XID, or `None` when NVML could not tell.
    pub xid: Option<u64>,
}

/// An NVML event set watching XID errors. A GPU whose registration fails is left out; the
/// set stays usable for the others (except after [`GpuError::Other`], NVML's `Unknown`,
/// after which NVML leaves the set undefined: build a new one).
pub trait EventSet: Send {
    /// Registers GPU `index` for XID events (`NotSupported` if it cannot report them).
    fn register(&mut self, index: u32) -> R<()>;
    /// Waits up to `timeout` for the next XID; `Ok(None)` if none arrived.
    fn wait(&mut self, timeout: Duration) -> R<Option<RawXid>>;
}

/// A GPU performance monitoring (GPM) metric: activity ratios of Hopper and newer GPUs, for
/// a whole GPU or one MIG GPU instance (where NVML's plain utilisation is `NotSupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GpmMetric {
    /// Graphics engine activity (`DCGM_FI_PROF_GR_ENGINE_ACTIVE`).
    Graphics,
    /// SM activity (`DCGM_FI_PROF_SM_ACTIVE`).
    Sm,
    /// SM occupancy (`DCGM_FI_PROF_SM_OCCUPANCY`).
    SmOccupancy,
    /// Any tensor pipe activity (`DCGM_FI_PROF_PIPE_TENSOR_ACTIVE`).
    Tensor,
    /// DRAM bandwidth use (`DCGM_FI_PROF_DRAM_ACTIVE`).
    Dram,
    /// FP64 pipe activity (`DCGM_FI_PROF_PIPE_FP64_ACTIVE`).
    Fp64,
    /// FP32 pipe activity (`DCGM_FI_PROF_PIPE_FP32_ACTIVE`).
    Fp32,
    /// FP16 pipe activity (`DCGM_FI_PROF_PIPE_FP16_ACTIVE`).
    Fp16,
}

impl GpmMetric {
    /// Every metric the exporter reads.
    pub const ALL: [GpmMetric; 8] = [
        GpmMetric::Graphics,
        GpmMetric::Sm,
        GpmMetric::SmOccupancy,
        GpmMetric::Tensor,
        GpmMetric::Dram,
        GpmMetric::Fp64,
        GpmMetric::Fp32,
        GpmMetric::Fp16,
    ];

    /// NVML's `nvmlGpmMetricId_t`.
    pub fn nvml_id(self) -> u32 {
        match self {
            GpmMetric::Graphics => 1,
            GpmMetric::Sm => 2,
            GpmMetric::SmOccupancy => 3,
            GpmMetric::Tensor => 5,
            GpmMetric::Dram => 10,
            GpmMetric::Fp64 => 11,
            GpmMetric::Fp32 => 12,
            GpmMetric::Fp16 => 13,
        }
    }

    /// The part of the family name, `gpu_gpm_<this>_ratio`.
    pub fn name(self) -> &'static str {
        match self {
            GpmMetric::Graphics => "graphics_activity",
            GpmMetric::Sm => "sm_activity",
            GpmMetric::SmOccupancy => "sm_occupancy",
            GpmMetric::Tensor => "tensor_activity",
            GpmMetric::Dram => "dram_activity",
            GpmMetric::Fp64 => "fp64_activity",
            GpmMetric::Fp32 => "fp32_activity",
            GpmMetric::Fp16 => "fp16_activity",
        }
    }

    /// What it measures, for the family's help.
    pub fn help(self) -> &'static str {
        match self {
            GpmMetric::Graphics => "Fraction of time the graphics/compute engine was active",
            GpmMetric::Sm => {
                "Fraction of time at least one warp was active on an SM, averaged over SMs"
            }
            GpmMetric::SmOccupancy => {
                "Resident warps as a fraction of the SMs' maximum, averaged over SMs"
            }
            GpmMetric::Tensor => "Fraction of cycles a tensor core pipe was active",
            GpmMetric::Dram => "Fraction of cycles device memory was sending or receiving data",
            GpmMetric::Fp64 => "Fraction of cycles the FP64 pipe was active",
            GpmMetric::Fp32 => "Fraction of cycles the FP32 pipe was active",
            GpmMetric::Fp16 => "Fraction of cycles the FP16 pipe was active",
        }
    }
}

/// An opaque GPM sample (NVML allocates it; dropping it frees it).
pub struct GpmSample(pub Box<dyn Any + Send + Sync>);

impl fmt::Debug for GpmSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GpmSample")
    }
}

/// GPM metrics between two samples, in percent as NVML gives them.
pub type GpmValues = Vec<(GpmMetric, R<f64>)>;

/// One GPU (or MIG device). Methods block in the driver; callers run them on per-device
/// threads so that a hung GPU blocks only its own reads.
pub trait Device: Send + Sync {
    /// `GPU-...` UUID.
    fn uuid(&self) -> R<String>;
    /// Product name.
    fn name(&self) -> R<String>;
    /// PCI bus id, e.g. `00000000:17:00.0`.
    fn pci_bus_id(&self) -> R<String>;
    /// Board serial number.
    fn serial(&self) -> R<String>;
    /// VBIOS version.
    fn vbios_version(&self) -> R<String>;
    /// The `N` of `/dev/nvidiaN`.
    fn minor_number(&self) -> R<u32>;
    /// Performance state, 0 (fastest) to 15.
    fn performance_state(&self) -> R<u32>;
    /// GPU and memory utilisation.
    fn utilization(&self) -> R<Utilization>;
    /// Encoder utilisation in percent.
    fn encoder_utilization(&self) -> R<u32>;
    /// Decoder utilisation in percent.
    fn decoder_utilization(&self) -> R<u32>;
    /// Frame buffer memory.
    fn memory_info(&self) -> R<MemoryInfo>;
    /// BAR1 memory.
    fn bar1_memory_info(&self) -> R<MemoryInfo>;
    /// GPU core temperature in °C.
    fn temperature(&self) -> R<u32>;
    /// HBM temperature in °C.
    fn memory_temperature(&self) -> R<u32>;
    /// A temperature threshold in °C.
    fn temperature_threshold(&self, t: TempThreshold) -> R<u32>;
    /// Fan speeds in percent of maximum, one per fan (empty for passively cooled boards).
    fn fan_speeds(&self) -> R<Vec<u32>>;
    /// Power draw in milliwatts.
    fn power_usage(&self) -> R<u32>;
    /// Enforced power limit in milliwatts.
    fn power_limit(&self) -> R<u32>;
    /// Energy since the driver loaded, in millijoules.
    fn total_energy(&self) -> R<u64>;
    /// Current clock in MHz.
    fn clock(&self, c: Clock) -> R<u32>;
    /// Maximum clock in MHz.
    fn max_clock(&self, c: Clock) -> R<u32>;
    /// Active clock event reasons (bitmask of [`THROTTLE_REASONS`]).
    fn throttle_reasons(&self) -> R<u64>;
    /// Clock event reasons this GPU can report.
    fn supported_throttle_reasons(&self) -> R<u64>;
    /// Whether ECC is enabled.
    fn ecc_enabled(&self) -> R<bool>;
    /// An ECC error counter.
    fn ecc_errors(&self, t: EccType, c: EccCounter) -> R<u64>;
    /// Number of retired pages for a cause.
    fn retired_pages(&self, c: RetirementCause) -> R<u32>;
    /// Whether a page retirement waits for a reboot.
    fn retired_pages_pending(&self) -> R<bool>;
    /// Row remapping state.
    fn remapped_rows(&self) -> R<RemappedRows>;
    /// PCIe replay counter.
    fn pcie_replay_counter(&self) -> R<u32>;
    /// PCIe throughput in KB/s over a 20 ms sample (this call sleeps that long).
    fn pcie_throughput(&self, d: PcieDirection) -> R<u32>;
    /// Current PCIe link generation and width.
    fn pcie_link(&self) -> R<PcieLink>;
    /// Maximum PCIe link generation and width.
    fn pcie_link_max(&self) -> R<PcieLink>;
    /// Whether NVLink `link` is active ([`GpuError::NotFound`] / `NotSupported` when absent).
    fn nvlink_active(&self, link: u32) -> R<bool>;
    /// An NVLink error counter.
    fn nvlink_errors(&self, link: u32, e: NvLinkError) -> R<u64>;
    /// Running compute processes.
    fn compute_processes(&self) -> R<Vec<Process>>;
    /// Whether MIG mode is currently enabled.
    fn mig_enabled(&self) -> R<bool>;
    /// The MIG devices of this GPU (empty when MIG is off).
    fn mig_devices(&self) -> R<Vec<MigDevice>>;
    /// Whether the GPU supports GPM (Hopper and newer).
    fn gpm_supported(&self) -> R<bool>;
    /// A GPM sample of the whole GPU, or of MIG GPU instance `gpu_instance`.
    fn gpm_sample(&self, gpu_instance: Option<u32>) -> R<GpmSample>;
    /// The GPM metrics between two samples of the same GPU or instance, `earlier` first.
    fn gpm_metrics(&self, earlier: &GpmSample, later: &GpmSample) -> R<GpmValues>;
}

/// An initialised NVML.
pub trait Nvml: Send + Sync {
    /// Kernel driver version, e.g. `550.54.15`.
    fn driver_version(&self) -> R<String>;
    /// NVML library version.
    fn nvml_version(&self) -> R<String>;
    /// CUDA driver API version as NVML encodes it (`12040` is 12.4).
    fn cuda_driver_version(&self) -> R<i32>;
    /// Number of GPUs.
    fn device_count(&self) -> R<u32>;
    /// The GPU at `index`.
    fn device(&self, index: u32) -> R<Arc<dyn Device>>;
    /// A new, empty XID event set (register GPUs into it).
    fn event_set(&self) -> R<Box<dyn EventSet>>;
}

/// Something that can initialise NVML (again).
pub trait Backend: Send + Sync {
    /// Loads the library and initialises NVML.
    fn init(&self) -> R<Arc<dyn Nvml>>;
}
