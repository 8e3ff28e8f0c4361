//! `slurm_reservation_*` from scontrol show reservation.

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::parse::local_time_seconds;
use crate::poller::Data;

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Reservations];

/// The `reservations` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("reservations", SOURCES, collect))
}

/// Renders the reservation metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let Some(rs) = inp.data.iter().find_map(|d| match d {
        Data::Reservations(r) => Some(r),
        _ => None,
    }) else {
        return;
    };
    out.gauge("slurm_reservations", "Reservations defined.")
        .sample(&[], rs.len() as f64);
    let f = out.gauge("slurm_reservation_info", "Reservation facts (value 1).");
    for r in rs {
        f.sample(
            &[
                ("reservation", r.name.as_str()),
                ("state", r.state.as_str()),
                ("flags", r.flags.as_str()),
                ("nodes", r.nodes.as_str()),
                ("partition", r.partition.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
    let f = out.gauge(
        "slurm_reservation_active",
        "Whether the reservation is active now.",
    );
    for r in rs {
        f.sample(
            &[("reservation", r.name.as_str())],
            if r.state == "ACTIVE" { 1.0 } else { 0.0 },
        );
    }
    let f = out.gauge("slurm_reservation_nodes", "Nodes in the reservation.");
    for r in rs {
        f.sample(&[("reservation", r.name.as_str())], r.node_count);
    }
    let f = out.gauge("slurm_reservation_cores", "Cores in the reservation.");
    for r in rs {
        f.sample(&[("reservation", r.name.as_str())], r.core_count);
    }
    let f = out.gauge(
        "slurm_reservation_start_time_seconds",
        "When the reservation starts (Unix time).",
    );
    for r in rs {
        if let Some(t) = local_time_seconds(&r.start) {
            f.sample(&[("reservation", r.name.as_str())], t);
        }
    }
    let f = out.gauge(
        "slurm_reservation_end_time_seconds",
        "When the reservation ends (Unix time).",
    );
    for r in rs {
        if let Some(t) = local_time_seconds(&r.end) {
            f.sample(&[("reservation", r.name.as_str())], t);
        }
    }
}
