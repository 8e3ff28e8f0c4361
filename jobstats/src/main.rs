//! `hpcmon-jobstats`: see the crate README. Exit codes: 0 report printed, 1 other error
//! (bad flags, storage), 2 unknown job, 3 Prometheus unreachable or too slow and no summary
//! stored, 4 Slurm's commands missing or failing, 5 another user's job, 6 not enough data
//! for a scaling prediction.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use hpcmon_jobstats::advice::Rules;
use hpcmon_jobstats::prom::{Prom, PromFlags};
use hpcmon_jobstats::report::{self, Access, Context, ReportError};
use hpcmon_jobstats::slurm::Slurm;
use hpcmon_jobstats::store::Store;
use hpcmon_jobstats::{plot, render, scaling, serve, summary};

fn parse_duration(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// A Slurm job's efficiency report with advice (`hpcmon-jobstats JOBID`), the summary kept
/// at job end, scaling predictions and an HTTP API.
#[derive(Parser)]
#[command(name = "hpcmon-jobstats", version)]
struct Cli {
    /// The job to report on (same as `hpcmon-jobstats report JOBID`).
    jobid: Option<String>,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(clap::Args, Clone)]
struct Common {
    #[command(flatten)]
    prom: PromFlags,
    /// Directory of the Slurm client binaries (default: PATH).
    #[arg(long = "slurm.bin-dir", global = true, value_name = "DIR")]
    slurm_bin_dir: Option<PathBuf>,
    /// Deadline of each Slurm command.
    #[arg(long = "slurm.timeout", global = true, default_value = "30s", value_parser = parse_duration)]
    slurm_timeout: Duration,
    /// Advice rules (YAML; default: the built-in rules, see advice.yml).
    #[arg(long = "rules.file", global = true, value_name = "FILE")]
    rules_file: Option<PathBuf>,
    /// Summary table: `sqlite:///var/lib/hpcmon-jobstats/summaries.db` or `postgres://...`;
    /// or the file named by HPCMON_JOBSTATS_STORE_URL_FILE (keeps passwords out of argv).
    #[arg(long = "store.url", global = true, env = "HPCMON_JOBSTATS_STORE_URL")]
    store_url: Option<String>,
    /// Grafana's base URL, for a link to the Job dashboard.
    #[arg(
        long = "grafana.url",
        global = true,
        env = "HPCMON_JOBSTATS_GRAFANA_URL"
    )]
    grafana_url: Option<String>,
    /// Log level (debug, info, warn, error).
    #[arg(long = "log.level", global = true, default_value = "warn")]
    log_level: String,
}

#[derive(clap::Args, Clone, Default)]
struct ReportArgs {
    /// Print the report as JSON (for portals).
    #[arg(long, global = true)]
    json: bool,
    /// No colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long = "no-color", global = true)]
    no_color: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a job's report.
    Report {
        /// Job id (as Slurm prints it, or the raw id).
        jobid: String,
    },
    /// Compute a finished job's report and store it as a summary (run from EpilogSlurmctld).
    Summarize {
        /// Job id.
        jobid: String,
        /// Do not write the summary into the job's AdminComment.
        #[arg(long = "no-admin-comment")]
        no_admin_comment: bool,
    },
    /// Summarize finished jobs that have no summary yet (jobs the epilog missed).
    Backfill {
        /// Oldest end time to consider (sacct's -S format, e.g. now-7days or 2026-11-01).
        #[arg(long, default_value = "now-2days")]
        since: String,
        /// Do not write summaries into AdminComments.
        #[arg(long = "no-admin-comment")]
        no_admin_comment: bool,
    },
    /// Predict run time, speedup and efficiency at other core counts from past runs.
    Scaling {
        /// Take the user and job name of this job.
        #[arg(long)]
        jobid: Option<String>,
        /// User (default: yours).
        #[arg(long)]
        user: Option<String>,
        /// Job name.
        #[arg(long)]
        name: Option<String>,
        /// Oldest runs to consider (sacct's -S format).
        #[arg(long, default_value = "now-90days")]
        since: String,
        /// Core counts to predict (default: measured counts and powers of two).
        #[arg(long, value_delimiter = ',')]
        predict: Vec<u32>,
        /// Write the measured and predicted curves as an SVG file.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Also group by the batch script's hash (one `sacct -B` per run; Slurm must store
        /// scripts: AccountingStoreFlags=job_script).
        #[arg(long = "script-hash")]
        script_hash: bool,
    },
    /// Serve the HTTP API and the report page.
    Serve(serve::ServeArgs),
}

fn color(args: &ReportArgs) -> bool {
    use std::io::IsTerminal;
    !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The asking user of the command line: root (and anyone allowed by Slurm's own PrivateData)
/// sees every job; others their own.
fn cli_access() -> Access {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    Access {
        all: uid.is_root(),
        user,
    }
}

async fn context(c: &Common) -> anyhow::Result<Context> {
    let rules = match &c.rules_file {
        Some(p) => Rules::load(p)?,
        None => Rules::builtin(),
    };
    let store_url = match (
        &c.store_url,
        std::env::var_os("HPCMON_JOBSTATS_STORE_URL_FILE"),
    ) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(f)) => Some(std::fs::read_to_string(&f)?.trim().to_string()),
        _ => None,
    };
    let store = match store_url {
        Some(u) => Some(Store::open(&u).await?),
        None => None,
    };
    Ok(Context {
        slurm: Slurm::new(c.slurm_bin_dir.clone(), c.slurm_timeout),
        prom: Prom::new(&c.prom)?,
        rules,
        store,
        grafana_url: c.grafana_url.clone(),
    })
}

fn fail(e: &ReportError) -> ExitCode {
    eprintln!("hpcmon-jobstats: {e}");
    ExitCode::from(e.exit_code())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cmd = match (cli.cmd, cli.jobid) {
        (Some(c), _) => c,
        (None, Some(j)) => Cmd::Report { jobid: j },
        (None, None) => {
            eprintln!(
                "hpcmon-jobstats: give a job id (hpcmon-jobstats JOBID) or a command; see --help"
            );
            return Ok(ExitCode::from(1));
        }
    };
    if let Cmd::Serve(args) = cmd {
        let ctx = context(&cli.common).await?;
        serve::run(args, ctx).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = context(&cli.common).await?;
    match cmd {
        Cmd::Report { jobid } => {
            let r = match report::build(&ctx, &jobid, &cli_access(), now()).await {
                Ok(r) => r,
                Err(e) => return Ok(fail(&e)),
            };
            if cli.report.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!(
                    "{}",
                    render::text(
                        &r,
                        render::Style {
                            color: color(&cli.report)
                        }
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Summarize {
            jobid,
            no_admin_comment,
        } => summarize(&ctx, &jobid, !no_admin_comment).await,
        Cmd::Backfill {
            since,
            no_admin_comment,
        } => {
            let jobs = ctx
                .slurm
                .finished_jobs(&since)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            let (mut done, mut skipped, mut failed) = (0, 0, 0);
            for j in jobs {
                let has = matches!(ctx.slurm.admin_comment(&j.jobid).await, Ok(Some(c)) if summary::decode(&c).is_ok())
                    || match &ctx.store {
                        Some(s) => s.get(&j.jobid_raw).await.ok().flatten().is_some(),
                        None => false,
                    };
                if has {
                    skipped += 1;
                    continue;
                }
                match summarize(&ctx, &j.jobid, !no_admin_comment).await {
                    Ok(c) if c == ExitCode::SUCCESS => done += 1,
                    _ => failed += 1,
                }
            }
            println!(
                "backfill: {done} summarized, {skipped} already had a summary, {failed} failed"
            );
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Scaling {
            jobid,
            user,
            name,
            since,
            predict,
            plot: plot_file,
            script_hash,
        } => {
            let ctx = Context {
                slurm: ctx.slurm.with_script_hash(script_hash),
                ..ctx
            };
            let access = cli_access();
            let (user, name) = match jobid {
                Some(j) => {
                    let h = match ctx.slurm.header(&j).await {
                        Ok(h) => h,
                        Err(e) => return Ok(fail(&e.into())),
                    };
                    (Some(h.user), Some(h.name))
                }
                None => (user.or_else(|| access.user.clone()), name),
            };
            if let Some(u) = &user {
                if let Err(e) = access.check("(history)", u) {
                    return Ok(fail(&e));
                }
            }
            let runs = match ctx
                .slurm
                .history(user.as_deref(), name.as_deref(), &since)
                .await
            {
                Ok(r) => r,
                Err(e) => return Ok(fail(&e.into())),
            };
            let groups = scaling::group_runs(&runs);
            if groups.is_empty() {
                eprintln!(
                    "hpcmon-jobstats: no finished runs of {} since {since}",
                    name.as_deref().unwrap_or("any job")
                );
                return Ok(ExitCode::from(6));
            }
            let mut analyses = Vec::new();
            let mut code = ExitCode::SUCCESS;
            for g in &groups {
                match scaling::analyse(g, &predict) {
                    Ok(a) => analyses.push((g, a)),
                    Err(e) => {
                        eprintln!("hpcmon-jobstats: {} / {}: {e}", g.user, g.name);
                        code = ExitCode::from(6);
                    }
                }
            }
            if cli.report.json {
                let v: Vec<_> = analyses
                    .iter()
                    .map(
                        |(g, a)| serde_json::json!({"user": g.user, "name": g.name, "analysis": a}),
                    )
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (g, a) in &analyses {
                    println!("== {} / {} ==", g.user, g.name);
                    print!("{}", scaling::text(a));
                }
            }
            if let (Some(f), Some((g, a))) = (plot_file, analyses.first()) {
                std::fs::write(&f, plot::svg_titled(a, &format!("{} / {}", g.user, g.name)))?;
                eprintln!("wrote {}", f.display());
            }
            if analyses.is_empty() {
                return Ok(ExitCode::from(6));
            }
            Ok(code)
        }
        Cmd::Serve(_) => unreachable!("handled above"),
    }
}

async fn summarize(ctx: &Context, jobid: &str, admin_comment: bool) -> anyhow::Result<ExitCode> {
    let all = Access {
        user: None,
        all: true,
    };
    let r = match report::build(ctx, jobid, &all, now()).await {
        Ok(r) => r,
        Err(e) => return Ok(fail(&e)),
    };
    if r.source != hpcmon_jobstats::model::Source::Prometheus {
        eprintln!(
            "hpcmon-jobstats: job {jobid}: no metrics in Prometheus{}; nothing summarized",
            if r.source == hpcmon_jobstats::model::Source::Summary {
                " (a summary is already stored)"
            } else {
                ""
            }
        );
        return Ok(ExitCode::from(1));
    }
    let text = summary::encode(&r);
    if admin_comment {
        if let Err(e) = ctx.slurm.set_admin_comment(&r.job.jobid_raw, &text).await {
            eprintln!("hpcmon-jobstats: job {jobid}: cannot write the AdminComment: {e}");
            if ctx.store.is_none() {
                return Ok(ExitCode::from(4));
            }
        }
    }
    if let Some(s) = &ctx.store {
        s.put(&r).await?;
    }
    println!("job {}: summary stored ({} bytes)", r.job.jobid, text.len());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    hpcmon_kit::init_logging(&cli.common.log_level, hpcmon_kit::cli::LogFormat::Logfmt);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hpcmon-jobstats: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hpcmon-jobstats: {e:#}");
            ExitCode::FAILURE
        }
    }
}
