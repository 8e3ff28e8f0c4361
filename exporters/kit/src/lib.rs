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
//! - [`registry`] — one table row per collector ([`registry::Registration`]): the
//!   collector flags, the collectors' own flags and the scraper's entries derive from it.
//! - [`sysfs`] — sysfs attribute reads (one `read(2)`; `openat(2)` under an open directory).
//! - [`command`] — external commands with a hard deadline that kills the process group.
//! - [`hostlist`] — Slurm host lists, expanded under a cap and compressed.
//!
//! An exporter is a table of collectors and a call to [`registry::Exporter::main`]:
//!
//! ```no_run
//! use hpcmon_kit::registry::{CollectorFlags, Exporter, Registration};
//! use hpcmon_kit::{App, Meta};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     kit: hpcmon_kit::KitArgs,
//! }
//!
//! /// What the collectors are built from.
//! struct Config {
//!     flags: CollectorFlags,
//! }
//!
//! const EXPORTER: Exporter<Config> = Exporter {
//!     meta: Meta {
//!         namespace: "demo",
//!         binary: "demo-exporter",
//!         description: "Demonstrates the kit.",
//!         version: "0.1.0",
//!         default_listen: ":9999",
//!     },
//!     registry: &[] as &[Registration<Config>],
//!     ignored_flags: &[],
//!     ignored_collectors: &[],
//! };
//!
//! fn main() -> std::process::ExitCode {
//!     EXPORTER.main::<Args>(
//!         |_args, flags| Ok(Config { flags }),
//!         |_cfg, scraper| Ok(App::new(scraper)),
//!     )
//! }
//! ```

pub mod cli;
pub mod collector;
pub mod command;
mod connections;
pub mod duration;
pub mod hostlist;
pub mod metrics;
pub mod process;
pub mod registry;
pub mod server;
pub mod slurm_text;
pub mod sysfs;
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

/// `gettid` for glibc older than 2.30, which lacks the function (RHEL 8 has 2.28): the logfmt
/// formatter (tracing-logfmt) links against it, so binaries built against glibc 2.28's symbols
/// (`scripts/package.sh --glibc 2.28`, which sets `--cfg hpcmon_glibc_compat`) would not link.
/// The kit provides it through the system call; a newer glibc's own is never used in such a
/// build, and in a normal build this does not exist.
#[cfg(all(hpcmon_glibc_compat, target_os = "linux"))]
#[no_mangle]
pub extern "C" fn gettid() -> libc::pid_t {
    // SAFETY: SYS_gettid takes no argument and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Raises the soft limit on open files to the hard limit, at most `max` (as the Go runtime
/// does for Go exporters): an exporter that keeps kernel files open between scrapes
/// ([`sysfs::KeptFile`]) next to `--web.max-connections` connections can pass the usual
/// soft limit of 1024. Returns the soft limit now in force.
pub fn raise_fd_limit(max: u64) -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let want = lim.rlim_max.min(max);
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    lim.rlim_cur = want;
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(want)
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

/// The exporter's command line before any collector flags: `A`'s flags (which flatten
/// [`KitArgs`]) named, described and versioned after `meta`, listening on its default port.
pub fn base_command<A: clap::CommandFactory>(meta: Meta) -> clap::Command {
    A::command()
        .name(meta.binary)
        .about(meta.description)
        .version(meta.version)
        .mut_arg("listen_addresses", |a| a.default_value(meta.default_listen))
}

/// The part of [`registry::Exporter::main`] after parsing: `A` and the kit's flags from `matches`, logging,
/// the runtime, `build`, then serving. Returns the process exit code.
pub(crate) fn run_parsed<A, B>(
    meta: Meta,
    matches: &clap::ArgMatches,
    enabled: Vec<&'static str>,
    build: B,
) -> std::process::ExitCode
where
    A: clap::Parser,
    B: FnOnce(A) -> anyhow::Result<App>,
{
    let kit = match KitArgs::from_arg_matches(matches) {
        Ok(k) => k,
        Err(e) => e.exit(),
    };
    let args = match A::from_arg_matches(matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
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
        let app = build(args)?;
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
    fn the_fd_limit_is_raised_within_the_hard_limit() {
        let soft = super::raise_fd_limit(4096).unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, soft);
        assert!(soft >= lim.rlim_max.min(4096));
        assert!(soft <= lim.rlim_max);
    }

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
