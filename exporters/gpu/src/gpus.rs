//! The GPUs the exporter watches, and NVML's life cycle.
//!
//! [`GpuSet`] owns the NVML handle. A background thread initialises NVML, retrying with
//! exponential backoff while the library or driver is missing (so the exporter starts on a
//! node whose driver is not loaded yet, and on nodes without a GPU serves `gpu_nvml_up 0`),
//! checks NVML's health every few seconds, and initialises it again after a driver reload
//! or when the GPU count changes. Each successful initialisation starts an XID event thread
//! that records into [`XidStore`], which lives outside the scrape path.
//!
//! Collectors read devices through [`GpuSet::read_each`]: every device has its own worker
//! thread that runs its reads in turn, and each (device, collector) pair has at most one
//! read outstanding, like the kit's scraper does per collector. A GPU that hangs in the driver delays nothing but its
//! own samples, and is reported as `gpu_up{reason="timeout"} 0`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use hpcmon_kit::{Context, MetricSet};

use crate::backend::{Backend, Device, GpuError, Nvml, XidEvent};

/// Timing of the background NVML thread.
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            health_interval: Duration::from_secs(10),
            event_retry: Duration::from_secs(10),
        }
    }
}

/// One GPU as enumerated at initialisation, with its static identity.
pub struct Gpu {
    /// NVML index.
    pub index: u32,
    /// `GPU-...` UUID (remembered across re-initialisations; `index-N` if never known).
    pub uuid: String,
    /// The handle, or `None` if the GPU failed at enumeration (see `enum_error`).
    pub dev: Option<Arc<dyn Device>>,
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
    /// `[("uuid", uuid)]`, the label every per-GPU family carries.
    pub fn labels(&self) -> [(&str, &str); 1] {
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
    /// Returned in time.
    Done,
    /// Still running at the deadline.
    TimedOut,
    /// The previous read of this collector on this device has not returned yet.
    Busy,
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
    /// Number of successful initialisations so far.
    pub inits: u64,
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
    /// NVML works, but the GPUs should be enumerated again.
    Reenumerate(String),
    /// NVML must be initialised again.
    Down(GpuError),
}

/// XID counts and the last XID per GPU, fed by the event thread.
#[derive(Default)]
pub struct XidStore {
    data: Mutex<XidData>,
    watchers: AtomicI64,
}

/// The recorded XIDs.
#[derive(Default, Clone)]
pub struct XidData {
    /// `(uuid, xid label)` → count.
    pub counts: BTreeMap<(String, String), u64>,
    /// uuid → (last xid, or NaN if unknown; unix time seconds).
    pub last: BTreeMap<String, (f64, f64)>,
}

impl XidStore {
    /// Records one event, stamped now.
    pub fn record(&self, ev: XidEvent) {
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.record_at(ev, ts);
    }

    /// Records one event received at `ts` (unix seconds).
    pub fn record_at(&self, ev: XidEvent, ts: f64) {
        let xid = ev
            .xid
            .map(|x| x.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(uuid = %ev.uuid, xid = %xid, "XID error");
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        *d.counts.entry((ev.uuid.clone(), xid)).or_insert(0) += 1;
        d.last
            .insert(ev.uuid, (ev.xid.map(|x| x as f64).unwrap_or(f64::NAN), ts));
    }

    /// A copy of what was recorded.
    pub fn data(&self) -> XidData {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether an event thread is currently watching.
    pub fn watching(&self) -> bool {
        self.watchers.load(Ordering::Acquire) > 0
    }
}

/// The GPUs and NVML's state, shared by every collector.
pub struct GpuSet {
    backend: Arc<dyn Backend>,
    opts: Options,
    nvml: Mutex<Option<Arc<dyn Nvml>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    events_stop: Mutex<Option<Arc<AtomicBool>>>,
    known_uuids: Mutex<HashMap<u32, String>>,
    kick: Arc<Kick>,
    /// XIDs seen by the event thread.
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
            })),
            events_stop: Mutex::new(None),
            known_uuids: Mutex::new(HashMap::new()),
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
                            Health::Ok => opts.health_interval,
                            Health::Reenumerate(why) => {
                                // Swap in a fresh enumeration; keep serving the old one
                                // meanwhile (no gpu_nvml_up flap).
                                tracing::info!(%why, "enumerating GPUs again");
                                let _ = set.init_now();
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
        match self.try_init() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "NVML initialisation failed");
                let prev = self.snapshot();
                self.set_snapshot(Snapshot {
                    up: false,
                    error: Some(e.clone()),
                    driver_version: String::new(),
                    cuda_version: String::new(),
                    nvml_version: String::new(),
                    gpus: Vec::new(),
                    inits: prev.inits,
                });
                Err(e)
            }
        }
    }

    fn set_snapshot(&self, s: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    fn try_init(&self) -> Result<(), GpuError> {
        let nvml = self.backend.init()?;
        let count = nvml.device_count()?;
        let driver_version = nvml.driver_version().unwrap_or_default();
        let nvml_version = nvml.nvml_version().unwrap_or_default();
        let cuda_version = nvml
            .cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default();
        let mut gpus = Vec::with_capacity(count as usize);
        let mut known = self.known_uuids.lock().unwrap_or_else(|e| e.into_inner());
        for index in 0..count {
            let fallback = known
                .get(&index)
                .cloned()
                .unwrap_or_else(|| format!("index-{index}"));
            let gpu = match nvml.device(index) {
                Ok(dev) => {
                    let uuid = dev.uuid().unwrap_or(fallback);
                    known.insert(index, uuid.clone());
                    Gpu {
                        index,
                        uuid,
                        name: dev.name().unwrap_or_default(),
                        pci_bus_id: dev.pci_bus_id().unwrap_or_default(),
                        serial: dev.serial().unwrap_or_default(),
                        vbios_version: dev.vbios_version().unwrap_or_default(),
                        minor_number: dev.minor_number().ok(),
                        dev: Some(dev),
                        enum_error: None,
                        last_probe: Mutex::new(None),
                        busy: Mutex::new(HashSet::new()),
                        kick: self.kick.clone(),
                        worker: Mutex::new(None),
                    }
                }
                Err(e) => {
                    tracing::warn!(index, error = %e, "GPU cannot be opened");
                    Gpu {
                        index,
                        uuid: fallback,
                        dev: None,
                        enum_error: Some(e),
                        name: String::new(),
                        pci_bus_id: String::new(),
                        serial: String::new(),
                        vbios_version: String::new(),
                        minor_number: None,
                        last_probe: Mutex::new(None),
                        busy: Mutex::new(HashSet::new()),
                        kick: self.kick.clone(),
                        worker: Mutex::new(None),
                    }
                }
            };
            gpus.push(Arc::new(gpu));
        }
        drop(known);
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(old) = self
            .events_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(stop.clone())
        {
            old.store(true, Ordering::Release);
        }
        spawn_event_thread(nvml.clone(), stop, self.xids.clone(), self.opts.event_retry);
        *self.nvml.lock().unwrap_or_else(|e| e.into_inner()) = Some(nvml);
        let inits = self.snapshot().inits + 1;
        tracing::info!(gpus = count, %driver_version, %cuda_version, "NVML initialised");
        self.set_snapshot(Snapshot {
            up: true,
            error: None,
            driver_version,
            cuda_version,
            nvml_version,
            gpus,
            inits,
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
        self.set_snapshot(Snapshot {
            up: false,
            error: Some(e),
            driver_version: String::new(),
            cuda_version: String::new(),
            nvml_version: String::new(),
            gpus: Vec::new(),
            inits: prev.inits,
        });
    }

    /// Whether NVML still answers the way it did at initialisation.
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
        // A GPU that could not be opened may be back after a reset.
        if let Some(g) = snap.gpus.iter().find(|g| g.dev.is_none()) {
            return Health::Reenumerate(format!("GPU {} could not be opened", g.index));
        }
        // Every probe failing is what a driver reload looks like through old handles.
        let all_failed = !snap.gpus.is_empty()
            && snap.gpus.iter().all(|g| {
                matches!(
                    *g.last_probe.lock().unwrap_or_else(|e| e.into_inner()),
                    Some(GpuError::GpuLost | GpuError::Other(_))
                )
            });
        if all_failed {
            return Health::Reenumerate("every GPU failed its probe".into());
        }
        Health::Ok
    }

    /// Reads every openable GPU with `f`, each on its own thread, and waits for them until
    /// shortly before the scrape's deadline. Returns the merged samples and, per GPU,
    /// how its read ended. A read still running is not started again by later scrapes.
    pub fn read_each(
        &self,
        ctx: &Context,
        collector: &'static str,
        f: &ReadFn,
    ) -> (MetricSet, Vec<(Arc<Gpu>, ReadOutcome)>) {
        let snap = self.snapshot();
        let (tx, rx) = mpsc::channel::<(usize, MetricSet)>();
        let mut outcomes: Vec<(Arc<Gpu>, Option<ReadOutcome>)> = Vec::new();
        for gpu in snap.gpus.iter().filter(|g| g.dev.is_some()) {
            let slot = outcomes.len();
            if !gpu.begin(collector) {
                outcomes.push((gpu.clone(), Some(ReadOutcome::Busy)));
                continue;
            }
            outcomes.push((gpu.clone(), None));
            let guard = BusyGuard(gpu.clone(), collector);
            let f = f.clone();
            let tx = tx.clone();
            let submitted = gpu.submit(Box::new(move || {
                let guard = guard;
                let mut set = MetricSet::new();
                if let Err(p) =
                    std::panic::catch_unwind(AssertUnwindSafe(|| f(&guard.0, &mut set)))
                {
                    tracing::error!(collector, uuid = %guard.0.uuid, panic = ?p.downcast_ref::<&str>(), "GPU read panicked");
                    set = MetricSet::new();
                }
                drop(guard);
                let _ = tx.send((slot, set));
            }));
            if !submitted {
                tracing::error!("cannot start a GPU read thread");
                outcomes[slot].1 = Some(ReadOutcome::Busy);
            }
        }
        drop(tx);
        // Stop waiting a little before the kit does, so the finished devices are served.
        let margin = (ctx.remaining() / 10).min(Duration::from_millis(250));
        let wait_until = ctx.deadline.checked_sub(margin).unwrap_or(ctx.deadline);
        let mut out = MetricSet::new();
        let mut pending = outcomes.iter().filter(|o| o.1.is_none()).count();
        while pending > 0 {
            let left = wait_until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((slot, set)) => {
                    out.extend(set);
                    outcomes[slot].1 = Some(ReadOutcome::Done);
                    pending -= 1;
                }
                Err(_) => break,
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|(g, o)| {
                let o = o.unwrap_or(ReadOutcome::TimedOut);
                if o != ReadOutcome::Done {
                    tracing::warn!(collector, uuid = %g.uuid, outcome = ?o, "GPU read did not finish in time");
                }
                (g, o)
            })
            .collect();
        (out, outcomes)
    }
}

impl Drop for GpuSet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_event_thread(
    nvml: Arc<dyn Nvml>,
    stop: Arc<AtomicBool>,
    xids: Arc<XidStore>,
    retry: Duration,
) {
    let r = std::thread::Builder::new()
        .name("nvml-events".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                xids.watchers.fetch_add(1, Ordering::AcqRel);
                let r = nvml.watch_events(&stop, &mut |ev| xids.record(ev));
                xids.watchers.fetch_sub(1, Ordering::AcqRel);
                match r {
                    Ok(()) => return,
                    Err(GpuError::NotSupported) => {
                        tracing::info!("XID events are not supported on this node");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "XID event watch failed; retrying");
                        let until = Instant::now() + retry;
                        while Instant::now() < until && !stop.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
        });
    if let Err(e) = r {
        tracing::error!(error = %e, "cannot start the XID event thread");
    }
}
