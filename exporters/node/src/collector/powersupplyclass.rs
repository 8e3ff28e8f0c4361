//! `powersupplyclass` collector: power supplies (batteries, mains adapters, UPS, server
//! PSUs exposed by their drivers) from `/sys/class/power_supply/<supply>/`, as node_exporter
//! 1.5: `node_power_supply_<attribute>{power_supply}` gauges (µA, µV, µWh, µW scaled to
//! A, V, Wh, W; tenths of °C to °C) and `node_power_supply_info{power_supply,...}` with the
//! supply's text attributes. Supplies matching `--collector.powersupply.ignored-supplies`
//! are skipped.
//!
//! No power supply class fails the collector, as node_exporter reports it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::read;
use super::Config;

/// Flags of the `powersupplyclass` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(
        long = "collector.powersupply.ignored-supplies",
        id = "collector.powersupply.ignored-supplies",
        default_value = "^$",
        value_name = "REGEX"
    )]
    pub ignored_supplies: String,
}

/// Numeric attribute file → (metric suffix, divisor).
const NUMERIC: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Attributes parsed as numbers (and so checked) that node_exporter does not expose.
const PARSED_ONLY: [&str; 7] = [
    "charge_avg",
    "current_avg",
    "energy_avg",
    "power_avg",
    "time_to_empty_avg",
    "time_to_full_avg",
    "voltage_avg",
];

/// Text attribute file → info label.
const TEXT: [(&str, &str); 11] = [
    ("capacity_level", "capacity_level"),
    ("charge_type", "charge_type"),
    ("health", "health"),
    ("manufacturer", "manufacturer"),
    ("model_name", "model_name"),
    ("serial_number", "serial_number"),
    ("status", "status"),
    ("technology", "technology"),
    ("type", "type"),
    ("usb_type", "usb_type"),
    ("scope", "scope"),
];

/// One supply: numeric metrics `(suffix, value)` and info labels.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Supply {
    pub values: Vec<(&'static str, f64)>,
    pub info: BTreeMap<&'static str, String>,
}

/// An attribute that cannot be read for these reasons is skipped: node_exporter's list
/// ([`read::unsupported`]) plus ENODATA, which some battery drivers answer while charging and
/// which fails node_exporter 1.5's whole collector.
fn skippable(e: &std::io::Error) -> bool {
    read::unsupported(e) || e.raw_os_error() == Some(libc::ENODATA)
}

/// Reads one `power_supply/<name>` directory.
pub(crate) fn read_supply(dir: &std::path::Path) -> anyhow::Result<Supply> {
    let mut s = Supply::default();
    for (name, p) in read::entries(dir).with_context(|| format!("reading {}", dir.display()))? {
        let numeric = NUMERIC.iter().find(|(f, ..)| *f == name);
        let text = TEXT.iter().find(|(f, _)| *f == name);
        if (numeric.is_none() && text.is_none() && !PARSED_ONLY.contains(&name.as_str()))
            || !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file())
        {
            continue;
        }
        let v = match read::attr(&p) {
            Ok(v) => v,
            Err(e) if skippable(&e) => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read file {}", p.display()))
            }
        };
        if let Some((_, label)) = text {
            s.info.insert(label, v);
            continue;
        }
        let n =
            read::go_int(&v).with_context(|| format!("invalid number {v:?} in {}", p.display()))?;
        if let Some((_, metric, div)) = numeric {
            s.values.push((metric, n as f64 / div));
        }
    }
    Ok(s)
}

struct PowerSupplyClass {
    class: PathBuf,
    ignored: Regex,
}

/// Builds the `powersupplyclass` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let pat = &cfg.flags::<Flags>()?.ignored_supplies;
    Ok(Arc::new(PowerSupplyClass {
        class: cfg.paths.sys("class/power_supply"),
        ignored: Regex::new(pat)
            .with_context(|| format!("invalid --collector.powersupply.ignored-supplies {pat:?}"))?,
    }))
}

impl Collector for PowerSupplyClass {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let supplies = read::entries(&self.class)
            .with_context(|| format!("no data: reading {}", self.class.display()))?;
        let mut read_all = Vec::new();
        for (name, dir) in supplies {
            let s = read_supply(&dir).context("could not get power_supply class info")?;
            if !self.ignored.is_match(&name) {
                read_all.push((name, s));
            }
        }
        for (name, s) in &read_all {
            for (metric, v) in &s.values {
                out.gauge(
                    format!("node_power_supply_{metric}"),
                    format!("{metric} value of /sys/class/power_supply/<power_supply>."),
                )
                .sample(&[("power_supply", name)], *v);
            }
            let mut labels: Vec<(&str, &str)> = vec![("power_supply", name)];
            labels.extend(
                s.info
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (*k, v.as_str())),
            );
            labels.sort();
            out.gauge(
                "node_power_supply_info",
                "info of /sys/class/power_supply/<power_supply>.",
            )
            .sample(&labels, 1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};

    #[test]
    fn golden() {
        let c = new(&test_config(
            &testdata().join("fixtures/b-powersupplyclass"),
            &[],
        ))
        .unwrap();
        assert_golden("powersupplyclass", &render(&*c).unwrap());
    }

    #[test]
    fn ignored_supplies_and_bad_numbers() {
        let dir = testdata().join("fixtures/b-powersupplyclass");
        let c = new(&test_config(
            &dir,
            &["--collector.powersupply.ignored-supplies=^BAT"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(!t.contains("BAT0") && t.contains("AC"), "{t}");
        let tmp = tempfile::tempdir().unwrap();
        let c = new(&test_config(tmp.path(), &[])).unwrap();
        assert!(render(&*c).is_err(), "no class");
        let s = tmp.path().join("sys/class/power_supply/PSU1");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join("online"), "1\n").unwrap();
        std::fs::write(s.join("power_now"), "-250000000\n").unwrap();
        let t = render(&*c).unwrap();
        assert!(
            t.contains("node_power_supply_power_watt{power_supply=\"PSU1\"} -250\n"),
            "{t}"
        );
        std::fs::write(s.join("voltage_avg"), "high\n").unwrap();
        assert!(render(&*c).is_err());
    }
}
