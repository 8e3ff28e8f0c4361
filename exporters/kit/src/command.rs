//! Running external commands with a hard deadline.
//!
//! Every external command an exporter runs goes through [`run`]: the child gets its own
//! process group, and when the deadline passes the whole group is killed with SIGKILL and
//! reaped, so a hung tool (`squeue` against a dead controller, `ipmi-sensors` against a BMC
//! that never answers) leaves nothing behind.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A command's captured result.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Wall time from spawn to exit.
    pub duration: Duration,
}

/// Why a command produced no usable output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// Program name.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The deadline passed; the process group was killed.
    #[error("{program} timed out after {timeout:?} and was killed")]
    Timeout {
        /// Program name.
        program: String,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The program exited unsuccessfully.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// Program name.
        program: String,
        /// Exit status.
        status: ExitStatus,
        /// First line(s) of stderr, trimmed.
        stderr: String,
    },
    /// Reading the pipes failed.
    #[error("reading output of {program}: {source}")]
    Io {
        /// Program name.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A command to run: program, arguments, environment and optional stdin.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Bytes written to the child's stdin (then closed). Use it for secrets: they never
    /// appear in argv or on disk.
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The program name, for messages.
    pub fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

fn first_lines(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    let mut out: String = s.lines().take(3).collect::<Vec<_>>().join(" | ");
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Runs `cmd`, killing its process group if it has not exited within `timeout`. A non-zero
/// exit is an error ([`CommandError::Failed`]); use [`run_unchecked`] to inspect it yourself.
pub async fn run(cmd: &Cmd, timeout: Duration) -> Result<Output, CommandError> {
    let out = run_unchecked(cmd, timeout).await?;
    if !out.status.success() {
        return Err(CommandError::Failed {
            program: cmd.program(),
            status: out.status,
            stderr: first_lines(&out.stderr),
        });
    }
    Ok(out)
}

/// Like [`run`], but a non-zero exit status is returned as output, not as an error.
pub async fn run_unchecked(cmd: &Cmd, timeout: Duration) -> Result<Output, CommandError> {
    let program = cmd.program();
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = c.spawn().map_err(|source| CommandError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let data = cmd.stdin.clone();
    let io = async {
        let write = async {
            if let (Some(mut w), Some(d)) = (stdin.take(), data) {
                // The child may exit without reading; that is not our error.
                let _ = w.write_all(&d).await;
                drop(w);
            }
            Ok::<(), std::io::Error>(())
        };
        let mut o = Vec::new();
        let mut e = Vec::new();
        let (w, ro, re) = tokio::join!(
            write,
            stdout.read_to_end(&mut o),
            stderr.read_to_end(&mut e)
        );
        w?;
        ro?;
        re?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, o, e))
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(Ok((status, stdout, stderr))) => Ok(Output {
            status,
            stdout,
            stderr,
            duration: start.elapsed(),
        }),
        Ok(Err(source)) => {
            kill_group(pid);
            reap(&mut child).await;
            Err(CommandError::Io { program, source })
        }
        Err(_) => {
            kill_group(pid);
            reap(&mut child).await;
            Err(CommandError::Timeout { program, timeout })
        }
    }
}

/// Waits (briefly) for a SIGKILLed child, so it does not stay a zombie until tokio's orphan
/// reaper next runs (which may be only at the next spawn).
async fn reap(child: &mut tokio::process::Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
}

/// SIGKILLs the process group led by `pid`. The child itself is then reaped by [`reap`].
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// [`run`] for synchronous code (a [`Collector`](crate::Collector) on a blocking thread).
pub fn run_blocking(cmd: &Cmd, timeout: Duration) -> Result<Output, CommandError> {
    block_on(run(cmd, timeout))
}

/// [`run_unchecked`] for synchronous code.
pub fn run_unchecked_blocking(cmd: &Cmd, timeout: Duration) -> Result<Output, CommandError> {
    block_on(run_unchecked(cmd, timeout))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(f),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_and_stdin() {
        let out = run(
            &Cmd::new("cat").stdin(b"secret\n".to_vec()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"secret\n");
    }

    #[tokio::test]
    async fn nonzero_exit_is_an_error_with_stderr() {
        let err = run(
            &Cmd::new("sh").args(["-c", "echo bad thing >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("bad thing"), "{err}");
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let err = run(&Cmd::new("/nonexistent/tool"), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }));
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell starts a grandchild that would outlive a plain kill of the child.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let err = run(
            &Cmd::new("sh").args(["-c", &script]),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Give the kernel a moment to deliver SIGKILL, then the grandchild must be gone
        // (or a zombie awaiting its reaper).
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "grandchild {pid} survived");
    }

    #[tokio::test]
    async fn timed_out_child_is_reaped_not_left_a_zombie() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
        let err = run(
            &Cmd::new("sh").args(["-c", &script]),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // Reaped before run() returned: no /proc entry at all (not even a zombie).
        assert!(
            !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "child {} was not reaped",
            pid.trim()
        );
    }

    #[test]
    fn blocking_variant_works_without_runtime() {
        let out = run_blocking(&Cmd::new("echo").arg("hi"), Duration::from_secs(5)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }
}
