//! `meminfo_numa` collector: per-NUMA-node memory from
//! `/sys/devices/system/node/node<N>/{meminfo,numastat}`, as node_exporter 1.5:
//! `node_memory_numa_<Field>{node}` gauges in bytes (`Active(anon)` becomes `Active_anon`)
//! and `node_memory_numa_<stat>_total{node}` counters (`numa_hit`, `numa_miss`, ...).
//! Off by default, as there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(metric suffix, node, bytes)` from a node's `meminfo` (`Node 0 MemFree: 123 kB`).
pub(crate) fn parse_meminfo(text: &str) -> anyhow::Result<Vec<(String, &str, f64)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_whitespace().collect();
        if p.is_empty() {
            continue;
        }
        anyhow::ensure!(p.len() >= 4, "invalid line in meminfo: {line:?}");
        let mut v: f64 = p[3]
            .parse()
            .with_context(|| format!("invalid value in meminfo: {line:?}"))?;
        match p.len() {
            4 => {}
            5 if p[4] == "kB" => v *= 1024.0,
            _ => anyhow::bail!("invalid line in meminfo: {line:?}"),
        }
        let name = p[2].trim_end_matches(':');
        // `Active(anon)` → `Active_anon` (node_exporter's `\((.*)\)` → `_$1`).
        let name = match (name.find('('), name.rfind(')')) {
            (Some(a), Some(b)) if a < b => {
                format!("{}_{}{}", &name[..a], &name[a + 1..b], &name[b + 1..])
            }
            _ => name.to_owned(),
        };
        out.push((name, p[1], v));
    }
    Ok(out)
}

/// `(stat, value)` from a node's `numastat` (`numa_hit 123`).
pub(crate) fn parse_numastat(text: &str) -> anyhow::Result<Vec<(&str, f64)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_whitespace().collect();
        if p.is_empty() {
            continue;
        }
        anyhow::ensure!(p.len() == 2, "line scan did not return 2 fields: {line:?}");
        let v = p[1]
            .parse()
            .with_context(|| format!("invalid value in numastat: {line:?}"))?;
        out.push((p[0], v));
    }
    Ok(out)
}

struct MeminfoNuma {
    dir: PathBuf,
}

/// Builds the `meminfo_numa` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(MeminfoNuma {
        dir: cfg.paths.sys("devices/system/node"),
    }))
}

fn node_number(name: &str) -> Option<&str> {
    let n = name.strip_prefix("node")?;
    n.bytes().all(|b| b.is_ascii_digit()).then_some(n)
}

fn collect_node(dir: &Path, node: &str, out: &mut MetricSet) -> anyhow::Result<()> {
    let meminfo = read::text(&dir.join("meminfo"))?;
    let numastat = read::text(&dir.join("numastat"))?;
    let fields = parse_meminfo(&meminfo)?;
    let stats = parse_numastat(&numastat)?;
    for (name, n, v) in fields {
        out.gauge(
            format!("node_memory_numa_{name}"),
            format!("Memory information field {name}."),
        )
        .sample(&[("node", n)], v);
    }
    for (name, v) in stats {
        out.counter(
            format!("node_memory_numa_{name}_total"),
            format!("Memory information field {name}_total."),
        )
        .sample(&[("node", node)], v);
    }
    Ok(())
}

impl Collector for MeminfoNuma {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let nodes = read::entries_or_empty(&self.dir).context("couldn't get NUMA meminfo")?;
        for (name, dir) in nodes {
            // node_exporter globs `node[0-9]*`: a digit must follow.
            let Some(node) = node_number(&name).filter(|n| !n.is_empty()) else {
                continue;
            };
            collect_node(&dir, node, out).context("couldn't get NUMA meminfo")?;
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
    fn golden_this_machine_plus_a_second_node() {
        let c = new(&test_config(
            &testdata().join("fixtures/b-meminfo_numa"),
            &[],
        ))
        .unwrap();
        assert_golden("meminfo_numa", &render(&*c).unwrap());
    }

    #[test]
    fn lines() {
        let m = parse_meminfo("Node 1 Active(anon):  4 kB\nNode 1 HugePages_Total: 2\n").unwrap();
        assert_eq!(
            m,
            vec![
                ("Active_anon".to_owned(), "1", 4096.0),
                ("HugePages_Total".to_owned(), "1", 2.0)
            ]
        );
        assert!(parse_meminfo("Node 1 MemFree: 4 MB\n").is_err());
        assert!(parse_meminfo("Node 1 MemFree:\n").is_err());
        assert!(parse_numastat("numa_hit 1 2\n").is_err());
        assert_eq!(node_number("node12"), Some("12"));
        assert_eq!(node_number("has_cpu"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_meminfo(&s);
            let _ = parse_numastat(&s);
        }
    }
}
