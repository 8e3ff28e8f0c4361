//! Golden outputs, compatibility-vs-native agreement and stale/failed behaviour.

use std::time::Duration;

use super::testutil::{fixture_poller, run, run_with, sum, testdata, value};
use super::{job, nodes, Config, LabelFlags, REGISTRY};
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
    for spec in REGISTRY {
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
        value(
            &nodes,
            "slurm_node_gpus_used",
            &[("node", "gpu1"), ("type", "a100")]
        ),
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
    // What the poller runs: what the built collectors read.
    let sources = |names: &[&str], extra: &[Source]| {
        let cfg = Config::new(
            Poller::unstarted(super::testutil::flags()),
            LabelFlags::default(),
        );
        for n in names {
            super::build(n, &cfg).unwrap();
        }
        cfg.poller.needed(extra)
    };
    assert_eq!(sources(&["nodes"], &[]), vec![Source::Sinfo]);
    assert_eq!(
        sources(&["partitions", "scheduler"], &[]),
        vec![Source::Squeue, Source::Sinfo, Source::Sdiag]
    );
    assert!(sources(&["command"], &[]).is_empty());
    assert_eq!(
        sources(&["jobs"], &[Source::Sinfo, Source::Config]),
        vec![Source::Squeue, Source::Sinfo, Source::Config]
    );
    // Every collector but `command` reads something.
    for r in REGISTRY.iter().filter(|r| r.name != "command") {
        assert!(!sources(&[r.name], &[]).is_empty(), "{}", r.name);
    }
}

/// Labels of every sample of `name`.
fn samples(set: &hpcmon_kit::MetricSet, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    set.families()
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.samples.iter())
        .map(|s| {
            let labels = s.labels.iter().map(|(k, v)| (k.to_string(), v.clone()));
            (labels.collect(), s.value)
        })
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
    let cfg = Config::new(p.clone(), LabelFlags::default()).with(job::Flags {
        job_info_pending: true,
        ..job::Flags::default()
    });
    let (set, _) = run_with("job", &cfg);
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
    let cfg = Config::new(p.clone(), LabelFlags::default()).with(job::Flags {
        job_series_limit: 3,
        ..job::Flags::default()
    });
    let (set, _) = run_with("job", &cfg);
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

/// The fixture snapshot with `squeue` replaced by `squeue_out`.
fn poller_with_squeue(squeue_out: &str) -> Poller {
    let p = fixture_poller();
    p.ingest(
        Source::Squeue,
        Ok(squeue_out.to_string()),
        Duration::from_millis(5),
    );
    p.finish_poll();
    p
}

/// One running job of `user` in `account`/`partition` with `cpus` CPUs.
fn job_line(id: u64, user: &str, account: &str, partition: &str, state: &str, cpus: u32) -> String {
    format!("{id}|N/A|{user}|{account}|{partition}|{state}|1|{cpus}|cpu={cpus},mem=100M,node=1,billing={cpus}|N/A|N/A|(null)|{id}|normal|n2|2026-11-26T02:46:23|UNLIMITED|None|j{id}\n")
}

fn label_values(
    set: &hpcmon_kit::MetricSet,
    name: &str,
    k: &str,
) -> std::collections::BTreeSet<String> {
    samples(set, name)
        .iter()
        .filter_map(|(l, _)| label(l, k).map(str::to_string))
        .collect()
}

#[test]
fn per_user_and_account_labels_are_bounded_with_an_other_bucket() {
    // 150 users in 150 accounts, user i running i+1 CPUs: the default keeps 100 of each.
    let mut out = String::new();
    for i in 0..150u32 {
        out += &job_line(
            u64::from(i) + 1,
            &format!("u{i:03}"),
            &format!("a{i:03}"),
            "debug",
            "RUNNING",
            i + 1,
        );
    }
    let p = poller_with_squeue(&out);
    let (jobs, r) = run("jobs", &p, &LabelFlags::default());
    assert!(r.is_ok(), "{r:?}");
    let users = label_values(&jobs, "slurm_jobs", "user");
    assert_eq!(users.len(), 101, "100 users + other");
    assert!(users.contains("other") && users.contains("u149") && !users.contains("u000"));
    assert_eq!(
        label_values(&jobs, "slurm_jobs_cpus_allocated", "account").len(),
        101
    );
    assert_eq!(sum(&jobs, "slurm_jobs", &[]), 150.0);
    let total_cpus: f64 = (1..=150).map(f64::from).sum();
    assert_eq!(sum(&jobs, "slurm_jobs_cpus_allocated", &[]), total_cpus);
    // The 50 least active (u000..u049, 1..50 CPUs) are folded.
    let folded: f64 = (1..=50).map(f64::from).sum();
    assert_eq!(
        sum(&jobs, "slurm_jobs_cpus_allocated", &[("user", "other")]),
        folded
    );
    assert_eq!(value(&jobs, "slurm_exporter_users_folded", &[]), Some(50.0));
    assert_eq!(
        value(&jobs, "slurm_exporter_accounts_folded", &[]),
        Some(50.0)
    );

    // Pending jobs count as activity too; N is a flag.
    let mut out = job_line(1, "busy", "x", "debug", "RUNNING", 4);
    for i in 0..5 {
        out += &job_line(10 + i, "queued", "y", "debug", "PENDING", 1);
    }
    out += &job_line(20, "quiet", "z", "debug", "PENDING", 1);
    let p = poller_with_squeue(&out);
    let l = LabelFlags {
        top_users: 1,
        top_accounts: 2,
        ..LabelFlags::default()
    };
    let (jobs, _) = run("jobs", &p, &l);
    assert_eq!(
        label_values(&jobs, "slurm_jobs", "user"),
        ["other", "queued"].map(String::from).into()
    );
    assert_eq!(
        label_values(&jobs, "slurm_jobs", "account"),
        ["other", "x", "y"].map(String::from).into()
    );
    assert_eq!(value(&jobs, "slurm_exporter_users_folded", &[]), Some(2.0));
    // 0 means no limit.
    let l = LabelFlags {
        top_users: 0,
        ..LabelFlags::default()
    };
    let (jobs, _) = run("jobs", &p, &l);
    assert_eq!(label_values(&jobs, "slurm_jobs", "user").len(), 3);
    assert_eq!(value(&jobs, "slurm_exporter_users_folded", &[]), Some(0.0));
}

#[test]
fn user_fair_share_only_for_associations_with_jobs() {
    // sshare.txt has alice, bob, carol and dave with no jobs: no slurm_user_* for them.
    let p = fixture_poller();
    let (fs, r) = run("fairshare", &p, &LabelFlags::default());
    assert!(r.is_ok(), "{r:?}");
    let users = label_values(&fs, "slurm_user_fairshare", "user");
    assert_eq!(users, ["root"].map(String::from).into());
    // root has jobs in chemistry, ml and physics, not in account root.
    assert_eq!(
        label_values(&fs, "slurm_user_fairshare", "account"),
        ["chemistry", "ml", "physics"].map(String::from).into()
    );
    // Account fair share is kept for every account.
    assert!(value(&fs, "slurm_account_usage_raw", &[("account", "root")]).is_some());
}

#[test]
fn rpc_user_families_follow_the_by_user_flag() {
    let p = fixture_poller();
    let off = LabelFlags {
        by_user: false,
        ..LabelFlags::default()
    };
    let (s, _) = run("scheduler", &p, &off);
    assert!(!s
        .families()
        .iter()
        .any(|f| f.name.starts_with("slurm_scheduler_rpc_user_")));
    let (s, _) = run("scheduler", &p, &LabelFlags::default());
    assert!(sum(&s, "slurm_scheduler_rpc_user_calls_total", &[]) > 0.0);

    // Bounded like the job families: the busiest users, the rest summed under other.
    let sdiag = std::fs::read_to_string(testdata("sdiag-live.txt"))
        .unwrap()
        .replace(
            "\troot            (       0) count:41     ave_time:371    total_time:15215\n",
            "\troot            (       0) count:41     ave_time:371    total_time:15215\n\talice           (    1000) count:5      ave_time:100    total_time:500\n\tbob             (    1001) count:3      ave_time:100    total_time:300\n",
        );
    p.ingest(Source::Sdiag, Ok(sdiag), Duration::from_millis(5));
    p.finish_poll();
    let l = LabelFlags {
        top_users: 1,
        ..LabelFlags::default()
    };
    let (s, _) = run("scheduler", &p, &l);
    assert_eq!(
        value(
            &s,
            "slurm_scheduler_rpc_user_calls_total",
            &[("user", "root")]
        ),
        Some(41.0)
    );
    assert_eq!(
        value(
            &s,
            "slurm_scheduler_rpc_user_calls_total",
            &[("user", "other")]
        ),
        Some(8.0)
    );
    assert_eq!(samples(&s, "slurm_scheduler_rpc_user_calls_total").len(), 2);
}

#[test]
fn multi_partition_pending_jobs_count_once_under_the_first_partition() {
    let mut out = job_line(1, "u", "a", "gpu,debug", "PENDING", 2);
    out += &job_line(2, "u", "a", "debug,gpu", "PENDING", 3);
    out += &job_line(3, "u", "a", "gpu", "PENDING", 1);
    let p = poller_with_squeue(&out);
    let l = LabelFlags::default();
    let (jobs, _) = run("jobs", &p, &l);
    let (parts, _) = run("partitions", &p, &l);
    for name in ["slurm_jobs", "slurm_jobs_pending"] {
        assert!(
            !label_values(&jobs, name, "partition")
                .iter()
                .any(|p| p.contains(',')),
            "{name}"
        );
    }
    for (part, n) in [("gpu", 2.0), ("debug", 1.0)] {
        let native = sum(
            &jobs,
            "slurm_jobs",
            &[("state", "PENDING"), ("partition", part)],
        );
        assert_eq!(native, n, "{part}");
        assert_eq!(
            value(
                &parts,
                "slurm_partition_jobs",
                &[("partition", part), ("state", "PENDING")]
            ),
            Some(n),
            "{part}"
        );
        assert_eq!(sum(&jobs, "slurm_jobs_pending", &[("partition", part)]), n);
    }
    assert_eq!(
        sum(&parts, "slurm_partition_jobs", &[]),
        sum(&jobs, "slurm_jobs", &[])
    );
    assert_eq!(
        value(
            &parts,
            "slurm_partition_pending_cpus",
            &[("partition", "gpu")]
        ),
        Some(3.0)
    );
}

#[test]
fn gpus_are_labelled_by_gres_type() {
    // Two GPU types must not be summed into one number.
    let out = "1|N/A|u|a|gpu|RUNNING|1|2|cpu=2,mem=100M,node=1,billing=2,gres/gpu=3,gres/gpu:a100=2,gres/gpu:v100=1|N/A|N/A|(null)|1|normal|gpu1|2026-11-26T02:46:23|UNLIMITED|None|j\n";
    let p = poller_with_squeue(out);
    let l = LabelFlags::default();
    let (jobs, _) = run("jobs", &p, &l);
    assert_eq!(
        sum(&jobs, "slurm_jobs_gpus_allocated", &[("type", "a100")]),
        2.0
    );
    assert_eq!(
        sum(&jobs, "slurm_jobs_gpus_allocated", &[("type", "v100")]),
        1.0
    );
    assert_eq!(sum(&jobs, "slurm_jobs_gpus_allocated", &[]), 3.0);
    let (nodes, _) = run("nodes", &p, &l);
    assert_eq!(
        sum(&nodes, "slurm_node_gpus_total", &[("type", "a100")]),
        4.0
    );
    let (parts, _) = run("partitions", &p, &l);
    assert_eq!(
        value(
            &parts,
            "slurm_partition_gpus_allocated",
            &[("partition", "gpu"), ("type", "a100")]
        ),
        Some(3.0)
    );
}

#[test]
fn per_node_families_can_be_switched_off() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        nodes: nodes::Flags,
    }
    let p = fixture_poller();
    let run_nodes = |flags: &nodes::Flags| {
        run_with(
            "nodes",
            &Config::new(p.clone(), LabelFlags::default()).with(flags.clone()),
        )
    };
    let (all, _) = run("nodes", &p, &LabelFlags::default());
    let names = |set: &hpcmon_kit::MetricSet| -> Vec<String> {
        set.families()
            .iter()
            .filter(|f| !f.samples.is_empty())
            .map(|f| f.name.to_string())
            .collect()
    };
    let groups: &[(&str, &[&str])] = &[
        (
            "cpus",
            &[
                "slurm_node_cpus_allocated",
                "slurm_node_cpus_idle",
                "slurm_node_cpus_other",
                "slurm_node_cpus_total",
            ],
        ),
        (
            "memory",
            &[
                "slurm_node_memory_total_bytes",
                "slurm_node_memory_allocated_bytes",
                "slurm_node_memory_free_bytes",
            ],
        ),
        ("gpus", &["slurm_node_gpus_total", "slurm_node_gpus_used"]),
        ("load", &["slurm_node_cpu_load"]),
        ("state", &["slurm_node_state"]),
        ("flags", &["slurm_node_state_flag"]),
        ("reason", &["slurm_node_reason_info"]),
        ("info", &["slurm_node_info"]),
    ];
    let all_names = names(&all);
    for (g, fams) in groups {
        for f in *fams {
            assert!(all_names.iter().any(|n| n == f), "{f} missing by default");
        }
        let keep: Vec<&str> = groups.iter().map(|(n, _)| *n).filter(|n| n != g).collect();
        let arg = format!("--slurm.node-families={}", keep.join(","));
        let cli = Cli::try_parse_from(["x", arg.as_str()]).unwrap();
        let (set, r) = run_nodes(&cli.nodes);
        assert!(r.is_ok());
        for f in *fams {
            assert!(
                !names(&set).iter().any(|n| n == f),
                "{f} present with {arg}"
            );
        }
        // Everything else, the cluster-level aggregates included, is unchanged.
        let a = hpcmon_kit::metrics::encode_text(&all);
        let b = hpcmon_kit::metrics::encode_text(&set);
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| {
                    !fams
                        .iter()
                        .any(|f| l.starts_with(f) || l.contains(&format!(" {f} ")))
                })
                .map(String::from)
                .collect()
        };
        assert_eq!(strip(&a), strip(&b), "{arg}");
    }
    // none: no per-node family at all, aggregates intact.
    let cli = Cli::try_parse_from(["x", "--slurm.node-families=none"]).unwrap();
    let (set, _) = run_nodes(&cli.nodes);
    assert!(!names(&set).iter().any(|n| n.starts_with("slurm_node_")));
    assert_eq!(
        value(&set, "slurm_cpus_total", &[]),
        value(&all, "slurm_cpus_total", &[])
    );
    assert_eq!(
        sum(&set, "slurm_nodes_state", &[]),
        sum(&all, "slurm_nodes_state", &[])
    );
    assert!(Cli::try_parse_from(["x", "--slurm.node-families=cpus,bogus"]).is_err());
}
