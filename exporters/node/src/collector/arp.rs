//! `arp` collector: `node_arp_entries{device}`, the number of ARP (IPv4 neighbour) table
//! entries per interface, from `/proc/net/arp`, as node_exporter 1.5. Interfaces are
//! filtered by `--collector.arp.device-exclude` or `--collector.arp.device-include`.

use std::collections::BTreeMap;
use std::sync::Arc;

use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::netdev::DeviceFilter;
use super::read;
use super::Config;

/// Flags of the `arp` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of arp devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.arp.device-exclude",
        id = "collector.arp.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Regexp of arp devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.arp.device-include",
        id = "collector.arp.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
}

/// Entries per device (the last column) of `/proc/net/arp`, skipping the header. Every line
/// must have at least six columns.
pub(crate) fn parse(text: &str) -> anyhow::Result<BTreeMap<&str, u64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        anyhow::ensure!(cols.len() >= 6, "unexpected ARP table format: {line:?}");
        if cols[0] != "IP" {
            *out.entry(cols[cols.len() - 1]).or_insert(0) += 1;
        }
    }
    Ok(out)
}

struct Arp {
    path: KeptFile,
    filter: DeviceFilter,
}

/// Builds the `arp` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let flags = cfg.flags::<Flags>()?;
    Ok(Arc::new(Arp {
        path: KeptFile::new(cfg.paths.proc("net/arp")),
        filter: DeviceFilter::new(
            flags.device_exclude.as_deref(),
            flags.device_include.as_deref(),
            None,
            "--collector.arp.device",
        )?,
    }))
}

impl Collector for Arp {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let entries = parse(&text)?;
        let fam = out.gauge("node_arp_entries", "ARP entries by device");
        for (dev, n) in entries {
            if !self.filter.ignored(dev) {
                fam.sample(&[("device", dev)], n as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-arp"), &[])).unwrap();
        assert_golden("arp", &render(&*c).unwrap());
    }

    #[test]
    fn golden_many_devices_filtered() {
        let dir = testdata().join("fixtures/a-arp-many");
        let all = render(&*new(&test_config(&dir, &[])).unwrap()).unwrap();
        assert_golden("arp_many", &all);
        let inc =
            render(&*new(&test_config(&dir, &["--collector.arp.device-include=^ib"])).unwrap())
                .unwrap();
        assert!(
            inc.contains("device=\"ib0\"") && !inc.contains("eno1"),
            "{inc}"
        );
        let exc =
            render(&*new(&test_config(&dir, &["--collector.arp.device-exclude=^ib"])).unwrap())
                .unwrap();
        assert!(
            !exc.contains("device=\"ib0\"") && exc.contains("eno1"),
            "{exc}"
        );
    }

    #[test]
    fn short_line_is_an_error() {
        assert!(parse("IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
