//! The GPUs the exporter watches, and NVML's life cycle.
//!
//! [`GpuSet`] owns the NVML handle. A background thread initialises NVML, retrying with
//! exponential backoff while the library or driver is missing (so the exporter starts on a
//! node whose driver is not loaded yet, and on nodes without a GPU serves `gpu_nvml_up 0`),
//! checks NVML's health every few seconds, and initialises it again after a driver reload.
//! A changed GPU count, or a GPU that can be opened again after a reset, is enumerated again
//! through the NVML handle it has (no new `nvmlInit`). Only when every GPU fails its probe
//! (what a driver reload looks like through old handles) is a fresh NVML tried, with a
//! backoff from the health interval up to `reinit_max`, and adopted only if a GPU answers
//! through it; so a single lost GPU does not re-initialise NVML (and restart the XID watch)
//! every few seconds. Each enumeration starts an XID event thread ([`crate::events`]).
//!
//! Every GPU's device is wrapped in a [`CachedDevice`] (static values, remembered
//! `NotSupported`, slow values refreshed in the background). Collectors read devices through
//! [`GpuSet::read_each`]: every device has its own worker thread that runs its reads in turn,
//! and each (device, collector) pair has at most one read outstanding, like the kit's scraper
//! does per collector. A GPU that hangs in the driver delays nothing but its own samples, and
//! is reported as `gpu_up{reason="timeout"} 0`.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use hpcmon_kit::{Context, MetricSet};

use crate::backend::{Backend, Device, GpuError, Nvml};
use crate::cache::{logged, CacheOptions, CachedDevice, ReadLog};
use crate::events::{self, XidStore};

/// Timing of the background NVML thread, and what the devices read in the background.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// First retry delay after a failed initialisation.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often a healthy NVML is checked (device count, lost devices).
    pub health_interval: Duration,
    /// Delay before the event thread tries again after an error.
    pub event_retry: Duration,
    /// Longest wait between tries of a fresh NVML while every GPU fails its probe.
    pub reinit_max: Duration,
    /// What each GPU reads in the background, and how often.
    pub cache: CacheOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            health_interval: Duration::from_secs(10),
            event_retry: Duration::from_secs(10),
            reinit_max: Duration::from_secs(600),
            cache: CacheOptions::default(),
        }
    }
}

/// One GPU as enumerated, with its static identity.
pub struct Gpu {
    /// NVML index.
    pub index: u32,
    /// `GPU-...` UUID (remembered across re-initialisations; `index-N` if never known).
    pub uuid: String,
    /// The device, or `None` if the GPU failed at enumeration (see `enum_error`).
    pub dev: Option<Arc<CachedDevice>>,
    /// Why the handle could not be had.
    pub enum_error: Option<GpuError>,
    /// Product name.
    pub name: String,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// Serial number.
    pub serial: String,
    /// VBIOS version.
    pub vbios_version: String,
    /// `/dev/nvidiaN` minor number.
    pub minor_number: Option<u32>,
    /// The last liveness probe's error (set by the `info` collector).
    pub last_probe: Mutex<Option<GpuError>>,
    busy: Mutex<HashSet<&'static str>>,
    kick: Arc<Kick>,
    worker: Mutex<Option<mpsc::Sender<Job>>>,
}

/// A read queued on a GPU's worker thread.
type Job = Box<dyn FnOnce() + Send>;

fn spawn_worker(index: u32) -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("gpu{index}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            for job in rx {
                job();
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start a GPU worker thread"))
        .ok()?;
    Some(tx)
}

impl Gpu {
    fn new(index: u32, uuid: String, kick: Arc<Kick>) -> Self {
        Gpu {
            index,
            uuid,
            dev: None,
            enum_error: None,
            name: String::new(),
            pci_bus_id: String::new(),
            serial: String::new(),
            vbios_version: String::new(),
            minor_number: None,
            last_probe: Mutex::new(None),
            busy: Mutex::new(HashSet::new()),
            kick,
            worker: Mutex::new(None),
        }
    }

    /// `[("uuid", uuid)]`, the label every per-GPU family carries.
    pub fn labels(&self) -> [(&'static str, &str); 1] {
        [("uuid", self.uuid.as_str())]
    }

    /// The value of a read, or `None` when it failed. An error that means NVML must be
    /// initialised again (driver reloaded) asks the background thread to do so.
    pub fn ok<T>(&self, r: Result<T, GpuError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                if e.needs_reinit() {
                    self.kick.request_reinit();
                }
                None
            }
        }
    }

    /// Queues `job` on this GPU's worker thread (started on first use; it ends when the
    /// GPU is dropped). Reads of one GPU run one after another, so a call hung in the
    /// driver holds up only this GPU's reads; `begin` keeps the queue to one per collector.
    fn submit(&self, job: Job) -> bool {
        let mut w = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = spawn_worker(self.index);
        }
        let Some(tx) = w.as_ref() else { return false };
        match tx.send(job) {
            Ok(()) => true,
            Err(mpsc::SendError(job)) => {
                // The worker is gone (cannot happen short of an abort); start another.
                *w = spawn_worker(self.index);
                w.as_ref().is_some_and(|tx| tx.send(job).is_ok())
            }
        }
    }

    fn begin(&self, collector: &'static str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(collector)
    }

    fn end(&self, collector: &'static str) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(collector);
    }
}

struct BusyGuard(Arc<Gpu>, &'static str);
impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.end(self.1);
    }
}

/// A per-device read: fills the set with one GPU's samples.
pub type ReadFn = Arc<dyn Fn(&Gpu, &mut MetricSet) + Send + Sync>;

/// How one device's read ended in one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Returned in time with at least one field (or nothing to read).
    Done,
    /// Returned in time, but every field it read failed (the reason of the first).
    Failed(&'static str),
    /// Still running at the deadline.
    TimedOut,
    /// The previous read of this collector on this device has not returned yet.
    Busy,
}

/// One device's read in one scrape.
pub struct GpuRead<T> {
    /// The GPU.
    pub gpu: Arc<Gpu>,
    /// How the read ended.
    pub outcome: ReadOutcome,
    /// What it returned (when it returned in time).
    pub value: Option<T>,
    /// How its fields ended (empty unless it returned in time).
    pub log: ReadLog,
}

/// What NVML looks like right now.
pub struct Snapshot {
    /// NVML initialised.
    pub up: bool,
    /// Why it is not (the last initialisation error).
    pub error: Option<GpuError>,
    /// Driver version.
    pub driver_version: String,
    /// CUDA driver version, e.g. `12.4`.
    pub cuda_version: String,
    /// NVML version.
    pub nvml_version: String,
    /// The GPUs.
    pub gpus: Vec<Arc<Gpu>>,
    /// NVML initialisations adopted so far.
    pub inits: u64,
    /// Enumerations so far (each initialisation enumerates; so can a health check).
    pub enumerations: u64,
}

impl Snapshot {
    fn down(e: GpuError, prev: &Snapshot) -> Self {
        Snapshot {
            up: false,
            error: Some(e),
            driver_version: String::new(),
            cuda_version: String::new(),
            nvml_version: String::new(),
            gpus: Vec::new(),
            inits: prev.inits,
            enumerations: prev.enumerations,
        }
    }
}

#[derive(Default)]
struct KickState {
    reinit: bool,
    stop: bool,
}

/// Wakes the background thread early (re-initialise, or stop).
#[derive(Default)]
struct Kick {
    m: Mutex<KickState>,
    cv: Condvar,
}

impl Kick {
    fn request_reinit(&self) {
        self.m.lock().unwrap_or_else(|e| e.into_inner()).reinit = true;
        self.cv.notify_all();
    }
    fn stop(&self) {
        self.m.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.cv.notify_all();
    }
    /// Sleeps up to `d`; returns `(stop, reinit)` and clears the reinit request.
    fn wait(&self, d: Duration) -> (bool, bool) {
        let deadline = Instant::now() + d;
        let mut g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if g.stop || g.reinit {
                let r = (g.stop, g.reinit);
                g.reinit = false;
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (false, false);
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What the health check found.
enum Health {
    Ok,
    /// NVML works, but the GPUs should be enumerated again (through the same handle).
    Reenumerate(String),
    /// Every GPU fails its probe: maybe the driver was reloaded underneath.
    AllFailed,
    /// NVML must be initialised again.
    Down(GpuError),
}

/// The GPUs and NVML's state, shared by every collector.
pub struct GpuSet {
    backend: Arc<dyn Backend>,
    opts: Options,
    nvml: Mutex<Option<Arc<dyn Nvml>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    events_stop: Mutex<Option<Arc<AtomicBool>>>,
    known_uuids: Mutex<std::collections::HashMap<u32, String>>,
    /// GPUs enumerated again because they answered after falling off the bus (once each
    /// per NVML initialisation, so one that answers but cannot be registered for events
    /// does not cause an enumeration every health check).
    lost_retried: Mutex<HashSet<String>>,
    kick: Arc<Kick>,
    /// XIDs seen by the event thread, and which GPUs it watches.
    pub xids: Arc<XidStore>,
}

impl GpuSet {
    /// A set over `backend`; nothing is initialised until [`start`](Self::start) or
    /// [`init_now`](Self::init_now).
    pub fn new(backend: Arc<dyn Backend>, opts: Options) -> Arc<Self> {
        Arc::new(GpuSet {
            backend,
            opts,
            nvml: Mutex::new(None),
            snapshot: RwLock::new(Arc::new(Snapshot {
                up: false,
                error: Some(GpuError::Uninitialized),
                driver_version: String::new(),
                cuda_version: String::new(),
                nvml_version: String::new(),
                gpus: Vec::new(),
                inits: 0,
                enumerations: 0,
            })),
            events_stop: Mutex::new(None),
            known_uuids: Mutex::new(std::collections::HashMap::new()),
            lost_retried: Mutex::new(HashSet::new()),
            kick: Arc::new(Kick::default()),
            xids: Arc::new(XidStore::default()),
        })
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the background thread to initialise NVML again.
    pub fn request_reinit(&self) {
        self.kick.request_reinit();
    }

    /// Starts the background thread (initialisation with backoff, health checks). It ends
    /// when the set is dropped or [`stop`](Self::stop) is called.
    pub fn start(self: &Arc<Self>) {
        let weak: Weak<GpuSet> = Arc::downgrade(self);
        let kick = self.kick.clone();
        let opts = self.opts;
        let r = std::thread::Builder::new()
            .name("nvml-init".into())
            .spawn(move || {
                let mut backoff = opts.retry_min;
                let mut reinit_delay = opts.health_interval;
                let mut next_reinit: Option<Instant> = None;
                loop {
                    let Some(set) = weak.upgrade() else { return };
                    let wait = if !set.snapshot().up {
                        match set.init_now() {
                            Ok(()) => {
                                backoff = opts.retry_min;
                                opts.health_interval
                            }
                            Err(_) => {
                                let w = backoff;
                                backoff = (backoff * 2).min(opts.retry_max);
                                w
                            }
                        }
                    } else {
                        match set.check_health() {
                            Health::Ok => {
                                reinit_delay = opts.health_interval;
                                next_reinit = None;
                                opts.health_interval
                            }
                            Health::Reenumerate(why) => {
                                tracing::info!(%why, "enumerating GPUs again");
                                set.reenumerate();
                                opts.health_interval
                            }
                            Health::AllFailed => {
                                let now = Instant::now();
                                let due = match next_reinit {
                                    None => true,
                                    Some(t) => now >= t,
                                };
                                if due {
                                    let first = next_reinit.is_none();
                                    if set.try_fresh_nvml(first) {
                                        reinit_delay = opts.health_interval;
                                        next_reinit = None;
                                    } else {
                                        next_reinit = Some(now + reinit_delay);
                                        reinit_delay = (reinit_delay * 2).min(opts.reinit_max);
                                    }
                                }
                                opts.health_interval
                            }
                            Health::Down(e) => {
                                tracing::warn!(error = %e, "NVML unhealthy; initialising again");
                                set.mark_down(e);
                                Duration::ZERO
                            }
                        }
                    };
                    drop(set);
                    let (stop, reinit) = kick.wait(wait);
                    if stop {
                        return;
                    }
                    if reinit {
                        if let Some(set) = weak.upgrade() {
                            if set.snapshot().up {
                                tracing::info!("NVML reported a driver change; initialising again");
                                set.mark_down(GpuError::Uninitialized);
                            }
                        }
                        backoff = opts.retry_min;
                    }
                }
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start the NVML thread");
        }
    }

    /// Stops the background and event threads.
    pub fn stop(&self) {
        self.kick.stop();
        if let Some(s) = self
            .events_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            s.store(true, Ordering::Release);
        }
    }

    /// Initialises NVML and enumerates the GPUs now (the background thread calls this).
    pub fn init_now(&self) -> Result<(), GpuError> {
        match self.backend.init().and_then(|n| self.adopt(n, true)) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "NVML initialisation failed");
                let prev = self.snapshot();
                self.set_snapshot(Snapshot::down(e.clone(), &prev));
                Err(e)
            }
        }
    }

    /// Enumerates the GPUs again through the current NVML handle.
    fn reenumerate(&self) {
        let nvml = self.nvml.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(nvml) = nvml {
            if let Err(e) = self.adopt(nvml, false) {
                tracing::warn!(error = %e, "enumerating the GPUs again failed");
                self.mark_down(e);
            }
        }
    }

    /// While every GPU fails its probe: initialises a fresh NVML and adopts it only if a GPU
    /// answers through it (the driver was reloaded underneath); else drops it.
    fn try_fresh_nvml(&self, first: bool) -> bool {
        if first {
            tracing::info!("every GPU fails its probe; trying a fresh NVML (then with backoff)");
        }
        let Ok(candidate) = self.backend.init() else {
            return false;
        };
        let answers = (0..candidate.device_count().unwrap_or(0)).any(|i| {
            candidate
                .device(i)
                .is_ok_and(|d| matches!(d.performance_state(), Ok(_) | Err(GpuError::NotSupported)))
        });
        if !answers {
            tracing::debug!("no GPU answers through a fresh NVML either; keeping the current one");
            return false;
        }
        tracing::info!("GPUs answer through a fresh NVML; adopting it");
        self.adopt(candidate, true).is_ok()
    }

    fn set_snapshot(&self, s: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    fn open(&self, nvml: &dyn Nvml, index: u32, fallback: String) -> Gpu {
        match nvml.device(index) {
            Ok(dev) => {
                let uuid = dev.uuid().unwrap_or(fallback);
                let mut g = Gpu::new(index, uuid, self.kick.clone());
                g.name = dev.name().unwrap_or_default();
                g.pci_bus_id = dev.pci_bus_id().unwrap_or_default();
                g.serial = dev.serial().unwrap_or_default();
                g.vbios_version = dev.vbios_version().unwrap_or_default();
                g.minor_number = dev.minor_number().ok();
                g.dev = Some(Arc::new(CachedDevice::new(dev, index, self.opts.cache)));
                g
            }
            Err(e) => {
                tracing::warn!(index, error = %e, "GPU cannot be opened");
                let mut g = Gpu::new(index, fallback, self.kick.clone());
                g.enum_error = Some(e);
                g
            }
        }
    }

    /// Enumerates the GPUs through `nvml`, starts their XID watch and publishes them.
    fn adopt(&self, nvml: Arc<dyn Nvml>, new_init: bool) -> Result<(), GpuError> {
        let count = nvml.device_count()?;
        let driver_version = nvml.driver_version().unwrap_or_default();
        let nvml_version = nvml.nvml_version().unwrap_or_default();
        let cuda_version = nvml
            .cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default();
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let fallback = self
                .known_uuids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&index)
                .cloned()
                .unwrap_or_else(|| format!("index-{index}"));
            let gpu = self.open(&*nvml, index, fallback);
            if gpu.dev.is_some() {
                self.known_uuids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(index, gpu.uuid.clone());
            }
            gpus.push(Arc::new(gpu));
        }
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(old) = self
            .events_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(stop.clone())
        {
            old.store(true, Ordering::Release);
        }
        let watch = gpus
            .iter()
            .filter(|g| g.dev.is_some())
            .map(|g| (g.index, g.uuid.clone()))
            .collect();
        let down = gpus
            .iter()
            .filter_map(|g| g.enum_error.clone().map(|e| (g.uuid.clone(), e)))
            .collect();
        events::spawn(
            nvml.clone(),
            watch,
            down,
            stop,
            self.xids.clone(),
            self.opts.event_retry,
        );
        *self.nvml.lock().unwrap_or_else(|e| e.into_inner()) = Some(nvml);
        let prev = self.snapshot();
        let inits = prev.inits + u64::from(new_init);
        if new_init {
            self.lost_retried
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            tracing::info!(gpus = count, %driver_version, %cuda_version, "NVML initialised");
        }
        self.set_snapshot(Snapshot {
            up: true,
            error: None,
            driver_version,
            cuda_version,
            nvml_version,
            gpus,
            inits,
            enumerations: prev.enumerations + 1,
        });
        Ok(())
    }

    /// Forgets the NVML handle (a later initialisation replaces it).
    fn mark_down(&self, e: GpuError) {
        if let Some(s) = self
            .events_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            s.store(true, Ordering::Release);
        }
        *self.nvml.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let prev = self.snapshot();
        self.set_snapshot(Snapshot::down(e, &prev));
    }

    /// Whether NVML still answers the way it did at enumeration.
    fn check_health(&self) -> Health {
        let Some(nvml) = self.nvml.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Health::Down(GpuError::Uninitialized);
        };
        let snap = self.snapshot();
        let count = match nvml.device_count() {
            Ok(c) => c,
            Err(e) => return Health::Down(e),
        };
        if count as usize != snap.gpus.len() {
            return Health::Reenumerate(format!(
                "GPU count changed from {} to {count}",
                snap.gpus.len()
            ));
        }
        // A GPU that could not be opened may be back after a reset: try to open it through
        // the current handle (cheap; nothing changes while it still fails).
        for g in snap.gpus.iter().filter(|g| g.dev.is_none()) {
            if nvml.device(g.index).is_ok() {
                return Health::Reenumerate(format!("GPU {} can be opened again", g.index));
            }
        }
        // A GPU left out of the XID watch after falling off the bus answers again.
        let status = self.xids.status();
        for g in &snap.gpus {
            let (Some(dev), Some(Some(GpuError::GpuLost))) = (&g.dev, status.get(&g.uuid)) else {
                continue;
            };
            if matches!(dev.performance_state(), Ok(_) | Err(GpuError::NotSupported))
                && self
                    .lost_retried
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(g.uuid.clone())
            {
                return Health::Reenumerate(format!(
                    "GPU {} answers again; watching its XIDs",
                    g.index
                ));
            }
        }
        // Every probe failing is what a driver reload looks like through old handles.
        let all_failed = !snap.gpus.is_empty()
            && snap.gpus.iter().all(|g| {
                g.dev.is_none()
                    || matches!(
                        *g.last_probe.lock().unwrap_or_else(|e| e.into_inner()),
                        Some(GpuError::GpuLost | GpuError::Other(_))
                    )
            })
            && snap.gpus.iter().any(|g| g.dev.is_some());
        if all_failed {
            return Health::AllFailed;
        }
        Health::Ok
    }

    /// Runs `f` on every openable GPU, each on its own worker thread, and waits for them
    /// until shortly before the scrape's deadline. A read still running is not started
    /// again by later scrapes (reported `Busy`). A read whose every field failed is
    /// `Failed` (see [`ReadLog`]).
    pub fn read_each_with<T: Send + 'static>(
        &self,
        ctx: &Context,
        collector: &'static str,
        f: Arc<dyn Fn(&Gpu) -> T + Send + Sync>,
    ) -> Vec<GpuRead<T>> {
        let snap = self.snapshot();
        let (tx, rx) = mpsc::channel::<(usize, Option<T>, ReadLog)>();
        let mut reads: Vec<GpuRead<T>> = Vec::new();
        let mut pending = 0;
        for gpu in snap.gpus.iter().filter(|g| g.dev.is_some()) {
            let slot = reads.len();
            if !gpu.begin(collector) {
                reads.push(GpuRead {
                    gpu: gpu.clone(),
                    outcome: ReadOutcome::Busy,
                    value: None,
                    log: ReadLog::default(),
                });
                continue;
            }
            reads.push(GpuRead {
                gpu: gpu.clone(),
                outcome: ReadOutcome::TimedOut,
                value: None,
                log: ReadLog::default(),
            });
            let guard = BusyGuard(gpu.clone(), collector);
            let f = f.clone();
            let tx = tx.clone();
            let submitted = gpu.submit(Box::new(move || {
                let guard = guard;
                let (r, log) =
                    logged(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(&guard.0))));
                let value = match r {
                    Ok(v) => Some(v),
                    Err(p) => {
                        tracing::error!(collector, uuid = %guard.0.uuid, panic = ?p.downcast_ref::<&str>(), "GPU read panicked");
                        None
                    }
                };
                drop(guard);
                let _ = tx.send((slot, value, log));
            }));
            if submitted {
                pending += 1;
            } else {
                tracing::error!("cannot start a GPU read thread");
                reads[slot].outcome = ReadOutcome::Busy;
            }
        }
        drop(tx);
        // Stop waiting a little before the kit does, so the finished devices are served.
        let margin = (ctx.remaining() / 10).min(Duration::from_millis(250));
        let wait_until = ctx.deadline.checked_sub(margin).unwrap_or(ctx.deadline);
        while pending > 0 {
            let left = wait_until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((slot, value, log)) => {
                    let r = &mut reads[slot];
                    r.outcome = match (&value, &log.first_error) {
                        (None, _) => ReadOutcome::Failed("panic"),
                        (Some(_), Some(e)) if log.all_failed() => ReadOutcome::Failed(e.reason()),
                        _ => ReadOutcome::Done,
                    };
                    r.value = value;
                    r.log = log;
                    pending -= 1;
                }
                Err(_) => break,
            }
        }
        for r in &reads {
            if matches!(r.outcome, ReadOutcome::TimedOut | ReadOutcome::Busy) {
                tracing::warn!(collector, uuid = %r.gpu.uuid, outcome = ?r.outcome, "GPU read did not finish in time");
            }
        }
        reads
    }

    /// [`read_each_with`](Self::read_each_with) for reads that produce samples: returns the
    /// merged samples, plus `gpu_field_unavailable{uuid,collector,field,reason} 1` for every
    /// field NVML refused (other than `NotSupported`, and other than a GPU that is down,
    /// which `gpu_up` reports), and per GPU how its read ended.
    pub fn read_each(
        &self,
        ctx: &Context,
        collector: &'static str,
        f: &ReadFn,
    ) -> (MetricSet, Vec<(Arc<Gpu>, ReadOutcome)>) {
        let f = f.clone();
        let reads = self.read_each_with(
            ctx,
            collector,
            Arc::new(move |gpu: &Gpu| {
                let mut set = MetricSet::new();
                f(gpu, &mut set);
                set
            }),
        );
        let mut out = MetricSet::new();
        let mut outcomes = Vec::with_capacity(reads.len());
        for r in reads {
            if let Some(set) = r.value {
                out.extend(set);
                unavailable(&mut out, &r.gpu, collector, &r.log);
            }
            outcomes.push((r.gpu, r.outcome));
        }
        (out, outcomes)
    }
}

/// Adds `gpu_field_unavailable` for the fields `log` saw refused.
pub fn unavailable(out: &mut MetricSet, gpu: &Gpu, collector: &str, log: &ReadLog) {
    if log.unavailable.is_empty() {
        return;
    }
    let f = out.gauge(
        "gpu_field_unavailable",
        "A field NVML refused in this scrape, with why (e.g. no_permission when not running as root; NotSupported fields are not listed).",
    );
    for (field, reason) in &log.unavailable {
        f.sample(
            &[
                ("uuid", &gpu.uuid),
                ("collector", collector),
                ("field", field),
                ("reason", reason),
            ],
            1.0,
        );
    }
}

impl Drop for GpuSet {
    fn drop(&mut self) {
        self.stop();
    }
}
