//! The HTTP side: the webhook, the journal API and page, the kill switch, `/metrics` and the
//! health endpoints. Served by the kit (TLS, basic auth from `--web.config.file`); with a
//! bearer token the webhook checks it itself and is exempt from basic auth, so Alertmanager
//! and readers have separate credentials.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /webhook` | Alertmanager notification → journaled decisions; 2xx only after the commit |
//! | `GET /api/v1/actions?state=&rule=&action=&before=&limit=` | the journal, newest first |
//! | `GET /api/v1/actions/{id}` | one action with its events |
//! | `POST /api/v1/actions/{id}/confirm` | confirm an action waiting for a person |
//! | `POST /api/v1/actions/{id}/cancel` | cancel an action that has not run |
//! | `POST /api/v1/pause`, `POST /api/v1/resume` | the kill switch (persisted) |
//! | `GET /api/v1/status` | mode, kill switch, rules |
//! | `GET /` | the journal page |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hpcmon_kit::server::AuthenticatedUser;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::engine;
use crate::journal::{self, state, Journal, ListQuery};
use crate::metrics::Metrics;
use crate::policy::{Mode, Policy};

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// Shared state of the handlers.
pub struct AppState {
    pub journal: Journal,
    pub policy: Arc<Policy>,
    /// `--dry-run`: nothing runs whatever the policy says.
    pub forced_dry_run: bool,
    pub metrics: Arc<Metrics>,
    pub notify: Arc<Notify>,
    pub bearer_token: Option<String>,
    pub max_body_bytes: usize,
    pub telemetry_path: String,
}

impl AppState {
    /// The mode decisions are journaled in.
    pub fn mode(&self) -> Mode {
        if self.forced_dry_run {
            Mode::DryRun
        } else {
            self.policy.mode
        }
    }
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({"status": "error", "error": msg.into()}))).into_response()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn webhook(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(tok) = &st.bearer_token {
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !ct_eq(got.as_bytes(), tok.as_bytes()) {
            st.metrics.notification_rejected("unauthorized");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    if body.len() > st.max_body_bytes {
        st.metrics.notification_rejected("too_large");
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", st.max_body_bytes),
        );
    }
    let n = match hpcmon_alert_bridge::payload::parse(&body) {
        Ok(n) => n,
        Err(e) => {
            st.metrics.notification_rejected("bad_payload");
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match engine::journal_notification(&st.journal, &st.policy, st.mode(), &n).await {
        Ok(s) => {
            st.metrics.notification(&s);
            st.notify.notify_one();
            tracing::info!(
                alerts = s.alerts,
                journaled = s.journaled,
                duplicates = s.duplicates,
                refused = s.rejected,
                "notification journaled"
            );
            Json(json!({"status": "success", "summary": s})).into_response()
        }
        Err(e) => {
            st.metrics.notification_rejected("storage_error");
            tracing::warn!(error = %e, "journaling a notification failed");
            // 5xx: Alertmanager retries.
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("journal unavailable: {e}"),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListParams {
    state: Option<String>,
    rule: Option<String>,
    action: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(State(st): State<Arc<AppState>>, Query(p): Query<ListParams>) -> Response {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be 1..1000");
    }
    if let Some(s) = &p.state {
        if !state::ALL.contains(&s.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be one of {}", state::ALL.join(", ")),
            );
        }
    }
    let q = ListQuery {
        state: p.state,
        rule: p.rule,
        action: p.action,
        before: p.before,
        limit,
    };
    let rows = match st.journal.list(&q).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let paused = st.journal.paused().await.unwrap_or(false);
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id));
    Json(json!({
        "status": "success",
        "mode": st.mode().as_str(),
        "paused": paused,
        "actions": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "next_before": next.flatten(),
    }))
    .into_response()
}

async fn one(State(st): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    match st.journal.get(id).await {
        Ok(Some(r)) => {
            let events = st.journal.events(id).await.unwrap_or_default();
            let mut v = r.to_json();
            v["events"] = events
                .iter()
                .map(|e| {
                    json!({"at": journal::fmt_ms(e.at_ms), "state": e.state, "detail": e.detail, "actor": e.actor})
                })
                .collect();
            Json(json!({"status": "success", "action": v})).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no action {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn actor(user: Option<Extension<AuthenticatedUser>>) -> String {
    user.map(|Extension(u)| u.0)
        .unwrap_or_else(|| "anonymous".into())
}

/// Writes from a browser must come from this origin (a cross-site form cannot set it).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

async fn decide(
    st: &AppState,
    id: i64,
    from: &[&str],
    to: &str,
    detail: String,
    who: &str,
) -> Response {
    let mut c = match st.journal.begin().await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let row = match journal::get_id_in(&mut c, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no action {id}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    if !from.contains(&row.state.as_str()) {
        return error(
            StatusCode::CONFLICT,
            format!("action {id} is {}, not {}", row.state, from.join(" or ")),
        );
    }
    if let Err(e) = journal::set_state(&mut c, id, to, &detail, who, None).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    if let Err(e) = c.commit().await {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    if to == state::CANCELLED {
        st.metrics.outcome(&row.action, state::CANCELLED);
    }
    st.notify.notify_one();
    Json(json!({"status": "success", "id": id, "state": to})).into_response()
}

async fn confirm(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    user: Option<Extension<AuthenticatedUser>>,
) -> Response {
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "cross-origin request");
    }
    let who = actor(user);
    decide(
        &st,
        id,
        &[state::AWAITING_CONFIRMATION],
        state::PENDING,
        format!("confirmed by {who}"),
        &who,
    )
    .await
}

async fn cancel(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    user: Option<Extension<AuthenticatedUser>>,
) -> Response {
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "cross-origin request");
    }
    let who = actor(user);
    decide(
        &st,
        id,
        &[
            state::PENDING,
            state::DEFERRED,
            state::AWAITING_QUORUM,
            state::AWAITING_CONFIRMATION,
        ],
        state::CANCELLED,
        format!("cancelled by {who}"),
        &who,
    )
    .await
}

async fn set_pause(st: &AppState, paused: bool, headers: &HeaderMap, who: String) -> Response {
    if !same_origin(headers) {
        return error(StatusCode::FORBIDDEN, "cross-origin request");
    }
    match st.journal.set_paused(paused, &who).await {
        Ok(()) => {
            tracing::warn!(by = %who, paused, "kill switch changed");
            st.notify.notify_one();
            Json(json!({"status": "success", "paused": paused, "by": who})).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn pause(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    user: Option<Extension<AuthenticatedUser>>,
) -> Response {
    set_pause(&st, true, &headers, actor(user)).await
}

async fn resume(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    user: Option<Extension<AuthenticatedUser>>,
) -> Response {
    set_pause(&st, false, &headers, actor(user)).await
}

async fn status(State(st): State<Arc<AppState>>) -> Response {
    let paused = st.journal.paused().await.ok();
    let rules: Vec<_> = st
        .policy
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "action": r.action.as_str(),
                "priority": r.priority,
                "revert": r.revert,
                "hold_off_seconds": r.hold_off.as_secs(),
                "max_nodes": r.max_nodes,
                "sources": r.require.sources,
                "confirm": r.require.confirm,
            })
        })
        .collect();
    Json(json!({
        "status": "success",
        "mode": st.mode().as_str(),
        "forced_dry_run": st.forced_dry_run,
        "paused": paused,
        "actions_per_hour": st.policy.limits.actions_per_hour,
        "rules": rules,
    }))
    .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut set = st
        .metrics
        .render(&st.journal, st.policy.mode, st.forced_dry_run)
        .await;
    hpcmon_kit::process::add_process_metrics(&mut set);
    set.gauge(
        "hpcmon_actions_build_info",
        "A metric with a constant '1' value labeled by the version and revision of hpcmon-actions.",
    )
    .sample(
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            (
                "revision",
                option_env!("HPCMON_REVISION").unwrap_or("unknown"),
            ),
        ],
        1.0,
    );
    hpcmon_kit::server::metrics_response(set, &headers)
}

async fn ready(State(st): State<Arc<AppState>>) -> Response {
    if st.journal.ping().await {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "journal not available\n").into_response()
    }
}

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

/// The routes behind the web config's auth, and the webhook route: merged into the first
/// unless a bearer token protects the webhook, then returned apart (served without basic
/// auth).
pub fn routers(st: Arc<AppState>) -> (Router, Router) {
    let hook = Router::new()
        .route("/webhook", post(webhook))
        .layer(axum::extract::DefaultBodyLimit::max(st.max_body_bytes + 1))
        .with_state(st.clone());
    let main = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/v1/actions", get(list))
        .route("/api/v1/actions/{id}", get(one))
        .route("/api/v1/actions/{id}/confirm", post(confirm))
        .route("/api/v1/actions/{id}/cancel", post(cancel))
        .route("/api/v1/pause", post(pause))
        .route("/api/v1/resume", post(resume))
        .route("/api/v1/status", get(status))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route(&st.telemetry_path.clone(), get(metrics))
        .with_state(st.clone())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") });
    if st.bearer_token.is_some() {
        (main, hook)
    } else {
        (main.merge(hook), Router::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, "127.0.0.1:9781".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:9781".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
