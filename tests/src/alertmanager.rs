//! A real Alertmanager (Debian's `prometheus-alertmanager`) on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::{require_program, Daemon};

/// A running Alertmanager with gossip off (`--cluster.listen-address=`), stopped on drop.
pub struct Alertmanager {
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
}

impl Alertmanager {
    /// Writes `config_yaml` and starts Alertmanager; returns once `/-/ready` answers.
    pub async fn start(config_yaml: &str) -> anyhow::Result<Self> {
        let bin = require_program("prometheus-alertmanager", "prom");
        let dir = tempfile::Builder::new()
            .prefix("hpcmon-e2e-am-")
            .tempdir()?;
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_yaml)?;
        let log = dir.path().join("alertmanager.log");
        let (daemon, port) = crate::start_on_free_port(&log, |port| {
            let mut cmd = Command::new(&bin);
            cmd.current_dir(dir.path())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
                // Gossip off: its default listener is 0.0.0.0:9094.
                .arg("--cluster.listen-address=");
            Daemon::spawn_logged("alertmanager", cmd, &log)
        })
        .await?;
        Ok(Self {
            daemon,
            dir,
            port,
            client: crate::client(&Default::default())?,
        })
    }

    /// A config routing everything to one webhook (`send_resolved`, group_wait 1s,
    /// group_interval 5s, repeat_interval 1h, grouped by alertname).
    pub fn webhook_config(url: &str) -> String {
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 5s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {url:?}\n        send_resolved: true\n"
        )
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as a Prometheus `alertmanagers` target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The folder with the config, log and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process (log tail, signals).
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// `POST /api/v2/alerts` with an array of alerts (see [`alert`]).
    pub async fn post_alerts(&self, alerts: &Value) -> anyhow::Result<()> {
        let url = format!("{}/api/v2/alerts", self.url());
        let r = self
            .client
            .post(&url)
            .json(alerts)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            anyhow::bail!("POST {url}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds.
    pub async fn alerts(&self) -> anyhow::Result<Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        Ok(self
            .client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// One alert for [`Alertmanager::post_alerts`]: firing from now, or resolved (ends now)
/// when `resolved` is true.
pub fn alert(labels: &[(&str, &str)], annotations: &[(&str, &str)], resolved: bool) -> Value {
    let map = |kv: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        kv.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
    };
    let now = chrono::Utc::now();
    let mut a = json!({
        "labels": map(labels),
        "annotations": map(annotations),
        "startsAt": (now - chrono::Duration::seconds(if resolved { 60 } else { 0 })).to_rfc3339(),
    });
    if resolved {
        a["endsAt"] = json!(now.to_rfc3339());
    }
    a
}
