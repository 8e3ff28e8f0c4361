//! Tests of the harness itself against real processes, Prometheus and Alertmanager.

use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{alert, first_value, free_port, Alertmanager, Daemon, Prometheus};

fn alive(pid: i32) -> bool {
    // A zombie still "exists" for kill(0); look at /proc state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn daemon_drop_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let mut cmd = Command::new("sh");
    // The shell ignores SIGTERM, so the drop must escalate to SIGKILL; its background child
    // is in the same group and must go too.
    cmd.arg("-c").arg(format!(
        "trap '' TERM; sleep 300 & echo $! > {}; echo started; wait",
        pidfile.display()
    ));
    let d = Daemon::spawn("sh", cmd).with_grace(Duration::from_millis(300));
    let leader = d.pid() as i32;
    let mut grandchild = 0;
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(&pidfile) {
            if let Ok(p) = s.trim().parse() {
                grandchild = p;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(grandchild > 0, "the shell did not start its child");
    assert!(alive(leader) && alive(grandchild));
    drop(d);
    // The leader was reaped by stop(); the grandchild is reparented and reaped by init.
    for _ in 0..200 {
        if !alive(grandchild) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(leader), "leader {leader} survived the drop");
    assert!(
        !alive(grandchild),
        "grandchild {grandchild} survived the drop"
    );
}

#[tokio::test]
async fn wait_http_fails_early_with_the_log_tail_when_the_daemon_exits() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("echo 'fatal: no such flag --bogus' >&2; exit 3");
    let mut d = Daemon::spawn("failing", cmd);
    let port = free_port();
    let t = std::time::Instant::now();
    let err = d
        .wait_http(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("exited early"), "{msg}");
    assert!(msg.contains("fatal: no such flag --bogus"), "{msg}");
    // Not a timing assertion on the system under test: it proves the wait did not run to
    // its 60 s bound.
    assert!(t.elapsed() < Duration::from_secs(50));
}

#[tokio::test]
async fn wait_ready_times_out_on_a_closed_port() {
    let port = free_port();
    let err = hpcmon_e2e::wait_ready(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("not ready"), "{err:#}");
}

#[test]
#[should_panic(expected = "cargo build --workspace --bins")]
fn workspace_bin_names_the_build_command() {
    hpcmon_e2e::workspace_bin("no-such-binary-hpcmon");
}

#[tokio::test]
async fn prometheus_scrapes_itself_and_evaluates_rules() {
    let port_placeholder = "SELF";
    let rules = "groups:\n  - name: t\n    rules:\n      - record: e2e:up:sum\n        expr: sum(up)\n      - alert: E2EAlwaysFiring\n        expr: vector(1)\n        labels: {severity: info}\n";
    // Scrape itself: the target is only known after start, so scrape via the job's own
    // address written with a placeholder and reload.
    let cfg = Prometheus::config(&[("self", port_placeholder, "")], &["e2e.rules.yml"]);
    let prom = Prometheus::start(&cfg, &[("e2e.rules.yml", rules)])
        .await
        .unwrap();
    let cfg = cfg.replace(port_placeholder, &format!("127.0.0.1:{}", prom.port()));
    std::fs::write(prom.path("prometheus.yml"), cfg).unwrap();
    prom.reload().await.unwrap();
    prom.wait_targets_up(Duration::from_secs(30)).await.unwrap();
    let r = prom
        .wait_for(
            "e2e:up:sum",
            |r| first_value(r) == Some(1.0),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(r[0]["metric"]["__name__"], "e2e:up:sum");
    prom.wait_alert("E2EAlwaysFiring", "firing", Duration::from_secs(30))
        .await
        .unwrap();
    let groups = prom.rules().await.unwrap();
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 2);
    // A bad query is an error, not an empty result.
    assert!(prom.query("sum(").await.is_err());
}

#[tokio::test]
async fn alertmanager_accepts_fires_and_resolves_alerts() {
    let am = Alertmanager::start(&Alertmanager::webhook_config("http://127.0.0.1:9/none"))
        .await
        .unwrap();
    let labels = [("alertname", "E2ETest"), ("severity", "warning")];
    am.post_alerts(&serde_json::json!([alert(
        &labels,
        &[("summary", "s")],
        false
    )]))
    .await
    .unwrap();
    let a = am.alerts().await.unwrap();
    assert_eq!(a.as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a[0]["labels"]["alertname"], "E2ETest");
    assert_eq!(a[0]["status"]["state"], "active");
    am.post_alerts(&serde_json::json!([alert(&labels, &[], true)]))
        .await
        .unwrap();
    // Resolved alerts are no longer listed as active.
    let a = am.alerts().await.unwrap();
    assert!(
        a.as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"]["state"] != "active"),
        "{a}"
    );
    // A malformed alert is refused.
    assert!(am
        .post_alerts(&serde_json::json!([{"labels": {}}]))
        .await
        .is_err());
}
