//! The HTTP(S) server: landing page, `/metrics`, health endpoints, TLS and basic auth from
//! the web config, bounded concurrent scrapes, and a clean shutdown on SIGTERM.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::cli::KitArgs;
use crate::collector::Scraper;
use crate::metrics::{self, MetricSet};
use crate::webconfig::WebConfigHolder;

/// Who an exporter is: used for the landing page, `--version` and build info.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Metric namespace, e.g. `node`.
    pub namespace: &'static str,
    /// Binary name, e.g. `hpcmon-node-exporter`.
    pub binary: &'static str,
    /// One line about what it exports.
    pub description: &'static str,
    /// Version (use `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// Default `--web.listen-address`, e.g. `:9100`.
    pub default_listen: &'static str,
}

/// Whether the exporter is ready to serve; `Err` carries the reason for `/-/ready`.
pub type ReadyFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What an exporter hands to the kit to serve.
pub struct App {
    /// The collectors behind the telemetry path.
    pub scraper: Arc<Scraper>,
    /// Extra routes (e.g. `/ipmi`, `/-/reload`), served behind the same auth.
    pub routes: Router,
    /// Extra links for the landing page: (href, text).
    pub links: Vec<(String, String)>,
    /// Readiness check for `/-/ready`; always ready when `None`.
    pub ready: Option<ReadyFn>,
}

impl App {
    /// An app that serves only `scraper`.
    pub fn new(scraper: Scraper) -> Self {
        Self {
            scraper: Arc::new(scraper),
            routes: Router::new(),
            links: Vec::new(),
            ready: None,
        }
    }
}

struct ScrapeState {
    meta: Meta,
    scraper: Arc<Scraper>,
    limit: Semaphore,
    max_timeout: Duration,
}

/// The deadline for a scrape: the scraper's header minus a safety margin, capped by the flag.
pub fn scrape_timeout(headers: &HeaderMap, cap: Duration) -> Duration {
    let from_header = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| {
            // Leave time to encode and send: half a second, or a fifth of short timeouts.
            let margin = (v * 0.2).min(0.5);
            Duration::from_secs_f64(v - margin)
        });
    match from_header {
        Some(h) => h.min(cap),
        None => cap,
    }
}

/// node_exporter's `collect[]=NAME` filter from a query string.
fn collect_filter(uri: &Uri) -> Option<BTreeSet<String>> {
    let q = uri.query()?;
    let set: BTreeSet<String> = q
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "collect[]" || k.eq_ignore_ascii_case("collect%5B%5D")).then(|| v.to_string())
        })
        .collect();
    (!set.is_empty()).then_some(set)
}

async fn metrics_handler(
    State(st): State<Arc<ScrapeState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Ok(_permit) = st.limit.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many concurrent scrapes (--web.max-requests)\n",
        )
            .into_response();
    };
    let timeout = scrape_timeout(&headers, st.max_timeout);
    let only = collect_filter(&uri);
    let (mut set, _) = st.scraper.scrape_only(timeout, only.as_ref()).await;
    let mut own = MetricSet::new();
    crate::process::add_process_metrics(&mut own);
    crate::process::add_build_info(st.meta.namespace, st.meta.version, &mut own);
    set.extend(own);
    metrics_response(set, &headers)
}

/// Encodes `set` in the format the request's `Accept` header asks for (OpenMetrics, or the
/// 0.0.4 text format by default) as a complete response. Use it for extra scrape endpoints
/// (e.g. a multi-target `/probe`).
pub fn metrics_response(mut set: MetricSet, headers: &HeaderMap) -> Response {
    set.normalize();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body, ctype) = if metrics::wants_openmetrics(accept) {
        (
            metrics::encode_openmetrics(set),
            metrics::OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (metrics::encode_text(&set), metrics::TEXT_CONTENT_TYPE)
    };
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn landing_page(
    meta: &Meta,
    path: &str,
    collectors: &[&str],
    links: &[(String, String)],
) -> String {
    let mut extra = String::new();
    for (href, text) in links {
        extra.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            html_escape(href),
            html_escape(text)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{b}</title>\n\
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}code{{background:#eee;padding:0 .2em}}</style>\n\
</head><body>\n<h1>{b}</h1>\n<p>{d}</p>\n<p>Version {v}</p>\n<ul>\n<li><a href=\"{p}\">Metrics</a></li>\n{extra}\
<li><a href=\"/-/healthy\">Health</a> · <a href=\"/-/ready\">Readiness</a></li>\n</ul>\n\
<h2>Enabled collectors</h2>\n<p>{c}</p>\n</body></html>\n",
        b = html_escape(meta.binary),
        d = html_escape(meta.description),
        v = html_escape(meta.version),
        p = html_escape(path),
        c = collectors
            .iter()
            .map(|c| format!("<code>{}</code>", html_escape(c)))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The basic-auth user a request authenticated as (a request extension set by the web
/// config's auth layer; absent when the web config has no users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

async fn auth_layer(
    State(holder): State<Arc<WebConfigHolder>>,
    mut req: Request,
    next: Next,
) -> Response {
    let cfg = holder.current();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut resp = match holder.authorize(&cfg, auth) {
        Ok(user) => {
            if let Some(u) = user {
                req.extensions_mut().insert(AuthenticatedUser(u));
            }
            next.run(req).await
        }
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response(),
    };
    for (k, v) in &cfg.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

/// Builds the exporter's router: landing page, telemetry path, health, and `app.routes`.
pub fn exporter_router(meta: Meta, kit: &KitArgs, app: App) -> Router {
    let st = Arc::new(ScrapeState {
        meta,
        scraper: app.scraper.clone(),
        limit: Semaphore::new(kit.max_requests.max(1)),
        max_timeout: kit.scrape_timeout,
    });
    let names: Vec<String> = app
        .scraper
        .names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let page = landing_page(
        &meta,
        &kit.telemetry_path,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
        &app.links,
    );
    let ready = app.ready.clone();
    let mut r = Router::new().route(&kit.telemetry_path, get(metrics_handler).with_state(st));
    if kit.telemetry_path != "/" {
        r = r.route("/", get(move || async move { Html(page) }));
    }
    r.route("/-/healthy", get(|| async { "Healthy\n" }))
        .route(
            "/-/ready",
            get(move || async move {
                match ready.as_ref().map(|f| f()) {
                    None | Some(Ok(())) => (StatusCode::OK, "Ready\n".to_string()),
                    Some(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                }
            }),
        )
        .merge(app.routes)
}

fn parse_listen(addr: &str) -> String {
    if let Some(port) = addr.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        addr.to_string()
    }
}

/// A future that completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}

/// Serves `router` on every listen address, with TLS and basic auth from the web config,
/// until `shutdown` completes; then stops accepting and lets open requests finish (up to 5 s).
pub async fn serve_router(
    listen: &[String],
    web_config: Option<std::path::PathBuf>,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_router_with_public(listen, web_config, router, Router::new(), shutdown).await
}

/// Like [`serve_router`], plus `public` routes that are served with the same TLS but
/// **without** the web config's basic auth: for endpoints that authenticate requests
/// themselves (e.g. a webhook checking its own bearer token, so that write and read
/// credentials are separate). Paths must not overlap with `router`'s.
pub async fn serve_router_with_public(
    listen: &[String],
    web_config: Option<std::path::PathBuf>,
    router: Router,
    public: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let holder = Arc::new(WebConfigHolder::new(web_config)?);
    let router = router
        .layer(axum::middleware::from_fn_with_state(
            holder.clone(),
            auth_layer,
        ))
        .merge(public);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = Vec::new();
    for a in listen {
        let addr = parse_listen(a);
        let l = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local: SocketAddr = l.local_addr()?;
        tracing::info!(address = %local, tls = holder.current().tls.is_some(), "listening");
        listeners.push(l);
    }
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let router = router.clone();
        let holder = holder.clone();
        let mut stop = stop_rx.clone();
        let graceful = graceful.clone();
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = l.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stop.changed() => break,
                };
                let _ = stream.set_nodelay(true);
                let cfg = holder.current();
                let svc = TowerToHyperService::new(router.clone());
                let graceful = graceful.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match &cfg.tls {
                        Some(tls) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                            let tls_stream = match tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), svc);
                            let _ = graceful.watch(conn.into_owned()).await;
                        }
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            let _ = graceful.watch(conn.into_owned()).await;
                        }
                    }
                });
            }
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    match Arc::try_unwrap(graceful) {
        Ok(g) => {
            if tokio::time::timeout(Duration::from_secs(5), g.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("open connections did not finish within 5s");
            }
        }
        Err(_) => tracing::debug!("connections still referenced at shutdown"),
    }
    Ok(())
}

/// Serves an exporter with the kit's flags until SIGTERM/SIGINT.
pub async fn serve(meta: Meta, kit: &KitArgs, app: App) -> anyhow::Result<()> {
    let router = exporter_router(meta, kit, app);
    let listen = if kit.listen_addresses.is_empty() {
        vec![meta.default_listen.to_string()]
    } else {
        kit.listen_addresses.clone()
    };
    serve_router(
        &listen,
        kit.web_config_file.clone(),
        router,
        shutdown_signal(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_from_header_is_capped_and_has_margin() {
        let cap = Duration::from_secs(10);
        let mut h = HeaderMap::new();
        assert_eq!(scrape_timeout(&h, cap), cap);
        h.insert("x-prometheus-scrape-timeout-seconds", "2".parse().unwrap());
        assert_eq!(scrape_timeout(&h, cap), Duration::from_secs_f64(1.6));
        h.insert("x-prometheus-scrape-timeout-seconds", "60".parse().unwrap());
        assert_eq!(scrape_timeout(&h, cap), cap);
        h.insert(
            "x-prometheus-scrape-timeout-seconds",
            "junk".parse().unwrap(),
        );
        assert_eq!(scrape_timeout(&h, cap), cap);
    }

    #[test]
    fn collect_filter_parses_repeated_params() {
        let u: Uri = "/metrics?collect[]=cpu&collect%5B%5D=meminfo&x=1"
            .parse()
            .unwrap();
        let f = collect_filter(&u).unwrap();
        assert!(f.contains("cpu") && f.contains("meminfo") && f.len() == 2);
        assert!(collect_filter(&"/metrics".parse().unwrap()).is_none());
    }

    #[test]
    fn listen_shorthand() {
        assert_eq!(parse_listen(":9100"), "0.0.0.0:9100");
        assert_eq!(parse_listen("127.0.0.1:1"), "127.0.0.1:1");
    }
}
