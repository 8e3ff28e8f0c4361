//! The bridge's shared state, its routes, `/metrics` and the health endpoints.
//!
//! * [`crate::ingest`]: the webhook (admission control, parsing) and the batching writer.
//! * [`crate::api`]: the query API.
//! * [`crate::reconcile`], [`crate::retention`]: the background tasks.
//!
//! **Readiness** (`/-/ready`) proves the store can commit *now*: it commits a tiny write (the
//! `health` row) and answers 200 only when that commit — or any webhook batch committing
//! meanwhile — finishes within `--storage.probe-timeout`. One probe runs at a time, so a stalled
//! disk holds one probe, not one per request. Nothing here calls the filesystem on an async
//! worker: the SQLite file size for `/metrics` is read on a blocking thread, one at a time,
//! and given up on after a second.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, watch, Notify, OnceCell, Semaphore};

use crate::ingest::{self, Job};
use crate::metrics::Metrics;
use crate::storage::{Db, WriteConfig};

/// Reconciliation against Alertmanager.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// Alertmanager base URLs (`http://am:9093`); an episode is active if any of them has it.
    pub urls: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Settings of the running bridge.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    pub bearer_token: Option<String>,
    /// How long a webhook waits for its batch to commit before answering 503.
    pub storage_timeout: Duration,
    /// Deadline of an API query.
    pub query_timeout: Duration,
    /// Deadline of the readiness probe's commit.
    pub probe_timeout: Duration,
    /// A transaction still running after this long is abandoned (its connection is broken).
    pub write_backstop: Duration,
    pub batch_max_alerts: usize,
    /// Most webhook requests being read, parsed or stored at once.
    pub max_concurrent: usize,
    /// Most webhook body bytes held at once (queued for storage included).
    pub max_inflight_bytes: usize,
    /// How long a request may wait for a slot before 503 + Retry-After.
    pub admission_wait: Duration,
    /// Deadline for reading a webhook body.
    pub body_read_timeout: Duration,
    pub retention_resolved: Option<Duration>,
    pub retention_firing: Option<Duration>,
    pub retention_interval: Duration,
    pub reconcile: Option<ReconcileSettings>,
    pub write: WriteConfig,
    pub telemetry_path: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            bearer_token: None,
            storage_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(3),
            write_backstop: Duration::from_secs(100),
            batch_max_alerts: 5000,
            max_concurrent: 8,
            max_inflight_bytes: 24 << 20,
            admission_wait: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(60),
            retention_resolved: None,
            retention_firing: None,
            retention_interval: Duration::from_secs(600),
            reconcile: None,
            write: WriteConfig::default(),
            telemetry_path: "/metrics".into(),
        }
    }
}

/// Webhook admission: request slots and body bytes (in KiB permits).
pub(crate) struct Admission {
    pub requests: Arc<Semaphore>,
    pub kib: Arc<Semaphore>,
}

type ProbeResult = Option<Result<(), String>>;

/// What readiness and `/metrics` know about the store.
#[derive(Default)]
pub(crate) struct Health {
    /// Successful commits (webhook batches and probes).
    pub commits: AtomicU64,
    pub commit_notify: Notify,
    /// When the running write transaction started (ms), 0 when the writer is idle.
    pub busy_since: AtomicI64,
    /// The probe in flight or last finished.
    probe: Mutex<Option<watch::Receiver<ProbeResult>>>,
    /// A SQLite size read is running on a blocking thread.
    size_running: Arc<AtomicBool>,
    size_bytes: Arc<AtomicI64>,
}

/// Shared state of the handlers.
pub struct AppState {
    pub settings: Settings,
    pub metrics: Metrics,
    db: OnceCell<Db>,
    writer: OnceCell<mpsc::Sender<Job>>,
    pub(crate) admission: Admission,
    pub(crate) health: Health,
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl AppState {
    /// State with no storage yet (see [`AppState::attach`]).
    pub fn new(settings: Settings, backend: &str) -> Arc<Self> {
        let kib = settings.max_inflight_bytes.div_ceil(1024).max(1);
        Arc::new(Self {
            admission: Admission {
                requests: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
                kib: Arc::new(Semaphore::new(kib)),
            },
            settings,
            metrics: Metrics::new(env!("CARGO_PKG_VERSION"), backend),
            db: OnceCell::new(),
            writer: OnceCell::new(),
            health: Health::default(),
        })
    }

    /// Attaches opened storage and starts the writer, retention and reconciliation tasks.
    pub fn attach(self: &Arc<Self>, db: Db) {
        let (tx, rx) = mpsc::channel(4096);
        let _ = self.db.set(db.clone());
        let _ = self.writer.set(tx);
        // The writer runs on a thread of its own: on the shared workers it would wait behind
        // requests being parsed each time a statement returns, a few times per batch.
        let (st, wdb) = (self.clone(), db.clone());
        std::thread::Builder::new()
            .name("alert-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(ingest::writer_task(st, wdb, rx)),
                    Err(e) => tracing::error!(error = %e, "cannot start the writer's runtime"),
                }
            })
            .expect("spawning the writer thread");
        if db.dialect() == crate::storage::Dialect::Sqlite {
            tokio::spawn(crate::checkpoint::checkpoint_task(self.clone(), db.clone()));
        }
        if self.settings.retention_resolved.is_some() || self.settings.retention_firing.is_some() {
            tokio::spawn(crate::retention::retention_task(self.clone(), db.clone()));
        }
        if let Some(r) = &self.settings.reconcile {
            tokio::spawn(crate::reconcile::reconcile_task(
                self.clone(),
                db,
                r.clone(),
            ));
        }
    }

    pub(crate) fn db(&self) -> Option<&Db> {
        self.db.get()
    }

    pub(crate) fn writer(&self) -> Option<&mpsc::Sender<Job>> {
        self.writer.get()
    }

    /// Records a successful commit (readiness waits for one).
    pub(crate) fn committed(&self) {
        self.health.commits.fetch_add(1, Ordering::SeqCst);
        self.health.commit_notify.notify_waiters();
    }

    /// The probe in flight, or a new one.
    fn probe(&self, db: &Db) -> watch::Receiver<ProbeResult> {
        let mut slot = self.health.probe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = slot.as_ref() {
            if rx.borrow().is_none() {
                return rx.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        let db = db.clone();
        tokio::spawn(async move {
            let r = db.probe(now_ms()).await.map_err(|e| e.to_string());
            let _ = tx.send(Some(r));
        });
        *slot = Some(rx.clone());
        rx
    }

    /// Whether the store can commit now: `Ok` or why not. Bounded by the probe timeout.
    pub async fn check_storage(&self) -> Result<(), String> {
        let Some(db) = self.db() else {
            return Err("storage not connected yet".into());
        };
        let busy = self.health.busy_since.load(Ordering::SeqCst);
        let stuck = (self.settings.storage_timeout * 2).max(Duration::from_secs(20));
        if busy != 0 && now_ms() - busy > stuck.as_millis() as i64 {
            return Err(format!(
                "a write transaction has been running for {} s (stalled storage?)",
                (now_ms() - busy) / 1000
            ));
        }
        let before = self.health.commits.load(Ordering::SeqCst);
        let mut rx = self.probe(db);
        let probe = async {
            match rx.wait_for(|v| v.is_some()).await {
                Ok(v) => v.clone().unwrap_or(Ok(())),
                Err(_) => Err("probe task ended".into()),
            }
        };
        let commit = async {
            loop {
                let n = self.health.commit_notify.notified();
                if self.health.commits.load(Ordering::SeqCst) > before {
                    return;
                }
                n.await;
            }
        };
        let t = self.settings.probe_timeout;
        let r = tokio::time::timeout(t, async {
            tokio::select! {
                r = probe => r,
                () = commit => Ok(()),
            }
        })
        .await;
        match r {
            Ok(Ok(())) => {
                self.committed();
                Ok(())
            }
            Ok(Err(e)) => Err(format!("storage: {e}")),
            Err(_) => Err(format!("storage did not commit within {t:?}")),
        }
    }

    /// SQLite file size, read on a blocking thread (one at a time, waited for up to 1 s).
    async fn sqlite_size(&self, path: &std::path::Path) -> Option<i64> {
        let h = &self.health;
        if h.size_running.swap(true, Ordering::SeqCst) {
            return None; // A read is stuck on the disk: do not start another.
        }
        let (running, size, path) = (
            h.size_running.clone(),
            h.size_bytes.clone(),
            path.to_path_buf(),
        );
        let task = tokio::task::spawn_blocking(move || {
            let n = crate::storage::sqlite_size_blocking(&path);
            size.store(n, Ordering::SeqCst);
            running.store(false, Ordering::SeqCst);
            n
        });
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

pub(crate) fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

async fn metrics_handler(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> Response {
    let ok = st.check_storage().await.is_ok();
    st.metrics.storage_up.set(ok as i64);
    if let Some(db) = st.db() {
        let t = Duration::from_secs(2);
        let size = match db.sqlite_path() {
            Some(p) => Ok(st.sqlite_size(p).await),
            None => tokio::time::timeout(t, db.size_bytes())
                .await
                .map_err(|_| ())
                .and_then(|r| r.map_err(|_| ())),
        };
        let firing = tokio::time::timeout(t, db.firing())
            .await
            .map_err(|_| ())
            .and_then(|r| r.map_err(|_| ()));
        match size {
            Ok(Some(n)) => {
                st.metrics.storage_size.set(n);
            }
            Ok(None) => {}
            Err(()) => st.metrics.storage_error("metrics"),
        }
        match firing {
            Ok(n) => {
                st.metrics.episodes_firing.set(n);
            }
            Err(()) => st.metrics.storage_error("metrics"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

async fn ready(axum::extract::State(st): axum::extract::State<Arc<AppState>>) -> Response {
    match st.check_storage().await {
        Ok(()) => text(StatusCode::OK, "Ready"),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The routes behind the web config's basic auth (reads), and the webhook route. With a
/// bearer token, the webhook checks the token itself and is served without basic auth, so
/// that reading (basic auth users) and writing (the token) have separate credentials.
pub fn routers(st: Arc<AppState>) -> (Router, Router) {
    let webhook_router = Router::new()
        .route("/webhook", post(ingest::webhook))
        .with_state(st.clone());
    let mut read = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/v1/alerts", get(crate::api::list_alerts))
        .route("/api/v1/alerts/{id}", get(crate::api::get_alert))
        .route("/api/v1/stats", get(crate::api::stats))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route(&st.settings.telemetry_path.clone(), get(metrics_handler))
        .with_state(st.clone());
    read = read.fallback(|| async { text(StatusCode::NOT_FOUND, "not found") });
    if st.settings.bearer_token.is_some() {
        (read, webhook_router)
    } else {
        (read.merge(webhook_router), Router::new())
    }
}
