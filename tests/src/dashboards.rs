//! The live dashboard check (`scripts/lib/check_dashboards.py --live`) for end-to-end tests:
//! every variable and panel query of the given dashboards is evaluated against a running
//! Prometheus-compatible API, and any that returns nothing or an error fails unless the
//! allow-list excuses it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::Context as _;

use crate::repo_root;

/// What one live check printed.
#[derive(Debug)]
pub struct LiveCheck {
    pub status: ExitStatus,
    /// One `PASS` / `FAIL` / `ALLOWED` line per query, then a summary.
    pub stdout: String,
    pub stderr: String,
}

impl LiveCheck {
    /// Whether every query passed or was excused.
    pub fn passed(&self) -> bool {
        self.status.success() && !self.stdout.contains("FAIL ") && self.stdout.contains("PASS ")
    }

    /// The lines that are not `PASS` (failures, excused queries, the summary).
    pub fn not_passed(&self) -> String {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("PASS "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the live check of `dashboards` against the query API at `url` (Prometheus or
/// VictoriaMetrics), with the allow-list `allow` (`None`: nothing is excused) and Grafana
/// variables `vars` (`name=value`), bounded to 120 s, off the async workers.
pub async fn check_dashboards_live(
    url: &str,
    dashboards: &[PathBuf],
    allow: Option<&Path>,
    vars: &[String],
) -> anyhow::Result<LiveCheck> {
    let dir = tempfile::tempdir()?;
    let allow = match allow {
        Some(a) => a.to_path_buf(),
        None => {
            let empty = dir.path().join("allow.txt");
            std::fs::write(&empty, "# nothing is excused\n")?;
            empty
        }
    };
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg("python3")
        .arg(repo_root().join("scripts/lib/check_dashboards.py"))
        .arg("--live")
        .arg(url)
        .arg("--allow-list")
        .arg(&allow);
    for v in vars {
        cmd.arg("--var").arg(v);
    }
    cmd.args(dashboards).current_dir(repo_root());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .context("running scripts/lib/check_dashboards.py")?;
    drop(dir);
    Ok(LiveCheck {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
