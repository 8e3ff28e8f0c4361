//! `xid` collector: XID errors counted by the NVML event thread (see [`crate::events`]),
//! which runs outside the scrape path, so counts survive failed scrapes:
//! `gpu_xid_errors_total{uuid,xid,description}` (the description from a table of the
//! common XIDs), the last XID and its time per GPU, whether the event watch is running
//! (`gpu_xid_event_watch_up`; 0 means no XID is seen), and per GPU whether its XIDs are
//! watched (`gpu_xid_event_watched{uuid}`, with `gpu_xid_event_watched_reason{uuid,reason}`
//! while 0: `not_supported`, `no_permission` when not running as root, `gpu_lost`, ...).

use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::events::xid_description;
use crate::gpus::GpuSet;

/// The collector.
pub struct Xid {
    gpus: Arc<GpuSet>,
}

/// The `xid` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<Arc<dyn hpcmon_kit::Collector>> {
    Ok(Arc::new(Xid::new(cfg.gpus.clone())))
}

impl Xid {
    /// Reads `gpus`' XID store.
    pub fn new(gpus: Arc<GpuSet>) -> Self {
        Xid { gpus }
    }
}

impl Collector for Xid {
    fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let store = &self.gpus.xids;
        out.gauge(
            "gpu_xid_event_watch_up",
            "Whether the NVML XID event watch is running (for at least one GPU).",
        )
        .sample(&[], if store.watching() { 1.0 } else { 0.0 });
        if self.gpus.snapshot().up {
            for (uuid, status) in store.status() {
                out.gauge(
                    "gpu_xid_event_watched",
                    "Whether the GPU's XID events are watched (0: see gpu_xid_event_watched_reason).",
                )
                .sample(&[("uuid", &uuid)], if status.is_none() { 1.0 } else { 0.0 });
                if let Some(e) = status {
                    out.gauge(
                        "gpu_xid_event_watched_reason",
                        "Why the GPU's XID events are not watched (present only while they are not).",
                    )
                    .sample(&[("uuid", &uuid), ("reason", e.reason())], 1.0);
                }
            }
        }
        let d = store.data();
        let f = out.counter(
            "gpu_xid_errors_total",
            "XID errors reported by the driver since the exporter started.",
        );
        for ((uuid, xid), n) in &d.counts {
            let description = xid_description(xid.parse().ok());
            f.sample(
                &[("uuid", uuid), ("xid", xid), ("description", description)],
                *n as f64,
            );
        }
        for (uuid, (xid, ts)) in &d.last {
            out.gauge(
                "gpu_last_xid",
                "The last XID reported for the GPU (NaN if unknown).",
            )
            .sample(&[("uuid", uuid)], *xid);
            out.gauge(
                "gpu_last_xid_timestamp_seconds",
                "When the last XID for the GPU was received, in unix seconds.",
            )
            .sample(&[("uuid", uuid)], *ts);
        }
        Ok(())
    }
}
