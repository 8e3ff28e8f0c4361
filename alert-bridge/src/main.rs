//! `hpcmon-alert-bridge`: stores Alertmanager webhook notifications as a queryable alert log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hpcmon_alert_bridge::app::{self, AppState, Settings};
use hpcmon_alert_bridge::storage::{self, Db, Options};

const DEFAULT_LISTEN: &str = ":9780";
const URL_ENV: &str = "HPCMON_ALERT_BRIDGE_STORAGE_URL";

fn duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// Durable, idempotent alert log fed by Alertmanager's webhook, with a query API and a web page.
#[derive(Debug, Parser)]
#[command(name = "hpcmon-alert-bridge", version)]
struct Cli {
    #[command(flatten)]
    kit: hpcmon_kit::KitArgs,

    /// Storage URL: sqlite://PATH (default sqlite://alerts.db) or postgres://USER@HOST/DB.
    /// Prefer --storage.url-file or the environment for URLs with a password.
    #[arg(long = "storage.url", env = URL_ENV, hide_env_values = true)]
    storage_url: Option<String>,

    /// File holding the storage URL (first line), e.g. a PostgreSQL URL with its password.
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

    /// Maximum database connections (readers; PostgreSQL pool).
    #[arg(long = "storage.max-connections", default_value_t = 8)]
    max_connections: u32,

    /// A webhook whose batch has not committed after this long gets 503.
    #[arg(long = "storage.timeout", default_value = "10s", value_parser = duration)]
    storage_timeout: Duration,

    /// Most alerts committed in one transaction (the writer batches queued notifications).
    #[arg(long = "storage.batch-max-alerts", default_value_t = 5000)]
    batch_max_alerts: usize,

    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long = "webhook.max-body-bytes", default_value_t = 16 << 20)]
    max_body_bytes: usize,

    /// File holding a bearer token the webhook requires (Alertmanager http_config
    /// `authorization: {credentials_file: …}`). With it, /webhook is exempt from the web
    /// config's basic auth, so readers and Alertmanager have separate credentials.
    #[arg(long = "webhook.bearer-token-file", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,

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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = storage_url(&cli)?;
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
    let settings = Settings {
        max_body_bytes: cli.max_body_bytes,
        bearer_token,
        storage_timeout: cli.storage_timeout,
        batch_max_alerts: cli.batch_max_alerts.max(1),
        retention_resolved: cli
            .retention_resolved
            .or(Some(cli.retention))
            .and_then(nonzero),
        retention_firing: cli
            .retention_firing
            .or(Some(cli.retention))
            .and_then(nonzero),
        retention_interval: cli.retention_interval.max(Duration::from_secs(1)),
        telemetry_path: cli.kit.telemetry_path.clone(),
    };
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let st = AppState::new(settings, backend);
    let opts = Options {
        sqlite_synchronous: cli.sqlite_synchronous.clone(),
        max_connections: cli.max_connections,
        acquire_timeout: Duration::from_secs(5),
    };
    // Connect (and migrate) in the background: until storage answers, the webhook and the
    // API answer 503 (Alertmanager retries) and /-/ready says why.
    let redacted = storage::redact(&url);
    if backend == "sqlite" {
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
    hpcmon_kit::server::serve_router_with_public(
        &listen,
        cli.kit.web_config_file.clone(),
        read,
        public,
        hpcmon_kit::server::shutdown_signal(),
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
    match rt.block_on(run(cli)) {
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
