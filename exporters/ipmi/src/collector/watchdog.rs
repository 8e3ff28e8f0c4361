//! `bmc-watchdog` collector (ipmi_exporter's name and metrics): the BMC watchdog timer,
//! read with `ipmi-raw 0 0x06 0x25` (*Get Watchdog Timer*), which works in-band and over LAN
//! (FreeIPMI's `bmc-watchdog` tool is in-band only):
//! `ipmi_bmc_watchdog_timer_state`, `ipmi_bmc_watchdog_timer_use_state{name}`,
//! `ipmi_bmc_watchdog_logging_state`, `ipmi_bmc_watchdog_timeout_action_state{action}`,
//! `ipmi_bmc_watchdog_pretimeout_interrupt_state{interrupt}`,
//! `ipmi_bmc_watchdog_pretimeout_interval_seconds`,
//! `ipmi_bmc_watchdog_initial_countdown_seconds`, `ipmi_bmc_watchdog_current_countdown_seconds`.

use std::time::Instant;

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::watchdog::{parse, Watchdog, ACTIONS, INTERRUPTS, TIMER_USES};

/// The `bmc-watchdog` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("bmc-watchdog", cfg))
}

/// Runs `ipmi-raw` and adds the watchdog metrics.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    let text = run_tool(rt, t, "ipmi-raw", &["0", "0x06", "0x25"], false, deadline).await?;
    add_metrics(&parse(&text)?, out);
    Ok(())
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

/// Adds the watchdog families.
pub fn add_metrics(w: &Watchdog, out: &mut MetricSet) {
    out.gauge(
        "ipmi_bmc_watchdog_timer_state",
        "Watchdog timer running (1) or stopped (0).",
    )
    .sample(&[], b(w.running));
    let f = out.gauge(
        "ipmi_bmc_watchdog_timer_use_state",
        "Watchdog timer use (1 for the current one).",
    );
    for n in TIMER_USES {
        f.sample(&[("name", n)], b(w.timer_use == n));
    }
    out.gauge(
        "ipmi_bmc_watchdog_logging_state",
        "Watchdog timeouts are logged (1) or not (0).",
    )
    .sample(&[], b(w.logging));
    let f = out.gauge(
        "ipmi_bmc_watchdog_timeout_action_state",
        "Watchdog timeout action (1 for the current one).",
    );
    for a in ACTIONS {
        f.sample(&[("action", a)], b(w.timeout_action == a));
    }
    let f = out.gauge(
        "ipmi_bmc_watchdog_pretimeout_interrupt_state",
        "Watchdog pre-timeout interrupt (1 for the current one).",
    );
    for i in INTERRUPTS {
        f.sample(&[("interrupt", i)], b(w.pretimeout_interrupt == i));
    }
    out.gauge(
        "ipmi_bmc_watchdog_pretimeout_interval_seconds",
        "Watchdog pre-timeout interval in seconds.",
    )
    .sample(&[], w.pretimeout_interval_seconds);
    out.gauge(
        "ipmi_bmc_watchdog_initial_countdown_seconds",
        "Watchdog initial countdown in seconds.",
    )
    .sample(&[], w.initial_countdown_seconds);
    if let Some(c) = w.current_countdown_seconds {
        out.gauge(
            "ipmi_bmc_watchdog_current_countdown_seconds",
            "Watchdog present countdown in seconds.",
        )
        .sample(&[], c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_sample() {
        let mut out = MetricSet::new();
        add_metrics(
            &parse(include_str!(
                "../../testdata/samples/ipmi-raw-get-watchdog.handmade.txt"
            ))
            .unwrap(),
            &mut out,
        );
        golden("watchdog.prom", &text(out));
    }
}
