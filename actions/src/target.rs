//! Targets: the names an action acts on, taken from the policy or an alert label and checked
//! in two steps.
//!
//! 1. When the webhook journals a decision ([`resolve`]): a label value must be a host list
//!    (nodes) or comma-separated names (partitions) made of letters, digits, `.`, `-`, `_`
//!    only, and a host list may not stand for more nodes than the rule's `max_nodes` (counted
//!    before anything is expanded, by the kit's one host-list parser). A refusal is journaled
//!    with the reason; the value never reaches a command.
//! 2. When the action runs ([`crate::exec`]): every name must exist in `sinfo`'s answer (or,
//!    for IPMI actions, in the BMC map); `all` becomes the names Slurm lists.

use std::collections::BTreeMap;

use hpcmon_kit::hostlist;
use serde::{Deserialize, Serialize};

use crate::policy::{Rule, Source, TargetSpec};

/// Targets after the first check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "names")]
pub enum Targets {
    /// Every node Slurm lists when the action runs.
    AllNodes,
    /// Every partition Slurm lists when the action runs.
    AllPartitions,
    /// These nodes (expanded, deduplicated).
    Nodes(Vec<String>),
    /// These partitions.
    Partitions(Vec<String>),
}

impl Targets {
    /// Short text for the journal and the page (`n[1-4]`, `all partitions`).
    pub fn describe(&self) -> String {
        match self {
            Targets::AllNodes => "all nodes".into(),
            Targets::AllPartitions => "all partitions".into(),
            Targets::Nodes(n) => format!("nodes {}", hostlist::compress(n)),
            Targets::Partitions(p) => format!("partitions {}", p.join(",")),
        }
    }
}

/// Longest partition name accepted.
pub const MAX_PARTITION_NAME: usize = 64;
/// Most partitions one alert may name.
pub const MAX_PARTITIONS: usize = 256;

fn partition_names(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (i, p) in value.split(',').enumerate() {
        if p.is_empty() || p.len() > MAX_PARTITION_NAME {
            return Err(format!(
                "partition name #{} must be 1..{MAX_PARTITION_NAME} bytes",
                i + 1
            ));
        }
        if let Some(c) = p
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(format!(
                "character {c:?} is not allowed in a partition name (letters, digits, '.', '-', '_')"
            ));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
        if out.len() > MAX_PARTITIONS {
            return Err(format!("more than {MAX_PARTITIONS} partitions"));
        }
    }
    Ok(out)
}

/// First check of a rule's targets against an alert's labels. The error is a sentence for
/// the journal (it quotes the offending value with Rust's escaping, so control characters
/// show as `\n`, never as themselves).
pub fn resolve(rule: &Rule, labels: &BTreeMap<String, String>) -> Result<Targets, String> {
    let (source, nodes) = match &rule.targets {
        TargetSpec::Nodes(s) => (s, true),
        TargetSpec::Partitions(s) => (s, false),
    };
    let (value, origin) = match source {
        Source::All => {
            return Ok(if nodes {
                Targets::AllNodes
            } else {
                Targets::AllPartitions
            })
        }
        Source::Fixed(v) => (v.as_str(), "the policy".to_string()),
        Source::Label(l) => match labels.get(l) {
            Some(v) if !v.is_empty() => (v.as_str(), format!("label {l}")),
            _ => return Err(format!("the alert has no {l:?} label to take targets from")),
        },
    };
    if nodes {
        hostlist::expand(value, rule.max_nodes)
            .map(Targets::Nodes)
            .map_err(|e| format!("{origin} = {value:?} is not an acceptable host list: {e}"))
    } else {
        partition_names(value)
            .map(Targets::Partitions)
            .map_err(|e| format!("{origin} = {value:?} is not an acceptable partition list: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn rule(targets: &str) -> Rule {
        let y = format!(
            "rules:\n  - name: r\n    matchers: ['alertname=\"X\"']\n    action: slurm.drain\n    max_nodes: 4\n    {targets}\n"
        );
        Policy::parse(&y).unwrap().rules.remove(0)
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_targets_are_checked() {
        let r = rule("nodes: {label: node}");
        assert_eq!(
            resolve(&r, &labels(&[("node", "n[1-2],n4")])).unwrap(),
            Targets::Nodes(vec!["n1".into(), "n2".into(), "n4".into()])
        );
        for (v, want) in [
            ("n1; rm -rf /", "';'"),
            ("$(touch /tmp/pwned)", "'$'"),
            ("n[1-10000]", "10000 names, more than the limit of 4"),
            ("n1\nn2", "'\\n'"),
            ("", "no \"node\" label"),
        ] {
            let e = resolve(&r, &labels(&[("node", v)])).unwrap_err();
            assert!(e.contains(want), "{v:?}: {e}");
            assert!(
                !e.contains('\n'),
                "the journal text carries a raw newline: {e}"
            );
        }
        assert!(resolve(&r, &labels(&[]))
            .unwrap_err()
            .contains("no \"node\" label"));
    }

    #[test]
    fn partitions_and_all() {
        let y = "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.partition_down, partitions: {label: p}}\n  - {name: b, matchers: ['x=\"1\"'], action: slurm.partition_down, partitions: all}\n";
        let p = Policy::parse(y).unwrap();
        assert_eq!(
            resolve(&p.rules[0], &labels(&[("p", "debug,gpu,debug")])).unwrap(),
            Targets::Partitions(vec!["debug".into(), "gpu".into()])
        );
        assert!(resolve(&p.rules[0], &labels(&[("p", "debug gpu")]))
            .unwrap_err()
            .contains("' '"));
        assert_eq!(
            resolve(&p.rules[1], &labels(&[])).unwrap(),
            Targets::AllPartitions
        );
        assert_eq!(
            Targets::Nodes(vec!["n1".into(), "n2".into()]).describe(),
            "nodes n[1-2]"
        );
    }
}
