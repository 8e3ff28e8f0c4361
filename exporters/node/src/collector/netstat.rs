//! `netstat` collector: protocol counters from `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6`, as untyped `node_netstat_<Protocol>_<Field>` for the fields that match
//! `--collector.netstat.fields` (node_exporter 1.5's default list), e.g.
//! `node_netstat_Tcp_RetransSegs`, `node_netstat_Ip6_InOctets`.
//!
//! The field regex is evaluated once per `Protocol_Field` name and cached.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::vmstat::{valid_name_part, FieldFilter, Plan};
use super::Config;

/// node_exporter 1.5's default for `--collector.netstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// Flags of the `netstat` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of fields to return for netstat collector.
    #[arg(long = "collector.netstat.fields",
        id = "collector.netstat.fields", default_value = DEFAULT_FIELDS, value_name = "REGEX")]
    pub fields: String,
}

/// One section of /proc/net/netstat or /proc/net/snmp: the protocol (`TcpExt`), its header
/// line (field names) and its value line, or of /proc/net/snmp6: one `Ip6InOctets 1` line.
pub(crate) struct Section<'a> {
    /// The protocol, e.g. `TcpExt` or `Ip6`.
    pub proto: &'a str,
    /// The field names, white-space separated.
    pub names: &'a str,
    /// The values, in the same order.
    pub values: &'a str,
}

#[cfg(test)]
impl<'a> Section<'a> {
    /// `(proto, field, value)` for every field with a numeric value; nothing when the
    /// header and the values disagree in length (a truncated line).
    pub(crate) fn stats(&self) -> Vec<Stat<'a>> {
        let names: Vec<&str> = self.names.split_ascii_whitespace().collect();
        let values: Vec<&str> = self.values.split_ascii_whitespace().collect();
        if names.len() != values.len() {
            return Vec::new();
        }
        names
            .into_iter()
            .zip(values)
            .filter_map(|(n, v)| Some((self.proto, n, v.parse::<f64>().ok()?)))
            .collect()
    }
}

/// The `Proto: names...` / `Proto: values...` line pairs of /proc/net/netstat and
/// /proc/net/snmp.
pub(crate) fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out = Vec::new();
    let mut header: Option<(&str, &str)> = None;
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            header = None;
            continue;
        };
        match header {
            Some((hproto, names)) if hproto == proto => {
                header = None;
                out.push(Section {
                    proto,
                    names,
                    values: rest,
                });
            }
            _ => header = Some((proto, rest)),
        }
    }
    out
}

/// One counter: protocol (`TcpExt`), field (`ListenDrops`) and value.
pub(crate) type Stat<'a> = (&'a str, &'a str, f64);

/// Parses the `Proto: names...` / `Proto: values...` line pairs of /proc/net/netstat and
/// /proc/net/snmp. A pair whose header and values disagree (a truncated line) is skipped,
/// as is a value that is not a number. (The collector applies a cached plan per section
/// instead; this is the reference its output is tested against.)
#[cfg(test)]
pub(crate) fn parse_pairs(text: &str) -> Vec<Stat<'_>> {
    sections(text).iter().flat_map(|s| s.stats()).collect()
}

/// Parses /proc/net/snmp6 (`Ip6InReceives  1` lines): the protocol is the name up to and
/// including its first `6`, like node_exporter. Lines without a `6` are skipped.
pub(crate) fn parse_snmp6(text: &str) -> Vec<Stat<'_>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let Some(six) = name.find('6') else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            out.push((&name[..=six], &name[six + 1..], v));
        }
    }
    out
}

struct NetStat {
    netstat: KeptFile,
    snmp: KeptFile,
    snmp6: KeptFile,
    fields: FieldFilter,
}

/// Builds the `netstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(NetStat {
        netstat: KeptFile::new(cfg.paths.proc("net/netstat")),
        snmp: KeptFile::new(cfg.paths.proc("net/snmp")),
        snmp6: KeptFile::new(cfg.paths.proc("net/snmp6")),
        fields: FieldFilter::new(&cfg.flags::<Flags>()?.fields, "--collector.netstat.fields")?,
    }))
}

fn read(file: &KeptFile) -> anyhow::Result<String> {
    file.read_to_string()
        .with_context(|| format!("reading {}", file.path().display()))
}

/// Whether a plan of an earlier section has `metric` (the first section's value wins).
fn emitted_before(done: &[Arc<Plan>], metric: &str) -> bool {
    done.iter().any(|p| p.iter().any(|(_, m, _)| m == metric))
}

impl NetStat {
    /// The selected fields of one section: the plan for its header (built the first time the
    /// header is seen), applied to its values.
    /// `done`: the plans of the sections already emitted (a field they have is not repeated).
    fn section(&self, sec: &Section<'_>, done: &mut Vec<Arc<Plan>>, out: &mut MetricSet) {
        if !valid_name_part(sec.proto) {
            return;
        }
        let mut key = String::with_capacity(sec.proto.len() + sec.names.len() + 1);
        key.push_str(sec.proto);
        key.push(':');
        key.push_str(sec.names);
        let plan = self.fields.plan(&key, |f| {
            sec.names
                .split_ascii_whitespace()
                .enumerate()
                .filter(|(_, n)| valid_name_part(n) && f.matches(&format!("{}_{n}", sec.proto)))
                .map(|(i, n)| {
                    (
                        i,
                        format!("node_netstat_{}_{n}", sec.proto),
                        format!("Statistic {}{n}.", sec.proto),
                    )
                })
                .collect()
        });
        if plan.is_empty() {
            return;
        }
        let values: Vec<&str> = sec.values.split_ascii_whitespace().collect();
        if values.len() != sec.names.split_ascii_whitespace().count() {
            return;
        }
        for (i, metric, help) in plan.iter() {
            let Ok(v) = values[*i].parse::<f64>() else {
                continue;
            };
            if !emitted_before(done, metric) {
                out.untyped_dyn(metric, help).sample(&[], v);
            }
        }
        done.push(plan);
    }
}

impl Collector for NetStat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let netstat = read(&self.netstat)?;
        let snmp = read(&self.snmp)?;
        // No IPv6 in this kernel: no snmp6, no error (like node_exporter).
        let snmp6 = match self.snmp6.read_to_string() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.snmp6.path().display()))
            }
        };
        let mut done = Vec::new();
        for sec in sections(&netstat).iter().chain(&sections(&snmp)) {
            self.section(sec, &mut done, out);
        }
        // snmp6 is one `Ip6InOctets 1` line per field: its header is the list of names.
        let stats = parse_snmp6(&snmp6);
        let mut names = String::with_capacity(snmp6.len() / 2);
        for (proto, name, _) in &stats {
            names.push_str(proto);
            names.push_str(name);
            names.push(' ');
        }
        let plan = self.fields.plan(&names, |f| {
            stats
                .iter()
                .enumerate()
                .filter(|(_, (p, n, _))| {
                    valid_name_part(p) && valid_name_part(n) && f.matches(&format!("{p}_{n}"))
                })
                .map(|(i, (p, n, _))| {
                    (
                        i,
                        format!("node_netstat_{p}_{n}"),
                        format!("Statistic {p}{n}."),
                    )
                })
                .collect()
        });
        for (i, metric, help) in plan.iter() {
            if let Some((_, _, v)) = stats.get(*i) {
                if !emitted_before(&done, metric) {
                    out.untyped_dyn(metric, help).sample(&[], *v);
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
        let c = new(&test_config(&testdata().join("fixtures/a-netstat"), &[])).unwrap();
        assert_golden("netstat", &render(&*c).unwrap());
    }

    #[test]
    fn golden_truncated_and_no_ipv6() {
        // netstat's TcpExt value line is cut short; there is no snmp6.
        let c = new(&test_config(
            &testdata().join("fixtures/a-netstat-odd"),
            &[],
        ))
        .unwrap();
        assert_golden("netstat_odd", &render(&*c).unwrap());
    }

    #[test]
    fn a_changed_header_is_planned_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("proc/net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("snmp"), "Udp: InDatagrams NoPorts\nUdp: 5 7\n").unwrap();
        std::fs::write(
            net.join("netstat"),
            "TcpExt: ListenDrops Other\nTcpExt: 1 2\n",
        )
        .unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        let first = render(&*c).unwrap();
        assert!(
            first.contains("node_netstat_TcpExt_ListenDrops 1\n"),
            "{first}"
        );
        assert!(
            first.contains("node_netstat_Udp_InDatagrams 5\n"),
            "{first}"
        );
        assert!(first.contains("node_netstat_Udp_NoPorts 7\n"), "{first}");
        assert!(!first.contains("Other"), "{first}");
        // The kernel reorders the columns (and truncates one line): values follow their names.
        std::fs::write(net.join("snmp"), "Udp: NoPorts InDatagrams\nUdp: 70 50\n").unwrap();
        std::fs::write(
            net.join("netstat"),
            "TcpExt: Other ListenDrops\nTcpExt: 2\n",
        )
        .unwrap();
        let second = render(&*c).unwrap();
        assert!(
            second.contains("node_netstat_Udp_InDatagrams 50\n"),
            "{second}"
        );
        assert!(second.contains("node_netstat_Udp_NoPorts 70\n"), "{second}");
        assert!(!second.contains("ListenDrops"), "{second}");
    }

    #[test]
    fn the_planned_output_is_every_selected_parsed_field() {
        // With every field selected, the collector emits exactly what the plain parsers find.
        let dir = testdata().join("fixtures/a-netstat");
        let c = new(&test_config(&dir, &["--collector.netstat.fields=.*"])).unwrap();
        let out = render(&*c).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join("proc/net").join(f)).unwrap();
        let (netstat, snmp, snmp6) = (read("netstat"), read("snmp"), read("snmp6"));
        let mut want: Vec<String> = parse_pairs(&netstat)
            .into_iter()
            .chain(parse_pairs(&snmp))
            .chain(parse_snmp6(&snmp6))
            .map(|(p, n, v)| format!("node_netstat_{p}_{n} {v}"))
            .collect();
        want.sort();
        want.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
        let mut got: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (name, v) = l.split_once(' ').unwrap();
                format!("{name} {}", v.parse::<f64>().unwrap())
            })
            .collect();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn missing_netstat_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    #[test]
    fn snmp6_protocol_split() {
        assert_eq!(
            parse_snmp6("Ip6InOctets 12\nUdpLite6InErrors\t3\nIcmp6OutMsgs 9\nnosix 1\n"),
            vec![
                ("Ip6", "InOctets", 12.0),
                ("UdpLite6", "InErrors", 3.0),
                ("Icmp6", "OutMsgs", 9.0)
            ]
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_pairs(&s);
            let _ = sections(&s);
            let _ = parse_snmp6(&s);
        }

        #[test]
        fn parsers_survive_mutations(cut in 0usize..6000, junk in "[ a-zA-Z0-9:6\\n]{0,20}") {
            for f in ["netstat", "snmp", "snmp6"] {
                let real = std::fs::read_to_string(testdata().join("fixtures/a-netstat/proc/net").join(f)).unwrap();
                let cut = cut.min(real.len());
                let mutated = format!("{}{}{}", &real[..cut], junk, &real[cut..]);
                let _ = parse_pairs(&mutated);
                let _ = parse_snmp6(&mutated);
            }
        }
    }
}
