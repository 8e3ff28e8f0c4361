//! Safety properties on the real stack: a real Slurm cluster (`scripts/slurm-cluster.sh`),
//! a real Alertmanager delivering the webhooks, simulated BMCs (`ipmi_sim`) with chassis
//! power, and the daemon restarted with SIGKILL where it matters.
//!
//! * hostile label values never reach a command (refused and journaled with the reason), a
//!   host list over the cap is refused before it is expanded, an unknown node is refused
//!   against `sinfo`; replays change nothing; a node someone else drained stays drained and
//!   only hpcmon's own drain is undone on resolve; the journal page shows all of it as text.
//! * an action is journaled before it runs: killed between journal and run, the restarted
//!   daemon runs it exactly once; killed while running (its changes planned, the command
//!   done or not), the restarted daemon finishes it consistently without running a command
//!   twice; the kill switch survives the restart.
//! * the hold-off clock survives a restart.

mod common;

use std::time::{Duration, Instant};

use common::{am_config, node_state, partition_state, rows, Actions, Bmcs};
use hpcmon_e2e::{alert, dump_dom, Alertmanager, ClusterOptions, SlurmCluster};
use serde_json::{json, Value};

fn by_node<'a>(j: &'a [Value], node: &str) -> Option<&'a Value> {
    j.iter()
        .find(|a| a["phase"] == "apply" && a["labels"]["node"] == node)
}

fn ended(a: Option<&Value>) -> bool {
    a.is_some_and(|a| {
        !matches!(
            a["state"].as_str(),
            Some("pending" | "deferred" | "running" | "awaiting_quorum" | "awaiting_confirmation")
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_labels_replays_and_only_own_changes() {
    let cluster = SlurmCluster::start(ClusterOptions::default());
    let conf = cluster.conf();
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let policy = r#"
mode: enforce
defaults: {hold_off: 0s, max_nodes: 4}
rules:
  - name: drain-hot
    matchers: ['alertname="NodeHot"']
    action: slurm.drain
    nodes: {label: node}
    reason: node too hot
    priority: 10
    revert: true
"#;
    let actions = Actions::start(
        dir.path(),
        policy,
        &[],
        &[("SLURM_CONF", conf.to_str().unwrap())],
    )
    .await;
    // Replays: Alertmanager resends the group every couple of seconds.
    let am = Alertmanager::start(&am_config(&actions.webhook(), "2s"))
        .await
        .unwrap();

    // Someone else drained n3 before any alert.
    cluster.run(
        "scontrol",
        &[
            "update",
            "NodeName=n3",
            "State=DRAIN",
            "Reason=maintenance by admin",
        ],
    );

    let hostile = [
        "n1; rm -rf /".to_string(),
        format!("$(touch {})", canary.display()),
        format!("`touch {}`", canary.display()),
        "n[1-10000]".to_string(),
        "<img src=x onerror=\"document.title='pwned'\">".to_string(),
    ];
    let mut batch = vec![
        alert(&[("alertname", "NodeHot"), ("node", "n[2-3]")], &[], false),
        alert(&[("alertname", "NodeHot"), ("node", "n99")], &[], false),
    ];
    for h in &hostile {
        batch.push(alert(&[("alertname", "NodeHot"), ("node", h)], &[], false));
    }
    am.post_alerts(&Value::Array(batch)).await.unwrap();

    let j = actions
        .wait_journal("all 7 decisions ended", Duration::from_secs(30), |j| {
            j.len() == 7 && j.iter().all(|a| ended(Some(a)))
        })
        .await;

    // Hostile values: refused when journaled, with the offending character named.
    for (h, why) in hostile.iter().zip([
        "character ';'",
        "character '$'",
        "character '`'",
        "expands to 10000 names, more than the limit of 4",
        "character '<'",
    ]) {
        let a = by_node(&j, h).unwrap_or_else(|| panic!("no journal entry for {h:?}"));
        assert_eq!(a["state"], "rejected", "{a}");
        let d = a["detail"].as_str().unwrap();
        assert!(d.starts_with("refused: label node = "), "{d}");
        assert!(d.contains(why), "{h:?}: {d}");
        assert_eq!(a["commands"], json!([]), "a refused action has no command");
    }
    assert!(!canary.exists(), "a label value reached a shell");
    // Unknown node: refused against sinfo when it was to run.
    let a = by_node(&j, "n99").unwrap();
    assert_eq!(a["state"], "rejected");
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains("n99 do not exist in Slurm"),
        "{a}"
    );
    // The good one: n2 drained with hpcmon's reason, n3 (someone else's drain) left alone.
    let good = by_node(&j, "n[2-3]").unwrap();
    assert_eq!(good["state"], "done", "{good}");
    assert_eq!(
        good["commands"],
        json!([[
            "scontrol",
            "update",
            "NodeName=n2",
            "State=DRAIN",
            "Reason=hpcmon: node too hot [rule drain-hot]"
        ]])
    );
    assert!(good["detail"]
        .as_str()
        .unwrap()
        .contains("n3: already drained (maintenance by admin), not by hpcmon: left alone"));
    let (s2, r2) = node_state(&cluster, "n2");
    assert!(s2.starts_with("drain"), "{s2}");
    assert_eq!(r2, "hpcmon: node too hot [rule drain-hot]");
    assert_eq!(node_state(&cluster, "n3").1, "maintenance by admin");

    // Replays (Alertmanager's repeat_interval) add nothing.
    let t0 = Instant::now();
    let dup = loop {
        let d = actions
            .metric("hpcmon_actions_duplicate_decisions_total")
            .await
            .unwrap();
        if d >= 7.0 {
            break d;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "Alertmanager did not replay"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(dup >= 7.0);
    assert_eq!(
        actions.actions().await.len(),
        7,
        "a replay added a decision"
    );
    assert_eq!(
        actions
            .metric("hpcmon_actions_commands_total{program=\"scontrol\",result=\"ok\"}")
            .await,
        Some(1.0),
        "exactly one command ran"
    );

    // Resolve: only hpcmon's own drain is undone.
    am.post_alerts(&json!([alert(
        &[("alertname", "NodeHot"), ("node", "n[2-3]")],
        &[],
        true
    )]))
    .await
    .unwrap();
    let j = actions
        .wait_journal("the revert ended", Duration::from_secs(30), |j| {
            j.iter().any(|a| a["phase"] == "revert" && ended(Some(a)))
        })
        .await;
    let rev = j.iter().find(|a| a["phase"] == "revert").unwrap();
    assert_eq!(rev["state"], "done", "{rev}");
    assert_eq!(rev["revert_of"], good["id"]);
    assert_eq!(
        rev["commands"],
        json!([["scontrol", "update", "NodeName=n2", "State=RESUME"]])
    );
    // (`idle`, or `idle*` when the loaded test machine delayed a slurmd ping)
    let (s2, r2) = node_state(&cluster, "n2");
    assert!(s2.starts_with("idle") && !s2.contains("drain"), "{s2} {r2}");
    let (s3, r3) = node_state(&cluster, "n3");
    assert!(
        s3.starts_with("drain") && r3 == "maintenance by admin",
        "{s3} {r3}"
    );

    // The journal page, as a person sees it.
    let dom = dump_dom(&actions.url("/?refresh=0"));
    assert!(
        dom.contains("<title>Actions journal · hpcmon-actions</title>"),
        "a label value ran as HTML (the title changed)"
    );
    assert!(!dom.contains("<img"), "a label value became an element");
    let r = rows(&dom);
    assert_eq!(r.len(), 8, "{dom}");
    // Newest first: the revert.
    assert_eq!(r[0][2], "drain-hot");
    assert!(r[0][3].starts_with("slurm.resume (revert #"), "{:?}", r[0]);
    assert_eq!((r[0][4].as_str(), r[0][5].as_str()), ("enforce", "done"));
    assert_eq!(r[0][6], "nodes n2,n3 → n2");
    let hostile_row = r
        .iter()
        .find(|row| row[7].contains("onerror"))
        .expect("the hostile label's row");
    assert_eq!(hostile_row[7], format!("NodeHot @ {}", hostile[4]));
    assert_eq!(hostile_row[5], "rejected");
    assert!(r
        .iter()
        .any(|row| row[7] == "NodeHot @ n1; rm -rf /" && row[5] == "rejected"));
    assert!(
        dom.contains("Mode: <strong id=\"mode\">enforce</strong>"),
        "{dom}"
    );
    assert!(dom.contains("8 actions (2 done, 6 rejected)"), "{dom}");
    // The timeline plot has one mark per action.
    assert_eq!(dom.matches("<circle").count(), 8, "{dom}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_before_it_runs_and_hold_off_survive_restarts() {
    let cluster = SlurmCluster::start(ClusterOptions::default());
    let conf = cluster.conf();
    let bmcs = Bmcs::start(1);
    let dir = tempfile::tempdir().unwrap();
    let policy = r#"
mode: enforce
defaults: {hold_off: 0s}
retry: {attempts: 2, backoff: 1s}
rules:
  - name: hold
    matchers: ['alertname="HoldQueue"']
    action: slurm.partition_down
    partitions: {label: partition}
    reason: test hold
    revert: true
  - name: bmc-off
    matchers: ['alertname="PowerOff"']
    action: ipmi.power_off
    nodes: {label: node}
    reason: test power off
    revert: true
    hold_off: 15s
"#;
    let mut actions = Actions::start(
        dir.path(),
        policy,
        &bmcs.flags(dir.path(), &["n1"]),
        &[("SLURM_CONF", conf.to_str().unwrap())],
    )
    .await;
    let am = Alertmanager::start(&am_config(&actions.webhook(), "1h"))
        .await
        .unwrap();

    // ---- 1. killed between journal and run ----
    let (code, _) = actions.post("/api/v1/pause").await;
    assert_eq!(code, 200);
    am.post_alerts(&json!([alert(
        &[("alertname", "HoldQueue"), ("partition", "gpu")],
        &[],
        false
    )]))
    .await
    .unwrap();
    let j = actions
        .wait_journal("the gpu hold journaled", Duration::from_secs(20), |j| {
            j.iter().any(|a| a["labels"]["partition"] == "gpu")
        })
        .await;
    let gpu = j
        .iter()
        .find(|a| a["labels"]["partition"] == "gpu")
        .unwrap()
        .clone();
    assert_eq!(gpu["state"], "pending", "paused: journaled, not run");
    assert_eq!(partition_state(&cluster, "gpu"), "up");
    actions.kill();
    actions.restart().await;
    let st = actions.get("/api/v1/status").await;
    assert_eq!(
        st["paused"], true,
        "the kill switch did not survive the restart"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = actions.get(&format!("/api/v1/actions/{}", gpu["id"])).await;
    assert_eq!(again["action"]["state"], "pending", "ran while paused");
    assert_eq!(partition_state(&cluster, "gpu"), "up");
    assert_eq!(actions.post("/api/v1/resume").await.0, 200);
    actions
        .wait_journal("the gpu hold done", Duration::from_secs(20), |j| {
            j.iter()
                .any(|a| a["id"] == gpu["id"] && a["state"] == "done")
        })
        .await;
    assert_eq!(partition_state(&cluster, "gpu"), "down");
    assert_eq!(actions.of_rule("hold").await.len(), 1, "ran more than once");

    // ---- 2. killed while running: the journal says `running`, its changes `planned` ----
    // Two actions are journaled (paused), the daemon is SIGKILLed, and the journal is put
    // where a kill during the run leaves it (the executor writes exactly this before it
    // starts a command): the debug hold `running` with its change planned and the command
    // done (the partition is DOWN), the n1 power-off `running` with its change planned and
    // the command not done (the BMC is still on).
    assert_eq!(actions.post("/api/v1/pause").await.0, 200);
    am.post_alerts(&json!([alert(
        &[("alertname", "HoldQueue"), ("partition", "debug")],
        &[],
        false
    )]))
    .await
    .unwrap();
    am.post_alerts(&json!([alert(
        &[("alertname", "PowerOff"), ("node", "n1")],
        &[],
        false
    )]))
    .await
    .unwrap();
    let j = actions
        .wait_journal(
            "debug hold and n1 power-off journaled",
            Duration::from_secs(20),
            |j| {
                j.iter().any(|a| a["labels"]["partition"] == "debug")
                    && j.iter().any(|a| a["labels"]["node"] == "n1")
            },
        )
        .await;
    let debug_id = j
        .iter()
        .find(|a| a["labels"]["partition"] == "debug")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let off_id = j.iter().find(|a| a["labels"]["node"] == "n1").unwrap()["id"]
        .as_i64()
        .unwrap();
    actions.kill();
    {
        use sqlx::Connection as _;
        let db = dir.path().join("journal/journal.db");
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for (id, kind, target, prior) in [
            (debug_id, "slurm.partition_down", "debug", "up"),
            (off_id, "ipmi.power_off", "n1", "power on"),
        ] {
            sqlx::query(
                "UPDATE actions SET state = 'running', attempts = 1, started_ms = ? WHERE id = ?",
            )
            .bind(now)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
            sqlx::query("INSERT INTO changes (kind, target, action_id, status, prior, at_ms) VALUES (?,?,?,'planned',?,?)")
                .bind(kind)
                .bind(target)
                .bind(id)
                .bind(prior)
                .bind(now)
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO holders (kind, target, action_id) VALUES (?,?,?)")
                .bind(kind)
                .bind(target)
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE settings SET value = '0' WHERE key = 'paused'")
            .execute(&mut c)
            .await
            .unwrap();
    }
    // debug: the command had run before the kill. n1: it had not (the BMC is still on).
    cluster.run("scontrol", &["update", "PartitionName=debug", "State=DOWN"]);
    assert!(bmcs.power(1));
    actions.restart().await;
    let j = actions
        .wait_journal(
            "both interrupted actions finished",
            Duration::from_secs(30),
            |j| {
                j.iter()
                    .filter(|a| a["id"] == debug_id || a["id"] == off_id)
                    .all(|a| a["state"] == "done")
            },
        )
        .await;
    let dbg = j.iter().find(|a| a["id"] == debug_id).unwrap();
    assert!(
        dbg["detail"]
            .as_str()
            .unwrap()
            .contains("debug already done before a restart"),
        "{dbg}"
    );
    assert_eq!(
        actions
            .metric("hpcmon_actions_commands_total{program=\"scontrol\",result=\"ok\"}")
            .await,
        Some(0.0),
        "the restarted daemon ran the partition command again"
    );
    assert_eq!(partition_state(&cluster, "debug"), "down");
    let ev = actions.get(&format!("/api/v1/actions/{debug_id}")).await;
    let states: Vec<&str> = ev["action"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "pending", "running", "done"], "{ev}");
    assert!(ev["action"]["events"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("the process stopped while this action ran"));
    // n1: the planned power-off ran after the restart.
    let off = j.iter().find(|a| a["id"] == off_id).unwrap();
    assert!(!bmcs.power(1), "n1's BMC is still on: {off}");
    assert_eq!(
        actions
            .metric("hpcmon_actions_commands_total{program=\"ipmi-power\",result=\"ok\"}")
            .await,
        Some(1.0)
    );

    // ---- 3. the hold-off clock survives a restart ----
    let changed_at = chrono::DateTime::parse_from_rfc3339(off["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    actions.kill();
    actions.restart().await;
    am.post_alerts(&json!([alert(
        &[("alertname", "PowerOff"), ("node", "n1")],
        &[],
        true
    )]))
    .await
    .unwrap();
    let j = actions
        .wait_journal(
            "the power-on revert deferred",
            Duration::from_secs(20),
            |j| {
                j.iter().any(|a| {
                    a["phase"] == "revert" && a["rule"] == "bmc-off" && a["state"] == "deferred"
                })
            },
        )
        .await;
    let rev = j
        .iter()
        .find(|a| a["phase"] == "revert" && a["rule"] == "bmc-off")
        .unwrap()
        .clone();
    let d = rev["detail"].as_str().unwrap();
    assert!(d.starts_with("hold-off: last power change on n1"), "{d}");
    let not_before = chrono::DateTime::parse_from_rfc3339(rev["not_before"].as_str().unwrap())
        .unwrap()
        .timestamp();
    // The clock started before the restart: when the power-off finished, plus 15 s.
    assert!(
        (not_before - (changed_at + 15)).abs() <= 1,
        "not_before {not_before}, power change {changed_at}"
    );
    assert!(!bmcs.power(1), "powered on during the hold-off");
    let j = actions
        .wait_journal("the power-on revert done", Duration::from_secs(30), |j| {
            j.iter()
                .any(|a| a["id"] == rev["id"] && a["state"] == "done")
        })
        .await;
    let rev = j.iter().find(|a| a["id"] == rev["id"]).unwrap();
    assert_eq!(rev["affected"], json!(["n1"]));
    assert!(bmcs.power(1), "n1's BMC was not powered on again");
    let started = chrono::DateTime::parse_from_rfc3339(rev["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(started >= changed_at + 15, "ran before the hold-off ended");
}
