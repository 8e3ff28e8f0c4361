//! Building a job's [`Report`]: Slurm's header, then the usage from Prometheus, falling back
//! to the summary stored at job end (AdminComment, then the `--store.url` table), then the
//! advice. Shared by the command line and the HTTP API, so both say the same thing.
//!
//! Errors map to documented exit codes ([`ReportError::exit_code`]).

use crate::advice::{facts, Rules};
use crate::model::{Report, Source, REPORT_VERSION};
use crate::prom::{Prom, PromError};
use crate::slurm::{Slurm, SlurmError};
use crate::store::Store;
use crate::{summary, usage};

/// What a report needs.
pub struct Context {
    /// Slurm's commands.
    pub slurm: Slurm,
    /// Prometheus.
    pub prom: Prom,
    /// Advice rules.
    pub rules: Rules,
    /// Summary table (optional).
    pub store: Option<Store>,
    /// Grafana's base URL, for the link to the Job dashboard.
    pub grafana_url: Option<String>,
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Slurm does not know the job, or could not be asked.
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    /// Prometheus failed and no summary exists.
    #[error("{0} (and no summary is stored for this job)")]
    Prom(#[from] PromError),
    /// The job belongs to someone else.
    #[error("job {jobid} belongs to user {owner}; you ({you}) may only see your own jobs")]
    Forbidden {
        /// The job.
        jobid: String,
        /// Its user.
        owner: String,
        /// The asker.
        you: String,
    },
    /// Anything else (storage).
    #[error("{0}")]
    Other(String),
}

impl ReportError {
    /// The exit code of the command line: 2 unknown job, 3 Prometheus unreachable or slow
    /// (no summary to fall back on), 4 Slurm's commands missing or failing, 5 another user's
    /// job, 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReportError::Slurm(SlurmError::NotFound(_)) => 2,
            ReportError::Slurm(_) => 4,
            ReportError::Prom(_) => 3,
            ReportError::Forbidden { .. } => 5,
            ReportError::Other(_) => 1,
        }
    }
}

/// Who may see which jobs.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The asking user (None: unknown).
    pub user: Option<String>,
    /// Whether the asker may see every job (root, an admin, or a trusted deployment).
    pub all: bool,
}

impl Access {
    /// Fails unless the asker may see a job of `owner`.
    pub fn check(&self, jobid: &str, owner: &str) -> Result<(), ReportError> {
        if self.all || self.user.as_deref() == Some(owner) {
            return Ok(());
        }
        Err(ReportError::Forbidden {
            jobid: jobid.to_string(),
            owner: owner.to_string(),
            you: self.user.clone().unwrap_or_else(|| "anonymous".into()),
        })
    }
}

/// The Job dashboard's URL for `report`'s job.
pub fn dashboard_url(grafana: &str, r: &Report) -> String {
    let mut u = format!(
        "{}/d/hpcmon-job/hpcmon-job?var-jobid={}",
        grafana.trim_end_matches('/'),
        r.job.jobid_raw
    );
    if let Some(s) = r.job.start_time {
        u.push_str(&format!("&from={}", (s - 60) * 1000));
        match r.job.end_time {
            Some(e) if !r.job.is_active() => u.push_str(&format!("&to={}", (e + 60) * 1000)),
            _ => u.push_str("&to=now"),
        }
    }
    u
}

/// A stored summary of the job: its AdminComment, then the store.
async fn stored_summary(ctx: &Context, jobid: &str, jobid_raw: &str) -> Option<Report> {
    match ctx.slurm.admin_comment(jobid).await {
        Ok(Some(c)) if !c.trim().is_empty() => match summary::decode(&c) {
            Ok(r) => return Some(r),
            Err(e) => tracing::warn!(jobid, error = %e, "AdminComment holds no usable summary"),
        },
        Ok(_) => {}
        Err(e) => tracing::debug!(jobid, error = %e, "cannot read the AdminComment"),
    }
    if let Some(store) = &ctx.store {
        match store.get(jobid_raw).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::warn!(jobid, error = %format!("{e:#}"), "cannot read the summary store")
            }
        }
    }
    None
}

/// Builds the report of `jobid` for `access`, at time `now` (unix seconds).
pub async fn build(
    ctx: &Context,
    jobid: &str,
    access: &Access,
    now: i64,
) -> Result<Report, ReportError> {
    let job = ctx.slurm.header(jobid).await?;
    access.check(&job.jobid, &job.user)?;
    let mut report = Report {
        version: REPORT_VERSION,
        job: job.clone(),
        source: Source::None,
        usage: None,
        notes: Vec::new(),
        dashboard_url: None,
    };
    if !job.is_pending() {
        match usage::gather(&ctx.prom, &job, now).await {
            Ok(Some(u)) => {
                report.usage = Some(u);
                report.source = Source::Prometheus;
            }
            Ok(None) => {
                if let Some(s) = stored_summary(ctx, &job.jobid, &job.jobid_raw).await {
                    report.usage = s.usage;
                    report.source = Source::Summary;
                }
            }
            Err(e) => match stored_summary(ctx, &job.jobid, &job.jobid_raw).await {
                Some(s) => {
                    tracing::warn!(error = %e, "prometheus failed; reporting from the stored summary");
                    report.usage = s.usage;
                    report.source = Source::Summary;
                }
                None => return Err(e.into()),
            },
        }
    }
    report.notes = ctx.rules.evaluate(&facts(&report));
    if let Some(g) = &ctx.grafana_url {
        report.dashboard_url = Some(dashboard_url(g, &report));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobHeader;

    #[test]
    fn access_rules() {
        let a = Access {
            user: Some("alice".into()),
            all: false,
        };
        assert!(a.check("1", "alice").is_ok());
        let e = a.check("1", "bob").unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("belongs to user bob"), "{e}");
        assert!(Access::default().check("1", "bob").is_err());
        assert!(Access {
            user: None,
            all: true
        }
        .check("1", "bob")
        .is_ok());
    }

    #[test]
    fn dashboard_links() {
        let r = Report {
            version: REPORT_VERSION,
            job: JobHeader {
                jobid: "7_1".into(),
                jobid_raw: "9".into(),
                state: "COMPLETED".into(),
                start_time: Some(1000),
                end_time: Some(2000),
                ..Default::default()
            },
            source: Source::None,
            usage: None,
            notes: vec![],
            dashboard_url: None,
        };
        assert_eq!(
            dashboard_url("http://g:3000/", &r),
            "http://g:3000/d/hpcmon-job/hpcmon-job?var-jobid=9&from=940000&to=2060000"
        );
    }
}
