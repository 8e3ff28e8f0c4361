//! `squeue` output: one line per job (array tasks expanded by `-r`).
//!
//! Two free-text fields exist: the pending reason (Slurm's words, which may hold `|` in
//! `ReqNodeNotAvail, UnavailableNodes:…` style lists only in theory) and the job name, which
//! users choose freely. The name is printed last so it may contain anything but a newline;
//! the reason comes just before it and must not contain `|`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{number, split_fields, tres};

/// The `squeue --Format` the poller uses: `|`-delimited, the free-text reason last.
pub const FORMAT: &str = "ArrayJobID:|,ArrayTaskID:|,UserName:|,Account:|,Partition:|,State:|,NumNodes:|,NumCPUs:|,tres-alloc:|,tres-per-node:|,tres-per-job:|,Licenses:|,JobID:|,QOS:|,NodeList:|,StartTime:|,TimeLimit:|,Reason:|,Name:";
/// Number of fields in [`FORMAT`].
pub const FIELDS: usize = 19;

/// One job (or array task).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The array's job id (the job id for a non-array job; 0 if unreadable).
    pub array_job_id: u64,
    /// The array task id (`None` for a job that is not an array task).
    pub array_task_id: Option<Box<str>>,
    /// The unique job id (`JobID`; differs from `array_job_id` for array tasks; 0 if unreadable).
    pub job_id: u64,
    /// Job name.
    pub name: Box<str>,
    /// QOS.
    pub qos: Arc<str>,
    /// Allocated nodes as a compressed hostlist (`n[1-2]`; `None` while pending).
    pub nodelist: Option<Box<str>>,
    /// Actual (running) or expected (pending) start, seconds since the epoch.
    pub start_time: Option<f64>,
    /// Time limit in seconds (`None`: unlimited or unknown).
    pub time_limit: Option<f64>,
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
    /// The GPUs of [`Job::tres`] by GRES type (`""`: untyped); empty without GPUs.
    pub gpu_types: Box<[(Arc<str>, f64)]>,
}

impl Job {
    /// Whether this is an array task.
    pub fn is_array_task(&self) -> bool {
        self.array_task_id.is_some()
    }

    /// The partition the job is counted under in the aggregate families: the first that
    /// squeue lists (a pending job may list several, `gpu,debug`; it counts once, so sums
    /// over partitions equal the job count).
    pub fn primary_partition(&self) -> &str {
        self.partition
            .split(',')
            .find(|p| !p.is_empty())
            .unwrap_or("")
    }

    /// The job id as Slurm prints it: `123` or, for an array task, `123_4`.
    pub fn display_id(&self) -> String {
        match &self.array_task_id {
            Some(t) => format!("{}_{}", self.array_job_id, t),
            None if self.job_id == 0 => self.array_job_id.to_string(),
            None => self.job_id.to_string(),
        }
    }
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
    let mut types = tres::tres_gpu_types(f[8]);
    if t.gpus == 0.0 && (super::non_empty(f[9]).is_some() || super::non_empty(f[10]).is_some()) {
        // GPUs not tracked as TRES (no gres/gpu in AccountingStorageTRES, which needs
        // slurmdbd): fall back to the request, per node times the nodes plus per job.
        types = tres::gres_gpu_types(f[9]);
        for e in &mut types {
            e.1 *= nodes.max(1.0);
        }
        for (k, n) in tres::gres_gpu_types(f[10]) {
            match types.iter_mut().find(|e| e.0 == k) {
                Some(e) => e.1 += n,
                None => types.push((k, n)),
            }
        }
        t.gpus = types.iter().map(|e| e.1).sum();
    }
    types.retain(|e| e.1 > 0.0);
    let gpu_types = types
        .iter()
        .map(|(k, n)| (Arc::from(k.as_str()), *n))
        .collect();
    Some(Job {
        array_job_id: f[0].trim().parse().unwrap_or(0),
        array_task_id: super::non_empty(f[1]).map(Box::from),
        job_id: f[12].trim().parse().unwrap_or(0),
        qos: int.get(super::non_empty(f[13]).unwrap_or("")),
        nodelist: super::non_empty(f[14]).map(Box::from),
        start_time: super::local_time_seconds(f[15]),
        time_limit: super::duration_seconds(f[16]),
        name: Box::from(f[18].trim()),
        user: int.get(f[2]),
        account: int.get(f[3]),
        partition: int.get(f[4]),
        state: int.get(state),
        nodes,
        cpus: number(f[7]).unwrap_or(0.0),
        tres: t,
        licenses: super::non_empty(f[11]).map(str::to_string),
        reason: int.get(f[17]),
        gpu_types,
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
        assert!(s.jobs.iter().any(|j| j.is_array_task()));
        assert!(s.jobs.iter().any(|j| &*j.reason == "Dependency"));
        assert!(s
            .jobs
            .iter()
            .any(|j| j.licenses.as_deref() == Some("matlab:2")));
    }

    #[test]
    fn edge_cases() {
        let j = parse_line("7|N/A|bob|phys|gpu,debug|PENDING|2|8|cpu=8,mem=16G,node=2,billing=8|gres:gpu:a100:2|N/A|(null)|7|normal||N/A|1-00:00:00|Priority|my | job name ").unwrap();
        assert_eq!(&*j.partition, "gpu,debug");
        assert_eq!(j.tres.gpus, 4.0); // 2 per node x 2 nodes
        assert_eq!(&*j.reason, "Priority");
        assert_eq!(&*j.name, "my | job name");
        assert_eq!((j.nodelist.as_deref(), j.start_time), (None, None));
        assert_eq!(j.time_limit, Some(86400.0));
        assert!(!j.is_array_task());
        assert_eq!(j.display_id(), "7");
        let j = parse_line(
            "1|3|u|a|p|RUNNING|N/A|N/A||||N/A|9|q|n[1-2]|2026-11-22T20:36:04|UNLIMITED|None|x",
        )
        .unwrap();
        assert_eq!((j.nodes, j.cpus), (0.0, 0.0));
        assert!(j.is_array_task());
        assert_eq!((j.display_id().as_str(), j.job_id), ("1_3", 9));
        assert_eq!(j.nodelist.as_deref(), Some("n[1-2]"));
        assert_eq!(
            j.start_time,
            crate::parse::local_time_seconds("2026-11-22T20:36:04")
        );
        assert!(j.start_time.is_some());
        assert_eq!(j.time_limit, None);
        assert!(parse_line("garbage").is_none());
        assert!(
            parse_line("1|2|3|4|5|running lower|7|8|9|10|11|12|13|14|15|16|17|18|19").is_none()
        );
        let s = parse("\n\nnot a job\n1|N/A|u|a|p|RUNNING|1|1|cpu=1|N/A|N/A|(null)|1|normal|n1|Unknown|30:00|None|sleep\n");
        assert_eq!((s.jobs.len(), s.bad_lines), (1, 1));
        assert_eq!(s.jobs[0].time_limit, Some(1800.0));
        let j = parse_line("1|N/A|u|a|p|RUNNING|1|99999999999999999999|cpu=99999999999999999999|N/A|gres:gpu:1|(null)|1|normal|n1|N/A|N/A|None|").unwrap();
        assert_eq!(j.cpus, 1e20);
        assert_eq!(j.tres.gpus, 1.0); // per job
    }
}
