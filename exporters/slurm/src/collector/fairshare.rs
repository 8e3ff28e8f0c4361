//! `slurm_account_*` and `slurm_user_*` fair share from sshare. `slurm_account_fairshare`
//! is also prometheus-slurm-exporter's name.

use std::collections::BTreeMap;

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::poller::Data;

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
            &format!("slurm_account_{k}"),
            &format!("{help} of the account (sshare)."),
        );
        for (a, s) in &accounts {
            if let Some(v) = get(s) {
                f.sample(&[("account", a)], v);
            }
        }
    }
    if inp.labels.by_user {
        for (k, help, get) in fields {
            let f = out.gauge(
                &format!("slurm_user_{k}"),
                &format!("{help} of the user in the account (sshare)."),
            );
            for ((a, u), s) in &users {
                if let Some(v) = get(s) {
                    f.sample(&[("account", a), ("user", u)], v);
                }
            }
        }
    }
}
