//! `udp_queues` collector: `node_udp_queues{ip,queue}`, the bytes queued in the kernel for
//! UDP sockets (sum of `tx_queue` and `rx_queue` over `/proc/net/udp` and `/proc/net/udp6`),
//! as node_exporter 1.5.
//!
//! A missing file (no IPv6) leaves out that version; both missing fails the collector, as
//! node_exporter reports it. A malformed socket line fails it too.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// Sums `(tx_queue, rx_queue)` over the socket lines of `/proc/net/udp{,6}` (after the
/// header). A line needs at least 10 columns and a `TX:RX` hexadecimal queue pair.
pub(crate) fn parse(text: &str) -> anyhow::Result<(u64, u64)> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        anyhow::ensure!(
            cols.len() >= 10,
            "cannot parse net socket line as it has less then 10 columns {line:?}"
        );
        let (t, r) = cols[4]
            .split_once(':')
            .with_context(|| format!("cannot parse tx/rx queues in socket line {line:?}"))?;
        let hex = |s: &str| {
            u64::from_str_radix(s, 16)
                .ok()
                .filter(|_| !s.starts_with('+'))
                .with_context(|| format!("cannot parse queue value {s:?}"))
        };
        tx = tx.wrapping_add(hex(t)?);
        rx = rx.wrapping_add(hex(r)?);
    }
    Ok((tx, rx))
}

/// The two files are kept open and re-read with one `pread` each: every read of
/// `/proc/net/udp` walks the kernel's whole UDP hash table, and `read_to_string` (a probe
/// read, growing reads and the read at the end) walks it several times per scrape.
struct UdpQueues {
    v4: KeptFile,
    v6: KeptFile,
}

/// Builds the `udp_queues` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(UdpQueues {
        v4: KeptFile::new(cfg.paths.proc("net/udp")),
        v6: KeptFile::new(cfg.paths.proc("net/udp6")),
    }))
}

/// The queue sums of one file, `None` when it does not exist.
fn sums(file: &KeptFile) -> anyhow::Result<Option<(u64, u64)>> {
    let path = file.path();
    // A socket line is 128 bytes in /proc/net/udp and under 200 in udp6: 512 is ample.
    match file.read_short_seq(512) {
        Ok(t) => parse(&t)
            .map(Some)
            .with_context(|| format!("couldn't get udp queued bytes from {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Collector for UdpQueues {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let v4 = sums(&self.v4)?;
        let v6 = sums(&self.v6)?;
        if v4.is_none() && v6.is_none() {
            anyhow::bail!(
                "no data: neither {} nor {}",
                self.v4.path().display(),
                self.v6.path().display()
            );
        }
        let fam = out.gauge(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        );
        for (ip, s) in [("v4", v4), ("v6", v6)] {
            if let Some((tx, rx)) = s {
                fam.sample(&[("queue", "tx"), ("ip", ip)], tx as f64);
                fam.sample(&[("queue", "rx"), ("ip", ip)], rx as f64);
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
        let c = new(&test_config(&testdata().join("fixtures/a-udp_queues"), &[])).unwrap();
        assert_golden("udp_queues", &render(&*c).unwrap());
    }

    #[test]
    fn versions_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err(), "no files at all");
        let net = dir.path().join("proc/net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(
            net.join("udp"),
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
             \x20 1: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000 00000000     0        0 1 2 ffff 0\n\
             \x20 2: 00000000:0045 00000000:0000 07 00000001:00000001 00:00000000 00000000     0        0 1 2 ffff 0\n",
        )
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(
            t.contains("node_udp_queues{queue=\"tx\",ip=\"v4\"} 17\n"),
            "{t}"
        );
        assert!(
            t.contains("node_udp_queues{queue=\"rx\",ip=\"v4\"} 513\n"),
            "{t}"
        );
        assert!(!t.contains("v6"));
        std::fs::write(net.join("udp6"), "header\n 1: x y 07 zz:00 a b c d e\n").unwrap();
        assert!(render(&*c).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
