//! `netdev` collector: network interface counters as `node_network_<direction>_<stat>_total`
//! (`node_network_receive_bytes_total`, `node_network_transmit_colls_total`,
//! `node_network_receive_nohandler_total`, ...) with label `device`, like node_exporter 1.5.
//!
//! By default the counters come from rtnetlink (`RTM_GETLINK`, 64-bit stats), as
//! node_exporter 1.5 does; `--collector.netdev.netlink=false` reads `/proc/net/dev` under
//! `--path.procfs` instead (which has no `nohandler` column). Devices are filtered by
//! `--collector.netdev.device-exclude` (default `^lo$`, Debian's default) or
//! `--collector.netdev.device-include`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::Config;

/// Debian's node_exporter default for `--collector.netdev.device-exclude`.
pub const DEFAULT_EXCLUDE: &str = "^lo$";

/// Flags of the `netdev` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of net devices to exclude (mutually exclusive to device-include)
    /// [default: ^lo$ unless device-include is given].
    #[arg(
        long = "collector.netdev.device-exclude",
        id = "collector.netdev.device-exclude",
        alias = "collector.netdev.device-blacklist",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.netdev.device-include",
        id = "collector.netdev.device-include",
        alias = "collector.netdev.device-whitelist",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// Use netlink to gather stats instead of /proc/net/dev.
    #[arg(long = "collector.netdev.netlink", id = "collector.netdev.netlink",
          default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub netlink: bool,
    /// Read /proc/net/dev instead of netlink (kingpin's negation of the above).
    #[arg(
        long = "no-collector.netdev.netlink",
        id = "no-collector.netdev.netlink"
    )]
    pub no_netlink: bool,
}

/// A device name filter: an exclude regex or an include regex (node_exporter's
/// `deviceFilter`). Devices are few, so matching per scrape is cheap.
#[derive(Debug)]
pub(crate) struct DeviceFilter {
    exclude: Option<Regex>,
    include: Option<Regex>,
}

impl DeviceFilter {
    /// From the flags; `default_exclude` applies when neither is given. `flag` prefixes the
    /// flag names in errors (`--collector.netdev.device`).
    pub(crate) fn new(
        exclude: Option<&str>,
        include: Option<&str>,
        default_exclude: Option<&str>,
        flag: &str,
    ) -> anyhow::Result<Self> {
        let exclude = exclude.filter(|s| !s.is_empty());
        let include = include.filter(|s| !s.is_empty());
        if exclude.is_some() && include.is_some() {
            anyhow::bail!("{flag}-exclude and {flag}-include are mutually exclusive");
        }
        let exclude = match (exclude, include) {
            (Some(e), _) => Some(e),
            (None, None) => default_exclude,
            (None, Some(_)) => None,
        };
        let compile = |s: Option<&str>, which: &str| {
            s.map(|s| Regex::new(s).with_context(|| format!("invalid {flag}-{which} regexp")))
                .transpose()
        };
        Ok(Self {
            exclude: compile(exclude, "exclude")?,
            include: compile(include, "include")?,
        })
    }

    /// Whether `name` is filtered out.
    pub(crate) fn ignored(&self, name: &str) -> bool {
        self.exclude.as_ref().is_some_and(|r| r.is_match(name))
            || self.include.as_ref().is_some_and(|r| !r.is_match(name))
    }
}

/// The counters node_exporter 1.5 exposes (its "legacy" names), in the order written here.
pub(crate) const STATS: [&str; 17] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
    "receive_nohandler",
];
/// Number of /proc/net/dev columns (the first 16 of [`STATS`]).
const PROC_COLUMNS: usize = 16;

/// One device's counters, indexed like [`STATS`] (`None`: not available from the source).
pub(crate) type DevStats = (String, [Option<u64>; 17]);

/// Parses /proc/net/dev: two header lines, then `name: 16 numbers`. The name is everything
/// before the first `:` (trimmed). Lines with a wrong column count are skipped.
pub(crate) fn parse_proc(text: &str) -> Vec<DevStats> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains('|') {
            continue; // header lines
        }
        let values: Vec<u64> = rest
            .split_ascii_whitespace()
            .map_while(|v| v.parse().ok())
            .collect();
        if values.len() != PROC_COLUMNS || rest.split_ascii_whitespace().count() != PROC_COLUMNS {
            continue;
        }
        let mut stats = [None; 17];
        for (slot, v) in stats.iter_mut().zip(values) {
            *slot = Some(v);
        }
        out.push((name.to_owned(), stats));
    }
    out
}

/// Netlink message parsing and the RTM_GETLINK dump.
pub(crate) mod netlink {
    use super::DevStats;

    const NLMSG_HDRLEN: usize = 16;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const RTM_NEWLINK: u16 = 16;
    const RTM_GETLINK: u16 = 18;
    const IFINFOMSG_LEN: usize = 16;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_STATS64: u16 = 23;

    fn u16_at(b: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
    }
    fn u32_at(b: &[u8], i: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
    }
    fn u64_at(b: &[u8], i: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(b.get(i..i + 8)?.try_into().ok()?))
    }
    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }

    /// Maps `struct rtnl_link_stats64` onto node_exporter's legacy names (its `legacy()`).
    fn legacy(s: &[u8]) -> [Option<u64>; 17] {
        // rtnl_link_stats64 field indexes.
        let f = |i: usize| u64_at(s, i * 8);
        let (rx_packets, tx_packets, rx_bytes, tx_bytes) = (f(0), f(1), f(2), f(3));
        let (rx_errors, tx_errors, rx_dropped, tx_dropped) = (f(4), f(5), f(6), f(7));
        let (multicast, collisions) = (f(8), f(9));
        let (rx_frame, rx_fifo) = (f(13), f(14));
        let (tx_carrier, tx_fifo) = (f(17), f(18));
        let (rx_compressed, tx_compressed, rx_nohandler) = (f(21), f(22), f(23));
        [
            rx_bytes,
            rx_packets,
            rx_errors,
            rx_dropped,
            rx_fifo,
            rx_frame,
            rx_compressed,
            multicast,
            tx_bytes,
            tx_packets,
            tx_errors,
            tx_dropped,
            tx_fifo,
            collisions,
            tx_carrier,
            tx_compressed,
            rx_nohandler,
        ]
    }

    /// What one buffer of netlink messages holds.
    #[derive(Debug, Default)]
    pub(crate) struct Batch {
        pub links: Vec<DevStats>,
        pub done: bool,
        pub error: Option<i32>,
    }

    /// Parses a buffer of netlink messages (RTM_NEWLINK, NLMSG_DONE, NLMSG_ERROR). Truncated
    /// or malformed messages end the parse; nothing here can panic.
    pub(crate) fn parse(buf: &[u8]) -> Batch {
        let mut batch = Batch::default();
        let mut off = 0;
        while off + NLMSG_HDRLEN <= buf.len() {
            let (Some(len), Some(kind)) = (u32_at(buf, off), u16_at(buf, off + 4)) else {
                break;
            };
            let len = len as usize;
            if len < NLMSG_HDRLEN || off + len > buf.len() {
                break;
            }
            let msg = &buf[off + NLMSG_HDRLEN..off + len];
            match kind {
                NLMSG_DONE => {
                    batch.done = true;
                    break;
                }
                NLMSG_ERROR => {
                    let code = u32_at(msg, 0).map(|c| c as i32).unwrap_or(-1);
                    if code != 0 {
                        batch.error = Some(code);
                    }
                    batch.done = true;
                    break;
                }
                RTM_NEWLINK if msg.len() >= IFINFOMSG_LEN => {
                    let mut name = None;
                    let mut stats = None;
                    let mut a = IFINFOMSG_LEN;
                    while a + 4 <= msg.len() {
                        let (Some(alen), Some(atype)) = (u16_at(msg, a), u16_at(msg, a + 2)) else {
                            break;
                        };
                        let alen = alen as usize;
                        if alen < 4 || a + alen > msg.len() {
                            break;
                        }
                        let payload = &msg[a + 4..a + alen];
                        match atype & 0x3fff {
                            IFLA_IFNAME => {
                                let end = payload
                                    .iter()
                                    .position(|&b| b == 0)
                                    .unwrap_or(payload.len());
                                name = Some(String::from_utf8_lossy(&payload[..end]).into_owned());
                            }
                            IFLA_STATS64 => stats = Some(legacy(payload)),
                            _ => {}
                        }
                        a += align4(alen);
                    }
                    if let (Some(n), Some(s)) = (name, stats) {
                        batch.links.push((n, s));
                    }
                }
                _ => {}
            }
            off += align4(len);
        }
        batch
    }

    /// Dumps every link's stats over a NETLINK_ROUTE socket (5 s receive timeout).
    pub(crate) fn dump() -> std::io::Result<Vec<DevStats>> {
        let mut links = Vec::new();
        dump_raw(|buf| links.extend(parse(buf).links))?;
        Ok(links)
    }

    /// Sends RTM_GETLINK (dump) and hands each received buffer to `each` until the dump
    /// ends; a netlink error ends it with that error.
    pub(crate) fn dump_raw(mut each: impl FnMut(&[u8])) -> std::io::Result<()> {
        use std::io::{Error, ErrorKind};
        // SAFETY: plain socket syscalls on a descriptor this function owns; buffers are
        // valid for the lengths passed.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(Error::last_os_error());
            }
            struct Fd(i32);
            impl Drop for Fd {
                fn drop(&mut self) {
                    // SAFETY: closing the descriptor we opened, once.
                    unsafe { libc::close(self.0) };
                }
            }
            let fd = Fd(fd);
            let tv = libc::timeval {
                tv_sec: 5,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let mut req = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN];
            req[0..4].copy_from_slice(&((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes());
            req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
            let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
            req[6..8].copy_from_slice(&flags.to_ne_bytes());
            req[8..12].copy_from_slice(&1u32.to_ne_bytes());
            req[NLMSG_HDRLEN] = libc::AF_UNSPEC as u8;
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            let sent = libc::sendto(
                fd.0,
                req.as_ptr() as *const libc::c_void,
                req.len(),
                0,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            );
            if sent < 0 {
                return Err(Error::last_os_error());
            }
            let mut buf = vec![0u8; 32 * 1024];
            for _ in 0..100_000 {
                let n = libc::recv(fd.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
                if n < 0 {
                    return Err(Error::last_os_error());
                }
                if n == 0 {
                    break;
                }
                let data = &buf[..n as usize];
                each(data);
                let batch = parse(data);
                if let Some(code) = batch.error {
                    return Err(Error::from_raw_os_error(-code));
                }
                if batch.done {
                    return Ok(());
                }
            }
            Err(Error::new(
                ErrorKind::UnexpectedEof,
                "netlink dump did not finish",
            ))
        }
    }
}

struct NetDev {
    proc_path: PathBuf,
    netlink: bool,
    filter: DeviceFilter,
}

/// Builds the `netdev` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let f = cfg.flags::<Flags>()?;
    Ok(Arc::new(NetDev {
        proc_path: cfg.paths.proc("net/dev"),
        netlink: f.netlink && !f.no_netlink,
        filter: DeviceFilter::new(
            f.device_exclude.as_deref(),
            f.device_include.as_deref(),
            Some(DEFAULT_EXCLUDE),
            "--collector.netdev.device",
        )?,
    }))
}

impl NetDev {
    /// Writes the counters of the devices that pass the filter.
    fn emit(&self, devices: &[DevStats], out: &mut MetricSet) {
        let devices: Vec<&DevStats> = {
            let mut seen = std::collections::HashSet::new();
            devices
                .iter()
                .filter(|(n, _)| !self.filter.ignored(n) && seen.insert(n.as_str()))
                .collect()
        };
        let mut name = String::with_capacity(48);
        let mut help = String::with_capacity(48);
        for (i, stat) in STATS.iter().enumerate() {
            name.clear();
            name.push_str("node_network_");
            name.push_str(stat);
            name.push_str("_total");
            help.clear();
            help.push_str("Network device statistic ");
            help.push_str(stat);
            help.push('.');
            let fam = out.counter_dyn(&name, &help);
            for (dev, stats) in &devices {
                if let Some(v) = stats[i] {
                    fam.sample(&[("device", dev)], v as f64);
                }
            }
        }
    }
}

impl Collector for NetDev {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let devices = if self.netlink {
            netlink::dump().context("couldn't get netstats over netlink")?
        } else {
            let text = std::fs::read_to_string(&self.proc_path)
                .with_context(|| format!("reading {}", self.proc_path.display()))?;
            parse_proc(&text)
        };
        self.emit(&devices, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    fn proc_config(dir: &str, extra: &[&str]) -> Config {
        let mut args = vec!["--no-collector.netdev.netlink"];
        args.extend_from_slice(extra);
        test_config(&testdata().join("fixtures").join(dir), &args)
    }

    #[test]
    fn golden_this_machine() {
        let c = new(&proc_config("a-netdev", &[])).unwrap();
        assert_golden("netdev", &render(&*c).unwrap());
    }

    #[test]
    fn golden_odd_names_and_truncated_lines() {
        // "my dev" has a space in its name, "eth1" is truncated, "lo" is excluded by default.
        let c = new(&proc_config("a-netdev-odd", &[])).unwrap();
        assert_golden("netdev_odd", &render(&*c).unwrap());
    }

    #[test]
    fn include_and_exclude() {
        let c = new(&proc_config(
            "a-netdev",
            &["--collector.netdev.device-include=^lo$"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("{device=\"lo\"}") && !t.contains("eth0"), "{t}");
        let c = new(&proc_config(
            "a-netdev",
            &["--collector.netdev.device-exclude=^(eth|ifb)"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("{device=\"lo\"}") && !t.contains("eth0") && !t.contains("ifb"));
        assert!(new(&proc_config(
            "a-netdev",
            &[
                "--collector.netdev.device-include=a",
                "--collector.netdev.device-exclude=b"
            ]
        ))
        .is_err());
    }

    /// The RTM_GETLINK dump of this machine, recorded with
    /// `RECORD_NETLINK=1 cargo test -p hpcmon-node-exporter record_netlink -- --ignored`.
    const NETLINK_FIXTURE: &str = "fixtures/a-netdev-netlink/rtm_getlink.bin";

    #[test]
    #[ignore = "records a fixture from this machine"]
    fn record_netlink() {
        if std::env::var_os("RECORD_NETLINK").is_none() {
            return;
        }
        let mut bytes = Vec::new();
        netlink::dump_raw(|b| bytes.extend_from_slice(b)).unwrap();
        let path = testdata().join(NETLINK_FIXTURE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn golden_netlink_recorded() {
        // A recorded dump of this machine (lo, ifb0, ifb1, eth0) through the default
        // device filter, including receive_nohandler which /proc/net/dev lacks.
        let bytes = std::fs::read(testdata().join(NETLINK_FIXTURE)).unwrap();
        let batch = netlink::parse(&bytes);
        assert!(batch.done && batch.error.is_none());
        let dir = tempfile::tempdir().unwrap();
        let cfg = test_config(dir.path(), &[]);
        let c = NetDev {
            proc_path: PathBuf::new(),
            netlink: true,
            filter: DeviceFilter::new(
                cfg.flags::<Flags>().unwrap().device_exclude.as_deref(),
                cfg.flags::<Flags>().unwrap().device_include.as_deref(),
                Some(DEFAULT_EXCLUDE),
                "--collector.netdev.device",
            )
            .unwrap(),
        };
        let mut set = MetricSet::new();
        c.emit(&batch.links, &mut set);
        set.normalize();
        assert_golden("netdev_netlink", &hpcmon_kit::metrics::encode_text(&set));
    }

    #[test]
    fn netlink_sees_loopback() {
        // Every Linux network namespace has `lo`; netlink must report it with all 17 counters.
        let links = netlink::dump().expect("netlink dump");
        let lo = links
            .iter()
            .find(|(n, _)| n == "lo")
            .expect("lo in netlink dump");
        assert!(lo.1.iter().all(Option::is_some), "{lo:?}");
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(
            dir.path(),
            &["--collector.netdev.device-include=^lo$"],
        ))
        .unwrap();
        let t = render(&*c).unwrap();
        assert!(
            t.contains("node_network_receive_nohandler_total{device=\"lo\"} "),
            "{t}"
        );
    }

    proptest! {
        #[test]
        fn proc_parser_never_panics(s in "\\PC*") {
            let _ = parse_proc(&s);
        }

        #[test]
        fn netlink_parser_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = netlink::parse(&b);
        }

        #[test]
        fn netlink_parser_survives_mutated_dump(
            cut in 0usize..6000, at in 0usize..6000, byte in any::<u8>(),
        ) {
            let mut b = std::fs::read(testdata().join(NETLINK_FIXTURE)).unwrap();
            if !b.is_empty() {
                let at = at % b.len();
                b[at] = byte;
            }
            b.truncate(cut);
            let _ = netlink::parse(&b);
        }

        #[test]
        fn netlink_parser_survives_valid_prefix(
            len in 16u32..400, kind in prop_oneof![Just(2u16), Just(3u16), Just(16u16), any::<u16>()],
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut b = Vec::new();
            b.extend_from_slice(&len.to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(&[0u8; 10]);
            b.extend_from_slice(&body);
            let _ = netlink::parse(&b);
        }
    }
}
