//! `ethtool` collector: network driver statistics and link modes through the `SIOCETHTOOL`
//! ioctl, as node_exporter 1.5:
//!
//! - `node_ethtool_info{bus_info,device,driver,expansion_rom_version,firmware_version,version}`;
//! - every driver statistic (`ethtool -S`) as untyped `node_ethtool_<name>{device}`, the
//!   name sanitized and lowercased with `rx`/`tx` spelled `received`/`transmitted`
//!   (`rx_queue_0_packets` → `node_ethtool_received_queue_0_packets`; `rx_bytes`,
//!   `tx_errors`, ... keep node_exporter's `_total` names), filtered by
//!   `--collector.ethtool.metrics-include`; statistics whose names collide after
//!   sanitizing are dropped;
//! - from the legacy link settings: `node_network_supported_speed_bytes`,
//!   `node_network_advertised_speed_bytes{device,duplex,mode}`,
//!   `node_network_supported_port_info{device,type}`, `node_network_autonegotiate`,
//!   `node_network_{autonegotiate,pause,asymmetricpause}_{supported,advertised}`.
//!
//! Interfaces come from `<path.sysfs>/class/net`, filtered by
//! `--collector.ethtool.device-include` / `-exclude`; the ioctls go to the interfaces of
//! this network namespace. A driver without a given ioctl (EOPNOTSUPP) just lacks those
//! metrics. Off by default, as there.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::netdev::DeviceFilter;
use super::read;
use super::Config;

/// Flags of the `ethtool` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of ethtool devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.ethtool.device-include",
        id = "collector.ethtool.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// Regexp of ethtool devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.ethtool.device-exclude",
        id = "collector.ethtool.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Regexp of ethtool stats to include.
    #[arg(
        long = "collector.ethtool.metrics-include",
        id = "collector.ethtool.metrics-include",
        default_value = ".*",
        value_name = "REGEX"
    )]
    pub metrics_include: String,
}

mod sys {
    //! `SIOCETHTOOL` and the structures of `linux/ethtool.h` it uses.

    pub const SIOCETHTOOL: u64 = 0x8946;
    pub const GSET: u32 = 0x1;
    pub const GDRVINFO: u32 = 0x3;
    pub const GSTRINGS: u32 = 0x1b;
    pub const GSTATS: u32 = 0x1d;
    pub const SS_STATS: u32 = 1;
    pub const GSTRING_LEN: usize = 32;
    /// The most statistics read per interface (the Go library's limit).
    pub const MAX_STATS: u32 = 16384;

    /// `struct ethtool_drvinfo`.
    #[repr(C)]
    pub struct DrvInfo {
        pub cmd: u32,
        pub driver: [u8; 32],
        pub version: [u8; 32],
        pub fw_version: [u8; 32],
        pub bus_info: [u8; 32],
        pub erom_version: [u8; 32],
        pub reserved2: [u8; 12],
        pub n_priv_flags: u32,
        pub n_stats: u32,
        pub testinfo_len: u32,
        pub eedump_len: u32,
        pub regdump_len: u32,
    }

    /// `struct ethtool_cmd` (legacy link settings).
    #[repr(C)]
    pub struct Cmd {
        pub cmd: u32,
        pub supported: u32,
        pub advertising: u32,
        pub speed: u16,
        pub duplex: u8,
        pub port: u8,
        pub phy_address: u8,
        pub transceiver: u8,
        pub autoneg: u8,
        pub mdio_support: u8,
        pub maxtxpkt: u32,
        pub maxrxpkt: u32,
        pub speed_hi: u16,
        pub eth_tp_mdix: u8,
        pub eth_tp_mdix_ctrl: u8,
        pub lp_advertising: u32,
        pub reserved: [u32; 2],
    }

    /// `struct ifreq` with `ifr_data`.
    #[repr(C)]
    pub struct IfReq {
        pub name: [u8; 16],
        pub data: *mut libc::c_void,
        pub pad: [u8; 16],
    }
}

/// A datagram socket for the ioctls.
fn socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `SIOCETHTOOL` for `dev` with the command buffer `data` (its first u32 is the command).
fn ethtool(sock: &OwnedFd, dev: &str, data: *mut libc::c_void) -> std::io::Result<()> {
    let mut req = sys::IfReq {
        name: [0; 16],
        data,
        pad: [0; 16],
    };
    let n = dev.len();
    if n >= req.name.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
    }
    req.name[..n].copy_from_slice(dev.as_bytes());
    // SAFETY: `req` lives for the call and points at a command buffer of the size the
    // kernel expects for its command (the callers size `data` from the kernel's answers).
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), sys::SIOCETHTOOL as _, &mut req) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Driver information: driver, version, firmware, bus, expansion ROM, number of stats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DriverInfo {
    pub driver: String,
    pub version: String,
    pub firmware: String,
    pub bus: String,
    pub erom: String,
    pub n_stats: u32,
}

fn driver_info(sock: &OwnedFd, dev: &str) -> std::io::Result<DriverInfo> {
    // SAFETY: DrvInfo is plain integers and byte arrays; all-zero is valid.
    let mut d: sys::DrvInfo = unsafe { std::mem::zeroed() };
    d.cmd = sys::GDRVINFO;
    ethtool(sock, dev, &mut d as *mut _ as *mut libc::c_void)?;
    Ok(DriverInfo {
        driver: c_string(&d.driver),
        version: c_string(&d.version),
        firmware: c_string(&d.fw_version),
        bus: c_string(&d.bus_info),
        erom: c_string(&d.erom_version),
        n_stats: d.n_stats,
    })
}

/// The driver statistics `name → value` (`ethtool -S`).
fn stats(sock: &OwnedFd, dev: &str, n: u32) -> std::io::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    if n == 0 {
        return Ok(out);
    }
    if n > sys::MAX_STATS {
        return Err(std::io::Error::other(format!(
            "more than {} statistics ({n})",
            sys::MAX_STATS
        )));
    }
    let n_us = n as usize;
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }, in u64s
    // so that the buffer is aligned.
    let mut strings = vec![0u64; (12 + n_us * sys::GSTRING_LEN).div_ceil(8)];
    {
        let head = strings.as_mut_ptr() as *mut u32;
        // SAFETY: the buffer holds at least 12 bytes, u64-aligned.
        unsafe {
            *head = sys::GSTRINGS;
            *head.add(1) = sys::SS_STATS;
            *head.add(2) = n;
        }
    }
    ethtool(sock, dev, strings.as_mut_ptr() as *mut libc::c_void)?;
    // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }
    let mut values = vec![0u64; 1 + n_us];
    {
        let head = values.as_mut_ptr() as *mut u32;
        // SAFETY: the buffer holds at least 8 bytes.
        unsafe {
            *head = sys::GSTATS;
            *head.add(1) = n;
        }
    }
    ethtool(sock, dev, values.as_mut_ptr() as *mut libc::c_void)?;
    // SAFETY: reading the byte view of an initialized u64 buffer.
    let bytes: &[u8] =
        unsafe { std::slice::from_raw_parts(strings.as_ptr() as *const u8, strings.len() * 8) };
    for i in 0..n_us {
        let s = &bytes[12 + i * sys::GSTRING_LEN..12 + (i + 1) * sys::GSTRING_LEN];
        let key = c_string(s);
        if !key.is_empty() {
            out.insert(key, values[1 + i]);
        }
    }
    Ok(out)
}

/// The legacy link settings: supported and advertised link modes, autonegotiation.
fn link_info(sock: &OwnedFd, dev: &str) -> std::io::Result<(u32, u32, u8)> {
    // SAFETY: Cmd is plain integers; all-zero is valid.
    let mut c: sys::Cmd = unsafe { std::mem::zeroed() };
    c.cmd = sys::GSET;
    ethtool(sock, dev, &mut c as *mut _ as *mut libc::c_void)?;
    Ok((c.supported, c.advertising, c.autoneg))
}

/// node_exporter's name for a driver statistic (before its fixed `_total` names).
pub(crate) fn metric_name(stat: &str) -> String {
    static RX: std::sync::OnceLock<(Regex, Regex)> = std::sync::OnceLock::new();
    let (rx, tx) = RX.get_or_init(|| {
        (
            Regex::new("(^|_)rx(_|$)").expect("valid regex"),
            Regex::new("(^|_)tx(_|$)").expect("valid regex"),
        )
    });
    let n = read::sanitize_metric_name(stat).to_lowercase();
    let n = n.trim_start_matches('_');
    let n = rx.replace_all(n, "${1}received${2}");
    let n = tx.replace_all(&n, "${1}transmitted${2}");
    format!("node_ethtool_{n}")
}

/// Statistics node_exporter exposes under fixed names: stat → (metric, help).
const FIXED: [(&str, &str, &str); 7] = [
    (
        "rx_bytes",
        "node_ethtool_received_bytes_total",
        "Network interface bytes received",
    ),
    (
        "rx_dropped",
        "node_ethtool_received_dropped_total",
        "Number of received frames dropped",
    ),
    (
        "rx_errors",
        "node_ethtool_received_errors_total",
        "Number of received frames with errors",
    ),
    (
        "rx_packets",
        "node_ethtool_received_packets_total",
        "Network interface packets received",
    ),
    (
        "tx_bytes",
        "node_ethtool_transmitted_bytes_total",
        "Network interface bytes sent",
    ),
    (
        "tx_errors",
        "node_ethtool_transmitted_errors_total",
        "Number of sent frames with errors",
    ),
    (
        "tx_packets",
        "node_ethtool_transmitted_packets_total",
        "Network interface packets sent",
    ),
];

/// The statistics to expose as `(metric, help, value)`: matching `include`, without the
/// names that collide after sanitizing, sorted by metric name.
pub(crate) fn select_stats(
    stats: &BTreeMap<String, u64>,
    include: &Regex,
) -> Vec<(String, String, u64)> {
    let mut by_name: BTreeMap<String, Option<&str>> = BTreeMap::new();
    for stat in stats.keys().filter(|s| include.is_match(s)) {
        by_name
            .entry(metric_name(stat))
            .and_modify(|e| *e = None)
            .or_insert(Some(stat.as_str()));
    }
    by_name
        .into_iter()
        .filter_map(|(name, stat)| {
            let stat = stat?;
            let (name, help) = match FIXED.iter().find(|(s, ..)| *s == stat) {
                Some((_, n, h)) => ((*n).to_owned(), (*h).to_owned()),
                None => (name, format!("Network interface {stat}")),
            };
            Some((name, help, stats[stat]))
        })
        .collect()
}

/// Link mode bits (`ETHTOOL_LINK_MODE_*_BIT`) → (speed in Mb/s, duplex, mode).
const SPEEDS: [(u32, u64, &str, &str); 22] = [
    (0, 10, "half", "10baseT"),
    (1, 10, "full", "10baseT"),
    (2, 100, "half", "100baseT"),
    (3, 100, "full", "100baseT"),
    (4, 1000, "half", "1000baseT"),
    (5, 1000, "full", "1000baseT"),
    (12, 10000, "full", "10000baseT"),
    (17, 1000, "full", "1000baseKX"),
    (18, 10000, "full", "10000baseKX4"),
    (19, 10000, "full", "10000baseKR"),
    (20, 10000, "full", "10000baseR_FEC"),
    (21, 20000, "full", "20000baseMLD2"),
    (22, 20000, "full", "20000baseKR2"),
    (23, 40000, "full", "40000baseKR4"),
    (24, 40000, "full", "40000baseCR4"),
    (25, 40000, "full", "40000baseSR4"),
    (26, 40000, "full", "40000baseLR4"),
    (27, 56000, "full", "56000baseKR4"),
    (28, 56000, "full", "56000baseCR4"),
    (29, 56000, "full", "56000baseSR4"),
    (30, 56000, "full", "56000baseLR4"),
    (31, 25000, "full", "25000baseCR"),
];
const PORTS: [(u32, &str); 6] = [
    (7, "TP"),
    (8, "AUI"),
    (9, "MII"),
    (10, "FIBRE"),
    (11, "BNC"),
    (16, "Backplane"),
];
const AUTONEG_BIT: u32 = 6;
const PAUSE_BIT: u32 = 13;
const ASYM_PAUSE_BIT: u32 = 14;

fn bit(modes: u32, b: u32) -> f64 {
    if modes & (1 << b) != 0 {
        1.0
    } else {
        0.0
    }
}

/// Emits the link-mode families for `prefix` (`supported` or `advertised`).
fn emit_modes(out: &mut MetricSet, dev: &str, prefix: &str, modes: u32) {
    let (help, autoneg_help, pause_help, asym_help) = if prefix == "supported" {
        (
            "Combination of speeds and features supported by network device",
            "If this port device supports autonegotiate",
            "If this port device supports pause frames",
            "If this port device supports asymmetric pause frames",
        )
    } else {
        (
            "Combination of speeds and features offered by network device",
            "If this port device offers autonegotiate",
            "If this port device offers pause capability",
            "If this port device offers asymmetric pause capability",
        )
    };
    for (b, mbps, duplex, mode) in SPEEDS {
        if modes & (1 << b) != 0 {
            out.gauge(format!("node_network_{prefix}_speed_bytes"), help)
                .sample(
                    &[("device", dev), ("duplex", duplex), ("mode", mode)],
                    mbps as f64 * 1e6 / 8.0,
                );
        }
    }
    out.gauge(format!("node_network_autonegotiate_{prefix}"), autoneg_help)
        .sample(&[("device", dev)], bit(modes, AUTONEG_BIT));
    out.gauge(format!("node_network_pause_{prefix}"), pause_help)
        .sample(&[("device", dev)], bit(modes, PAUSE_BIT));
    out.gauge(format!("node_network_asymmetricpause_{prefix}"), asym_help)
        .sample(&[("device", dev)], bit(modes, ASYM_PAUSE_BIT));
}

struct Ethtool {
    class: PathBuf,
    filter: DeviceFilter,
    include: Regex,
}

/// Builds the `ethtool` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let f = cfg.flags::<Flags>()?;
    Ok(Arc::new(Ethtool {
        class: cfg.paths.sys("class/net"),
        filter: DeviceFilter::new(
            f.device_exclude.as_deref(),
            f.device_include.as_deref(),
            None,
            "--collector.ethtool.device",
        )?,
        include: Regex::new(&f.metrics_include).with_context(|| {
            format!(
                "invalid --collector.ethtool.metrics-include {:?}",
                f.metrics_include
            )
        })?,
    }))
}

fn log_error(what: &str, dev: &str, e: &std::io::Error) {
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        tracing::debug!(device = dev, error = %e, "ethtool {what} not supported");
    } else {
        tracing::debug!(device = dev, error = %e, "ethtool {what} failed");
    }
}

impl Collector for Ethtool {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let devices: Vec<String> = read::entries(&self.class)
            .with_context(|| format!("no data: could not read {}", self.class.display()))?
            .into_iter()
            .filter(|(_, p)| p.is_dir())
            .map(|(n, _)| n)
            .collect();
        anyhow::ensure!(!devices.is_empty(), "no network devices found");
        let sock = socket().context("ethtool socket")?;
        for dev in devices.iter().filter(|d| !self.filter.ignored(d)) {
            match link_info(&sock, dev) {
                Ok((supported, advertised, autoneg)) => {
                    emit_modes(out, dev, "supported", supported);
                    for (b, ty) in PORTS {
                        if supported & (1 << b) != 0 {
                            out.gauge(
                                "node_network_supported_port_info",
                                "Type of ports or PHYs supported by network device",
                            )
                            .sample(&[("device", dev), ("type", ty)], 1.0);
                        }
                    }
                    emit_modes(out, dev, "advertised", advertised);
                    out.gauge(
                        "node_network_autonegotiate",
                        "If this port is using autonegotiate",
                    )
                    .sample(&[("device", dev)], autoneg as f64);
                }
                Err(e) => log_error("link info", dev, &e),
            }
            let info = match driver_info(&sock, dev) {
                Ok(i) => i,
                Err(e) => {
                    log_error("driver info", dev, &e);
                    continue;
                }
            };
            out.gauge(
                "node_ethtool_info",
                "A metric with a constant '1' value labeled by bus_info, device, driver, expansion_rom_version, firmware_version, version.",
            )
            .sample(
                &[
                    ("bus_info", &info.bus),
                    ("device", dev),
                    ("driver", &info.driver),
                    ("expansion_rom_version", &info.erom),
                    ("firmware_version", &info.firmware),
                    ("version", &info.version),
                ],
                1.0,
            );
            let stats = match stats(&sock, dev, info.n_stats) {
                Ok(s) => s,
                Err(e) => {
                    log_error("stats", dev, &e);
                    continue;
                }
            };
            for (name, help, v) in select_stats(&stats, &self.include) {
                out.untyped_dyn(&name, &help)
                    .sample(&[("device", dev)], v as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{render, test_config};
    use proptest::prelude::*;

    #[test]
    fn names_like_node_exporter() {
        assert_eq!(
            metric_name("rx_queue_0_packets"),
            "node_ethtool_received_queue_0_packets"
        );
        assert_eq!(
            metric_name("tx-timeout"),
            "node_ethtool_transmitted_timeout"
        );
        assert_eq!(
            metric_name("port.rx_bytes"),
            "node_ethtool_port_received_bytes"
        );
        assert_eq!(metric_name("RX_rx"), "node_ethtool_received_rx");
        assert_eq!(metric_name("__trx_ok"), "node_ethtool_trx_ok");
        let stats: BTreeMap<String, u64> = [
            ("rx_bytes", 1),
            ("rx-errors", 2),
            ("rx_errors", 3),
            ("tx.pkts", 4),
            ("skip_me", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sel = select_stats(&stats, &Regex::new("^(rx|tx)").unwrap());
        assert_eq!(
            sel,
            vec![
                (
                    "node_ethtool_received_bytes_total".to_owned(),
                    "Network interface bytes received".to_owned(),
                    1
                ),
                (
                    "node_ethtool_transmitted_pkts".to_owned(),
                    "Network interface tx.pkts".to_owned(),
                    4
                ),
            ],
            "rx-errors and rx_errors collide and are both dropped"
        );
    }

    #[test]
    fn this_machine_and_missing_class() {
        let sock = socket().unwrap();
        assert!(driver_info(&sock, "nonesuch0").is_err());
        assert!(driver_info(&sock, "a-name-far-too-long-for-ifreq").is_err());
        // Every interface of this machine that answers the driver-info ioctl is reported.
        let c = new(&test_config(std::path::Path::new("/"), &[])).unwrap();
        let text = render(&*c).unwrap();
        for (dev, _) in read::entries(std::path::Path::new("/sys/class/net")).unwrap() {
            if let Ok(info) = driver_info(&sock, &dev) {
                let want = format!("device=\"{dev}\",driver=\"{}\"", info.driver);
                assert!(text.contains(&want), "{want} missing from:\n{text}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err());
    }

    proptest! {
        #[test]
        fn names_never_panic(s in "\\PC{0,40}") {
            let n = metric_name(&s);
            prop_assert!(n.starts_with("node_ethtool_"));
        }
    }
}
