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
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::cli::KitArgs;
use crate::collector::Scraper;
use crate::connections::{Admission, BusyCounter, Connections, Tracked};
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
    /// `None`: `--web.max-requests=0`, no limit (as node_exporter).
    limit: Option<Semaphore>,
    max_timeout: Duration,
    exporter_metrics: bool,
}

/// The deadline for a scrape: the scraper's header minus a safety margin, capped by the flag.
///
/// The header is untrusted: anything that is not a finite, positive number of seconds is
/// ignored, and huge values are clamped to `cap` before any conversion (so `1e300` cannot
/// overflow a `Duration`).
pub fn scrape_timeout(headers: &HeaderMap, cap: Duration) -> Duration {
    let from_header = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .and_then(|v| {
            // Leave time to encode and send: half a second, or a fifth of short timeouts.
            let margin = (v * 0.2).min(0.5);
            // Clamp first: the cap bounds the result anyway.
            let secs = (v - margin).min(cap.as_secs_f64());
            Duration::try_from_secs_f64(secs).ok()
        });
    match from_header {
        Some(h) => h.min(cap),
        None => cap,
    }
}

/// node_exporter's `collect[]=NAME` filter from a query string (names percent-decoded).
fn collect_filter(uri: &Uri) -> Option<BTreeSet<String>> {
    let q = uri.query()?;
    let set: BTreeSet<String> = form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "collect[]")
        .map(|(_, v)| v.into_owned())
        .collect();
    (!set.is_empty()).then_some(set)
}

async fn metrics_handler(
    State(st): State<Arc<ScrapeState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let only = collect_filter(&uri);
    if let Some(only) = &only {
        // As node_exporter: a filter naming anything but an enabled collector is refused.
        if let Err(e) = st.scraper.check_filter(only) {
            tracing::warn!(error = %e, "couldn't create filtered metrics handler");
            return (
                StatusCode::BAD_REQUEST,
                format!("Couldn't create filtered metrics handler: couldn't create collector: {e}"),
            )
                .into_response();
        }
    }
    let _permit = match &st.limit {
        Some(limit) => match limit.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many concurrent scrapes (--web.max-requests)\n",
                )
                    .into_response()
            }
        },
        None => None,
    };
    let timeout = scrape_timeout(&headers, st.max_timeout);
    let (mut set, _) = st.scraper.scrape_only(timeout, only.as_ref()).await;
    let mut own = MetricSet::new();
    if st.exporter_metrics {
        crate::process::add_process_metrics(&mut own);
    }
    crate::process::add_build_info(st.meta.namespace, st.meta.version, &mut own);
    set.extend(own);
    metrics_response(set, &headers)
}

/// Encodes `set` in the format the request's `Accept` header asks for (OpenMetrics, or the
/// 0.0.4 text format by default) as a complete response, gzip-compressed when
/// `Accept-Encoding` asks for it. Use it for extra scrape endpoints
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
    let vary = (header::VARY, "Accept-Encoding");
    let ae = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if wants_gzip(&ae) {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        if enc.write_all(body.as_bytes()).is_ok() {
            if let Ok(gz) = enc.finish() {
                return (
                    [
                        (header::CONTENT_TYPE, ctype),
                        (header::CONTENT_ENCODING, "gzip"),
                        vary,
                    ],
                    gz,
                )
                    .into_response();
            }
        }
    }
    ([(header::CONTENT_TYPE, ctype), vary], body).into_response()
}

/// Whether an `Accept-Encoding` value asks for gzip: `gzip` (or `*`) with a q-value above
/// zero, and not below an explicitly listed `identity`. Malformed q-values count as 0.
fn wants_gzip(accept_encoding: &str) -> bool {
    let (mut gzip, mut star, mut identity) = (None, None, None);
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = 1.0_f64;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .map_or(0.0, |q| q.clamp(0.0, 1.0));
                }
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            star = Some(q);
        } else if coding.eq_ignore_ascii_case("identity") {
            identity = Some(q);
        }
    }
    let g = gzip.or(star).unwrap_or(0.0);
    g > 0.0 && g >= identity.unwrap_or(0.0)
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
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut resp = match holder.authorize_async(&cfg, auth.as_deref()).await {
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
        limit: (kit.max_requests > 0).then(|| Semaphore::new(kit.max_requests)),
        max_timeout: kit.scrape_timeout,
        exporter_metrics: !kit.disable_exporter_metrics,
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
///
/// Uses the default [`ServerOptions`]: a binary that flattens [`KitArgs`] must call
/// [`serve_router_opts`] with [`ServerOptions::from_kit`] instead, or its
/// `--web.header-read-timeout` and `--web.max-connections` are ignored.
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
/// credentials are separate). Paths must not overlap with `router`'s. Default
/// [`ServerOptions`], as [`serve_router`].
pub async fn serve_router_with_public(
    listen: &[String],
    web_config: Option<std::path::PathBuf>,
    router: Router,
    public: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_router_opts(
        listen,
        web_config,
        router,
        public,
        shutdown,
        ServerOptions::default(),
    )
    .await
}

/// Connection limits and timeouts of the server (`--web.*` flags).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A client must send a request's complete header within this time, or the connection
    /// is closed (slow-loris protection). Also bounds how long an idle keep-alive
    /// connection is kept open waiting for its next request.
    pub header_read_timeout: Duration,
    /// Connections open at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ServerOptions {
    /// The options the kit's flags ask for.
    pub fn from_kit(kit: &KitArgs) -> Self {
        Self {
            header_read_timeout: kit.header_read_timeout,
            max_connections: kit.max_connections,
            ..Self::default()
        }
    }
}

/// [`serve_router_with_public`] with explicit [`ServerOptions`].
pub async fn serve_router_opts(
    listen: &[String],
    web_config: Option<std::path::PathBuf>,
    router: Router,
    public: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    opts: ServerOptions,
) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for a in listen {
        let addr = parse_listen(a);
        let l = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        listeners.push(l);
    }
    serve_listeners(listeners, web_config, router, public, shutdown, opts).await
}

/// Serves on already bound `listeners` (see [`serve_router_opts`]).
pub async fn serve_listeners(
    listeners: Vec<TcpListener>,
    web_config: Option<std::path::PathBuf>,
    router: Router,
    public: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    opts: ServerOptions,
) -> anyhow::Result<()> {
    let holder = Arc::new(WebConfigHolder::new(web_config)?);
    let router = router
        .layer(axum::middleware::from_fn_with_state(
            holder.clone(),
            auth_layer,
        ))
        .merge(public);
    let (stop_tx, stop_rx) = watch::channel(false);
    for l in &listeners {
        let local: SocketAddr = l.local_addr()?;
        tracing::info!(address = %local, tls = holder.current().tls.is_some(), "listening");
    }
    // Only the accept loops share the `GracefulShutdown`; each connection task gets its own
    // `Watcher`, so once the loops have stopped the handle can be unwrapped and shut down
    // (it used to be cloned into every connection, so shutdown never waited for them).
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let conns = Connections::new(opts.max_connections);
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let router = router.clone();
        let holder = holder.clone();
        let mut stop = stop_rx.clone();
        let graceful = graceful.clone();
        let conns = conns.clone();
        let opts = opts.clone();
        tasks.spawn(async move {
            let mut last_full_warning: Option<tokio::time::Instant> = None;
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
                let mut ticket = match conns.admit() {
                    Admission::Admitted(t) => t,
                    Admission::AdmittedByEviction(t, gone) => {
                        warn_full(&mut last_full_warning, opts.max_connections, false);
                        // Accept no more until the evicted connection has closed: however
                        // fast connections arrive, descriptors stay within the cap.
                        let _ = tokio::time::timeout(Duration::from_secs(1), gone).await;
                        t
                    }
                    Admission::Refused => {
                        // Closed at once: a flood of connections must not exhaust descriptors.
                        drop(stream);
                        warn_full(&mut last_full_warning, opts.max_connections, true);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let cfg = holder.current();
                let busy = ticket.busy_counter();
                let svc = tracked_service(router.clone(), busy.clone());
                let watcher = graceful.watcher();
                let opts = opts.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve_connection(stream, peer, cfg, svc, busy, watcher, &opts) => {}
                        _ = ticket.evicted() => {
                            tracing::debug!(%peer, "idle connection closed to make room (--web.max-connections)");
                        }
                    }
                });
            }
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Open connections finish the requests in flight (idle ones close now), within a bound:
    // a handler stuck in a blocking call must not keep the process alive.
    let graceful = Arc::try_unwrap(graceful)
        .map_err(|_| anyhow::anyhow!("accept loops still running at shutdown"))?;
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?opts.shutdown_grace,
            "requests still in flight after the shutdown grace period; exiting anyway"
        );
    }
    Ok(())
}

/// Logs that the connection cap was reached, at most once a minute per listener.
fn warn_full(last: &mut Option<tokio::time::Instant>, max: usize, refused: bool) {
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(tokio::time::Instant::now());
    if refused {
        tracing::warn!(
            max,
            "every connection is serving a request (--web.max-connections); closing new ones"
        );
    } else {
        tracing::warn!(
            max,
            "too many open connections (--web.max-connections); closing the oldest idle ones"
        );
    }
}

/// The largest request head (request line and headers) a client may send; a longer one
/// gets 431. It bounds what a connection buffers before its head is complete.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// `router` as a hyper service whose requests mark the connection busy until their
/// response has been written (so that the connection cap never closes it mid-request).
fn tracked_service(
    router: Router,
    busy: BusyCounter,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Send
       + 'static {
    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let guard = busy.enter();
        let router = router.clone();
        async move {
            use http_body_util::BodyExt as _;
            let resp = tower::ServiceExt::oneshot(router, req).await?;
            Ok(resp.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    let _in_flight = &guard;
                    frame
                }))
            }))
        }
    })
}

/// Serves one accepted connection: the TLS handshake (bounded by the header-read timeout)
/// when the web config asks for TLS, then HTTP/1.1 with the header-read timeout and the
/// head size limit, under the graceful-shutdown watcher.
async fn serve_connection<S>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    cfg: Arc<crate::webconfig::WebConfig>,
    svc: S,
    busy: BusyCounter,
    watcher: hyper_util::server::graceful::Watcher,
    opts: &ServerOptions,
) where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let header_timeout = opts.header_read_timeout;
    // HTTP/1.1 only, with hyper's own builder: hyper-util's auto builder first waits for a
    // byte to tell HTTP/1 from HTTP/2, with no timeout, so a connection that sent nothing
    // was never closed. Without a timer hyper silently disables its header read timeout.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Bounds what an unfinished head buffers; max_header_size also catches a complete
        // head that arrived in one larger read.
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .max_header_size(MAX_REQUEST_HEAD_BYTES);
    match &cfg.tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let tls_stream =
                match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let io = TokioIo::new(Tracked::new(tls_stream, busy));
            let conn = builder.serve_connection(io, svc);
            let _ = watcher.watch(conn).await;
        }
        None => {
            let io = TokioIo::new(Tracked::new(stream, busy));
            let conn = builder.serve_connection(io, svc);
            let _ = watcher.watch(conn).await;
        }
    }
}

/// Serves an exporter with the kit's flags until SIGTERM/SIGINT.
pub async fn serve(meta: Meta, kit: &KitArgs, app: App) -> anyhow::Result<()> {
    let router = exporter_router(meta, kit, app);
    let listen = if kit.listen_addresses.is_empty() {
        vec![meta.default_listen.to_string()]
    } else {
        kit.listen_addresses.clone()
    };
    serve_router_opts(
        &listen,
        kit.web_config_file.clone(),
        router,
        Router::new(),
        shutdown_signal(),
        ServerOptions::from_kit(kit),
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
    fn hostile_timeout_headers_do_not_panic() {
        let cap = Duration::from_secs(10);
        for v in [
            "1e300", "1.8e19", "1e20", "inf", "-inf", "NaN", "-1", "0", "-0", "1e-300", "",
            "  5e400 ",
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-prometheus-scrape-timeout-seconds", v.parse().unwrap());
            let t = scrape_timeout(&h, cap);
            assert!(t <= cap, "{v}: {t:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-prometheus-scrape-timeout-seconds",
            "1e300".parse().unwrap(),
        );
        assert_eq!(scrape_timeout(&h, cap), cap);
    }

    #[test]
    fn collect_filter_parses_repeated_params() {
        let u: Uri = "/metrics?collect[]=cpu&collect%5B%5D=meminfo&x=1&collect[]=thermal%5Fzone"
            .parse()
            .unwrap();
        let f = collect_filter(&u).unwrap();
        assert_eq!(
            f.iter().map(String::as_str).collect::<Vec<_>>(),
            ["cpu", "meminfo", "thermal_zone"]
        );
        assert!(collect_filter(&"/metrics".parse().unwrap()).is_none());
    }

    #[test]
    fn listen_shorthand() {
        assert_eq!(parse_listen(":9100"), "0.0.0.0:9100");
        assert_eq!(parse_listen("127.0.0.1:1"), "127.0.0.1:1");
    }
}
