//! `dmi` collector: `node_dmi_info`, constant 1, labelled with the firmware's DMI strings
//! from `/sys/class/dmi/id/` (BIOS, board, chassis, product and system vendor), as
//! node_exporter 1.5. Fields the kernel does not expose, or that only root may read (serial
//! numbers, UUID), are left out.
//!
//! DMI does not change while the machine runs: it is read once, at startup. No DMI
//! (virtual machines without SMBIOS, non-x86) reports the collector as failed, as
//! node_exporter does.

use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// sysfs file → label, in node_exporter's label order.
const FIELDS: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

/// sysfs reads at most this much of an attribute (node_exporter reads 128 bytes).
const MAX: usize = 128;

/// The `(label, value)` pairs of the DMI directory `dir`. Unreadable fields (permission)
/// are skipped; a missing directory is an error.
pub(crate) fn read_dmi(dir: &std::path::Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    use std::io::Read as _;
    std::fs::read_dir(dir)?;
    let mut out = Vec::new();
    for (file, label) in FIELDS {
        let path = dir.join(file);
        let mut buf = Vec::with_capacity(MAX);
        let r = std::fs::File::open(&path).and_then(|f| f.take(MAX as u64).read_to_end(&mut buf));
        match r {
            Ok(_) => {
                let v = String::from_utf8_lossy(&buf).trim().to_owned();
                out.push((label, v));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

struct Dmi {
    labels: anyhow::Result<Vec<(&'static str, String)>, String>,
}

/// Builds the `dmi` collector (reading DMI once).
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let dir = cfg.paths.sys("class/dmi/id");
    let labels = match read_dmi(&dir) {
        Ok(l) if l.is_empty() => Err(format!("no data: no DMI fields in {}", dir.display())),
        Ok(l) => Ok(l),
        Err(e) => Err(format!("no data: reading {}: {e}", dir.display())),
    };
    Ok(Arc::new(Dmi { labels }))
}

impl Collector for Dmi {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let labels = self.labels.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.gauge(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, \
             board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, \
             chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, \
             product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
        )
        .sample(&pairs, 1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};

    #[test]
    fn golden() {
        let c = new(&test_config(&testdata().join("fixtures/b-dmi"), &[])).unwrap();
        assert_golden("dmi", &render(&*c).unwrap());
    }

    #[test]
    fn no_dmi_fails_the_collector_but_not_startup() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err());
    }
}
