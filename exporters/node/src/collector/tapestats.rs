//! `tapestats` collector: SCSI tape drive I/O statistics from
//! `/sys/class/scsi_tape/st<N>/stats/`, as node_exporter 1.5: `node_tape_io_now`,
//! `node_tape_{io_time,read_time,write_time}_seconds_total`, `node_tape_io_others_total`,
//! `node_tape_{read,written}_bytes_total`, `node_tape_{reads,writes}_completed_total` and
//! `node_tape_residual_total`, label `device`. Drives matching
//! `--collector.tapestats.ignored-devices` are skipped; only `st<N>` devices are read (not
//! the `nst`/mode variants that share their statistics).
//!
//! No tape class fails the collector, as node_exporter reports it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet, MetricType};
use regex::Regex;

use super::read;
use super::Config;

/// Flags of the `tapestats` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of devices to ignore for tapestats.
    #[arg(
        long = "collector.tapestats.ignored-devices",
        id = "collector.tapestats.ignored-devices",
        default_value = "^$",
        value_name = "REGEX"
    )]
    pub ignored_devices: String,
}

/// stats file, metric, type, scale, help — in node_exporter's output order.
const STATS: [(&str, &str, MetricType, f64, &str); 10] = [
    ("in_flight", "node_tape_io_now", MetricType::Gauge, 1.0, "The number of I/Os currently outstanding to this device."),
    ("io_ns", "node_tape_io_time_seconds_total", MetricType::Counter, 1e-9, "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used."),
    ("other_cnt", "node_tape_io_others_total", MetricType::Counter, 1.0, "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total"),
    ("read_byte_cnt", "node_tape_read_bytes_total", MetricType::Counter, 1.0, "The number of bytes read from the tape drive."),
    ("read_cnt", "node_tape_reads_completed_total", MetricType::Counter, 1.0, "The number of read requests issued to the tape drive."),
    ("read_ns", "node_tape_read_time_seconds_total", MetricType::Counter, 1e-9, "The amount of time spent waiting for read requests to complete."),
    ("resid_cnt", "node_tape_residual_total", MetricType::Counter, 1.0, "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape."),
    ("write_byte_cnt", "node_tape_written_bytes_total", MetricType::Counter, 1.0, "The number of bytes written to the tape drive."),
    ("write_cnt", "node_tape_writes_completed_total", MetricType::Counter, 1.0, "The number of write requests issued to the tape drive."),
    ("write_ns", "node_tape_write_time_seconds_total", MetricType::Counter, 1e-9, "The amount of time spent waiting for write requests to complete."),
];

/// Reads a drive's `stats/` directory into [`STATS`] order (a missing counter reads 0);
/// every file in it must be readable, and the known ones must hold numbers.
pub(crate) fn read_stats(dir: &std::path::Path) -> anyhow::Result<[u64; 10]> {
    let mut v = [0u64; 10];
    for (name, p) in read::entries(dir).with_context(|| format!("reading {}", dir.display()))? {
        let text =
            read::attr(&p).with_context(|| format!("failed to read file {}", p.display()))?;
        if let Some(i) = STATS.iter().position(|(f, ..)| *f == name) {
            v[i] = read::go_uint(&text)
                .with_context(|| format!("invalid counter {text:?} in {}", p.display()))?;
        }
    }
    Ok(v)
}

fn is_tape(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

struct Tapestats {
    class: PathBuf,
    ignored: Regex,
}

/// Builds the `tapestats` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let pat = &cfg.flags::<Flags>()?.ignored_devices;
    Ok(Arc::new(Tapestats {
        class: cfg.paths.sys("class/scsi_tape"),
        ignored: Regex::new(pat)
            .with_context(|| format!("invalid --collector.tapestats.ignored-devices {pat:?}"))?,
    }))
}

impl Collector for Tapestats {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let devs = read::entries(&self.class)
            .with_context(|| format!("no data: reading {}", self.class.display()))?;
        let mut tapes = Vec::new();
        for (name, dir) in devs {
            if is_tape(&name) {
                let v = read_stats(&dir.join("stats"))
                    .context("error obtaining SCSITape class info")?;
                tapes.push((name, v));
            }
        }
        for (name, v) in &tapes {
            if self.ignored.is_match(name) {
                continue;
            }
            for ((_, metric, kind, scale, help), x) in STATS.iter().zip(v) {
                out.family(*metric, *help, *kind)
                    .sample(&[("device", name)], *x as f64 * scale);
            }
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
        let c = new(&test_config(&testdata().join("fixtures/b-tapestats"), &[])).unwrap();
        assert_golden("tapestats", &render(&*c).unwrap());
    }

    #[test]
    fn ignored_and_broken() {
        let dir = testdata().join("fixtures/b-tapestats");
        let c = new(&test_config(
            &dir,
            &["--collector.tapestats.ignored-devices=^st1$"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("\"st0\"") && !t.contains("\"st1\""), "{t}");
        assert!(is_tape("st12") && !is_tape("nst0") && !is_tape("st0a") && !is_tape("st"));
        let tmp = tempfile::tempdir().unwrap();
        let c = new(&test_config(tmp.path(), &[])).unwrap();
        assert!(render(&*c).is_err(), "no class");
        let s = tmp.path().join("sys/class/scsi_tape/st0/stats");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join("read_cnt"), "x\n").unwrap();
        assert!(render(&*c).is_err());
    }
}
