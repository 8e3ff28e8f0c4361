//! `nfsd` collector: kernel NFS server statistics from `/proc/net/rpc/nfsd`, as node_exporter
//! 1.5: reply cache, stale file handles, disk bytes, threads, read-ahead cache, packets and
//! connections, RPC errors and `node_nfsd_requests_total{proto,method}` per NFSv2/v3
//! procedure and NFSv4 operation.
//!
//! No `/proc/net/rpc/nfsd` (no NFS server) fails the collector, as node_exporter reports it.
//! Lines the kernel no longer writes (`ra` since Linux 5.x) read as zero, as there; lines
//! node_exporter 1.5 does not know (`wdeleg_getattr` on Linux 6.6+, which fails node_exporter
//! 1.5's collector) are ignored.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::nfs::{counted, fixed, parse_lines, V2, V3};
use super::read;
use super::Config;

/// NFSv4 server operations in `proc4ops` order (after the count); node_exporter skips the
/// three unused slots and the `PutPubFH`/`PutRootFH` operations.
const V4_OPS: [&str; 38] = [
    "Op0Unused",
    "Op1Unused",
    "Op2Future",
    "Access",
    "Close",
    "Commit",
    "Create",
    "DelegPurge",
    "DelegReturn",
    "GetAttr",
    "GetFH",
    "Link",
    "Lock",
    "Lockt",
    "Locku",
    "Lookup",
    "LookupRoot",
    "Nverify",
    "Open",
    "OpenAttr",
    "OpenConfirm",
    "OpenDgrd",
    "PutFH",
    "PutPubFH",
    "PutRootFH",
    "Read",
    "ReadDir",
    "ReadLink",
    "Remove",
    "Rename",
    "Renew",
    "RestoreFH",
    "SaveFH",
    "SecInfo",
    "SetAttr",
    "Verify",
    "Write",
    "RelLockOwner",
];
const V4_SKIPPED: [&str; 5] = [
    "Op0Unused",
    "Op1Unused",
    "Op2Future",
    "PutPubFH",
    "PutRootFH",
];

/// The server statistics node_exporter exposes.
#[derive(Debug, PartialEq)]
pub(crate) struct ServerStats {
    /// `rc`: hits, misses, nocache.
    pub rc: [u64; 3],
    /// `fh`: stale, ... (only stale is exposed).
    pub fh: [u64; 5],
    /// `io`: read, write bytes.
    pub io: [u64; 2],
    /// `th`: threads, (obsolete) all-busy count.
    pub th: [u64; 2],
    /// `ra`: cache size, 10 histogram buckets, not found.
    pub ra: [u64; 12],
    /// `net`: packets, UDP, TCP, TCP connections.
    pub net: [u64; 4],
    /// `rpc`: calls, bad calls, bad format, bad auth, bad client.
    pub rpc: [u64; 5],
    pub v2: [u64; 18],
    pub v3: [u64; 22],
    pub v4ops: [u64; 38],
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            rc: [0; 3],
            fh: [0; 5],
            io: [0; 2],
            th: [0; 2],
            ra: [0; 12],
            net: [0; 4],
            rpc: [0; 5],
            v2: [0; 18],
            v3: [0; 22],
            v4ops: [0; 38],
        }
    }
}

fn copy_into(dst: &mut [u64], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Parses `/proc/net/rpc/nfsd`.
pub(crate) fn parse_server(text: &str) -> anyhow::Result<ServerStats> {
    let mut s = ServerStats::default();
    for (label, v) in parse_lines(text)? {
        match label {
            "rc" => copy_into(&mut s.rc, fixed(label, &v, 3)?),
            "fh" => copy_into(&mut s.fh, fixed(label, &v, 5)?),
            "io" => copy_into(&mut s.io, fixed(label, &v, 2)?),
            "th" => copy_into(&mut s.th, fixed(label, &v, 2)?),
            "ra" => copy_into(&mut s.ra, fixed(label, &v, 12)?),
            "net" => copy_into(&mut s.net, fixed(label, &v, 4)?),
            "rpc" => copy_into(&mut s.rpc, fixed(label, &v, 5)?),
            "proc2" => copy_into(&mut s.v2, counted(label, &v, 18)?),
            "proc3" => copy_into(&mut s.v3, counted(label, &v, 22)?),
            "proc4" => {
                let v = counted(label, &v, 2)?;
                anyhow::ensure!(v.len() == 2, "invalid NFSd proc4 line {v:?}");
            }
            "proc4ops" => copy_into(&mut s.v4ops, counted(label, &v, 39)?),
            _ => {}
        }
    }
    Ok(s)
}

struct Nfsd {
    path: PathBuf,
}

/// Builds the `nfsd` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Nfsd {
        path: cfg.paths.proc("net/rpc/nfsd"),
    }))
}

fn counter(out: &mut MetricSet, name: &str, help: &str, v: u64) {
    out.counter_dyn(name, help).sample(&[], v as f64);
}

impl Collector for Nfsd {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::text(&self.path).context("failed to retrieve nfsd stats")?;
        let s = parse_server(&text).context("failed to retrieve nfsd stats")?;
        counter(
            out,
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
            s.rc[0],
        );
        counter(
            out,
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
            s.rc[1],
        );
        counter(
            out,
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
            s.rc[2],
        );
        counter(
            out,
            "node_nfsd_file_handles_stale_total",
            "Total number of NFSd stale file handles",
            s.fh[0],
        );
        counter(
            out,
            "node_nfsd_disk_bytes_read_total",
            "Total NFSd bytes read.",
            s.io[0],
        );
        counter(
            out,
            "node_nfsd_disk_bytes_written_total",
            "Total NFSd bytes written.",
            s.io[1],
        );
        out.gauge(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
        )
        .sample(&[], s.th[0] as f64);
        out.gauge(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
        )
        .sample(&[], s.ra[0] as f64);
        counter(
            out,
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
            s.ra[11],
        );
        let packets = out.counter(
            "node_nfsd_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
        );
        packets.sample(&[("proto", "udp")], s.net[1] as f64);
        packets.sample(&[("proto", "tcp")], s.net[2] as f64);
        counter(
            out,
            "node_nfsd_connections_total",
            "Total number of NFSd TCP connections.",
            s.net[3],
        );
        let errors = out.counter(
            "node_nfsd_rpc_errors_total",
            "Total number of NFSd RPC errors by error type.",
        );
        errors.sample(&[("error", "fmt")], s.rpc[2] as f64);
        errors.sample(&[("error", "auth")], s.rpc[3] as f64);
        errors.sample(&[("error", "cInt")], s.rpc[4] as f64);
        counter(
            out,
            "node_nfsd_server_rpcs_total",
            "Total number of NFSd RPCs.",
            s.rpc[0],
        );
        let req = out.counter(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
        );
        // node_exporter leaves out v2's and v3's Null procedure.
        for (name, v) in V2.iter().zip(&s.v2).skip(1) {
            req.sample(&[("proto", "2"), ("method", name)], *v as f64);
        }
        for (name, v) in V3.iter().zip(&s.v3).skip(1) {
            req.sample(&[("proto", "3"), ("method", name)], *v as f64);
        }
        for (name, v) in V4_OPS.iter().zip(&s.v4ops) {
            if !V4_SKIPPED.contains(name) {
                req.sample(&[("proto", "4"), ("method", name)], *v as f64);
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
        let c = new(&test_config(&testdata().join("fixtures/a-nfsd"), &[])).unwrap();
        assert_golden("nfsd", &render(&*c).unwrap());
    }

    #[test]
    fn th_line_reads_two_values_and_new_lines_are_ignored() {
        let s = parse_server("th 16 3 0.000 1.250\nwdeleg_getattr 0\nrpc 9 1 2 3 4\n").unwrap();
        assert_eq!(s.th, [16, 3]);
        assert_eq!(s.rpc, [9, 1, 2, 3, 4]);
        assert!(parse_server("th 16\n").is_err());
        assert!(parse_server("proc4 3 1 2 3\n").is_err());
        assert!(parse_server("proc4ops 38 0\n").is_err());
        assert!(parse_server("ra 1 2\n").is_err());
    }

    #[test]
    fn missing_file_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_server(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..3000, junk in "[ a-z0-9.\\n]{0,16}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-nfsd/proc/net/rpc/nfsd")).unwrap();
            let cut = cut.min(real.len());
            let _ = parse_server(&format!("{}{}{}", &real[..cut], junk, &real[cut..]));
        }
    }
}
