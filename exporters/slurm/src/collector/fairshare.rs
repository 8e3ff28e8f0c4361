//! `slurm_account_*` and `slurm_user_*` fair share from sshare. `slurm_account_fairshare`
//! is also prometheus-slurm-exporter's name. `slurm_user_*` only covers associations with
//! jobs in squeue whose user is among the `--slurm.top-users` most active.

use std::collections::BTreeMap;

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::poller::Data;

/// The Slurm commands it reads (squeue: per-user fair share only for associations with
/// jobs, ranked like the jobs).
pub const SOURCES: &[crate::poller::Source] =
    &[crate::poller::Source::Sshare, crate::poller::Source::Squeue];

/// The `fairshare` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("fairshare", SOURCES, collect))
}

/// Renders the fair-share metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let Some(shares) = inp.data.iter().find_map(|d| match d {
        Data::Sshare(s) => Some(s),
        _ => None,
    }) else {
        return;
    };
    let mut accounts = BTreeMap::new();
    let mut users = BTreeMap::new();
    for s in shares {
        match &s.user {
            None => {
                accounts.insert(s.account.as_str(), s);
            }
            Some(u) => {
                users.insert((s.account.as_str(), u.as_str()), s);
            }
        }
    }
    type Get = fn(&crate::parse::sshare::Share) -> Option<f64>;
    let fields: [(&str, &str, Get); 4] = [
        ("fairshare", "Fair-share factor", |s| s.fairshare),
        ("shares_normalized", "Normalised shares", |s| s.norm_shares),
        (
            "usage_effective",
            "Effective (decayed, normalised) usage",
            |s| s.effective_usage,
        ),
        ("usage_raw", "Raw (decayed) usage in CPU-seconds", |s| {
            s.raw_usage
        }),
    ];
    for (k, help, get) in fields {
        let f = out.gauge(
            format!("slurm_account_{k}"),
            format!("{help} of the account (sshare)."),
        );
        for (a, s) in &accounts {
            if let Some(v) = get(s) {
                f.sample(&[("account", a)], v);
            }
        }
    }
    // Per user: only associations with jobs in squeue whose user is among the
    // --slurm.top-users most active (an idle association's share is left to sshare).
    let Some(q) = inp.squeue() else { return };
    if inp.labels.by_user {
        let ranked = super::Ranked::new(q, inp.labels);
        let with_jobs: std::collections::HashSet<(&str, &str)> = q
            .jobs
            .iter()
            .filter(|j| ranked.users.contains(&*j.user))
            .map(|j| (&*j.account, &*j.user))
            .collect();
        users.retain(|k, _| with_jobs.contains(k));
        for (k, help, get) in fields {
            let f = out.gauge(
                format!("slurm_user_{k}"),
                format!("{help} of the user in the account (sshare)."),
            );
            for ((a, u), s) in &users {
                if let Some(v) = get(s) {
                    f.sample(&[("account", a), ("user", u)], v);
                }
            }
        }
    }
}
