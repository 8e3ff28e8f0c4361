//! `chassis` collector: `ipmi-chassis --get-chassis-status` →
//! `ipmi_chassis_power_state` (1 on, 0 off; ipmi_exporter's name) and the fault flags
//! `ipmi_chassis_{drive_fault,cooling_fault,power_fault,intrusion}_state` (1 active).

use std::time::Instant;

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::chassis::{parse, ChassisStatus};

/// The `chassis` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("chassis", cfg))
}

/// Runs `ipmi-chassis` and adds its metrics.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    let text = run_tool(
        rt,
        t,
        "ipmi-chassis",
        &["--get-chassis-status"],
        false,
        deadline,
    )
    .await?;
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

/// Adds the chassis families.
pub fn add_metrics(s: &ChassisStatus, out: &mut MetricSet) {
    out.gauge(
        "ipmi_chassis_power_state",
        "Current power state (1=on, 0=off).",
    )
    .sample(&[], b(s.power_on));
    let fault = match (s.power_fault, s.power_overload) {
        (None, None) => None,
        (f, o) => Some(f.unwrap_or(false) || o.unwrap_or(false)),
    };
    for (name, help, v) in [
        (
            "ipmi_chassis_drive_fault_state",
            "Drive fault (1=fault, 0=none).",
            s.drive_fault,
        ),
        (
            "ipmi_chassis_cooling_fault_state",
            "Cooling/fan fault (1=fault, 0=none).",
            s.cooling_fault,
        ),
        (
            "ipmi_chassis_power_fault_state",
            "Main power fault or overload (1=fault, 0=none).",
            fault,
        ),
        (
            "ipmi_chassis_intrusion_state",
            "Chassis intrusion (1=active, 0=inactive).",
            s.intrusion,
        ),
    ] {
        if let Some(v) = v {
            out.gauge(name, help).sample(&[], b(v));
        }
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
                "../../testdata/samples/ipmi-chassis-status.txt"
            ))
            .unwrap(),
            &mut out,
        );
        golden("chassis.prom", &text(out));
    }
}
