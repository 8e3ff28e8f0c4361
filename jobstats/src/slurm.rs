//! What Slurm says about jobs: the report's header, the AdminComment that holds a job's
//! summary, and the accounting history the scaling prediction reads.
//!
//! Every command runs through [`hpcmon_kit::command::run`] with the [`Slurm`]'s deadline (a
//! hung `sacct` against a dead slurmdbd is killed with its process group), argv only (never a
//! shell), `SLURM_TIME_FORMAT=%s` so that every time is unix seconds, and an explicit
//! `--format` with `-P` (parsable, `|`-delimited) in which the only free-text field (the job
//! name, or the AdminComment) comes last and so may itself contain `|`.
//!
//! Where each answer comes from:
//!
//! | call | command | fallback |
//! | --- | --- | --- |
//! | [`Slurm::header`] | `sacct -X -P -n -a -j ID --format=`[`SACCT_FORMAT`] | `squeue -h -j ID -O `[`SQUEUE_FORMAT`] when `sacct` is missing, accounting is disabled or slurmdbd is down, or the job is not (yet) in the database |
//! | [`Slurm::admin_comment`] | `sacct -X -P -n -a -j ID --format=JobID,JobIDRaw,AdminComment` | `scontrol -o show job ID` |
//! | [`Slurm::set_admin_comment`] | `sacctmgr -i modify job where jobid=ID set AdminComment=TEXT` | none |
//! | [`Slurm::history`] | `sacct -X -P -n -a -S SINCE -E now -s CD [--user=U] [--name=N] --format=`[`HISTORY_FORMAT`] (+ `sacct -B -j ID` per run with [`Slurm::with_script_hash`], hashed by [`script_fingerprint`]) | none |
//! | [`Slurm::finished_jobs`] | `sacct -X -P -n -a -S SINCE -E now -s CD,F,TO,OOM,CA,NF --format=`[`SACCT_FORMAT`] | none |
//!
//! With `-s` (a state filter) 22.05's `sacct` lists nothing unless `-E` is given too, so the
//! history and backfill queries always pass `-E now`.
//!
//! Memory: the whole job's memory is `mem=` of `AllocTRES` (the total over the nodes).
//! Only where that is absent (pending jobs, old records) `ReqMem` is used: Slurm 22.05 prints
//! it without the per-CPU/per-node suffix (`4000M`, the job's request as stored in its TRES);
//! older releases' `4000Mc`/`4000Mn` are multiplied by the CPUs/nodes.

use std::path::PathBuf;
use std::time::Duration;

use hpcmon_kit::command::{run, Cmd, CommandError};
use hpcmon_kit::slurm_text::{duration_seconds, memory_bytes, split_fields, MB};

use crate::model::{JobHeader, Run};

/// Why Slurm gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlurmError {
    /// The job id is not known to Slurm (or is not a job id at all).
    #[error("job not found: {0}")]
    NotFound(String),
    /// The Slurm client commands are not installed (or not in the configured directory).
    #[error("Slurm commands not installed: {0}")]
    NotInstalled(String),
    /// A command failed.
    #[error("Slurm command failed: {0}")]
    Failed(String),
    /// A command did not answer in time and was killed.
    #[error("Slurm command timed out: {0}")]
    Timeout(String),
    /// A command's output could not be read.
    #[error("unreadable Slurm output: {0}")]
    Unparsable(String),
}

/// `sacct --format` of [`Slurm::header`] and [`Slurm::finished_jobs`]: the free-text
/// `JobName` last. `ReqTRES` gives a pending job's requested GPUs and memory.
pub const SACCT_FORMAT: &str = "JobID,JobIDRaw,User,Account,Partition,State,NNodes,NodeList,AllocCPUS,AllocTRES,ReqTRES,ReqMem,Submit,Start,End,ElapsedRaw,TimelimitRaw,ExitCode,JobName";
const SACCT_FIELDS: usize = 19;

/// `sacct --format` of [`Slurm::history`].
pub const HISTORY_FORMAT: &str =
    "JobID,JobIDRaw,User,State,NNodes,AllocCPUS,ElapsedRaw,End,JobName";
const HISTORY_FIELDS: usize = 9;

/// `squeue -O` of the [`Slurm::header`] fallback: `|` as each field's suffix, the name last.
pub const SQUEUE_FORMAT: &str = "JobID:|,ArrayJobID:|,ArrayTaskID:|,UserName:|,Account:|,Partition:|,State:|,NumNodes:|,NodeList:|,NumCPUs:|,tres-alloc:|,SubmitTime:|,StartTime:|,EndTime:|,TimeUsed:|,TimeLimit:|,Name:";
const SQUEUE_FIELDS: usize = 17;

/// The longest AdminComment [`Slurm::set_admin_comment`] writes: slurmdbd keeps it in a
/// MariaDB/MySQL `TEXT` column, which silently truncates at 65 535 bytes (seen on 22.05:
/// `sacctmgr` exits 0 and the stored comment is cut).
pub const MAX_ADMIN_COMMENT: usize = 65_535;

/// Runs the Slurm client commands.
#[derive(Debug, Clone)]
pub struct Slurm {
    bin_dir: Option<PathBuf>,
    timeout: Duration,
    script_hash: bool,
}

impl Slurm {
    /// Commands from `bin_dir` (None: from `PATH`), each killed after `timeout`.
    pub fn new(bin_dir: Option<PathBuf>, timeout: Duration) -> Slurm {
        Slurm {
            bin_dir,
            timeout,
            script_hash: false,
        }
    }

    /// With `on`, [`Slurm::history`] also reads each run's batch script (`sacct -B -j ID`,
    /// stored only with `AccountingStoreFlags=job_script`) and sets [`Run::script_hash`] to
    /// its [`script_fingerprint`] (None where no script is stored). One extra `sacct` per
    /// run, so off by default.
    pub fn with_script_hash(mut self, on: bool) -> Slurm {
        self.script_hash = on;
        self
    }

    fn cmd(&self, program: &str) -> Cmd {
        let path = match &self.bin_dir {
            Some(d) => d.join(program).into_os_string(),
            None => program.into(),
        };
        Cmd::new(path).env("SLURM_TIME_FORMAT", "%s")
    }

    fn where_(&self) -> String {
        match &self.bin_dir {
            Some(d) => format!("in {}", d.display()),
            None => "in PATH".to_string(),
        }
    }

    async fn exec(&self, program: &str, args: &[String]) -> Result<String, SlurmError> {
        let cmd = self.cmd(program).args(args);
        match run(&cmd, self.timeout).await {
            Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Err(CommandError::Spawn { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(SlurmError::NotInstalled(format!(
                    "`{program}` not found {}: install Slurm's client commands or set the Slurm bin directory",
                    self.where_()
                )))
            }
            Err(CommandError::Timeout { timeout, .. }) => Err(SlurmError::Timeout(format!(
                "`{program}` did not answer within {timeout:?} and was killed (slurmctld or slurmdbd slow or down?)"
            ))),
            Err(e) => Err(SlurmError::Failed(e.to_string())),
        }
    }

    /// The job's header: from accounting (`sacct`), or from the controller (`squeue`) when
    /// accounting is not available or does not know the job yet.
    pub async fn header(&self, jobid: &str) -> Result<JobHeader, SlurmError> {
        check_jobid(jobid)?;
        let args = sacct_job_args(jobid, SACCT_FORMAT);
        let sacct_problem = match self.exec("sacct", &args).await {
            Ok(out) => {
                let jobs = parse_sacct(&out)?;
                if let Some(h) = pick(jobs, jobid, |h| (&h.jobid, &h.jobid_raw)) {
                    return Ok(h);
                }
                None
            }
            Err(e) if accounting_unavailable(&e) => Some(e),
            Err(e) => return Err(e),
        };
        match self.squeue_header(jobid).await {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(SlurmError::NotFound(match &sacct_problem {
                None => format!("job {jobid} is unknown to Slurm (neither sacct nor squeue knows it)"),
                Some(e) => format!(
                    "job {jobid} is not in the controller's queue (squeue), and accounting is unavailable ({e}), so finished jobs cannot be looked up"
                ),
            })),
            Err(SlurmError::NotInstalled(m)) => match sacct_problem {
                None => Err(SlurmError::NotFound(format!(
                    "job {jobid} is not in Slurm accounting (sacct), and squeue is unavailable: {m}"
                ))),
                Some(SlurmError::NotInstalled(_)) => Err(SlurmError::NotInstalled(format!(
                    "neither `sacct` nor `squeue` found {}",
                    self.where_()
                ))),
                Some(e) => Err(SlurmError::Failed(format!("{e}; and {m}"))),
            },
            Err(e) => Err(e),
        }
    }

    async fn squeue_header(&self, jobid: &str) -> Result<Option<JobHeader>, SlurmError> {
        let args: Vec<String> = ["-h", "-j", jobid, "-O", SQUEUE_FORMAT]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match self.exec("squeue", &args).await {
            Ok(out) => Ok(pick(parse_squeue(&out)?, jobid, |h| {
                (&h.jobid, &h.jobid_raw)
            })),
            Err(SlurmError::Failed(m)) if m.contains("Invalid job id") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The job's AdminComment (None: empty). From `sacct`; from `scontrol show job` when
    /// accounting is unavailable or has no record of the job yet.
    pub async fn admin_comment(&self, jobid: &str) -> Result<Option<String>, SlurmError> {
        check_jobid(jobid)?;
        let args = sacct_job_args(jobid, "JobID,JobIDRaw,AdminComment");
        let problem = match self.exec("sacct", &args).await {
            Ok(out) => {
                let rows = parse_admin_comments(&out)?;
                if let Some((_, _, c)) = pick(rows, jobid, |r| (&r.0, &r.1)) {
                    return Ok(c);
                }
                None
            }
            Err(e) if accounting_unavailable(&e) => Some(e),
            Err(e) => return Err(e),
        };
        let args: Vec<String> = ["-o", "show", "job", jobid]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match self.exec("scontrol", &args).await {
            Ok(out) => Ok(parse_scontrol_admin_comment(&out)),
            Err(SlurmError::Failed(m)) if m.contains("Invalid job id") => {
                Err(SlurmError::NotFound(match problem {
                    None => format!(
                        "job {jobid} is unknown to Slurm (neither sacct nor scontrol knows it)"
                    ),
                    Some(e) => format!(
                        "job {jobid} is not in the controller, and accounting is unavailable ({e})"
                    ),
                }))
            }
            Err(e) => Err(problem.unwrap_or(e)),
        }
    }

    /// Stores `text` as the job's AdminComment in accounting:
    /// `sacctmgr -i modify job where jobid=ID set AdminComment=TEXT`. Only characters that
    /// pass through sacctmgr's parser unchanged are accepted (letters, digits, `+/=:._-`,
    /// which covers [`crate::summary::encode`]'s output), at most [`MAX_ADMIN_COMMENT`] bytes.
    pub async fn set_admin_comment(&self, jobid: &str, text: &str) -> Result<(), SlurmError> {
        check_jobid(jobid)?;
        check_admin_comment(text)?;
        let args: Vec<String> = vec![
            "-i".into(),
            "modify".into(),
            "job".into(),
            "where".into(),
            format!("jobid={jobid}"),
            "set".into(),
            format!("AdminComment={text}"),
        ];
        let not_found = || {
            SlurmError::NotFound(format!(
                "sacctmgr found no accounting record of job {jobid} to modify (not yet written by slurmctld, or unknown)"
            ))
        };
        // 22.05: an unknown job gives ` Nothing modified` on stdout, "Request didn't affect
        // anything" on stderr and exit 1.
        match self.exec("sacctmgr", &args).await {
            Ok(out) if out.contains("Nothing modified") => Err(not_found()),
            Ok(_) => Ok(()),
            Err(SlurmError::Failed(m)) if m.contains("didn't affect anything") => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// Completed runs since `since` (any `sacct -S` time: `2024-01-01`, `now-30days`), of
    /// `user` and with job name exactly `name` when given.
    pub async fn history(
        &self,
        user: Option<&str>,
        name: Option<&str>,
        since: &str,
    ) -> Result<Vec<Run>, SlurmError> {
        check_arg("start time", since)?;
        let mut args: Vec<String> = ["-X", "-P", "-n", "-a", "-s", "CD"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!("--starttime={since}"));
        // With -s, 22.05's sacct returns nothing unless the end of the window is given too.
        args.push("--endtime=now".into());
        if let Some(u) = user {
            check_arg("user", u)?;
            args.push(format!("--user={u}"));
        }
        // `--name` takes a comma-separated list: a name with a comma is filtered here only.
        if let Some(n) = name.filter(|n| !n.contains(',')) {
            check_arg("job name", n)?;
            args.push(format!("--name={n}"));
        }
        args.push(format!("--format={HISTORY_FORMAT}"));
        let out = self.exec("sacct", &args).await?;
        let mut runs = parse_history(&out)?;
        if let Some(n) = name {
            runs.retain(|r| r.name == n);
        }
        if let Some(u) = user {
            runs.retain(|r| r.user == u);
        }
        if self.script_hash {
            for r in &mut runs {
                r.script_hash = self.script_hash_of(&r.jobid).await?;
            }
        }
        Ok(runs)
    }

    async fn script_hash_of(&self, jobid: &str) -> Result<Option<String>, SlurmError> {
        let args: Vec<String> = vec!["-B".into(), "-j".into(), jobid.into()];
        match self.exec("sacct", &args).await {
            Ok(out) => Ok(batch_script(&out).map(|s| script_fingerprint(&s))),
            // An old sacct without --batch-script: no hashes, not an error.
            Err(SlurmError::Failed(m)) if m.contains("unrecognized option") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Jobs that ended since `since` (completed, failed, timed out, OOM, cancelled, node
    /// failure), for the backfill. Jobs that never started (cancelled while pending) are left
    /// out: they have nothing to summarise.
    pub async fn finished_jobs(&self, since: &str) -> Result<Vec<JobHeader>, SlurmError> {
        check_arg("start time", since)?;
        let args: Vec<String> = vec![
            "-X".into(),
            "-P".into(),
            "-n".into(),
            "-a".into(),
            "-s".into(),
            "CD,F,TO,OOM,CA,NF".into(),
            format!("--starttime={since}"),
            "--endtime=now".into(),
            format!("--format={SACCT_FORMAT}"),
        ];
        let out = self.exec("sacct", &args).await?;
        let mut jobs = parse_sacct(&out)?;
        jobs.retain(|j| j.start_time.is_some() && !j.is_active() && j.state != "PENDING");
        Ok(jobs)
    }
}

fn sacct_job_args(jobid: &str, format: &str) -> Vec<String> {
    vec![
        "-X".into(),
        "-P".into(),
        "-n".into(),
        "-a".into(),
        "-j".into(),
        jobid.into(),
        format!("--format={format}"),
    ]
}

/// Whether an error means "no accounting here", so the controller is asked instead.
fn accounting_unavailable(e: &SlurmError) -> bool {
    match e {
        SlurmError::NotInstalled(_) => true,
        SlurmError::Failed(m) => {
            let m = m.to_ascii_lowercase();
            [
                "accounting storage is disabled",
                "slurmdbd",
                "database",
                "persistent connection",
                "connection refused",
                "accounting_storage",
            ]
            .iter()
            .any(|p| m.contains(p))
        }
        _ => false,
    }
}

/// The row for `jobid`: the one whose `JobID` is `jobid`, else whose `JobIDRaw` is, else the
/// only row. (For an array's base id `sacct -j` lists every task; the one whose raw id is
/// the base id is taken.)
fn pick<T>(rows: Vec<T>, jobid: &str, ids: impl Fn(&T) -> (&String, &String)) -> Option<T> {
    if let Some(i) = rows.iter().position(|r| ids(r).0 == jobid) {
        return rows.into_iter().nth(i);
    }
    if let Some(i) = rows.iter().position(|r| ids(r).1 == jobid) {
        return rows.into_iter().nth(i);
    }
    if rows.len() == 1 {
        return rows.into_iter().next();
    }
    None
}

/// A job id as users type it: `123`, `123_4` (array task), `123+1` (het job component).
pub fn check_jobid(jobid: &str) -> Result<(), SlurmError> {
    let ok = {
        let (base, rest) = match jobid.find(['_', '+']) {
            Some(i) => (&jobid[..i], Some(&jobid[i + 1..])),
            None => (jobid, None),
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        digits(base) && rest.is_none_or(digits)
    };
    if ok {
        Ok(())
    } else {
        Err(SlurmError::NotFound(format!(
            "{:?} is not a Slurm job id (expected digits, e.g. 1234 or 1234_5)",
            jobid
        )))
    }
}

fn check_arg(what: &str, v: &str) -> Result<(), SlurmError> {
    if v.is_empty() || v.len() > 200 || v.chars().any(|c| c.is_control() || c == '\n') {
        return Err(SlurmError::Failed(format!("invalid {what} {v:?}")));
    }
    Ok(())
}

fn check_admin_comment(text: &str) -> Result<(), SlurmError> {
    if text.len() > MAX_ADMIN_COMMENT {
        return Err(SlurmError::Failed(format!(
            "AdminComment of {} bytes is longer than the {MAX_ADMIN_COMMENT} bytes slurmdbd stores (it would be cut): keep this summary in the --store.url table",
            text.len()
        )));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+/=:._-".contains(*c)))
    {
        return Err(SlurmError::Failed(format!(
            "AdminComment contains {c:?}: only letters, digits and +/=:._- pass through sacctmgr unchanged"
        )));
    }
    Ok(())
}

/// SHA-256 (hex) of a batch script without its `#SBATCH` lines: those carry the resource
/// request (`-n 4`, `--time`), which is exactly what differs between the runs the scaling
/// prediction compares, so runs of the same program at different core counts hash alike.
pub fn script_fingerprint(script: &str) -> String {
    let body: Vec<&str> = script
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim_start().starts_with("#SBATCH"))
        .collect();
    sha256_hex(body.join("\n").trim().as_bytes())
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Pure parsers.

/// `None` for Slurm's spellings of "nothing".
fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    match t {
        "" | "N/A" | "n/a" | "(null)" | "None" | "none" | "Unknown" | "None assigned" => None,
        _ => Some(t),
    }
}

fn uint(s: &str) -> Option<u32> {
    non_empty(s)?.parse().ok()
}

/// Unix seconds (`SLURM_TIME_FORMAT=%s`); `Unknown`, `None`, `0` and garbage are `None`.
fn unix_time(s: &str) -> Option<i64> {
    non_empty(s)?.parse().ok().filter(|t: &i64| *t > 0)
}

/// `ReqMem` as bytes for the whole job: 22.05's `4000M` is the job's request; older
/// releases' `4000Mc`/`4000Mn` are per CPU/per node. `0` (no request) is `None`.
pub fn req_mem_bytes(s: &str, cpus: u32, nodes: u32) -> Option<f64> {
    let t = non_empty(s)?;
    let (v, mult) = match t.strip_suffix('c') {
        Some(r) => (r, f64::from(cpus.max(1))),
        None => match t.strip_suffix('n') {
            Some(r) => (r, f64::from(nodes.max(1))),
            None => (t, 1.0),
        },
    };
    memory_bytes(v, MB).map(|b| b * mult).filter(|b| *b > 0.0)
}

/// The GPUs and memory (bytes) of a TRES string (`cpu=4,mem=8G,node=1,gres/gpu=2`).
/// Typed `gres/gpu:a100=2` entries count when the untyped total is absent.
pub fn tres_gpus_mem(s: &str) -> (Option<u32>, Option<f64>) {
    let mut total = None;
    let mut typed: Option<u32> = None;
    let mut mem = None;
    for item in s.trim().split(',') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        match k.trim() {
            "mem" => mem = memory_bytes(v, MB).filter(|b| *b > 0.0),
            "gres/gpu" => total = uint(v),
            k if k.starts_with("gres/gpu:") => {
                if let Some(n) = uint(v) {
                    typed = Some(typed.unwrap_or(0) + n);
                }
            }
            _ => {}
        }
    }
    (total.or(typed), mem)
}

/// A state as sacct prints it (`CANCELLED by 1000`, `RUNNING`) reduced to its upper-case
/// word; `None` when it is not one.
pub fn parse_state(s: &str) -> Option<String> {
    let w = s.split_whitespace().next()?.trim_end_matches('+');
    (!w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')).then(|| w.to_string())
}

fn bad(what: &str, n: usize, line: &str) -> SlurmError {
    let mut l = line.to_string();
    if l.len() > 120 {
        let mut cut = 120;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
        l.push('…');
    }
    SlurmError::Unparsable(format!("{what} line {n}: {l:?}"))
}

/// Parses `sacct -X -P -n --format=`[`SACCT_FORMAT`] output (with `SLURM_TIME_FORMAT=%s`).
/// A line without all fields or without a readable state is an error: the format is ours,
/// so such a line means the wrong command or a new Slurm, not data to skip.
pub fn parse_sacct(text: &str) -> Result<Vec<JobHeader>, SlurmError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields::<SACCT_FIELDS>(line).ok_or_else(|| bad("sacct", i + 1, line))?;
        let state = parse_state(f[5]).ok_or_else(|| bad("sacct", i + 1, line))?;
        let jobid = f[0].trim();
        if jobid.is_empty() {
            return Err(bad("sacct", i + 1, line));
        }
        let nodes = uint(f[6]).unwrap_or(0);
        let cpus = uint(f[8]).unwrap_or(0);
        let (alloc_gpus, alloc_mem) = tres_gpus_mem(f[9]);
        let (req_gpus, req_mem) = tres_gpus_mem(f[10]);
        let start_time = unix_time(f[13]);
        let pending = state == "PENDING" || start_time.is_none();
        let mut h = JobHeader {
            jobid: jobid.to_string(),
            jobid_raw: non_empty(f[1]).unwrap_or(jobid).to_string(),
            user: f[2].trim().to_string(),
            account: f[3].trim().to_string(),
            partition: f[4].trim().to_string(),
            name: f[18].to_string(),
            state,
            nodelist: if pending {
                String::new()
            } else {
                non_empty(f[7]).unwrap_or("").to_string()
            },
            nodes,
            cpus,
            gpus: alloc_gpus.or(req_gpus).unwrap_or(0),
            mem_requested_bytes: alloc_mem
                .or(req_mem)
                .or_else(|| req_mem_bytes(f[11], cpus, nodes)),
            submit_time: unix_time(f[12]),
            start_time,
            end_time: unix_time(f[14]),
            elapsed_seconds: if pending {
                None
            } else {
                non_empty(f[15]).and_then(|s| s.parse::<f64>().ok())
            },
            time_limit_seconds: non_empty(f[16])
                .and_then(|s| s.parse::<f64>().ok())
                .map(|m| m * 60.0),
            exit_code: non_empty(f[17]).map(str::to_string),
        };
        if h.is_active() {
            h.end_time = None;
        }
        out.push(h);
    }
    Ok(out)
}

/// Parses `squeue -h -O `[`SQUEUE_FORMAT`] output (with `SLURM_TIME_FORMAT=%s`). squeue
/// pads fields to a width; values are trimmed. Expected start/end times (pending, running)
/// are dropped: the header holds only what happened.
pub fn parse_squeue(text: &str) -> Result<Vec<JobHeader>, SlurmError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields::<SQUEUE_FIELDS>(line).ok_or_else(|| bad("squeue", i + 1, line))?;
        let state = parse_state(f[6]).ok_or_else(|| bad("squeue", i + 1, line))?;
        let raw = f[0].trim();
        if raw.is_empty() {
            return Err(bad("squeue", i + 1, line));
        }
        let jobid = match (non_empty(f[1]), non_empty(f[2])) {
            (Some(a), Some(t)) if t.bytes().all(|b| b.is_ascii_digit()) => format!("{a}_{t}"),
            (Some(a), Some(t)) => format!("{a}_[{}]", t.trim_matches(['[', ']'])),
            _ => raw.to_string(),
        };
        let pending = state == "PENDING";
        let (gpus, mem) = tres_gpus_mem(f[10]);
        let mut h = JobHeader {
            jobid,
            jobid_raw: raw.to_string(),
            user: f[3].trim().to_string(),
            account: f[4].trim().to_string(),
            partition: f[5].trim().to_string(),
            name: f[16].trim_end().to_string(),
            nodelist: if pending {
                String::new()
            } else {
                non_empty(f[8]).unwrap_or("").to_string()
            },
            nodes: uint(f[7]).unwrap_or(0),
            cpus: uint(f[9]).unwrap_or(0),
            gpus: gpus.unwrap_or(0),
            mem_requested_bytes: mem,
            submit_time: unix_time(f[11]),
            start_time: if pending { None } else { unix_time(f[12]) },
            end_time: unix_time(f[13]),
            elapsed_seconds: if pending {
                None
            } else {
                duration_seconds(f[14])
            },
            time_limit_seconds: duration_seconds(f[15]),
            exit_code: None,
            state,
        };
        if h.is_active() || pending {
            h.end_time = None;
        }
        out.push(h);
    }
    Ok(out)
}

/// Parses `sacct -X -P -n --format=`[`HISTORY_FORMAT`] output.
pub fn parse_history(text: &str) -> Result<Vec<Run>, SlurmError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields::<HISTORY_FIELDS>(line).ok_or_else(|| bad("sacct", i + 1, line))?;
        let state = parse_state(f[3]).ok_or_else(|| bad("sacct", i + 1, line))?;
        let elapsed = non_empty(f[6])
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| bad("sacct", i + 1, line))?;
        out.push(Run {
            jobid: f[0].trim().to_string(),
            user: f[2].trim().to_string(),
            name: f[8].to_string(),
            cpus: uint(f[5]).unwrap_or(0),
            nodes: uint(f[4]).unwrap_or(0),
            elapsed_seconds: elapsed,
            state,
            script_hash: None,
            end_time: unix_time(f[7]),
        });
    }
    Ok(out)
}

/// Parses `sacct -X -P -n --format=JobID,JobIDRaw,AdminComment`: (jobid, raw, comment).
fn parse_admin_comments(text: &str) -> Result<Vec<(String, String, Option<String>)>, SlurmError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields::<3>(line).ok_or_else(|| bad("sacct", i + 1, line))?;
        let c = f[2].trim();
        out.push((
            f[0].trim().to_string(),
            f[1].trim().to_string(),
            (!c.is_empty()).then(|| c.to_string()),
        ));
    }
    Ok(out)
}

/// The `AdminComment=` of `scontrol -o show job` (None when absent or empty).
pub fn parse_scontrol_admin_comment(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let start = if line.starts_with("AdminComment=") {
        0
    } else {
        line.find(" AdminComment=")? + 1
    };
    let v = &line[start + "AdminComment=".len()..];
    // The value runs to the next ` Key=` (scontrol prints no quoting).
    let end = v
        .match_indices(' ')
        .find(|(i, _)| {
            let rest = &v[i + 1..];
            rest.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'/')
                    && k.as_bytes()[0].is_ascii_uppercase()
            })
        })
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    let v = v[..end].trim();
    (!v.is_empty() && v != "(null)").then(|| v.to_string())
}

/// The script in `sacct -B -j ID` output, without its `Batch Script for ID` header (so the
/// same script hashes the same for every job); None for `NONE` (not stored).
pub fn batch_script(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    if lines.peek()?.trim_start().starts_with("Batch Script for") {
        lines.next();
        if lines
            .peek()
            .is_some_and(|l| l.trim().chars().all(|c| c == '-') && !l.trim().is_empty())
        {
            lines.next();
        }
    }
    let body: Vec<&str> = lines.collect();
    let s = body.join("\n");
    let t = s.trim();
    (!t.is_empty() && t != "NONE").then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../testdata/sacct/sacct-header.txt");
    const RUNNING: &str = include_str!("../testdata/sacct/sacct-running-pending.txt");
    const SQUEUE_ALL: &str = include_str!("../testdata/sacct/squeue-all.txt");
    const HISTORY: &str = include_str!("../testdata/sacct/sacct-history.txt");
    const HANDMADE: &str = include_str!("../testdata/sacct/handmade-states.txt");
    const SCONTROL: &str = include_str!("../testdata/sacct/scontrol-show-job-comment.txt");
    const BATCH: &str = include_str!("../testdata/sacct/sacct-batch-script.txt");

    fn find<'a>(jobs: &'a [JobHeader], id: &str) -> &'a JobHeader {
        jobs.iter()
            .find(|j| j.jobid == id)
            .unwrap_or_else(|| panic!("no job {id}"))
    }

    #[test]
    fn real_finished_jobs() {
        let jobs = parse_sacct(HEADER).unwrap();
        assert!(jobs.len() >= 14, "{}", jobs.len());
        let q = find(&jobs, "1");
        assert_eq!(q.name, "quick");
        assert_eq!(q.state, "COMPLETED");
        assert_eq!(q.user, "root");
        assert_eq!(q.partition, "debug");
        assert_eq!(q.cpus, 1);
        assert_eq!(q.nodes, 1);
        assert_eq!(q.nodelist, "n1");
        assert_eq!(q.mem_requested_bytes, Some(500.0 * 1024.0 * 1024.0));
        assert_eq!(q.exit_code.as_deref(), Some("0:0"));
        let (s, b, e) = (
            q.submit_time.unwrap(),
            q.start_time.unwrap(),
            q.end_time.unwrap(),
        );
        assert!(s <= b && b <= e && s > 1_600_000_000);
        assert_eq!(q.elapsed_seconds, Some((e - b) as f64));
        assert_eq!(q.time_limit_seconds, None, "UNLIMITED");
        let f = find(&jobs, "2");
        assert_eq!(
            (f.state.as_str(), f.exit_code.as_deref()),
            ("FAILED", Some("3:0"))
        );
        let t = find(&jobs, "3");
        assert_eq!(t.state, "TIMEOUT");
        assert_eq!(t.time_limit_seconds, Some(60.0));
        assert!(t.elapsed_seconds.unwrap() >= 60.0);
        let c = find(&jobs, "4");
        assert_eq!(c.state, "CANCELLED", "'CANCELLED by 0' reduced");
        let g = find(&jobs, "6");
        assert_eq!((g.gpus, g.cpus, g.partition.as_str()), (2, 2, "gpu"));
        let w = find(&jobs, "7");
        assert_eq!(w.name, "weird|name x", "a name with | survives");
        // 22.05: ReqMem/AllocTRES mem is the whole job's: 2 CPUs x 200M, 2 nodes x 300M.
        assert_eq!(
            find(&jobs, "8").mem_requested_bytes,
            Some(400.0 * 1048576.0)
        );
        let m = find(&jobs, "11");
        assert_eq!((m.nodes, m.cpus, m.nodelist.as_str()), (2, 4, "n[3-4]"));
        assert_eq!(m.mem_requested_bytes, Some(600.0 * 1048576.0));
        // Array tasks: the display id and the unique raw id differ.
        let a = find(&jobs, "5_1");
        assert_ne!(a.jobid_raw, "5");
        assert_eq!(find(&jobs, "5_3").jobid_raw, "5");
        for j in &jobs {
            assert!(!j.is_active() && !j.is_pending(), "{j:?}");
        }
    }

    #[test]
    fn real_running_and_pending() {
        let jobs = parse_sacct(RUNNING).unwrap();
        let r = find(&jobs, "15");
        assert_eq!(r.state, "RUNNING");
        assert!(r.is_active());
        assert_eq!(r.end_time, None);
        assert_eq!((r.gpus, r.time_limit_seconds), (1, Some(1800.0)));
        assert!(r.elapsed_seconds.is_some());
        let p = find(&jobs, "16");
        assert_eq!(p.state, "PENDING");
        assert!(p.is_pending());
        assert_eq!(
            (p.nodelist.as_str(), p.start_time, p.elapsed_seconds),
            ("", None, None)
        );
        assert_eq!(
            p.mem_requested_bytes,
            Some(100.0 * 1048576.0),
            "from ReqTRES"
        );
    }

    #[test]
    fn real_squeue() {
        let jobs = parse_squeue(SQUEUE_ALL).unwrap();
        let r = find(&jobs, "15");
        assert_eq!((r.state.as_str(), r.gpus, r.cpus), ("RUNNING", 1, 2));
        assert_eq!(r.nodelist, "gpu1");
        assert_eq!(r.time_limit_seconds, Some(1800.0));
        assert_eq!(r.end_time, None, "expected end of a running job is dropped");
        assert!(r.start_time.is_some() && r.submit_time.is_some());
        assert_eq!(r.mem_requested_bytes, Some(200.0 * 1048576.0));
        let p = find(&jobs, "16");
        assert_eq!(
            (p.state.as_str(), p.start_time, p.name.as_str()),
            ("PENDING", None, "held")
        );
        let u = find(&jobs, "12");
        assert_eq!(u.time_limit_seconds, None, "UNLIMITED");
    }

    #[test]
    fn squeue_array_ids() {
        let line = "21|20|3|alice|acct|debug|RUNNING|1|n1|1|cpu=1,node=1|100|110|NONE|1-00:00:05|2-00:00:00|a|b\n\
                    20|20|4-9%2|alice|acct|debug|PENDING|1||1|cpu=1|100|N/A|N/A|0:00|10|a|b\n";
        let jobs = parse_squeue(line).unwrap();
        assert_eq!(
            (jobs[0].jobid.as_str(), jobs[0].jobid_raw.as_str()),
            ("20_3", "21")
        );
        assert_eq!(jobs[0].elapsed_seconds, Some(86405.0));
        assert_eq!(jobs[0].time_limit_seconds, Some(2.0 * 86400.0));
        assert_eq!(jobs[0].name, "a|b");
        assert_eq!(jobs[1].jobid, "20_[4-9%2]");
        assert_eq!(jobs[1].time_limit_seconds, Some(600.0));
    }

    #[test]
    fn handmade_states_and_fields() {
        let jobs = parse_sacct(HANDMADE).unwrap();
        let states: Vec<&str> = jobs.iter().map(|j| j.state.as_str()).collect();
        for s in [
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
            "REQUEUED",
            "SUSPENDED",
            "COMPLETING",
            "REVOKED",
            "CANCELLED",
        ] {
            assert!(states.contains(&s), "{s} missing from {states:?}");
        }
        let oom = find(&jobs, "101");
        assert_eq!(oom.exit_code.as_deref(), Some("0:125"));
        assert_eq!(oom.gpus, 3, "typed gres/gpu:a100 + gres/gpu:v100");
        // Old-style ReqMem suffixes when AllocTRES has no mem.
        assert_eq!(
            find(&jobs, "102").mem_requested_bytes,
            Some(4.0 * 2000.0 * 1048576.0)
        );
        assert_eq!(
            find(&jobs, "103").mem_requested_bytes,
            Some(2.0 * 1.5 * 1073741824.0)
        );
        // Missing/empty optional fields are None, not errors.
        let e = find(&jobs, "104");
        assert_eq!(
            (e.mem_requested_bytes, e.exit_code.clone(), e.submit_time),
            (None, None, None)
        );
        assert_eq!((e.cpus, e.nodes, e.gpus), (0, 0, 0));
        assert_eq!(e.name, "");
        assert!(e.is_active());
        // A job name that looks like fields.
        assert_eq!(find(&jobs, "105").name, "a|b|c|COMPLETED|1|");
    }

    #[test]
    fn malformed_lines_are_errors() {
        let e = parse_sacct("1|1|root|root|debug|COMPLETED|1\n").unwrap_err();
        assert!(matches!(e, SlurmError::Unparsable(_)), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");
        let line = "1|1|root|root|debug|completed|1|n1|1|||0|1|2|3|1|0|0:0|x";
        assert!(parse_sacct(line).is_err(), "lower-case state");
        let line = "|1|root|root|debug|COMPLETED|1|n1|1|||0|1|2|3|1|0|0:0|x";
        assert!(parse_sacct(line).is_err(), "empty id");
        assert!(parse_squeue("garbage\n").is_err());
        assert!(parse_history("1|1|u|COMPLETED|1|2|notanumber|5|x").is_err());
        assert_eq!(parse_sacct("\n\n").unwrap(), vec![]);
        // Never panics, whatever the bytes.
        for s in [
            "|||||||||||||||||||",
            "é|ü|\u{0}|",
            "1|1|u|a|p|RUNNING|-5|n|99999999999|||||||||||",
        ] {
            let _ = parse_sacct(s);
            let _ = parse_squeue(s);
            let _ = parse_history(s);
        }
    }

    #[test]
    fn real_history() {
        let runs = parse_history(HISTORY).unwrap();
        let scale: Vec<&Run> = runs.iter().filter(|r| r.name == "scale").collect();
        assert_eq!(scale.len(), 3);
        let mut by_cpus: Vec<(u32, f64)> =
            scale.iter().map(|r| (r.cpus, r.elapsed_seconds)).collect();
        by_cpus.sort_by_key(|x| x.0);
        assert_eq!(
            by_cpus.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(by_cpus[0].1 > by_cpus[2].1, "{by_cpus:?}");
        assert!(runs
            .iter()
            .all(|r| r.state == "COMPLETED" && r.end_time.is_some()));
        assert!(runs.iter().any(|r| r.name == "weird|name x"));
    }

    #[test]
    fn states_units_durations() {
        assert_eq!(parse_state("CANCELLED by 0").as_deref(), Some("CANCELLED"));
        assert_eq!(parse_state("CANCELLED+").as_deref(), Some("CANCELLED"));
        assert_eq!(parse_state(" RUNNING ").as_deref(), Some("RUNNING"));
        assert_eq!(parse_state(""), None);
        assert_eq!(parse_state("running"), None);
        assert_eq!(memory_bytes("4000M", MB), Some(4000.0 * 1048576.0));
        assert_eq!(memory_bytes("1.50G", MB), Some(1.5 * 1073741824.0));
        assert_eq!(memory_bytes("2000", MB), Some(2000.0 * 1048576.0));
        assert_eq!(memory_bytes("12X", MB), None);
        assert_eq!(memory_bytes("-1M", MB), None);
        assert_eq!(req_mem_bytes("0", 1, 1), None);
        assert_eq!(req_mem_bytes("100Mc", 4, 2), Some(400.0 * 1048576.0));
        assert_eq!(req_mem_bytes("100Mn", 4, 2), Some(200.0 * 1048576.0));
        assert_eq!(
            tres_gpus_mem("cpu=2,gres/gpu=2,gres/gpu:a100=2"),
            (Some(2), None)
        );
        assert_eq!(tres_gpus_mem(""), (None, None));
        assert_eq!(duration_seconds("1-02:03:04"), Some(93784.0));
        assert_eq!(duration_seconds("5:00"), Some(300.0));
        assert_eq!(duration_seconds("30"), Some(1800.0));
        assert_eq!(duration_seconds("UNLIMITED"), None);
        assert_eq!(duration_seconds("Partition_Limit"), None);
        assert_eq!(duration_seconds("1:2:3:4"), None);
    }

    #[test]
    fn job_ids_and_comments_are_validated() {
        for ok in ["1", "123_4", "99+1"] {
            check_jobid(ok).unwrap();
        }
        for bad in ["", "abc", "1;rm", "-j", "1_", "1 2", "1_2_3", "１"] {
            let e = check_jobid(bad).unwrap_err();
            assert!(matches!(e, SlurmError::NotFound(_)), "{bad}");
            assert!(e.to_string().contains("not a Slurm job id"), "{e}");
        }
        check_admin_comment("hpcmon1:H4sIAAAA+/=").unwrap();
        for bad in ["a b", "a'b", "x\ny", "a,b", "a\"b"] {
            assert!(check_admin_comment(bad).is_err(), "{bad:?}");
        }
        assert!(check_admin_comment(&"a".repeat(MAX_ADMIN_COMMENT + 1)).is_err());
    }

    #[test]
    fn scontrol_comment_and_batch_script() {
        assert_eq!(
            parse_scontrol_admin_comment(SCONTROL).as_deref(),
            Some("hpcmon1:dGVzdA==")
        );
        assert_eq!(
            parse_scontrol_admin_comment("JobId=1 JobName=x UserId=root(0)"),
            None
        );
        assert_eq!(
            parse_scontrol_admin_comment("JobId=1 AdminComment=a=b Comment=x").as_deref(),
            Some("a=b")
        );
        let s = batch_script(BATCH).unwrap();
        assert!(s.starts_with("#!/bin/bash"), "{s}");
        assert!(!s.contains("Batch Script for"));
        assert_eq!(batch_script("Batch Script for 5\n----------\nNONE\n"), None);
        assert_eq!(batch_script(""), None);
        let a = "#!/bin/bash\n#SBATCH -n 4\n#SBATCH -t 10\nsrun ./app\n";
        let b = "#!/bin/bash\n#SBATCH -n 16\nsrun ./app";
        assert_eq!(script_fingerprint(a), script_fingerprint(b));
        assert_ne!(
            script_fingerprint(a),
            script_fingerprint("#!/bin/bash\nsrun ./other\n")
        );
        // Same script, different job: same hash.
        let other = BATCH.replacen("Batch Script for", "Batch Script for 1", 1);
        assert_eq!(batch_script(&other), batch_script(BATCH));
    }

    #[test]
    fn error_messages() {
        let e = SlurmError::NotFound("job 9 is unknown".into());
        assert_eq!(e.to_string(), "job not found: job 9 is unknown");
        assert!(accounting_unavailable(&SlurmError::Failed(
            "sacct failed (exit status: 1): Slurm accounting storage is disabled".into()
        )));
        assert!(accounting_unavailable(&SlurmError::Failed(
            "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:localhost:6819: Connection refused".into()
        )));
        assert!(!accounting_unavailable(&SlurmError::Timeout("x".into())));
        assert!(!accounting_unavailable(&SlurmError::Failed(
            "sacct: invalid option".into()
        )));
    }

    // ---- fake Slurm commands in a temp bin dir ----

    fn fake_bin(scripts: &[(&str, &str)]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        for (name, body) in scripts {
            let p = d.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        d
    }

    fn slurm(d: &tempfile::TempDir, t: Duration) -> Slurm {
        Slurm::new(Some(d.path().to_path_buf()), t)
    }

    const SQUEUE_15: &str = include_str!("../testdata/sacct/squeue-running.txt");
    const SLURMDBD_DOWN: &str = include_str!("../testdata/sacct/sacct-slurmdbd-down.stderr");

    #[tokio::test]
    async fn squeue_fallback_when_slurmdbd_is_down() {
        let d = fake_bin(&[
            (
                "sacct",
                &format!("cat >&2 <<'EOF'\n{SLURMDBD_DOWN}EOF\nexit 1"),
            ),
            (
                "squeue",
                &format!("[ \"$SLURM_TIME_FORMAT\" = %s ] || exit 7\n[ \"$3\" = 15 ] || {{ echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1; }}\ncat <<'EOF'\n{}EOF", SQUEUE_15),
            ),
        ]);
        let s = slurm(&d, Duration::from_secs(5));
        let h = s.header("15").await.unwrap();
        assert_eq!(
            (h.jobid.as_str(), h.state.as_str(), h.gpus),
            ("15", "RUNNING", 1)
        );
        let e = s.header("999").await.unwrap_err();
        assert!(matches!(e, SlurmError::NotFound(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("999") && m.contains("accounting is unavailable"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn squeue_fallback_when_accounting_is_disabled() {
        let d = fake_bin(&[
            (
                "sacct",
                "echo 'Slurm accounting storage is disabled' >&2; exit 1",
            ),
            ("squeue", &format!("cat <<'EOF'\n{}EOF", SQUEUE_15)),
        ]);
        let h = slurm(&d, Duration::from_secs(5))
            .header("15")
            .await
            .unwrap();
        assert_eq!(h.nodelist, "gpu1");
    }

    #[tokio::test]
    async fn unknown_job() {
        let d = fake_bin(&[
            ("sacct", "exit 0"),
            (
                "squeue",
                "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
            ),
        ]);
        let e = slurm(&d, Duration::from_secs(5))
            .header("424242")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            SlurmError::NotFound(
                "job 424242 is unknown to Slurm (neither sacct nor squeue knows it)".into()
            )
        );
    }

    #[tokio::test]
    async fn sacct_answer_wins_and_picks_the_right_row() {
        let d = fake_bin(&[("sacct", &format!("cat <<'EOF'\n{}EOF", HEADER))]);
        let s = slurm(&d, Duration::from_secs(5));
        assert_eq!(s.header("5").await.unwrap().jobid, "5_3", "raw id 5");
        assert_eq!(s.header("5_1").await.unwrap().jobid, "5_1");
    }

    #[tokio::test]
    async fn nothing_installed() {
        let d = fake_bin(&[]);
        let s = slurm(&d, Duration::from_secs(5));
        let e = s.header("1").await.unwrap_err();
        assert!(matches!(e, SlurmError::NotInstalled(_)), "{e}");
        assert!(
            e.to_string().contains("neither `sacct` nor `squeue`"),
            "{e}"
        );
        let e = s.history(None, None, "now-1day").await.unwrap_err();
        assert!(matches!(e, SlurmError::NotInstalled(_)), "{e}");
        let e = s.set_admin_comment("1", "hpcmon1:x").await.unwrap_err();
        assert!(e.to_string().contains("sacctmgr"), "{e}");
    }

    #[tokio::test]
    async fn hanging_sacct_times_out() {
        let d = fake_bin(&[("sacct", "sleep 30")]);
        let e = slurm(&d, Duration::from_millis(300))
            .header("1")
            .await
            .unwrap_err();
        assert!(matches!(e, SlurmError::Timeout(_)), "{e}");
        assert!(e.to_string().contains("sacct"), "{e}");
    }

    #[tokio::test]
    async fn admin_comment_roundtrip_through_fake_sacctmgr() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("comment");
        let bin = fake_bin(&[
            (
                "sacctmgr",
                &format!(
                    "[ \"$1 $2 $3 $4 $5 $6\" = '-i modify job where jobid=7 set' ] || exit 9\nprintf '%s' \"${{7#AdminComment=}}\" > {}\necho ' Modified job'",
                    store.display()
                ),
            ),
            (
                "sacct",
                &format!("printf '7|7|'; cat {} 2>/dev/null; echo", store.display()),
            ),
        ]);
        let s = slurm(&bin, Duration::from_secs(5));
        assert_eq!(s.admin_comment("7").await.unwrap(), None);
        s.set_admin_comment("7", "hpcmon1:QUJD+/==").await.unwrap();
        assert_eq!(
            s.admin_comment("7").await.unwrap().as_deref(),
            Some("hpcmon1:QUJD+/==")
        );
        let e = s.set_admin_comment("7", "two words").await.unwrap_err();
        assert!(e.to_string().contains("only letters"), "{e}");
    }

    #[tokio::test]
    async fn sacctmgr_nothing_modified_is_not_found() {
        let bin = fake_bin(&[(
            "sacctmgr",
            "echo ' Nothing modified'; echo \"sacctmgr: accounting_storage/slurmdbd: acct_storage_p_modify_job: Request didn't affect anything or your user doesn't have privilege to perform this action\" >&2; exit 1",
        )]);
        let e = slurm(&bin, Duration::from_secs(5))
            .set_admin_comment("8", "hpcmon1:x")
            .await
            .unwrap_err();
        assert!(matches!(e, SlurmError::NotFound(_)), "{e}");
    }

    #[tokio::test]
    async fn history_filters_and_hashes() {
        let bin = fake_bin(&[(
            "sacct",
            &format!(
                "case \"$1\" in -B) cat <<'EOF'\n{}EOF\n;; *) cat <<'EOF'\n{}EOF\n;; esac",
                BATCH, HISTORY
            ),
        )]);
        let s = slurm(&bin, Duration::from_secs(5));
        let runs = s
            .history(Some("root"), Some("scale"), "now-1day")
            .await
            .unwrap();
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.script_hash.is_none()));
        let runs = s
            .with_script_hash(true)
            .history(None, Some("scale"), "now-1day")
            .await
            .unwrap();
        let h = runs[0].script_hash.clone().unwrap();
        assert_eq!(h.len(), 64);
        assert!(runs
            .iter()
            .all(|r| r.script_hash.as_deref() == Some(h.as_str())));
    }

    #[tokio::test]
    async fn finished_jobs_leave_out_never_started() {
        let text = format!(
            "{HEADER}20|20|root|root|debug|CANCELLED by 0|1|None assigned|1||billing=1|100M|1795661734|Unknown|1795661790|0|10|0:0|never\n"
        );
        let bin = fake_bin(&[("sacct", &format!("cat <<'EOF'\n{text}EOF"))]);
        let jobs = slurm(&bin, Duration::from_secs(5))
            .finished_jobs("now-1day")
            .await
            .unwrap();
        assert!(jobs.iter().all(|j| j.start_time.is_some()));
        assert!(!jobs.iter().any(|j| j.jobid == "20"));
        assert!(jobs.iter().any(|j| j.state == "TIMEOUT"));
    }

    /// The shipped EpilogSlurmctld script returns at once (exit 0) while the summary runs
    /// detached, logs the outcome, and enforces its timeout.
    #[test]
    fn epilog_script_never_blocks() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/epilog-slurmctld.sh");
        let d = tempfile::tempdir().unwrap();
        // `slow` finishes only once the test releases it: if the epilog waited for it, it
        // would return only after its own timeout had killed it ("killed after 30s").
        let release = d.path().join("release");
        let slow = format!(
            "echo \"args: $*\"; while [ ! -e {} ]; do sleep 0.05; done; echo finished; exit 3",
            release.display()
        );
        let bin = fake_bin(&[("slow", &slow), ("hang", "sleep 60")]);
        let run = |prog: &str, jobid: &str, log: &std::path::Path, tmo: &str| {
            let st = std::process::Command::new(script)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("SLURM_JOB_ID", jobid)
                .env("HPCMON_JOBSTATS", bin.path().join(prog))
                .env("HPCMON_JOBSTATS_ARGS", "--store.url sqlite:///x.db")
                .env("HPCMON_JOBSTATS_LOG", log)
                .env("HPCMON_JOBSTATS_TIMEOUT", tmo)
                .env("HPCMON_JOBSTATS_DEFAULTS", "/nonexistent")
                .status()
                .unwrap();
            assert!(st.success());
        };
        let wait_for = |log: &std::path::Path, what: &str| {
            for _ in 0..100 {
                let t = std::fs::read_to_string(log).unwrap_or_default();
                if t.contains(what) {
                    return t;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!(
                "{what:?} never logged: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        let log1 = d.path().join("a.log");
        run("slow", "42", &log1, "30");
        // The epilog has returned while its summary run still waits to be released.
        wait_for(&log1, "args: summarize 42");
        assert!(!std::fs::read_to_string(&log1).unwrap().contains("finished"));
        std::fs::write(&release, "").unwrap();
        let t = wait_for(&log1, "failed (exit 3)");
        assert!(
            t.contains("job 42: args: summarize 42 --store.url sqlite:///x.db"),
            "{t}"
        );
        assert!(t.contains("job 42: finished"), "{t}");
        let log2 = d.path().join("b.log");
        run("hang", "43", &log2, "1");
        wait_for(&log2, "killed after 1s");
        // Not a job id: nothing runs, still exit 0.
        let log3 = d.path().join("c.log");
        run("slow", "1;touch /tmp/x", &log3, "30");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!log3.exists());
    }
}
