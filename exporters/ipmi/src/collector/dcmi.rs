//! `dcmi` collector: power draw from `ipmi-dcmi --get-system-power-statistics`:
//! `ipmi_dcmi_power_consumption_watts` (ipmi_exporter's name; only while the BMC says the
//! measurement is active), `ipmi_dcmi_power_{minimum,maximum,average}_watts` over the BMC's
//! sampling period, and `ipmi_dcmi_power_measurement_active`.

use std::time::{Duration, Instant};

use anyhow::bail;

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::dcmi::{parse, PowerStatistics};

/// How long a BMC that answered "unsupported" is not asked again.
pub const UNSUPPORTED_RECHECK: Duration = Duration::from_secs(600);

/// The `dcmi` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("dcmi", cfg))
}

/// Runs `ipmi-dcmi` and adds its metrics. A BMC without DCMI (the command is "invalid or
/// unsupported") is remembered for [`UNSUPPORTED_RECHECK`]: meanwhile the collector fails at
/// once with that error instead of opening a session per scrape to hear it again.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    if let Some(why) = rt.recall(t.label(), "dcmi-unsupported", UNSUPPORTED_RECHECK) {
        bail!(
            "{why} (remembered; asked again every {}s)",
            UNSUPPORTED_RECHECK.as_secs()
        );
    }
    let text = match run_tool(
        rt,
        t,
        "ipmi-dcmi",
        &["--get-system-power-statistics"],
        false,
        deadline,
    )
    .await
    {
        Ok(text) => text,
        Err(e) => {
            let msg = format!("{e:#}");
            if msg.contains("invalid or unsupported") {
                rt.remember(t.label(), "dcmi-unsupported", msg);
            }
            return Err(e);
        }
    };
    add_metrics(&parse(&text)?, out);
    Ok(())
}

/// Adds the DCMI families.
pub fn add_metrics(p: &PowerStatistics, out: &mut MetricSet) {
    out.gauge(
        "ipmi_dcmi_power_measurement_active",
        "Whether the BMC's DCMI power measurement is active (1) or not (0).",
    )
    .sample(&[], if p.active { 1.0 } else { 0.0 });
    if !p.active {
        return;
    }
    out.gauge(
        "ipmi_dcmi_power_consumption_watts",
        "Current power consumption in Watts.",
    )
    .sample(&[], p.current);
    for (name, v) in [
        ("ipmi_dcmi_power_minimum_watts", p.minimum),
        ("ipmi_dcmi_power_maximum_watts", p.maximum),
        ("ipmi_dcmi_power_average_watts", p.average),
    ] {
        if let Some(v) = v {
            out.gauge(
                name,
                "Power consumption over the BMC's DCMI sampling period, in Watts.",
            )
            .sample(&[], v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_active_and_inactive() {
        let mut out = MetricSet::new();
        add_metrics(
            &parse(include_str!(
                "../../testdata/samples/ipmi-dcmi-power-statistics.handmade.txt"
            ))
            .unwrap(),
            &mut out,
        );
        golden("dcmi.prom", &text(out));
        let mut out = MetricSet::new();
        add_metrics(
            &parse(include_str!(
                "../../testdata/samples/ipmi-dcmi-power-inactive.handmade.txt"
            ))
            .unwrap(),
            &mut out,
        );
        let t = text(out);
        assert!(t.contains("ipmi_dcmi_power_measurement_active 0"));
        assert!(!t.contains("ipmi_dcmi_power_consumption_watts"));
    }
}
