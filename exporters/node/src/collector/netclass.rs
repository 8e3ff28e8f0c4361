//! `netclass` collector: network interface properties from `/sys/class/net/<iface>/`:
//! `node_network_info{address,broadcast,device,duplex,ifalias,operstate}`, `node_network_up`,
//! `node_network_mtu_bytes`, `node_network_speed_bytes`, `node_network_carrier`,
//! `node_network_carrier_{,up_,down_}changes_total`, `node_network_flags`,
//! `node_network_iface_{id,link,link_mode}`, `node_network_protocol_type`,
//! `node_network_transmit_queue_length` and the other per-attribute gauges of node_exporter 1.5.
//!
//! An attribute that is missing or unreadable (the kernel answers EINVAL for `carrier` or
//! `speed` of a down interface) is simply not reported; one that does not parse as an integer
//! is reported as 0, as node_exporter does. Integers are read like Go's `ParseInt(s, 0, 64)`
//! (`0x` hex, leading-zero octal).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use hpcmon_kit::metrics::MetricType;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::Config;

/// Flags of the `netclass` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of net devices to ignore for netclass collector.
    #[arg(long = "collector.netclass.ignored-devices", default_value = "^$")]
    pub ignored_devices: String,
    /// Ignore devices where the speed is invalid (negative).
    #[arg(long = "collector.netclass.ignore-invalid-speed")]
    pub ignore_invalid_speed: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            ignored_devices: "^$".into(),
            ignore_invalid_speed: false,
        }
    }
}

/// Builds the `netclass` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Netclass::new(
        cfg.paths.sys("class/net"),
        cfg.flags::<Flags>()?,
    )?))
}

/// The `netclass` collector.
pub struct Netclass {
    class: PathBuf,
    ignored: Regex,
    ignore_invalid_speed: bool,
    /// `(metric, help)` of each of [`PROPS`], made once.
    prop_names: Vec<(String, String)>,
    /// Each device's attribute files, kept open between scrapes (see [`DeviceFiles`]).
    kept: Mutex<HashMap<String, Arc<DeviceFiles>>>,
}

/// The text attributes read for `node_network_info` and `node_network_up`, in this order,
/// then [`PROPS`]' files, then `speed`.
const INFO_ATTRS: [&str; 5] = ["operstate", "address", "broadcast", "duplex", "ifalias"];

/// At most this many devices keep their attribute files open (about 22 descriptors each);
/// further devices are read with one open per attribute.
const MAX_KEPT_DEVICES: usize = 48;

/// One device's attribute files, kept open: a scrape re-reads them with `pread` instead of
/// walking the path, opening and closing each of the ~22 files (netclass is the collector
/// with the most files). A device that disappears fails its reads and is dropped from the
/// cache at the next scrape; one re-created under the same name is reopened by path.
struct DeviceFiles {
    files: Vec<KeptFile>,
}

impl DeviceFiles {
    fn new(dir: &Path) -> Self {
        let names = INFO_ATTRS
            .iter()
            .chain(PROPS.iter().map(|(_, f, _)| f))
            .chain(std::iter::once(&"speed"));
        Self {
            files: names.map(|n| KeptFile::new(dir.join(n))).collect(),
        }
    }

    /// Attribute `i` (in [`INFO_ATTRS`], [`PROPS`], `speed` order), `None` when unreadable.
    fn attr(&self, i: usize) -> Option<String> {
        self.files.get(i)?.attr().ok()
    }
}

impl Netclass {
    /// A collector over `class` (`<sysfs>/class/net`).
    pub fn new(class: PathBuf, flags: &Flags) -> anyhow::Result<Self> {
        Ok(Self {
            class,
            ignored: Regex::new(&flags.ignored_devices)
                .context("--collector.netclass.ignored-devices")?,
            ignore_invalid_speed: flags.ignore_invalid_speed,
            prop_names: PROPS
                .iter()
                .map(|(suffix, _, _)| {
                    (
                        format!("node_network_{suffix}"),
                        format!("Network device property: {suffix}"),
                    )
                })
                .collect(),
            kept: Mutex::new(HashMap::new()),
        })
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b` prefixes, leading-zero
/// octal, `_` separators only after a prefix.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h.replace('_', ""))
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o.replace('_', ""))
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.replace('_', ""))
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].replace('_', ""))
    } else {
        (10, lower)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// `(metric suffix, attribute file, type)` for the plain numeric properties.
const PROPS: &[(&str, &str, MetricType)] = &[
    ("address_assign_type", "addr_assign_type", MetricType::Gauge),
    ("carrier", "carrier", MetricType::Gauge),
    (
        "carrier_changes_total",
        "carrier_changes",
        MetricType::Counter,
    ),
    (
        "carrier_up_changes_total",
        "carrier_up_count",
        MetricType::Counter,
    ),
    (
        "carrier_down_changes_total",
        "carrier_down_count",
        MetricType::Counter,
    ),
    ("device_id", "dev_id", MetricType::Gauge),
    ("dormant", "dormant", MetricType::Gauge),
    ("flags", "flags", MetricType::Gauge),
    ("iface_id", "ifindex", MetricType::Gauge),
    ("iface_link", "iflink", MetricType::Gauge),
    ("iface_link_mode", "link_mode", MetricType::Gauge),
    ("mtu_bytes", "mtu", MetricType::Gauge),
    ("name_assign_type", "name_assign_type", MetricType::Gauge),
    ("net_dev_group", "netdev_group", MetricType::Gauge),
    ("transmit_queue_length", "tx_queue_len", MetricType::Gauge),
    ("protocol_type", "type", MetricType::Gauge),
];

impl Netclass {
    /// One interface, from its kept attribute files.
    fn device(&self, name: &str, files: &DeviceFiles, out: &mut MetricSet) {
        let attr = |i: usize| files.attr(i);
        let dev = [("device", name)];
        let operstate = attr(0).unwrap_or_default();
        out.gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
        )
        .sample(&dev, if operstate == "up" { 1.0 } else { 0.0 });
        let address = attr(1).unwrap_or_default();
        let broadcast = attr(2).unwrap_or_default();
        let duplex = attr(3).unwrap_or_default();
        let ifalias = attr(4).unwrap_or_default();
        out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        )
        .sample(
            &[
                ("address", &address),
                ("broadcast", &broadcast),
                ("device", name),
                ("duplex", &duplex),
                ("ifalias", &ifalias),
                ("operstate", &operstate),
            ],
            1.0,
        );
        for (i, ((_, _, kind), (metric, help))) in PROPS.iter().zip(&self.prop_names).enumerate() {
            let Some(raw) = attr(INFO_ATTRS.len() + i) else {
                continue;
            };
            let v = parse_int(&raw).unwrap_or(0) as f64;
            out.family_dyn(metric, help, *kind).sample(&dev, v);
        }
        if let Some(speed) =
            attr(INFO_ATTRS.len() + PROPS.len()).map(|s| parse_int(&s).unwrap_or(0))
        {
            if speed >= 0 || !self.ignore_invalid_speed {
                out.gauge(
                    "node_network_speed_bytes",
                    "Network device property: speed_bytes",
                )
                .sample(&dev, speed as f64 * 125_000.0);
            }
        }
    }
}

impl Collector for Netclass {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(&self.class)
            .with_context(|| format!("reading {}", self.class.display()))?;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut devs: Vec<(String, Arc<DeviceFiles>)> = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if self.ignored.is_match(&name) {
                continue;
            }
            let files = match kept.get(&name) {
                Some(f) => f.clone(),
                // A new entry: only directories are devices (not `bonding_masters`).
                None if e.path().is_dir() => Arc::new(DeviceFiles::new(&e.path())),
                None => continue,
            };
            devs.push((name, files));
        }
        devs.sort_by(|a, b| a.0.cmp(&b.0));
        // Keep the files of the devices present now (the first ones, up to the cap).
        kept.clear();
        for (name, files) in devs.iter().take(MAX_KEPT_DEVICES) {
            kept.insert(name.clone(), files.clone());
        }
        drop(kept);
        for (name, files) in &devs {
            self.device(name, files, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    fn class() -> PathBuf {
        testdata().join("fixtures/b-netclass/sys/class/net")
    }

    #[test]
    fn golden() {
        let c = Netclass::new(class(), &Flags::default()).unwrap();
        assert_golden("netclass", &render(&c).unwrap());
    }

    #[test]
    fn ignored_devices_and_invalid_speed() {
        let flags = Flags {
            ignored_devices: "^(veth|ifb).*".into(),
            ignore_invalid_speed: true,
        };
        let text = render(&Netclass::new(class(), &flags).unwrap()).unwrap();
        assert!(!text.contains("veth1234"));
        assert!(!text.contains("ifb0"));
        assert!(text.contains("device=\"ib0\""));
        assert!(!text.contains("node_network_speed_bytes{device=\"eth0\"}"));
    }

    #[test]
    fn go_parse_int() {
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("1500"), Some(1500));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("zz"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("--1"), None);
    }

    proptest! {
        #[test]
        fn parse_int_never_panics(s in "\\PC*") {
            let _ = parse_int(&s);
        }
    }
}
