//! `slurm_cluster_info{cluster,version}` and `slurm_exporter_private_data{flags}` from
//! scontrol show config, and a one-time warning when `PrivateData` hides jobs from the
//! exporter.

use std::sync::Once;

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::poller::Data;

/// Whether `PrivateData` hides other users' jobs from a process with effective uid `euid`:
/// it has `jobs` or `users` and the process is neither root nor `SlurmUser`.
pub fn private_data_hides_jobs(flags: &[String], euid: u32, slurm_user_uid: Option<u32>) -> bool {
    flags.iter().any(|f| f == "jobs" || f == "users") && euid != 0 && Some(euid) != slurm_user_uid
}

static WARN_PRIVATE_DATA: Once = Once::new();

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Config];

/// The `cluster` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("cluster", SOURCES, collect))
}

/// Renders `slurm_cluster_info` and `slurm_exporter_private_data`.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    if let Some(c) = inp.data.iter().find_map(|d| match d {
        Data::Config(c) => Some(c),
        _ => None,
    }) {
        out.gauge(
            "slurm_cluster_info",
            "The Slurm cluster's name and the controller's version (value 1).",
        )
        .sample(
            &[
                ("cluster", c.cluster.as_str()),
                ("version", c.version.as_str()),
            ],
            1.0,
        );
        if let Some(pd) = &c.private_data {
            let flags = if pd.is_empty() {
                "none".to_string()
            } else {
                pd.join(",")
            };
            out.gauge(
                "slurm_exporter_private_data",
                "The PrivateData setting of slurm.conf (flags lower-case, sorted; value 1). With jobs or users, squeue run by a user other than root or SlurmUser hides other users' jobs.",
            )
            .sample(&[("flags", flags.as_str())], 1.0);
            // SAFETY: geteuid has no preconditions and cannot fail.
            let euid = unsafe { libc::geteuid() };
            if private_data_hides_jobs(pd, euid, c.slurm_user_uid) {
                WARN_PRIVATE_DATA.call_once(|| {
                    tracing::warn!(
                        private_data = %flags,
                        euid,
                        "PrivateData hides other users' jobs from this exporter: job metrics undercount; run it as root or SlurmUser"
                    );
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::private_data_hides_jobs as hides;

    fn v(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn warns_only_for_jobs_or_users_as_a_non_operator() {
        assert!(hides(&v(&["jobs"]), 1000, Some(0)));
        assert!(hides(&v(&["usage", "users"]), 1000, None));
        assert!(!hides(&v(&[]), 1000, Some(0)));
        assert!(!hides(&v(&["usage", "nodes"]), 1000, Some(0)));
        // root and SlurmUser see every job.
        assert!(!hides(&v(&["jobs"]), 0, Some(64030)));
        assert!(!hides(&v(&["jobs", "users"]), 64030, Some(64030)));
    }

    #[test]
    fn private_data_metric_from_the_config() {
        use crate::collector::testutil::{fixture_poller, run, value};
        let (set, r) = run("cluster", &fixture_poller(), &Default::default());
        assert!(r.is_ok());
        assert_eq!(
            value(&set, "slurm_exporter_private_data", &[("flags", "none")]),
            Some(1.0)
        );
        let p = crate::poller::Poller::new(
            crate::collector::testutil::flags(),
            vec![crate::poller::Source::Config],
        );
        p.ingest(
            crate::poller::Source::Config,
            Ok("ClusterName = c\nPrivateData = users,jobs,usage\n".into()),
            std::time::Duration::from_millis(1),
        );
        p.finish_poll();
        let (set, _) = run("cluster", &p, &Default::default());
        assert_eq!(
            value(
                &set,
                "slurm_exporter_private_data",
                &[("flags", "jobs,usage,users")]
            ),
            Some(1.0)
        );
    }
}
