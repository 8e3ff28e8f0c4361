//! A real Alertmanager (and a real Prometheus rule) feeding the bridge, read back through the
//! bridge's API — the same suite against SQLite, a real PostgreSQL and a real MariaDB; and
//! reconciliation closing what Alertmanager never resolves.

mod common;

use std::time::Duration;

use common::{Backend, Bridge};
use hpcmon_e2e::{Alertmanager, Prometheus};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(40);

fn am_alert(labels: Value, summary: &str, starts: &str, ends: Option<&str>) -> Value {
    let mut a = json!({"labels": labels, "annotations": {"summary": summary, "description": format!("{summary} (details)")},
        "startsAt": starts, "generatorURL": "http://127.0.0.1:9/graph?g0.expr=up"});
    if let Some(e) = ends {
        a["endsAt"] = json!(e);
    }
    a
}

fn ids(rows: &[Value], key: &str) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r["labels"][key].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

async fn fire_resolve_and_query(backend: &str) {
    let be = Backend::by_name(backend);
    let bridge = Bridge::start(&be, &[]).await;
    let am = Alertmanager::start(&Alertmanager::webhook_config(&bridge.url("/webhook")))
        .await
        .unwrap();
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(30);
    let starts = t0.to_rfc3339();
    let labels = |node: &str, sev: &str| json!({"alertname": "BridgeNodeDown", "node": node, "severity": sev, "cluster": "it"});
    am.post_alerts(&json!([
        am_alert(labels("n1", "critical"), "n1 is down", &starts, None),
        am_alert(labels("n2", "warning"), "n2 is down", &starts, None),
        am_alert(labels("gpu1", "warning"), "gpu1 is down", &starts, None),
    ]))
    .await
    .unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeNodeDown", WAIT, |r| {
            r.len() == 3 && r.iter().all(|e| e["status"] == "firing")
        })
        .await;
    let n1 = rows.iter().find(|r| r["instance"] == "n1").unwrap();
    assert_eq!(n1["severity"], "critical");
    assert_eq!(n1["annotations"]["summary"], "n1 is down");
    assert_eq!(n1["endsAt"], Value::Null);
    assert_eq!(n1["receiver"], "hook");
    assert!(n1["groupKey"].as_str().unwrap().contains("BridgeNodeDown"));
    assert_eq!(n1["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(n1["startsAt"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        t0.timestamp()
    );

    // Filters.
    let q = |s: &'static str| bridge.all(s);
    assert_eq!(
        ids(&q("match[]=%7Bnode%3D%22n1%22%7D").await, "node"),
        ["n1"]
    );
    assert_eq!(
        ids(&q("match[]=%7Bnode%3D~%22n.*%22%7D").await, "node"),
        ["n1", "n2"]
    );
    assert_eq!(
        ids(
            &q("matcher=node!~%22n.*%22&alertname=BridgeNodeDown").await,
            "node"
        ),
        ["gpu1"]
    );
    assert_eq!(
        ids(
            &q("matcher=node!%3D%22n1%22&alertname=BridgeNodeDown").await,
            "node"
        ),
        ["gpu1", "n2"]
    );
    assert_eq!(ids(&q("severity=critical").await, "node"), ["n1"]);
    assert_eq!(
        ids(&q("severity=warning&q=GPU1%20IS").await, "node"),
        ["gpu1"]
    );
    assert_eq!(q("status=resolved").await.len(), 0);
    let fp = n1["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(bridge.all(&format!("fingerprint={fp}")).await.len(), 1);
    // A time range that ends before the episodes started finds nothing; one that overlaps does.
    let before = (t0 - chrono::Duration::seconds(60)).timestamp();
    assert_eq!(bridge.all(&format!("to={before}")).await.len(), 0);
    assert_eq!(
        bridge
            .all(&format!("from={before}&to={}", t0.timestamp() + 1))
            .await
            .len(),
        3
    );

    // Resolve n1 through Alertmanager (same startsAt, endsAt now).
    let ends = chrono::Utc::now().to_rfc3339();
    am.post_alerts(&json!([am_alert(
        labels("n1", "critical"),
        "n1 is down",
        &starts,
        Some(&ends)
    )]))
    .await
    .unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeNodeDown&status=resolved", WAIT, |r| {
            r.len() == 1
        })
        .await;
    assert_eq!(rows[0]["instance"], "n1");
    assert!(rows[0]["endsAt"].is_string());
    assert!(rows[0]["durationSeconds"].as_f64().unwrap() >= 29.0);
    // Still one episode per alert, two firing.
    assert_eq!(bridge.all("alertname=BridgeNodeDown").await.len(), 3);
    assert_eq!(
        bridge
            .all("alertname=BridgeNodeDown&status=firing")
            .await
            .len(),
        2
    );
    // History of the resolved episode: fired, then resolved.
    let id = rows[0]["id"].as_i64().unwrap();
    let one = bridge.get_json(&format!("/api/v1/alerts/{id}")).await;
    let hist: Vec<&str> = one["data"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(hist, ["firing", "resolved"]);
    // Stats and CSV.
    let st = bridge
        .get_json("/api/v1/stats?alertname=BridgeNodeDown")
        .await;
    assert_eq!(st["data"]["total"], 3);
    assert_eq!(st["data"]["byStatus"]["resolved"], 1);
    assert_eq!(st["data"]["bySeverity"]["warning"], 2);
    let csv = bridge
        .client
        .get(bridge.url("/api/v1/alerts?format=csv&alertname=BridgeNodeDown&sort=id"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("id,status,severity,alertname,instance"));
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains("\"n1 is down\""), "{csv}");
    // Pagination: pages of 1 follow the cursor and see every episode once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..5 {
        let v = bridge
            .get_json(&format!(
                "/api/v1/alerts?alertname=BridgeNodeDown&limit=1{cursor}"
            ))
            .await;
        seen.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match v["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    let page2 = bridge
        .get_json("/api/v1/alerts?alertname=BridgeNodeDown&limit=2&page=2")
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    // Own metrics.
    assert!(
        bridge
            .metric("alert_bridge_alerts_stored_total")
            .await
            .unwrap()
            >= 4.0
    );
    assert_eq!(
        bridge.metric("alert_bridge_episodes_firing").await,
        Some(2.0)
    );
    assert!(
        bridge
            .metric("alert_bridge_storage_size_bytes")
            .await
            .unwrap()
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_bridge_sqlite() {
    fire_resolve_and_query("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_bridge_postgres() {
    fire_resolve_and_query("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_bridge_mariadb() {
    fire_resolve_and_query("mariadb").await;
}

/// Issue 11: Alertmanager sends no "resolved" for an alert that is silenced when it resolves,
/// so its episode stayed "firing" for the whole retention. Reconciliation against
/// Alertmanager's `/api/v2/alerts` closes it, with the reason in its history; an alert
/// Alertmanager still has stays firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_alert_that_resolves_is_closed_by_reconciliation() {
    let be = Backend::sqlite();
    let port = hpcmon_e2e::free_port();
    let am = Alertmanager::start(&Alertmanager::webhook_config(&format!(
        "http://127.0.0.1:{port}/webhook"
    )))
    .await
    .unwrap();
    let bridge = Bridge::start_on(
        &be,
        port,
        &[
            &format!("--reconcile.alertmanager-url={}", am.url()),
            "--reconcile.interval=1s",
        ],
    )
    .await;
    let starts = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let gone = json!({"alertname": "ReconGone", "node": "n1", "severity": "warning"});
    let stays = json!({"alertname": "ReconStays", "node": "n2", "severity": "warning"});
    am.post_alerts(&json!([
        am_alert(gone.clone(), "gone", &starts, None),
        am_alert(stays.clone(), "stays", &starts, None)
    ]))
    .await
    .unwrap();
    bridge
        .wait_for("alertname=ReconGone,ReconStays", WAIT, |r| {
            r.len() == 2 && r.iter().all(|e| e["status"] == "firing")
        })
        .await;
    // Silence it, then it resolves: Alertmanager notifies nobody.
    let now = chrono::Utc::now();
    let c = hpcmon_e2e::client(&Default::default()).unwrap();
    let r = c
        .post(format!("{}/api/v2/silences", am.url()))
        .json(&json!({"matchers": [{"name": "alertname", "value": "ReconGone", "isRegex": false, "isEqual": true}],
            "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "test", "comment": "maintenance"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    am.post_alerts(&json!([am_alert(
        gone,
        "gone",
        &starts,
        Some(&chrono::Utc::now().to_rfc3339())
    )]))
    .await
    .unwrap();
    let rows = bridge
        .wait_for("alertname=ReconGone", Duration::from_secs(60), |r| {
            r.len() == 1 && r[0]["status"] == "resolved"
        })
        .await;
    let id = rows[0]["id"].as_i64().unwrap();
    let one = bridge.get_json(&format!("/api/v1/alerts/{id}")).await;
    let hist = one["data"]["history"].as_array().unwrap();
    assert_eq!(
        hist.last().unwrap()["reason"],
        "no longer active in Alertmanager",
        "closed by reconciliation, not by a notification: {one}"
    );
    // Two more rounds: the alert Alertmanager still has is left alone.
    let closed = bridge
        .metric("alert_bridge_reconcile_closed_episodes_total")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = bridge.all("alertname=ReconStays").await;
    assert_eq!(r[0]["status"], "firing");
    assert_eq!(
        bridge
            .metric("alert_bridge_reconcile_closed_episodes_total")
            .await,
        Some(closed)
    );
    assert!(
        bridge
            .metric("alert_bridge_reconcile_last_success_timestamp_seconds")
            .await
            .unwrap()
            > 0.0
    );
}

/// A Prometheus alerting rule fires through Alertmanager into the bridge, and resolves when
/// the rule goes away.
async fn prometheus_rule(backend: &str) {
    let be = Backend::by_name(backend);
    let bridge = Bridge::start(&be, &[]).await;
    let am = Alertmanager::start(&Alertmanager::webhook_config(&bridge.url("/webhook")))
        .await
        .unwrap();
    let rules = "groups:\n  - name: bridge-it\n    interval: 1s\n    rules:\n      - alert: BridgeRuleFires\n        expr: vector(1)\n        labels:\n          severity: info\n        annotations:\n          summary: \"Fired by a rule\"\n          description: 'value {{ $value }}'\n";
    let cfg = format!(
        "global:\n  evaluation_interval: 1s\n  scrape_interval: 1s\n  external_labels:\n    cluster: it\n\
         rule_files: [\"rules.yml\"]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{}\"]\n",
        am.target()
    );
    let prom = Prometheus::start(&cfg, &[("rules.yml", rules)])
        .await
        .unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeRuleFires", WAIT, |r| r.len() == 1)
        .await;
    let e = &rows[0];
    assert_eq!(e["status"], "firing");
    assert_eq!(e["labels"]["cluster"], "it");
    assert_eq!(e["annotations"]["description"], "value 1");
    assert!(
        e["generatorURL"].as_str().unwrap().starts_with(&prom.url()),
        "{e}"
    );
    // Remove the rule: Prometheus sends the alert as resolved.
    std::fs::write(prom.path("rules.yml"), "groups: []\n").unwrap();
    prom.reload().await.unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeRuleFires", WAIT, |r| {
            r.len() == 1 && r[0]["status"] == "resolved"
        })
        .await;
    assert!(rows[0]["endsAt"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rule_to_bridge_sqlite() {
    prometheus_rule("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rule_to_bridge_postgres() {
    prometheus_rule("postgres").await;
}

/// Two Alertmanagers (an HA pair without gossip) deliver the same alerts: one episode each.
async fn ha_pair(backend: &str) {
    let be = Backend::by_name(backend);
    let bridge = Bridge::start(&be, &[]).await;
    let cfg = Alertmanager::webhook_config(&bridge.url("/webhook"));
    let am1 = Alertmanager::start(&cfg).await.unwrap();
    let am2 = Alertmanager::start(&cfg).await.unwrap();
    let starts = (chrono::Utc::now() - chrono::Duration::seconds(10)).to_rfc3339();
    let a = am_alert(
        json!({"alertname": "BridgeHaDup", "node": "n7", "severity": "warning"}),
        "dup",
        &starts,
        None,
    );
    am1.post_alerts(&json!([a.clone()])).await.unwrap();
    am2.post_alerts(&json!([a.clone()])).await.unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeHaDup", WAIT, |r| {
            r.len() == 1 && r[0]["notifications"].as_i64().unwrap() >= 2
        })
        .await;
    let id = rows[0]["id"].as_i64().unwrap();
    let ends = chrono::Utc::now().to_rfc3339();
    let mut r = a.clone();
    r["endsAt"] = json!(ends);
    am1.post_alerts(&json!([r.clone()])).await.unwrap();
    am2.post_alerts(&json!([r])).await.unwrap();
    let rows = bridge
        .wait_for("alertname=BridgeHaDup", WAIT, |r| {
            r.len() == 1
                && r[0]["status"] == "resolved"
                && r[0]["notifications"].as_i64().unwrap() >= 4
        })
        .await;
    assert_eq!(rows[0]["id"].as_i64().unwrap(), id);
    let one = bridge.get_json(&format!("/api/v1/alerts/{id}")).await;
    // Duplicates add no history: one "firing" and one "resolved" row.
    assert_eq!(one["data"]["history"].as_array().unwrap().len(), 2, "{one}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_pair_duplicates_are_one_episode_sqlite() {
    ha_pair("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_pair_duplicates_are_one_episode_postgres() {
    ha_pair("postgres").await;
}

/// PostgreSQL goes away while Alertmanager delivers: the bridge answers 5xx, is not ready,
/// and once PostgreSQL is back, Alertmanager's retries land and nothing is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_then_alertmanager_retries_land() {
    let be = Backend::postgres();
    let bridge = Bridge::start(&be, &["--storage.timeout=3s"]).await;
    let am = Alertmanager::start(&Alertmanager::webhook_config(&bridge.url("/webhook")))
        .await
        .unwrap();
    let starts = chrono::Utc::now().to_rfc3339();
    am.post_alerts(&json!([am_alert(
        json!({"alertname": "BridgeBefore", "node": "n1"}),
        "before",
        &starts,
        None
    )]))
    .await
    .unwrap();
    bridge
        .wait_for("alertname=BridgeBefore", WAIT, |r| r.len() == 1)
        .await;

    be.pg().stop("immediate");
    let ready = bridge
        .client
        .get(bridge.url("/-/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let during: Vec<Value> = (1..=5)
        .map(|i| {
            am_alert(
                json!({"alertname": "BridgeDuringOutage", "node": format!("n{i}")}),
                "during",
                &starts,
                None,
            )
        })
        .collect();
    am.post_alerts(&json!(during)).await.unwrap();
    // Wait until the bridge has refused at least one delivery with 5xx.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n = bridge
            .metric("alert_bridge_notifications_rejected_total{reason=\"storage_error\"}")
            .await
            .unwrap_or(0.0);
        if n >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no storage error seen\n{}",
            bridge.daemon.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    be.pg().start_again();
    let rows = bridge
        .wait_for(
            "alertname=BridgeDuringOutage",
            Duration::from_secs(90),
            |r| r.len() == 5,
        )
        .await;
    assert!(rows.iter().all(|r| r["status"] == "firing"));
    assert_eq!(bridge.all("alertname=BridgeBefore").await.len(), 1);
    let ready = bridge
        .client
        .get(bridge.url("/-/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    drop(am);
}
