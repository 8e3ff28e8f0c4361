//! `ipvs` collector: IPVS (Linux Virtual Server) totals from `/proc/net/ip_vs_stats` and
//! per-backend connections and weights from `/proc/net/ip_vs`, as node_exporter 1.5:
//! `node_ipvs_{connections,incoming_packets,outgoing_packets,incoming_bytes,
//! outgoing_bytes}_total` and `node_ipvs_backend_{connections_active,
//! connections_inactive,weight}` labelled with `--collector.ipvs.backend-labels` (default
//! `local_address,local_port,remote_address,remote_port,proto,local_mark`; backends that
//! agree on the chosen labels are summed).
//!
//! No IPVS module loaded fails the collector, as node_exporter reports it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// Every backend label, in node_exporter's order.
pub const ALL_LABELS: [&str; 6] = [
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

/// Flags of the `ipvs` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Comma separated list for IPVS backend stats labels.
    #[arg(
        long = "collector.ipvs.backend-labels",
        id = "collector.ipvs.backend-labels",
        default_value = "local_address,local_port,remote_address,remote_port,proto,local_mark",
        value_name = "LABELS"
    )]
    pub backend_labels: String,
}

/// The chosen labels in node_exporter's order; an unknown name is an error.
pub(crate) fn parse_labels(s: &str) -> anyhow::Result<Vec<&'static str>> {
    let wanted: std::collections::BTreeSet<&str> = s.split(',').filter(|l| !l.is_empty()).collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|l| !ALL_LABELS.contains(l))
        .collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "unknown IPVS backend labels: {:?}",
        unknown.join(", ")
    );
    Ok(ALL_LABELS
        .into_iter()
        .filter(|l| wanted.contains(l))
        .collect())
}

/// Parses `/proc/net/ip_vs_stats`: the five hexadecimal totals on its third line.
pub(crate) fn parse_stats(text: &str) -> anyhow::Result<[u64; 5]> {
    let mut lines = text.splitn(4, '\n');
    let (Some(_), Some(_), Some(third), Some(_)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        anyhow::bail!("ip_vs_stats corrupt: too short");
    };
    let f: Vec<&str> = third.split_ascii_whitespace().collect();
    anyhow::ensure!(
        f.len() == 5,
        "ip_vs_stats corrupt: unexpected number of fields"
    );
    let mut out = [0u64; 5];
    for (o, s) in out.iter_mut().zip(&f) {
        *o = u64::from_str_radix(s, 16)
            .ok()
            .filter(|_| !s.starts_with('+'))
            .with_context(|| format!("invalid number {s:?} in ip_vs_stats"))?;
    }
    Ok(out)
}

/// One real server line of `/proc/net/ip_vs` with its virtual service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Backend {
    pub local_address: String,
    pub local_port: u16,
    pub local_mark: String,
    pub remote_address: String,
    pub remote_port: u16,
    pub proto: String,
    pub weight: u64,
    pub active: u64,
    pub inactive: u64,
}

/// An address as Go's `net.IP.String` writes it (IPv4-mapped IPv6 as dotted IPv4).
fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// `0A000001:0050` or `[2620:0000:...:0001]:0050` into address and port.
fn parse_ip_port(s: &str) -> anyhow::Result<(String, u16)> {
    let ip = match s.len() {
        13 => {
            let v = s
                .get(..8)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .with_context(|| format!("invalid IPv4 address in {s:?}"))?;
            IpAddr::V4(Ipv4Addr::from(v))
        }
        46 => {
            let inner = s
                .get(1..40)
                .with_context(|| format!("invalid IPv6 address in {s:?}"))?;
            IpAddr::V6(
                inner
                    .parse::<Ipv6Addr>()
                    .with_context(|| format!("invalid IPv6 address: {inner}"))?,
            )
        }
        _ => anyhow::bail!("unexpected IP:Port: {s}"),
    };
    let port = s
        .get(s.len() - 4..)
        .and_then(|p| {
            u16::from_str_radix(p, 16)
                .ok()
                .filter(|_| !p.starts_with('+'))
        })
        .with_context(|| format!("unexpected port string format: {s}"))?;
    Ok((ip_string(ip), port))
}

/// Parses `/proc/net/ip_vs`.
pub(crate) fn parse_backends(text: &str) -> anyhow::Result<Vec<Backend>> {
    let mut out = Vec::new();
    let (mut proto, mut mark, mut laddr, mut lport) =
        (String::new(), String::new(), String::new(), 0u16);
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() || f[0] == "IP" || f[0] == "Prot" || f.get(1) == Some(&"RemoteAddress:Port")
        {
            continue;
        }
        match f[0] {
            "TCP" | "UDP" if f.len() >= 2 => {
                proto = f[0].to_owned();
                mark.clear();
                (laddr, lport) = parse_ip_port(f[1])?;
            }
            "FWM" if f.len() >= 2 => {
                proto = f[0].to_owned();
                mark = f[1].to_owned();
                laddr.clear();
                lport = 0;
            }
            "->" if f.len() >= 6 => {
                let (raddr, rport) = parse_ip_port(f[1])?;
                let num = |s: &str| {
                    s.parse::<u64>()
                        .with_context(|| format!("invalid number {s:?} in {line:?}"))
                };
                out.push(Backend {
                    local_address: laddr.clone(),
                    local_port: lport,
                    local_mark: mark.clone(),
                    remote_address: raddr,
                    remote_port: rport,
                    proto: proto.clone(),
                    weight: num(f[3])?,
                    active: num(f[4])?,
                    inactive: num(f[5])?,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

struct Ipvs {
    stats: PathBuf,
    backends: PathBuf,
    labels: Vec<&'static str>,
}

/// Builds the `ipvs` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Ipvs {
        stats: cfg.paths.proc("net/ip_vs_stats"),
        backends: cfg.paths.proc("net/ip_vs"),
        labels: parse_labels(&cfg.flags::<Flags>()?.backend_labels)?,
    }))
}

impl Collector for Ipvs {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let stats = parse_stats(&read::text(&self.stats)?).context("could not get IPVS stats")?;
        let backends =
            parse_backends(&read::text(&self.backends)?).context("could not get backend status")?;
        for ((name, help), v) in [
            (
                "node_ipvs_connections_total",
                "The total number of connections made.",
            ),
            (
                "node_ipvs_incoming_packets_total",
                "The total number of incoming packets.",
            ),
            (
                "node_ipvs_outgoing_packets_total",
                "The total number of outgoing packets.",
            ),
            (
                "node_ipvs_incoming_bytes_total",
                "The total amount of incoming data.",
            ),
            (
                "node_ipvs_outgoing_bytes_total",
                "The total amount of outgoing data.",
            ),
        ]
        .into_iter()
        .zip(stats)
        {
            out.counter(name, help).sample(&[], v as f64);
        }
        let mut sums: BTreeMap<Vec<String>, [u64; 3]> = BTreeMap::new();
        for b in &backends {
            let key: Vec<String> = self
                .labels
                .iter()
                .map(|l| match *l {
                    "local_address" => b.local_address.clone(),
                    "local_port" => b.local_port.to_string(),
                    "remote_address" => b.remote_address.clone(),
                    "remote_port" => b.remote_port.to_string(),
                    "proto" => b.proto.clone(),
                    _ => b.local_mark.clone(),
                })
                .collect();
            let s = sums.entry(key).or_default();
            s[0] = s[0].wrapping_add(b.active);
            s[1] = s[1].wrapping_add(b.inactive);
            s[2] = s[2].wrapping_add(b.weight);
        }
        for (key, s) in &sums {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(key.iter().map(String::as_str))
                .collect();
            out.gauge(
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
            )
            .sample(&labels, s[0] as f64);
            out.gauge(
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
            )
            .sample(&labels, s[1] as f64);
            out.gauge(
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
            )
            .sample(&labels, s[2] as f64);
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
        let c = new(&test_config(&testdata().join("fixtures/a-ipvs"), &[])).unwrap();
        assert_golden("ipvs", &render(&*c).unwrap());
    }

    #[test]
    fn golden_fewer_labels_sum_backends() {
        let c = new(&test_config(
            &testdata().join("fixtures/a-ipvs"),
            &["--collector.ipvs.backend-labels=proto,local_port"],
        ))
        .unwrap();
        assert_golden("ipvs_proto_port", &render(&*c).unwrap());
    }

    #[test]
    fn labels_and_addresses() {
        assert_eq!(
            parse_labels("proto,local_address").unwrap(),
            ["local_address", "proto"]
        );
        assert!(parse_labels("proto,bogus").is_err());
        assert_eq!(
            parse_ip_port("C0A80016:0CEA").unwrap(),
            ("192.168.0.22".into(), 3306)
        );
        assert_eq!(
            parse_ip_port("[2620:0000:0abc:0000:0000:0000:0000:0001]:0050").unwrap(),
            ("2620:0:abc::1".into(), 80)
        );
        assert_eq!(
            parse_ip_port("[0000:0000:0000:0000:0000:ffff:0a00:0001]:0050")
                .unwrap()
                .0,
            "10.0.0.1"
        );
        assert!(parse_ip_port("C0A80016:0CE").is_err());
        assert!(parse_ip_port("ZZA80016:0CEA").is_err());
    }

    #[test]
    fn no_ipvs_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
        assert!(parse_stats("a\nb\n").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_stats(&s);
            let _ = parse_backends(&s);
            let _ = parse_ip_port(&s);
        }
    }
}
