//! `ipmi` collector (ipmi_exporter's name for it): sensor readings, states and thresholds
//! from `ipmi-sensors --output-sensor-state --output-sensor-thresholds`.
//!
//! Sensors with a known unit get ipmi_exporter's typed families, labelled `{id,name}`:
//! `ipmi_temperature_celsius` (C), `ipmi_fan_speed_rpm` (RPM), `ipmi_fan_speed_ratio`
//! (% fans), `ipmi_voltage_volts` (V), `ipmi_current_amperes` (A), `ipmi_power_watts` (W),
//! each with `*_state` (0 nominal, 1 warning, 2 critical, NaN unknown). Everything else
//! (discrete sensors such as power supplies) is `ipmi_sensor_value`/`ipmi_sensor_state`
//! `{id,name,type}`. Readable thresholds are `ipmi_sensor_threshold{id,name,level}` in the
//! sensor's unit, so rules need no hard-coded limits; `--ipmi.sensor-thresholds=false` or a
//! module's `sensor_thresholds: false` turns them off.

use std::time::Instant;

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::sensors::{parse, Sensor};

/// The `ipmi` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("ipmi", cfg))
}

/// Runs `ipmi-sensors` and adds its metrics.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    let mut args = vec![
        "--comma-separated-output",
        "--output-sensor-state",
        "--ignore-unrecognized-events",
    ];
    // Thresholds double the series per BMC: the module's `sensor_thresholds`, else
    // `--ipmi.sensor-thresholds`, turns them off (and FreeIPMI then does not read them).
    if t.module.sensor_thresholds.unwrap_or(rt.sensor_thresholds) {
        args.push("--output-sensor-thresholds");
    }
    let text = run_tool(rt, t, "ipmi-sensors", &args, true, deadline).await?;
    let parsed = parse(&text)?;
    if parsed.skipped > 0 {
        tracing::debug!(
            target = t.label(),
            skipped = parsed.skipped,
            "malformed ipmi-sensors rows skipped"
        );
    }
    let excluded = &t.module.exclude_sensor_ids;
    let sensors: Vec<&Sensor> = parsed
        .sensors
        .iter()
        .filter(|s| !s.id.parse::<u64>().is_ok_and(|id| excluded.contains(&id)))
        .collect();
    add_metrics(&sensors, out);
    Ok(())
}

/// The typed family (value name, value help, state name, kind) for a sensor, and the
/// factor from its unit to the family's.
fn family(s: &Sensor) -> Option<(&'static str, &'static str, &'static str, &'static str, f64)> {
    match s.unit.as_str() {
        "C" => Some((
            "ipmi_temperature_celsius",
            "Temperature reading in degree Celsius.",
            "ipmi_temperature_state",
            "temperature",
            1.0,
        )),
        "RPM" => Some((
            "ipmi_fan_speed_rpm",
            "Fan speed in rotations per minute.",
            "ipmi_fan_speed_state",
            "fan speed",
            1.0,
        )),
        "%" if s.kind.eq_ignore_ascii_case("fan") => Some((
            "ipmi_fan_speed_ratio",
            "Fan speed as a proportion of the maximum speed.",
            "ipmi_fan_speed_state",
            "fan speed",
            0.01,
        )),
        "V" => Some((
            "ipmi_voltage_volts",
            "Voltage reading in Volts.",
            "ipmi_voltage_state",
            "voltage",
            1.0,
        )),
        "A" => Some((
            "ipmi_current_amperes",
            "Current reading in Amperes.",
            "ipmi_current_state",
            "current",
            1.0,
        )),
        "W" => Some((
            "ipmi_power_watts",
            "Power reading in Watts.",
            "ipmi_power_state",
            "power",
            1.0,
        )),
        _ => None,
    }
}

/// Adds the sensor families for `sensors`.
pub fn add_metrics(sensors: &[&Sensor], out: &mut MetricSet) {
    for s in sensors {
        let labels = [("id", s.id.as_str()), ("name", s.name.as_str())];
        let value = s.reading.unwrap_or(f64::NAN);
        match family(s) {
            Some((vname, vhelp, sname, kind, factor)) => {
                out.gauge(vname, vhelp).sample(&labels, value * factor);
                out.gauge(
                    sname,
                    format!(
                        "Reported state of a {kind} sensor (0=nominal, 1=warning, 2=critical)."
                    ),
                )
                .sample(&labels, s.state.value());
            }
            None => {
                let labels = [
                    ("id", s.id.as_str()),
                    ("name", s.name.as_str()),
                    ("type", s.kind.as_str()),
                ];
                out.gauge(
                    "ipmi_sensor_value",
                    "Generic data read from an IPMI sensor of unknown type, relying on labels for context.",
                )
                .sample(&labels, value);
                out.gauge(
                    "ipmi_sensor_state",
                    "Indicates the severity of the state reported by an IPMI sensor (0=nominal, 1=warning, 2=critical).",
                )
                .sample(&labels, s.state.value());
            }
        }
        let factor = family(s).map_or(1.0, |f| f.4);
        for (level, v) in &s.thresholds {
            out.gauge(
                "ipmi_sensor_threshold",
                "A sensor's threshold as read from the BMC, in the unit of the sensor's value metric; level is lower_/upper_ non_critical, critical or non_recoverable.",
            )
            .sample(&[("id", s.id.as_str()), ("name", s.name.as_str()), ("level", level)], v * factor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_nominal_and_critical() {
        for (sample, name) in [
            (
                include_str!("../../testdata/samples/ipmi-sensors.csv"),
                "sensors.prom",
            ),
            (
                include_str!("../../testdata/samples/ipmi-sensors-critical.csv"),
                "sensors-critical.prom",
            ),
            (
                include_str!("../../testdata/samples/ipmi-sensors-typed.handmade.csv"),
                "sensors-typed.prom",
            ),
        ] {
            let parsed = parse(sample).unwrap();
            let refs: Vec<&Sensor> = parsed.sensors.iter().collect();
            let mut out = MetricSet::new();
            add_metrics(&refs, &mut out);
            golden(name, &text(out));
        }
    }

    #[test]
    fn percent_fans_and_unknown_units() {
        let p = parse("ID,Name,Type,State,Reading,Units,Upper C,Event\n1,Fan 1 Duty,Fan,Warning,21.95,%,90.00,'OK'\n2,Pwr,Power Supply,Nominal,N/A,N/A,N/A,'OK'\n3,PS1 In,Current,Critical,1.5,A,N/A,'x'\n").unwrap();
        let refs: Vec<&Sensor> = p.sensors.iter().collect();
        let mut out = MetricSet::new();
        add_metrics(&refs, &mut out);
        let t = text(out);
        assert!(
            t.contains("ipmi_fan_speed_ratio{id=\"1\",name=\"Fan 1 Duty\"} 0.2195"),
            "{t}"
        );
        assert!(
            t.contains("ipmi_fan_speed_state{id=\"1\",name=\"Fan 1 Duty\"} 1"),
            "{t}"
        );
        assert!(
            t.contains(
                "ipmi_sensor_threshold{id=\"1\",name=\"Fan 1 Duty\",level=\"upper_critical\"} 0.9"
            ),
            "{t}"
        );
        assert!(
            t.contains("ipmi_sensor_value{id=\"2\",name=\"Pwr\",type=\"Power Supply\"} NaN"),
            "{t}"
        );
        assert!(
            t.contains("ipmi_current_state{id=\"3\",name=\"PS1 In\"} 2"),
            "{t}"
        );
    }
}
