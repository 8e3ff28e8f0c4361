//! `sockstat` collector: socket counts from `/proc/net/sockstat` and `/proc/net/sockstat6`
//! as gauges `node_sockstat_<PROTO>_<field>` (`node_sockstat_TCP_inuse`,
//! `node_sockstat_TCP_mem_bytes`, `node_sockstat_UDP6_inuse`, ...) and
//! `node_sockstat_sockets_used`, like node_exporter 1.5. A missing file (IPv4 or IPv6
//! disabled) is skipped.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::vmstat::valid_name_part;
use super::Config;

/// The fields node_exporter exposes, in its order.
const FIELDS: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

/// One protocol line: `TCP: inuse 8 orphan 0 tw 154 alloc 8 mem 17`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Protocol<'a> {
    pub name: &'a str,
    /// Values of [`FIELDS`], by index.
    pub values: [Option<f64>; 6],
}

/// A parsed sockstat file.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Sockstat<'a> {
    /// `sockets: used N`.
    pub used: Option<f64>,
    pub protocols: Vec<Protocol<'a>>,
}

/// Parses sockstat{,6}. Lines whose fields do not come in `name value` pairs are skipped.
pub(crate) fn parse(text: &str) -> Sockstat<'_> {
    let mut out = Sockstat::default();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        if f.is_empty() || !f.len().is_multiple_of(2) {
            continue;
        }
        let mut values = [None; 6];
        let mut ok = true;
        for kv in f.chunks_exact(2) {
            let Ok(v) = kv[1].parse::<u64>() else {
                ok = false;
                break;
            };
            if proto == "sockets" {
                if kv[0] == "used" {
                    out.used = Some(v as f64);
                }
            } else if let Some(i) = FIELDS.iter().position(|n| *n == kv[0]) {
                values[i] = Some(v as f64);
            }
        }
        if ok && proto != "sockets" && valid_name_part(proto) {
            if let Some(p) = out.protocols.iter_mut().find(|p| p.name == proto) {
                p.values = values;
            } else {
                out.protocols.push(Protocol {
                    name: proto,
                    values,
                });
            }
        }
    }
    out
}

struct SockStat {
    v4: KeptFile,
    v6: KeptFile,
    page_size: f64,
}

/// Builds the `sockstat` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(Arc::new(SockStat {
        v4: KeptFile::new(cfg.paths.proc("net/sockstat")),
        v6: KeptFile::new(cfg.paths.proc("net/sockstat6")),
        page_size: if page > 0 { page as f64 } else { 4096.0 },
    }))
}

fn read_optional(file: &KeptFile) -> anyhow::Result<Option<String>> {
    match file.read_to_string() {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.path().display())),
    }
}

impl SockStat {
    fn emit(&self, s: &Sockstat, ipv6: bool, out: &mut MetricSet) {
        if !ipv6 {
            if let Some(used) = s.used {
                out.gauge(
                    "node_sockstat_sockets_used",
                    "Number of IPv4 sockets in use.",
                )
                .sample(&[], used);
            }
        }
        let mut name = String::with_capacity(48);
        let mut help = String::with_capacity(64);
        for p in &s.protocols {
            let mem_bytes = p.values[4].map(|m| m * self.page_size);
            let pairs = FIELDS
                .iter()
                .zip(p.values)
                .chain(std::iter::once((&"mem_bytes", mem_bytes)));
            for (field, v) in pairs {
                let Some(v) = v else { continue };
                name.clear();
                name.push_str("node_sockstat_");
                name.push_str(p.name);
                name.push('_');
                name.push_str(field);
                help.clear();
                help.push_str("Number of ");
                help.push_str(p.name);
                help.push_str(" sockets in state ");
                help.push_str(field);
                help.push('.');
                out.gauge_dyn(&name, &help).sample(&[], v);
            }
        }
    }
}

impl Collector for SockStat {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let v4 = read_optional(&self.v4)?;
        let v6 = read_optional(&self.v6)?;
        if let Some(t) = &v4 {
            self.emit(&parse(t), false, out);
        }
        if let Some(t) = &v6 {
            self.emit(&parse(t), true, out);
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
        let c = new(&test_config(&testdata().join("fixtures/a-sockstat"), &[])).unwrap();
        let t = render(&*c).unwrap();
        // mem_bytes depends on the page size; the fixture machine's is 4 KiB.
        assert!(t.contains("node_sockstat_TCP_mem_bytes 69632\n") || page_size() != 4096.0);
        assert_golden("sockstat", &t);
    }

    fn page_size() -> f64 {
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as f64 }
    }

    #[test]
    fn odd_lines_and_no_ipv6() {
        let s = parse("sockets: used 5\nTCP: inuse 3 orphan\nUDP: inuse 2 mem 1\nFRAG: inuse x\n");
        assert_eq!(s.used, Some(5.0));
        assert_eq!(s.protocols.len(), 1);
        assert_eq!(s.protocols[0].name, "UDP");
        let dir = tempfile::tempdir().unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert_eq!(render(&*c).unwrap(), "");
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
