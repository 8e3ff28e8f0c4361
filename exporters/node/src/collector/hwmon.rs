//! `hwmon` collector: hardware sensors from `/sys/class/hwmon` (like lm-sensors), with
//! node_exporter 1.5's names: `node_hwmon_temp_celsius`, `node_hwmon_temp_{crit,max,...}_celsius`,
//! `node_hwmon_fan_rpm`, `node_hwmon_fan_{min,max,target}_rpm`, `node_hwmon_in_volts`,
//! `node_hwmon_curr_amps`, `node_hwmon_power_*_watt`, `node_hwmon_energy_joule_total`,
//! `node_hwmon_*_alarm`, `node_hwmon_chip_names{chip,chip_name}` and
//! `node_hwmon_sensor_label{chip,label,sensor}`; other elements are exposed as they are
//! (`node_hwmon_pwm`, `node_hwmon_temp_type`, ...).
//!
//! The `chip` label is derived like node_exporter: from the `device` link target
//! (`<parent dir>_<device dir>`, e.g. `platform_coretemp_0`, `pci0000:00_0000:00:18_3`), else the
//! `name` file, else the `hwmonN` directory name; always lowercased with characters outside
//! `[a-z0-9:_]` replaced by `_`. Sensor files are read from the hwmon dir and its `device/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::metrics::MetricType;
use hpcmon_kit::{sysfs, Collector, Context, MetricSet};

use super::Config;

/// Builds the `hwmon` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Hwmon {
        class: cfg.paths.sys("class/hwmon"),
    }))
}

/// The `hwmon` collector.
pub struct Hwmon {
    class: PathBuf,
}

const SENSOR_TYPES: &[&str] = &[
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// Lowercases and replaces every character outside `[a-z0-9:_]` by `_`, trimming `_`.
pub fn clean_name(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    mapped.trim_matches('_').to_owned()
}

/// Splits a sensor file name into `(type, number, property)`: `temp1_crit` → `("temp", 1,
/// "crit")`, `in0` → `("in", 0, "")`, `update_interval` → `("update_interval", 0, "")`.
pub fn explode(name: &str) -> Option<(&str, u64, &str)> {
    let tlen = name.bytes().take_while(|c| !c.is_ascii_digit()).count();
    if tlen == 0 {
        return None;
    }
    let rest = &name[tlen..];
    let dlen = rest.bytes().take_while(u8::is_ascii_digit).count();
    let num = if dlen == 0 {
        0
    } else {
        rest[..dlen].parse().ok()?
    };
    let prop = match &rest[dlen..] {
        "" => "",
        p => match p.strip_prefix('_') {
            Some(p) if !p.is_empty() => p,
            _ => return None,
        },
    };
    Some((&name[..tlen], num, prop))
}

type SensorData = BTreeMap<String, BTreeMap<String, String>>;

fn collect_sensor_data(dir: &Path, data: &mut SensorData) -> std::io::Result<()> {
    // Every sensor file is read relative to the open directory (openat), as node_exporter
    // reads them: one read(2), only newlines stripped.
    let open = sysfs::Dir::open(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let fname = entry.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        let Some((typ, num, prop)) = explode(fname) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&typ) {
            continue;
        }
        if let Ok(v) = open.attr_raw(fname) {
            let v = v.trim_matches('\n').to_owned();
            data.entry(format!("{typ}{num}"))
                .or_default()
                .insert(prop.to_owned(), v);
        }
    }
    Ok(())
}

/// The `chip` label of a hwmon directory.
pub fn chip_name(dir: &Path) -> Option<String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = dev
            .file_name()
            .map(|s| clean_name(&s.to_string_lossy()))
            .unwrap_or_default();
        let typ = dev
            .parent()
            .and_then(Path::file_name)
            .map(|s| clean_name(&s.to_string_lossy()))
            .unwrap_or_default();
        if !typ.is_empty() && !name.is_empty() {
            return Some(format!("{typ}_{name}"));
        }
        if !name.is_empty() {
            return Some(name);
        }
    }
    if let Some(n) = std::fs::read_to_string(dir.join("name"))
        .ok()
        .map(|s| clean_name(&s))
    {
        if !n.is_empty() {
            return Some(n);
        }
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let n = clean_name(&real.file_name()?.to_string_lossy());
    (!n.is_empty()).then_some(n)
}

fn gauge(out: &mut MetricSet, name: &str, help: &str, chip: &str, sensor: &str, v: f64) {
    out.family_dyn(name, help, MetricType::Gauge)
        .sample(&[("chip", chip), ("sensor", sensor)], v);
}

fn parse_f64(s: &str) -> Option<f64> {
    // Go's ParseFloat: plain decimal/exponent numbers (and inf/nan, which sysfs never has).
    let s = s.trim_matches(|c: char| c == ' ');
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
    {
        return None;
    }
    s.parse().ok()
}

fn update_chip(dir: &Path, out: &mut MetricSet) -> anyhow::Result<()> {
    let chip = chip_name(dir)
        .ok_or_else(|| anyhow::anyhow!("could not derive a chip name for {}", dir.display()))?;
    let mut data = SensorData::new();
    collect_sensor_data(dir, &mut data)?;
    let dev = dir.join("device");
    if dev.exists() {
        collect_sensor_data(&dev, &mut data)?;
    }
    if let Some(n) = std::fs::read_to_string(dir.join("name"))
        .ok()
        .map(|s| clean_name(&s))
    {
        if !n.is_empty() {
            out.gauge(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
            )
            .sample(&[("chip", &chip), ("chip_name", &n)], 1.0);
        }
    }
    for (sensor, props) in &data {
        let Some((typ, _, _)) = explode(sensor) else {
            continue;
        };
        // node_exporter 1.5 exposes the label text as it is (only newlines trimmed).
        if let Some(label) = props.get("label") {
            if !label.is_empty() {
                out.gauge("node_hwmon_sensor_label", "Label for given chip and sensor")
                    .sample(
                        &[("chip", &chip), ("label", label), ("sensor", sensor)],
                        1.0,
                    );
            }
        }
        match typ {
            "beep_enable" => {
                let v = if props.get("").map(String::as_str) == Some("1") {
                    1.0
                } else {
                    0.0
                };
                gauge(
                    out,
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled",
                    &chip,
                    sensor,
                    v,
                );
                continue;
            }
            "vrm" => {
                if let Some(v) = props.get("").and_then(|s| parse_f64(s)) {
                    gauge(
                        out,
                        "node_hwmon_voltage_regulator_version",
                        "Hardware voltage regulator",
                        &chip,
                        sensor,
                        v,
                    );
                }
                continue;
            }
            "update_interval" => {
                if let Some(v) = props.get("").and_then(|s| parse_f64(s)) {
                    gauge(
                        out,
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        &chip,
                        sensor,
                        v * 0.001,
                    );
                }
                continue;
            }
            _ => {}
        }
        let prefix = format!("node_hwmon_{typ}");
        for (element, value) in props {
            if element == "label" {
                continue;
            }
            let mut name = prefix.clone();
            if element == "input" {
                if props.contains_key("") {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean_name(element));
            }
            let Some(v) = parse_f64(value) else { continue };
            let el = element.as_str();
            let (name, help, v) = match (typ, el) {
                (_, "fault" | "alarm") => {
                    (name, format!("Hardware sensor {el} status ({typ})"), v)
                }
                (_, "beep") => (
                    name + "_enabled",
                    "Hardware monitor sensor has beeping enabled".to_owned(),
                    v,
                ),
                ("in" | "cpu", _) => (
                    name + "_volts",
                    format!("Hardware monitor for voltage ({el})"),
                    v * 0.001,
                ),
                ("temp", e) if e != "type" => {
                    let e = if e.is_empty() { "input" } else { e };
                    (
                        name + "_celsius",
                        format!("Hardware monitor for temperature ({e})"),
                        v * 0.001,
                    )
                }
                ("curr", _) => (
                    name + "_amps",
                    format!("Hardware monitor for current ({el})"),
                    v * 0.001,
                ),
                ("energy", _) => {
                    out.family(
                        name + "_joule_total",
                        format!("Hardware monitor for joules used so far ({el})"),
                        MetricType::Counter,
                    )
                    .sample(&[("chip", &chip), ("sensor", sensor)], v / 1e6);
                    continue;
                }
                ("power", "accuracy") => (
                    name,
                    "Hardware monitor power meter accuracy, as a ratio".to_owned(),
                    v / 1e6,
                ),
                ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                    name + "_seconds",
                    format!("Hardware monitor power usage update interval ({el})"),
                    v * 0.001,
                ),
                ("power", _) => (
                    name + "_watt",
                    format!("Hardware monitor for power usage in watts ({el})"),
                    v / 1e6,
                ),
                ("humidity", _) => (
                    name,
                    format!("Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({el})"),
                    v / 1e6,
                ),
                ("fan", "input" | "min" | "max" | "target") => (
                    name + "_rpm",
                    format!("Hardware monitor for fan revolutions per minute ({el})"),
                    v,
                ),
                _ => (name, format!("Hardware monitor {typ} element {el}"), v),
            };
            gauge(out, &name, &help, &chip, sensor, v);
        }
    }
    Ok(())
}

impl Collector for Hwmon {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let entries = match std::fs::read_dir(&self.class) {
            Ok(e) => e,
            // No hwmon class: nothing to report, like node_exporter.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let mut last_err = None;
        for d in dirs {
            if let Err(e) = update_chip(&d, out) {
                tracing::debug!(dir = %d.display(), error = %e, "hwmon chip failed");
                last_err = Some(e);
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn explode_like_node_exporter() {
        assert_eq!(explode("temp1_crit"), Some(("temp", 1, "crit")));
        assert_eq!(explode("in0"), Some(("in", 0, "")));
        assert_eq!(explode("update_interval"), Some(("update_interval", 0, "")));
        assert_eq!(
            explode("power1_average_interval"),
            Some(("power", 1, "average_interval"))
        );
        assert_eq!(explode("temp1x"), None);
        assert_eq!(explode("temp1_"), None);
        assert_eq!(explode("1abc"), None);
        assert_eq!(clean_name("Core 0\n"), "core_0");
        assert_eq!(clean_name("0000:00:18.3"), "0000:00:18_3");
    }

    #[test]
    fn golden() {
        let paths = super::super::Paths::fixture(&testdata().join("fixtures/b-hwmon"));
        let c = Hwmon {
            class: paths.sys("class/hwmon"),
        };
        assert_golden("hwmon", &render(&c).unwrap());
    }

    #[test]
    fn missing_class_is_empty_not_an_error() {
        let c = Hwmon {
            class: "/nonexistent/class/hwmon".into(),
        };
        assert_eq!(render(&c).unwrap(), "");
    }

    proptest! {
        #[test]
        fn explode_and_clean_never_panic(s in "\\PC*") {
            let _ = explode(&s);
            let _ = clean_name(&s);
            let _ = parse_f64(&s);
        }
    }
}
