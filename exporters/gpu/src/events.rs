//! XID errors: the NVML event thread, what it recorded, and what each XID means.
//!
//! One event thread runs per NVML enumeration. It registers every GPU in one event set, each
//! on its own: a GPU whose registration fails (`NotSupported`, `NoPermission` when not root,
//! `GpuLost`) is left out and reported (`gpu_xid_event_watched{uuid} 0` with a reason) while
//! the others are watched. A GPU that fell off the bus is not registered again until it
//! answers again (the GPU set then enumerates anew). Events carry the UUID the GPU had when
//! it was registered, so XID 79 (fallen off the bus, when the UUID can no longer be read) is
//! still attributed. Counts live in [`XidStore`], outside the scrape path, and survive NVML
//! re-initialisation.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::backend::{EventSet, GpuError, Nvml, XidEvent};

/// Short descriptions of the XIDs seen most on data-centre GPUs, after NVIDIA's Xid catalog,
/// with what they usually call for.
pub const XID_DESCRIPTIONS: &[(u64, &str)] = &[
    (8, "GPU stopped processing (channel timeout)"),
    (
        13,
        "Graphics engine exception (usually an application error)",
    ),
    (31, "GPU memory page fault (usually an application error)"),
    (32, "Invalid or corrupted push buffer stream"),
    (38, "Driver firmware error"),
    (
        43,
        "GPU stopped processing: channel reset after an application fault",
    ),
    (
        45,
        "Preemptive cleanup after an earlier error (process killed)",
    ),
    (46, "GPU stopped processing"),
    (48, "Double-bit (uncorrectable) ECC error"),
    (56, "Display engine error"),
    (57, "Error programming video memory interface"),
    (61, "Internal micro-controller breakpoint or warning"),
    (62, "Internal micro-controller halt"),
    (63, "ECC page retirement or row remapping recorded"),
    (64, "ECC page retirement or row remapping recording failed"),
    (68, "Video processor exception"),
    (69, "Graphics engine class error"),
    (74, "NVLink error"),
    (79, "GPU has fallen off the bus"),
    (92, "High single-bit ECC error rate"),
    (
        94,
        "Contained ECC error (the affected application was stopped)",
    ),
    (95, "Uncontained ECC error (reset the GPU)"),
    (109, "Context switch timeout"),
    (119, "GSP RPC timeout"),
    (120, "GSP error"),
    (121, "C2C link error"),
    (154, "GPU recovery action changed"),
];

/// The description of `xid` (a short pointer to the catalog for XIDs not in the table).
pub fn xid_description(xid: Option<u64>) -> &'static str {
    match xid {
        None => "NVML did not report the XID",
        Some(x) => XID_DESCRIPTIONS
            .iter()
            .find(|(n, _)| *n == x)
            .map(|(_, d)| *d)
            .unwrap_or("see NVIDIA's Xid catalog"),
    }
}

/// XID counts and the last XID per GPU, fed by the event thread, and which GPUs it watches.
#[derive(Default)]
pub struct XidStore {
    data: Mutex<XidData>,
    watchers: AtomicI64,
    status: Mutex<BTreeMap<String, Option<GpuError>>>,
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
        tracing::warn!(uuid = %ev.uuid, xid = %xid, description = xid_description(ev.xid), "XID error");
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        *d.counts.entry((ev.uuid.clone(), xid)).or_insert(0) += 1;
        d.last
            .insert(ev.uuid, (ev.xid.map(|x| x as f64).unwrap_or(f64::NAN), ts));
    }

    /// A copy of what was recorded.
    pub fn data(&self) -> XidData {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether an event thread is currently watching at least one GPU.
    pub fn watching(&self) -> bool {
        self.watchers.load(Ordering::Acquire) > 0
    }

    /// Per GPU UUID: `None` while its XIDs are watched, else why they are not.
    pub fn status(&self) -> BTreeMap<String, Option<GpuError>> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_status(&self, uuid: &str, s: Option<GpuError>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uuid.to_string(), s);
    }
}

/// Keeps the watcher count right however the watch ends.
struct Watching<'a>(&'a AtomicI64, bool);
impl Watching<'_> {
    fn set(&mut self, on: bool) {
        if on != self.1 {
            self.0.fetch_add(if on { 1 } else { -1 }, Ordering::AcqRel);
            self.1 = on;
        }
    }
}
impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Sleeps up to `d` unless `stop` is set; true when stopped.
fn sleep(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20).min(d));
    }
    stop.load(Ordering::Acquire)
}

/// Starts the event thread for `gpus` (NVML index, UUID) of one enumeration; `down` are the
/// GPUs that could not be opened, reported as not watched. It ends when `stop` is set.
pub fn spawn(
    nvml: Arc<dyn Nvml>,
    gpus: Vec<(u32, String)>,
    down: Vec<(String, GpuError)>,
    stop: Arc<AtomicBool>,
    store: Arc<XidStore>,
    retry: Duration,
) {
    {
        let mut st = store.status.lock().unwrap_or_else(|e| e.into_inner());
        st.clear();
        for (uuid, e) in down {
            st.insert(uuid, Some(e));
        }
        for (_, uuid) in &gpus {
            st.insert(uuid.clone(), Some(GpuError::Uninitialized));
        }
    }
    let r = std::thread::Builder::new()
        .name("nvml-events".into())
        .spawn(move || watch(&*nvml, &gpus, &stop, &store, retry));
    if let Err(e) = r {
        tracing::error!(error = %e, "cannot start the XID event thread");
    }
}

fn watch(
    nvml: &dyn Nvml,
    gpus: &[(u32, String)],
    stop: &AtomicBool,
    store: &XidStore,
    retry: Duration,
) {
    let uuids: HashMap<u32, &str> = gpus.iter().map(|(i, u)| (*i, u.as_str())).collect();
    // GPUs left out for this enumeration, and why.
    let mut excluded: HashMap<u32, GpuError> = HashMap::new();
    let mut watching = Watching(&store.watchers, false);
    let mut backoff = retry;
    'build: while !stop.load(Ordering::Acquire) {
        watching.set(false);
        let mut set: Box<dyn EventSet> = match nvml.event_set() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create an NVML event set; XIDs are not watched");
                for (_, u) in gpus {
                    store.set_status(u, Some(e.clone()));
                }
                if e == GpuError::NotSupported || sleep(stop, retry) {
                    return;
                }
                continue;
            }
        };
        let mut registered = Vec::new();
        for (i, uuid) in gpus {
            if let Some(e) = excluded.get(i) {
                store.set_status(uuid, Some(e.clone()));
                continue;
            }
            match set.register(*i) {
                Ok(()) => {
                    store.set_status(uuid, None);
                    registered.push(*i);
                }
                Err(e) => {
                    tracing::warn!(%uuid, error = %e, "XID events of this GPU cannot be watched");
                    store.set_status(uuid, Some(e.clone()));
                    let undefined = matches!(e, GpuError::Other(_));
                    excluded.insert(*i, e);
                    if undefined {
                        // NVML leaves the set undefined after an unknown error: start over
                        // without this GPU.
                        continue 'build;
                    }
                }
            }
        }
        if registered.is_empty() {
            // Nothing can be watched in this enumeration (statuses say why); the GPU set
            // starts a new thread when it enumerates again.
            while !sleep(stop, Duration::from_secs(1)) {}
            return;
        }
        watching.set(true);
        while !stop.load(Ordering::Acquire) {
            match set.wait(Duration::from_secs(1)) {
                Ok(Some(raw)) => {
                    backoff = retry;
                    let uuid = raw
                        .index
                        .and_then(|i| uuids.get(&i).copied())
                        .unwrap_or_default()
                        .to_string();
                    store.record(XidEvent { uuid, xid: raw.xid });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "XID event wait failed; watching again");
                    if e == GpuError::GpuLost {
                        // Leave out the GPUs that fell off the bus: registering them again
                        // would fail the same way forever.
                        for i in &registered {
                            let lost = nvml
                                .device(*i)
                                .and_then(|d| d.performance_state().map(|_| ()));
                            if lost == Err(GpuError::GpuLost) {
                                excluded.insert(*i, GpuError::GpuLost);
                            }
                        }
                    }
                    watching.set(false);
                    if sleep(stop, backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(retry * 32);
                    continue 'build;
                }
            }
        }
    }
}
