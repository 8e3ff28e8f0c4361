//! `thermal_zone` collector: `node_thermal_zone_temp{type,zone}` (Celsius) from
//! `/sys/class/thermal/thermal_zone<N>/{type,temp}` and
//! `node_cooling_device_{cur,max}_state{name,type}` from `cooling_device<N>/`.
//!
//! node_exporter 1.5 fails the whole collector when one zone lacks `temp` or has garbage in
//! it (seen on laptops whose `iwlwifi` zone answers ENODATA while the radio is off); here
//! such a zone or cooling device is skipped and the others are reported.

use std::path::PathBuf;
use std::sync::Arc;

use hpcmon_kit::{sysfs, Collector, Context, MetricSet};

use super::Config;

/// Builds the `thermal_zone` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(ThermalZone {
        class: cfg.paths.sys("class/thermal"),
    }))
}

/// The `thermal_zone` collector.
pub struct ThermalZone {
    class: PathBuf,
}

impl Collector for ThermalZone {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for (name, path) in &sysfs::entries_or_empty(&self.class)? {
            let Ok(dir) = sysfs::Dir::open(path) else {
                continue;
            };
            let read = |attr: &str| dir.attr(attr).ok();
            let read_i64 = |attr: &str| dir.i64(attr).ok();
            if let Some(zone) = name.strip_prefix("thermal_zone") {
                let (Some(typ), Some(temp)) = (read("type"), read_i64("temp")) else {
                    tracing::debug!(zone = %name, "thermal zone without a readable type/temp, skipped");
                    continue;
                };
                out.gauge("node_thermal_zone_temp", "Zone temperature in Celsius")
                    .sample(&[("type", &typ), ("zone", zone)], temp as f64 / 1000.0);
            } else if let Some(n) = name.strip_prefix("cooling_device") {
                let (Some(typ), Some(max), Some(cur)) =
                    (read("type"), read_i64("max_state"), read_i64("cur_state"))
                else {
                    tracing::debug!(device = %name, "cooling device without readable states, skipped");
                    continue;
                };
                out.gauge(
                    "node_cooling_device_cur_state",
                    "Current throttle state of the cooling device",
                )
                .sample(&[("name", n), ("type", &typ)], cur as f64);
                out.gauge(
                    "node_cooling_device_max_state",
                    "Maximum throttle state of the cooling device",
                )
                .sample(&[("name", n), ("type", &typ)], max as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};

    #[test]
    fn golden() {
        let c = ThermalZone {
            class: testdata().join("fixtures/b-thermal_zone/sys/class/thermal"),
        };
        assert_golden("thermal_zone", &render(&c).unwrap());
    }

    #[test]
    fn broken_zone_is_skipped_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let z = tmp.path().join("thermal_zone0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("type"), "iwlwifi_1\n").unwrap();
        let z1 = tmp.path().join("thermal_zone1");
        std::fs::create_dir_all(&z1).unwrap();
        std::fs::write(z1.join("type"), "acpitz\n").unwrap();
        std::fs::write(z1.join("temp"), "garbage\n").unwrap();
        let z2 = tmp.path().join("thermal_zone2");
        std::fs::create_dir_all(&z2).unwrap();
        std::fs::write(z2.join("type"), "ok\n").unwrap();
        std::fs::write(z2.join("temp"), "41000\n").unwrap();
        let c = ThermalZone {
            class: tmp.path().to_owned(),
        };
        let text = render(&c).unwrap();
        assert!(text.contains("node_thermal_zone_temp{type=\"ok\",zone=\"2\"} 41\n"));
        assert!(!text.contains("iwlwifi"));
        assert!(!text.contains("acpitz"));
    }
}
