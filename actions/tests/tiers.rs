//! The room-temperature tiers end to end, with the shipped default policy
//! (`actions/policy.yml`) and the shipped rules (`rules/ipmi.rules.yml`, `for:` shortened):
//! simulated BMCs (`ipmi_sim`) whose inlet sensors the test heats, read by the IPMI exporter,
//! scraped by a real Prometheus whose alerts a real Alertmanager delivers to
//! `hpcmon-actions`, acting on a real Slurm cluster with power saving through the shipped
//! `contrib/slurm-suspend` / `slurm-resume` (IPMI through the same BMCs).
//!
//! 1. Dry-run (the shipped policy as is): heated through every tier, the journal shows what
//!    would run, and nothing changes (partitions, jobs, node power, BMC power).
//! 2. Enforce: 28 °C holds the queue (partition DOWN; a partition someone else set DOWN is
//!    left alone), 32 °C cancels the running jobs, 36 °C powers every node down (Slurm runs
//!    the suspend glue: every BMC off). Cooling undoes the hold (only hpcmon's partition
//!    goes UP), and Slurm powers on one node for the waiting one-node job through the resume
//!    glue. The journal holds exactly these actions.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{partition_state, Actions, Bmcs};
use hpcmon_e2e::{
    repo_root, start_binary, workspace_bin, Alertmanager, ClusterOptions, Prometheus, SlurmCluster,
};
use serde_json::Value;

const NODES: [&str; 6] = ["n1", "n2", "n3", "n4", "gpu1", "gpu2"];

/// The shipped IPMI rules with the policy alerts' `for:` shortened to 1s.
fn ipmi_rules() -> String {
    let text = std::fs::read_to_string(repo_root().join("rules/ipmi.rules.yml")).unwrap();
    let mut out = String::new();
    let mut in_policy_alert = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("- alert:") {
            in_policy_alert = t.contains("InletTemperature");
        }
        if in_policy_alert && t.starts_with("for:") {
            let indent = &line[..line.len() - t.len()];
            out.push_str(&format!("{indent}for: 1s\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(out.matches("for: 1s").count(), 3, "the three tier alerts");
    out
}

/// Shell-free wrapper scripts Slurm runs (it passes almost no environment): they point the
/// shipped glue at this test's settings.
fn power_glue(dir: &Path, ipmi_flags: &[String]) -> (String, String) {
    let cfg = ipmi_flags[0].strip_prefix("--ipmi.config.file=").unwrap();
    let map = ipmi_flags[1].strip_prefix("--ipmi.bmc-map=").unwrap();
    let env = dir.join("power.env");
    std::fs::write(
        &env,
        format!(
            "IPMI_CONFIG={cfg}\nBMC_MAP={map}\nHPCMON_ACTIONS={}\nLOG={}\n",
            workspace_bin("hpcmon-actions").display(),
            dir.join("power.log").display()
        ),
    )
    .unwrap();
    let mut out = Vec::new();
    for name in ["slurm-suspend", "slurm-resume"] {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nHPCMON_ACTIONS_POWER_ENV={} exec {} \"$@\"\n",
                env.display(),
                repo_root().join("actions/contrib").join(name).display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        out.push(p.display().to_string());
    }
    (out.remove(0), out.remove(0))
}

fn running_jobs(c: &SlurmCluster) -> BTreeSet<String> {
    c.run("squeue", &["-h", "-t", "RUNNING", "-o", "%A"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn powered_down(c: &SlurmCluster) -> usize {
    c.run("sinfo", &["-h", "-N", "-o", "%N %T"])
        .lines()
        .filter(|l| l.ends_with('~') || l.ends_with('%'))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect::<BTreeSet<_>>()
        .len()
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn of<'a>(j: &'a [Value], rule: &str, phase: &str) -> Vec<&'a Value> {
    j.iter()
        .filter(|a| a["rule"] == rule && a["phase"] == phase)
        .collect()
}

fn all_commands(rows: &[&Value]) -> Vec<Vec<String>> {
    rows.iter()
        .flat_map(|a| a["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn settled(a: &Value) -> bool {
    !matches!(
        a["state"].as_str(),
        Some("pending" | "deferred" | "running" | "awaiting_quorum")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_tiers_drive_the_documented_actions() {
    let cluster = SlurmCluster::start(ClusterOptions::default());
    let conf = cluster.conf();
    let dir = tempfile::tempdir().unwrap();
    let bmcs = Bmcs::start(6);
    let ipmi_flags = bmcs.flags(dir.path(), &NODES);

    // Slurm power saving through the shipped glue.
    let (suspend, resume) = power_glue(dir.path(), &ipmi_flags);
    let mut sc = std::fs::read_to_string(&conf).unwrap();
    sc.push_str(&format!(
        "SuspendProgram={suspend}\nResumeProgram={resume}\nSuspendTime=3600\nSuspendTimeout=4\nResumeTimeout=120\n"
    ));
    std::fs::write(&conf, sc).unwrap();
    cluster.run("scontrol", &["reconfigure"]);
    wait_until("power saving configured", Duration::from_secs(20), || {
        cluster
            .run("scontrol", &["show", "config"])
            .contains("SuspendTime             = 3600")
    })
    .await;

    // The IPMI exporter reading the two BMCs that stand for the room's sensors.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let ipmi_cfg =
        std::fs::read_to_string(dir.path().join("ipmi.yml")).unwrap() + "    collectors: [ipmi]\n";
    std::fs::write(dir.path().join("exporter.yml"), ipmi_cfg).unwrap();
    let (_exporter, eport) = start_binary(
        "hpcmon-ipmi-exporter",
        &logs,
        &[
            format!(
                "--config.file={}",
                dir.path().join("exporter.yml").display()
            ),
            format!("--ipmi.sdr-cache-dir={}", dir.path().join("sdr").display()),
        ],
        &[],
    )
    .await;

    // The webhook URL stays the same for both phases.
    let port = hpcmon_e2e::free_port();
    let am = Alertmanager::start(&common::am_config(
        &format!("http://127.0.0.1:{port}/webhook"),
        "1h",
    ))
    .await
    .unwrap();
    let job = format!(
        "metrics_path: /ipmi\nparams:\n  module: [default]\nrelabel_configs:\n  - source_labels: [__address__]\n    target_label: __param_target\n  - source_labels: [__param_target]\n    target_label: instance\n  - target_label: __address__\n    replacement: 127.0.0.1:{eport}\n"
    );
    // Prometheus also scrapes hpcmon-actions (same port in both phases): the actions
    // dashboard is checked live at the end.
    let actions_target = format!("127.0.0.1:{port}");
    let mut prom_cfg = Prometheus::config(
        &[
            ("ipmi", &bmcs.target(1), &job),
            ("actions", &actions_target, ""),
        ],
        &["ipmi.rules.yml"],
    );
    prom_cfg = prom_cfg.replace(
        &format!("      - targets: [{:?}]\n", bmcs.target(1)),
        &format!(
            "      - targets: [{:?}, {:?}]\n",
            bmcs.target(1),
            bmcs.target(2)
        ),
    );
    prom_cfg.push_str(&format!(
        "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{:?}]\n",
        am.target()
    ));
    let rules = ipmi_rules();
    let prom = Prometheus::start(&prom_cfg, &[("ipmi.rules.yml", &rules)])
        .await
        .unwrap();
    prom.wait_for(
        "count(ipmi:inlet_temperature_celsius == 24)",
        |r| hpcmon_e2e::first_value(r) == Some(2.0),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // Work on every partition: two jobs on debug, one on gpu.
    for p in ["debug", "debug", "gpu"] {
        cluster.sbatch(&["-p", p, "-N1", "-n1", "--wrap", "sleep 600"]);
    }
    wait_until("3 jobs running", Duration::from_secs(30), || {
        running_jobs(&cluster).len() == 3
    })
    .await;
    let jobs = running_jobs(&cluster);
    let env = [("SLURM_CONF", conf.to_str().unwrap())];
    let shipped = std::fs::read_to_string(repo_root().join("actions/policy.yml")).unwrap();
    let heat = |c: u8| {
        bmcs.set_inlet(1, c);
        bmcs.set_inlet(2, c);
    };

    // ---- 1. dry-run: the shipped policy as it is ----
    let d1 = dir.path().join("dry");
    std::fs::create_dir_all(&d1).unwrap();
    let mut dry = Actions::start_on(port, &d1, &shipped, &ipmi_flags, &env).await;
    heat(37);
    let j = dry
        .wait_journal(
            "every tier journaled as dry-run",
            Duration::from_secs(60),
            |j| {
                ["power-off", "kill-jobs", "hold-queue"].iter().all(|r| {
                    let rows = of(j, r, "apply");
                    rows.len() == 2 && rows.iter().all(|a| a["state"] == "dry_run")
                })
            },
        )
        .await;
    assert_eq!(j.len(), 6, "{j:#?}");
    let cmds = all_commands(&of(&j, "power-off", "apply"));
    assert!(
        cmds.contains(&vec![
            "scontrol".into(),
            "update".into(),
            "NodeName=gpu[1-2],n[1-4]".into(),
            "State=POWER_DOWN".into(),
            "Reason=hpcmon: room inlet temperature at or above 36 C, powering nodes down [rule power-off]".into()
        ]),
        "{cmds:?}"
    );
    let mut scancel: Vec<String> = vec!["scancel".into(), "-Q".into()];
    scancel.extend(jobs.iter().cloned());
    assert!(all_commands(&of(&j, "kill-jobs", "apply")).contains(&scancel));
    assert!(all_commands(&of(&j, "hold-queue", "apply")).contains(&vec![
        "scontrol".into(),
        "update".into(),
        "PartitionName=debug".into(),
        "State=DOWN".into()
    ]));
    // Nothing changed.
    assert_eq!(running_jobs(&cluster), jobs);
    assert_eq!(partition_state(&cluster, "debug"), "up");
    assert_eq!(partition_state(&cluster, "gpu"), "up");
    assert_eq!(powered_down(&cluster), 0);
    assert!(
        (1..=6).all(|i| bmcs.power(i)),
        "a BMC was powered off in dry-run"
    );
    heat(20);
    dry.wait_journal(
        "the dry-run hold undone on paper",
        Duration::from_secs(60),
        |j| {
            let r = of(j, "hold-queue", "revert");
            r.len() == 2 && r.iter().all(|a| a["state"] == "dry_run")
        },
    )
    .await;
    assert_eq!(partition_state(&cluster, "debug"), "up");
    dry.stop();
    // Let the resolved notifications drain before the next daemon takes the URL.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // ---- 2. enforce ----
    let policy = shipped
        .replace("mode: dry-run", "mode: enforce")
        .replace("hold_off: 5m", "hold_off: 3s");
    assert_ne!(policy, shipped);
    let d2 = dir.path().join("enforce");
    std::fs::create_dir_all(&d2).unwrap();
    let actions = Actions::start_on(port, &d2, &policy, &ipmi_flags, &env).await;
    // Someone else has set gpu DOWN (its job keeps running).
    cluster.run("scontrol", &["update", "PartitionName=gpu", "State=DOWN"]);

    // 28 °C: hold the queue.
    heat(30);
    actions
        .wait_journal("hold-queue done twice", Duration::from_secs(60), |j| {
            let r = of(j, "hold-queue", "apply");
            r.len() == 2 && r.iter().all(|a| a["state"] == "done")
        })
        .await;
    assert_eq!(partition_state(&cluster, "debug"), "down");
    let waiting = cluster.sbatch(&["-p", "debug", "-N1", "-n1", "--wrap", "sleep 600"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cluster.state(&waiting),
        "PENDING",
        "a job started on a held queue"
    );
    assert_eq!(
        running_jobs(&cluster),
        jobs,
        "holding the queue must not touch running jobs"
    );

    // 32 °C: cancel the running jobs.
    heat(33);
    actions
        .wait_journal("kill-jobs settled", Duration::from_secs(60), |j| {
            let r = of(j, "kill-jobs", "apply");
            r.len() == 2 && r.iter().all(|a| settled(a))
        })
        .await;
    wait_until("no job running", Duration::from_secs(30), || {
        running_jobs(&cluster).is_empty()
    })
    .await;
    assert_eq!(cluster.state(&waiting), "PENDING");

    // 36 °C: power every node down; Slurm's SuspendProgram turns the BMCs off.
    heat(37);
    actions
        .wait_journal("power-off settled", Duration::from_secs(60), |j| {
            let r = of(j, "power-off", "apply");
            r.len() == 2 && r.iter().all(|a| settled(a))
        })
        .await;
    wait_until("every BMC off", Duration::from_secs(60), || {
        (1..=6).all(|i| !bmcs.power(i))
    })
    .await;
    assert_eq!(powered_down(&cluster), 6);

    // Cool down: the hold is undone (debug UP, gpu stays DOWN: not ours), and Slurm powers
    // on one node for the waiting one-node job.
    heat(20);
    actions
        .wait_journal("hold-queue reverted", Duration::from_secs(60), |j| {
            let r = of(j, "hold-queue", "revert");
            r.len() == 2 && r.iter().all(|a| settled(a))
        })
        .await;
    assert_eq!(partition_state(&cluster, "debug"), "up");
    assert_eq!(
        partition_state(&cluster, "gpu"),
        "down",
        "someone else's DOWN was undone"
    );
    wait_until(
        "one debug node's BMC powered on again",
        Duration::from_secs(60),
        || (1..=4).filter(|&i| bmcs.power(i)).count() == 1,
    )
    .await;
    assert!(
        !bmcs.power(5) && !bmcs.power(6),
        "gpu nodes powered on with no job for them"
    );

    // Exactly the documented actions.
    let j = actions.actions().await;
    let rules: BTreeSet<(String, String)> = j
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().into(),
                a["phase"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("hold-queue", "apply"),
        ("hold-queue", "revert"),
        ("kill-jobs", "apply"),
        ("power-off", "apply"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rules, want, "{j:#?}");
    assert_eq!(j.len(), 8, "{j:#?}");
    assert!(j.iter().all(|a| a["state"] == "done"), "{j:#?}");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        all_commands(&of(&j, "hold-queue", "apply")),
        [s(&[
            "scontrol",
            "update",
            "PartitionName=debug",
            "State=DOWN"
        ])]
    );
    assert!(of(&j, "hold-queue", "apply").iter().any(|a| a["detail"]
        .as_str()
        .unwrap()
        .contains("gpu: already down, not by hpcmon: left alone")));
    assert_eq!(
        all_commands(&of(&j, "hold-queue", "revert")),
        [s(&[
            "scontrol",
            "update",
            "PartitionName=debug",
            "State=UP"
        ])]
    );
    assert_eq!(all_commands(&of(&j, "kill-jobs", "apply")), [scancel]);
    assert_eq!(all_commands(&of(&j, "power-off", "apply")).len(), 1);
    let log = std::fs::read_to_string(dir.path().join("power.log")).unwrap_or_default();
    assert!(
        log.contains("power set"),
        "the suspend/resume glue left no log: {log}"
    );

    // The actions dashboard, live, on what this run did: every panel has data.
    prom.wait_for(
        "sum(hpcmon_actions_owned_changes)",
        |r| hpcmon_e2e::first_value(r).is_some(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let check = hpcmon_e2e::check_dashboards_live(
        &prom.url(),
        &[repo_root().join("dashboards/actions.json")],
        None,
        &[],
    )
    .await
    .unwrap();
    assert!(
        check.passed(),
        "live check of dashboards/actions.json:\n{}{}",
        check.stdout,
        check.stderr
    );
    drop(prom);
}
