//! # hpcmon-kit
//!
//! The small kit every hpcmon exporter shares, so that each exporter is only its collectors:
//!
//! - [`Collector`] — the one interface a collector implements; a [`MetricSet`] is what it
//!   produces on each scrape.
//! - [`Scraper`] — runs enabled collectors concurrently under the scrape's deadline and
//!   reports `<ns>_scrape_collector_success` / `<ns>_scrape_collector_duration_seconds`.
//! - [`cli`] — the shared flags ([`KitArgs`]) and `--collector.NAME` / `--no-collector.NAME`.
//! - [`server`] — landing page, `/metrics` (text 0.0.4, or OpenMetrics when asked),
//!   `/-/healthy`, `/-/ready`, TLS and basic auth from `--web.config.file`
//!   ([`webconfig`]), bounded concurrent scrapes, SIGTERM shutdown.
//! - [`command`] — external commands with a hard deadline that kills the process group.
//!
//! An exporter's `main` is a call to [`main`]:
//!
//! ```no_run
//! use hpcmon_kit::{App, CollectorSpec, Meta, Scraper};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     kit: hpcmon_kit::KitArgs,
//! }
//!
//! const META: Meta = Meta {
//!     namespace: "demo",
//!     binary: "demo-exporter",
//!     description: "Demonstrates the kit.",
//!     version: "0.1.0",
//!     default_listen: ":9999",
//! };
//! const SPECS: &[CollectorSpec] = &[];
//!
//! fn main() -> std::process::ExitCode {
//!     hpcmon_kit::main::<Args>(META, SPECS, |_args, _enabled| Ok(App::new(Scraper::new("demo"))))
//! }
//! ```

pub mod cli;
pub mod collector;
pub mod command;
pub mod duration;
pub mod metrics;
pub mod process;
pub mod server;
pub mod slurm_text;
pub mod webconfig;

pub use cli::KitArgs;
pub use collector::{Collector, CollectorSpec, Context, PartialMetrics, Scraper};
pub use metrics::{MetricSet, MetricType};
pub use server::{App, Meta};

use clap::FromArgMatches;

/// Sets up `tracing` from `--log.level` and `--log.format`. Logs go to stderr.
pub fn init_logging(level: &str, format: cli::LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        cli::LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        cli::LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// Caps glibc's malloc arenas (one per thread by default, up to 8 × cores): an exporter does
/// little allocation per scrape on short-lived blocking threads, and every extra arena keeps
/// its own free memory resident. Measured on the node exporter: 14.0 → 11.0 MiB RSS, CPU
/// unchanged. Respects an explicit `MALLOC_ARENA_MAX`.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator tuning; called before other threads start.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Parses flags (the exporter's `A`, the kit's and the collector flags), sets up logging and
/// the runtime, calls `build` with the parsed flags and the enabled collector names, and
/// serves the returned [`App`] until SIGTERM. Returns the process exit code.
pub fn main<A>(
    meta: Meta,
    specs: &[CollectorSpec],
    build: impl FnOnce(A, Vec<&'static str>) -> anyhow::Result<App>,
) -> std::process::ExitCode
where
    A: clap::Parser,
{
    let cmd = A::command()
        .name(meta.binary)
        .about(meta.description)
        .version(meta.version)
        .mut_arg("listen_addresses", |a| a.default_value(meta.default_listen));
    let cmd = cli::with_collector_flags(cmd, specs);
    let matches = cmd.get_matches();
    let kit = match KitArgs::from_arg_matches(&matches) {
        Ok(k) => k,
        Err(e) => e.exit(),
    };
    let args = match A::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let enabled = cli::enabled_collectors(&matches, specs);
    init_logging(&kit.log_level, kit.log_format);
    limit_malloc_arenas();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(60))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async move {
        tracing::info!(version = meta.version, collectors = ?enabled, "starting {}", meta.binary);
        let app = build(args, enabled)?;
        server::serve(meta, &kit, app).await
    });
    finish_runtime(rt);
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "exiting");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Stops the runtime after `serve` returned without waiting for blocking threads for long:
/// a collector stuck in a blocking call (e.g. reading a FIFO) must not keep the process
/// alive after SIGTERM. Dropping a runtime would wait for them forever.
fn finish_runtime(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}

#[cfg(test)]
mod tests {
    #[test]
    fn runtime_shutdown_does_not_wait_for_a_stuck_blocking_task() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.spawn_blocking(|| std::thread::sleep(std::time::Duration::from_secs(60)));
            super::finish_runtime(rt);
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("a stuck blocking task kept the runtime (and the process) alive");
    }
}
