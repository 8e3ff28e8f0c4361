//! The multi-target endpoint `/ipmi?target=HOST[:PORT]&module=NAME` (ipmi_exporter's
//! pattern: Prometheus relabels each BMC address into `target`) and config reloads
//! (`POST /-/reload`, SIGHUP).
//!
//! A target's collectors (the module's `collectors`) run concurrently, each under the
//! scrape's deadline (`X-Prometheus-Scrape-Timeout-Seconds` minus a margin, capped by
//! `--scrape.timeout` and the module's `timeout`). Each reports `ipmi_up{collector}`,
//! `ipmi_scrape_collector_success{collector}` and
//! `ipmi_scrape_collector_duration_seconds{collector}`; a failure is logged with the target,
//! module and FreeIPMI's error (which never contains the password: it only travels on
//! FreeIPMI's stdin).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hpcmon_kit::collector::{add_outcome_metrics, Outcome};
use hpcmon_kit::server::{metrics_response, scrape_timeout};
use hpcmon_kit::MetricSet;

use crate::collector::run_bmc;
use crate::config::{Config, Module};
use crate::freeipmi::{valid_host, Runtime, Target};

/// The current configuration and where it came from.
#[derive(Debug)]
pub struct ConfigHolder {
    path: Option<PathBuf>,
    current: RwLock<Arc<Config>>,
}

impl ConfigHolder {
    /// Loads `path` (or an empty configuration without one).
    pub fn load(path: Option<PathBuf>) -> anyhow::Result<Self> {
        let cfg = match &path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        warn_unfenced(&cfg);
        Ok(Self {
            path,
            current: RwLock::new(Arc::new(cfg)),
        })
    }

    /// A holder for a fixed configuration (tests).
    pub fn fixed(cfg: Config) -> Self {
        Self {
            path: None,
            current: RwLock::new(Arc::new(cfg)),
        }
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file; on error the old configuration stays in force.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(p) = &self.path else {
            return Ok(());
        };
        let cfg = Config::load(p)?;
        warn_unfenced(&cfg);
        let n = cfg.modules.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        tracing::info!(path = %p.display(), modules = n, "configuration reloaded");
        Ok(())
    }

    /// The module for `/metrics`: the config's `local`, else the built-in default.
    pub fn local_module(&self) -> Arc<Module> {
        Arc::new(
            self.current()
                .modules
                .get("local")
                .cloned()
                .unwrap_or_else(Module::local_default),
        )
    }
}

/// Logs one warning per module that has credentials but no `targets` allow-list: `/ipmi`
/// would hand them to any host a client names (a fake BMC learns enough from the RAKP
/// exchange to crack the password offline).
pub fn warn_unfenced(cfg: &Config) {
    crate::room::warn_unfenced(cfg);
    for m in cfg.modules.values() {
        if m.targets.is_none() && m.has_credentials() {
            tracing::warn!(
                module = %m.name,
                "module has credentials but no targets allow-list: /ipmi sends them to any target a client names; list its BMCs (hosts, HOST:PORT, CIDRs) under `targets:`"
            );
        }
    }
}

/// What the `/ipmi` handler needs.
pub struct RemoteState {
    /// FreeIPMI runtime (semaphore, busy set, caches).
    pub rt: Arc<Runtime>,
    /// Configuration.
    pub config: Arc<ConfigHolder>,
    /// `--scrape.timeout`.
    pub max_timeout: Duration,
}

/// Scrapes `target` with `module`'s collectors until `timeout`; returns the metrics with
/// `ipmi_up` and the scrape self-metrics, and the outcomes.
pub async fn scrape_target(
    rt: Arc<Runtime>,
    target: Target,
    timeout: Duration,
) -> (MetricSet, Vec<Outcome>) {
    let deadline = Instant::now() + timeout;
    let mut tasks = Vec::new();
    for name in target.module.collectors.clone() {
        let rt = rt.clone();
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let r = run_bmc(&rt, &t, &name, deadline).await;
            (name, start.elapsed(), r)
        }));
    }
    let mut merged = MetricSet::new();
    let mut outcomes = Vec::new();
    for task in tasks {
        // Every FreeIPMI call ends by the deadline (killed there), so this join is bounded.
        let (name, duration, r) = match task.await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "collector task failed");
                continue;
            }
        };
        match r {
            Ok(set) => {
                merged.extend(set);
                outcomes.push(Outcome {
                    name,
                    success: true,
                    duration,
                    error: None,
                });
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(target = target.label(), module = %target.module.name, collector = %name, duration_seconds = duration.as_secs_f64(), %error, "collector failed");
                outcomes.push(Outcome {
                    name,
                    success: false,
                    duration,
                    error: Some(error),
                });
            }
        }
    }
    add_up_metrics(&outcomes, &mut merged);
    (merged, outcomes)
}

/// Adds `ipmi_up{collector}` and `ipmi_scrape_collector_{success,duration_seconds}`.
pub fn add_up_metrics(outcomes: &[Outcome], out: &mut MetricSet) {
    let up = out.gauge(
        "ipmi_up",
        "'1' if a scrape of the IPMI device was successful, '0' otherwise.",
    );
    for o in outcomes {
        up.sample(&[("collector", &o.name)], if o.success { 1.0 } else { 0.0 });
    }
    add_outcome_metrics("ipmi", outcomes, out);
}

async fn ipmi_handler(
    State(st): State<Arc<RemoteState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(host) = q.get("target") else {
        return (StatusCode::BAD_REQUEST, "'target' parameter is missing\n").into_response();
    };
    if !valid_host(host) {
        return (
            StatusCode::BAD_REQUEST,
            "'target' must be HOST or HOST:PORT (letters, digits, '.', '-', '_', ':')\n",
        )
            .into_response();
    }
    let module_name = q.get("module").map_or("default", String::as_str);
    let cfg = st.config.current();
    let Some(module) = cfg.modules.get(module_name) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("unknown module {module_name:?}\n"),
        )
            .into_response();
    };
    if !module.allows_target(host) {
        tracing::warn!(target = %host, module = module_name, "target refused: not in the module's targets allow-list");
        return (
            StatusCode::FORBIDDEN,
            format!("target {host:?} is not in module {module_name:?}'s targets allow-list\n"),
        )
            .into_response();
    }
    let timeout = scrape_timeout(&headers, st.max_timeout).min(module.timeout);
    let target = Target {
        host: Some(host.clone()),
        module: Arc::new(module.clone()),
    };
    let (set, _) = scrape_target(st.rt.clone(), target, timeout).await;
    metrics_response(set, &headers)
}

/// Reloads on a blocking thread: reading the files and deriving SNMPv3 keys (a megabyte of
/// hashing per passphrase) must not hold an async worker.
async fn reload_blocking(config: Arc<ConfigHolder>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || config.reload())
        .await
        .map_err(|e| anyhow::anyhow!("reload task failed: {e}"))?
}

async fn reload_handler(State(st): State<Arc<RemoteState>>) -> Response {
    match reload_blocking(st.config.clone()).await {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "configuration reload failed; keeping the old one");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reload failed: {e:#}\n"),
            )
                .into_response()
        }
    }
}

/// The extra routes: `GET /ipmi`, `POST /-/reload`.
pub fn routes(st: Arc<RemoteState>) -> Router {
    Router::new()
        .route("/ipmi", get(ipmi_handler))
        .route("/-/reload", post(reload_handler))
        .with_state(st)
}

/// Reloads the configuration on every SIGHUP (runs until the process ends).
pub fn spawn_sighup_reloader(config: Arc<ConfigHolder>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install SIGHUP handler; reload with POST /-/reload");
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = reload_blocking(config.clone()).await {
                tracing::error!(error = %format!("{e:#}"), "configuration reload failed; keeping the old one");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn up_and_scrape_metrics_golden() {
        let o = |name: &str, success: bool, ms: u64| Outcome {
            name: name.into(),
            success,
            duration: Duration::from_millis(ms),
            error: (!success).then(|| "x".into()),
        };
        let mut out = MetricSet::new();
        add_up_metrics(
            &[
                o("ipmi", true, 25),
                o("dcmi", false, 12),
                o("sel", true, 40),
            ],
            &mut out,
        );
        golden("up.prom", &text(out));
    }

    #[tokio::test]
    async fn missing_tools_fail_each_collector_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Arc::new(Runtime::new(
            2,
            dir.path().join("c"),
            dir.path().join("no-such-dir"),
        ));
        let mut m = Module::local_default();
        m.collectors = vec!["ipmi".into(), "sel".into(), "chassis".into()];
        let t = Target {
            host: Some("127.0.0.1:1".into()),
            module: Arc::new(m),
        };
        let (set, outcomes) = scrape_target(rt, t, Duration::from_secs(2)).await;
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes
            .iter()
            .all(|o| !o.success && o.error.as_deref().unwrap().contains("cannot run")));
        let t = text(set);
        assert!(t.contains("ipmi_up{collector=\"sel\"} 0"), "{t}");
    }
}
