//! A real single-node VictoriaMetrics (Debian's `victoria-metrics`) on 127.0.0.1: the
//! long-term store behind Prometheus' `remote_write`, queried through its Prometheus-compatible
//! API.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::prometheus::{api_get, poll_query};
use crate::{require_program, Daemon};

/// A running VictoriaMetrics; stopped on drop (its data lives in the folder given to
/// [`VictoriaMetrics::start`]).
pub struct VictoriaMetrics {
    daemon: Daemon,
    port: u16,
    client: reqwest::Client,
}

impl VictoriaMetrics {
    /// Starts it with its data in `dir/vm` and its log in `dir/vm.log`; returns once
    /// `/-/ready` answers. Samples are queryable 1 s after they arrive
    /// (`-search.latencyOffset=1s`, default 30 s) and query results are not cached, so a test
    /// sees what Prometheus just wrote.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = require_program("victoria-metrics", "vm");
        let log = dir.join("vm.log");
        let data = dir.join("vm");
        let (daemon, port) = crate::start_on_free_port(&log, |port| {
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-storageDataPath={}", data.display()))
                .arg("-retentionPeriod=1d")
                .arg("-search.latencyOffset=1s")
                .arg("-search.disableCache");
            Daemon::spawn_logged("victoria-metrics", cmd, &log)
        })
        .await
        .context("victoria-metrics did not start")?;
        Ok(Self {
            daemon,
            port,
            client: crate::client(&Default::default())?,
        })
    }

    /// Base URL of the Prometheus-compatible query API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `remote_write` section of a Prometheus config sending everything here, flushed
    /// every second.
    pub fn remote_write_config(&self) -> String {
        format!(
            "remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            self.url()
        )
    }

    /// The process (log tail).
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Instant query; returns `data.result`.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Value> {
        let data = api_get(
            &self.client,
            &self.url(),
            "/api/v1/query",
            &[("query", promql)],
        )
        .await?;
        Ok(data["result"].clone())
    }

    /// Polls `promql` every 250 ms until `pred(result)` holds, at most `timeout`.
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
}
