//! `hpcmon-actions`: carries out the room-temperature and idle-node policy from Alertmanager
//! notifications; `hpcmon-actions power on|off HOSTLIST` is the IPMI glue for Slurm's
//! `ResumeProgram`/`SuspendProgram`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hpcmon_actions::app::{self, AppState};
use hpcmon_actions::exec::Executor;
use hpcmon_actions::ipmi::Ipmi;
use hpcmon_actions::journal::Journal;
use hpcmon_actions::metrics::Metrics;
use hpcmon_actions::policy::{Mode, Policy};
use hpcmon_actions::slurm::Slurm;

const DEFAULT_LISTEN: &str = ":9781";

fn duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// Carries out a Slurm/IPMI policy from Alertmanager notifications, journal first.
#[derive(Debug, Parser)]
#[command(name = "hpcmon-actions", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    kit: hpcmon_kit::KitArgs,

    #[command(flatten)]
    serve: ServeArgs,

    #[command(flatten)]
    ipmi: IpmiArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Power nodes on or off through their BMCs (Slurm's ResumeProgram/SuspendProgram call
    /// this with a host list, see contrib/).
    Power {
        /// on or off.
        state: PowerState,
        /// Slurm host list, e.g. n[1-4].
        nodes: String,
    },
    /// Checks a policy file and prints its rules.
    CheckPolicy {
        /// The policy file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PowerState {
    On,
    Off,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The policy file (YAML): rules, mode, limits.
    #[arg(long = "policy.file", default_value = "/etc/hpcmon/actions.yml")]
    policy_file: PathBuf,

    /// The journal (SQLite). Its directory is created 0700 and must belong to this user.
    #[arg(
        long = "storage.path",
        default_value = "/var/lib/hpcmon-actions/journal.db"
    )]
    storage_path: PathBuf,

    /// Journal what would run, run nothing, whatever the policy's mode.
    #[arg(long = "dry-run")]
    dry_run: bool,

    /// Directory of the Slurm client commands (default: PATH).
    #[arg(long = "slurm.bin-dir")]
    slurm_bin_dir: Option<PathBuf>,

    /// Deadline of each Slurm command.
    #[arg(long = "slurm.timeout", default_value = "15s", value_parser = duration)]
    slurm_timeout: Duration,

    /// File holding a bearer token the webhook requires (Alertmanager http_config
    /// `authorization: {credentials_file: …}`); the webhook is then exempt from the web
    /// config's basic auth.
    #[arg(long = "webhook.bearer-token-file", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,

    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long = "webhook.max-body-bytes", default_value_t = 4 << 20)]
    max_body_bytes: usize,
}

#[derive(Debug, Args)]
struct IpmiArgs {
    /// The IPMI exporter's configuration file, whose module gives the BMC credentials
    /// (password_file / password_env).
    #[arg(long = "ipmi.config.file", global = true)]
    config_file: Option<PathBuf>,

    /// The module of --ipmi.config.file to use.
    #[arg(long = "ipmi.module", default_value = "default", global = true)]
    module: String,

    /// Which BMC each node has: lines `node host[:port]`.
    #[arg(long = "ipmi.bmc-map", global = true)]
    bmc_map: Option<PathBuf>,

    /// Deadline of each ipmi-power call.
    #[arg(long = "ipmi.timeout", default_value = "15s", value_parser = duration, global = true)]
    timeout: Duration,

    /// BMC sessions at once.
    #[arg(long = "ipmi.max-concurrency", default_value_t = 16, global = true)]
    max_concurrency: usize,
}

fn load_ipmi(a: &IpmiArgs, cache: &Path) -> anyhow::Result<Option<Ipmi>> {
    match (&a.config_file, &a.bmc_map) {
        (Some(c), Some(m)) => Ok(Some(Ipmi::load(
            c,
            &a.module,
            m,
            a.timeout,
            a.max_concurrency,
            cache,
        )?)),
        (None, None) => Ok(None),
        _ => anyhow::bail!("--ipmi.config.file and --ipmi.bmc-map go together"),
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let policy = Arc::new(Policy::load(&cli.serve.policy_file)?);
    let dir = cli
        .serve
        .storage_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    hpcmon_ipmi_exporter::freeipmi::ensure_private_dir(&dir)
        .with_context(|| format!("journal directory {}", dir.display()))?;
    let journal = Journal::open(&cli.serve.storage_path).await?;
    let ipmi = load_ipmi(&cli.ipmi, &dir)?.map(Arc::new);
    let bearer_token = match &cli.serve.bearer_token_file {
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
    let mode = if cli.serve.dry_run {
        Mode::DryRun
    } else {
        policy.mode
    };
    tracing::info!(
        mode = mode.as_str(),
        rules = policy.rules.len(),
        ipmi = ipmi.is_some(),
        journal = %cli.serve.storage_path.display(),
        "policy loaded"
    );
    if mode == Mode::DryRun {
        tracing::warn!("dry-run: decisions are journaled with their commands; nothing runs (set `mode: enforce` in the policy)");
    }
    let notify = Arc::new(tokio::sync::Notify::new());
    let metrics = Arc::new(Metrics::default());
    let exec = Arc::new(Executor {
        journal: journal.clone(),
        slurm: Slurm {
            bin_dir: cli.serve.slurm_bin_dir.clone(),
            timeout: cli.serve.slurm_timeout,
        },
        ipmi,
        retry: policy.retry.clone(),
        limits: policy.limits.clone(),
        notify: notify.clone(),
        metrics: metrics.clone(),
    });
    tokio::spawn(exec.run());
    let st = Arc::new(AppState {
        journal,
        policy,
        forced_dry_run: cli.serve.dry_run,
        metrics,
        notify,
        bearer_token,
        max_body_bytes: cli.serve.max_body_bytes,
        telemetry_path: cli.kit.telemetry_path.clone(),
    });
    let (main, public) = app::routers(st);
    let listen = if cli.kit.listen_addresses.is_empty() {
        vec![DEFAULT_LISTEN.to_string()]
    } else {
        cli.kit.listen_addresses.clone()
    };
    hpcmon_kit::server::serve_router_opts(
        &listen,
        cli.kit.web_config_file.clone(),
        main,
        public,
        hpcmon_kit::server::shutdown_signal(),
        hpcmon_kit::server::ServerOptions::from_kit(&cli.kit),
    )
    .await
}

async fn power(cli: &Cli, on: bool, nodes: &str) -> anyhow::Result<()> {
    let names = hpcmon_kit::hostlist::expand(nodes, hpcmon_actions::policy::HARD_MAX_NODES)
        .with_context(|| format!("host list {nodes:?}"))?;
    let cache = std::env::temp_dir();
    let ipmi = Arc::new(
        load_ipmi(&cli.ipmi, &cache)?
            .context("power needs --ipmi.config.file and --ipmi.bmc-map")?,
    );
    let mut set = tokio::task::JoinSet::new();
    for n in names {
        let ipmi = ipmi.clone();
        set.spawn(async move {
            let r = ipmi.set(&n, on).await;
            (n, r)
        });
    }
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((n, Ok(()))) => tracing::info!(node = %n, on, "power set"),
            Ok((n, Err(e))) => {
                tracing::error!(node = %n, on, error = %e, "power change failed");
                failed.push(n);
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    anyhow::ensure!(failed.is_empty(), "failed for {}", failed.join(","));
    Ok(())
}

fn check_policy(file: &Path) -> anyhow::Result<()> {
    let p = Policy::load(file)?;
    println!(
        "{}: mode {}, {} rule(s)",
        file.display(),
        p.mode.as_str(),
        p.rules.len()
    );
    for r in &p.rules {
        println!(
            "  {:<20} priority {:>4}  {:<22} hold-off {:>5}s  max_nodes {}{}{}",
            r.name,
            r.priority,
            r.action.as_str(),
            r.hold_off.as_secs(),
            r.max_nodes,
            if r.revert { "  revert" } else { "" },
            if r.require.sources > 1 {
                format!("  needs {} sources", r.require.sources)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    hpcmon_kit::init_logging(&cli.kit.log_level, cli.kit.log_format);
    if let Some(Command::CheckPolicy { file }) = &cli.command {
        return match check_policy(file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        };
    }
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
    let r = match &cli.command {
        Some(Command::Power { state, nodes }) => {
            let (on, nodes) = (matches!(state, PowerState::On), nodes.clone());
            rt.block_on(async { power(&cli, on, &nodes).await })
        }
        _ => {
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                "starting hpcmon-actions"
            );
            rt.block_on(serve(cli))
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    match r {
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
