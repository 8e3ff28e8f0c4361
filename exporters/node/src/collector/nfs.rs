//! `nfs` collector: NFS client statistics from `/proc/net/rpc/nfs`, as node_exporter 1.5:
//! `node_nfs_packets_total{protocol}`, `node_nfs_connections_total`, `node_nfs_rpcs_total`,
//! `node_nfs_rpc_retransmissions_total`, `node_nfs_rpc_authentication_refreshes_total` and
//! `node_nfs_requests_total{proto,method}` for every NFSv2, v3 and v4 procedure (zero for a
//! version the kernel does not list).
//!
//! No `/proc/net/rpc/nfs` (no NFS client module loaded) fails the collector, as node_exporter
//! reports it (`node_scrape_collector_success 0`). Unlike node_exporter 1.5, a line this
//! parser does not know is ignored rather than failing the collector (newer kernels add
//! lines). The reading is of procfs, which never blocks on a server; per-mount statistics
//! are the `mountstats` collector's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// One `label v1 v2 ...` line of `/proc/net/rpc/nfs` or `/proc/net/rpc/nfsd`.
pub(crate) type RpcLine<'a> = (&'a str, Vec<u64>);

/// Parses the lines of `/proc/net/rpc/{nfs,nfsd}`. Every line needs a label and at least one
/// value, and every value must be a decimal integer, except on the server's `th` line where
/// only the first two values are read (later kernels put fractions after them).
pub(crate) fn parse_lines(text: &str) -> anyhow::Result<Vec<RpcLine<'_>>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(label) = f.next() else {
            anyhow::bail!("invalid NFS metric line {line:?}");
        };
        let fields: Vec<&str> = if label == "th" {
            f.take(2).collect()
        } else {
            f.collect()
        };
        if fields.is_empty() || (label == "th" && fields.len() < 2) {
            anyhow::bail!("invalid NFS metric line {line:?}");
        }
        let values = read::u64s(fields.iter().copied())
            .with_context(|| format!("invalid number in NFS metric line {line:?}"))?;
        out.push((label, values));
    }
    Ok(out)
}

/// A fixed-size line (`net`, `rpc`, ...): exactly `n` values.
pub(crate) fn fixed<'a>(label: &str, v: &'a [u64], n: usize) -> anyhow::Result<&'a [u64]> {
    anyhow::ensure!(
        v.len() == n,
        "invalid NFS {label} line {v:?}: want {n} values"
    );
    Ok(v)
}

/// A counted line (`proc3 22 v1 ... v22`): the first value is the count of the others, which
/// must be at least `min`. Returns the counted values.
pub(crate) fn counted<'a>(label: &str, v: &'a [u64], min: usize) -> anyhow::Result<&'a [u64]> {
    let n = v[0] as usize;
    anyhow::ensure!(
        v.len() - 1 == n && n >= min,
        "invalid NFS {label} line {v:?}"
    );
    Ok(&v[1..])
}

/// NFSv2 procedures, in `proc2` order (node_exporter's method label values).
pub(crate) const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// NFSv3 procedures, in `proc3` order.
pub(crate) const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// NFSv4 client operations, in the client's `proc4` order.
const V4_CLIENT: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// The client statistics node_exporter exposes.
#[derive(Debug, PartialEq)]
pub(crate) struct ClientStats {
    /// `net`: packets, UDP packets, TCP packets, TCP connections.
    pub net: [u64; 4],
    /// `rpc`: calls, retransmissions, authentication refreshes.
    pub rpc: [u64; 3],
    pub v2: [u64; 18],
    pub v3: [u64; 22],
    pub v4: [u64; 59],
}

impl Default for ClientStats {
    fn default() -> Self {
        Self {
            net: [0; 4],
            rpc: [0; 3],
            v2: [0; 18],
            v3: [0; 22],
            v4: [0; 59],
        }
    }
}

fn copy_into(dst: &mut [u64], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Parses `/proc/net/rpc/nfs`. A `proc4` line shorter than node_exporter's 59 operations
/// (older kernels) leaves the rest at zero.
pub(crate) fn parse_client(text: &str) -> anyhow::Result<ClientStats> {
    let mut s = ClientStats::default();
    for (label, v) in parse_lines(text)? {
        match label {
            "net" => copy_into(&mut s.net, fixed(label, &v, 4)?),
            "rpc" => copy_into(&mut s.rpc, fixed(label, &v, 3)?),
            "proc2" => copy_into(&mut s.v2, counted(label, &v, 18)?),
            "proc3" => copy_into(&mut s.v3, counted(label, &v, 22)?),
            "proc4" => copy_into(&mut s.v4, counted(label, &v, 0)?),
            _ => {}
        }
    }
    Ok(s)
}

struct Nfs {
    path: PathBuf,
}

/// Builds the `nfs` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Nfs {
        path: cfg.paths.proc("net/rpc/nfs"),
    }))
}

impl Collector for Nfs {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::text(&self.path).context("failed to retrieve nfs stats")?;
        let s = parse_client(&text).context("failed to retrieve nfs stats")?;
        let packets = out.counter(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
        );
        packets.sample(&[("protocol", "udp")], s.net[1] as f64);
        packets.sample(&[("protocol", "tcp")], s.net[2] as f64);
        out.counter(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
        )
        .sample(&[], s.net[3] as f64);
        out.counter("node_nfs_rpcs_total", "Total number of RPCs performed.")
            .sample(&[], s.rpc[0] as f64);
        out.counter(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
        )
        .sample(&[], s.rpc[1] as f64);
        out.counter(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
        )
        .sample(&[], s.rpc[2] as f64);
        let req = out.counter(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
        );
        let versions: [(&str, &[&str], &[u64]); 3] = [
            ("2", &V2, &s.v2),
            ("3", &V3, &s.v3),
            ("4", &V4_CLIENT, &s.v4),
        ];
        for (proto, names, values) in versions {
            for (name, v) in names.iter().zip(values) {
                req.sample(&[("proto", proto), ("method", name)], *v as f64);
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
    fn golden() {
        let c = new(&test_config(&testdata().join("fixtures/a-nfs"), &[])).unwrap();
        assert_golden("nfs", &render(&*c).unwrap());
    }

    #[test]
    fn old_kernel_short_proc4_is_padded() {
        let s = parse_client("net 1 2 3 4\nrpc 5 6 7\nproc4 3 9 8 7\n").unwrap();
        assert_eq!(s.net, [1, 2, 3, 4]);
        assert_eq!(&s.v4[..4], &[9, 8, 7, 0]);
        assert_eq!(s.v3, [0; 22]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "net 1 2 3\n",
            "rpc 1 2 3 4\n",
            "proc3 2 1 1\n",
            "proc3 30 1 1\n",
            "net 1 2 x 4\n",
            "rpc\n",
            "\n",
        ] {
            assert!(parse_client(bad).is_err(), "{bad:?} accepted");
        }
        // A line node_exporter 1.5 does not know is skipped.
        assert!(parse_client("net 1 2 3 4\nfuture 1 2\n").is_ok());
    }

    #[test]
    fn missing_file_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_client(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..2000, junk in "[ a-z0-9\\n]{0,16}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-nfs/proc/net/rpc/nfs")).unwrap();
            let cut = cut.min(real.len());
            let _ = parse_client(&format!("{}{}{}", &real[..cut], junk, &real[cut..]));
        }
    }
}
