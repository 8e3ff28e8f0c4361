//! Storage tests on SQLite (the same code runs on PostgreSQL and MariaDB in `tests/`).

use super::read::{list, Query, SortKey};
use super::write::{retention_chunk, store_batch, Incoming, PairCache, Stored, WriteConfig};
use super::*;
use crate::payload;

fn notif_at(body: serde_json::Value, received_at: i64) -> Incoming {
    Incoming {
        notification: payload::parse(&serde_json::to_vec(&body).unwrap()).unwrap(),
        received_at,
    }
}

fn notif(body: serde_json::Value) -> Incoming {
    notif_at(body, 1_000)
}

fn alert(fp: &str, status: &str, ends: &str, summary: &str) -> serde_json::Value {
    serde_json::json!({"version":"4","receiver":"r","status":status,"groupKey":"g",
        "alerts":[{"status":status,"labels":{"alertname":"A","node":format!("n-{fp}"),"severity":"critical"},
        "annotations":{"summary":summary},"startsAt":"2026-01-01T00:00:00Z","endsAt":ends,
        "generatorURL":"http://p/graph","fingerprint":fp}]})
}

const Z: &str = "0001-01-01T00:00:00Z";

async fn sqlite() -> (tempfile::TempDir, Db) {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", d.path().join("a.db").display());
    let db = Db::open(&url, &Options::default()).await.unwrap();
    (d, db)
}

/// Fingerprints of the episodes `matchers` selects, by id.
async fn fingerprints(db: &Db, matchers: &str) -> Vec<String> {
    let q = Query {
        matchers: crate::matcher::parse(matchers).unwrap(),
        sort: SortKey::Id,
        descending: false,
        ..Default::default()
    };
    let rows = list(db, &q).await.unwrap().0;
    rows.into_iter().map(|e| e.fingerprint).collect()
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    let Db::Sqlite(s) = db else { panic!() };
    sqlx::query_scalar(sql).fetch_one(&s.read).await.unwrap()
}

/// A value as the writer's connection sees it (its own pragmas).
async fn writer_scalar(db: &Db, sql: &str) -> i64 {
    let Db::Sqlite(s) = db else { panic!() };
    sqlx::query_scalar(sql).fetch_one(&s.write).await.unwrap()
}

#[tokio::test]
async fn duplicates_are_one_episode_and_late_replays_change_nothing() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    let fire = notif(alert("f1", "firing", Z, "hot"));
    let s = store_batch(&db, &[fire.clone(), fire.clone()], &mut c, &cfg)
        .await
        .unwrap();
    assert_eq!(
        s,
        Stored {
            alerts: 2,
            new_episodes: 1,
            changes: 1,
            refired: 0
        }
    );
    let res = notif_at(
        alert("f1", "resolved", "2026-01-01T00:05:00Z", "hot"),
        2_000,
    );
    store_batch(&db, &[res], &mut c, &cfg).await.unwrap();
    // A late firing replay (e.g. from the second Alertmanager of an HA pair), within the grace.
    let replay = notif_at(alert("f1", "firing", Z, "hot"), 3_000);
    let s = store_batch(&db, &[replay], &mut c, &cfg).await.unwrap();
    assert_eq!(s.changes, 0);
    let (rows, more) = list(&db, &Query::default()).await.unwrap();
    assert!(!more);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "resolved");
    assert_eq!(rows[0].ends_at, Some(rows[0].starts_at + 300_000));
    assert_eq!(rows[0].notifications, 4);
    let (_, hist) = get(&db, rows[0].id).await.unwrap().unwrap();
    let st: Vec<&str> = hist.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(st, ["firing", "resolved"]);
    assert_eq!(hist[1].reason, "resolved");
    // A changed annotation while firing is recorded in the history.
    store_batch(&db, &[notif(alert("f2", "firing", Z, "a"))], &mut c, &cfg)
        .await
        .unwrap();
    store_batch(&db, &[notif(alert("f2", "firing", Z, "b"))], &mut c, &cfg)
        .await
        .unwrap();
    let q = Query {
        fingerprint: Some("f2".into()),
        ..Default::default()
    };
    let (rows, _) = list(&db, &q).await.unwrap();
    assert_eq!(rows[0].annotations, r#"{"summary":"b"}"#);
    assert_eq!(get(&db, rows[0].id).await.unwrap().unwrap().1.len(), 2);
}

/// Issue 11: a real re-fire (same startsAt, after the resolution) was swallowed by "resolved
/// wins", with no history.
#[tokio::test]
async fn a_refire_after_the_grace_reopens_the_episode_with_history() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig {
        refire_grace_ms: 60_000,
        ..Default::default()
    };
    store_batch(
        &db,
        &[notif_at(alert("r1", "firing", Z, "x"), 1_000)],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    let res = notif_at(alert("r1", "resolved", "2026-01-01T00:05:00Z", "x"), 10_000);
    store_batch(&db, &[res], &mut c, &cfg).await.unwrap();
    let again = notif_at(alert("r1", "firing", Z, "again"), 10_000 + 60_000);
    let s = store_batch(&db, &[again], &mut c, &cfg).await.unwrap();
    assert_eq!((s.changes, s.refired), (1, 1));
    let (rows, _) = list(&db, &Query::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "still one episode");
    assert_eq!((rows[0].status.as_str(), rows[0].ends_at), ("firing", None));
    let (_, hist) = get(&db, rows[0].id).await.unwrap().unwrap();
    let h: Vec<(&str, &str)> = hist
        .iter()
        .map(|h| (h.status.as_str(), h.reason.as_str()))
        .collect();
    assert_eq!(
        h,
        [
            ("firing", "first notification"),
            ("resolved", "resolved"),
            ("firing", "refired")
        ]
    );
}

#[tokio::test]
async fn one_batch_with_the_same_episode_several_times() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    let fire = notif(alert("d1", "firing", Z, "hot"));
    let res = notif(alert("d1", "resolved", "2026-01-01T00:01:00Z", "hot"));
    let s = store_batch(&db, &[fire.clone(), res, fire], &mut c, &cfg)
        .await
        .unwrap();
    assert_eq!((s.alerts, s.new_episodes, s.changes), (3, 1, 2));
    let (rows, _) = list(&db, &Query::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].notifications),
        ("resolved", 3)
    );
    // The label index was written once.
    let q = Query {
        matchers: crate::matcher::parse(r#"{node="n-d1"}"#).unwrap(),
        ..Default::default()
    };
    assert_eq!(list(&db, &q).await.unwrap().0.len(), 1);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM episode_labels").await, 3);
}

/// Issue 11: retention never deleted label pairs.
#[tokio::test]
async fn retention_deletes_old_episodes_then_unused_label_pairs() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    store_batch(
        &db,
        &[notif(alert("old", "resolved", "2026-01-01T00:05:00Z", "x"))],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    store_batch(
        &db,
        &[notif(alert("stale", "firing", Z, "x"))],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    let ends = crate::payload::parse_time("2026-01-01T00:05:00Z")
        .unwrap()
        .unwrap();
    let pairs = scalar(&db, "SELECT COUNT(*) FROM label_pairs").await;
    assert_eq!(pairs, 4, "alertname, severity and two nodes");
    // Cut-offs before both: nothing goes.
    let (d, _) = retention_chunk(&db, Some(ends), Some(1000), 10, 0)
        .await
        .unwrap();
    assert_eq!(d.episodes, 0);
    // Only the resolved one is past its cut-off.
    let (d, _) = retention_chunk(&db, Some(ends + 1), None, 10, 0)
        .await
        .unwrap();
    assert_eq!(d.episodes, 1);
    let (rows, _) = list(&db, &Query::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].fingerprint, "stale");
    // With no episode left to delete, the pairs only "old" used go (its node).
    let (d, next) = retention_chunk(&db, Some(ends + 1), None, 10, 0)
        .await
        .unwrap();
    assert_eq!((d.episodes, d.label_pairs, next), (0, 1, None));
    // The cache was told (pairs_epoch): a new episode with the deleted pair still links.
    let before = scalar(&db, "SELECT pairs_epoch FROM writer_lock").await;
    assert_eq!(before, 1);
    store_batch(
        &db,
        &[notif(alert("old", "firing", Z, "back"))],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    let q = Query {
        matchers: crate::matcher::parse(r#"{node="n-old"}"#).unwrap(),
        ..Default::default()
    };
    assert_eq!(list(&db, &q).await.unwrap().0.len(), 1);
    // The firing one by its last notification, then everything.
    retention_chunk(&db, Some(i64::MAX), Some(i64::MAX), 10, 0)
        .await
        .unwrap();
    retention_chunk(&db, Some(i64::MAX), Some(i64::MAX), 10, 0)
        .await
        .unwrap();
    assert!(list(&db, &Query::default()).await.unwrap().0.is_empty());
    let left = scalar(
        &db,
        "SELECT (SELECT COUNT(*) FROM episode_labels) + (SELECT COUNT(*) FROM notifications) \
         + (SELECT COUNT(*) FROM label_pairs)",
    )
    .await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn matchers_follow_prometheus_semantics() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    for fp in ["a1", "a2", "b1"] {
        store_batch(&db, &[notif(alert(fp, "firing", Z, "x"))], &mut c, &cfg)
            .await
            .unwrap();
    }
    assert_eq!(fingerprints(&db, r#"{node="n-a1"}"#).await, ["a1"]);
    assert_eq!(fingerprints(&db, r#"{node!="n-a1"}"#).await, ["a2", "b1"]);
    assert_eq!(fingerprints(&db, r#"{node=~"n-a.*"}"#).await, ["a1", "a2"]);
    assert_eq!(fingerprints(&db, r#"{node=~".*1"}"#).await, ["a1", "b1"]);
    assert_eq!(fingerprints(&db, r#"{node!~"n-a.*"}"#).await, ["b1"]);
    assert_eq!(fingerprints(&db, r#"{node!~".*1"}"#).await, ["a2"]);
    assert_eq!(
        fingerprints(&db, r#"{node=~"n-a"}"#).await,
        Vec::<String>::new()
    );
    assert_eq!(
        fingerprints(&db, r#"{missing=""}"#).await,
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        fingerprints(&db, r#"{missing!=""}"#).await,
        Vec::<String>::new()
    );
    assert_eq!(
        fingerprints(&db, r#"{node=""}"#).await,
        Vec::<String>::new()
    );
    assert_eq!(fingerprints(&db, r#"{node!=""}"#).await, ["a1", "a2", "b1"]);
    assert_eq!(
        fingerprints(&db, r#"{missing=~".*"}"#).await,
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        fingerprints(&db, r#"{missing=~"x|"}"#).await,
        ["a1", "a2", "b1"]
    );
    assert_eq!(fingerprints(&db, r#"{node=~"n-a1|"}"#).await, ["a1"]);
    assert_eq!(
        fingerprints(&db, r#"{missing!~".*"}"#).await,
        Vec::<String>::new()
    );
    assert_eq!(
        fingerprints(&db, r#"{node=~"n-a.*",node!="n-a2"}"#).await,
        ["a1"]
    );
    assert_eq!(
        fingerprints(&db, r#"{node="'; DROP TABLE episodes;--"}"#).await,
        Vec::<String>::new()
    );
}

/// Issue 11: three regex matchers selecting many values overflowed SQLite's parameter limit
/// (32766) and failed as a storage error; each matcher's ids are one parameter now.
#[tokio::test]
async fn large_matchers_do_not_overflow_parameter_limits() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    let alerts: Vec<serde_json::Value> = (0..15_000)
        .map(|i| {
            serde_json::json!({"status":"firing","labels":{"alertname":"M",
                "a":format!("a{i:05}"),"b":format!("b{i:05}"),"c":format!("c{i:05}")},
                "annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":Z,
                "generatorURL":"","fingerprint":format!("m{i}")})
        })
        .collect();
    let body = serde_json::json!({"version":"4","receiver":"r","status":"firing","groupKey":"g",
        "alerts": alerts});
    store_batch(&db, &[notif(body)], &mut c, &cfg)
        .await
        .unwrap();
    let q = Query {
        matchers: crate::matcher::parse(r#"{a=~"a.*[0-9]",b=~"b.*[0-9]",c=~".*[0-4]"}"#).unwrap(),
        limit: 10_000,
        ..Default::default()
    };
    let (rows, more) = list(&db, &q).await.unwrap();
    assert_eq!((rows.len(), more), (7_500, false));
    let n = stats(&db, &q).await.unwrap();
    assert_eq!(n.iter().map(|r| r.3).sum::<i64>(), 7_500);
}

/// Issue 11: the cache kept ids of pairs inserted by a transaction that was then rolled back,
/// and later episodes were linked to whatever pair reused the id.
#[tokio::test]
async fn a_failed_transaction_leaves_no_pair_ids_behind() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    store_batch(&db, &[notif(alert("base", "firing", Z, "x"))], &mut c, &cfg)
        .await
        .unwrap();
    // Make the history insert fail after the pairs of "X" were inserted.
    let Db::Sqlite(s) = &db else { panic!() };
    sqlx::query(
        "CREATE TRIGGER fail_x BEFORE INSERT ON notifications \
         WHEN NEW.annotations LIKE '%boom%' BEGIN SELECT RAISE(ABORT, 'injected'); END",
    )
    .execute(&s.write)
    .await
    .unwrap();
    let mut x = alert("x1", "firing", Z, "boom");
    x["alerts"][0]["labels"]["alertname"] = "X".into();
    assert!(store_batch(&db, &[notif(x)], &mut c, &cfg).await.is_err());
    sqlx::query("DROP TRIGGER fail_x")
        .execute(&s.write)
        .await
        .unwrap();
    let mut after = alert("after1", "firing", Z, "ok");
    after["alerts"][0]["labels"]["alertname"] = "After".into();
    store_batch(&db, &[notif(after)], &mut c, &cfg)
        .await
        .unwrap();
    let mut x2 = alert("x2", "firing", Z, "ok");
    x2["alerts"][0]["labels"]["alertname"] = "X".into();
    store_batch(&db, &[notif(x2)], &mut c, &cfg).await.unwrap();
    assert_eq!(fingerprints(&db, r#"{alertname="X"}"#).await, ["x2"]);
    assert_eq!(
        fingerprints(&db, r#"{alertname="After"}"#).await,
        ["after1"]
    );
}

#[tokio::test]
async fn any_label_value_is_stored_exactly() {
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    let odd = [
        "nul\0byte".to_string(),
        "x".repeat(100_000),
        "ünïcødé ✓ 🚀 \u{10FFFF}".to_string(),
    ];
    for (i, v) in odd.iter().enumerate() {
        let mut a = alert(&format!("o{i}"), "firing", Z, v);
        a["alerts"][0]["labels"]["node"] = v.clone().into();
        a["alerts"][0]["labels"]["alertname"] = v.clone().into();
        store_batch(&db, &[notif(a)], &mut c, &cfg).await.unwrap();
        let q = Query {
            matchers: crate::matcher::parse(&format!(
                "{{node={}}}",
                serde_json::to_string(v).unwrap()
            ))
            .unwrap(),
            ..Default::default()
        };
        let (rows, _) = list(&db, &q).await.unwrap();
        assert_eq!(rows.len(), 1, "{i}");
        let labels: crate::payload::LabelSet = serde_json::from_str(&rows[0].labels).unwrap();
        assert_eq!(&labels["node"], v);
        let q = Query {
            alertname: vec![v.clone()],
            ..Default::default()
        };
        assert_eq!(list(&db, &q).await.unwrap().0.len(), 1, "alertname {i}");
    }
}

/// Issue 11: a regex without a literal prefix read every value of its label from the database
/// on every query (seconds at 400k values). On SQLite those labels are now matched from an
/// in-memory index, which must follow new pairs and retention's deletions.
#[tokio::test]
async fn the_value_index_follows_new_pairs_and_retention() {
    let (_d, db) = sqlite().await;
    let Db::Sqlite(s) = &db else { panic!() };
    let builds = || s.values.builds.load(std::sync::atomic::Ordering::Relaxed);
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    for fp in ["a1", "a2"] {
        store_batch(&db, &[notif(alert(fp, "firing", Z, "x"))], &mut c, &cfg)
            .await
            .unwrap();
    }
    // A prefixed regex on a label not yet indexed reads its index range: no build.
    assert_eq!(fingerprints(&db, r#"{node=~"n-a.*"}"#).await, ["a1", "a2"]);
    assert_eq!(builds(), 0);
    assert_eq!(fingerprints(&db, r#"{node=~".*1"}"#).await, ["a1"]);
    assert_eq!(builds(), 1);
    // A pair added after the build is found (read by id range, no rebuild).
    store_batch(&db, &[notif(alert("b1", "firing", Z, "x"))], &mut c, &cfg)
        .await
        .unwrap();
    assert_eq!(fingerprints(&db, r#"{node=~".*1"}"#).await, ["a1", "b1"]);
    assert_eq!(fingerprints(&db, r#"{node!~".*1"}"#).await, ["a2"]);
    assert_eq!(fingerprints(&db, r#"{node=~"n-b.*"}"#).await, ["b1"]);
    assert_eq!(builds(), 1);
    // Retention deletes a2's episode and then its now unused node pair: the index is dropped
    // and rebuilt, and the pair a new episode creates for the same value is found.
    store_batch(
        &db,
        &[notif(alert("a2", "resolved", "2026-01-01T00:05:00Z", "x"))],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    let ends = crate::payload::parse_time("2026-01-01T00:05:00Z")
        .unwrap()
        .unwrap();
    retention_chunk(&db, Some(ends + 1), None, 10, 0)
        .await
        .unwrap();
    let (d, _) = retention_chunk(&db, Some(ends + 1), None, 10, 0)
        .await
        .unwrap();
    assert_eq!(d.label_pairs, 1);
    assert_eq!(
        fingerprints(&db, r#"{node=~".*2"}"#).await,
        Vec::<String>::new()
    );
    assert_eq!(builds(), 2);
    store_batch(
        &db,
        &[notif(alert("a2", "firing", Z, "again"))],
        &mut c,
        &cfg,
    )
    .await
    .unwrap();
    assert_eq!(fingerprints(&db, r#"{node=~".*2"}"#).await.len(), 1);
    assert_eq!(fingerprints(&db, r#"{node=~".*1"}"#).await, ["a1", "b1"]);
}

/// A label too large for the value index's budget is streamed as before, and its values are
/// not read again for the index on every query.
#[tokio::test]
async fn a_label_over_the_index_budget_is_streamed_and_not_retried() {
    let (_d, mut db) = sqlite().await;
    if let Db::Sqlite(s) = &mut db {
        s.values = super::value_index::ValueIndex::with_budget(20);
    }
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    for fp in ["a1", "a2", "b1", "b2", "c1"] {
        store_batch(&db, &[notif(alert(fp, "firing", Z, "x"))], &mut c, &cfg)
            .await
            .unwrap();
    }
    let Db::Sqlite(s) = &db else { panic!() };
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..3 {
        assert_eq!(
            fingerprints(&db, r#"{node=~".*1"}"#).await,
            ["a1", "b1", "c1"]
        );
    }
    assert_eq!((count(&s.values.builds), count(&s.values.reads)), (0, 1));
    assert!(!s.values.holds("node").await);
}

#[tokio::test]
async fn large_batches_split_into_statements_store_every_alert() {
    // 700 new alerts, then 300 repeats and 400 new ones: every statement shape (runs of 256,
    // 128, ..., 4 rows; lookups padded to 256) is used.
    let (_d, db) = sqlite().await;
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    let batch = |from: usize, to: usize| {
        let alerts: Vec<serde_json::Value> = (from..to)
            .map(|i| {
                serde_json::json!({"status":"firing",
                    "labels":{"alertname":"Big","node":format!("n{i}"),"job_id":format!("j{}", i % 97)},
                    "annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":Z,
                    "generatorURL":"","fingerprint":format!("{i:016x}")})
            })
            .collect();
        notif(
            serde_json::json!({"version":"4","receiver":"r","status":"firing",
            "groupKey":"g","alerts":alerts}),
        )
    };
    let s = store_batch(&db, &[batch(0, 700)], &mut c, &cfg)
        .await
        .unwrap();
    assert_eq!((s.alerts, s.new_episodes), (700, 700));
    let s = store_batch(&db, &[batch(400, 1100)], &mut c, &cfg)
        .await
        .unwrap();
    assert_eq!((s.alerts, s.new_episodes), (700, 400));
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM episodes").await, 1100);
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM episode_labels").await,
        3 * 1100
    );
    assert_eq!(
        scalar(&db, "SELECT MAX(notifications) FROM episodes").await,
        2
    );
    assert_eq!(
        fingerprints(&db, r#"{node="n1099"}"#).await,
        vec![format!("{:016x}", 1099)]
    );
    assert_eq!(fingerprints(&db, r#"{job_id="j5"}"#).await.len(), 12);
}

#[tokio::test]
async fn checkpoints_run_beside_the_writer() {
    let (d, db) = sqlite().await;
    // The writer checkpoints only as a backstop.
    let pages = writer_scalar(&db, "PRAGMA wal_autocheckpoint").await;
    assert_eq!(pages, WRITER_AUTOCHECKPOINT_PAGES as i64);
    let mut c = PairCache::default();
    let cfg = WriteConfig::default();
    for i in 0..20 {
        let fp = format!("c{i}");
        store_batch(&db, &[notif(alert(&fp, "firing", Z, "x"))], &mut c, &cfg)
            .await
            .unwrap();
    }
    let main = || std::fs::metadata(d.path().join("a.db")).unwrap().len();
    let before = main();
    db.checkpoint().await.unwrap();
    assert!(
        main() > before,
        "the checkpoint copied the log into the database file ({before} bytes before)"
    );
}

#[tokio::test]
async fn the_log_is_synced_outside_the_writer_and_failures_are_errors() {
    let (_d, db) = sqlite().await;
    let Db::Sqlite(s) = &db else { panic!() };
    // full (the default): the writer commits without fsync; sync_log makes it durable.
    let sync = writer_scalar(&db, "PRAGMA synchronous").await;
    assert_eq!(sync, 1, "the writer's connection commits with NORMAL");
    assert!(db.needs_log_sync());
    let mut c = PairCache::default();
    store_batch(
        &db,
        &[notif(alert("s1", "firing", Z, "x"))],
        &mut c,
        &WriteConfig::default(),
    )
    .await
    .unwrap();
    db.sync_log().unwrap();
    // A log that cannot be opened is an error, never a silent success.
    let mut broken = s.clone();
    broken.log_to_sync = Some("/dev/null/not-a-dir-wal".into());
    assert!(Db::Sqlite(broken).sync_log().is_err());
}

#[tokio::test]
async fn normal_sync_skips_the_log_sync() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", d.path().join("n.db").display());
    let opts = Options {
        sqlite_synchronous: "normal".into(),
        ..Options::default()
    };
    let db = Db::open(&url, &opts).await.unwrap();
    assert!(!db.needs_log_sync());
    db.sync_log().unwrap();
}
