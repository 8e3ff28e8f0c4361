//! `hpcmon-alert-bridge`: stores Alertmanager webhook notifications as a queryable alert log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hpcmon_alert_bridge::app::{self, AppState, ReconcileSettings, Settings};
use hpcmon_alert_bridge::storage::compat::{CompatConfig, DEFAULT_SEVERITY_MAP};
use hpcmon_alert_bridge::storage::{self, Db, Dialect, Options, WriteConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_LISTEN: &str = ":9780";
const URL_ENV: &str = "HPCMON_ALERT_BRIDGE_STORAGE_URL";

fn duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

fn bool_arg(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?}: want true or false")),
    }
}

/// Durable, idempotent alert log fed by Alertmanager's webhook, with a query API and a web page.
#[derive(Debug, Parser)]
#[command(name = "hpcmon-alert-bridge", version)]
struct Cli {
    #[command(flatten)]
    kit: hpcmon_kit::KitArgs,

    /// Storage URL: sqlite://PATH (default sqlite://alerts.db), postgres://USER@HOST/DB or
    /// mysql://USER@HOST:PORT/DB (MariaDB too). Prefer --storage.url-file or the environment
    /// for URLs with a password.
    #[arg(long = "storage.url", env = URL_ENV, hide_env_values = true)]
    storage_url: Option<String>,

    /// File holding the storage URL (first line), e.g. a URL with its password.
    #[arg(
        long = "storage.url-file",
        value_name = "FILE",
        conflicts_with = "storage_url"
    )]
    storage_url_file: Option<PathBuf>,

    /// SQLite `synchronous`: full (fsync every commit) or normal (WAL: a power cut may lose
    /// the last commits, a crashed process never does).
    #[arg(long = "storage.sqlite.synchronous", default_value = "full")]
    sqlite_synchronous: String,

    /// Maximum database connections (readers; PostgreSQL/MySQL pool).
    #[arg(long = "storage.max-connections", default_value_t = 8)]
    max_connections: u32,

    /// A webhook whose batch has not committed after this long gets 503 (the write itself
    /// goes on and may still commit; Alertmanager's retry is idempotent).
    #[arg(long = "storage.timeout", default_value = "10s", value_parser = duration)]
    storage_timeout: Duration,

    /// Server-side deadline of every statement and lock wait (PostgreSQL statement_timeout
    /// and lock_timeout, MariaDB max_statement_time and innodb_lock_wait_timeout, SQLite's
    /// busy timeout).
    #[arg(long = "storage.statement-timeout", default_value = "30s", value_parser = duration)]
    statement_timeout: Duration,

    /// Deadline of an API query (503 beyond it; not counted as a storage error).
    #[arg(long = "storage.query-timeout", default_value = "10s", value_parser = duration)]
    query_timeout: Duration,

    /// /-/ready answers 200 only if a commit finishes within this time.
    #[arg(long = "storage.probe-timeout", default_value = "3s", value_parser = duration)]
    probe_timeout: Duration,

    /// Most alerts committed in one transaction (the writer batches queued notifications).
    #[arg(long = "storage.batch-max-alerts", default_value_t = 5000)]
    batch_max_alerts: usize,

    /// MySQL/MariaDB: also write alertsnitch's tables (Alert, AlertLabel, ...), which
    /// OpenSCOW's alarm-log page reads.
    #[arg(long = "compat.alertsnitch", default_value = "true", value_parser = bool_arg)]
    compat_alertsnitch: bool,

    /// Severities written to alertsnitch's tables: `ours=theirs,...` (OpenSCOW tags Error and
    /// Warning); unmapped values are written as they are, a missing severity as `none`.
    #[arg(long = "compat.severity-map", default_value = DEFAULT_SEVERITY_MAP)]
    severity_map: String,

    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long = "webhook.max-body-bytes", default_value_t = 16 << 20)]
    max_body_bytes: usize,

    /// Most webhook requests read, parsed or stored at once; more wait up to
    /// --webhook.admission-wait, then get 503 + Retry-After.
    #[arg(long = "webhook.max-concurrent", default_value_t = 8)]
    max_concurrent: usize,

    /// Most webhook body bytes held at once (until stored); bounds the bridge's memory (see
    /// the README for the measured memory per byte). At least --webhook.max-body-bytes.
    #[arg(long = "webhook.max-inflight-bytes", default_value_t = 24 << 20)]
    max_inflight_bytes: usize,

    /// How long a webhook request may wait for admission before 503 + Retry-After.
    #[arg(long = "webhook.admission-wait", default_value = "1s", value_parser = duration)]
    admission_wait: Duration,

    /// Deadline for receiving a webhook body (408 beyond it).
    #[arg(long = "webhook.read-timeout", default_value = "60s", value_parser = duration)]
    read_timeout: Duration,

    /// File holding a bearer token the webhook requires (Alertmanager http_config
    /// `authorization: {credentials_file: …}`). With it, /webhook is exempt from the web
    /// config's basic auth, so readers and Alertmanager have separate credentials.
    #[arg(long = "webhook.bearer-token-file", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,

    /// A firing notification for a resolved episode (same startsAt) re-opens it as a re-fire
    /// when it arrives at least this long after the resolution; earlier ones are late
    /// replays (the other Alertmanager of an HA pair) and change nothing.
    #[arg(long = "episodes.refire-grace", default_value = "1m", value_parser = duration)]
    refire_grace: Duration,

    /// Alertmanager to reconcile with (repeatable): firing episodes none of them has any more
    /// (silenced or inhibited when they resolved, or lost) are closed.
    #[arg(long = "reconcile.alertmanager-url", value_name = "URL")]
    reconcile_urls: Vec<String>,

    /// How often to reconcile (an episode is closed after two rounds without it).
    #[arg(long = "reconcile.interval", default_value = "5m", value_parser = duration)]
    reconcile_interval: Duration,

    /// Deadline of one request to Alertmanager.
    #[arg(long = "reconcile.timeout", default_value = "10s", value_parser = duration)]
    reconcile_timeout: Duration,

    /// Delete episodes that ended (or, if still firing, were last notified) longer ago; 0 keeps all.
    #[arg(long = "retention", default_value = "90d", value_parser = duration)]
    retention: Duration,

    /// Retention of resolved episodes, by end time (default: --retention).
    #[arg(long = "retention.resolved", value_parser = duration)]
    retention_resolved: Option<Duration>,

    /// Retention of episodes still firing, by last notification (default: --retention).
    #[arg(long = "retention.firing", value_parser = duration)]
    retention_firing: Option<Duration>,

    /// How often retention runs.
    #[arg(long = "retention.interval", default_value = "10m", value_parser = duration)]
    retention_interval: Duration,
}

fn storage_url(cli: &Cli) -> anyhow::Result<String> {
    if let Some(f) = &cli.storage_url_file {
        let s = std::fs::read_to_string(f)
            .with_context(|| format!("reading --storage.url-file {}", f.display()))?;
        let url = s.lines().next().unwrap_or("").trim().to_string();
        anyhow::ensure!(
            !url.is_empty(),
            "--storage.url-file {} is empty",
            f.display()
        );
        return Ok(url);
    }
    let url = cli
        .storage_url
        .clone()
        .unwrap_or_else(|| "sqlite://alerts.db".into());
    let from_env = std::env::var(URL_ENV).ok().as_deref() == Some(url.as_str());
    if !from_env && url.contains('@') && url.contains(':') && !url.starts_with("sqlite:") {
        tracing::warn!(
            "--storage.url on the command line may carry a password visible to other users; \
             use --storage.url-file or {URL_ENV}"
        );
    }
    Ok(url)
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The secrets read from files, before the runtime starts (no file reads on async threads).
struct Secrets {
    url: String,
    bearer_token: Option<String>,
}

fn read_secrets(cli: &Cli) -> anyhow::Result<Secrets> {
    let url = storage_url(cli)?;
    let bearer_token = match &cli.bearer_token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("reading --webhook.bearer-token-file {}", f.display()))?
                .trim()
                .to_string();
            anyhow::ensure!(
                !t.is_empty(),
                "--webhook.bearer-token-file {} is empty",
                f.display()
            );
            Some(t)
        }
        None => None,
    };
    Ok(Secrets { url, bearer_token })
}

async fn run(cli: Cli, secrets: Secrets) -> anyhow::Result<()> {
    let Secrets { url, bearer_token } = secrets;
    let dialect = storage::dialect_of(&url)?;
    anyhow::ensure!(
        cli.max_inflight_bytes >= cli.max_body_bytes,
        "--webhook.max-inflight-bytes ({}) must be at least --webhook.max-body-bytes ({})",
        cli.max_inflight_bytes,
        cli.max_body_bytes
    );
    let compat = CompatConfig::parse(&cli.severity_map)
        .map_err(|e| anyhow::anyhow!("--compat.severity-map: {e}"))?;
    for u in &cli.reconcile_urls {
        anyhow::ensure!(
            u.starts_with("http://") || u.starts_with("https://"),
            "--reconcile.alertmanager-url {u:?}: want http(s)://HOST:PORT"
        );
    }
    let settings = Settings {
        max_body_bytes: cli.max_body_bytes,
        bearer_token,
        storage_timeout: cli.storage_timeout,
        query_timeout: cli.query_timeout,
        probe_timeout: cli.probe_timeout,
        write_backstop: cli.statement_timeout * 3 + Duration::from_secs(10),
        batch_max_alerts: cli.batch_max_alerts.max(1),
        max_concurrent: cli.max_concurrent.max(1),
        max_inflight_bytes: cli.max_inflight_bytes,
        admission_wait: cli.admission_wait,
        body_read_timeout: cli.read_timeout,
        retention_resolved: cli
            .retention_resolved
            .or(Some(cli.retention))
            .and_then(nonzero),
        retention_firing: cli
            .retention_firing
            .or(Some(cli.retention))
            .and_then(nonzero),
        retention_interval: cli.retention_interval.max(Duration::from_secs(1)),
        reconcile: (!cli.reconcile_urls.is_empty()).then(|| ReconcileSettings {
            urls: cli.reconcile_urls.clone(),
            interval: cli.reconcile_interval.max(Duration::from_millis(200)),
            timeout: cli.reconcile_timeout,
        }),
        write: WriteConfig {
            refire_grace_ms: cli.refire_grace.as_millis() as i64,
            compat: (dialect == Dialect::Mysql && cli.compat_alertsnitch).then_some(compat),
        },
        telemetry_path: cli.kit.telemetry_path.clone(),
    };
    let st = AppState::new(settings, dialect.name());
    let opts = Options {
        sqlite_synchronous: cli.sqlite_synchronous.clone(),
        max_connections: cli.max_connections,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: cli.statement_timeout,
    };
    // Connect (and migrate) in the background: until storage answers, the webhook and the
    // API answer 503 (Alertmanager retries) and /-/ready says why.
    let redacted = storage::redact(&url);
    if dialect == Dialect::Sqlite {
        // A local file either opens now or never: fail fast.
        let db = Db::open(&url, &opts).await?;
        tracing::info!(storage = %redacted, "storage ready");
        st.attach(db);
    } else {
        let st2 = st.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            loop {
                match Db::open(&url, &opts).await {
                    Ok(db) => {
                        tracing::info!(storage = %redacted, "storage ready");
                        st2.attach(db);
                        return;
                    }
                    Err(e) => {
                        st2.metrics.storage_error("connect");
                        tracing::warn!(storage = %redacted, error = %format!("{e:#}"), "storage not available, retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
    }
    let (read, public) = app::routers(st.clone());
    let listen = if cli.kit.listen_addresses.is_empty() {
        vec![DEFAULT_LISTEN.to_string()]
    } else {
        cli.kit.listen_addresses.clone()
    };
    // ServerOptions from the kit's flags: --web.header-read-timeout and
    // --web.max-connections were silently ignored with the defaults of
    // serve_router_with_public.
    hpcmon_kit::server::serve_router_opts(
        &listen,
        cli.kit.web_config_file.clone(),
        read,
        public,
        hpcmon_kit::server::shutdown_signal(),
        hpcmon_kit::server::ServerOptions::from_kit(&cli.kit),
    )
    .await?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    hpcmon_kit::init_logging(&cli.kit.log_level, cli.kit.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "starting hpcmon-alert-bridge"
    );
    let secrets = match read_secrets(&cli) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "exiting");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, secrets)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "exiting");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
