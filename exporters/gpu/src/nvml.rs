//! The real [`Backend`]: NVML through `nvml-wrapper`, with `libnvidia-ml.so.1` loaded at
//! run time (`dlopen`), so the binary builds and runs on machines without the library; there
//! initialisation fails with `library_not_found` and the exporter serves `gpu_nvml_up 0`.
//!
//! A few calls `nvml-wrapper` 0.11 does not wrap, or wraps in a way the exporter cannot use,
//! go through `nvml-wrapper-sys`' raw bindings of the same library: MIG device handles and
//! GPU/compute instance ids, remapped rows, GPM (`nvmlGpm*`), and the XID event set
//! (`nvml-wrapper` frees the whole set when one GPU's registration fails; NVML itself leaves
//! it usable). Every raw symbol is checked before it is called (an older driver may lack it:
//! `NotSupported`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nvml_wrapper::enum_wrappers::device as nd;
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::{nvml_try, NvmlError};
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlEventData_t, nvmlEventSet_t, nvmlGpmMetricsGet_t, nvmlGpmSample_t,
    nvmlGpmSupport_t, NvmlLib, NVML_GPM_METRICS_GET_VERSION, NVML_GPM_SUPPORT_VERSION,
};

use crate::backend::*;

/// The library NVML is loaded from.
pub const LIBRARY: &str = "libnvidia-ml.so.1";

/// `NVML_FI_DEV_MEMORY_TEMP`.
const FI_MEMORY_TEMP: u32 = 82;

/// `nvmlEventTypeXidCriticalError`.
const EVENT_XID: u64 = 0x8;

/// The XID NVML reports when it cannot tell which.
const XID_UNKNOWN: u64 = 999;

fn map(e: NvmlError) -> GpuError {
    match e {
        NvmlError::NotSupported
        | NvmlError::FunctionNotFound
        | NvmlError::FailedToLoadSymbol(_) => GpuError::NotSupported,
        NvmlError::GpuLost => GpuError::GpuLost,
        NvmlError::ResetRequired => GpuError::ResetRequired,
        NvmlError::Timeout => GpuError::Timeout,
        NvmlError::DriverNotLoaded => GpuError::DriverNotLoaded,
        NvmlError::LibloadingError(_) | NvmlError::LibraryNotFound => GpuError::LibraryNotFound,
        NvmlError::NoPermission => GpuError::NoPermission,
        NvmlError::Uninitialized => GpuError::Uninitialized,
        NvmlError::LibRmVersionMismatch => GpuError::VersionMismatch,
        NvmlError::NotFound | NvmlError::InvalidArg => GpuError::NotFound,
        e => GpuError::Other(e.to_string()),
    }
}

/// The real backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealBackend;

struct Inner {
    // Declared first so it is dropped (dlclose) before `nvml` shuts NVML down.
    raw: Option<NvmlLib>,
    nvml: nvml_wrapper::Nvml,
}

impl Backend for RealBackend {
    fn init(&self) -> R<Arc<dyn Nvml>> {
        let nvml = nvml_wrapper::Nvml::builder()
            .lib_path(std::ffi::OsStr::new(LIBRARY))
            .init()
            .map_err(map)?;
        // SAFETY: loads the same library again (reference counted by the dynamic loader);
        // symbols are only resolved, nothing runs.
        let raw = unsafe { NvmlLib::new(LIBRARY) }.ok();
        Ok(Arc::new(RealNvml {
            inner: Arc::new(Inner { raw, nvml }),
        }))
    }
}

struct RealNvml {
    inner: Arc<Inner>,
}

/// A raw device handle. NVML handles are plain pointers valid while NVML is initialised,
/// and NVML is thread-safe.
#[derive(Clone, Copy)]
struct Handle(nvmlDevice_t);
// SAFETY: see above; the handle is only passed back to NVML.
unsafe impl Send for Handle {}
// SAFETY: see above.
unsafe impl Sync for Handle {}

impl Nvml for RealNvml {
    fn driver_version(&self) -> R<String> {
        self.inner.nvml.sys_driver_version().map_err(map)
    }
    fn nvml_version(&self) -> R<String> {
        self.inner.nvml.sys_nvml_version().map_err(map)
    }
    fn cuda_driver_version(&self) -> R<i32> {
        self.inner.nvml.sys_cuda_driver_version().map_err(map)
    }
    fn device_count(&self) -> R<u32> {
        self.inner.nvml.device_count().map_err(map)
    }
    fn device(&self, index: u32) -> R<Arc<dyn Device>> {
        let d = self.inner.nvml.device_by_index(index).map_err(map)?;
        // SAFETY: the handle stays valid while `inner` (NVML) lives; RealDevice holds it.
        let h = unsafe { d.handle() };
        Ok(Arc::new(RealDevice {
            inner: self.inner.clone(),
            h: Handle(h),
        }))
    }
    fn event_set(&self) -> R<Box<dyn EventSet>> {
        let raw = self.inner.raw.as_ref().ok_or(GpuError::NotSupported)?;
        if raw.nvmlEventSetCreate.is_err()
            || raw.nvmlEventSetFree.is_err()
            || raw.nvmlDeviceRegisterEvents.is_err()
            || raw.nvmlEventSetWait_v2.is_err()
        {
            return Err(GpuError::NotSupported);
        }
        let mut set: nvmlEventSet_t = std::ptr::null_mut();
        // SAFETY: checked symbol; out-pointer to a local.
        nvml_try(unsafe { raw.nvmlEventSetCreate(&mut set) }).map_err(map)?;
        Ok(Box::new(RealEventSet {
            inner: self.inner.clone(),
            set,
            devices: HashMap::new(),
        }))
    }
}

/// An NVML event set, freed on drop.
struct RealEventSet {
    inner: Arc<Inner>,
    set: nvmlEventSet_t,
    /// Registered device handles (as addresses) → NVML index.
    devices: HashMap<usize, u32>,
}

// SAFETY: the set is used by one thread at a time (`&mut self`), as NVML requires.
unsafe impl Send for RealEventSet {}

impl RealEventSet {
    fn raw(&self) -> &NvmlLib {
        // `event_set` only builds a RealEventSet when the raw library is there.
        self.inner.raw.as_ref().expect("raw NVML library")
    }
}

impl EventSet for RealEventSet {
    fn register(&mut self, index: u32) -> R<()> {
        let d = self.inner.nvml.device_by_index(index).map_err(map)?;
        // SAFETY: the handle stays valid while `inner` (NVML) lives.
        let h = unsafe { d.handle() };
        let raw = self.raw();
        if raw.nvmlDeviceGetSupportedEventTypes.is_ok() {
            let mut types = 0u64;
            // SAFETY: checked symbol; valid handle; out-pointer to a local.
            nvml_try(unsafe { raw.nvmlDeviceGetSupportedEventTypes(h, &mut types) })
                .map_err(map)?;
            if types & EVENT_XID == 0 {
                return Err(GpuError::NotSupported);
            }
        }
        // SAFETY: symbols checked in `event_set`; valid handle and set. Unlike
        // nvml-wrapper's `register_events`, a failure leaves the set to the caller.
        nvml_try(unsafe { raw.nvmlDeviceRegisterEvents(h, EVENT_XID, self.set) }).map_err(map)?;
        self.devices.insert(h as usize, index);
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> R<Option<RawXid>> {
        // SAFETY: plain C struct; zero is a valid bit pattern.
        let mut data: nvmlEventData_t = unsafe { std::mem::zeroed() };
        let ms = timeout.as_millis().min(u128::from(u32::MAX)) as u32;
        // SAFETY: symbols checked in `event_set`; valid set; out-pointer to a local.
        match nvml_try(unsafe { self.raw().nvmlEventSetWait_v2(self.set, &mut data, ms) }) {
            Ok(()) if data.eventType & EVENT_XID != 0 => Ok(Some(RawXid {
                index: self.devices.get(&(data.device as usize)).copied(),
                xid: (data.eventData != XID_UNKNOWN).then_some(data.eventData),
            })),
            Ok(()) | Err(NvmlError::Timeout) => Ok(None),
            Err(e) => Err(map(e)),
        }
    }
}

impl Drop for RealEventSet {
    fn drop(&mut self) {
        // SAFETY: symbol checked in `event_set`; the set is ours and freed once.
        unsafe {
            self.raw().nvmlEventSetFree(self.set);
        }
    }
}

/// A GPM sample allocated by NVML, freed on drop.
struct RawGpmSample {
    inner: Arc<Inner>,
    ptr: nvmlGpmSample_t,
}

// SAFETY: an opaque NVML buffer, only passed back to NVML (which is thread-safe).
unsafe impl Send for RawGpmSample {}
// SAFETY: as above.
unsafe impl Sync for RawGpmSample {}

impl Drop for RawGpmSample {
    fn drop(&mut self) {
        if let Some(raw) = self.inner.raw.as_ref() {
            if raw.nvmlGpmSampleFree.is_ok() {
                // SAFETY: checked symbol; the sample is ours and freed once.
                unsafe {
                    raw.nvmlGpmSampleFree(self.ptr);
                }
            }
        }
    }
}

struct RealDevice {
    inner: Arc<Inner>,
    h: Handle,
}

impl RealDevice {
    fn d(&self) -> nvml_wrapper::Device<'_> {
        // SAFETY: the handle came from this NVML instance, which `inner` keeps alive.
        unsafe { nvml_wrapper::Device::new(self.h.0, &self.inner.nvml) }
    }

    fn raw(&self) -> R<&NvmlLib> {
        self.inner.raw.as_ref().ok_or(GpuError::NotSupported)
    }
}

fn clock_of(c: Clock) -> nd::Clock {
    match c {
        Clock::Graphics => nd::Clock::Graphics,
        Clock::Sm => nd::Clock::SM,
        Clock::Memory => nd::Clock::Memory,
        Clock::Video => nd::Clock::Video,
    }
}

fn profile_of(mig_name: &str) -> String {
    mig_name
        .rsplit_once("MIG ")
        .map(|(_, p)| p.trim().to_string())
        .unwrap_or_else(|| mig_name.to_string())
}

impl Device for RealDevice {
    fn uuid(&self) -> R<String> {
        self.d().uuid().map_err(map)
    }
    fn name(&self) -> R<String> {
        self.d().name().map_err(map)
    }
    fn pci_bus_id(&self) -> R<String> {
        self.d().pci_info().map(|p| p.bus_id).map_err(map)
    }
    fn serial(&self) -> R<String> {
        self.d().serial().map_err(map)
    }
    fn vbios_version(&self) -> R<String> {
        self.d().vbios_version().map_err(map)
    }
    fn minor_number(&self) -> R<u32> {
        self.d().minor_number().map_err(map)
    }
    fn performance_state(&self) -> R<u32> {
        let p = self.d().performance_state().map_err(map)?;
        let v = p.as_c();
        if v > 15 {
            return Err(GpuError::NotSupported);
        }
        Ok(v)
    }
    fn utilization(&self) -> R<Utilization> {
        let u = self.d().utilization_rates().map_err(map)?;
        Ok(Utilization {
            gpu: u.gpu,
            memory: u.memory,
        })
    }
    fn encoder_utilization(&self) -> R<u32> {
        self.d()
            .encoder_utilization()
            .map(|u| u.utilization)
            .map_err(map)
    }
    fn decoder_utilization(&self) -> R<u32> {
        self.d()
            .decoder_utilization()
            .map(|u| u.utilization)
            .map_err(map)
    }
    fn memory_info(&self) -> R<MemoryInfo> {
        let m = self.d().memory_info().map_err(map)?;
        Ok(MemoryInfo {
            total: m.total,
            free: m.free,
            used: m.used,
            reserved: m.reserved,
        })
    }
    fn bar1_memory_info(&self) -> R<MemoryInfo> {
        let m = self.d().bar1_memory_info().map_err(map)?;
        Ok(MemoryInfo {
            total: m.total,
            free: m.free,
            used: m.used,
            reserved: 0,
        })
    }
    fn temperature(&self) -> R<u32> {
        self.d()
            .temperature(nd::TemperatureSensor::Gpu)
            .map_err(map)
    }
    fn memory_temperature(&self) -> R<u32> {
        let v = self
            .d()
            .field_values_for(&[FieldId(FI_MEMORY_TEMP)])
            .map_err(map)?;
        let s = v
            .into_iter()
            .next()
            .ok_or(GpuError::NotSupported)?
            .map_err(map)?;
        match s.value.map_err(map)? {
            SampleValue::U32(t) => Ok(t),
            SampleValue::U64(t) => Ok(t as u32),
            SampleValue::I64(t) if t >= 0 => Ok(t as u32),
            SampleValue::F64(t) if t >= 0.0 => Ok(t as u32),
            _ => Err(GpuError::NotSupported),
        }
    }
    fn temperature_threshold(&self, t: TempThreshold) -> R<u32> {
        let t = match t {
            TempThreshold::Slowdown => nd::TemperatureThreshold::Slowdown,
            TempThreshold::Shutdown => nd::TemperatureThreshold::Shutdown,
        };
        self.d().temperature_threshold(t).map_err(map)
    }
    fn fan_speeds(&self) -> R<Vec<u32>> {
        let d = self.d();
        let n = d.num_fans().map_err(map)?;
        (0..n).map(|i| d.fan_speed(i).map_err(map)).collect()
    }
    fn power_usage(&self) -> R<u32> {
        self.d().power_usage().map_err(map)
    }
    fn power_limit(&self) -> R<u32> {
        self.d().enforced_power_limit().map_err(map)
    }
    fn total_energy(&self) -> R<u64> {
        self.d().total_energy_consumption().map_err(map)
    }
    fn clock(&self, c: Clock) -> R<u32> {
        self.d().clock_info(clock_of(c)).map_err(map)
    }
    fn max_clock(&self, c: Clock) -> R<u32> {
        self.d().max_clock_info(clock_of(c)).map_err(map)
    }
    fn throttle_reasons(&self) -> R<u64> {
        self.d()
            .current_throttle_reasons()
            .map(|r| r.bits())
            .map_err(map)
    }
    fn supported_throttle_reasons(&self) -> R<u64> {
        self.d()
            .supported_throttle_reasons()
            .map(|r| r.bits())
            .map_err(map)
    }
    fn ecc_enabled(&self) -> R<bool> {
        self.d()
            .is_ecc_enabled()
            .map(|m| m.currently_enabled)
            .map_err(map)
    }
    fn ecc_errors(&self, t: EccType, c: EccCounter) -> R<u64> {
        let t = match t {
            EccType::Corrected => nd::MemoryError::Corrected,
            EccType::Uncorrected => nd::MemoryError::Uncorrected,
        };
        let c = match c {
            EccCounter::Volatile => nd::EccCounter::Volatile,
            EccCounter::Aggregate => nd::EccCounter::Aggregate,
        };
        self.d().total_ecc_errors(t, c).map_err(map)
    }
    fn retired_pages(&self, c: RetirementCause) -> R<u32> {
        let c = match c {
            RetirementCause::MultipleSingleBit => nd::RetirementCause::MultipleSingleBitEccErrors,
            RetirementCause::DoubleBit => nd::RetirementCause::DoubleBitEccError,
        };
        self.d()
            .retired_pages(c)
            .map(|p| p.len() as u32)
            .map_err(map)
    }
    fn retired_pages_pending(&self) -> R<bool> {
        self.d().are_pages_pending_retired().map_err(map)
    }
    fn remapped_rows(&self) -> R<RemappedRows> {
        let raw = self.raw()?;
        if raw.nvmlDeviceGetRemappedRows.is_err() {
            return Err(GpuError::NotSupported);
        }
        let (mut corr, mut unc, mut pending, mut failure) = (0u32, 0u32, 0u32, 0u32);
        // SAFETY: checked symbol; valid handle; out-pointers to locals.
        let code = unsafe {
            raw.nvmlDeviceGetRemappedRows(self.h.0, &mut corr, &mut unc, &mut pending, &mut failure)
        };
        nvml_try(code).map_err(map)?;
        Ok(RemappedRows {
            correctable: corr,
            uncorrectable: unc,
            pending: pending != 0,
            failure: failure != 0,
        })
    }
    fn pcie_replay_counter(&self) -> R<u32> {
        self.d().pcie_replay_counter().map_err(map)
    }
    fn pcie_throughput(&self, dir: PcieDirection) -> R<u32> {
        let c = match dir {
            PcieDirection::Tx => nd::PcieUtilCounter::Send,
            PcieDirection::Rx => nd::PcieUtilCounter::Receive,
        };
        self.d().pcie_throughput(c).map_err(map)
    }
    fn pcie_link(&self) -> R<PcieLink> {
        let d = self.d();
        Ok(PcieLink {
            generation: d.current_pcie_link_gen().map_err(map)?,
            width: d.current_pcie_link_width().map_err(map)?,
        })
    }
    fn pcie_link_max(&self) -> R<PcieLink> {
        let d = self.d();
        Ok(PcieLink {
            generation: d.max_pcie_link_gen().map_err(map)?,
            width: d.max_pcie_link_width().map_err(map)?,
        })
    }
    fn nvlink_active(&self, link: u32) -> R<bool> {
        self.d().link_wrapper_for(link).is_active().map_err(map)
    }
    fn nvlink_errors(&self, link: u32, e: NvLinkError) -> R<u64> {
        let c = match e {
            NvLinkError::Replay => ErrorCounter::DlReplay,
            NvLinkError::Recovery => ErrorCounter::DlRecovery,
            NvLinkError::CrcFlit => ErrorCounter::DlCrcFlit,
            NvLinkError::CrcData => ErrorCounter::DlCrcData,
        };
        self.d()
            .link_wrapper_for(link)
            .error_counter(c)
            .map_err(map)
    }
    fn compute_processes(&self) -> R<Vec<Process>> {
        let p = self.d().running_compute_processes().map_err(map)?;
        Ok(p.into_iter()
            .map(|p| Process {
                pid: p.pid,
                used_memory: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect())
    }
    fn mig_enabled(&self) -> R<bool> {
        self.d().mig_mode().map(|m| m.current == 1).map_err(map)
    }
    fn mig_devices(&self) -> R<Vec<MigDevice>> {
        let raw = self.raw()?;
        if raw.nvmlDeviceGetMaxMigDeviceCount.is_err()
            || raw.nvmlDeviceGetMigDeviceHandleByIndex.is_err()
            || raw.nvmlDeviceGetGpuInstanceId.is_err()
            || raw.nvmlDeviceGetComputeInstanceId.is_err()
        {
            return Err(GpuError::NotSupported);
        }
        let mut max = 0u32;
        // SAFETY: checked symbols; valid handle; out-pointers to locals.
        nvml_try(unsafe { raw.nvmlDeviceGetMaxMigDeviceCount(self.h.0, &mut max) }).map_err(map)?;
        let mut out = Vec::new();
        for i in 0..max {
            let mut mh: nvmlDevice_t = std::ptr::null_mut();
            // SAFETY: as above.
            match nvml_try(unsafe { raw.nvmlDeviceGetMigDeviceHandleByIndex(self.h.0, i, &mut mh) })
            {
                Ok(()) => {}
                Err(NvmlError::NotFound) | Err(NvmlError::InvalidArg) => continue,
                Err(e) => return Err(map(e)),
            }
            let (mut gi, mut ci) = (0u32, 0u32);
            // SAFETY: as above; `mh` was just returned by NVML.
            unsafe {
                nvml_try(raw.nvmlDeviceGetGpuInstanceId(mh, &mut gi)).map_err(map)?;
                nvml_try(raw.nvmlDeviceGetComputeInstanceId(mh, &mut ci)).map_err(map)?;
            }
            // SAFETY: a MIG handle from this NVML instance.
            let md = unsafe { nvml_wrapper::Device::new(mh, &self.inner.nvml) };
            out.push(MigDevice {
                uuid: md.uuid().map_err(map)?,
                gpu_instance_id: gi,
                compute_instance_id: ci,
                profile: md.name().map(|n| profile_of(&n)).unwrap_or_default(),
                memory: md
                    .memory_info()
                    .map(|m| MemoryInfo {
                        total: m.total,
                        free: m.free,
                        used: m.used,
                        reserved: m.reserved,
                    })
                    .map_err(map),
                utilization: md
                    .utilization_rates()
                    .map(|u| Utilization {
                        gpu: u.gpu,
                        memory: u.memory,
                    })
                    .map_err(map),
            });
        }
        Ok(out)
    }
    fn gpm_supported(&self) -> R<bool> {
        let raw = self.raw()?;
        if raw.nvmlGpmQueryDeviceSupport.is_err() {
            return Err(GpuError::NotSupported);
        }
        let mut s = nvmlGpmSupport_t {
            version: NVML_GPM_SUPPORT_VERSION,
            isSupportedDevice: 0,
        };
        // SAFETY: checked symbol; valid handle; out-pointer to a local.
        nvml_try(unsafe { raw.nvmlGpmQueryDeviceSupport(self.h.0, &mut s) }).map_err(map)?;
        Ok(s.isSupportedDevice != 0)
    }
    fn gpm_sample(&self, gpu_instance: Option<u32>) -> R<GpmSample> {
        let raw = self.raw()?;
        if raw.nvmlGpmSampleAlloc.is_err()
            || raw.nvmlGpmSampleFree.is_err()
            || raw.nvmlGpmSampleGet.is_err()
            || (gpu_instance.is_some() && raw.nvmlGpmMigSampleGet.is_err())
        {
            return Err(GpuError::NotSupported);
        }
        let mut ptr: nvmlGpmSample_t = std::ptr::null_mut();
        // SAFETY: checked symbol; out-pointer to a local.
        nvml_try(unsafe { raw.nvmlGpmSampleAlloc(&mut ptr) }).map_err(map)?;
        let sample = RawGpmSample {
            inner: self.inner.clone(),
            ptr,
        };
        // SAFETY: checked symbols; valid handle; a sample NVML just allocated.
        let code = unsafe {
            match gpu_instance {
                None => raw.nvmlGpmSampleGet(self.h.0, ptr),
                Some(gi) => raw.nvmlGpmMigSampleGet(self.h.0, gi, ptr),
            }
        };
        nvml_try(code).map_err(map)?;
        Ok(GpmSample(Box::new(sample)))
    }
    fn gpm_metrics(&self, earlier: &GpmSample, later: &GpmSample) -> R<GpmValues> {
        let raw = self.raw()?;
        if raw.nvmlGpmMetricsGet.is_err() {
            return Err(GpuError::NotSupported);
        }
        let (Some(a), Some(b)) = (
            earlier.0.downcast_ref::<RawGpmSample>(),
            later.0.downcast_ref::<RawGpmSample>(),
        ) else {
            return Err(GpuError::Other("not an NVML GPM sample".into()));
        };
        // SAFETY: plain C struct (numbers and pointers); zero is a valid bit pattern.
        let mut g: nvmlGpmMetricsGet_t = unsafe { std::mem::zeroed() };
        g.version = NVML_GPM_METRICS_GET_VERSION;
        g.numMetrics = GpmMetric::ALL.len() as u32;
        g.sample1 = a.ptr;
        g.sample2 = b.ptr;
        for (slot, m) in g.metrics.iter_mut().zip(GpmMetric::ALL) {
            slot.metricId = m.nvml_id();
        }
        // SAFETY: checked symbol; a filled request with two samples of this GPU.
        nvml_try(unsafe { raw.nvmlGpmMetricsGet(&mut g) }).map_err(map)?;
        Ok(GpmMetric::ALL
            .iter()
            .zip(g.metrics.iter())
            .map(|(m, v)| (*m, nvml_try(v.nvmlReturn).map(|()| v.value).map_err(map)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mig_profile_from_name() {
        assert_eq!(profile_of("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), "1g.10gb");
        assert_eq!(profile_of("odd"), "odd");
    }

    #[test]
    fn errors_map_to_reasons() {
        assert_eq!(map(NvmlError::GpuLost), GpuError::GpuLost);
        assert_eq!(map(NvmlError::NotSupported), GpuError::NotSupported);
        assert_eq!(
            map(NvmlError::LibRmVersionMismatch),
            GpuError::VersionMismatch
        );
    }

    /// On this machine (no NVIDIA driver) initialisation fails cleanly, without a panic.
    #[test]
    fn init_without_library_is_a_clean_error() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            return; // a GPU machine: covered by scripts/real-gpu-check.sh
        }
        match RealBackend.init() {
            Ok(_) => panic!("NVML initialised without a driver"),
            Err(e) => assert!(
                matches!(e, GpuError::LibraryNotFound | GpuError::DriverNotLoaded),
                "{e:?}"
            ),
        }
    }
}
