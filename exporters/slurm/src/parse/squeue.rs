//! `squeue` output: one line per job (array tasks expanded by `-r`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{number, split_fields, tres};

/// The `squeue --Format` the poller uses: `|`-delimited, the free-text reason last.
pub const FORMAT: &str = "ArrayJobID:|,ArrayTaskID:|,UserName:|,Account:|,Partition:|,State:|,NumNodes:|,NumCPUs:|,tres-alloc:|,tres-per-node:|,tres-per-job:|,Licenses:|,Reason:";
/// Number of fields in [`FORMAT`].
pub const FIELDS: usize = 13;

/// One job (or array task).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The array's job id (the job id for a non-array job; 0 if unreadable).
    pub array_job_id: u64,
    /// Whether this is an array task (`ArrayTaskID` not `N/A`).
    pub is_array_task: bool,
    /// User name.
    pub user: Arc<str>,
    /// Account.
    pub account: Arc<str>,
    /// Partition (a pending job may list several, comma-separated).
    pub partition: Arc<str>,
    /// State, uppercase as squeue prints it (`RUNNING`, `PENDING`, ...).
    pub state: Arc<str>,
    /// Pending/state reason (`None` for running jobs).
    pub reason: Arc<str>,
    /// Nodes (allocated, or requested while pending).
    pub nodes: f64,
    /// CPUs (allocated, or requested while pending).
    pub cpus: f64,
    /// Allocated (or, while pending, requested) TRES.
    pub tres: tres::Tres,
    /// Licenses, e.g. `matlab:2` (`None` when none).
    pub licenses: Option<String>,
}

/// A parsed `squeue` output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Squeue {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Lines that could not be parsed (skipped).
    pub bad_lines: usize,
}

/// FNV-1a: the interner hashes short, trusted strings; SipHash costs more than the parse.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Shares the few distinct user/account/partition/state/reason strings between jobs.
#[derive(Default)]
pub struct Interner<'a>(HashMap<&'a str, Arc<str>, std::hash::BuildHasherDefault<Fnv>>);

impl<'a> Interner<'a> {
    fn get(&mut self, s: &'a str) -> Arc<str> {
        let s = s.trim();
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(s, a.clone());
        a
    }
}

/// Parses one line of [`FORMAT`] output.
pub fn parse_line(line: &str) -> Option<Job> {
    parse_line_with(line, &mut Interner::default())
}

fn parse_line_with<'a>(line: &'a str, int: &mut Interner<'a>) -> Option<Job> {
    let f = split_fields::<FIELDS>(line)?;
    let state = f[5].trim();
    if state.is_empty() || !state.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    let mut t = tres::parse_tres(f[8]);
    let nodes = number(f[6]).unwrap_or(0.0);
    if t.gpus == 0.0 && (super::non_empty(f[9]).is_some() || super::non_empty(f[10]).is_some()) {
        // GPUs not tracked as TRES (no gres/gpu in AccountingStorageTRES, which needs
        // slurmdbd): fall back to the request, per node times the nodes plus per job.
        t.gpus = tres::gres_gpus(f[9]) * nodes.max(1.0) + tres::gres_gpus(f[10]);
    }
    Some(Job {
        array_job_id: f[0].trim().parse().unwrap_or(0),
        is_array_task: super::non_empty(f[1]).is_some(),
        user: int.get(f[2]),
        account: int.get(f[3]),
        partition: int.get(f[4]),
        state: int.get(state),
        nodes,
        cpus: number(f[7]).unwrap_or(0.0),
        tres: t,
        licenses: super::non_empty(f[11]).map(str::to_string),
        reason: int.get(f[12]),
    })
}

/// Parses the whole output; bad lines are counted and skipped.
pub fn parse(out: &str) -> Squeue {
    let mut s = Squeue::default();
    let mut int = Interner::default();
    for line in out.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line_with(line, &mut int) {
            Some(j) => s.jobs.push(j),
            None => s.bad_lines += 1,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../testdata/squeue.txt");

    #[test]
    fn captured_sample() {
        let s = parse(SAMPLE);
        assert_eq!(s.bad_lines, 0);
        assert!(s.jobs.len() >= 10);
        let running = s.jobs.iter().filter(|j| &*j.state == "RUNNING").count();
        assert!(running > 0);
        let gpu: f64 = s
            .jobs
            .iter()
            .filter(|j| &*j.state == "RUNNING")
            .map(|j| j.tres.gpus)
            .sum();
        assert_eq!(gpu, 3.0);
        assert!(s.jobs.iter().any(|j| j.is_array_task));
        assert!(s.jobs.iter().any(|j| &*j.reason == "Dependency"));
        assert!(s
            .jobs
            .iter()
            .any(|j| j.licenses.as_deref() == Some("matlab:2")));
    }

    #[test]
    fn edge_cases() {
        let j = parse_line("7|N/A|bob|phys|gpu,debug|PENDING|2|8|cpu=8,mem=16G,node=2,billing=8|gres:gpu:a100:2|N/A|(null)|Reason with | pipe").unwrap();
        assert_eq!(&*j.partition, "gpu,debug");
        assert_eq!(j.tres.gpus, 4.0); // 2 per node x 2 nodes
        assert_eq!(&*j.reason, "Reason with | pipe");
        assert!(!j.is_array_task);
        let j = parse_line("1|3|u|a|p|RUNNING|N/A|N/A||||N/A|None").unwrap();
        assert_eq!((j.nodes, j.cpus), (0.0, 0.0));
        assert!(j.is_array_task);
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("1|2|3|4|5|running lower|7|8|9|10|11|12|13").is_none());
        let s = parse("\n\nnot a job\n1|N/A|u|a|p|RUNNING|1|1|cpu=1|N/A|N/A|(null)|None\n");
        assert_eq!((s.jobs.len(), s.bad_lines), (1, 1));
        let j = parse_line("1|N/A|u|a|p|RUNNING|1|99999999999999999999|cpu=99999999999999999999|N/A|gres:gpu:1|(null)|None").unwrap();
        assert_eq!(j.cpus, 1e20);
        assert_eq!(j.tres.gpus, 1.0); // per job
    }
}
