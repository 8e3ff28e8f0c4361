//! `fibrechannel` collector: Fibre Channel HBA ports from `/sys/class/fc_host/<host>/`, as
//! node_exporter 1.5: `node_fibrechannel_info{fc_host,speed,port_state,port_type,port_id,
//! port_name,fabric_name,symbolic_name,supported_classes,supported_speeds,dev_loss_tmo}`
//! and the port counters of `statistics/` as `node_fibrechannel_<counter>_total{fc_host}`.
//! A counter the HBA does not support (all ones, `0xffffffffffffffff`) is left out.
//!
//! No FC HBA (no `fc_host` class) fails the collector, as node_exporter reports it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// The attributes read for the info metric; all must exist.
const ATTRS: [&str; 11] = [
    "speed",
    "port_state",
    "port_type",
    "node_name",
    "port_id",
    "port_name",
    "fabric_name",
    "dev_loss_tmo",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
];

/// `statistics/` file → metric suffix and help, in node_exporter's output order.
const COUNTERS: [(&str, &str, &str); 14] = [
    (
        "dumped_frames",
        "dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    (
        "rx_words",
        "rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// One host: its attributes (ATTRS order, `0x` stripped from the WWN/ID ones) and counters
/// (COUNTERS order; a counter without a file reads 0).
#[derive(Debug, PartialEq)]
pub(crate) struct Host {
    pub attrs: Vec<String>,
    pub counters: Vec<u64>,
}

/// Reads one `fc_host/<host>` directory.
pub(crate) fn read_host(dir: &Path) -> anyhow::Result<Host> {
    let mut attrs = Vec::new();
    for a in ATTRS {
        let p = dir.join(a);
        let mut v =
            read::attr(&p).with_context(|| format!("failed to read file {}", p.display()))?;
        if matches!(a, "node_name" | "port_id" | "port_name" | "fabric_name") && v.len() > 2 {
            v.drain(..2);
        }
        attrs.push(v);
    }
    let mut counters = vec![0u64; COUNTERS.len()];
    let stats = dir.join("statistics");
    for (name, p) in
        read::entries(&stats).with_context(|| format!("reading {}", stats.display()))?
    {
        let Some(i) = COUNTERS.iter().position(|(f, ..)| *f == name) else {
            continue;
        };
        if !p.is_file() {
            continue;
        }
        let v = match read::attr(&p) {
            Ok(v) => v,
            Err(e) if read::unsupported(&e) => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read file {}", p.display()))
            }
        };
        counters[i] = read::go_uint(&v)
            .with_context(|| format!("invalid counter {v:?} in {}", p.display()))?;
    }
    Ok(Host { attrs, counters })
}

struct FibreChannel {
    class: PathBuf,
}

/// Builds the `fibrechannel` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(FibreChannel {
        class: cfg.paths.sys("class/fc_host"),
    }))
}

impl Collector for FibreChannel {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let hosts = read::entries(&self.class)
            .with_context(|| format!("no data: reading {}", self.class.display()))?;
        let mut read_hosts = Vec::new();
        for (name, dir) in hosts {
            read_hosts.push((
                name,
                read_host(&dir).context("error obtaining FibreChannel class info")?,
            ));
        }
        for (name, h) in &read_hosts {
            let a = &h.attrs;
            out.gauge(
                "node_fibrechannel_info",
                "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            )
            .sample(
                &[
                    ("fc_host", name),
                    ("speed", &a[0]),
                    ("port_state", &a[1]),
                    ("port_type", &a[2]),
                    ("port_id", &a[4]),
                    ("port_name", &a[5]),
                    ("fabric_name", &a[6]),
                    ("symbolic_name", &a[8]),
                    ("supported_classes", &a[9]),
                    ("supported_speeds", &a[10]),
                    ("dev_loss_tmo", &a[7]),
                ],
                1.0,
            );
            for ((_, metric, help), v) in COUNTERS.iter().zip(&h.counters) {
                if *v != u64::MAX {
                    out.counter_dyn(&format!("node_fibrechannel_{metric}"), help)
                        .sample(&[("fc_host", name)], *v as f64);
                }
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
        let c = new(&test_config(
            &testdata().join("fixtures/b-fibrechannel"),
            &[],
        ))
        .unwrap();
        assert_golden("fibrechannel", &render(&*c).unwrap());
    }

    #[test]
    fn missing_attribute_or_bad_counter_fails() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err(), "no fc_host class");
        let h = dir.path().join("sys/class/fc_host/host0");
        std::fs::create_dir_all(h.join("statistics")).unwrap();
        for a in ATTRS {
            std::fs::write(h.join(a), "0x10\n").unwrap();
        }
        std::fs::write(h.join("statistics/rx_frames"), "0x2a\n").unwrap();
        assert!(render(&*c)
            .unwrap()
            .contains("node_fibrechannel_rx_frames_total{fc_host=\"host0\"} 42\n"));
        std::fs::write(h.join("statistics/tx_frames"), "lots\n").unwrap();
        assert!(render(&*c).is_err());
        std::fs::remove_file(h.join("statistics/tx_frames")).unwrap();
        std::fs::remove_file(h.join("speed")).unwrap();
        assert!(render(&*c).is_err());
    }
}
