//! Golden outputs, compatibility-vs-native agreement and stale/failed behaviour.

use std::time::Duration;

use super::testutil::{fixture_poller, run, sum, testdata, value};
use super::{LabelFlags, SPECS};
use crate::poller::{Poller, Source};

fn golden(name: &str, text: &str) {
    let path = testdata(&format!("{name}.prom"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        text,
        want,
        "golden output {} differs (UPDATE_GOLDEN=1 to accept)",
        path.display()
    );
}

/// Makes time-dependent values of the command collector stable.
fn normalize_times(text: &str) -> String {
    text.lines()
        .map(|l| {
            if !l.starts_with('#')
                && (l.starts_with("slurm_command_duration_seconds")
                    || l.starts_with("slurm_command_data_age_seconds")
                    || l.starts_with("slurm_command_last_success_timestamp_seconds"))
            {
                let i = l.rfind(' ').unwrap();
                format!("{} 0", &l[..i])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn golden_outputs() {
    let p = fixture_poller();
    for spec in SPECS {
        let (set, r) = run(spec.name, &p, &LabelFlags::default());
        assert!(r.is_ok(), "{}: {r:?}", spec.name);
        assert!(set.sample_count() > 0, "{} produced nothing", spec.name);
        let text = hpcmon_kit::metrics::encode_text(&set);
        let text = if spec.name == "command" {
            normalize_times(&text)
        } else {
            text
        };
        golden(spec.name, &text);
    }
}

#[test]
fn fixture_numbers_match_the_captured_cluster() {
    let p = fixture_poller();
    let l = LabelFlags::default();
    let (jobs, _) = run("jobs", &p, &l);
    // squeue.txt: 6 running, 13 pending (3 array tasks of 16_[1-6] ... see the file)
    assert_eq!(sum(&jobs, "slurm_jobs", &[("state", "RUNNING")]), 6.0);
    assert_eq!(sum(&jobs, "slurm_jobs", &[("state", "PENDING")]), 13.0);
    assert_eq!(value(&jobs, "slurm_queue_running", &[]), Some(6.0));
    assert_eq!(value(&jobs, "slurm_queue_pending", &[]), Some(13.0));
    assert_eq!(
        value(&jobs, "slurm_queue_pending_dependency", &[]),
        Some(1.0)
    );
    assert_eq!(sum(&jobs, "slurm_jobs_gpus_allocated", &[]), 3.0);
    assert_eq!(
        sum(&jobs, "slurm_jobs_gpus_allocated", &[("account", "ml")]),
        3.0
    );
    assert_eq!(
        sum(&jobs, "slurm_jobs_pending", &[("reason", "Dependency")]),
        1.0
    );
    assert_eq!(
        sum(&jobs, "slurm_jobs_pending", &[("reason", "JobHeldUser")]),
        1.0
    );
    assert_eq!(
        sum(
            &jobs,
            "slurm_jobs_pending",
            &[("reason", "ReqNodeNotAvail")]
        ),
        1.0
    );
    assert_eq!(value(&jobs, "slurm_job_arrays", &[]), Some(1.0));
    assert_eq!(sum(&jobs, "slurm_jobs_array_tasks", &[]), 6.0);

    let (nodes, _) = run("nodes", &p, &l);
    assert_eq!(
        value(&nodes, "slurm_nodes_state", &[("state", "down")]),
        Some(1.0)
    );
    assert_eq!(
        value(&nodes, "slurm_nodes_flag", &[("flag", "drain")]),
        Some(1.0)
    );
    assert_eq!(
        value(&nodes, "slurm_nodes_flag", &[("flag", "maint")]),
        Some(1.0)
    );
    assert_eq!(value(&nodes, "slurm_nodes_drain", &[]), Some(1.0));
    assert_eq!(value(&nodes, "slurm_nodes_maint", &[]), Some(1.0));
    assert_eq!(value(&nodes, "slurm_nodes_down", &[]), Some(1.0));
    assert_eq!(value(&nodes, "slurm_nodes_alloc", &[]), Some(2.0));
    assert_eq!(value(&nodes, "slurm_nodes_mix", &[]), Some(1.0));
    assert_eq!(
        value(&nodes, "slurm_node_gpus_used", &[("node", "gpu1")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &nodes,
            "slurm_node_reason_info",
            &[("node", "n4"), ("reason", "hpcmon: maintenance test")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&nodes, "slurm_gpus_total", &[]), Some(4.0));
    assert_eq!(value(&nodes, "slurm_gpus_alloc", &[]), Some(3.0));
}

#[test]
fn compat_families_agree_with_native_ones() {
    let p = fixture_poller();
    let l = LabelFlags::default();
    let (nodes, _) = run("nodes", &p, &l);
    let (parts, _) = run("partitions", &p, &l);
    let (jobs, _) = run("jobs", &p, &l);
    for (compat, native) in [
        ("slurm_cpus_alloc", "slurm_node_cpus_allocated"),
        ("slurm_cpus_idle", "slurm_node_cpus_idle"),
        ("slurm_cpus_other", "slurm_node_cpus_other"),
        ("slurm_cpus_total", "slurm_node_cpus_total"),
        ("slurm_gpus_total", "slurm_node_gpus_total"),
        ("slurm_gpus_alloc", "slurm_node_gpus_used"),
    ] {
        assert_eq!(
            value(&nodes, compat, &[]),
            Some(sum(&nodes, native, &[])),
            "{compat}"
        );
    }
    let compat_nodes: f64 = super::nodes::NODES_COMPAT
        .iter()
        .map(|k| value(&nodes, &format!("slurm_nodes_{k}"), &[]).unwrap())
        .sum();
    assert_eq!(compat_nodes, sum(&nodes, "slurm_nodes_state", &[]));
    for (compat, state) in super::jobs::QUEUE_COMPAT {
        assert_eq!(
            value(&jobs, &format!("slurm_queue_{compat}"), &[]),
            Some(sum(&jobs, "slurm_jobs", &[("state", state)])),
            "{compat}"
        );
    }
    for part in ["debug", "gpu"] {
        for (k, st) in [("running", "RUNNING"), ("pending", "PENDING")] {
            assert_eq!(
                value(
                    &parts,
                    &format!("slurm_partition_jobs_{k}"),
                    &[("partition", part)]
                ),
                Some(sum(
                    &jobs,
                    "slurm_jobs",
                    &[("state", st), ("partition", part)]
                )),
                "{part} {k}"
            );
        }
    }
    // Partition CPUs add up to the cluster's here (no node is in two partitions).
    assert_eq!(
        sum(&parts, "slurm_partition_cpus_total", &[]),
        value(&nodes, "slurm_cpus_total", &[]).unwrap()
    );
}

#[test]
fn user_and_account_labels_can_be_switched_off() {
    let p = fixture_poller();
    let off = LabelFlags {
        by_user: false,
        by_account: false,
        ..LabelFlags::default()
    };
    let (jobs, _) = run("jobs", &p, &off);
    let f = jobs
        .families()
        .iter()
        .find(|f| f.name == "slurm_jobs")
        .unwrap();
    assert!(f
        .samples
        .iter()
        .all(|s| s.labels.iter().all(|(k, _)| k != "user" && k != "account")));
    assert_eq!(sum(&jobs, "slurm_jobs", &[("state", "RUNNING")]), 6.0);
    let (fs, _) = run("fairshare", &p, &off);
    assert!(!fs
        .families()
        .iter()
        .any(|f| f.name.starts_with("slurm_user_")));
}

#[test]
fn failed_command_keeps_stale_data_and_fails_the_collector() {
    let p = fixture_poller();
    p.ingest(
        Source::Squeue,
        Err("squeue timed out after 10s and was killed".into()),
        Duration::from_secs(10),
    );
    p.finish_poll();
    let (jobs, r) = run("jobs", &p, &LabelFlags::default());
    assert!(r.unwrap_err().contains("timed out"));
    assert_eq!(value(&jobs, "slurm_queue_running", &[]), Some(6.0));
    assert_eq!(
        value(&jobs, "slurm_collector_stale", &[("collector", "jobs")]),
        Some(1.0)
    );
    // partitions needs squeue too
    let (_, r) = run("partitions", &p, &LabelFlags::default());
    assert!(r.is_err());
    // nodes is unaffected
    let (nodes, r) = run("nodes", &p, &LabelFlags::default());
    assert!(r.is_ok());
    assert_eq!(
        value(&nodes, "slurm_collector_stale", &[("collector", "nodes")]),
        Some(0.0)
    );
    let (cmd, r) = run("command", &p, &LabelFlags::default());
    assert!(r.is_ok());
    assert_eq!(
        value(&cmd, "slurm_command_success", &[("command", "squeue")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &cmd,
            "slurm_command_failures_total",
            &[("command", "squeue")]
        ),
        Some(1.0)
    );
    // a later success clears it
    p.ingest(Source::Squeue, Ok(String::new()), Duration::from_millis(1));
    let (jobs, r) = run("jobs", &p, &LabelFlags::default());
    assert!(r.is_ok());
    assert_eq!(value(&jobs, "slurm_queue_running", &[]), Some(0.0));
}

#[test]
fn never_succeeded_is_an_error_without_data() {
    let p = Poller::new(super::testutil::flags(), vec![Source::Sinfo]);
    p.ingest(
        Source::Sinfo,
        Err("cannot run sinfo: No such file or directory".into()),
        Duration::ZERO,
    );
    p.finish_poll();
    let (set, r) = run("nodes", &p, &LabelFlags::default());
    assert!(r.unwrap_err().contains("No such file"));
    assert_eq!(set.sample_count(), 0);
}

#[test]
fn sources_follow_enabled_collectors() {
    assert_eq!(super::sources_for(&["nodes"]), vec![Source::Sinfo]);
    assert_eq!(
        super::sources_for(&["partitions", "scheduler"]),
        vec![Source::Squeue, Source::Sinfo, Source::Sdiag]
    );
    assert!(super::sources_for(&["command"]).is_empty());
}

/// Labels of every sample of `name`.
fn samples(set: &hpcmon_kit::MetricSet, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    set.families()
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.samples.iter())
        .map(|s| (s.labels.clone(), s.value))
        .collect()
}

fn label<'a>(labels: &'a [(String, String)], k: &str) -> Option<&'a str> {
    labels.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str())
}

#[test]
fn job_info_matches_squeue() {
    let p = fixture_poller();
    let (set, r) = run("job", &p, &LabelFlags::default());
    assert!(r.is_ok(), "{r:?}");
    let sq = crate::parse::squeue::parse(&std::fs::read_to_string(testdata("squeue.txt")).unwrap());
    let held: Vec<_> = sq
        .jobs
        .iter()
        .filter(|j| {
            !matches!(
                &*j.state,
                "PENDING" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT"
            )
        })
        .collect();
    assert!(held.len() >= 6, "fixture has running jobs");
    let info = samples(&set, "slurm_job_info");
    assert_eq!(info.len(), held.len());
    for j in &held {
        let id = j.display_id();
        let (l, v) = info
            .iter()
            .find(|(l, _)| label(l, "jobid") == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no slurm_job_info for {id}"));
        assert_eq!(*v, 1.0);
        assert_eq!(label(l, "jobid_raw"), Some(j.job_id.to_string().as_str()));
        assert_eq!(label(l, "user"), Some(&*j.user));
        assert_eq!(label(l, "partition"), Some(&*j.partition));
        assert_eq!(label(l, "name"), Some(&*j.name));
        assert_eq!(label(l, "nodes"), j.nodelist.as_deref());
        assert_eq!(label(l, "state"), Some(&*j.state));
        assert!(
            !label(l, "nodes").unwrap_or("").is_empty(),
            "{id} has nodes"
        );
        assert_eq!(
            value(&set, "slurm_job_cpus", &[("jobid", &id)]),
            Some(j.tres.cpus)
        );
        assert!(value(&set, "slurm_job_start_time_seconds", &[("jobid", &id)]).unwrap() > 1.7e9);
    }
    // The per-job CPUs add up to what the jobs collector reports as allocated.
    let (jobs, _) = run("jobs", &p, &LabelFlags::default());
    assert_eq!(
        sum(&set, "slurm_job_cpus", &[]),
        sum(&jobs, "slurm_jobs_cpus_allocated", &[])
    );
    assert_eq!(
        sum(&set, "slurm_job_gpus", &[]),
        sum(&jobs, "slurm_jobs_gpus_allocated", &[])
    );
    assert_eq!(value(&set, "slurm_job_series_dropped", &[]), Some(0.0));
    // No pending job unless asked.
    assert!(info
        .iter()
        .all(|(l, _)| label(l, "state") != Some("PENDING")));
}

#[test]
fn job_info_pending_and_array_tasks() {
    let p = fixture_poller();
    let flags = LabelFlags {
        job_info_pending: true,
        ..LabelFlags::default()
    };
    let (set, _) = run("job", &p, &flags);
    let info = samples(&set, "slurm_job_info");
    let pending: Vec<_> = info
        .iter()
        .filter(|(l, _)| label(l, "state") == Some("PENDING"))
        .collect();
    assert!(!pending.is_empty());
    let tasks: Vec<_> = info
        .iter()
        .filter(|(l, _)| label(l, "array_task_id").is_some())
        .collect();
    assert!(!tasks.is_empty(), "the fixture's array shows up");
    for (l, _) in tasks {
        let id = label(l, "jobid").unwrap();
        let want = format!(
            "{}_{}",
            label(l, "array_job_id").unwrap(),
            label(l, "array_task_id").unwrap()
        );
        assert_eq!(id, want, "array task printed as Slurm does");
        assert_ne!(label(l, "jobid_raw"), Some(id));
    }
    // No two series share a jobid.
    let mut ids: Vec<_> = info
        .iter()
        .map(|(l, _)| label(l, "jobid").unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[test]
fn job_series_limit_caps_and_counts() {
    let p = fixture_poller();
    let (all, _) = run("job", &p, &LabelFlags::default());
    let total = samples(&all, "slurm_job_info").len();
    assert!(total > 3);
    let flags = LabelFlags {
        job_series_limit: 3,
        ..LabelFlags::default()
    };
    let (set, _) = run("job", &p, &flags);
    for fam in ["slurm_job_info", "slurm_job_cpus", "slurm_job_nodes"] {
        assert_eq!(samples(&set, fam).len(), 3, "{fam}");
    }
    assert_eq!(
        value(&set, "slurm_job_series_dropped", &[]),
        Some((total - 3) as f64)
    );
    // The lowest job ids are the ones kept.
    let mut raw: Vec<u64> = samples(&all, "slurm_job_info")
        .iter()
        .map(|(l, _)| label(l, "jobid_raw").unwrap().parse().unwrap())
        .collect();
    raw.sort();
    let kept: Vec<u64> = samples(&set, "slurm_job_info")
        .iter()
        .map(|(l, _)| label(l, "jobid_raw").unwrap().parse().unwrap())
        .collect();
    for id in kept {
        assert!(raw[..3].contains(&id), "{id} not among the lowest");
    }
}
