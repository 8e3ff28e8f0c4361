//! `time` collector: `node_time_seconds`, `node_time_zone_offset_seconds{time_zone}` and the
//! clock sources from sysfs (`node_time_clocksource_available_info`,
//! `node_time_clocksource_current_info`), like node_exporter 1.5.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

extern "C" {
    fn tzset();
}

/// The local time zone's abbreviation and UTC offset in seconds at `unix_secs`.
pub(crate) fn zone_at(unix_secs: i64) -> (String, i64) {
    // SAFETY: tzset and localtime_r are thread-safe in glibc and musl; `tm` is plain data
    // and tm_zone (if set) points to a NUL-terminated static string.
    unsafe {
        tzset();
        let t: libc::time_t = unix_secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return ("UTC".to_owned(), 0);
        }
        let name = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (name, tm.tm_gmtoff as i64)
    }
}

/// One `clocksourceN` directory: its available and current clock sources.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClockSource {
    pub available: Vec<String>,
    pub current: String,
}

/// The `devices/system/clocksource/clocksource[0-9]*` directories in numeric order (none:
/// empty).
fn clocksource_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix("clocksource")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, d)| d).collect()
}

/// The `available_clocksource` and `current_clocksource` files of one directory.
type ClockSourceFiles = (KeptFile, KeptFile);

fn clocksource_files(dir: &Path) -> Vec<ClockSourceFiles> {
    clocksource_dirs(dir)
        .into_iter()
        .map(|d| {
            (
                KeptFile::new(d.join("available_clocksource")),
                KeptFile::new(d.join("current_clocksource")),
            )
        })
        .collect()
}

/// Reads the clock sources of `files` (a directory whose files cannot be read is left out).
fn read_clocksources(files: &[ClockSourceFiles]) -> Vec<ClockSource> {
    files
        .iter()
        .filter_map(|(available, current)| {
            let available = available.read_to_string().ok()?;
            let current = current.read_to_string().ok()?;
            Some(ClockSource {
                available: available
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect(),
                current: current.trim().to_owned(),
            })
        })
        .collect()
}

/// Reads `devices/system/clocksource/clocksource[0-9]*` in numeric order (none: empty).
#[cfg(test)]
pub(crate) fn clocksources(dir: &Path) -> Vec<ClockSource> {
    read_clocksources(&clocksource_files(dir))
}

/// Writes the clock source infos; `device` is the index, as node_exporter does.
pub(crate) fn emit_clocksources(sources: &[ClockSource], out: &mut MetricSet) {
    for (i, cs) in sources.iter().enumerate() {
        let device = i.to_string();
        let fam = out.gauge(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
        );
        for a in &cs.available {
            fam.sample(&[("device", &device), ("clocksource", a)], 1.0);
        }
        out.gauge(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
        )
        .sample(&[("device", &device), ("clocksource", &cs.current)], 1.0);
    }
}

/// The clock source devices are listed once (the kernel has one, `clocksource0`, and it does
/// not come and go) and their two files kept open.
struct Time {
    clocksources: Vec<ClockSourceFiles>,
}

/// Builds the `time` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Time {
        clocksources: clocksource_files(&cfg.paths.sys("devices/system/clocksource")),
    }))
}

impl Collector for Time {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        out.gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
        )
        .sample(&[], now.as_nanos() as f64 / 1e9);
        let (zone, offset) = zone_at(now.as_secs() as i64);
        out.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
        )
        .sample(&[("time_zone", &zone)], offset as f64);
        emit_clocksources(&read_clocksources(&self.clocksources), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use hpcmon_kit::metrics;

    #[test]
    fn golden_clocksources() {
        // This machine's clocksource0 plus a second device, as recorded trees.
        let dir = testdata().join("fixtures/a-time/sys/devices/system/clocksource");
        let mut set = MetricSet::new();
        emit_clocksources(&clocksources(&dir), &mut set);
        set.normalize();
        assert_golden("time_clocksource", &metrics::encode_text(&set));
    }

    #[test]
    fn time_and_zone() {
        let c = new(&test_config(&testdata().join("fixtures/a-time"), &[])).unwrap();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let t = render(&*c).unwrap();
        let line = t
            .lines()
            .find(|l| l.starts_with("node_time_seconds "))
            .unwrap();
        let v: f64 = line["node_time_seconds ".len()..].parse().unwrap();
        assert!(v >= before.floor() && v < before + 60.0, "{line}");
        assert!(
            t.contains("node_time_zone_offset_seconds{time_zone="),
            "{t}"
        );
        assert!(
            t.contains("node_time_clocksource_current_info{device=\"0\",clocksource=\"tsc\"} 1")
        );
    }

    #[test]
    fn zone_follows_tz() {
        // In UTC the zone is "UTC" with offset 0 (the test binary's TZ is unset or UTC here;
        // a different zone must still report a consistent, bounded offset).
        let (name, off) = zone_at(0);
        assert!(!name.is_empty());
        assert!(off.abs() <= 14 * 3600, "{off}");
    }

    #[test]
    fn no_clocksource_dir() {
        let dir = tempfile::tempdir().unwrap();
        let t = render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap();
        assert!(!t.contains("clocksource"));
        assert!(t.contains("node_time_seconds "));
    }
}
