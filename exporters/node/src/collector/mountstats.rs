//! `mountstats` collector: per-NFS-mount statistics from `/proc/self/mountstats`, as
//! node_exporter 1.5: `node_mountstats_nfs_*{export,protocol,mountaddr}` for the mount's
//! age, bytes read and written (by syscall, O_DIRECT, on the wire, by page), the RPC
//! transport (connects, sends, receives, bad XIDs, queue depths, idle time) and VFS/NFS
//! events, and `node_mountstats_nfs_operations_*{...,operation}` per NFS operation
//! (requests, transmissions, major timeouts, bytes, queue/response/request time) — the
//! first place to look when a job is slow on NFS. `mountaddr` is the server address from
//! the `addr=` super option of the matching `/proc/self/mountinfo` line. Off by default,
//! as there.
//!
//! Both files are the kernel's in-memory counters: reading them does not contact the NFS
//! server. A mount seen twice (same export, protocol and address) is reported once.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// node_exporter reports counters modulo 2^53 so that they stay exact as floats.
const MANTISSA: u64 = 1 << 53;

/// One NFS operation's `per-op statistics` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Op {
    pub name: String,
    /// requests, transmissions, major timeouts, bytes sent, bytes received, queue ms,
    /// response ms, request ms.
    pub v: [u64; 8],
}

/// The statistics of one NFS mount.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NfsStats {
    pub age_seconds: f64,
    /// read, write, direct read, direct write, read total, write total, read pages, write pages.
    pub bytes: [u64; 8],
    pub events: [u64; 27],
    pub protocol: String,
    /// port, bind, connect, connect idle, idle seconds, sends, receives, bad xids, active
    /// requests, backlog, max slots, sending queue, pending queue.
    pub xprt: [u64; 13],
    pub ops: Vec<Op>,
}

impl Default for NfsStats {
    fn default() -> Self {
        Self {
            age_seconds: 0.0,
            bytes: [0; 8],
            events: [0; 27],
            protocol: String::new(),
            xprt: [0; 13],
            ops: Vec::new(),
        }
    }
}

/// One `device ...` entry; `stats` only for NFS mounts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mount {
    pub device: String,
    pub stats: Option<NfsStats>,
}

fn numbers<const N: usize>(what: &str, f: &[&str]) -> anyhow::Result<[u64; N]> {
    anyhow::ensure!(f.len() == N, "invalid NFS {what} stats: {f:?}");
    let mut out = [0u64; N];
    for (o, s) in out.iter_mut().zip(f) {
        *o = s
            .parse()
            .with_context(|| format!("invalid NFS {what} value {s:?}"))?;
    }
    Ok(out)
}

/// A Go duration of whole or fractional seconds (`age:` values).
fn seconds(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && !s.contains(['e', 'E', 'i', 'n', 'N'])).then_some(v)
}

fn parse_xprt(f: &[&str], version: &str) -> anyhow::Result<(String, [u64; 13])> {
    let proto = f[0];
    let rest = &f[1..];
    let want = match (version, proto) {
        ("1.0", "tcp") => 10,
        ("1.0", "udp") => 7,
        ("1.1", "tcp") => 13,
        ("1.1", "udp") => 10,
        ("1.0" | "1.1", _) => {
            anyhow::bail!("invalid NFS protocol {proto:?} in stats {version} statement")
        }
        _ => anyhow::bail!("unrecognized NFS transport stats version: {version:?}"),
    };
    anyhow::ensure!(
        rest.len() == want,
        "invalid NFS transport stats {version} statement: {rest:?}"
    );
    let mut ns = Vec::with_capacity(16);
    for s in rest {
        ns.push(
            s.parse::<u64>()
                .with_context(|| format!("invalid NFS transport value {s:?}"))?,
        );
    }
    ns.resize(13, 0);
    if proto == "udp" {
        // UDP has no connect, connect-idle or idle-time columns.
        ns.splice(2..2, [0, 0, 0]);
    }
    let mut x = [0u64; 13];
    x.copy_from_slice(&ns[..13]);
    Ok((proto.to_owned(), x))
}

/// Parses `/proc/<pid>/mountstats`.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<Mount>> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.first() != Some(&"device") {
            continue;
        }
        anyhow::ensure!(
            f.len() >= 8 && f[2] == "mounted" && f[3] == "on" && f[5] == "with" && f[6] == "fstype",
            "invalid device entry: {line:?}"
        );
        let mut m = Mount {
            device: f[1].to_owned(),
            stats: None,
        };
        if f.len() > 8 {
            anyhow::ensure!(
                f[7] == "nfs" || f[7] == "nfs4",
                "cannot parse MountStats for fstype {:?}",
                f[7]
            );
            let version = f[8].strip_prefix("statvers=").unwrap_or(f[8]);
            m.stats = Some(parse_nfs(&mut lines, version)?);
        }
        out.push(m);
    }
    Ok(out)
}

fn parse_nfs<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
    version: &str,
) -> anyhow::Result<NfsStats> {
    let mut s = NfsStats::default();
    for line in lines.by_ref() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(&key) = f.first() else { break };
        match key {
            "age:" | "bytes:" | "events:" | "opts:" if f.len() < 2 => {
                anyhow::bail!("not enough information for NFS stats: {line:?}")
            }
            "age:" => {
                s.age_seconds = seconds(f[1]).with_context(|| format!("invalid age {:?}", f[1]))?
            }
            "bytes:" => s.bytes = numbers("bytes", &f[1..])?,
            "events:" => s.events = numbers("events", &f[1..])?,
            "xprt:" => {
                anyhow::ensure!(
                    f.len() >= 3,
                    "not enough information for NFS transport stats: {line:?}"
                );
                (s.protocol, s.xprt) = parse_xprt(&f[1..], version)?;
            }
            "per-op" => break,
            _ => {}
        }
    }
    for line in lines.by_ref() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            break;
        }
        anyhow::ensure!(f.len() >= 9, "invalid NFS per-operations stats: {line:?}");
        let mut v = [0u64; 8];
        for (i, x) in f[1..].iter().enumerate() {
            let n: u64 = x
                .parse()
                .with_context(|| format!("invalid NFS per-op value {x:?}"))?;
            if let Some(d) = v.get_mut(i) {
                *d = n;
            }
        }
        s.ops.push(Op {
            name: f[0].trim_end_matches(':').to_owned(),
            v,
        });
    }
    Ok(s)
}

/// The `addr=` super option of each `/proc/<pid>/mountinfo` line, in order. A line that is
/// not a mountinfo line is an error, as in node_exporter.
pub(crate) fn parse_mountinfo_addrs(text: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let n = f.len();
        anyhow::ensure!(
            n >= 10,
            "couldn't find enough fields in mount string: {line:?}"
        );
        anyhow::ensure!(
            f[n - 4] == "-",
            "couldn't find separator in mount string: {line:?}"
        );
        anyhow::ensure!(
            f[0].parse::<i64>().is_ok() && f[1].parse::<i64>().is_ok(),
            "failed to parse mount ID: {line:?}"
        );
        let addr = f[n - 1]
            .split(',')
            .filter_map(|o| {
                let mut kv = o.split('=');
                (kv.next() == Some("addr")).then(|| kv.next().unwrap_or("").to_owned())
            })
            .next_back()
            .unwrap_or_default();
        out.push(addr);
    }
    Ok(out)
}

struct MountStats {
    mountstats: PathBuf,
    mountinfo: PathBuf,
}

/// Builds the `mountstats` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(MountStats {
        mountstats: cfg.paths.proc("self/mountstats"),
        mountinfo: cfg.paths.proc("self/mountinfo"),
    }))
}

const MOUNT_COUNTERS: [(&str, &str); 8] = [
    (
        "read_bytes_total",
        "Number of bytes read using the read() syscall.",
    ),
    (
        "write_bytes_total",
        "Number of bytes written using the write() syscall.",
    ),
    (
        "direct_read_bytes_total",
        "Number of bytes read using the read() syscall in O_DIRECT mode.",
    ),
    (
        "direct_write_bytes_total",
        "Number of bytes written using the write() syscall in O_DIRECT mode.",
    ),
    (
        "total_read_bytes_total",
        "Number of bytes read from the NFS server, in total.",
    ),
    (
        "total_write_bytes_total",
        "Number of bytes written to the NFS server, in total.",
    ),
    (
        "read_pages_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        "write_pages_total",
        "Number of pages written directly via mmap()'d files.",
    ),
];

/// Transport metrics: xprt index, name, help, whether a counter.
const TRANSPORT: [(usize, &str, &str, bool); 10] = [
    (1, "transport_bind_total", "Number of times the client has had to establish a connection from scratch to the NFS server.", true),
    (2, "transport_connect_total", "Number of times the client has made a TCP connection to the NFS server.", true),
    (4, "transport_idle_time_seconds", "Duration since the NFS mount last saw any RPC traffic, in seconds.", false),
    (5, "transport_sends_total", "Number of RPC requests for this mount sent to the NFS server.", true),
    (6, "transport_receives_total", "Number of RPC responses for this mount received from the NFS server.", true),
    (7, "transport_bad_transaction_ids_total", "Number of times the NFS server sent a response with a transaction ID unknown to this client.", true),
    (9, "transport_backlog_queue_total", "Total number of items added to the RPC backlog queue.", true),
    (10, "transport_maximum_rpc_slots", "Maximum number of simultaneously active RPC requests ever used.", false),
    (11, "transport_sending_queue_total", "Total number of items added to the RPC transmission sending queue.", true),
    (12, "transport_pending_queue_total", "Total number of items added to the RPC transmission pending queue.", true),
];

/// Per-operation metrics: value index, name, help, divisor (ms → s for the times).
const OPS: [(usize, &str, &str, f64); 8] = [
    (0, "operations_requests_total", "Number of requests performed for a given operation.", 1.0),
    (1, "operations_transmissions_total", "Number of times an actual RPC request has been transmitted for a given operation.", 1.0),
    (2, "operations_major_timeouts_total", "Number of times a request has had a major timeout for a given operation.", 1.0),
    (3, "operations_sent_bytes_total", "Number of bytes sent for a given operation, including RPC headers and payload.", 1.0),
    (4, "operations_received_bytes_total", "Number of bytes received for a given operation, including RPC headers and payload.", 1.0),
    (5, "operations_queue_time_seconds_total", "Duration all requests spent queued for transmission for a given operation before they were sent, in seconds.", 1000.0),
    (6, "operations_response_time_seconds_total", "Duration all requests took to get a reply back after a request for a given operation was transmitted, in seconds.", 1000.0),
    (7, "operations_request_time_seconds_total", "Duration all requests took from when a request was enqueued to when it was completely handled for a given operation, in seconds.", 1000.0),
];

/// Event metrics: events index, name, help (node_exporter's, including its copy-paste help
/// texts). Index 18 (congestion wait) is not exposed.
const EVENTS: [(usize, &str, &str); 26] = [
    (
        0,
        "event_inode_revalidate_total",
        "Number of times cached inode attributes are re-validated from the server.",
    ),
    (
        1,
        "event_dnode_revalidate_total",
        "Number of times cached dentry nodes are re-validated from the server.",
    ),
    (
        2,
        "event_data_invalidate_total",
        "Number of times an inode cache is cleared.",
    ),
    (
        3,
        "event_attribute_invalidate_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    (
        4,
        "event_vfs_open_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    (
        5,
        "event_vfs_lookup_total",
        "Number of times a directory lookup has occurred.",
    ),
    (
        6,
        "event_vfs_access_total",
        "Number of times permissions have been checked.",
    ),
    (
        7,
        "event_vfs_update_page_total",
        "Number of updates (and potential writes) to pages.",
    ),
    (
        8,
        "event_vfs_read_page_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        9,
        "event_vfs_read_pages_total",
        "Number of times a group of pages have been read.",
    ),
    (
        10,
        "event_vfs_write_page_total",
        "Number of pages written directly via mmap()'d files.",
    ),
    (
        11,
        "event_vfs_write_pages_total",
        "Number of times a group of pages have been written.",
    ),
    (
        12,
        "event_vfs_getdents_total",
        "Number of times directory entries have been read with getdents().",
    ),
    (
        13,
        "event_vfs_setattr_total",
        "Number of times directory entries have been read with getdents().",
    ),
    (
        14,
        "event_vfs_flush_total",
        "Number of pending writes that have been forcefully flushed to the server.",
    ),
    (
        15,
        "event_vfs_fsync_total",
        "Number of times fsync() has been called on directories and files.",
    ),
    (
        16,
        "event_vfs_lock_total",
        "Number of times locking has been attempted on a file.",
    ),
    (
        17,
        "event_vfs_file_release_total",
        "Number of times files have been closed and released.",
    ),
    (
        19,
        "event_truncation_total",
        "Number of times files have been truncated.",
    ),
    (
        20,
        "event_write_extension_total",
        "Number of times a file has been grown due to writes beyond its existing end.",
    ),
    (
        21,
        "event_silly_rename_total",
        "Number of times a file was removed while still open by another process.",
    ),
    (
        22,
        "event_short_read_total",
        "Number of times the NFS server gave less data than expected while reading.",
    ),
    (
        23,
        "event_short_write_total",
        "Number of times the NFS server wrote less data than expected while writing.",
    ),
    (
        24,
        "event_jukebox_delay_total",
        "Number of times the NFS server indicated EJUKEBOX; retrieving data from offline storage.",
    ),
    (
        25,
        "event_pnfs_read_total",
        "Number of NFS v4.1+ pNFS reads.",
    ),
    (
        26,
        "event_pnfs_write_total",
        "Number of NFS v4.1+ pNFS writes.",
    ),
];

fn emit(out: &mut MetricSet, s: &NfsStats, export: &str, addr: &str) {
    let l = [
        ("export", export),
        ("protocol", s.protocol.as_str()),
        ("mountaddr", addr),
    ];
    let metric = |n: &str| format!("node_mountstats_nfs_{n}");
    out.counter_dyn(
        &metric("age_seconds_total"),
        "The age of the NFS mount in seconds.",
    )
    .sample(&l, s.age_seconds);
    for ((name, help), v) in MOUNT_COUNTERS.iter().zip(s.bytes) {
        out.counter_dyn(&metric(name), help).sample(&l, v as f64);
    }
    for (i, name, help, counter) in TRANSPORT {
        let v = if i == 4 {
            s.xprt[i] % MANTISSA
        } else {
            s.xprt[i]
        };
        let fam = if counter {
            out.counter_dyn(&metric(name), help)
        } else {
            out.gauge_dyn(&metric(name), help)
        };
        fam.sample(&l, v as f64);
    }
    for op in &s.ops {
        let ol = [l[0], l[1], l[2], ("operation", op.name.as_str())];
        for (i, name, help, div) in OPS {
            let v = if div == 1.0 {
                op.v[i] as f64
            } else {
                (op.v[i] % MANTISSA) as f64 / div
            };
            out.counter_dyn(&metric(name), help).sample(&ol, v);
        }
    }
    for (i, name, help) in EVENTS {
        out.counter_dyn(&metric(name), help)
            .sample(&l, s.events[i] as f64);
    }
}

impl Collector for MountStats {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mounts = parse(&read::text(&self.mountstats)?).context("failed to parse mountstats")?;
        let addrs = parse_mountinfo_addrs(&read::text(&self.mountinfo)?)
            .context("failed to parse mountinfo")?;
        let mut seen = HashSet::new();
        for (i, m) in mounts.iter().enumerate() {
            let Some(s) = &m.stats else { continue };
            let addr = addrs.get(i).map(String::as_str).unwrap_or("");
            if !seen.insert((m.device.as_str(), s.protocol.as_str(), addr)) {
                tracing::debug!(device = %m.device, "skipping duplicate NFS mount entry");
                continue;
            }
            emit(out, s, &m.device, addr);
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
        let c = new(&test_config(&testdata().join("fixtures/a-mountstats"), &[])).unwrap();
        assert_golden("mountstats", &render(&*c).unwrap());
    }

    #[test]
    fn this_machine_parses() {
        let t = std::fs::read_to_string("/proc/self/mountstats").unwrap();
        assert!(!parse(&t).unwrap().is_empty());
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!parse_mountinfo_addrs(&mi).unwrap().is_empty());
    }

    #[test]
    fn udp_transport_and_errors() {
        let (p, x) = parse_xprt(
            &["udp", "832", "0", "6", "6", "0", "0", "0", "1", "0", "0"],
            "1.1",
        )
        .unwrap();
        assert_eq!(p, "udp");
        assert_eq!(x, [832, 0, 0, 0, 0, 6, 6, 0, 0, 0, 1, 0, 0]);
        assert!(parse_xprt(&["rdma", "1"], "1.1").is_err());
        assert!(parse_xprt(&["tcp", "1"], "1.1").is_err());
        assert!(parse_xprt(&["tcp", "1"], "2.0").is_err());
        assert!(parse("device a mounted on /b with fstype ext4 statvers=1.1\n").is_err());
        assert!(parse("device a mounted on /b\n").is_err());
        assert!(parse_mountinfo_addrs("1 2 3\n").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse(&s);
            let _ = parse_mountinfo_addrs(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..8000, junk in "[ a-z0-9:=.\\n\\t]{0,24}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-mountstats/proc/4242/mountstats")).unwrap();
            let cut = cut.min(real.len());
            let _ = parse(&format!("{}{}{}", &real[..cut], junk, &real[cut..]));
        }
    }
}
