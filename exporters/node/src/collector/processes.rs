//! `processes` collector: process and thread counts from `/proc/<pid>/stat` and
//! `/proc/<pid>/task/<tid>/stat`, as node_exporter 1.5: `node_processes_pids`,
//! `node_processes_threads`, `node_processes_state{state}`,
//! `node_processes_threads_state{thread_state}`, and the limits
//! `node_processes_max_processes` (`kernel/pid_max`) and `node_processes_max_threads`
//! (`kernel/threads-max`). Off by default, as there.
//!
//! A process or thread that exits while it is read is skipped. The walk stops at the
//! scrape's deadline (on a node with a million threads), failing the collector rather than
//! overrunning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(state, num_threads)` of a `stat` line: the fields after the last `)` of the command
/// name (which may itself hold spaces and parentheses).
pub(crate) fn parse_stat(text: &str) -> anyhow::Result<(&str, u64)> {
    let (Some(_), Some(r)) = (text.find('('), text.rfind(')')) else {
        anyhow::bail!("unexpected format of stat: {text:?}");
    };
    let f: Vec<&str> = text[r + 1..].split_ascii_whitespace().collect();
    anyhow::ensure!(f.len() >= 18, "short stat line: {text:?}");
    let threads = f[17]
        .parse()
        .with_context(|| format!("invalid num_threads {:?}", f[17]))?;
    Ok((f[0], threads))
}

/// Whether reading failed because the process or thread is gone.
fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// The numeric entries (pids, tids) of a directory.
fn pids(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect())
}

/// Totals over all processes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Totals {
    pub pids: u64,
    pub threads: u64,
    pub states: BTreeMap<String, u64>,
    pub thread_states: BTreeMap<String, u64>,
}

/// Walks `proc` (the procfs root) until `ctx`'s deadline.
pub(crate) fn walk(proc: &Path, ctx: &Context) -> anyhow::Result<Totals> {
    let mut t = Totals::default();
    for (pid, dir) in pids(proc).context("unable to list all processes")? {
        anyhow::ensure!(
            !ctx.remaining().is_zero(),
            "deadline reached while walking processes"
        );
        let text = match std::fs::read_to_string(dir.join("stat")) {
            Ok(s) => s,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("error reading stat for pid {pid}")),
        };
        let (state, threads) =
            parse_stat(&text).with_context(|| format!("error reading stat for pid {pid}"))?;
        t.pids += 1;
        t.threads += threads;
        *t.states.entry(state.to_owned()).or_default() += 1;
        let tasks = match pids(&dir.join("task")) {
            Ok(tasks) => tasks,
            Err(e) if gone(&e) => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("unable to list all threads for pid {pid}"))
            }
        };
        for (tid, tdir) in tasks {
            let tstate = if tid == pid {
                state.to_owned()
            } else {
                match std::fs::read_to_string(tdir.join("stat")) {
                    Ok(s) => parse_stat(&s)
                        .with_context(|| format!("error reading stat for pid:{pid} thread:{tid}"))?
                        .0
                        .to_owned(),
                    Err(e) if gone(&e) => continue,
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("error reading stat for pid:{pid} thread:{tid}")
                        })
                    }
                }
            };
            *t.thread_states.entry(tstate).or_default() += 1;
        }
    }
    Ok(t)
}

struct Processes {
    proc: PathBuf,
    threads_max: PathBuf,
    pid_max: PathBuf,
}

/// Builds the `processes` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Processes {
        proc: cfg.paths.procfs.clone(),
        threads_max: cfg.paths.proc("sys/kernel/threads-max"),
        pid_max: cfg.paths.proc("sys/kernel/pid_max"),
    }))
}

impl Collector for Processes {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let t = walk(&self.proc, ctx).context("unable to retrieve number of allocated threads")?;
        let threads_max = read::u64_file(&self.threads_max)
            .context("unable to retrieve limit number of threads")?;
        let pid_max = read::u64_file(&self.pid_max)
            .context("unable to retrieve limit number of maximum pids alloved")?;
        out.gauge("node_processes_threads", "Allocated threads in system")
            .sample(&[], t.threads as f64);
        out.gauge(
            "node_processes_max_threads",
            "Limit of threads in the system",
        )
        .sample(&[], threads_max as f64);
        let states = out.gauge("node_processes_state", "Number of processes in each state.");
        for (s, n) in &t.states {
            states.sample(&[("state", s)], *n as f64);
        }
        let tstates = out.gauge(
            "node_processes_threads_state",
            "Number of threads in each state.",
        );
        for (s, n) in &t.thread_states {
            tstates.sample(&[("thread_state", s)], *n as f64);
        }
        out.gauge("node_processes_pids", "Number of PIDs")
            .sample(&[], t.pids as f64);
        out.gauge("node_processes_max_processes", "Number of max PIDs limit")
            .sample(&[], pid_max as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn golden_recorded() {
        let c = new(&test_config(&testdata().join("fixtures/a-processes"), &[])).unwrap();
        assert_golden("processes", &render(&*c).unwrap());
    }

    #[test]
    fn stat_lines() {
        let s =
            "1234 (tmux: server (x)) S 1 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 5 1 2 3\n";
        assert_eq!(parse_stat(s).unwrap(), ("S", 3));
        assert!(parse_stat("1234 tmux S 1\n").is_err());
        assert!(parse_stat("1 (x) S 1 2\n").is_err());
    }

    #[test]
    fn this_machine_and_the_deadline() {
        let ctx = Context::with_timeout(Duration::from_secs(30));
        let t = walk(Path::new("/proc"), &ctx).unwrap();
        assert!(t.pids >= 1 && t.threads >= t.pids, "{t:?}");
        let past = Context::with_timeout(Duration::ZERO);
        assert!(walk(Path::new("/proc"), &past).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_stat(&s);
        }
    }
}
