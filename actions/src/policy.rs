//! The policy file: which alerts lead to which action, on what, and under which safety rules.
//!
//! ```yaml
//! mode: dry-run            # the default; only `mode: enforce` changes anything
//! defaults:
//!   hold_off: 5m           # after a change of a node/partition, the same kind of change waits
//!   max_nodes: 64          # cap on the nodes one alert may affect (rules may set their own)
//! limits:
//!   actions_per_hour: 60   # actions started per hour; more wait for the window
//! retry:
//!   attempts: 3            # a failing command is retried (with backoff) this many times
//!   backoff: 10s
//! rules:
//!   - name: hold-queue                                   # unique, [A-Za-z0-9_.-]
//!     matchers: ['alertname="InletTemperatureHoldQueue"'] # Prometheus label matchers
//!     when: firing                                       # firing (default) or resolved
//!     action: slurm.partition_down
//!     partitions: all                                    # all | "debug,gpu" | {label: partition}
//!     reason: room inlet temperature at or above 28 °C
//!     priority: 80                                       # higher runs first
//!     revert: true                                       # on resolve, undo our own changes
//!   - name: drain-hot-node
//!     matchers: ['alertname="NodeHot"']
//!     action: slurm.drain
//!     nodes: {label: node}                               # a host list taken from the label
//!     require: {sources: 2, distinct_label: instance, confirm: false}
//! ```
//!
//! The actions form a fixed set ([`ActionKind`]); targets are node host lists or partition
//! names, fixed in the policy, `all`, or taken from an alert label (validated later, see
//! [`crate::target`]). Reasons are policy text only (never label values) and every change
//! carries the `hpcmon:` prefix.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use hpcmon_alert_bridge::matcher::{self, Matcher};
use serde::Deserialize;

/// Prefix of every reason hpcmon writes into Slurm (and how it recognises its own drains).
pub const REASON_PREFIX: &str = "hpcmon:";

/// Whether the policy changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decide, validate and journal what would run; run nothing.
    DryRun,
    /// Run the actions.
    Enforce,
}

impl Mode {
    /// `dry-run` / `enforce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        }
    }
}

/// What kind of thing an action changes: the hold-off clock is kept per group and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Partition state (DOWN/UP).
    Queue,
    /// Node DRAIN/RESUME.
    Drain,
    /// Job cancellation (no hold-off: each cancellation is final).
    Cancel,
    /// Node power, through Slurm or IPMI.
    Power,
}

impl Group {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Queue => "queue",
            Group::Drain => "drain",
            Group::Cancel => "cancel",
            Group::Power => "power",
        }
    }
}

/// The fixed set of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// `scontrol update PartitionName=P State=DOWN`: jobs queue but none start.
    PartitionDown,
    /// `State=UP` again, for partitions hpcmon set DOWN.
    PartitionUp,
    /// `scontrol update NodeName=… State=DRAIN Reason="hpcmon: …"`.
    Drain,
    /// `State=RESUME`, for nodes hpcmon drained (reason still ours).
    Resume,
    /// `scancel` of the running jobs on partitions or nodes.
    CancelJobs,
    /// `scontrol update NodeName=… State=POWER_DOWN` (Slurm runs its SuspendProgram).
    PowerDown,
    /// `State=POWER_UP`, for nodes hpcmon powered down.
    PowerUp,
    /// `ipmi-power --off` through the node's BMC.
    IpmiPowerOff,
    /// `ipmi-power --on`, for nodes hpcmon powered off.
    IpmiPowerOn,
}

/// Every action, for listings and metrics.
pub const ALL_ACTIONS: [ActionKind; 9] = [
    ActionKind::PartitionDown,
    ActionKind::PartitionUp,
    ActionKind::Drain,
    ActionKind::Resume,
    ActionKind::CancelJobs,
    ActionKind::PowerDown,
    ActionKind::PowerUp,
    ActionKind::IpmiPowerOff,
    ActionKind::IpmiPowerOn,
];

impl ActionKind {
    /// The policy's spelling, e.g. `slurm.partition_down`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::PartitionDown => "slurm.partition_down",
            ActionKind::PartitionUp => "slurm.partition_up",
            ActionKind::Drain => "slurm.drain",
            ActionKind::Resume => "slurm.resume",
            ActionKind::CancelJobs => "slurm.cancel_jobs",
            ActionKind::PowerDown => "slurm.power_down",
            ActionKind::PowerUp => "slurm.power_up",
            ActionKind::IpmiPowerOff => "ipmi.power_off",
            ActionKind::IpmiPowerOn => "ipmi.power_on",
        }
    }

    /// Parses the policy's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ALL_ACTIONS.into_iter().find(|a| a.as_str() == s)
    }

    /// The action that undoes this one, for reversible actions that *make* a change.
    pub fn inverse(self) -> Option<Self> {
        match self {
            ActionKind::PartitionDown => Some(ActionKind::PartitionUp),
            ActionKind::Drain => Some(ActionKind::Resume),
            ActionKind::PowerDown => Some(ActionKind::PowerUp),
            ActionKind::IpmiPowerOff => Some(ActionKind::IpmiPowerOn),
            _ => None,
        }
    }

    /// For an undoing action, the action whose changes it undoes.
    pub fn undoes(self) -> Option<Self> {
        match self {
            ActionKind::PartitionUp => Some(ActionKind::PartitionDown),
            ActionKind::Resume => Some(ActionKind::Drain),
            ActionKind::PowerUp => Some(ActionKind::PowerDown),
            ActionKind::IpmiPowerOn => Some(ActionKind::IpmiPowerOff),
            _ => None,
        }
    }

    /// The hold-off group.
    pub fn group(self) -> Group {
        match self {
            ActionKind::PartitionDown | ActionKind::PartitionUp => Group::Queue,
            ActionKind::Drain | ActionKind::Resume => Group::Drain,
            ActionKind::CancelJobs => Group::Cancel,
            _ => Group::Power,
        }
    }

    /// Whether it acts on partitions (`false`: nodes). `cancel_jobs` takes either.
    pub fn takes_partitions(self) -> bool {
        matches!(
            self,
            ActionKind::PartitionDown | ActionKind::PartitionUp | ActionKind::CancelJobs
        )
    }

    /// Whether it acts on nodes.
    pub fn takes_nodes(self) -> bool {
        !matches!(self, ActionKind::PartitionDown | ActionKind::PartitionUp)
    }

    /// Destructive actions (cancel, power off): the ones `require` is meant for.
    pub fn destructive(self) -> bool {
        matches!(
            self,
            ActionKind::CancelJobs | ActionKind::PowerDown | ActionKind::IpmiPowerOff
        )
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On a firing notification.
    Firing,
    /// On a resolved notification.
    Resolved,
}

/// Where an action's names come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every node/partition Slurm lists when the action runs.
    All,
    /// A host list (nodes) or comma-separated names (partitions) from the policy.
    Fixed(String),
    /// The value of an alert label (checked before it is used).
    Label(String),
}

/// Nodes or partitions, and where their names come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// Slurm nodes (host list).
    Nodes(Source),
    /// Slurm partitions.
    Partitions(Source),
}

/// What a destructive rule needs before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    /// Distinct firing source alerts that must agree (1: the alert alone).
    pub sources: usize,
    /// The label whose distinct values count as sources (e.g. `instance`: two sensors).
    pub distinct_label: String,
    /// A person must confirm through `POST /api/v1/actions/{id}/confirm`.
    pub confirm: bool,
}

/// One rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// All must match the alert's labels.
    pub matchers: Vec<Matcher>,
    /// Firing or resolved.
    pub when: When,
    /// The action.
    pub action: ActionKind,
    /// Its targets.
    pub targets: TargetSpec,
    /// Reason text (the `hpcmon:` prefix is added).
    pub reason: String,
    /// Higher runs first.
    pub priority: i64,
    /// Undo this rule's changes when the alert resolves.
    pub revert: bool,
    /// Hold-off for its group.
    pub hold_off: Duration,
    /// Most nodes one alert may affect through this rule.
    pub max_nodes: usize,
    /// Agreement and confirmation.
    pub require: Require,
}

impl Rule {
    /// Whether the rule's matchers accept `labels` (an absent label reads as "").
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or("")))
    }

    /// The full reason written into Slurm: `hpcmon: <reason> [rule <name>]`.
    pub fn full_reason(&self) -> String {
        format!("{REASON_PREFIX} {} [rule {}]", self.reason, self.name)
    }
}

/// Global limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Actions started per rolling hour (reverts included); more wait.
    pub actions_per_hour: u32,
}

/// Retries of failing commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1: no retry).
    pub attempts: u32,
    /// First wait; doubled after each failure.
    pub backoff: Duration,
}

/// The whole policy, checked.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Dry-run or enforce.
    pub mode: Mode,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// Limits.
    pub limits: Limits,
    /// Retries.
    pub retry: Retry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    hold_off: Option<String>,
    max_nodes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    actions_per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: Option<u32>,
    backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSource {
    Text(String),
    Label { label: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    sources: Option<usize>,
    distinct_label: Option<String>,
    confirm: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    matchers: Vec<String>,
    when: Option<String>,
    action: String,
    nodes: Option<RawSource>,
    partitions: Option<RawSource>,
    reason: Option<String>,
    priority: Option<i64>,
    #[serde(default)]
    revert: bool,
    hold_off: Option<String>,
    max_nodes: Option<usize>,
    #[serde(default)]
    require: RawRequire,
}

/// Default hold-off: 5 minutes.
pub const DEFAULT_HOLD_OFF: Duration = Duration::from_secs(300);
/// Default cap on nodes per alert.
pub const DEFAULT_MAX_NODES: usize = 64;
/// Hard cap on nodes per action, whatever the policy says.
pub const HARD_MAX_NODES: usize = 100_000;

fn duration(what: &str, s: Option<&str>, default: Duration) -> anyhow::Result<Duration> {
    match s {
        None => Ok(default),
        Some(s) => hpcmon_kit::duration::parse(s).with_context(|| what.to_string()),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reason text: printable, no quotes or `=` (scontrol takes `Reason=...` as one argument,
/// but the text also shows up in `sinfo -R` and logs).
fn check_reason(r: &str) -> anyhow::Result<()> {
    if r.trim().is_empty() || r.len() > 200 {
        bail!("reason must be 1..200 bytes");
    }
    if let Some(c) = r
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\'' | '=' | '`' | '\\' | '$'))
    {
        bail!("reason may not contain {c:?}");
    }
    Ok(())
}

fn source(v: RawSource, what: &str) -> anyhow::Result<Source> {
    Ok(match v {
        RawSource::Text(t) if t == "all" => Source::All,
        RawSource::Text(t) => {
            if what == "nodes" {
                hpcmon_kit::hostlist::expand(&t, HARD_MAX_NODES)
                    .with_context(|| format!("nodes {t:?}"))?;
            } else {
                for p in t.split(',') {
                    if !valid_name(p.trim()) {
                        bail!("partition name {p:?} is not valid");
                    }
                }
            }
            Source::Fixed(t)
        }
        RawSource::Label { label } => {
            if !valid_label_name(&label) {
                bail!("{what}: label name {label:?} is not valid");
            }
            Source::Label(label)
        }
    })
}

impl Policy {
    /// Parses and checks a policy.
    pub fn parse(text: &str) -> anyhow::Result<Policy> {
        let raw: RawPolicy = serde_yaml_ng::from_str(text).context("parsing the policy YAML")?;
        let mode = match raw.mode.as_deref() {
            None | Some("dry-run") | Some("dry_run") => Mode::DryRun,
            Some("enforce") => Mode::Enforce,
            Some(m) => bail!("mode {m:?} is neither dry-run nor enforce"),
        };
        let hold_default = duration(
            "defaults.hold_off",
            raw.defaults.hold_off.as_deref(),
            DEFAULT_HOLD_OFF,
        )?;
        let max_default = raw.defaults.max_nodes.unwrap_or(DEFAULT_MAX_NODES);
        if max_default == 0 || max_default > HARD_MAX_NODES {
            bail!("defaults.max_nodes must be 1..{HARD_MAX_NODES}");
        }
        let limits = Limits {
            actions_per_hour: raw.limits.actions_per_hour.unwrap_or(60).max(1),
        };
        let retry = Retry {
            attempts: raw.retry.attempts.unwrap_or(3).clamp(1, 20),
            backoff: duration(
                "retry.backoff",
                raw.retry.backoff.as_deref(),
                Duration::from_secs(10),
            )?,
        };
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let name = r.name.clone();
            let rule = check_rule(r, hold_default, max_default)
                .with_context(|| format!("rules[{i}] ({name:?})"))?;
            if !names.insert(rule.name.clone()) {
                bail!("rules[{i}]: duplicate rule name {:?}", rule.name);
            }
            rules.push(rule);
        }
        Ok(Policy {
            mode,
            rules,
            limits,
            retry,
        })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the policy {}", path.display()))?;
        Policy::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

fn check_rule(r: RawRule, hold_default: Duration, max_default: usize) -> anyhow::Result<Rule> {
    if !valid_name(&r.name) {
        bail!("name must be 1..64 of [A-Za-z0-9_.-]");
    }
    let action = ActionKind::parse(&r.action).with_context(|| {
        format!(
            "unknown action {:?} (one of: {})",
            r.action,
            ALL_ACTIONS.map(ActionKind::as_str).join(", ")
        )
    })?;
    if r.matchers.is_empty() {
        bail!("a rule needs at least one matcher (it would match every alert)");
    }
    let mut matchers = Vec::new();
    for m in &r.matchers {
        matchers.extend(matcher::parse(m).map_err(anyhow::Error::msg)?);
    }
    let when = match r.when.as_deref() {
        None | Some("firing") => When::Firing,
        Some("resolved") => When::Resolved,
        Some(w) => bail!("when {w:?} is neither firing nor resolved"),
    };
    let targets = match (r.nodes, r.partitions) {
        (Some(_), Some(_)) => bail!("give nodes or partitions, not both"),
        (Some(n), None) => {
            if !action.takes_nodes() {
                bail!("{} acts on partitions, not nodes", action.as_str());
            }
            TargetSpec::Nodes(source(n, "nodes")?)
        }
        (None, Some(p)) => {
            if !action.takes_partitions() {
                bail!("{} acts on nodes, not partitions", action.as_str());
            }
            TargetSpec::Partitions(source(p, "partitions")?)
        }
        (None, None) => bail!("{} needs nodes or partitions", action.as_str()),
    };
    let reason = r
        .reason
        .unwrap_or_else(|| format!("policy rule {}", r.name));
    check_reason(&reason)?;
    if r.revert && action.inverse().is_none() {
        bail!("{} cannot be reverted", action.as_str());
    }
    if r.revert && when == When::Resolved {
        bail!("revert is for rules that act on firing alerts");
    }
    let max_nodes = r.max_nodes.unwrap_or(max_default);
    if max_nodes == 0 || max_nodes > HARD_MAX_NODES {
        bail!("max_nodes must be 1..{HARD_MAX_NODES}");
    }
    let sources = r.require.sources.unwrap_or(1).max(1);
    let distinct_label = r
        .require
        .distinct_label
        .unwrap_or_else(|| "instance".into());
    if !valid_label_name(&distinct_label) {
        bail!("require.distinct_label {distinct_label:?} is not a label name");
    }
    Ok(Rule {
        name: r.name,
        matchers,
        when,
        action,
        targets,
        reason,
        priority: r.priority.unwrap_or(0),
        revert: r.revert,
        hold_off: duration("hold_off", r.hold_off.as_deref(), hold_default)?,
        max_nodes,
        require: Require {
            sources,
            distinct_label,
            confirm: r.require.confirm.unwrap_or(false),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_policy_parses_and_implements_the_tiers() {
        let p = Policy::parse(include_str!("../policy.yml")).unwrap();
        assert_eq!(p.mode, Mode::DryRun, "the shipped policy must not enforce");
        let by = |n: &str| p.rule(n).unwrap_or_else(|| panic!("rule {n}"));
        let hold = by("hold-queue");
        let kill = by("kill-jobs");
        let off = by("power-off");
        let idle = by("idle-power-down");
        assert_eq!(hold.action, ActionKind::PartitionDown);
        assert!(hold.revert);
        assert_eq!(kill.action, ActionKind::CancelJobs);
        assert_eq!(off.action, ActionKind::PowerDown);
        assert_eq!(idle.action, ActionKind::PowerDown);
        assert!(off.priority > kill.priority && kill.priority > hold.priority);
        assert!(hold.priority > idle.priority);
        assert_eq!(hold.hold_off, DEFAULT_HOLD_OFF);
        // The alerts as rules/ipmi.rules.yml and rules/environment.rules.yml label them.
        let labels = |a: &str, p: &str| {
            [
                ("alertname".to_string(), a.to_string()),
                ("policy".to_string(), p.to_string()),
            ]
            .into_iter()
            .collect()
        };
        for room in ["Inlet", "Room"] {
            assert!(hold.matches(&labels(&format!("{room}TemperatureHoldQueue"), "hold")));
            assert!(kill.matches(&labels(&format!("{room}TemperatureKillJobs"), "kill")));
            assert!(off.matches(&labels(&format!("{room}TemperaturePowerOff"), "poweroff")));
        }
        assert!(!off.matches(&labels("InletTemperatureKillJobs", "kill")));
        assert!(!hold.matches(&labels("InletTemperatureHoldQueue", "")));
        assert!(idle.matches(&labels("SlurmNodeIdlePowerSave", "idle")));
        // Every alert the policy names exists in the repository's rules.
        let rules: String = ["ipmi", "environment", "actions"]
            .iter()
            .map(|f| {
                std::fs::read_to_string(format!(
                    "{}/../rules/{f}.rules.yml",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap_or_default()
            })
            .collect();
        for a in [
            "InletTemperatureHoldQueue",
            "InletTemperatureKillJobs",
            "InletTemperaturePowerOff",
            "SlurmNodeIdlePowerSave",
        ] {
            assert!(
                rules.contains(&format!("- alert: {a}")),
                "{a} is not in rules/"
            );
        }
        assert_eq!(
            idle.targets,
            TargetSpec::Nodes(Source::Label("node".into()))
        );
    }

    #[test]
    fn bad_policies_say_why() {
        for (yaml, want) in [
            ("mode: yes-please\n", "neither dry-run nor enforce"),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: shell.exec, nodes: n1}\n",
                "unknown action",
            ),
            (
                "rules:\n  - {name: a, action: slurm.drain, nodes: n1}\n",
                "at least one matcher",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, partitions: all}\n",
                "acts on nodes",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.cancel_jobs, nodes: all, revert: true}\n",
                "cannot be reverted",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, nodes: 'n1;ls'}\n",
                "not allowed",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, nodes: {label: 'a b'}}\n",
                "not valid",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, nodes: n1, reason: 'x\" State=RESUME'}\n",
                "may not contain",
            ),
            (
                "rules:\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, nodes: n1}\n  - {name: a, matchers: ['x=\"1\"'], action: slurm.drain, nodes: n1}\n",
                "duplicate rule name",
            ),
            ("rules:\n  - {name: a, matchers: ['x=~\"(\"'], action: slurm.drain, nodes: n1}\n", "regular expression"),
            ("bogus: 1\n", "unknown field"),
        ] {
            let e = format!("{:#}", Policy::parse(yaml).unwrap_err());
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }

    #[test]
    fn actions_round_trip_and_pair_up() {
        for a in ALL_ACTIONS {
            assert_eq!(ActionKind::parse(a.as_str()), Some(a));
            if let Some(i) = a.inverse() {
                assert_eq!(i.undoes(), Some(a));
                assert_eq!(i.group(), a.group());
            }
        }
    }
}
