//! Bad input and faults: each bad payload gets its documented status and writes nothing;
//! odd label values survive; `kill -9` under load loses no acknowledged alert; read and write
//! credentials are separate. Against SQLite and a real PostgreSQL.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{payload, wh_alert, Backend, Bridge};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T0: &str = "2026-01-01T00:00:00Z";

async fn total(bridge: &Bridge) -> i64 {
    bridge.get_json("/api/v1/stats").await["data"]["total"]
        .as_i64()
        .unwrap()
}

/// Sends a request with a huge body over a raw connection (so a server that answers early
/// is seen as such) and returns the status line.
async fn huge_post(port: u16, chunked: bool, size: usize) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = if chunked {
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
    } else {
        format!("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n")
    };
    s.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0;
        while sent < size {
            let r = if chunked {
                let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                c.extend_from_slice(&chunk);
                c.extend_from_slice(b"\r\n");
                wr.write_all(&c).await
            } else {
                wr.write_all(&chunk).await
            };
            if r.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), rd.read(&mut buf))
        .await
        .expect("an answer within 60 s")
        .unwrap();
    writer.abort();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

async fn bad_input(backend: &str) {
    let be = Backend::by_name(backend);
    let bridge = Bridge::start(&be, &["--webhook.max-body-bytes=8388608"]).await;
    let ok = payload(
        "firing",
        vec![wh_alert(
            "f0",
            json!({"alertname": "Base", "node": "n0"}),
            "base",
            T0,
            None,
        )],
    );
    assert_eq!(bridge.post(ok.to_string()).await.0, 200);
    assert_eq!(total(&bridge).await, 1);

    let good = |fp: &str| wh_alert(fp, json!({"alertname": "Bad", "node": fp}), "x", T0, None);
    let mut wrong_type = payload("firing", vec![good("w1")]);
    wrong_type["alerts"][0]["labels"]["node"] = json!(7);
    let mut missing = payload("firing", vec![good("m1")]);
    missing["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("startsAt");
    let mut no_alerts = payload("firing", vec![]);
    no_alerts.as_object_mut().unwrap().remove("alerts");
    let mut v3 = payload("firing", vec![good("v1")]);
    v3["version"] = json!("3");
    // The third alert is bad: the first two must not be written either.
    let mut partial = payload("firing", vec![good("p1"), good("p2"), good("p3")]);
    partial["alerts"][2]["startsAt"] = json!("2026-13-45T99:00:00Z");
    let mut resolved_no_end = payload("resolved", vec![good("r1")]);
    resolved_no_end["alerts"][0]["status"] = json!("resolved");
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "malformed JSON",
            "{\"version\": \"4\", \"alerts\": [".into(),
            400,
        ),
        ("not JSON", "\u{1}\u{2}garbage".into(), 400),
        ("empty body", String::new(), 400),
        ("wrong types", wrong_type.to_string(), 400),
        ("missing startsAt", missing.to_string(), 400),
        ("missing alerts", no_alerts.to_string(), 400),
        ("wrong version", v3.to_string(), 400),
        ("invalid timestamp in 3rd alert", partial.to_string(), 400),
        ("resolved without endsAt", resolved_no_end.to_string(), 400),
    ];
    for (what, body, want) in &cases {
        let (status, text) = bridge.post(body.clone()).await;
        assert_eq!(status, *want, "{what}: {text}");
        assert!(!text.is_empty(), "{what}: the reason is in the body");
    }
    assert_eq!(
        huge_post(bridge.port, false, 100 << 20).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(
        huge_post(bridge.port, true, 100 << 20).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(total(&bridge).await, 1, "nothing partial was written");
    for (reason, n) in [
        ("malformed_json", 6.0),
        ("wrong_version", 1.0),
        ("invalid", 2.0),
        ("too_large", 2.0),
    ] {
        assert_eq!(
            bridge
                .metric(&format!(
                    "alert_bridge_notifications_rejected_total{{reason=\"{reason}\"}}"
                ))
                .await,
            Some(n),
            "{reason}"
        );
    }

    // 10k alerts in one notification: accepted and stored as a whole.
    let many: Vec<Value> = (0..10_000)
        .map(|i| {
            wh_alert(
                &format!("big{i:05}"),
                json!({"alertname": "Big", "node": format!("n{}", i % 100), "severity": "info"}),
                "many",
                T0,
                None,
            )
        })
        .collect();
    let (status, text) = bridge.post(payload("firing", many).to_string()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(total(&bridge).await, 10_001);
    assert_eq!(
        bridge
            .all("alertname=Big&match[]=%7Bnode%3D%22n42%22%7D")
            .await
            .len(),
        100
    );

    // Odd label values: quotes, newlines, unicode, HTML, SQL. Stored and matched verbatim.
    let odd = [
        "it's \"quoted\"",
        "two\nlines",
        "ünïcødé ✓ 🚀",
        "<script>alert(1)</script>",
        "'; DROP TABLE episodes; --",
        "100% _wild_ \\card",
    ];
    let alerts: Vec<Value> = odd
        .iter()
        .enumerate()
        .map(|(i, v)| {
            wh_alert(
                &format!("odd{i}"),
                json!({"alertname": "Odd", "node": v}),
                v,
                T0,
                None,
            )
        })
        .collect();
    assert_eq!(
        bridge.post(payload("firing", alerts).to_string()).await.0,
        200
    );
    for v in odd {
        let m = format!("{{node={}}}", serde_json::to_string(v).unwrap());
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("match[]", &m)
            .finish();
        let rows = bridge.all(&q).await;
        assert_eq!(rows.len(), 1, "{v:?}");
        assert_eq!(rows[0]["labels"]["node"], v);
        assert_eq!(rows[0]["annotations"]["summary"], v);
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", v)
            .append_pair("alertname", "Odd")
            .finish();
        assert!(!bridge.all(&q).await.is_empty(), "free text {v:?}");
    }
    assert_eq!(
        total(&bridge).await,
        10_007,
        "the SQL-looking value dropped nothing"
    );
    // Bad queries are 400 with a reason, not 500.
    for q in [
        "match[]=%7Bnode%3D~%22(%22%7D",
        "from=bogus",
        "limit=-1",
        "sort=drop",
    ] {
        let r = bridge
            .client
            .get(bridge.url(&format!("/api/v1/alerts?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "error");
    }
    let r = bridge
        .client
        .get(bridge.url("/api/v1/alerts/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_sqlite() {
    bad_input("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_postgres() {
    bad_input("postgres").await;
}

/// `kill -9` while 4 clients post new alerts: after a restart, every alert the bridge
/// acknowledged with 2xx is in the database.
async fn kill9(backend: &str) {
    let be = Backend::by_name(backend);
    let bridge = Bridge::start(&be, &[]).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let acked = acked.clone();
        let url = bridge.url("/webhook");
        tasks.push(tokio::spawn(async move {
            let c = hpcmon_e2e::client(&Default::default()).unwrap();
            for i in 0.. {
                let fps: Vec<String> = (0..5).map(|j| format!("k{t}-{i}-{j}")).collect();
                let alerts = fps
                    .iter()
                    .map(|fp| wh_alert(fp, json!({"alertname": "Kill", "fp": fp}), "k", T0, None))
                    .collect();
                let r = c
                    .post(&url)
                    .body(payload("firing", alerts).to_string())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        acked.lock().unwrap().extend(fps);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the bridge is gone
                }
            }
        }));
    }
    // Let load build up, then kill -9 in the middle of it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 2_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.daemon.signal(libc::SIGKILL);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "load was running ({} acked)",
        acked.len()
    );
    drop(bridge);
    let bridge = Bridge::start(&be, &[]).await;
    let stored: HashSet<String> = bridge
        .all("alertname=Kill")
        .await
        .iter()
        .map(|r| r["fingerprint"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged alerts lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // Notifications are atomic: each stored one has all 5 alerts.
    let mut per_notification = std::collections::HashMap::<String, usize>::new();
    for fp in &stored {
        *per_notification
            .entry(fp.rsplit_once('-').unwrap().0.to_string())
            .or_default() += 1;
    }
    assert!(
        per_notification.values().all(|n| *n == 5),
        "a notification was stored partially"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_nothing_acknowledged_sqlite() {
    kill9("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_nothing_acknowledged_postgres() {
    kill9("postgres").await;
}

/// Readers use basic auth from the web config; Alertmanager uses the webhook's bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_read_and_write_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("readpw", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  reader: {hash}\n")).unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, "s3cret-token\n").unwrap();
    let be = Backend::sqlite();
    let port = hpcmon_e2e::free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hpcmon-alert-bridge"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(be.storage_arg())
        .arg(format!("--web.config.file={}", web.display()))
        .arg(format!("--webhook.bearer-token-file={}", tok.display()));
    let reader =
        hpcmon_e2e::client(&hpcmon_e2e::ClientOptions::default().basic_auth("reader", "readpw"))
            .unwrap();
    let mut d = hpcmon_e2e::Daemon::spawn("alert-bridge", cmd);
    d.wait_http_with(
        &reader,
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let anon = hpcmon_e2e::client(&Default::default()).unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let body = payload(
        "firing",
        vec![wh_alert("a1", json!({"alertname": "Auth"}), "x", T0, None)],
    )
    .to_string();
    let st = |r: reqwest::Response| r.status().as_u16();
    // Writes: the token, and only the token.
    assert_eq!(
        st(anon
            .post(url("/webhook"))
            .body(body.clone())
            .send()
            .await
            .unwrap()),
        401
    );
    assert_eq!(
        st(reader
            .post(url("/webhook"))
            .body(body.clone())
            .send()
            .await
            .unwrap()),
        401
    );
    assert_eq!(
        st(anon
            .post(url("/webhook"))
            .bearer_auth("wrong")
            .body(body.clone())
            .send()
            .await
            .unwrap()),
        401
    );
    assert_eq!(
        st(anon
            .post(url("/webhook"))
            .bearer_auth("s3cret-token")
            .body(body.clone())
            .send()
            .await
            .unwrap()),
        200
    );
    // Reads: basic auth; the token does not open them.
    assert_eq!(
        st(anon.get(url("/api/v1/alerts")).send().await.unwrap()),
        401
    );
    assert_eq!(
        st(anon
            .get(url("/"))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap()),
        401
    );
    let r = reader.get(url("/api/v1/alerts")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["alertname"], "Auth");
    assert!(
        !d.log().contains("s3cret-token"),
        "the token is never logged"
    );
}

/// The PostgreSQL URL (with its password) never appears in the logs or the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_url_is_never_logged() {
    let be = Backend::postgres();
    let url = std::fs::read_to_string(&be.pg().url_file).unwrap();
    let pw = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let bridge = Bridge::start(&be, &[]).await;
    be.pg().stop("immediate");
    let _ = bridge
        .post(
            payload(
                "firing",
                vec![wh_alert("p", json!({"alertname": "X"}), "x", T0, None)],
            )
            .to_string(),
        )
        .await;
    let metrics = bridge
        .client
        .get(bridge.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let log = bridge.daemon.log();
    assert!(log.contains("127.0.0.1"), "the log names the server: {log}");
    assert!(!log.contains(&pw), "password in the log");
    assert!(!metrics.contains(&pw));
}
