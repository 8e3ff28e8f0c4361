//! A real Prometheus (Debian's `prometheus`) on 127.0.0.1 with a generated config.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::{require_program, Daemon};

/// A running Prometheus, stopped (and its TSDB deleted) on drop.
///
/// Started with `--web.enable-lifecycle` and `--rules.alert.resend-delay=1s`; the config file,
/// any extra files (rule files, certificates) and the TSDB live in one temporary folder, so
/// relative paths in the config (`rule_files: [node.rules.yml]`) resolve against it.
pub struct Prometheus {
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
}

impl Prometheus {
    /// Writes `config_yaml` and `files` (name relative to the config folder, contents) and
    /// starts Prometheus; returns once `/-/ready` answers.
    pub async fn start(config_yaml: &str, files: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with_args(config_yaml, files, &[]).await
    }

    /// [`Prometheus::start`] with extra command-line flags.
    pub async fn start_with_args(
        config_yaml: &str,
        files: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let bin = require_program("prometheus", "prom");
        let dir = tempfile::Builder::new()
            .prefix("hpcmon-e2e-prom-")
            .tempdir()?;
        for (name, text) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml)?;
        let log = dir.path().join("prometheus.log");
        let (daemon, port) = crate::start_on_free_port(&log, |port| {
            let mut cmd = Command::new(&bin);
            cmd.current_dir(dir.path())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
                .arg("--web.enable-lifecycle")
                .arg("--rules.alert.resend-delay=1s")
                .args(args);
            Daemon::spawn_logged("prometheus", cmd, &log)
        })
        .await?;
        Ok(Self {
            daemon,
            dir,
            port,
            client: crate::client(&Default::default())?,
        })
    }

    /// A config with one scrape job (interval and evaluation interval 1 s) and optional rule
    /// files; `extra` is appended to the job (indented YAML lines such as `scheme: https`).
    pub fn scrape_config(job: &str, target: &str) -> String {
        Self::config(&[(job, target, "")], &[])
    }

    /// A config with several jobs `(name, target, extra job lines)` and rule files.
    pub fn config(jobs: &[(&str, &str, &str)], rule_files: &[&str]) -> String {
        let mut s = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        if !rule_files.is_empty() {
            s.push_str("rule_files:\n");
            for r in rule_files {
                s.push_str(&format!("  - {r:?}\n"));
            }
        }
        s.push_str("scrape_configs:\n");
        for (job, target, extra) in jobs {
            s.push_str(&format!(
                "  - job_name: {job:?}\n    static_configs:\n      - targets: [{target:?}]\n"
            ));
            for line in extra.lines().filter(|l| !l.trim().is_empty()) {
                s.push_str("    ");
                s.push_str(line);
                s.push('\n');
            }
        }
        s
    }

    /// Every `rules/*.rules.yml` of the repository as `(file name, contents)`, sorted by name:
    /// for [`Prometheus::start`]'s `files` and [`Prometheus::config`]'s rule files.
    pub fn repo_rule_files() -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(crate::repo_root().join("rules"))
            .expect("rules/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).expect("rule file"),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder with the config, extra files, log and TSDB.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a file in [`Prometheus::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The process (log tail, signals).
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        api_get(&self.client, &self.url(), path, query).await
    }

    /// Instant query; returns `data.result` (a vector is an array of `{metric, value}`).
    pub async fn query(&self, promql: &str) -> anyhow::Result<Value> {
        Ok(self.api("/api/v1/query", &[("query", promql)]).await?["result"].clone())
    }

    /// Polls `promql` every 250 ms until `pred(result)` holds, at most `timeout`; returns the
    /// result that satisfied it, or an error with the last result and Prometheus' log tail.
    pub async fn wait_for(
        &self,
        promql: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        poll_query(
            &self.client,
            &self.url(),
            &self.daemon,
            promql,
            pred,
            timeout,
        )
        .await
    }

    /// `/api/v1/targets` `data.activeTargets`.
    pub async fn targets(&self) -> anyhow::Result<Value> {
        Ok(self.api("/api/v1/targets", &[("state", "active")]).await?["activeTargets"].clone())
    }

    /// `/api/v1/alerts` `data.alerts`.
    pub async fn alerts(&self) -> anyhow::Result<Value> {
        Ok(self.api("/api/v1/alerts", &[]).await?["alerts"].clone())
    }

    /// `/api/v1/rules` `data.groups`.
    pub async fn rules(&self) -> anyhow::Result<Value> {
        Ok(self.api("/api/v1/rules", &[]).await?["groups"].clone())
    }

    /// Waits until every active target has been scraped and is `up`; returns the targets.
    /// On timeout the error names each target's health and last error.
    pub async fn wait_targets_up(&self, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.targets().await?;
            let all_up = t
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["health"] == "up"));
            if all_up {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = t
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| format!("{} {} {}", x["scrapeUrl"], x["health"], x["lastError"]))
                    .collect();
                anyhow::bail!("targets not all up within {timeout:?}: {summary:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until an alert named `name` is in `state` (`pending` or `firing`); returns it.
    pub async fn wait_alert(
        &self,
        name: &str,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let alerts = self.alerts().await?;
            if let Some(a) = alerts
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["labels"]["alertname"] == name && a["state"] == state)
            {
                return Ok(a.clone());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("alert {name} not {state} within {timeout:?}; alerts: {alerts}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `POST /-/reload` (after changing files in [`Prometheus::dir`]).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let r = self
            .client
            .post(format!("{}/-/reload", self.url()))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "reload: HTTP {}", r.status());
        Ok(())
    }
}

/// The value of the first sample of an instant-vector (or scalar) result, if any.
pub fn first_value(result: &Value) -> Option<f64> {
    let v = match result {
        Value::Array(a) => &a.first()?["value"],
        Value::Object(_) => &result["value"],
        _ => return None,
    };
    // A scalar result is [ts, "v"] itself; a vector sample has "value": [ts, "v"].
    let pair = if v.is_array() { v } else { result };
    pair.get(1)?.as_str()?.parse().ok()
}

/// `GET base+path` on a Prometheus-compatible API (Prometheus, VictoriaMetrics); returns
/// `data`, or an error naming the URL, the HTTP status and the body.
pub(crate) async fn api_get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let url = format!("{base}{path}");
    let resp = client
        .get(&url)
        .query(query)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("GET {url}: HTTP {status}, body is not JSON"))?;
    if body["status"] != "success" {
        anyhow::bail!("GET {url} {query:?}: HTTP {status}: {body}");
    }
    Ok(body["data"].clone())
}

/// Polls the instant query `promql` on the API at `base` every 250 ms until `pred(result)`
/// holds, at most `timeout`; returns the result that satisfied it, or an error with the last
/// result and the tail of `server`'s log.
pub(crate) async fn poll_query(
    client: &reqwest::Client,
    base: &str,
    server: &Daemon,
    promql: &str,
    pred: impl Fn(&Value) -> bool,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match api_get(client, base, "/api/v1/query", &[("query", promql)]).await {
            Ok(d) if pred(&d["result"]) => return Ok(d["result"].clone()),
            Ok(d) => d["result"].clone(),
            Err(e) => Value::String(format!("{e:#}")),
        };
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{}: `{promql}` did not meet the condition within {timeout:?}; last result: {last}\n{}",
                server.name(),
                server.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_reads_vectors_and_scalars() {
        let v: Value = serde_json::json!([{"metric": {}, "value": [1.5, "2"]}]);
        assert_eq!(first_value(&v), Some(2.0));
        assert_eq!(first_value(&serde_json::json!([])), None);
        assert_eq!(first_value(&serde_json::json!([1.5, "3.25"])), Some(3.25));
    }

    #[test]
    fn config_has_jobs_and_rules() {
        let c = Prometheus::config(
            &[("node", "127.0.0.1:1", "scheme: https\nmetrics_path: /m")],
            &["a.yml"],
        );
        assert!(c.contains("rule_files:\n  - \"a.yml\"\n"), "{c}");
        assert!(c.contains("  - job_name: \"node\"\n"), "{c}");
        assert!(
            c.contains("\n    scheme: https\n    metrics_path: /m\n"),
            "{c}"
        );
    }
}
