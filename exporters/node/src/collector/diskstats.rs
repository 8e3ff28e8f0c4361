//! `diskstats` collector: block device I/O statistics from `/proc/diskstats`
//! (`node_disk_reads_completed_total`, `node_disk_read_bytes_total`,
//! `node_disk_io_time_seconds_total`, discards, flushes, ...) plus `node_disk_info` and the
//! udev-derived `node_disk_filesystem_info`, `node_disk_device_mapper_info` and
//! `node_disk_ata_*`, like node_exporter 1.5. Devices are filtered by
//! `--collector.diskstats.device-exclude` / `--collector.diskstats.device-include`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet, MetricType};

use super::netdev::DeviceFilter;
use super::Config;

/// node_exporter's default `--collector.diskstats.device-exclude`: partitions, RAM disks,
/// loop and floppy devices.
pub const DEFAULT_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Flags of the `diskstats` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of diskstats devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.diskstats.device-exclude",
        id = "collector.diskstats.device-exclude",
        alias = "collector.diskstats.ignored-devices",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Regexp of diskstats devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.diskstats.device-include",
        id = "collector.diskstats.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
}

/// Bytes per sector in /proc/diskstats (always 512, whatever the device's block size).
const SECTOR: f64 = 512.0;
/// Times in /proc/diskstats are milliseconds; values in these columns are divided by 1000.
const MS: f64 = -1000.0;

/// The per-column metrics, in /proc/diskstats column order: name, help, type, scale (a
/// factor, or a divisor when negative, which keeps `700 ms` exactly `0.7`).
const COLUMNS: [(&str, &str, MetricType, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        MetricType::Counter,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        MetricType::Counter,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        MetricType::Counter,
        MS,
    ),
];

/// One line of /proc/diskstats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Disk {
    pub major: u32,
    pub minor: u32,
    pub name: String,
    /// The statistics columns present (11 before Linux 4.18, 15 before 5.5, 17 since).
    pub stats: Vec<u64>,
}

/// Parses /proc/diskstats. The device name is whatever lies between the minor number and
/// the statistics columns, so a name with spaces survives; lines with fewer than 11
/// statistics (or garbage) are skipped.
pub(crate) fn parse(text: &str) -> Vec<Disk> {
    let mut out = Vec::new();
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
        if tokens.len() < 3 + 11 {
            continue;
        }
        let (Ok(major), Ok(minor)) = (tokens[0].parse::<u32>(), tokens[1].parse::<u32>()) else {
            continue;
        };
        let numeric = tokens[3..]
            .iter()
            .rev()
            .take_while(|t| t.parse::<u64>().is_ok())
            .count();
        // The most statistics columns the numeric tail can hold, leaving >= 1 name token.
        let Some(n) = [17usize, 15, 11].into_iter().find(|&n| n <= numeric) else {
            continue;
        };
        let split = tokens.len() - n;
        let name = tokens[2..split].join(" ");
        let stats = tokens[split..]
            .iter()
            .map(|t| t.parse::<u64>().unwrap_or(0))
            .collect();
        out.push(Disk {
            major,
            minor,
            name,
            stats,
        });
    }
    out
}

/// Reads the `E:KEY=value` properties of a udev database file.
pub(crate) fn parse_udev(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
        .collect()
}

struct DiskStats {
    path: KeptFile,
    udev: PathBuf,
    filter: DeviceFilter,
}

/// Builds the `diskstats` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let f = cfg.flags::<Flags>()?;
    let filter = DeviceFilter::new(
        f.device_exclude.as_deref(),
        f.device_include.as_deref(),
        Some(DEFAULT_EXCLUDE),
        "--collector.diskstats.device",
    )?;
    Ok(Arc::new(DiskStats {
        path: KeptFile::new(cfg.paths.proc("diskstats")),
        udev: cfg.paths.udev_data.clone(),
        filter,
    }))
}

fn scaled(v: u64, scale: f64) -> f64 {
    if scale < 0.0 {
        v as f64 / -scale
    } else {
        v as f64 * scale
    }
}

fn udev_file(dir: &Path, major: u32, minor: u32) -> Option<String> {
    std::fs::read_to_string(dir.join(format!("b{major}:{minor}"))).ok()
}

impl Collector for DiskStats {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = self.path.read_to_string().with_context(|| {
            format!(
                "couldn't get diskstats: reading {}",
                self.path.path().display()
            )
        })?;
        let mut seen = std::collections::HashSet::new();
        for d in parse(&text) {
            if self.filter.ignored(&d.name) || !seen.insert(d.name.clone()) {
                continue;
            }
            let dev = d.name.as_str();
            let udev_text = udev_file(&self.udev, d.major, d.minor).unwrap_or_default();
            let udev = parse_udev(&udev_text);
            let get = |k: &str| {
                udev.iter()
                    .rev()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| *v)
                    .unwrap_or("")
            };
            let serial = match get("SCSI_IDENT_SERIAL") {
                "" => get("ID_SERIAL_SHORT"),
                s => s,
            };
            let (major, minor) = (d.major.to_string(), d.minor.to_string());
            out.gauge("node_disk_info", "Info of /sys/block/<block_device>.")
                .sample(
                    &[
                        ("device", dev),
                        ("major", &major),
                        ("minor", &minor),
                        ("path", get("ID_PATH")),
                        ("wwn", get("ID_WWN")),
                        ("model", get("ID_MODEL")),
                        ("serial", serial),
                        ("revision", get("ID_REVISION")),
                    ],
                    1.0,
                );
            for ((name, help, kind, scale), v) in COLUMNS.iter().zip(&d.stats) {
                out.family(*name, *help, *kind)
                    .sample(&[("device", dev)], scaled(*v, *scale));
            }
            let fstype = get("ID_FS_TYPE");
            if !fstype.is_empty() {
                out.gauge("node_disk_filesystem_info", "Info about disk filesystem.")
                    .sample(
                        &[
                            ("device", dev),
                            ("type", fstype),
                            ("usage", get("ID_FS_USAGE")),
                            ("uuid", get("ID_FS_UUID")),
                            ("version", get("ID_FS_VERSION")),
                        ],
                        1.0,
                    );
            }
            let dm_name = get("DM_NAME");
            if !dm_name.is_empty() {
                out.gauge(
                    "node_disk_device_mapper_info",
                    "Info about disk device mapper.",
                )
                .sample(
                    &[
                        ("device", dev),
                        ("name", dm_name),
                        ("uuid", get("DM_UUID")),
                        ("vg_name", get("DM_VG_NAME")),
                        ("lv_name", get("DM_LV_NAME")),
                        ("lv_layer", get("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            if !get("ID_ATA").is_empty() {
                for (key, name, help) in [
                    (
                        "ID_ATA_WRITE_CACHE",
                        "node_disk_ata_write_cache",
                        "ATA disk has a write cache.",
                    ),
                    (
                        "ID_ATA_WRITE_CACHE_ENABLED",
                        "node_disk_ata_write_cache_enabled",
                        "ATA disk has its write cache enabled.",
                    ),
                    (
                        "ID_ATA_ROTATION_RATE_RPM",
                        "node_disk_ata_rotation_rate_rpm",
                        "ATA disk rotation rate in RPMs (0 for SSDs).",
                    ),
                ] {
                    if let Ok(v) = get(key).parse::<f64>() {
                        out.gauge(name, help).sample(&[("device", dev)], v);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-diskstats"), &[])).unwrap();
        assert_golden("diskstats", &render(&*c).unwrap());
    }

    #[test]
    fn golden_udev_spaces_old_kernels() {
        // sda with udev data (ATA, filesystem), dm-0 (device mapper), a device whose name has
        // spaces, an 11-column and a 15-column line, a truncated line and partitions.
        let c = new(&test_config(
            &testdata().join("fixtures/a-diskstats-odd"),
            &[],
        ))
        .unwrap();
        assert_golden("diskstats_odd", &render(&*c).unwrap());
    }

    #[test]
    fn include_overrides_default_exclude() {
        let dir = testdata().join("fixtures/a-diskstats");
        let c = new(&test_config(
            &dir,
            &["--collector.diskstats.device-include=^loop[01]$"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("node_disk_io_now{device=\"loop0\"} 0\n"), "{t}");
        assert!(t.contains("{device=\"loop1\"}"), "{t}");
        assert!(!t.contains("vda"), "{t}");
        let c = new(&test_config(
            &dir,
            &["--collector.diskstats.device-exclude=^(vda|loop.*)$"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("{device=\"zram0\"}") && !t.contains("vda") && !t.contains("loop"));
    }

    #[test]
    fn both_filters_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(new(&test_config(
            dir.path(),
            &[
                "--collector.diskstats.device-include=a",
                "--collector.diskstats.device-exclude=b"
            ]
        ))
        .is_err());
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    #[test]
    fn name_with_spaces() {
        let d = parse("   8  16 my disk 2 1 2 3 4 5 6 7 8 9 10 11\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "my disk 2");
        assert_eq!(d[0].stats, (1..=11).collect::<Vec<u64>>());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse(&s);
            let _ = parse_udev(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..1200, junk in "[ a-z0-9\\n]{0,20}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-diskstats/proc/diskstats")).unwrap();
            let cut = cut.min(real.len());
            let mutated = format!("{}{}{}", &real[..cut], junk, &real[cut..]);
            for d in parse(&mutated) {
                prop_assert!(matches!(d.stats.len(), 11 | 15 | 17));
            }
        }
    }
}
