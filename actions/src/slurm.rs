//! What Slurm says about nodes, partitions and jobs, and the commands that change them.
//!
//! Every command is an argv (never a shell) run through the kit's command runner with a
//! deadline that kills the process group. Names on a command line have passed
//! [`crate::target`]'s checks and exist in `sinfo`'s answer.
//!
//! | need | command |
//! | --- | --- |
//! | nodes, their partitions, state and reason | `sinfo -h -N -o %N\|%P\|%T\|%E` |
//! | partitions and their state | `sinfo -h -o %R\|%a` |
//! | running jobs on partitions/nodes | `squeue -h -t RUNNING,SUSPENDED,CONFIGURING -o %A [-p P,..] [-w HOSTLIST]` |
//! | changes | `scontrol update PartitionName=P State=DOWN\|UP`, `scontrol update NodeName=HOSTLIST State=DRAIN\|RESUME\|POWER_DOWN\|POWER_UP [Reason=…]`, `scancel -Q JOBID…` |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hpcmon_kit::command::{run, Cmd, CommandError};
use hpcmon_kit::slurm_text::split_fields;

use crate::policy::REASON_PREFIX;

/// One node as `sinfo -N` shows it (merged over its partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Partitions it belongs to (without the default marker `*`).
    pub partitions: Vec<String>,
    /// Long state as `%T` prints it, lower case, with Slurm's suffix (`idle~`, `drained`).
    pub state: String,
    /// Reason (`none` when there is none).
    pub reason: String,
}

impl Node {
    /// DRAIN flag set (`draining`, `drained`, `drain`).
    pub fn drained(&self) -> bool {
        self.state.contains("drain")
    }
    /// Powered down or on its way there (`~`, `%`, `!` suffixes).
    pub fn powered_down(&self) -> bool {
        self.state.ends_with(['~', '%', '!']) || self.state.contains("power_down")
    }
    /// The reason is one hpcmon wrote.
    pub fn reason_ours(&self) -> bool {
        self.reason.starts_with(REASON_PREFIX)
    }
}

/// A partition's name and availability (`up`, `down`, `drain`, `inact`).
pub type Partitions = BTreeMap<String, String>;

/// How to reach Slurm.
#[derive(Debug, Clone)]
pub struct Slurm {
    /// Directory of the Slurm client programs (`None`: `PATH`).
    pub bin_dir: Option<PathBuf>,
    /// Deadline of each command.
    pub timeout: Duration,
}

/// Why a Slurm command gave no answer.
pub fn describe(e: &CommandError) -> String {
    match e {
        CommandError::Spawn { program, source } => {
            format!("{program} cannot be run ({source}): are the Slurm client commands installed?")
        }
        other => other.to_string(),
    }
}

impl Slurm {
    /// A command for `program` (from `bin_dir` if set).
    pub fn cmd(&self, program: &str) -> Cmd {
        match &self.bin_dir {
            Some(d) => Cmd::new(d.join(program)),
            None => Cmd::new(program),
        }
    }

    async fn output(&self, argv: &[String]) -> Result<String, String> {
        let cmd = self.cmd(&argv[0]).args(&argv[1..]);
        match run(&cmd, self.timeout).await {
            Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Runs a changing command; `Err` carries Slurm's message.
    pub async fn execute(&self, argv: &[String]) -> Result<(), String> {
        self.output(argv).await.map(|_| ())
    }

    /// Every node with its partitions, state and reason.
    pub async fn nodes(&self) -> Result<BTreeMap<String, Node>, String> {
        let out = self
            .output(&argv(&["sinfo", "-h", "-N", "-o", "%N|%P|%T|%E"]))
            .await?;
        Ok(parse_nodes(&out))
    }

    /// Every partition with its availability.
    pub async fn partitions(&self) -> Result<Partitions, String> {
        let out = self.output(&argv(&["sinfo", "-h", "-o", "%R|%a"])).await?;
        Ok(parse_partitions(&out))
    }

    /// Ids of the jobs running (or suspended, or starting) on `partitions` or `nodes`.
    pub async fn running_jobs(
        &self,
        partitions: Option<&[String]>,
        nodes: Option<&[String]>,
    ) -> Result<Vec<String>, String> {
        let mut a = argv(&[
            "squeue",
            "-h",
            "-t",
            "RUNNING,SUSPENDED,CONFIGURING",
            "-o",
            "%A",
        ]);
        if let Some(p) = partitions {
            a.push(format!("--partition={}", p.join(",")));
        }
        if let Some(n) = nodes {
            a.push(format!("--nodelist={}", hpcmon_kit::hostlist::compress(n)));
        }
        let out = self.output(&a).await?;
        let mut ids: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        ids.sort_by_key(|i| i.parse::<u64>().unwrap_or(0));
        ids.dedup();
        Ok(ids)
    }
}

/// Builds an argv from string slices.
pub fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `scontrol update PartitionName=P State=S`.
pub fn partition_state(p: &str, state: &str) -> Vec<String> {
    vec![
        "scontrol".into(),
        "update".into(),
        format!("PartitionName={p}"),
        format!("State={state}"),
    ]
}

/// `scontrol update NodeName=HOSTLIST State=S [Reason=R]`.
pub fn node_state(nodes: &[String], state: &str, reason: Option<&str>) -> Vec<String> {
    let mut a = vec![
        "scontrol".into(),
        "update".into(),
        format!("NodeName={}", hpcmon_kit::hostlist::compress(nodes)),
        format!("State={state}"),
    ];
    if let Some(r) = reason {
        a.push(format!("Reason={r}"));
    }
    a
}

/// `scancel -Q JOBID...` (quiet: a job that ended meanwhile is not an error).
pub fn cancel(jobs: &[String]) -> Vec<String> {
    let mut a = argv(&["scancel", "-Q"]);
    a.extend(jobs.iter().cloned());
    a
}

/// Parses `sinfo -h -N -o %N|%P|%T|%E` (one line per node and partition; the reason, free
/// text, comes last).
pub fn parse_nodes(out: &str) -> BTreeMap<String, Node> {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for line in out.lines() {
        let Some([name, part, state, reason]) = split_fields::<4>(line) else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let part = part.trim().trim_end_matches('*').to_string();
        let n = nodes.entry(name.to_string()).or_insert_with(|| Node {
            partitions: Vec::new(),
            state: state.trim().to_ascii_lowercase(),
            reason: reason.trim().to_string(),
        });
        if !part.is_empty() && !n.partitions.contains(&part) {
            n.partitions.push(part);
        }
    }
    nodes
}

/// Parses `sinfo -h -o %R|%a`.
pub fn parse_partitions(out: &str) -> Partitions {
    out.lines()
        .filter_map(|l| split_fields::<2>(l))
        .filter(|[n, _]| !n.trim().is_empty())
        .map(|[n, a]| (n.trim().to_string(), a.trim().to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sinfo() {
        // Captured from the test cluster (scripts/slurm-cluster.sh) after a drain and a
        // power_down.
        let out = "gpu1|gpu|idle|none\ngpu2|gpu|idle|none\nn1|debug*|idle~|hpcmon: test\n\
                   n2|debug*|drained|hpcmon: test drain | with a bar\nn3|debug*|mixed#|none\n\
                   n3|other|mixed#|none\nbroken line\n";
        let n = parse_nodes(out);
        assert_eq!(n.len(), 5);
        assert!(n["n1"].powered_down() && n["n1"].reason_ours() && !n["n1"].drained());
        assert!(n["n2"].drained() && n["n2"].reason == "hpcmon: test drain | with a bar");
        assert_eq!(n["n3"].partitions, ["debug", "other"]);
        assert!(!n["n3"].powered_down());
        let p = parse_partitions("debug|down\ngpu|up\n\n");
        assert_eq!(p["debug"], "down");
        assert_eq!(p["gpu"], "up");
    }

    #[test]
    fn commands_are_argv() {
        let nodes = ["n1".to_string(), "n2".to_string()];
        assert_eq!(
            node_state(&nodes, "DRAIN", Some("hpcmon: hot")),
            [
                "scontrol",
                "update",
                "NodeName=n[1-2]",
                "State=DRAIN",
                "Reason=hpcmon: hot"
            ]
        );
        assert_eq!(
            partition_state("debug", "DOWN"),
            ["scontrol", "update", "PartitionName=debug", "State=DOWN"]
        );
        assert_eq!(
            cancel(&["7".into(), "9".into()]),
            ["scancel", "-Q", "7", "9"]
        );
    }
}
