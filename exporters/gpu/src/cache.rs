//! What the exporter remembers about a GPU between scrapes, so a scrape pays only NVML's
//! fast calls.
//!
//! Measured on an H200 (driver 580, `scripts/nvml_probe.py --timing`), most NVML reads take
//! 1.5–9 µs, but a few take far longer: the energy counter 3.3 ms, each maximum clock 1.4 ms,
//! the PCIe replay counter, BAR1, MIG mode, ECC mode and a `NotSupported` fan 150–170 µs, PCIe
//! throughput 20 ms per direction (NVML samples it). Read on every scrape, one after another
//! on the GPU's worker thread, they made a scrape 13–14 ms. [`CachedDevice`] wraps a
//! [`Device`] and answers:
//!
//! - **static values** (maximum clocks, temperature thresholds, maximum PCIe link, supported
//!   clock event reasons, GPM support) from the first read after each NVML
//!   (re)initialisation (a new enumeration builds new `CachedDevice`s);
//! - **permanent answers** (`NotSupported`, `NoPermission`, and `NotFound` for NVLink links a
//!   GPU does not have) remembered per (GPU, field, argument) until re-initialisation, so an
//!   unsupported field costs nothing; forgotten when MIG mode changes (a GPU in MIG mode
//!   answers `NotSupported` for its utilisation, and answers again when MIG goes off);
//! - **slow changing values** (energy counter, ECC and MIG mode, PCIe replay counter, BAR1,
//!   fans, NVLink state and error counters, MIG devices, PCIe throughput when enabled, and
//!   the GPM metrics when the `gpm` collector is on) from a per-GPU background thread that
//!   reads them every `refresh_interval` (`--gpu.refresh-interval`, default 5 s). A value is
//!   served while younger than three intervals (else the field answers `timeout`); before
//!   the first refresh a scrape reads it itself. `gpu_cached_values_age_seconds` says how
//!   old they are. dcgm-exporter serves every value this way (polled by its host engine).
//!
//! Every answer a scrape gets is also noted in the reading thread's [`ReadLog`] (see
//! [`logged`]): the per-device reads use it to report fields NVML refused
//! (`gpu_field_unavailable`, e.g. `no_permission` when not running as root) and to fail a
//! collector whose every field failed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::backend::*;

/// What is read in the background, and how often.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// How often the slow values are read again.
    pub refresh_interval: Duration,
    /// Also read PCIe throughput (NVML samples it for 20 ms per direction).
    pub pcie_throughput: bool,
    /// Also take GPM samples (the `gpm` collector).
    pub gpm: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            refresh_interval: Duration::from_secs(5),
            pcie_throughput: false,
            gpm: false,
        }
    }
}

/// How the fields of one read ended, noted by [`CachedDevice`] on the reading thread.
#[derive(Debug, Default, Clone)]
pub struct ReadLog {
    /// Fields that gave a value.
    pub ok: u32,
    /// Fields that failed (not counting `NotSupported` and absent NVLink links: the GPU's
    /// own answer that it has no such field).
    pub failed: u32,
    /// The failed fields and why, except when the whole GPU is down (lost, reset required;
    /// `gpu_up` reports that).
    pub unavailable: BTreeMap<&'static str, &'static str>,
    /// The first failure.
    pub first_error: Option<GpuError>,
}

impl ReadLog {
    /// Whether fields were read and every one of them failed.
    pub fn all_failed(&self) -> bool {
        self.failed > 0 && self.ok == 0
    }
}

thread_local! {
    static LOG: RefCell<Option<ReadLog>> = const { RefCell::new(None) };
}

/// Runs `f`, collecting the answers of every [`CachedDevice`] read it makes on this thread.
pub fn logged<T>(f: impl FnOnce() -> T) -> (T, ReadLog) {
    struct Restore(Option<ReadLog>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            LOG.with(|l| *l.borrow_mut() = prev);
        }
    }
    let prev = LOG.with(|l| l.replace(Some(ReadLog::default())));
    let restore = Restore(prev);
    let r = f();
    let log = LOG.with(|l| l.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (r, log)
}

fn note<T>(field: &'static str, r: &R<T>) {
    LOG.with(|l| {
        let mut l = l.borrow_mut();
        let Some(log) = l.as_mut() else { return };
        match r {
            Ok(_) => log.ok += 1,
            Err(GpuError::NotSupported | GpuError::NotFound) => {}
            Err(e) => {
                log.failed += 1;
                if !matches!(e, GpuError::GpuLost | GpuError::ResetRequired) {
                    log.unavailable.entry(field).or_insert(e.reason());
                }
                if log.first_error.is_none() {
                    log.first_error = Some(e.clone());
                }
            }
        }
    });
}

/// Answers that do not change until NVML is initialised again.
fn permanent(field: &str, e: &GpuError) -> bool {
    match e {
        GpuError::NotSupported | GpuError::NoPermission => true,
        GpuError::NotFound => field.starts_with("nvlink"),
        _ => false,
    }
}

/// A value read in the background, with when.
struct Slot<T>(Mutex<Option<(Instant, R<T>)>>);

impl<T: Clone> Slot<T> {
    fn get(&self) -> Option<(Instant, R<T>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn set(&self, v: R<T>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), v));
    }
    fn set_if_empty(&self, v: R<T>) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some((Instant::now(), v));
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

/// Permanent answers per (field, argument), with the MIG mode they were given in (`None`:
/// not known yet).
type Memo = HashMap<(&'static str, u32), (GpuError, Option<bool>)>;

/// One NVLink link: whether it is up, and its error counters in [`NvLinkError::ALL`] order.
type LinkSnap = (R<bool>, [R<u64>; 4]);

/// GPM metrics of the whole GPU (`gpu_instance` `None`) or one MIG GPU instance, over the
/// last refresh interval.
#[derive(Debug, Clone)]
pub struct GpmReading {
    /// The MIG GPU instance, or `None` for the whole GPU.
    pub gpu_instance: Option<u32>,
    /// The metrics, in percent.
    pub values: GpmValues,
}

#[derive(Default)]
struct Statics {
    max_clock: [Mutex<Option<u32>>; 4],
    threshold: [Mutex<Option<u32>>; 2],
    supported_throttle: Mutex<Option<u64>>,
    pcie_max: Mutex<Option<PcieLink>>,
    gpm_supported: Mutex<Option<bool>>,
}

#[derive(Default)]
struct Slots {
    energy: Slot<u64>,
    ecc: Slot<bool>,
    mig: Slot<bool>,
    replay: Slot<u32>,
    bar1: Slot<MemoryInfo>,
    fans: Slot<Vec<u32>>,
    pcie_tx: Slot<u32>,
    pcie_rx: Slot<u32>,
    mig_devices: Slot<Vec<MigDevice>>,
    nvlinks: Slot<Arc<Vec<LinkSnap>>>,
    gpm: Slot<Vec<GpmReading>>,
}

struct Shared {
    inner: Arc<dyn Device>,
    opts: CacheOptions,
    memo: Mutex<Memo>,
    statics: Statics,
    slots: Slots,
    refreshes: AtomicU64,
    last_refresh: Mutex<Option<Instant>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn memo(&self, field: &'static str, arg: u32) -> Option<GpuError> {
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(field, arg))
            .map(|(e, _)| e.clone())
    }

    fn mig_mode(&self) -> Option<bool> {
        match self.slots.mig.get() {
            Some((_, Ok(m))) => Some(m),
            _ => None,
        }
    }

    fn remember<T>(&self, field: &'static str, arg: u32, r: &R<T>) {
        if let Err(e) = r {
            if permanent(field, e) {
                let mig = self.mig_mode();
                self.memo
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((field, arg), (e.clone(), mig));
            }
        }
    }

    /// A call through the memo of permanent answers.
    fn call<T>(&self, field: &'static str, arg: u32, f: impl FnOnce() -> R<T>) -> R<T> {
        if let Some(e) = self.memo(field, arg) {
            return Err(e);
        }
        let r = f();
        self.remember(field, arg, &r);
        r
    }

    fn max_age(&self) -> Duration {
        self.opts.refresh_interval * 3
    }

    fn links(&self) -> Arc<Vec<LinkSnap>> {
        let d = &self.inner;
        let links = (0..NVLINK_MAX_LINKS)
            .map(|l| {
                let active = self.call("nvlink_active", l, || d.nvlink_active(l));
                let errs = NvLinkError::ALL.map(|e| match &active {
                    Err(err) => Err(err.clone()),
                    Ok(_) => self.call("nvlink_errors", l, || d.nvlink_errors(l, e)),
                });
                (active, errs)
            })
            .collect();
        Arc::new(links)
    }

    fn gpm(
        &self,
        mig: &R<bool>,
        migs: &R<Vec<MigDevice>>,
        prev: &mut HashMap<Option<u32>, GpmSample>,
    ) -> R<Vec<GpmReading>> {
        let d = &self.inner;
        let supported = self.call("gpm_supported", 0, || d.gpm_supported())?;
        if !supported {
            return Err(GpuError::NotSupported);
        }
        let mut targets = vec![None];
        if let (Ok(true), Ok(m)) = (mig, migs) {
            let gis: BTreeSet<u32> = m.iter().map(|m| m.gpu_instance_id).collect();
            targets.extend(gis.into_iter().map(Some));
        }
        prev.retain(|k, _| targets.contains(k));
        let mut out = Vec::new();
        let mut first_err = None;
        for gi in targets {
            match d.gpm_sample(gi) {
                Ok(s) => {
                    if let Some(p) = prev.get(&gi) {
                        match d.gpm_metrics(p, &s) {
                            Ok(values) => out.push(GpmReading {
                                gpu_instance: gi,
                                values,
                            }),
                            Err(e) => {
                                first_err.get_or_insert(e);
                            }
                        }
                    }
                    prev.insert(gi, s);
                }
                Err(e) => {
                    prev.remove(&gi);
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if out.is_empty() && prev.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// Reads every slow value once.
    fn refresh(&self, gpm_prev: &mut HashMap<Option<u32>, GpmSample>) {
        let d = &self.inner;
        let s = &self.slots;
        s.energy
            .set(self.call("total_energy", 0, || d.total_energy()));
        s.ecc.set(self.call("ecc_enabled", 0, || d.ecc_enabled()));
        s.replay
            .set(self.call("pcie_replay_counter", 0, || d.pcie_replay_counter()));
        s.bar1
            .set(self.call("bar1_memory_info", 0, || d.bar1_memory_info()));
        s.fans.set(self.call("fan_speeds", 0, || d.fan_speeds()));
        let mig = self.call("mig_enabled", 0, || d.mig_enabled());
        if let Ok(now) = &mig {
            if let Some((_, Ok(before))) = s.mig.get() {
                if before != *now {
                    tracing::info!(mig = now, "MIG mode changed");
                }
            }
            // Utilisation and others answer differently in MIG mode: forget the answers
            // given in another (or an unknown) mode.
            self.memo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, (_, at)| *at == Some(*now));
        }
        s.mig.set(mig.clone());
        let migs = match mig {
            Ok(true) => self.call("mig_devices", 0, || d.mig_devices()),
            _ => Ok(Vec::new()),
        };
        s.mig_devices.set(migs.clone());
        if self.opts.pcie_throughput {
            s.pcie_tx.set(self.call("pcie_throughput", 0, || {
                d.pcie_throughput(PcieDirection::Tx)
            }));
            s.pcie_rx.set(self.call("pcie_throughput", 1, || {
                d.pcie_throughput(PcieDirection::Rx)
            }));
        }
        s.nvlinks.set(Ok(self.links()));
        if self.opts.gpm {
            s.gpm.set(self.gpm(&mig, &migs, gpm_prev));
        }
        *self.last_refresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.refreshes.fetch_add(1, Ordering::AcqRel);
    }

    /// Sleeps up to `d`; true when asked to stop.
    fn sleep(&self, d: Duration) -> bool {
        let g = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .wake
            .wait_timeout_while(g, d, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// A [`Device`] with the caching above, and its background refresh thread (which ends when
/// the `CachedDevice` is dropped, i.e. at the next enumeration).
pub struct CachedDevice {
    shared: Arc<Shared>,
}

impl CachedDevice {
    /// Wraps `inner` (the GPU with NVML index `index`) and starts its refresh thread.
    pub fn new(inner: Arc<dyn Device>, index: u32, opts: CacheOptions) -> Self {
        let shared = Arc::new(Shared {
            inner,
            opts,
            memo: Mutex::new(HashMap::new()),
            statics: Statics::default(),
            slots: Slots::default(),
            refreshes: AtomicU64::new(0),
            last_refresh: Mutex::new(None),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let sh = shared.clone();
        let r = std::thread::Builder::new()
            .name(format!("gpu{index}-refresh"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut gpm_prev = HashMap::new();
                // The first GPM values need two samples: take the second one soon.
                let mut wait = opts.refresh_interval.min(Duration::from_secs(1));
                loop {
                    sh.refresh(&mut gpm_prev);
                    if sh.sleep(wait) {
                        return;
                    }
                    wait = opts.refresh_interval;
                }
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start a GPU refresh thread; slow values are read by scrapes");
        }
        CachedDevice { shared }
    }

    /// Background refreshes completed so far.
    pub fn refreshes(&self) -> u64 {
        self.shared.refreshes.load(Ordering::Acquire)
    }

    /// How long ago the background values were read (`None` before the first refresh).
    pub fn age(&self) -> Option<Duration> {
        self.shared
            .last_refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// The GPM metrics over the last refresh interval (empty until two samples were taken).
    pub fn gpm(&self) -> R<Vec<GpmReading>> {
        self.cached("gpm", 0, &self.shared.slots.gpm, || Ok(Vec::new()))
    }

    fn direct<T>(&self, field: &'static str, arg: u32, f: impl FnOnce() -> R<T>) -> R<T> {
        let r = self.shared.call(field, arg, f);
        note(field, &r);
        r
    }

    fn fixed<T: Clone>(
        &self,
        field: &'static str,
        arg: u32,
        cell: &Mutex<Option<T>>,
        f: impl FnOnce() -> R<T>,
    ) -> R<T> {
        let r = self.shared.call(field, arg, || {
            let mut c = cell.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = c.as_ref() {
                return Ok(v.clone());
            }
            let r = f();
            if let Ok(v) = &r {
                *c = Some(v.clone());
            }
            r
        });
        note(field, &r);
        r
    }

    fn cached<T: Clone>(
        &self,
        field: &'static str,
        arg: u32,
        slot: &Slot<T>,
        read: impl FnOnce() -> R<T>,
    ) -> R<T> {
        let sh = &self.shared;
        let r = match sh.memo(field, arg) {
            Some(e) => Err(e),
            None => match slot.get() {
                Some((at, v)) if at.elapsed() <= sh.max_age() => v,
                Some(_) => Err(GpuError::Timeout),
                None => {
                    let v = sh.call(field, arg, read);
                    slot.set_if_empty(v.clone());
                    v
                }
            },
        };
        note(field, &r);
        r
    }

    fn link(&self, link: u32) -> R<LinkSnap> {
        let sh = &self.shared;
        self.cached_quiet(&sh.slots.nvlinks, || Ok(sh.links()))
            .and_then(|l| l.get(link as usize).cloned().ok_or(GpuError::NotFound))
    }

    fn cached_quiet<T: Clone>(&self, slot: &Slot<T>, read: impl FnOnce() -> R<T>) -> R<T> {
        match slot.get() {
            Some((at, v)) if at.elapsed() <= self.shared.max_age() => v,
            Some(_) => Err(GpuError::Timeout),
            None => {
                let v = read();
                slot.set_if_empty(v.clone());
                v
            }
        }
    }
}

impl Drop for CachedDevice {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
    }
}

fn clock_index(c: Clock) -> usize {
    match c {
        Clock::Graphics => 0,
        Clock::Sm => 1,
        Clock::Memory => 2,
        Clock::Video => 3,
    }
}

impl Device for CachedDevice {
    fn uuid(&self) -> R<String> {
        self.direct("uuid", 0, || self.shared.inner.uuid())
    }
    fn name(&self) -> R<String> {
        self.direct("name", 0, || self.shared.inner.name())
    }
    fn pci_bus_id(&self) -> R<String> {
        self.direct("pci_bus_id", 0, || self.shared.inner.pci_bus_id())
    }
    fn serial(&self) -> R<String> {
        self.direct("serial", 0, || self.shared.inner.serial())
    }
    fn vbios_version(&self) -> R<String> {
        self.direct("vbios_version", 0, || self.shared.inner.vbios_version())
    }
    fn minor_number(&self) -> R<u32> {
        self.direct("minor_number", 0, || self.shared.inner.minor_number())
    }
    fn performance_state(&self) -> R<u32> {
        self.direct("performance_state", 0, || {
            self.shared.inner.performance_state()
        })
    }
    fn utilization(&self) -> R<Utilization> {
        self.direct("utilization", 0, || self.shared.inner.utilization())
    }
    fn encoder_utilization(&self) -> R<u32> {
        self.direct("encoder_utilization", 0, || {
            self.shared.inner.encoder_utilization()
        })
    }
    fn decoder_utilization(&self) -> R<u32> {
        self.direct("decoder_utilization", 0, || {
            self.shared.inner.decoder_utilization()
        })
    }
    fn memory_info(&self) -> R<MemoryInfo> {
        self.direct("memory_info", 0, || self.shared.inner.memory_info())
    }
    fn bar1_memory_info(&self) -> R<MemoryInfo> {
        self.cached("bar1_memory_info", 0, &self.shared.slots.bar1, || {
            self.shared.inner.bar1_memory_info()
        })
    }
    fn temperature(&self) -> R<u32> {
        self.direct("temperature", 0, || self.shared.inner.temperature())
    }
    fn memory_temperature(&self) -> R<u32> {
        self.direct("memory_temperature", 0, || {
            self.shared.inner.memory_temperature()
        })
    }
    fn temperature_threshold(&self, t: TempThreshold) -> R<u32> {
        let i = match t {
            TempThreshold::Slowdown => 0,
            TempThreshold::Shutdown => 1,
        };
        self.fixed(
            "temperature_threshold",
            i as u32,
            &self.shared.statics.threshold[i],
            || self.shared.inner.temperature_threshold(t),
        )
    }
    fn fan_speeds(&self) -> R<Vec<u32>> {
        self.cached("fan_speeds", 0, &self.shared.slots.fans, || {
            self.shared.inner.fan_speeds()
        })
    }
    fn power_usage(&self) -> R<u32> {
        self.direct("power_usage", 0, || self.shared.inner.power_usage())
    }
    fn power_limit(&self) -> R<u32> {
        self.direct("power_limit", 0, || self.shared.inner.power_limit())
    }
    fn total_energy(&self) -> R<u64> {
        self.cached("total_energy", 0, &self.shared.slots.energy, || {
            self.shared.inner.total_energy()
        })
    }
    fn clock(&self, c: Clock) -> R<u32> {
        self.direct("clock", clock_index(c) as u32, || {
            self.shared.inner.clock(c)
        })
    }
    fn max_clock(&self, c: Clock) -> R<u32> {
        let i = clock_index(c);
        self.fixed(
            "max_clock",
            i as u32,
            &self.shared.statics.max_clock[i],
            || self.shared.inner.max_clock(c),
        )
    }
    fn throttle_reasons(&self) -> R<u64> {
        self.direct("throttle_reasons", 0, || {
            self.shared.inner.throttle_reasons()
        })
    }
    fn supported_throttle_reasons(&self) -> R<u64> {
        self.fixed(
            "supported_throttle_reasons",
            0,
            &self.shared.statics.supported_throttle,
            || self.shared.inner.supported_throttle_reasons(),
        )
    }
    fn ecc_enabled(&self) -> R<bool> {
        self.cached("ecc_enabled", 0, &self.shared.slots.ecc, || {
            self.shared.inner.ecc_enabled()
        })
    }
    fn ecc_errors(&self, t: EccType, c: EccCounter) -> R<u64> {
        let arg = match (t, c) {
            (EccType::Corrected, EccCounter::Volatile) => 0,
            (EccType::Uncorrected, EccCounter::Volatile) => 1,
            (EccType::Corrected, EccCounter::Aggregate) => 2,
            (EccType::Uncorrected, EccCounter::Aggregate) => 3,
        };
        self.direct("ecc_errors", arg, || self.shared.inner.ecc_errors(t, c))
    }
    fn retired_pages(&self, c: RetirementCause) -> R<u32> {
        let arg = match c {
            RetirementCause::MultipleSingleBit => 0,
            RetirementCause::DoubleBit => 1,
        };
        self.direct("retired_pages", arg, || self.shared.inner.retired_pages(c))
    }
    fn retired_pages_pending(&self) -> R<bool> {
        self.direct("retired_pages_pending", 0, || {
            self.shared.inner.retired_pages_pending()
        })
    }
    fn remapped_rows(&self) -> R<RemappedRows> {
        self.direct("remapped_rows", 0, || self.shared.inner.remapped_rows())
    }
    fn pcie_replay_counter(&self) -> R<u32> {
        self.cached("pcie_replay_counter", 0, &self.shared.slots.replay, || {
            self.shared.inner.pcie_replay_counter()
        })
    }
    fn pcie_throughput(&self, d: PcieDirection) -> R<u32> {
        let (arg, slot) = match d {
            PcieDirection::Tx => (0, &self.shared.slots.pcie_tx),
            PcieDirection::Rx => (1, &self.shared.slots.pcie_rx),
        };
        self.cached("pcie_throughput", arg, slot, || {
            self.shared.inner.pcie_throughput(d)
        })
    }
    fn pcie_link(&self) -> R<PcieLink> {
        self.direct("pcie_link", 0, || self.shared.inner.pcie_link())
    }
    fn pcie_link_max(&self) -> R<PcieLink> {
        self.fixed("pcie_link_max", 0, &self.shared.statics.pcie_max, || {
            self.shared.inner.pcie_link_max()
        })
    }
    fn nvlink_active(&self, link: u32) -> R<bool> {
        let r = self.link(link).and_then(|l| l.0);
        note("nvlink_active", &r);
        r
    }
    fn nvlink_errors(&self, link: u32, e: NvLinkError) -> R<u64> {
        let i = NvLinkError::ALL.iter().position(|k| *k == e).unwrap_or(0);
        let r = self.link(link).and_then(|l| l.1[i].clone());
        note("nvlink_errors", &r);
        r
    }
    fn compute_processes(&self) -> R<Vec<Process>> {
        self.direct("compute_processes", 0, || {
            self.shared.inner.compute_processes()
        })
    }
    fn mig_enabled(&self) -> R<bool> {
        self.cached("mig_enabled", 0, &self.shared.slots.mig, || {
            self.shared.inner.mig_enabled()
        })
    }
    fn mig_devices(&self) -> R<Vec<MigDevice>> {
        self.cached(
            "mig_devices",
            0,
            &self.shared.slots.mig_devices,
            || match self.shared.inner.mig_enabled() {
                Ok(true) => self.shared.inner.mig_devices(),
                Ok(false) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
        )
    }
    fn gpm_supported(&self) -> R<bool> {
        self.fixed(
            "gpm_supported",
            0,
            &self.shared.statics.gpm_supported,
            || self.shared.inner.gpm_supported(),
        )
    }
    fn gpm_sample(&self, gpu_instance: Option<u32>) -> R<GpmSample> {
        self.shared.inner.gpm_sample(gpu_instance)
    }
    fn gpm_metrics(&self, earlier: &GpmSample, later: &GpmSample) -> R<GpmValues> {
        self.shared.inner.gpm_metrics(earlier, later)
    }
}
