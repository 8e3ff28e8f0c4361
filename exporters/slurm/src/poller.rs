//! The background poller: one snapshot of the cluster per `--slurm.poll-interval`.
//!
//! Each [`Source`] is one Slurm command with an explicit output format. Every poll runs the
//! due commands concurrently, each through [`hpcmon_kit::command::run`] under
//! `--slurm.command-timeout` (killed with its process group when it passes it), and parses
//! the output. A success replaces that source's data; a failure (spawn error, timeout,
//! non-zero exit, unparsable output) keeps the last good data, marks the source failed and is
//! logged in one line. Collectors only ever read the stored data, so the number of scrapers
//! does not change the number of Slurm RPCs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hpcmon_kit::command::{run, Cmd};

use crate::parse;

/// The poller's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// How often to take a snapshot (squeue, sinfo, sdiag).
    #[arg(long = "slurm.poll-interval", default_value = "30s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// How often to run the slower-changing commands: sshare, scontrol show
    /// reservation/licenses/config.
    #[arg(long = "slurm.sshare-interval", default_value = "5m", value_parser = parse_duration)]
    pub sshare_interval: Duration,
    /// Deadline of each Slurm command; it is killed (with its process group) when it passes.
    #[arg(long = "slurm.command-timeout", default_value = "10s", value_parser = parse_duration)]
    pub command_timeout: Duration,
    /// Directory of the Slurm client binaries (default: found on PATH).
    #[arg(long = "slurm.bin-dir", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// One Slurm command the poller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `squeue`: all jobs.
    Squeue,
    /// `sinfo -N`: all nodes.
    Sinfo,
    /// `sdiag`: scheduler statistics.
    Sdiag,
    /// `sshare`: fair share.
    Sshare,
    /// `scontrol show reservation`.
    Reservations,
    /// `scontrol show licenses`.
    Licenses,
    /// `scontrol show config`: cluster name and version.
    Config,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 7] = [
        Source::Squeue,
        Source::Sinfo,
        Source::Sdiag,
        Source::Sshare,
        Source::Reservations,
        Source::Licenses,
        Source::Config,
    ];

    /// The `command` label value.
    pub fn name(self) -> &'static str {
        match self {
            Source::Squeue => "squeue",
            Source::Sinfo => "sinfo",
            Source::Sdiag => "sdiag",
            Source::Sshare => "sshare",
            Source::Reservations => "scontrol_reservations",
            Source::Licenses => "scontrol_licenses",
            Source::Config => "scontrol_config",
        }
    }

    /// Whether it runs every `--slurm.sshare-interval` instead of every poll.
    pub fn slow(self) -> bool {
        matches!(
            self,
            Source::Sshare | Source::Reservations | Source::Licenses | Source::Config
        )
    }
}

/// Parsed output of one source.
#[derive(Debug, Clone)]
pub enum Data {
    /// Jobs.
    Squeue(parse::squeue::Squeue),
    /// Nodes.
    Sinfo(parse::sinfo::Sinfo),
    /// Scheduler statistics.
    Sdiag(parse::sdiag::Sdiag),
    /// Fair share.
    Sshare(Vec<parse::sshare::Share>),
    /// Reservations.
    Reservations(Vec<parse::reservations::Reservation>),
    /// Licenses.
    Licenses(Vec<parse::licenses::License>),
    /// Cluster name and version.
    Config(parse::scontrol_config::Config),
}

/// What is known about one source.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    /// The last good data.
    pub data: Option<Arc<Data>>,
    /// When the last good data was taken.
    pub last_success: Option<SystemTime>,
    /// Whether the latest attempt succeeded.
    pub ok: bool,
    /// The latest attempt's error.
    pub error: Option<String>,
    /// The latest attempt's duration.
    pub duration: Duration,
    /// Attempts so far.
    pub runs: u64,
    /// Failed attempts so far.
    pub failures: u64,
}

impl SourceState {
    /// Whether data is being served from an earlier snapshot because the latest attempt failed.
    pub fn stale(&self) -> bool {
        !self.ok && self.data.is_some()
    }
}

struct Inner {
    flags: Flags,
    /// Fixed when the poller starts (or at once by [`Poller::new`]).
    sources: OnceLock<Vec<Source>>,
    /// What the collectors built on an unstarted poller read ([`Poller::need`]).
    needed: Mutex<Vec<Source>>,
    states: Mutex<BTreeMap<Source, SourceState>>,
    polls: AtomicU64,
    polled: Condvar,
    polled_lock: Mutex<()>,
    legacy_sinfo: OnceLock<bool>,
}

/// The poller and the snapshot it keeps; cheap to clone.
#[derive(Clone)]
pub struct Poller(Arc<Inner>);

impl Poller {
    /// A poller for `sources` that does not run anything by itself (tests feed it with
    /// [`ingest`](Self::ingest)).
    pub fn new(flags: Flags, sources: Vec<Source>) -> Self {
        let p = Self::unstarted(flags);
        let _ = p.0.sources.set(sources);
        p
    }

    /// A poller whose sources are not fixed yet: each collector built on it declares what
    /// it reads ([`need`](Self::need)), and [`start_needed`](Self::start_needed) runs
    /// exactly those commands.
    pub fn unstarted(flags: Flags) -> Self {
        Poller(Arc::new(Inner {
            flags,
            sources: OnceLock::new(),
            needed: Mutex::new(Vec::new()),
            states: Mutex::new(BTreeMap::new()),
            polls: AtomicU64::new(0),
            polled: Condvar::new(),
            polled_lock: Mutex::new(()),
            legacy_sinfo: OnceLock::new(),
        }))
    }

    /// Creates the poller and starts its background task on the current tokio runtime.
    pub fn start(flags: Flags, sources: Vec<Source>) -> anyhow::Result<Self> {
        let p = Self::new(flags, sources);
        p.spawn()?;
        Ok(p)
    }

    /// Declares that a collector reads `sources` (before the poller starts; later
    /// declarations change nothing).
    pub fn need(&self, sources: &[Source]) {
        if let Ok(mut n) = self.0.needed.lock() {
            n.extend_from_slice(sources);
        }
    }

    /// The sources declared with [`need`](Self::need) and `extra`, in [`Source::ALL`] order.
    pub fn needed(&self, extra: &[Source]) -> Vec<Source> {
        let n = self.0.needed.lock().map(|n| n.clone()).unwrap_or_default();
        Source::ALL
            .into_iter()
            .filter(|s| n.contains(s) || extra.contains(s))
            .collect()
    }

    /// Fixes the sources to those the collectors declared plus `extra` (e.g. what
    /// `/sd/nodes` reads) and starts the background task on the current tokio runtime.
    pub fn start_needed(&self, extra: &[Source]) -> anyhow::Result<()> {
        self.0
            .sources
            .set(self.needed(extra))
            .map_err(|_| anyhow::anyhow!("the poller's sources are fixed already"))?;
        self.spawn()
    }

    fn spawn(&self) -> anyhow::Result<()> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| anyhow::anyhow!("poller needs a tokio runtime: {e}"))?;
        let bg = self.clone();
        handle.spawn(async move { bg.run_forever().await });
        Ok(())
    }

    /// The sources this poller runs (none before it starts).
    pub fn sources(&self) -> &[Source] {
        self.0.sources.get().map_or(&[], Vec::as_slice)
    }

    /// Completed polls so far.
    pub fn polls(&self) -> u64 {
        self.0.polls.load(Ordering::Acquire)
    }

    /// The state of `source` (`None` before its first attempt).
    pub fn state(&self, source: Source) -> Option<SourceState> {
        self.0.states.lock().ok()?.get(&source).cloned()
    }

    /// Blocks until the first poll has completed or `deadline` passes.
    pub fn wait_first_poll(&self, deadline: Instant) {
        let mut g = match self.0.polled_lock.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        while self.polls() == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            g = match self.0.polled.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.0.flags.bin_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    /// The command that reads `source`.
    pub fn command(&self, source: Source) -> Cmd {
        let legacy = *self.0.legacy_sinfo.get().unwrap_or(&false);
        let (prog, args): (&str, Vec<&str>) = match source {
            Source::Squeue => (
                "squeue",
                vec![
                    "-a",
                    "-r",
                    "-h",
                    "--noconvert",
                    "--states=all",
                    "-O",
                    parse::squeue::FORMAT,
                ],
            ),
            Source::Sinfo => (
                "sinfo",
                vec![
                    "-a",
                    "-N",
                    "-h",
                    "--noconvert",
                    "-O",
                    if legacy {
                        parse::sinfo::FORMAT_LEGACY
                    } else {
                        parse::sinfo::FORMAT
                    },
                ],
            ),
            Source::Sdiag => ("sdiag", vec![]),
            Source::Sshare => (
                "sshare",
                vec!["-a", "-h", "-P", "-o", parse::sshare::FORMAT],
            ),
            Source::Reservations => ("scontrol", vec!["-o", "show", "reservation"]),
            Source::Licenses => ("scontrol", vec!["-o", "show", "licenses"]),
            Source::Config => ("scontrol", vec!["show", "config"]),
        };
        Cmd::new(self.program(prog))
            .args(args)
            .env("SLURM_TIME_FORMAT", "standard")
    }

    /// Stores the result of one attempt at `source`: output to parse, or the error.
    pub fn ingest(&self, source: Source, result: Result<String, String>, duration: Duration) {
        let parsed = result.and_then(|out| parse_output(source, &out));
        let mut states = match self.0.states.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let st = states.entry(source).or_default();
        st.runs += 1;
        st.duration = duration;
        match parsed {
            Ok(data) => {
                st.data = Some(Arc::new(data));
                st.last_success = Some(SystemTime::now());
                st.ok = true;
                st.error = None;
            }
            Err(e) => {
                tracing::warn!(command = source.name(), error = %e, stale = st.data.is_some(), "slurm command failed");
                st.ok = false;
                st.error = Some(e);
                st.failures += 1;
            }
        }
    }

    /// Marks one poll as complete (wakes collectors waiting for the first snapshot).
    pub fn finish_poll(&self) {
        let _g = self.0.polled_lock.lock();
        self.0.polls.fetch_add(1, Ordering::AcqRel);
        self.0.polled.notify_all();
    }

    async fn detect_version(&self) {
        if self.0.legacy_sinfo.get().is_some() || !self.sources().contains(&Source::Sinfo) {
            return;
        }
        let out = run(
            &Cmd::new(self.program("sinfo")).arg("--version"),
            self.0.flags.command_timeout,
        )
        .await;
        let legacy = match out {
            Ok(o) => version_before(&String::from_utf8_lossy(&o.stdout), (21, 8)),
            Err(_) => false,
        };
        let _ = self.0.legacy_sinfo.set(legacy);
    }

    async fn poll_source(&self, source: Source) {
        let cmd = self.command(source);
        let start = Instant::now();
        let result = match run(&cmd, self.0.flags.command_timeout).await {
            Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Err(e) => Err(e.to_string()),
        };
        self.ingest(source, result, start.elapsed());
    }

    /// Runs the due sources once, concurrently.
    pub async fn poll_once(&self, include_slow: bool) {
        self.detect_version().await;
        let mut set = tokio::task::JoinSet::new();
        for &s in self.sources() {
            if s.slow() && !include_slow {
                continue;
            }
            let p = self.clone();
            set.spawn(async move { p.poll_source(s).await });
        }
        while set.join_next().await.is_some() {}
        self.finish_poll();
    }

    async fn run_forever(self) {
        let mut last_slow: Option<Instant> = None;
        loop {
            let start = Instant::now();
            let slow =
                last_slow.is_none_or(|t| start.duration_since(t) >= self.0.flags.sshare_interval);
            if slow {
                last_slow = Some(start);
            }
            self.poll_once(slow).await;
            tokio::time::sleep_until((start + self.0.flags.poll_interval).into()).await;
        }
    }
}

/// Whether a `sinfo --version` line (`slurm 20.11.9`, `slurm-wlm 22.05.8`) is older than
/// `(major, minor)`.
pub fn version_before(s: &str, want: (u32, u32)) -> bool {
    let v = s.split_whitespace().nth(1).unwrap_or("");
    let mut it = v.split('.');
    let major = it.next().and_then(|x| x.parse::<u32>().ok());
    let minor = it.next().and_then(|x| x.parse::<u32>().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b) < want,
        _ => false,
    }
}

fn unparsable(what: &str, bad: usize) -> String {
    format!("unparsable {what} output ({bad} bad lines, none usable)")
}

/// Parses `out` as the output of `source`. An output with lines but nothing usable is an
/// error (garbage, or a format the running Slurm does not understand).
pub fn parse_output(source: Source, out: &str) -> Result<Data, String> {
    let nonblank = out.lines().any(|l| !l.trim().is_empty());
    match source {
        Source::Squeue => {
            let s = parse::squeue::parse(out);
            if s.jobs.is_empty() && s.bad_lines > 0 {
                return Err(unparsable("squeue", s.bad_lines));
            }
            Ok(Data::Squeue(s))
        }
        Source::Sinfo => {
            let s = parse::sinfo::parse(out);
            if s.nodes.is_empty() && s.bad_lines > 0 {
                return Err(unparsable("sinfo", s.bad_lines));
            }
            Ok(Data::Sinfo(s))
        }
        Source::Sdiag => {
            let s = parse::sdiag::parse(out);
            if s.general.is_empty() && s.main.is_empty() {
                return Err("unparsable sdiag output (no statistics found)".into());
            }
            Ok(Data::Sdiag(s))
        }
        Source::Sshare => {
            let s = parse::sshare::parse(out);
            if s.is_empty() && nonblank && !out.trim_start().starts_with("Account") {
                return Err("unparsable sshare output".into());
            }
            Ok(Data::Sshare(s))
        }
        Source::Reservations => {
            let r = parse::reservations::parse(out);
            if r.is_empty() && nonblank && !out.contains("No reservations") {
                return Err("unparsable scontrol show reservation output".into());
            }
            Ok(Data::Reservations(r))
        }
        Source::Licenses => {
            let l = parse::licenses::parse(out);
            if l.is_empty() && nonblank && !out.contains("No licenses") {
                return Err("unparsable scontrol show licenses output".into());
            }
            Ok(Data::Licenses(l))
        }
        Source::Config => parse::scontrol_config::parse(out)
            .map(Data::Config)
            .ok_or_else(|| "unparsable scontrol show config output".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_before("slurm 20.11.9", (21, 8)));
        assert!(!version_before("slurm-wlm 22.05.8", (21, 8)));
        assert!(!version_before("slurm 21.08.0", (21, 8)));
        assert!(!version_before("garbage", (21, 8)));
    }

    #[test]
    fn garbage_is_an_error_empty_is_not() {
        assert!(parse_output(Source::Squeue, "total garbage\nmore\n").is_err());
        assert!(parse_output(Source::Squeue, "").is_ok());
        assert!(parse_output(Source::Sinfo, "x|y\n").is_err());
        assert!(parse_output(Source::Sdiag, "hello\n").is_err());
        assert!(parse_output(Source::Reservations, "No reservations in the system\n").is_ok());
        assert!(parse_output(Source::Licenses, "What?\n").is_err());
        assert!(parse_output(Source::Config, "").is_err());
    }
}
