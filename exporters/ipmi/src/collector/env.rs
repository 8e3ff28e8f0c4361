//! `env` collector: the node's own environment sensors, for nodes without a BMC (or to read
//! a rack's inlet temperature from whatever the node has). Families are deliberately not
//! `ipmi_*`, so they never mix with BMC sensors in queries:
//!
//! - `env_temperature_celsius{source,device,chip,sensor,label}` — hwmon `tempN_input` and
//!   thermal zones (`source="hwmon"|"thermal_zone"`);
//! - `env_temperature_critical_celsius{...}` — hwmon `tempN_crit`, thermal-zone `critical`
//!   trip points;
//! - `env_fan_speed_rpm{...}` — hwmon `fanN_input`;
//! - `env_power_watts{...}` — hwmon `powerN_input` (or `powerN_average`).
//!
//! `device` is the sysfs directory (`hwmon3`, `thermal_zone0`), `chip` the hwmon `name` or
//! the zone `type`, `sensor` the element (`temp1`, `fan2`), `label` the hwmon
//! `<sensor>_label` (empty if none). Which sources are read comes from the config's
//! `environment.sources` (room sensors over Modbus/SNMP will be further kinds there). Rack
//! and room are Prometheus target labels, not something a node can know.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::config::Source;
use crate::remote::ConfigHolder;

/// Flags of the `env` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// sysfs mount point (for the env collector).
    #[arg(
        long = "path.sysfs",
        id = "path.sysfs",
        value_name = "SYSFS",
        default_value = "/sys"
    )]
    pub sysfs: PathBuf,
}

/// The `env` collector, reading the `environment` section of the configuration.
pub fn new(cfg: &super::Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Env {
        sysfs: cfg.flags::<Flags>()?.sysfs.clone(),
        config: cfg.config.clone(),
    }))
}

/// The `env` collector.
pub struct Env {
    /// sysfs mount point.
    pub sysfs: PathBuf,
    /// Configuration (for `environment.sources`).
    pub config: Arc<ConfigHolder>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_num(p: &Path) -> Option<f64> {
    read_trim(p)?.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn sorted_dirs(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix).then(|| (n, e.path()))
        })
        .collect();
    v.sort();
    v
}

const TEMP: &str = "env_temperature_celsius";
const TEMP_HELP: &str =
    "Temperature from the node's hwmon or thermal-zone sensors, in degrees Celsius.";
const CRIT: &str = "env_temperature_critical_celsius";
const CRIT_HELP: &str =
    "Critical temperature of a node sensor (hwmon temp*_crit, thermal-zone critical trip point).";

/// Reads hwmon chips under `class` (`/sys/class/hwmon`).
pub fn hwmon(class: &Path, out: &mut MetricSet) {
    for (dev, path) in sorted_dirs(class, "hwmon") {
        // Some drivers keep the sensor files in device/.
        let base = if path.join("name").exists() {
            path.clone()
        } else {
            path.join("device")
        };
        let chip = read_trim(&base.join("name")).unwrap_or_else(|| dev.clone());
        let mut files: Vec<String> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        for f in &files {
            let Some((sensor, attr)) = f.split_once('_') else {
                continue;
            };
            let (name, help, scale) =
                match (sensor.trim_end_matches(|c: char| c.is_ascii_digit()), attr) {
                    ("temp", "input") => (TEMP, TEMP_HELP, 1e-3),
                    ("temp", "crit") => (CRIT, CRIT_HELP, 1e-3),
                    ("fan", "input") => (
                        "env_fan_speed_rpm",
                        "Fan speed from the node's hwmon sensors, in rotations per minute.",
                        1.0,
                    ),
                    ("power", "input") => (
                        "env_power_watts",
                        "Power from the node's hwmon sensors, in Watts.",
                        1e-6,
                    ),
                    ("power", "average") if !files.contains(&format!("{sensor}_input")) => (
                        "env_power_watts",
                        "Power from the node's hwmon sensors, in Watts.",
                        1e-6,
                    ),
                    _ => continue,
                };
            if sensor.len() == sensor.trim_end_matches(|c: char| c.is_ascii_digit()).len() {
                continue;
            }
            let Some(v) = read_num(&base.join(f)) else {
                continue;
            };
            let label = read_trim(&base.join(format!("{sensor}_label"))).unwrap_or_default();
            out.gauge(name, help).sample(
                &[
                    ("source", "hwmon"),
                    ("device", &dev),
                    ("chip", &chip),
                    ("sensor", sensor),
                    ("label", &label),
                ],
                v * scale,
            );
        }
    }
}

/// Reads thermal zones under `class` (`/sys/class/thermal`).
pub fn thermal_zones(class: &Path, out: &mut MetricSet) {
    for (dev, path) in sorted_dirs(class, "thermal_zone") {
        let Some(t) = read_num(&path.join("temp")) else {
            continue;
        };
        let chip = read_trim(&path.join("type")).unwrap_or_default();
        let labels = [
            ("source", "thermal_zone"),
            ("device", dev.as_str()),
            ("chip", chip.as_str()),
            ("sensor", "temp"),
            ("label", ""),
        ];
        out.gauge(TEMP, TEMP_HELP).sample(&labels, t / 1000.0);
        for i in 0..32 {
            let Some(kind) = read_trim(&path.join(format!("trip_point_{i}_type"))) else {
                break;
            };
            if kind == "critical" {
                if let Some(c) = read_num(&path.join(format!("trip_point_{i}_temp"))) {
                    out.gauge(CRIT, CRIT_HELP).sample(&labels, c / 1000.0);
                }
                break;
            }
        }
    }
}

impl Collector for Env {
    fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for s in &self.config.current().environment.sources {
            match s {
                Source::Hwmon => hwmon(&self.sysfs.join("class/hwmon"), out),
                Source::ThermalZone => thermal_zones(&self.sysfs.join("class/thermal"), out),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_fixture_sysfs() {
        let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sys");
        let mut out = MetricSet::new();
        hwmon(&sys.join("class/hwmon"), &mut out);
        thermal_zones(&sys.join("class/thermal"), &mut out);
        golden("env.prom", &text(out));
    }

    #[test]
    fn missing_sysfs_is_empty_not_an_error() {
        let mut out = MetricSet::new();
        hwmon(Path::new("/nonexistent/hwmon"), &mut out);
        thermal_zones(Path::new("/nonexistent/thermal"), &mut out);
        assert_eq!(out.sample_count(), 0);
    }
}
