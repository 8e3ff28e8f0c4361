//! A child process that runs in its own process group and is stopped on drop.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A daemon started for a test. Its stdout and stderr go to a log file; on drop the whole
/// process group gets SIGTERM, then SIGKILL after the grace period, and is reaped.
///
/// Errors from [`Daemon::wait_http`] and the panics of [`Daemon::assert_running`] carry the
/// tail of the log, so a failing test shows why the daemon did not come up.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    grace: Duration,
    status: Option<ExitStatus>,
    _tmp: Option<tempfile::TempDir>,
}

/// Alias: the guard that kills a spawned child on drop.
pub type ChildGuard = Daemon;

impl Daemon {
    /// Spawns `cmd` with its log in a fresh temporary folder. Panics if it cannot be started.
    pub fn spawn(name: &str, cmd: Command) -> Daemon {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("hpcmon-e2e-{name}-"))
            .tempdir()
            .expect("creating a temp dir for the log");
        let log = tmp.path().join(format!("{name}.log"));
        let mut d = Self::spawn_logged(name, cmd, &log);
        d._tmp = Some(tmp);
        d
    }

    /// Spawns `cmd` with stdout and stderr appended to `log`. Panics if it cannot be started.
    pub fn spawn_logged(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening log {}: {e}", log.display()));
        let err = out.try_clone().expect("dup log fd");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({:?}): {e}", cmd.get_program()));
        Daemon {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            log: log.to_path_buf(),
            grace: Duration::from_secs(5),
            status: None,
            _tmp: None,
        }
    }

    /// Time between SIGTERM and SIGKILL when stopping (default 5 s).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The daemon's name as given to `spawn`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log as text (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log, ready to put in a message.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "--- last {} lines of {} ({}) ---\n{}\n--- end of log ---",
            lines.len() - start,
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// The exit status if the process has exited (reaps it), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// `Ok` while the process runs; an error with the log tail once it has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(s) => anyhow::bail!("{} exited early ({s})\n{}", self.name, self.log_tail(40)),
        }
    }

    /// Panics with the log tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Err(e) = self.check_running() {
            panic!("{e:#}");
        }
    }

    /// Polls `url` (plain HTTP) until it answers 2xx, failing early if the process exits.
    pub async fn wait_http(&mut self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let c = crate::client(&crate::ClientOptions::default())?;
        self.wait_http_with(&c, url, timeout).await
    }

    /// [`Daemon::wait_http`] with a given client (TLS, auth).
    pub async fn wait_http_with(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let r = crate::wait_ready_with(client, url, timeout, || self.check_running()).await;
        r.map_err(|e| {
            if self.status.is_some() {
                e
            } else {
                e.context(self.log_tail(40))
            }
        })
    }

    /// Sends `sig` to the whole process group.
    pub fn signal(&self, sig: libc::c_int) {
        if self.status.is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(-(self.pid as libc::pid_t), sig) };
        }
    }

    /// Stops the group: SIGTERM, then SIGKILL after the grace period; returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return self.status;
        };
        let pg = -(self.pid as libc::pid_t);
        if self.status.is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pg, libc::SIGTERM) };
            let deadline = Instant::now() + self.grace;
            loop {
                if let Ok(Some(s)) = child.try_wait() {
                    self.status = Some(s);
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left of the group (the leader after the grace period, or children it
        // left behind) is killed.
        // SAFETY: as above.
        unsafe { libc::kill(pg, libc::SIGKILL) };
        if self.status.is_none() {
            self.status = child.wait().ok();
        }
        self.status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("log", &self.log)
            .finish()
    }
}
