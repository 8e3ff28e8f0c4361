//! `hpcmon-jobstats serve`: the HTTP API and a read-only report page.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /api/v1/jobs/{id}` | the report as JSON (the same as `hpcmon-jobstats --json ID`) |
//! | `GET /api/v1/jobs/{id}/scaling` | scaling analyses of the job's user and job name |
//! | `GET /jobs/{id}` | the report as a page (per-node CPU and memory drawn as bars) |
//! | `GET /` | a form asking for a job id |
//! | `GET /metrics` | the server's own metrics |
//! | `GET /-/healthy` | 200 |
//!
//! **Trust model.** Users may only see their own jobs. Who asks is, in this order: the
//! basic-auth user of `--web.config.file` (its user names are Slurm user names), or the
//! header named by `--serve.user-header` (set by the portal's reverse proxy after it logged
//! the user in; only enable it when the server is reachable through that proxy alone, e.g.
//! listening on 127.0.0.1). Users in `--serve.admin-users` see every job.
//! `--serve.allow-all-users` lets anyone who reaches the server see every job (for a server
//! reachable only by the portal's backend, which does its own checks). With none of these,
//! every job request answers 403 with an explanation.
//!
//! HTTP codes: 404 unknown job, 403 another user's job, 502 Prometheus failed (and no
//! summary), 503 Slurm's commands failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hpcmon_kit::server::AuthenticatedUser;

use crate::model::{Report, Severity, Source};
use crate::report::{self, Access, Context, ReportError};
use crate::scaling;

/// Flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable).
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9782")]
    pub listen: Vec<String>,
    /// Exporter-toolkit web config (TLS, client certificates, basic-auth users).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<std::path::PathBuf>,
    /// Trust this request header (set by the portal's proxy) as the asking user's name.
    #[arg(long = "serve.user-header", value_name = "HEADER")]
    pub user_header: Option<String>,
    /// Users who may see every job (comma-separated).
    #[arg(long = "serve.admin-users", value_delimiter = ',')]
    pub admin_users: Vec<String>,
    /// Anyone who reaches the server may see every job.
    #[arg(long = "serve.allow-all-users")]
    pub allow_all: bool,
    /// Oldest runs the scaling endpoint considers (sacct's -S format).
    #[arg(long = "serve.scaling-since", default_value = "now-90days")]
    pub scaling_since: String,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    not_found: AtomicU64,
    forbidden: AtomicU64,
    failed: AtomicU64,
    from_summary: AtomicU64,
}

struct AppState {
    ctx: Context,
    args: ServeArgs,
    counters: Counters,
}

type St = Arc<AppState>;

/// Serves until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs, ctx: Context) -> anyhow::Result<()> {
    let listen = args.listen.clone();
    let web = args.web_config.clone();
    let router = router(args, ctx);
    hpcmon_kit::server::serve_router(&listen, web, router, hpcmon_kit::server::shutdown_signal())
        .await
}

/// The routes (public for tests).
pub fn router(args: ServeArgs, ctx: Context) -> Router {
    let st = Arc::new(AppState {
        ctx,
        args,
        counters: Counters::default(),
    });
    Router::new()
        .route("/", get(index))
        .route("/jobs/{id}", get(page))
        .route("/api/v1/jobs/{id}", get(api_job))
        .route("/api/v1/jobs/{id}/scaling", get(api_scaling))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .with_state(st)
}

fn access(st: &AppState, req_user: Option<&AuthenticatedUser>, headers: &HeaderMap) -> Access {
    let user = req_user.map(|u| u.0.clone()).or_else(|| {
        st.args.user_header.as_ref().and_then(|h| {
            headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
    });
    let all = st.args.allow_all
        || user
            .as_ref()
            .is_some_and(|u| st.args.admin_users.iter().any(|a| a == u));
    Access { user, all }
}

fn valid_jobid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'_' || b == b'+')
}

fn error_status(e: &ReportError) -> StatusCode {
    match e {
        ReportError::Slurm(crate::slurm::SlurmError::NotFound(_)) => StatusCode::NOT_FOUND,
        ReportError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ReportError::Prom(_) => StatusCode::BAD_GATEWAY,
        ReportError::Slurm(_) => StatusCode::SERVICE_UNAVAILABLE,
        ReportError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn report_for(st: &AppState, id: &str, acc: &Access) -> Result<Report, (StatusCode, String)> {
    if !valid_jobid(id) {
        return Err((StatusCode::BAD_REQUEST, format!("not a job id: {id:?}")));
    }
    if acc.user.is_none() && !acc.all {
        st.counters.forbidden.fetch_add(1, Ordering::Relaxed);
        return Err((
            StatusCode::FORBIDDEN,
            "who is asking is unknown: configure basic-auth users (--web.config.file), a trusted \
             --serve.user-header, or --serve.allow-all-users"
                .into(),
        ));
    }
    let now = chrono::Utc::now().timestamp();
    match report::build(&st.ctx, id, acc, now).await {
        Ok(r) => {
            st.counters.ok.fetch_add(1, Ordering::Relaxed);
            if r.source == Source::Summary {
                st.counters.from_summary.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r)
        }
        Err(e) => {
            let c = match error_status(&e) {
                StatusCode::NOT_FOUND => &st.counters.not_found,
                StatusCode::FORBIDDEN => &st.counters.forbidden,
                _ => &st.counters.failed,
            };
            c.fetch_add(1, Ordering::Relaxed);
            Err((error_status(&e), e.to_string()))
        }
    }
}

async fn api_job(State(st): State<St>, Path(id): Path<String>, req: Request) -> Response {
    let acc = access(
        &st,
        req.extensions().get::<AuthenticatedUser>(),
        req.headers(),
    );
    match report_for(&st, &id, &acc).await {
        Ok(r) => Json(r).into_response(),
        Err((c, m)) => (c, Json(serde_json::json!({"error": m}))).into_response(),
    }
}

async fn api_scaling(State(st): State<St>, Path(id): Path<String>, req: Request) -> Response {
    let acc = access(
        &st,
        req.extensions().get::<AuthenticatedUser>(),
        req.headers(),
    );
    let err = |c: StatusCode, m: String| (c, Json(serde_json::json!({"error": m}))).into_response();
    if !valid_jobid(&id) {
        return err(StatusCode::BAD_REQUEST, format!("not a job id: {id:?}"));
    }
    let h = match st.ctx.slurm.header(&id).await {
        Ok(h) => h,
        Err(e) => {
            let e = ReportError::from(e);
            return err(error_status(&e), e.to_string());
        }
    };
    if let Err(e) = acc.check(&h.jobid, &h.user) {
        return err(StatusCode::FORBIDDEN, e.to_string());
    }
    let runs = match st
        .ctx
        .slurm
        .history(Some(&h.user), Some(&h.name), &st.args.scaling_since)
        .await
    {
        Ok(r) => r,
        Err(e) => return err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let groups = scaling::group_runs(&runs);
    let out: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| match scaling::analyse(g, &[]) {
            Ok(a) => serde_json::json!({"user": g.user, "name": g.name, "analysis": a}),
            Err(e) => serde_json::json!({"user": g.user, "name": g.name, "error": e.to_string()}),
        })
        .collect();
    Json(serde_json::json!({"jobid": h.jobid, "groups": out})).into_response()
}

async fn metrics(State(st): State<St>, headers: HeaderMap) -> Response {
    let mut set = hpcmon_kit::MetricSet::new();
    let c = &st.counters;
    let f = set.counter(
        "hpcmon_jobstats_reports_total",
        "Job reports requested, by result.",
    );
    for (k, v) in [
        ("ok", &c.ok),
        ("not_found", &c.not_found),
        ("forbidden", &c.forbidden),
        ("failed", &c.failed),
    ] {
        f.sample(&[("result", k)], v.load(Ordering::Relaxed) as f64);
    }
    set.counter(
        "hpcmon_jobstats_reports_from_summary_total",
        "Reports made from a stored summary because Prometheus had no series of the job.",
    )
    .sample(&[], c.from_summary.load(Ordering::Relaxed) as f64);
    set.counter(
        "hpcmon_jobstats_prometheus_queries_total",
        "PromQL queries sent.",
    )
    .sample(&[], st.ctx.prom.queries() as f64);
    hpcmon_kit::process::add_process_metrics(&mut set);
    hpcmon_kit::server::metrics_response(set, &headers)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}\
th{color:#555;font-weight:normal}.note{padding:.4em .8em;margin:.3em 0;border-left:4px solid}\
.critical{border-color:#c00;background:#fee}.warning{border-color:#e80;background:#fff4e0}\
.notice{border-color:#07c;background:#eef6ff}.info{border-color:#999;background:#f5f5f5}\
.muted{color:#777}svg text{font-size:11px;font-family:system-ui,sans-serif}";

async fn index() -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>hpcmon jobstats</title><style>{STYLE}</style></head>\
<body><h1>Job report</h1><form onsubmit=\"location.href='jobs/'+encodeURIComponent(this.id.value);return false\">\
<label>Job id <input name=id autofocus></label> <button>Show</button></form></body></html>"
    ))
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn gib(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1} GiB", x / 1073741824.0))
        .unwrap_or_else(|| "–".into())
}

/// Horizontal bars, one per row: `(label, fraction 0..1, text)`.
fn bars(title: &str, rows: &[(String, Option<f64>, String)]) -> String {
    let h = 18;
    let height = 24 + rows.len() * h;
    let mut s = format!(
        "<svg role=img aria-label=\"{t}\" width=640 height={height} viewBox=\"0 0 640 {height}\"><text x=0 y=14 font-weight=bold>{t}</text>",
        t = esc(title)
    );
    for (i, (label, frac, text)) in rows.iter().enumerate() {
        let y = 22 + i * h;
        let w = (frac.unwrap_or(0.0).clamp(0.0, 1.0) * 300.0).round();
        let color = match frac {
            Some(f) if *f < 0.5 => "#d9534f",
            Some(f) if *f < 0.8 => "#f0ad4e",
            Some(_) => "#5cb85c",
            None => "#ccc",
        };
        s.push_str(&format!(
            "<text x=0 y={ty}>{l}</text><rect x=110 y={y} width=300 height=12 fill=\"#eee\"/><rect class=bar x=110 y={y} width={w} height=12 fill=\"{color}\"/><text x=418 y={ty}>{tx}</text>",
            ty = y + 10,
            l = esc(label),
            tx = esc(text)
        ));
    }
    s.push_str("</svg>");
    s
}

/// The report as an HTML page.
pub fn page_html(r: &Report) -> String {
    let j = &r.job;
    let mut b = String::new();
    b.push_str(&format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Job {id}</title><style>{STYLE}</style></head><body><h1>Job {id} <span class=muted>{name}</span></h1>",
        id = esc(&j.jobid),
        name = esc(&j.name)
    ));
    let elapsed = j
        .elapsed_seconds
        .map(|e| format!("{:.0} min", e / 60.0))
        .unwrap_or_else(|| "–".into());
    let limit = j
        .time_limit_seconds
        .map(|e| format!("{:.0} min", e / 60.0))
        .unwrap_or_else(|| "unlimited".into());
    b.push_str("<table id=header>");
    for (k, v) in [
        ("User", j.user.clone()),
        ("Account", j.account.clone()),
        ("Partition", j.partition.clone()),
        ("State", j.state.clone()),
        ("Nodes", format!("{} ({})", j.nodelist, j.nodes)),
        ("Cores", j.cpus.to_string()),
        ("Memory requested", gib(j.mem_requested_bytes)),
        ("GPUs", j.gpus.to_string()),
        ("Elapsed / limit", format!("{elapsed} / {limit}")),
    ] {
        b.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)));
    }
    b.push_str("</table>");
    match (&r.usage, r.source) {
        (Some(u), src) => {
            if src == Source::Summary {
                b.push_str("<p class=muted>From the summary stored at job end.</p>");
            }
            b.push_str(&format!(
                "<h2>CPU efficiency <span id=cpu-eff>{}</span></h2>",
                pct(u.cpu_efficiency())
            ));
            let rows: Vec<_> = u
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.node.clone(),
                        n.cpu_efficiency,
                        format!("{:.1} of {:.0} cores", n.cores_used, n.cpus),
                    )
                })
                .collect();
            b.push_str(&bars("CPU use per node", &rows));
            let rows: Vec<_> = u
                .nodes
                .iter()
                .map(|n| {
                    let frac = match (n.mem_peak_bytes, n.mem_limit_bytes) {
                        (Some(p), Some(l)) if l > 0.0 => Some(p / l),
                        _ => None,
                    };
                    (
                        n.node.clone(),
                        frac,
                        format!("peak {} of {}", gib(n.mem_peak_bytes), gib(n.mem_limit_bytes)),
                    )
                })
                .collect();
            b.push_str(&bars("Memory peak per node", &rows));
            if !u.gpus.is_empty() {
                let rows: Vec<_> = u
                    .gpus
                    .iter()
                    .map(|g| {
                        (
                            format!("{} {}", g.node, &g.uuid[..g.uuid.len().min(12)]),
                            g.utilization,
                            format!("{} busy, {} used", pct(g.utilization), gib(g.mem_used_max_bytes)),
                        )
                    })
                    .collect();
                b.push_str(&bars("GPU use", &rows));
            }
        }
        (None, _) => b.push_str(
            "<p id=no-metrics>No metrics found for this job (none in Prometheus and no summary stored).</p>",
        ),
    }
    b.push_str("<h2>Advice</h2><div id=notes>");
    if r.notes.is_empty() {
        b.push_str("<p class=muted>Nothing to change.</p>");
    }
    for n in &r.notes {
        let cls = match n.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
        };
        b.push_str(&format!(
            "<div class=\"note {cls}\" data-rule=\"{}\">{}</div>",
            esc(&n.rule),
            esc(&n.message)
        ));
    }
    b.push_str("</div>");
    if let Some(u) = &r.dashboard_url {
        b.push_str(&format!(
            "<p><a href=\"{}\">Job dashboard in Grafana</a></p>",
            esc(u)
        ));
    }
    b.push_str(&format!(
        "<p class=muted><a href=\"../api/v1/jobs/{}\">JSON</a></p></body></html>",
        esc(&j.jobid)
    ));
    b
}

async fn page(State(st): State<St>, Path(id): Path<String>, req: Request) -> Response {
    let acc = access(
        &st,
        req.extensions().get::<AuthenticatedUser>(),
        req.headers(),
    );
    match report_for(&st, &id, &acc).await {
        Ok(r) => Html(page_html(&r)).into_response(),
        Err((c, m)) => (
            c,
            Html(format!(
                "<!doctype html><html><head><meta charset=utf-8><title>Job {}</title><style>{STYLE}</style></head><body><h1>Job {}</h1><p id=error>{}</p></body></html>",
                esc(&id),
                esc(&id),
                esc(&m)
            )),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_checked() {
        assert!(valid_jobid("123"));
        assert!(valid_jobid("123_4"));
        assert!(!valid_jobid("1;rm"));
        assert!(!valid_jobid(""));
        assert!(!valid_jobid(&"1".repeat(40)));
    }

    #[test]
    fn page_escapes_user_text() {
        let r = Report {
            version: 1,
            job: crate::model::JobHeader {
                jobid: "1".into(),
                name: "<script>alert(1)</script>".into(),
                ..Default::default()
            },
            source: Source::None,
            usage: None,
            notes: vec![],
            dashboard_url: None,
        };
        let h = page_html(&r);
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert!(h.contains("id=no-metrics"));
    }
}
