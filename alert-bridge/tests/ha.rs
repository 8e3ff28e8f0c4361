//! HA: two bridges writing one PostgreSQL or MariaDB database, fed the same notifications at
//! the same time by an HA pair of real Alertmanagers (each pointing at its own bridge), store
//! exactly one episode per alert with one history row per state change.

mod common;

use std::time::Duration;

use common::{Backend, Bridge};
use hpcmon_e2e::Alertmanager;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const ALERTS: usize = 60;

fn alerts(starts: &str, ends: Option<&str>) -> Value {
    let v: Vec<Value> = (0..ALERTS)
        .map(|i| {
            let mut a = json!({"labels": {"alertname": "HaPair", "node": format!("n{i:03}"),
                "severity": if i % 2 == 0 { "critical" } else { "warning" }},
                "annotations": {"summary": format!("node {i}"), "description": "HA"},
                "startsAt": starts, "generatorURL": "http://127.0.0.1:9/graph"});
            if let Some(e) = ends {
                a["endsAt"] = json!(e);
            }
            a
        })
        .collect();
    json!(v)
}

async fn two_bridges_one_database(backend: &str) {
    let be = Backend::by_name(backend);
    let b1 = Bridge::start(&be, &[]).await;
    let b2 = Bridge::start(&be, &[]).await;
    let am1 = Alertmanager::start(&Alertmanager::webhook_config(&b1.url("/webhook")))
        .await
        .unwrap();
    let am2 = Alertmanager::start(&Alertmanager::webhook_config(&b2.url("/webhook")))
        .await
        .unwrap();
    let starts = (chrono::Utc::now() - chrono::Duration::seconds(20)).to_rfc3339();
    let firing = alerts(&starts, None);
    let (r1, r2) = tokio::join!(am1.post_alerts(&firing), am2.post_alerts(&firing));
    r1.unwrap();
    r2.unwrap();
    b1.wait_for("alertname=HaPair", WAIT, |r| {
        r.len() == ALERTS && r.iter().all(|e| e["notifications"].as_i64().unwrap() >= 2)
    })
    .await;
    let ends = chrono::Utc::now().to_rfc3339();
    let resolved = alerts(&starts, Some(&ends));
    let (r1, r2) = tokio::join!(am1.post_alerts(&resolved), am2.post_alerts(&resolved));
    r1.unwrap();
    r2.unwrap();
    let rows = b2
        .wait_for("alertname=HaPair", WAIT, |r| {
            r.len() == ALERTS
                && r.iter()
                    .all(|e| e["status"] == "resolved" && e["notifications"].as_i64().unwrap() >= 4)
        })
        .await;
    // Exactly one episode per alert, seen the same through both bridges.
    let mut fps: Vec<&str> = rows
        .iter()
        .map(|e| e["fingerprint"].as_str().unwrap())
        .collect();
    fps.sort();
    fps.dedup();
    assert_eq!(fps.len(), ALERTS);
    assert_eq!(b1.all("alertname=HaPair").await.len(), ALERTS);
    for e in rows.iter().take(5) {
        let id = e["id"].as_i64().unwrap();
        let one = b1.get_json(&format!("/api/v1/alerts/{id}")).await;
        let h: Vec<&str> = one["data"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        assert_eq!(h, ["firing", "resolved"], "{one}");
    }
    for b in [&b1, &b2] {
        assert_eq!(
            b.metric("alert_bridge_notifications_rejected_total{reason=\"storage_error\"}")
                .await,
            None,
            "{}",
            b.daemon.log_tail(20)
        );
    }
    drop((am1, am2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_one_postgres() {
    two_bridges_one_database("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_one_mariadb() {
    two_bridges_one_database("mariadb").await;
}
