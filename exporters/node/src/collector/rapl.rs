//! `rapl` collector: energy counters of the RAPL power zones (package, core, uncore, dram,
//! psys) from `/sys/class/powercap/*/energy_uj`, in joules, as node_exporter 1.5:
//! `node_rapl_<zone>_joules_total{index,path}`, or with `--collector.rapl.enable-zone-label`
//! one family `node_rapl_joules_total{index,path,rapl_zone}`.
//!
//! A zone's `index` comes from its name (`package-1` → zone `package`, index 1) or counts the
//! zones of that name in directory order; `path` is the zone's sysfs directory. Unreadable
//! `energy_uj` (root-only since Linux 5.10) or no powercap class fails the collector, as
//! node_exporter reports it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// Flags of the `rapl` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Use one family node_rapl_joules_total with a rapl_zone label instead of one family
    /// per zone name.
    #[arg(
        long = "collector.rapl.enable-zone-label",
        id = "collector.rapl.enable-zone-label"
    )]
    pub enable_zone_label: bool,
}

/// One RAPL zone.
#[derive(Debug, PartialEq)]
pub(crate) struct Zone {
    pub name: String,
    pub index: u64,
    pub path: PathBuf,
}

/// Splits `package-1` into `("package", Some(1))`; other names have no index.
fn name_and_index(raw: &str) -> (&str, Option<u64>) {
    let mut parts = raw.split('-');
    if let (Some(n), Some(i), None) = (parts.next(), parts.next(), parts.next()) {
        // Go's strconv.Atoi: optional sign, decimal digits.
        if let Ok(i) = i.strip_prefix('+').unwrap_or(i).parse::<u64>() {
            return (n, Some(i));
        }
    }
    (raw, None)
}

/// The zones under `class` (`/sys/class/powercap`), in directory order. A directory without
/// a `name` is not a zone (`intel-rapl` itself); a zone without a readable
/// `max_energy_range_uj` is an error, as in node_exporter.
pub(crate) fn zones(class: &std::path::Path) -> anyhow::Result<Vec<Zone>> {
    let mut used: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::new();
    for (_, dir) in read::entries(class).with_context(|| format!("reading {}", class.display()))? {
        let Ok(raw) = read::attr(&dir.join("name")) else {
            continue;
        };
        let (name, index) = name_and_index(&raw);
        let index = index.unwrap_or_else(|| used.get(name).copied().unwrap_or(0));
        read::u64_file(&dir.join("max_energy_range_uj"))?;
        used.insert(name.to_owned(), index + 1);
        out.push(Zone {
            name: name.to_owned(),
            index,
            path: dir,
        });
    }
    Ok(out)
}

struct Rapl {
    class: PathBuf,
    zone_label: bool,
}

/// Builds the `rapl` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Rapl {
        class: cfg.paths.sys("class/powercap"),
        zone_label: cfg.flags::<Flags>()?.enable_zone_label,
    }))
}

impl Collector for Rapl {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let zones = zones(&self.class).context("failed to retrieve rapl stats")?;
        for z in zones {
            let uj = read::u64_file(&z.path.join("energy_uj"))?;
            let joules = uj as f64 / 1e6;
            let index = z.index.to_string();
            let path = z.path.to_string_lossy();
            if self.zone_label {
                out.counter("node_rapl_joules_total", "Current RAPL value in joules")
                    .sample(
                        &[("index", &index), ("path", &path), ("rapl_zone", &z.name)],
                        joules,
                    );
            } else {
                let name = format!(
                    "node_rapl_{}_joules_total",
                    read::sanitize_metric_name(&z.name)
                );
                let help = format!("Current RAPL {} value in joules", z.name);
                out.counter_dyn(&name, &help)
                    .sample(&[("index", &index), ("path", &path)], joules);
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

    fn golden_of(args: &[&str]) -> String {
        let dir = testdata().join("fixtures/b-rapl");
        let c = new(&test_config(&dir, args)).unwrap();
        // `path` is absolute: make the golden file independent of the checkout's place.
        render(&*c)
            .unwrap()
            .replace(&dir.display().to_string(), "FIXTURE")
    }

    #[test]
    fn golden() {
        assert_golden("rapl", &golden_of(&[]));
    }

    #[test]
    fn golden_zone_label() {
        assert_golden(
            "rapl_zone_label",
            &golden_of(&["--collector.rapl.enable-zone-label"]),
        );
    }

    #[test]
    fn index_from_name_or_count() {
        assert_eq!(name_and_index("package-1"), ("package", Some(1)));
        assert_eq!(name_and_index("core"), ("core", None));
        assert_eq!(name_and_index("a-b-1"), ("a-b-1", None));
        assert_eq!(name_and_index("package-x"), ("package-x", None));
    }

    #[test]
    fn unreadable_energy_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("sys/class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), "package-0\n").unwrap();
        std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err());
        std::fs::write(z.join("energy_uj"), "1500000\n").unwrap();
        assert!(render(&*c)
            .unwrap()
            .contains("node_rapl_package_joules_total"));
        assert!(render(&*new(&test_config(&dir.path().join("none"), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn name_split_never_panics(s in "\\PC{0,20}") {
            let _ = name_and_index(&s);
            let _ = read::sanitize_metric_name(&s);
        }
    }
}
