//! `netstat` collector: protocol counters from `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6`, as untyped `node_netstat_<Protocol>_<Field>` for the fields that match
//! `--collector.netstat.fields` (node_exporter 1.5's default list), e.g.
//! `node_netstat_Tcp_RetransSegs`, `node_netstat_Ip6_InOctets`.
//!
//! The field regex is evaluated once per `Protocol_Field` name and cached.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::vmstat::{valid_name_part, FieldFilter};
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

/// One counter: protocol (`TcpExt`), field (`ListenDrops`) and value.
pub(crate) type Stat<'a> = (&'a str, &'a str, f64);

/// Parses the `Proto: names...` / `Proto: values...` line pairs of /proc/net/netstat and
/// /proc/net/snmp. A pair whose header and values disagree (a truncated line) is skipped,
/// as is a value that is not a number.
pub(crate) fn parse_pairs(text: &str) -> Vec<Stat<'_>> {
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
                let names: Vec<&str> = names.split_ascii_whitespace().collect();
                let values: Vec<&str> = rest.split_ascii_whitespace().collect();
                if names.len() != values.len() {
                    continue;
                }
                for (n, v) in names.into_iter().zip(values) {
                    if let Ok(v) = v.parse::<f64>() {
                        out.push((proto, n, v));
                    }
                }
            }
            _ => header = Some((proto, rest)),
        }
    }
    out
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
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    fields: FieldFilter,
}

/// Builds the `netstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(NetStat {
        netstat: cfg.paths.proc("net/netstat"),
        snmp: cfg.paths.proc("net/snmp"),
        snmp6: cfg.paths.proc("net/snmp6"),
        fields: FieldFilter::new(&cfg.netstat.fields, "--collector.netstat.fields")?,
    }))
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

impl Collector for NetStat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let netstat = read(&self.netstat)?;
        let snmp = read(&self.snmp)?;
        // No IPv6 in this kernel: no snmp6, no error (like node_exporter).
        let snmp6 = match std::fs::read_to_string(&self.snmp6) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.snmp6.display())),
        };
        let mut key = String::with_capacity(48);
        let mut metric = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        let mut seen = std::collections::HashSet::new();
        let all = parse_pairs(&netstat)
            .into_iter()
            .chain(parse_pairs(&snmp))
            .chain(parse_snmp6(&snmp6));
        for (proto, name, v) in all {
            if !valid_name_part(proto) || !valid_name_part(name) {
                continue;
            }
            key.clear();
            key.push_str(proto);
            key.push('_');
            key.push_str(name);
            if !self.fields.matches(&key) || !seen.insert(key.clone()) {
                continue;
            }
            metric.clear();
            metric.push_str("node_netstat_");
            metric.push_str(&key);
            help.clear();
            help.push_str("Statistic ");
            help.push_str(proto);
            help.push_str(name);
            help.push('.');
            out.untyped(&metric, &help).sample(&[], v);
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
