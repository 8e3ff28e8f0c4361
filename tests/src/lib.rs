//! # hpcmon-e2e
//!
//! Harness for end-to-end tests across hpcmon's binaries and real components: start a
//! process on loopback and stop it on drop, find free ports, wait for readiness, run a real
//! Prometheus or Alertmanager with a generated config and query it.
//!
//! Exporter crates use it as a dev-dependency for their own integration tests; the tests in
//! this crate's `tests/` folder exercise the whole stack.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use hpcmon_e2e::{free_port, workspace_bin, Daemon, Prometheus};
//! use std::time::Duration;
//!
//! let port = free_port();
//! let mut cmd = std::process::Command::new(workspace_bin("hpcmon-node-exporter"));
//! cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
//! let mut exporter = Daemon::spawn("node-exporter", cmd);
//! exporter.wait_http(&format!("http://127.0.0.1:{port}/-/ready"), Duration::from_secs(10)).await?;
//!
//! let prom = Prometheus::start(&Prometheus::scrape_config("node", &format!("127.0.0.1:{port}")), &[]).await?;
//! prom.wait_for("up", |r| hpcmon_e2e::first_value(r) == Some(1.0), Duration::from_secs(20)).await?;
//! # Ok(()) }
//! ```
//!
//! Everything binds 127.0.0.1. Every wait is bounded and fails with the daemon's log tail.
//! Nothing here asserts on timings.

mod alertmanager;
mod chromium;
mod daemon;
mod dashboards;
mod http;
mod pki;
mod prometheus;
pub mod slurm;
mod victoria;

pub use alertmanager::{alert, Alertmanager};
pub use chromium::{dump_dom, table_rows};
pub use daemon::{ChildGuard, Daemon};
pub use dashboards::{check_dashboards_live, LiveCheck};
pub use http::{client, install_crypto_provider, ClientOptions};
pub use pki::Pki;
pub use prometheus::{first_value, Prometheus};
pub use slurm::{ClusterLock, ClusterOptions, SlurmCluster};
pub use victoria::VictoriaMetrics;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo profile folder the running test was built into, e.g. `target/debug`.
///
/// Taken from the test executable's own path (`target/<profile>/deps/<test>`), so it is right
/// for any profile and any `CARGO_TARGET_DIR`; falls back to `$CARGO_TARGET_DIR/debug` or
/// `<repo>/target/debug`.
pub fn profile_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(deps) = exe.parent() {
            if deps.file_name().is_some_and(|n| n == "deps") {
                if let Some(profile) = deps.parent() {
                    return profile.to_path_buf();
                }
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug")
}

/// Path of a binary of this workspace, `target/<profile>/<name>`.
///
/// Panics with the command to run when it has not been built: tests in `tests/` use binaries of
/// other packages, which `cargo test` does not build by itself.
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    if !p.is_file() {
        panic!(
            "binary {} is not built; run `cargo build --workspace --bins` first (scripts/test.sh does)",
            p.display()
        );
    }
    p
}

/// Checks that an external program (from a Debian package) is on PATH; panics naming the
/// install command otherwise. Tests call it so that a missing package is a clear failure.
pub fn require_program(program: &str, deps_group: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{program}` is not installed; run `scripts/install-deps.sh {deps_group}`");
}

/// Polls `url` until it answers with a 2xx status, at most `timeout`.
pub async fn wait_ready(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let c = client(&ClientOptions::default())?;
    wait_ready_with(&c, url, timeout, || Ok(())).await
}

/// Like [`wait_ready`] with a given client; `alive` is called between polls and aborts the
/// wait with its error (e.g. "the daemon exited").
pub async fn wait_ready_with(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        let last = match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("{url} not ready after {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs an external command to completion with a deadline (the child is killed when it
/// passes); an error carries the exit status and stderr when it fails.
pub async fn run_command(cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    let desc = format!("{cmd:?}");
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("{desc} did not finish within {timeout:?}"))?
        .map_err(|e| anyhow::anyhow!("starting {desc}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{desc} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Starts the workspace binary `name` (see [`workspace_bin`]) with
/// `--web.listen-address=127.0.0.1:PORT` on a free port plus `args` and `env`, logging to
/// `logs/<name>.log`, and waits for `/-/ready`; panics with the log when it does not start.
pub async fn start_binary(
    name: &str,
    logs: &Path,
    args: &[String],
    env: &[(&str, &std::ffi::OsStr)],
) -> (Daemon, u16) {
    let ready = client(&ClientOptions::default()).expect("building the readiness client");
    start_binary_with_client(name, logs, args, env, &ready).await
}

/// [`start_binary`] for a binary behind `--web.config.file` (basic auth, TLS): `/-/ready`
/// is polled with `ready` (which carries the credentials) over plain HTTP.
pub async fn start_binary_with_client(
    name: &str,
    logs: &Path,
    args: &[String],
    env: &[(&str, &std::ffi::OsStr)],
    ready: &reqwest::Client,
) -> (Daemon, u16) {
    let log = logs.join(format!("{name}.log"));
    let bin = workspace_bin(name);
    start_on_free_port_with(&log, ready, |port| {
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon::spawn_logged(name, cmd, &log)
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{name} did not start: {e:#}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
}

/// Starts a daemon on a free port and waits for its `/-/ready`, retrying with another port
/// (up to 3 times) when the port was taken between [`free_port`] and the daemon's bind.
/// `spawn` gets the port and must log to `log`.
pub async fn start_on_free_port(
    log: &Path,
    spawn: impl FnMut(u16) -> Daemon,
) -> anyhow::Result<(Daemon, u16)> {
    let ready = client(&ClientOptions::default())?;
    start_on_free_port_with(log, &ready, spawn).await
}

/// [`start_on_free_port`] polling `/-/ready` with the given client (credentials).
pub async fn start_on_free_port_with(
    log: &Path,
    ready: &reqwest::Client,
    mut spawn: impl FnMut(u16) -> Daemon,
) -> anyhow::Result<(Daemon, u16)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port();
        let mut d = spawn(port);
        let url = format!("http://127.0.0.1:{port}/-/ready");
        match d.wait_http_with(ready, &url, Duration::from_secs(30)).await {
            Ok(()) => return Ok((d, port)),
            Err(e) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if attempt < 3 && text.contains("address already in use") {
                    drop(d);
                    // The log is appended to: truncate it so the next attempt's check is fresh.
                    let _ = std::fs::write(log, format!("(port {port} was taken; retried)\n"));
                    continue;
                }
                return Err(e);
            }
        }
    }
}
