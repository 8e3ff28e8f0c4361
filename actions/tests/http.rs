//! The HTTP side without Slurm: the kit's TLS and basic auth from `--web.config.file` on the
//! API and page, the webhook's own bearer token (separate from the readers' credentials),
//! bad bodies, the shipped policy running in dry-run, and a journal directory others can
//! write to refused at startup.

use std::process::Command;
use std::time::{Duration, Instant};

use hpcmon_e2e::{client, free_port, repo_root, workspace_bin, ClientOptions, Daemon, Pki};
use serde_json::{json, Value};

const USER: &str = "operator";
const PASSWORD: &str = "correct horse battery staple";
const TOKEN: &str = "alertmanager-token-7f3a";

fn notification() -> Value {
    json!({
        "version": "4", "receiver": "actions", "status": "firing", "groupKey": "g",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "InletTemperatureHoldQueue", "policy": "hold", "instance": "bmc1:623"},
            "annotations": {},
            "startsAt": "2026-03-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "a1"
        }]
    })
}

#[tokio::test]
async fn tls_basic_auth_bearer_token_and_dry_run_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki")).await.unwrap();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: '{hash}'\n",
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    )
    .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let mut cmd = Command::new(workspace_bin("hpcmon-actions"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web.display()))
        .arg(format!("--webhook.bearer-token-file={}", token.display()))
        .arg(format!(
            "--policy.file={}",
            repo_root().join("actions/policy.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("state/journal.db").display()
        ))
        .arg("--webhook.max-body-bytes=4096")
        // No Slurm here: the executor's sinfo fails and is retried; the HTTP side is tested.
        .env("SLURM_CONF", dir.path().join("no-slurm.conf"));
    let mut d = Daemon::spawn("hpcmon-actions", cmd);
    let reader = client(
        &ClientOptions::default()
            .ca(pki.ca_pem())
            .basic_auth(USER, PASSWORD),
    )
    .unwrap();
    d.wait_http_with(&reader, &format!("{base}/-/ready"), Duration::from_secs(20))
        .await
        .unwrap();

    // Readers: basic auth over TLS.
    let st: Value = reader
        .get(format!("{base}/api/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["mode"], "dry-run", "the shipped policy must not enforce");
    assert_eq!(st["rules"].as_array().unwrap().len(), 4);
    let anonymous = client(&ClientOptions::default().ca(pki.ca_pem())).unwrap();
    let wrong = client(
        &ClientOptions::default()
            .ca(pki.ca_pem())
            .basic_auth(USER, "wrong"),
    )
    .unwrap();
    for c in [&anonymous, &wrong] {
        for path in ["/api/v1/actions", "/", "/metrics"] {
            let r = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
        }
        let r = c.post(format!("{base}/api/v1/pause")).send().await.unwrap();
        assert_eq!(r.status(), 401, "the kill switch without credentials");
    }
    let plain = client(&ClientOptions::default()).unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/api/v1/status"))
            .send()
            .await
            .is_err()
            || plain
                .get(format!("http://127.0.0.1:{port}/api/v1/status"))
                .send()
                .await
                .is_ok_and(|r| !r.status().is_success()),
        "plain HTTP was served"
    );

    // The webhook: the bearer token, not the readers' password.
    let hook = format!("{base}/webhook");
    let body = notification().to_string();
    let r = anonymous
        .post(&hook)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reader.post(&hook).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401, "basic auth must not open the webhook");
    let r = anonymous
        .post(&hook)
        .bearer_auth(TOKEN)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["summary"]["journaled"], 1, "{v}");
    // Replay: nothing new.
    let r = anonymous
        .post(&hook)
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["summary"]["journaled"].as_u64(),
            v["summary"]["duplicates"].as_u64()
        ),
        (Some(0), Some(1))
    );
    // Bad bodies: 400 (Alertmanager does not retry), too large: 413.
    for bad in [
        "{",
        "{\"version\":\"3\",\"receiver\":\"r\",\"status\":\"firing\",\"alerts\":[]}",
        "\u{0}\u{1}",
    ] {
        let r = anonymous
            .post(&hook)
            .bearer_auth(TOKEN)
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let r = anonymous
        .post(&hook)
        .bearer_auth(TOKEN)
        .body("x".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // The decision is journaled in dry-run mode.
    let j: Value = reader
        .get(format!("{base}/api/v1/actions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &j["actions"][0];
    assert_eq!(
        (a["rule"].as_str(), a["mode"].as_str()),
        (Some("hold-queue"), Some("dry-run"))
    );
    // Cross-site writes are refused even with credentials.
    let r = reader
        .post(format!("{base}/api/v1/pause"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let m = reader
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hpcmon_actions_enforce 0"), "{m}");
    assert!(
        m.contains("hpcmon_actions_notifications_rejected_total{reason=\"unauthorized\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("hpcmon_actions_notifications_rejected_total{reason=\"bad_payload\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("hpcmon_actions_duplicate_decisions_total 1"),
        "{m}"
    );
    assert!(m.contains("hpcmon_actions_build_info{"), "{m}");
    d.stop();
}

#[tokio::test]
async fn a_journal_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(workspace_bin("hpcmon-actions"))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!(
            "--policy.file={}",
            repo_root().join("actions/policy.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            open.join("journal.db").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("journal directory"), "{err}");
    assert!(!open.join("journal.db").exists());
    // And a policy that does not parse stops it with the reason.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "mode: yolo\n").unwrap();
    let t0 = Instant::now();
    let out = Command::new(workspace_bin("hpcmon-actions"))
        .arg(format!("--policy.file={}", bad.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("j/journal.db").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success() && t0.elapsed() < Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither dry-run nor enforce"));
}
