//! `xid` collector: XID errors counted by the NVML event thread (see
//! [`crate::gpus::XidStore`]), which runs outside the scrape path, so counts survive failed
//! scrapes: `gpu_xid_errors_total{uuid,xid}`, the last XID and its time per GPU, and
//! whether the event watch is running (`gpu_xid_event_watch_up`; 0 means XIDs are not seen).

use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::gpus::GpuSet;

/// The collector.
pub struct Xid {
    gpus: Arc<GpuSet>,
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
            "Whether the NVML XID event watch is running.",
        )
        .sample(&[], if store.watching() { 1.0 } else { 0.0 });
        let d = store.data();
        let f = out.counter(
            "gpu_xid_errors_total",
            "XID errors reported by the driver since the exporter started.",
        );
        for ((uuid, xid), n) in &d.counts {
            f.sample(&[("uuid", uuid), ("xid", xid)], *n as f64);
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
