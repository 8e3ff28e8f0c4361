//! The HTTP side: webhook ingest through one batching writer task, the query API, the web
//! page, `/metrics` and the health endpoints.
//!
//! Ingest path: the handler parses and validates the body, hands the notification to the
//! writer task and waits for the commit of the batch that contains it. The writer takes
//! whatever notifications are queued (up to `batch_max_alerts` alerts), stores them in one
//! transaction, commits, and then answers every waiting request. If a batch fails, each of
//! its notifications is retried alone so that one cannot fail the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot, OnceCell};

use crate::metrics::Metrics;
use crate::payload::{self, Status};
use crate::storage::{self, Db, Episode, Incoming, PairCache, Query, QueryError, SortKey};

/// Settings of the running bridge.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    pub bearer_token: Option<String>,
    pub storage_timeout: Duration,
    pub batch_max_alerts: usize,
    pub retention_resolved: Option<Duration>,
    pub retention_firing: Option<Duration>,
    pub retention_interval: Duration,
    pub telemetry_path: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            bearer_token: None,
            storage_timeout: Duration::from_secs(10),
            batch_max_alerts: 5000,
            retention_resolved: None,
            retention_firing: None,
            retention_interval: Duration::from_secs(600),
            telemetry_path: "/metrics".into(),
        }
    }
}

type Reply = oneshot::Sender<Result<storage::Stored, String>>;

struct Job {
    incoming: Incoming,
    reply: Reply,
}

/// Shared state of the handlers.
pub struct AppState {
    pub settings: Settings,
    pub metrics: Metrics,
    db: OnceCell<Db>,
    writer: OnceCell<mpsc::Sender<Job>>,
}

impl AppState {
    /// State with no storage yet (see [`AppState::attach`]).
    pub fn new(settings: Settings, backend: &str) -> Arc<Self> {
        Arc::new(Self {
            settings,
            metrics: Metrics::new(env!("CARGO_PKG_VERSION"), backend),
            db: OnceCell::new(),
            writer: OnceCell::new(),
        })
    }

    /// Attaches opened storage and starts the writer and retention tasks.
    pub fn attach(self: &Arc<Self>, db: Db) {
        let (tx, rx) = mpsc::channel(1024);
        let _ = self.db.set(db.clone());
        let _ = self.writer.set(tx);
        tokio::spawn(writer_task(self.clone(), db.clone(), rx));
        if self.settings.retention_resolved.is_some() || self.settings.retention_firing.is_some() {
            tokio::spawn(retention_task(self.clone(), db));
        }
    }

    fn db(&self) -> Option<&Db> {
        self.db.get()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn writer_task(st: Arc<AppState>, db: Db, mut rx: mpsc::Receiver<Job>) {
    let mut cache = PairCache::default();
    while let Some(first) = rx.recv().await {
        let mut alerts = first.incoming.notification.alerts.len();
        let mut batch = vec![first];
        while alerts < st.settings.batch_max_alerts {
            match rx.try_recv() {
                Ok(j) => {
                    alerts += j.incoming.notification.alerts.len();
                    batch.push(j);
                }
                Err(_) => break,
            }
        }
        let incs: Vec<Incoming> = batch.iter().map(|j| j.incoming.clone()).collect();
        let timeout = st.settings.storage_timeout;
        let r = tokio::time::timeout(timeout, storage::store_batch(&db, &incs, &mut cache)).await;
        match r {
            Ok(Ok(s)) => {
                st.metrics.batch_notifications.observe(batch.len() as f64);
                st.metrics.episodes_created.inc_by(s.new_episodes);
                st.metrics.episode_changes.inc_by(s.changes);
                for j in batch {
                    let n = j.incoming.notification.alerts.len() as u64;
                    let _ = j.reply.send(Ok(storage::Stored {
                        alerts: n,
                        ..Default::default()
                    }));
                }
            }
            // A statement error might come from one notification's data: retry one by one so
            // that it cannot fail the others. (Connection errors and timeouts would only repeat
            // for each notification: those fail the whole batch at once, below.)
            Ok(Err(sqlx::Error::Database(_))) if batch.len() > 1 => {
                for j in batch {
                    let one = [j.incoming];
                    let r =
                        tokio::time::timeout(timeout, storage::store_batch(&db, &one, &mut cache))
                            .await;
                    let r = match r {
                        Ok(Ok(s)) => {
                            st.metrics.batch_notifications.observe(1.0);
                            st.metrics.episodes_created.inc_by(s.new_episodes);
                            st.metrics.episode_changes.inc_by(s.changes);
                            Ok(s)
                        }
                        Ok(Err(e)) => {
                            st.metrics.storage_error("insert");
                            Err(e.to_string())
                        }
                        Err(_) => {
                            st.metrics.storage_error("insert");
                            Err(format!("storage did not commit within {timeout:?}"))
                        }
                    };
                    let _ = j.reply.send(r);
                }
            }
            Ok(Err(e)) => {
                st.metrics.storage_error("insert");
                tracing::warn!(error = %e, notifications = batch.len(), "storing notifications failed");
                for j in batch {
                    let _ = j.reply.send(Err(e.to_string()));
                }
            }
            Err(_) => {
                st.metrics.storage_error("insert");
                tracing::warn!("storing notifications timed out");
                for j in batch {
                    let _ = j
                        .reply
                        .send(Err(format!("storage did not commit within {timeout:?}")));
                }
            }
        }
    }
}

async fn retention_task(st: Arc<AppState>, db: Db) {
    let mut tick = tokio::time::interval(st.settings.retention_interval);
    loop {
        tick.tick().await;
        let now = now_ms();
        let rb = st
            .settings
            .retention_resolved
            .map(|d| now - d.as_millis() as i64);
        let fb = st
            .settings
            .retention_firing
            .map(|d| now - d.as_millis() as i64);
        let mut total = 0u64;
        loop {
            match storage::retention_chunk(&db, rb, fb, 500).await {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    st.metrics.retention_deleted.inc_by(n);
                    // Let queued ingest batches in between chunks.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    st.metrics.storage_error("retention");
                    tracing::warn!(error = %e, "retention failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, "retention deleted old episodes");
        }
    }
}

fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

fn bearer_ok(headers: &HeaderMap, want: &str) -> bool {
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    // Constant time in the token's length.
    let (a, b) = (got.trim().as_bytes(), want.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in b.iter().enumerate() {
        diff |= (*x ^ a.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

async fn webhook(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let t0 = Instant::now();
    let m = &st.metrics;
    m.notifications_received.inc();
    if let Some(tok) = &st.settings.bearer_token {
        if !bearer_ok(req.headers(), tok) {
            m.reject("unauthorized", 0);
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    let limit = st.settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        m.reject("too_large", 0);
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over --webhook.max-body-bytes={limit}"),
        );
    }
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            m.reject("too_large", 0);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over --webhook.max-body-bytes={limit} (or unreadable)"),
            );
        }
    };
    let n = match payload::parse(&body) {
        Ok(n) => n,
        Err(e) => {
            m.reject(e.reason(), 0);
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let count = n.alerts.len() as u64;
    m.alerts_received.inc_by(count);
    m.alerts_truncated.inc_by(n.truncated_alerts);
    if count == 0 {
        m.notifications_stored.inc();
        return text(StatusCode::OK, "no alerts");
    }
    let Some(writer) = st.writer.get() else {
        m.reject("storage_error", count);
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage is not ready yet");
    };
    let (tx, rx) = oneshot::channel();
    let job = Job {
        incoming: Incoming {
            notification: n,
            received_at: now_ms(),
        },
        reply: tx,
    };
    if writer.send(job).await.is_err() {
        m.reject("storage_error", count);
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage writer stopped");
    }
    let r = rx.await;
    m.ingest_duration.observe(t0.elapsed().as_secs_f64());
    match r {
        Ok(Ok(_)) => {
            m.notifications_stored.inc();
            m.alerts_stored.inc_by(count);
            text(StatusCode::OK, format!("stored {count} alerts"))
        }
        Ok(Err(e)) => {
            m.reject("storage_error", count);
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage failed, retry later: {e}"),
            )
        }
        Err(_) => {
            m.reject("storage_error", count);
            text(StatusCode::SERVICE_UNAVAILABLE, "storage writer stopped")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Query API

/// Formats ms since the epoch as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses a time parameter: RFC 3339 or Unix seconds (fractions allowed).
pub fn parse_time_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.abs() < 1e13 {
            return Ok((f * 1000.0).round() as i64);
        }
    }
    match payload::parse_time(s) {
        Ok(Some(ms)) => Ok(ms),
        _ => Err(format!(
            "invalid time {s:?}: want RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds"
        )),
    }
}

/// Output format of the list endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// Parses the query string of `/api/v1/alerts` (and `/api/v1/stats`).
pub fn parse_query(raw: &str, headers: &HeaderMap) -> Result<(Query, Format), String> {
    let mut q = Query::default();
    let mut format = if headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
    {
        Format::Csv
    } else {
        Format::Json
    };
    let mut page: Option<i64> = None;
    let split = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let v = v.as_ref();
        match k.as_ref() {
            "from" | "start" if !v.is_empty() => q.from = Some(parse_time_param(v)?),
            "to" | "end" if !v.is_empty() => q.to = Some(parse_time_param(v)?),
            "status" if !v.is_empty() => {
                q.status = Some(match v {
                    "firing" => Status::Firing,
                    "resolved" => Status::Resolved,
                    _ => return Err(format!("status {v:?}: want firing or resolved")),
                })
            }
            "severity" => q.severity.extend(split(v)),
            "alertname" => q.alertname.extend(split(v)),
            "fingerprint" if !v.is_empty() => q.fingerprint = Some(v.to_string()),
            "q" | "text" if !v.is_empty() => q.text = Some(v.to_string()),
            "match[]" | "matcher" | "filter" if !v.trim().is_empty() => {
                q.matchers.extend(crate::matcher::parse(v)?)
            }
            "sort" if !v.is_empty() => {
                let (desc, key) = match v.strip_prefix('-') {
                    Some(k) => (true, k),
                    None => (false, v.strip_prefix('+').unwrap_or(v)),
                };
                q.descending = desc;
                q.sort = match key {
                    "starts_at" | "startsAt" => SortKey::StartsAt,
                    "last_seen" | "lastSeen" => SortKey::LastSeen,
                    "id" => SortKey::Id,
                    _ => {
                        return Err(format!(
                            "sort {v:?}: want starts_at, last_seen or id, '-' for descending"
                        ))
                    }
                };
            }
            "limit" if !v.is_empty() => {
                q.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| format!("limit {v:?}: want 1..10000"))?
            }
            "page" if !v.is_empty() => {
                page = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| format!("page {v:?}: want a number from 1"))?,
                )
            }
            "cursor" if !v.is_empty() => {
                let (a, b) = v
                    .split_once('_')
                    .ok_or_else(|| format!("cursor {v:?} is not one this API returned"))?;
                q.cursor = Some((
                    a.parse().map_err(|_| format!("bad cursor {v:?}"))?,
                    b.parse().map_err(|_| format!("bad cursor {v:?}"))?,
                ));
            }
            "format" => {
                format = match v {
                    "json" | "" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return Err(format!("format {v:?}: want json or csv")),
                }
            }
            _ => {}
        }
    }
    if let Some(p) = page {
        q.offset = (p - 1) * q.limit;
    }
    if let (Some(f), Some(t)) = (q.from, q.to) {
        if f > t {
            return Err("from is after to".into());
        }
    }
    Ok((q, format))
}

fn json_obj(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

fn episode_json(e: &Episode) -> serde_json::Value {
    let dur = e.ends_at.unwrap_or_else(now_ms) - e.starts_at;
    serde_json::json!({
        "id": e.id,
        "fingerprint": e.fingerprint,
        "status": e.status,
        "startsAt": rfc3339(e.starts_at),
        "endsAt": e.ends_at.map(rfc3339),
        "durationSeconds": dur as f64 / 1000.0,
        "alertname": e.alertname,
        "severity": e.severity,
        "instance": e.instance,
        "labels": json_obj(&e.labels),
        "annotations": json_obj(&e.annotations),
        "generatorURL": e.generator_url,
        "receiver": e.receiver,
        "groupKey": e.group_key,
        "firstSeen": rfc3339(e.first_seen),
        "lastSeen": rfc3339(e.last_seen),
        "notifications": e.notifications,
    })
}

fn csv_cell(s: &str) -> String {
    // Cells a spreadsheet would run as a formula get a leading apostrophe.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn episodes_csv(rows: &[Episode]) -> String {
    let mut out = String::from(
        "id,status,severity,alertname,instance,fingerprint,starts_at,ends_at,duration_seconds,summary,description,labels,generator_url,notifications\n",
    );
    for e in rows {
        let ann = json_obj(&e.annotations);
        let a = |k: &str| {
            ann.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let dur = e.ends_at.unwrap_or_else(now_ms) - e.starts_at;
        let cells = [
            e.id.to_string(),
            csv_cell(&e.status),
            csv_cell(&e.severity),
            csv_cell(&e.alertname),
            csv_cell(&e.instance),
            csv_cell(&e.fingerprint),
            rfc3339(e.starts_at),
            e.ends_at.map(rfc3339).unwrap_or_default(),
            format!("{:.3}", dur as f64 / 1000.0),
            csv_cell(&a("summary")),
            csv_cell(&a("description")),
            csv_cell(&e.labels),
            csv_cell(&e.generator_url),
            e.notifications.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn json_response(code: StatusCode, v: serde_json::Value) -> Response {
    (code, axum::Json(v)).into_response()
}

fn api_error(code: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    json_response(
        code,
        serde_json::json!({"status": "error", "errorType": kind, "error": msg.into()}),
    )
}

fn query_error(st: &AppState, e: QueryError) -> Response {
    match e {
        QueryError::Bad(m) => api_error(StatusCode::BAD_REQUEST, "bad_data", m),
        QueryError::Storage(e) => {
            st.metrics.storage_error("query");
            tracing::warn!(error = %e, "query failed");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        }
    }
}

async fn list_alerts(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (q, format) = match parse_query(raw.as_deref().unwrap_or(""), &headers) {
        Ok(x) => x,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "bad_data", e),
    };
    let Some(db) = st.db() else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is not ready",
        );
    };
    let (rows, more) = match storage::list(db, &q).await {
        Ok(x) => x,
        Err(e) => return query_error(&st, e),
    };
    if format == Format::Csv {
        return (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            episodes_csv(&rows),
        )
            .into_response();
    }
    let next = if more {
        rows.last().map(|e| format!("{}_{}", q.sort.of(e), e.id))
    } else {
        None
    };
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "status": "success",
            "data": rows.iter().map(episode_json).collect::<Vec<_>>(),
            "more": more,
            "nextCursor": next,
        }),
    )
}

async fn get_alert(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return api_error(StatusCode::BAD_REQUEST, "bad_data", "id must be a number");
    };
    let Some(db) = st.db() else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is not ready",
        );
    };
    match storage::get(db, id).await {
        Ok(Some((e, hist))) => {
            let mut v = episode_json(&e);
            v["history"] = hist
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "receivedAt": rfc3339(h.received_at),
                        "status": h.status,
                        "endsAt": h.ends_at.map(rfc3339),
                        "annotations": json_obj(&h.annotations),
                        "receiver": h.receiver,
                        "groupKey": h.group_key,
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                serde_json::json!({"status": "success", "data": v}),
            )
        }
        Ok(None) => api_error(StatusCode::NOT_FOUND, "not_found", format!("no alert {id}")),
        Err(e) => query_error(&st, QueryError::Storage(e)),
    }
}

async fn stats(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (q, _) = match parse_query(raw.as_deref().unwrap_or(""), &headers) {
        Ok(x) => x,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "bad_data", e),
    };
    let Some(db) = st.db() else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is not ready",
        );
    };
    let rows = match storage::stats(db, &q).await {
        Ok(r) => r,
        Err(e) => return query_error(&st, e),
    };
    use std::collections::BTreeMap;
    let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_sev: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut total = 0;
    for (name, sev, status, n) in &rows {
        total += n;
        *by_status.entry(status).or_default() += n;
        *by_sev.entry(sev).or_default() += n;
        let e = by_name.entry(name).or_default();
        *e.entry("total").or_default() += n;
        *e.entry(status).or_default() += n;
    }
    json_response(
        StatusCode::OK,
        serde_json::json!({"status": "success", "data": {
            "total": total,
            "byStatus": by_status,
            "bySeverity": by_sev,
            "byAlertname": by_name,
            "groups": rows.iter().map(|(a, s, st, n)| serde_json::json!(
                {"alertname": a, "severity": s, "status": st, "count": n})).collect::<Vec<_>>(),
        }}),
    )
}

async fn metrics_handler(State(st): State<Arc<AppState>>) -> Response {
    if let Some(db) = st.db() {
        let t = Duration::from_secs(2);
        let ok = match tokio::time::timeout(t, async {
            let size = db.size_bytes().await?;
            let firing = db.firing().await?;
            Ok::<_, sqlx::Error>((size, firing))
        })
        .await
        {
            Ok(Ok((size, firing))) => {
                st.metrics.storage_size.set(size);
                st.metrics.episodes_firing.set(firing);
                true
            }
            _ => {
                st.metrics.storage_error("metrics");
                false
            }
        };
        st.metrics.storage_up.set(ok as i64);
    } else {
        st.metrics.storage_up.set(0);
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

async fn ready(State(st): State<Arc<AppState>>) -> Response {
    let Some(db) = st.db() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage not connected yet");
    };
    match tokio::time::timeout(Duration::from_secs(2), db.ping()).await {
        Ok(Ok(())) => text(StatusCode::OK, "Ready"),
        Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("storage: {e}")),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage did not answer in 2s",
        ),
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
        .route("/webhook", post(webhook))
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
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/stats", get(stats))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let h = HeaderMap::new();
        let (q, f) = parse_query(
            "from=2026-01-01T00:00:00Z&to=1767229200&status=firing&severity=critical,warning\
             &match[]=%7Binstance%3D~%22n.*%22%7D&matcher=job%3D%22x%22&sort=-last_seen&limit=5&page=3&format=csv&q=disk",
            &h,
        )
        .unwrap();
        assert_eq!(f, Format::Csv);
        assert_eq!(q.from, Some(1_767_225_600_000));
        assert_eq!(q.to, Some(1_767_229_200_000));
        assert_eq!(q.status, Some(Status::Firing));
        assert_eq!(q.severity, ["critical", "warning"]);
        assert_eq!(q.matchers.len(), 2);
        assert_eq!((q.sort, q.descending), (SortKey::LastSeen, true));
        assert_eq!((q.limit, q.offset), (5, 10));
        assert_eq!(q.text.as_deref(), Some("disk"));
        for bad in [
            "from=yesterday",
            "status=pending",
            "limit=0",
            "limit=100000",
            "sort=labels",
            "match[]=%7Bx%3D%7D",
            "cursor=abc",
            "from=2&to=1",
            "format=xml",
        ] {
            assert!(parse_query(bad, &h).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_comparison() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "tok"));
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert!(bearer_ok(&h, "tok"));
        assert!(!bearer_ok(&h, "to"));
        assert!(!bearer_ok(&h, "tokk"));
        h.insert(header::AUTHORIZATION, "Basic dG9r".parse().unwrap());
        assert!(!bearer_ok(&h, "tok"));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_cell("=cmd()"), "\"'=cmd()\"");
    }
}
