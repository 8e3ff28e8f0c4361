//! OpenSCOW's alarm-log page (告警日志) on the bridge's MariaDB store: a real Alertmanager pair
//! fires, duplicates and resolves alerts into the bridge; then OpenSCOW's own SQL — sent as
//! it is, with its parameters substituted the way the page does — runs against MariaDB as the
//! read-only account the shipped Grafana datasource uses, and returns the page's rows.

mod common;

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use common::{Backend, Bridge, MariaDbServer};
use hpcmon_e2e::Alertmanager;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};

const WAIT: Duration = Duration::from_secs(40);

/// The SQL of OpenSCOW's alarm-log API routes, as the page sends it to Grafana's
/// `/api/ds/query` for datasource `AlarmDB-MySQL` (a test fixture: the interface the bridge
/// must serve). Source: github.com/PKUHPC/OpenSCOW (Mulan PSL v2),
/// `apps/mis-web/src/pages/api/admin/monitor/getAlarmLogs.ts` at commit
/// 2a719a5ba55dc620b643ac982646ece8607d01c9 and `getAlarmLogsCount.ts` at commit
/// 523f1091ca8137548ddad5966c2a0eebd28b8cdc (the string concatenations joined, nothing else
/// changed). `{from}`/`{to}` are `dayjs(ms).format("YYYY-MM-DD HH:mm:ss")`, `{status}`
/// is ` AND a.status = '<status>'` or empty, then `LIMIT {size} OFFSET {(page - 1) * size}`.
const ALARM_LOGS_SQL: &str = "SELECT t2.* FROM (SELECT fingerprint, MAX(ID) AS tid, startsAt FROM Alert GROUP BY startsAt, fingerprint) AS t1 INNER JOIN ( SELECT a.ID AS id, a.fingerprint, a.status, a.startsAt, a.endsAt, aa.value AS description, al.Value AS severity FROM Alert AS a LEFT JOIN AlertAnnotation AS aa ON a.ID = aa.AlertID LEFT JOIN AlertLabel al ON a.ID = al.AlertID WHERE aa.Annotation = 'description' AND al.Label = 'severity' AND a.startsAt BETWEEN '{from}' AND '{to}'{status} ) AS t2 ON t1.tid = t2.id LIMIT {size} OFFSET {offset};";
const ALARM_COUNT_SQL: &str = "SELECT COUNT(t2.id) AS totalCount FROM (SELECT fingerprint, MAX(ID) AS tid, startsAt FROM Alert GROUP BY startsAt, fingerprint) AS t1 INNER JOIN ( SELECT a.ID AS id, a.fingerprint, a.status, a.startsAt, a.endsAt, aa.value AS description, al.Value AS severity FROM Alert AS a LEFT JOIN AlertAnnotation AS aa ON a.ID = aa.AlertID LEFT JOIN AlertLabel al ON a.ID = al.AlertID WHERE aa.Annotation = 'description' AND al.Label = 'severity' AND a.startsAt BETWEEN '{from}' AND '{to}'{status} ) AS t2 ON t1.tid = t2.id;";

/// dayjs(ms).format("YYYY-MM-DD HH:mm:ss") on a server running in UTC (OpenSCOW's container).
fn dayjs(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn fill(
    sql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    status: &str,
    page: i64,
    size: i64,
) -> String {
    let st = if status.is_empty() {
        String::new()
    } else {
        format!(" AND a.status = '{status}'")
    };
    sql.replace("{from}", &dayjs(from))
        .replace("{to}", &dayjs(to))
        .replace("{status}", &st)
        .replace("{size}", &size.to_string())
        .replace("{offset}", &((page - 1) * size).to_string())
}

/// One row of the page's table.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i64,
    fingerprint: String,
    status: String,
    starts_at: NaiveDateTime,
    ends_at: Option<NaiveDateTime>,
    description: String,
    severity: String,
}

async fn page(
    c: &mut sqlx::MySqlConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    status: &str,
    page_no: i64,
    size: i64,
) -> Vec<Row> {
    let sql = fill(ALARM_LOGS_SQL, from, to, status, page_no, size);
    // Raw SQL, unprepared, as Grafana's MySQL datasource sends it.
    let rows = sqlx::raw_sql(&sql).fetch_all(&mut *c).await.unwrap();
    rows.iter()
        .map(|r| Row {
            id: r.get::<i32, _>("id") as i64,
            fingerprint: r.get("fingerprint"),
            status: r.get("status"),
            starts_at: r.get("startsAt"),
            ends_at: r.get("endsAt"),
            description: r.get("description"),
            severity: r.get("severity"),
        })
        .collect()
}

async fn count(
    c: &mut sqlx::MySqlConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    status: &str,
) -> i64 {
    let sql = fill(ALARM_COUNT_SQL, from, to, status, 1, 1);
    let r = sqlx::raw_sql(&sql).fetch_one(&mut *c).await.unwrap();
    r.get::<i64, _>("totalCount")
}

fn am_alert(labels: Value, annotations: Value, starts: &str, ends: Option<&str>) -> Value {
    let mut a = json!({"labels": labels, "annotations": annotations, "startsAt": starts,
        "generatorURL": "http://127.0.0.1:9/graph?g0.expr=up"});
    if let Some(e) = ends {
        a["endsAt"] = json!(e);
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openscow_alarm_log_sql_returns_our_alerts_from_mariadb() {
    let be = Backend::mariadb();
    let Backend::MariaDb { name: db_name, .. } = &be else {
        unreachable!()
    };
    let server = MariaDbServer::get();
    let bridge = Bridge::start(&be, &[]).await;
    // An HA pair of Alertmanagers, both delivering to the bridge: every alert arrives twice.
    let cfg = Alertmanager::webhook_config(&bridge.url("/webhook"));
    let am1 = Alertmanager::start(&cfg).await.unwrap();
    let am2 = Alertmanager::start(&cfg).await.unwrap();
    let t0 = Utc::now() - chrono::Duration::seconds(30);
    let starts = t0.to_rfc3339();
    let alerts = json!([
        am_alert(
            json!({"alertname": "ScowNodeDown", "node": "n1", "severity": "critical"}),
            json!({"summary": "n1 down", "description": "Node n1 is down"}),
            &starts,
            None
        ),
        am_alert(
            json!({"alertname": "ScowNodeDown", "node": "n2", "severity": "warning"}),
            json!({"summary": "n2 down", "description": "Node n2 is down"}),
            &starts,
            None
        ),
        am_alert(
            json!({"alertname": "ScowDiskFull", "node": "n3", "severity": "info"}),
            json!({"summary": "n3 disk full"}),
            &starts,
            None
        ),
        am_alert(
            json!({"alertname": "ScowNoSeverity", "node": "n4"}),
            json!({"description": "no severity here ✓"}),
            &starts,
            None
        ),
    ]);
    am1.post_alerts(&alerts).await.unwrap();
    am2.post_alerts(&alerts).await.unwrap();
    bridge
        .wait_for("", WAIT, |r| {
            r.len() == 4 && r.iter().all(|e| e["notifications"].as_i64().unwrap() >= 2)
        })
        .await;
    // Resolve n1 through both.
    let ends = Utc::now();
    let resolved = json!([am_alert(
        json!({"alertname": "ScowNodeDown", "node": "n1", "severity": "critical"}),
        json!({"summary": "n1 down", "description": "Node n1 is down"}),
        &starts,
        Some(&ends.to_rfc3339())
    )]);
    am1.post_alerts(&resolved).await.unwrap();
    am2.post_alerts(&resolved).await.unwrap();
    let eps = bridge
        .wait_for("status=resolved", WAIT, |r| {
            r.len() == 1 && r[0]["notifications"].as_i64().unwrap() >= 4
        })
        .await;
    let fp_n1 = eps[0]["fingerprint"].as_str().unwrap().to_string();
    let all = bridge.all("").await;
    let fp = |node: &str| {
        all.iter().find(|e| e["labels"]["node"] == node).unwrap()["fingerprint"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // OpenSCOW reads through Grafana's AlarmDB-MySQL datasource: the read-only account.
    let pw = server.readonly_user(db_name, "openscow");
    let url = format!("mysql://openscow:{pw}@127.0.0.1:{}/{db_name}", server.port);
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let (from, to) = (
        t0 - chrono::Duration::days(7),
        Utc::now() + chrono::Duration::hours(1),
    );
    let mut rows = page(&mut c, from, to, "", 1, 10).await;
    rows.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    assert_eq!(
        rows.len(),
        4,
        "one row per episode, duplicates folded: {rows:#?}"
    );
    let by_fp = |f: &str| rows.iter().find(|r| r.fingerprint == f).unwrap().clone();
    let start_s = DateTime::from_timestamp(t0.timestamp(), 0)
        .unwrap()
        .naive_utc();
    let n1 = by_fp(&fp_n1);
    assert_eq!(
        (
            n1.status.as_str(),
            n1.severity.as_str(),
            n1.description.as_str()
        ),
        ("resolved", "Error", "Node n1 is down")
    );
    assert_eq!(n1.starts_at, start_s, "UTC DATETIME of startsAt");
    assert_eq!(
        n1.ends_at,
        Some(
            DateTime::from_timestamp(ends.timestamp(), 0)
                .unwrap()
                .naive_utc()
        )
    );
    let n2 = by_fp(&fp("n2"));
    assert_eq!(
        (
            n2.status.as_str(),
            n2.severity.as_str(),
            n2.description.as_str(),
            n2.ends_at
        ),
        ("firing", "Warning", "Node n2 is down", None)
    );
    let n3 = by_fp(&fp("n3"));
    assert_eq!(
        (n3.severity.as_str(), n3.description.as_str()),
        ("Info", "n3 disk full"),
        "no description: the summary stands in"
    );
    let n4 = by_fp(&fp("n4"));
    assert_eq!(
        (n4.severity.as_str(), n4.description.as_str()),
        ("none", "no severity here ✓")
    );
    // The status filter, the count, the pages, the time window.
    let firing = page(&mut c, from, to, "firing", 1, 10).await;
    assert_eq!(firing.len(), 3);
    assert!(firing.iter().all(|r| r.status == "firing"));
    let res = page(&mut c, from, to, "resolved", 1, 10).await;
    assert_eq!(
        res.iter()
            .map(|r| r.fingerprint.as_str())
            .collect::<Vec<_>>(),
        [fp_n1.as_str()]
    );
    assert_eq!(count(&mut c, from, to, "").await, 4);
    assert_eq!(count(&mut c, from, to, "firing").await, 3);
    assert_eq!(count(&mut c, from, to, "resolved").await, 1);
    let p1 = page(&mut c, from, to, "", 1, 3).await;
    let p2 = page(&mut c, from, to, "", 2, 3).await;
    assert_eq!((p1.len(), p2.len()), (3, 1));
    assert!(!p1.iter().any(|r| r.id == p2[0].id));
    let before = t0 - chrono::Duration::days(8);
    assert_eq!(
        count(&mut c, before, t0 - chrono::Duration::days(1), "").await,
        0
    );
    // Duplicate deliveries wrote no rows: n1 has its firing and its resolved row, no more.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM Alert WHERE fingerprint = ?")
        .bind(&fp_n1)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let version: String = sqlx::query_scalar("SELECT version FROM Model")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(version, "0.1.0");
    // The datasource account cannot write, nor read the bridge's own tables.
    let e = sqlx::raw_sql("INSERT INTO AlertLabel (AlertID, Label, Value) VALUES (1, 'x', 'y')")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("denied"), "{e}");
    let e = sqlx::raw_sql("DELETE FROM Alert")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("denied"), "{e}");
    let e = sqlx::raw_sql("SELECT * FROM episodes")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("denied"), "{e}");
    drop((am1, am2));
}

/// The shipped Grafana provisioning names the datasource exactly as OpenSCOW looks it up.
#[test]
fn grafana_provisioning_matches_openscow() {
    let dir = hpcmon_e2e::repo_root().join("alert-bridge/openscow/grafana/provisioning");
    let ds: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("datasources/alarmdb-mysql.yaml")).unwrap(),
    )
    .unwrap();
    let d = &ds["datasources"][0];
    assert_eq!(d["name"], "AlarmDB-MySQL");
    assert_eq!(d["type"], "mysql");
    let pw = d["secureJsonData"]["password"].as_str().unwrap();
    assert!(pw.starts_with("$__file{"), "the password comes from a file");
    let prom: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("datasources/prometheus.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(prom["datasources"][0]["type"], "prometheus");
    let dash: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("dashboards/hpcmon.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(dash["providers"][0]["type"], "file");
    let mis: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("../../mis.yaml")).unwrap())
            .unwrap();
    assert_eq!(mis["clusterMonitor"]["alarmLogs"]["enabled"], true);
    let uid = mis["clusterMonitor"]["resourceStatus"]["dashboardUid"]
        .as_str()
        .unwrap();
    let dashboards = hpcmon_e2e::repo_root().join("dashboards");
    let found = std::fs::read_dir(dashboards).unwrap().any(|f| {
        let p = f.unwrap().path();
        p.extension().is_some_and(|e| e == "json")
            && std::fs::read_to_string(&p)
                .unwrap()
                .contains(&format!("\"uid\": \"{uid}\""))
    });
    assert!(found, "mis.yaml embeds dashboard {uid}, which hpcmon ships");
}
