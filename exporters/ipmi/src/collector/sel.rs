//! `sel` collector: the system event log, from `ipmi-sel --info` and
//! `ipmi-sel --output-event-state`:
//!
//! - `ipmi_sel_logs_count`, `ipmi_sel_free_space_bytes` (ipmi_exporter's names);
//! - `ipmi_sel_last_add_timestamp_seconds` when the BMC's clock is absolute;
//! - `ipmi_sel_events_count{state}`: entries by severity (`nominal`, `warning`, `critical`,
//!   and `unknown` when present);
//! - `ipmi_sel_latest_event_timestamp_seconds{state}` for dated entries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::sel::{parse_entries, parse_info, Entry, SelInfo};
use crate::parse::sensors::State;

/// How long the listed entries are reused while `ipmi-sel --info` is unchanged.
pub const LIST_REUSE: Duration = Duration::from_secs(600);

/// The `sel` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("sel", cfg))
}

/// Runs `ipmi-sel --info` and, when the log changed since the last scrape of this target
/// (its info — count, free space, last addition and erase times — differs) or every
/// [`LIST_REUSE`], the entry listing; then adds the metrics. An unchanged SEL thus costs one
/// BMC session per scrape instead of two.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    let info_text = run_tool(rt, t, "ipmi-sel", &["--info"], false, deadline).await?;
    let info = parse_info(&info_text)?;
    let same = rt
        .recall(t.label(), "sel-info", LIST_REUSE)
        .is_some_and(|i| i == info_text);
    let list = match rt
        .recall(t.label(), "sel-list", LIST_REUSE)
        .filter(|_| same)
    {
        Some(list) => list,
        None => {
            rt.forget(t.label(), "sel-info");
            let list = run_tool(
                rt,
                t,
                "ipmi-sel",
                &["--comma-separated-output", "--output-event-state"],
                true,
                deadline,
            )
            .await?;
            rt.remember(t.label(), "sel-list", list.clone());
            rt.remember(t.label(), "sel-info", info_text);
            list
        }
    };
    let (entries, _) = parse_entries(&list)?;
    add_metrics(&info, &entries, out);
    Ok(())
}

/// Adds the SEL families.
pub fn add_metrics(info: &SelInfo, entries: &[Entry], out: &mut MetricSet) {
    out.gauge(
        "ipmi_sel_logs_count",
        "Current number of log entries in the SEL.",
    )
    .sample(&[], info.entries as f64);
    out.gauge(
        "ipmi_sel_free_space_bytes",
        "Current free space remaining for new SEL entries.",
    )
    .sample(&[], info.free_bytes as f64);
    if let Some(ts) = info.last_addition {
        out.gauge(
            "ipmi_sel_last_add_timestamp_seconds",
            "When the last SEL entry was added (BMC clock), Unix seconds.",
        )
        .sample(&[], ts);
    }
    let mut counts: BTreeMap<&str, u64> = [State::Nominal, State::Warning, State::Critical]
        .iter()
        .map(|s| (s.name(), 0))
        .collect();
    let mut latest: BTreeMap<&str, f64> = BTreeMap::new();
    for e in entries {
        *counts.entry(e.state.name()).or_default() += 1;
        if let Some(ts) = e.time {
            let l = latest.entry(e.state.name()).or_insert(ts);
            *l = l.max(ts);
        }
    }
    let f = out.gauge(
        "ipmi_sel_events_count",
        "SEL entries by event state (severity).",
    );
    for (state, n) in &counts {
        f.sample(&[("state", state)], *n as f64);
    }
    if !latest.is_empty() {
        let f = out.gauge(
            "ipmi_sel_latest_event_timestamp_seconds",
            "Time of the newest dated SEL entry of each state, Unix seconds.",
        );
        for (state, ts) in &latest {
            f.sample(&[("state", state)], *ts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_samples() {
        let info = parse_info(include_str!("../../testdata/samples/ipmi-sel-info.txt")).unwrap();
        let (e, _) =
            parse_entries(include_str!("../../testdata/samples/ipmi-sel-state.csv")).unwrap();
        let mut out = MetricSet::new();
        add_metrics(&info, &e, &mut out);
        let t = text(out);
        assert!(
            t.contains("ipmi_sel_events_count{state=\"critical\"} 2"),
            "{t}"
        );
        assert!(!t.contains("timestamp"));
        let info = parse_info(include_str!(
            "../../testdata/samples/ipmi-sel-info-dated.handmade.txt"
        ))
        .unwrap();
        let (e, _) = parse_entries(include_str!(
            "../../testdata/samples/ipmi-sel-state-dated.handmade.csv"
        ))
        .unwrap();
        let mut out = MetricSet::new();
        add_metrics(&info, &e, &mut out);
        golden("sel.prom", &text(out));
    }
}
