//! `slurm_scheduler_*` from sdiag: main and backfill cycle times and depths, queue lengths,
//! threads, agent queues, job counters and RPC statistics by type and user. Also the
//! prometheus-slurm-exporter `slurm_scheduler_*` families (which keep microseconds).

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::parse::sdiag::Sdiag;
use crate::poller::Data;

const US: f64 = 1e-6;

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Sdiag];

/// The `scheduler` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("scheduler", SOURCES, collect))
}

/// Renders the scheduler metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let Some(d) = inp.data.iter().find_map(|d| match d {
        Data::Sdiag(s) => Some(s),
        _ => None,
    }) else {
        return;
    };
    render(d, out);
    if inp.labels.by_user {
        render_users(d, inp.labels.top_users, out);
    }
}

/// `slurm_scheduler_rpc_user_*`: the `top` users with the most RPCs, the rest summed under
/// `user="other"` (`top == 0`: every user).
fn render_users(d: &Sdiag, top: usize, out: &mut MetricSet) {
    let mut users: Vec<_> = d.rpc_by_user.iter().collect();
    users.sort_by(|a, b| b.count.total_cmp(&a.count).then(a.name.cmp(&b.name)));
    let keep = if top == 0 {
        users.len()
    } else {
        top.min(users.len())
    };
    let (kept, rest) = users.split_at(keep);
    let other = (!rest.is_empty()).then(|| {
        (
            rest.iter().map(|r| r.count).sum::<f64>(),
            rest.iter().map(|r| r.total_time_us).sum::<f64>(),
        )
    });
    let f = out.counter(
        "slurm_scheduler_rpc_user_calls_total",
        "RPCs slurmctld handled, by user (beyond --slurm.top-users summed under user=\"other\").",
    );
    for r in kept {
        f.sample(&[("user", r.name.as_str())], r.count);
    }
    if let Some((c, _)) = other {
        f.sample(&[("user", super::OTHER)], c);
    }
    let f = out.counter(
        "slurm_scheduler_rpc_user_time_seconds_total",
        "Time slurmctld spent on RPCs, by user (beyond --slurm.top-users summed under user=\"other\").",
    );
    for r in kept {
        f.sample(&[("user", r.name.as_str())], r.total_time_us * US);
    }
    if let Some((_, t)) = other {
        f.sample(&[("user", super::OTHER)], t * US);
    }
}

fn g(out: &mut MetricSet, name: &str, help: &str, v: Option<f64>) {
    if let Some(v) = v {
        out.gauge_dyn(name, help).sample(&[], v);
    }
}

fn c(out: &mut MetricSet, name: &str, help: &str, v: Option<f64>) {
    if let Some(v) = v {
        out.counter_dyn(name, help).sample(&[], v);
    }
}

fn render(d: &Sdiag, out: &mut MetricSet) {
    let gen = |k: &str| d.general(k);
    g(
        out,
        "slurm_scheduler_server_threads",
        "slurmctld server threads (sdiag Server thread count).",
        gen("Server thread count"),
    );
    g(
        out,
        "slurm_scheduler_agent_queue_size",
        "Outgoing RPCs queued in slurmctld's agent (sdiag Agent queue size).",
        gen("Agent queue size"),
    );
    g(
        out,
        "slurm_scheduler_agent_count",
        "Agents running (sdiag Agent count).",
        gen("Agent count"),
    );
    g(
        out,
        "slurm_scheduler_agent_threads",
        "Agent threads (sdiag Agent thread count).",
        gen("Agent thread count"),
    );
    g(
        out,
        "slurm_scheduler_dbd_agent_queue_size",
        "Messages queued for slurmdbd (sdiag DBD Agent queue size).",
        gen("DBD Agent queue size"),
    );
    for (k, name) in [
        ("submitted", "Jobs submitted"),
        ("started", "Jobs started"),
        ("completed", "Jobs completed"),
        ("canceled", "Jobs canceled"),
        ("failed", "Jobs failed"),
    ] {
        c(
            out,
            &format!("slurm_scheduler_jobs_{k}_total"),
            &format!(
                "{name} since the statistics were last reset (daily at midnight, or sdiag -r)."
            ),
            gen(name),
        );
    }
    let m = |k: &str| d.main(k);
    g(
        out,
        "slurm_scheduler_main_cycle_last_seconds",
        "Duration of the last main scheduling cycle.",
        m("Last cycle").map(|v| v * US),
    );
    g(
        out,
        "slurm_scheduler_main_cycle_max_seconds",
        "Longest main scheduling cycle since the reset.",
        m("Max cycle").map(|v| v * US),
    );
    g(
        out,
        "slurm_scheduler_main_cycle_mean_seconds",
        "Mean main scheduling cycle since the reset.",
        m("Mean cycle").map(|v| v * US),
    );
    c(
        out,
        "slurm_scheduler_main_cycles_total",
        "Main scheduling cycles since the reset.",
        m("Total cycles"),
    );
    g(
        out,
        "slurm_scheduler_main_mean_depth",
        "Mean jobs considered per main scheduling cycle.",
        m("Mean depth cycle"),
    );
    g(
        out,
        "slurm_scheduler_main_last_queue_length",
        "Jobs pending at the last main scheduling cycle.",
        m("Last queue length"),
    );
    let b = |k: &str| d.backfill(k);
    g(
        out,
        "slurm_scheduler_backfill_cycle_last_seconds",
        "Duration of the last backfill cycle.",
        b("Last cycle").map(|v| v * US),
    );
    g(
        out,
        "slurm_scheduler_backfill_cycle_max_seconds",
        "Longest backfill cycle since the reset.",
        b("Max cycle").map(|v| v * US),
    );
    g(
        out,
        "slurm_scheduler_backfill_cycle_mean_seconds",
        "Mean backfill cycle since the reset.",
        b("Mean cycle").map(|v| v * US),
    );
    c(
        out,
        "slurm_scheduler_backfill_cycles_total",
        "Backfill cycles since the reset.",
        b("Total cycles"),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_cycle_timestamp_seconds",
        "When the last backfill cycle ran.",
        b("Last cycle when"),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_depth",
        "Jobs considered in the last backfill cycle.",
        b("Last depth cycle"),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_depth_try_sched",
        "Jobs the last backfill cycle tried to schedule.",
        b("Last depth cycle (try sched)"),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_queue_length",
        "Jobs pending at the last backfill cycle.",
        b("Last queue length"),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_table_size",
        "Time slots in the last backfill cycle's table.",
        b("Last table size"),
    );

    // prometheus-slurm-exporter compatibility (microseconds, all gauges, as it exposes them).
    g(
        out,
        "slurm_scheduler_threads",
        "Scheduler threads (prometheus-slurm-exporter name).",
        gen("Server thread count"),
    );
    g(
        out,
        "slurm_scheduler_queue_size",
        "Agent queue length (prometheus-slurm-exporter name).",
        gen("Agent queue size"),
    );
    g(
        out,
        "slurm_scheduler_dbd_queue_size",
        "DBD agent queue length (prometheus-slurm-exporter name).",
        gen("DBD Agent queue size"),
    );
    g(
        out,
        "slurm_scheduler_last_cycle",
        "Last main cycle in microseconds (prometheus-slurm-exporter name).",
        m("Last cycle"),
    );
    g(
        out,
        "slurm_scheduler_mean_cycle",
        "Mean main cycle in microseconds (prometheus-slurm-exporter name).",
        m("Mean cycle"),
    );
    g(
        out,
        "slurm_scheduler_cycle_per_minute",
        "Main cycles per minute (prometheus-slurm-exporter name).",
        Some(m("Cycles per minute").unwrap_or(0.0)),
    );
    g(
        out,
        "slurm_scheduler_backfill_last_cycle",
        "Last backfill cycle in microseconds (prometheus-slurm-exporter name).",
        Some(b("Last cycle").unwrap_or(0.0)),
    );
    g(
        out,
        "slurm_scheduler_backfill_mean_cycle",
        "Mean backfill cycle in microseconds (prometheus-slurm-exporter name).",
        Some(b("Mean cycle").unwrap_or(0.0)),
    );
    g(
        out,
        "slurm_scheduler_backfill_depth_mean",
        "Mean backfill depth (prometheus-slurm-exporter name).",
        Some(b("Depth Mean").unwrap_or(0.0)),
    );
    g(out, "slurm_scheduler_backfilled_jobs_since_start_total", "Jobs started by backfill since slurmctld started (prometheus-slurm-exporter name, a gauge there).", b("Total backfilled jobs (since last slurm start)"));
    g(out, "slurm_scheduler_backfilled_jobs_since_cycle_total", "Jobs started by backfill since the statistics reset (prometheus-slurm-exporter name, a gauge there).", b("Total backfilled jobs (since last stats cycle start)"));
    g(out, "slurm_scheduler_backfilled_heterogeneous_total", "Heterogeneous job components started by backfill (prometheus-slurm-exporter name, a gauge there).", b("Total backfilled heterogeneous job components"));

    let f = out.counter(
        "slurm_scheduler_rpc_calls_total",
        "RPCs slurmctld handled, by message type, since the statistics reset.",
    );
    for r in &d.rpc_by_type {
        f.sample(&[("type", r.name.as_str())], r.count);
    }
    let f = out.counter(
        "slurm_scheduler_rpc_time_seconds_total",
        "Time slurmctld spent on RPCs, by message type.",
    );
    for r in &d.rpc_by_type {
        f.sample(&[("type", r.name.as_str())], r.total_time_us * US);
    }
    let f = out.gauge(
        "slurm_scheduler_rpc_pending",
        "RPCs queued in slurmctld, by message type.",
    );
    for (t, v) in &d.pending_rpcs {
        f.sample(&[("type", t.as_str())], *v);
    }
}
