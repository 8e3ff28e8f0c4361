//! `sinfo -N` output: one line per node and partition, merged into one record per node.

use std::collections::BTreeMap;

use super::state::{parse_node_state, NodeState};
use super::{memory_bytes, non_empty, number, split_fields, tres, MB};

/// The `sinfo --Format` the poller uses (Slurm 21.08+): `|`-delimited, the free-text reason
/// last. `StateComplete` gives the base state and every flag (`allocated+drain`).
pub const FORMAT: &str = "NodeList:|,Partition:|,StateComplete:|,CPUsState:|,Memory:|,AllocMem:|,FreeMem:|,CPUsLoad:|,Gres:|,GresUsed:|,Features:|,Reason:";
/// The same for Slurm before 21.08, which has no `StateComplete`: the long state with its
/// suffixes (`draining`, `idle*`, ...).
pub const FORMAT_LEGACY: &str = "NodeList:|,Partition:|,StateLong:|,CPUsState:|,Memory:|,AllocMem:|,FreeMem:|,CPUsLoad:|,Gres:|,GresUsed:|,Features:|,Reason:";
/// Number of fields in [`FORMAT`].
pub const FIELDS: usize = 12;

/// One node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Partitions the node is in (the default partition's `*` removed), sorted.
    pub partitions: Vec<String>,
    /// State.
    pub state: NodeState,
    /// CPUs allocated / idle / other / total (`%C`).
    pub cpus_alloc: f64,
    /// Idle CPUs.
    pub cpus_idle: f64,
    /// CPUs neither allocated nor idle (down, drained idle, ...).
    pub cpus_other: f64,
    /// All CPUs.
    pub cpus_total: f64,
    /// Configured memory (`RealMemory`), bytes.
    pub memory_total_bytes: f64,
    /// Memory allocated to jobs, bytes.
    pub memory_alloc_bytes: f64,
    /// Free memory reported by the node, bytes (`None` when unknown).
    pub memory_free_bytes: Option<f64>,
    /// CPU load (`None` when unknown).
    pub cpu_load: Option<f64>,
    /// GPUs configured.
    pub gpus_total: f64,
    /// GPUs in use.
    pub gpus_used: f64,
    /// GPUs by GRES type (`""`: untyped): (type, configured, in use); empty without GPUs.
    pub gpu_types: Vec<(String, f64, f64)>,
    /// Available features, comma-separated as sinfo prints them (`None` when none).
    pub features: Option<String>,
    /// Reason the node is down/drained (`None` when none).
    pub reason: Option<String>,
    /// Configured GRES string (`None` when none).
    pub gres: Option<String>,
}

/// A parsed `sinfo` output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sinfo {
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Partitions seen (also those whose nodes are all absent), sorted.
    pub partitions: Vec<String>,
    /// The default partition, when one is marked with `*`.
    pub default_partition: Option<String>,
    /// Lines that could not be parsed (skipped).
    pub bad_lines: usize,
}

fn cpus_state(s: &str) -> Option<[f64; 4]> {
    let mut it = s.trim().split('/');
    let mut v = [0.0; 4];
    for x in v.iter_mut() {
        *x = number(it.next()?)?;
    }
    it.next().is_none().then_some(v)
}

/// Parses one line of [`FORMAT`] output into a node (with one partition) and whether that
/// partition is the default one.
pub fn parse_line(line: &str) -> Option<(Node, Option<(String, bool)>)> {
    let f = split_fields::<FIELDS>(line)?;
    let name = f[0].trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let [a, i, o, t] = cpus_state(f[3])?;
    let part = non_empty(f[1]).map(|p| match p.strip_suffix('*') {
        Some(p) => (p.to_string(), true),
        None => (p.to_string(), false),
    });
    let node = Node {
        name: name.to_string(),
        partitions: part.iter().map(|(p, _)| p.clone()).collect(),
        state: parse_node_state(f[2]),
        cpus_alloc: a,
        cpus_idle: i,
        cpus_other: o,
        cpus_total: t,
        memory_total_bytes: memory_bytes(f[4], MB).unwrap_or(0.0),
        memory_alloc_bytes: memory_bytes(f[5], MB).unwrap_or(0.0),
        memory_free_bytes: memory_bytes(f[6], MB),
        cpu_load: number(f[7]),
        gpus_total: tres::gres_gpus(f[8]),
        gpus_used: tres::gres_gpus(f[9]),
        gpu_types: {
            let mut v: Vec<(String, f64, f64)> = tres::gres_gpu_types(f[8])
                .into_iter()
                .map(|(t, n)| (t, n, 0.0))
                .collect();
            for (t, n) in tres::gres_gpu_types(f[9]) {
                match v.iter_mut().find(|e| e.0 == t) {
                    Some(e) => e.2 += n,
                    None => v.push((t, 0.0, n)),
                }
            }
            v
        },
        features: non_empty(f[10]).map(str::to_string),
        reason: non_empty(f[11]).map(str::to_string),
        gres: non_empty(f[8]).map(str::to_string),
    };
    Some((node, part))
}

/// Parses the whole output, merging a node's lines (one per partition).
pub fn parse(out: &str) -> Sinfo {
    let mut s = Sinfo::default();
    for line in out.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((node, part)) = parse_line(line) else {
            s.bad_lines += 1;
            continue;
        };
        if let Some((p, default)) = part {
            if default {
                s.default_partition = Some(p.clone());
            }
            if let Err(pos) = s.partitions.binary_search(&p) {
                s.partitions.insert(pos, p);
            }
        }
        match s.nodes.get_mut(&node.name) {
            Some(existing) => {
                for p in node.partitions {
                    if let Err(pos) = existing.partitions.binary_search(&p) {
                        existing.partitions.insert(pos, p);
                    }
                }
            }
            None => {
                s.nodes.insert(node.name.clone(), node);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../testdata/sinfo.txt");

    #[test]
    fn captured_sample() {
        let s = parse(SAMPLE);
        assert_eq!(s.bad_lines, 0);
        assert_eq!(s.nodes.len(), 6);
        assert_eq!(s.partitions, vec!["debug", "gpu"]);
        assert_eq!(s.default_partition.as_deref(), Some("debug"));
        let n4 = &s.nodes["n4"];
        assert!(n4.state.has("drain"));
        assert_eq!(n4.reason.as_deref(), Some("hpcmon: maintenance test"));
        let gpu1 = &s.nodes["gpu1"];
        assert_eq!((gpu1.gpus_total, gpu1.gpus_used), (2.0, 2.0));
        assert_eq!(gpu1.memory_total_bytes, 2000.0 * MB);
        let total_cpus: f64 = s.nodes.values().map(|n| n.cpus_total).sum();
        assert_eq!(total_cpus, 12.0);
    }

    #[test]
    fn legacy_state_and_edges() {
        let (n, p) =
            parse_line("c1|batch*|mixed-|1/1/0/2|N/A|0|N/A|N/A|(null)|gpu:0|(null)|none").unwrap();
        assert_eq!(n.state.base, "mixed");
        assert!(n.state.has("planned"));
        assert_eq!(p, Some(("batch".into(), true)));
        assert_eq!(
            (n.memory_total_bytes, n.memory_free_bytes, n.cpu_load),
            (0.0, None, None)
        );
        assert_eq!(n.reason, None);
        let (n, _) =
            parse_line("c2|b|idle~|0/4/0/4|4000|0|100|0.00|gpu:4|gpu:0|a,b|Reason | with pipe")
                .unwrap();
        assert_eq!(n.reason.as_deref(), Some("Reason | with pipe"));
        assert!(n.state.has("powered_down"));
        assert!(parse_line("c3|b|idle|0/4/0|4000|0|100|0.00|x|y|z|r").is_none());
        assert!(parse_line("c3 x|b|idle|0/4/0/4|4000|0|100|0.00|x|y|z|r").is_none());
        // the same node in two partitions is one node
        let s = parse("c1|a|idle|0/2/0/2|1|0|1|0|(null)|gpu:0|(null)|none\nc1|b|idle|0/2/0/2|1|0|1|0|(null)|gpu:0|(null)|none\n");
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.nodes["c1"].partitions, vec!["a", "b"]);
    }
}
