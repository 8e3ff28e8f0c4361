//! End to end: a real Prometheus scrapes `hpcmon-node-exporter` over TLS with basic auth, and
//! the repo's `rules/node.rules.yml` evaluates on the scraped data.
//!
//! Needs `cargo build --workspace --bins` (scripts/test.sh does it) and the packages of
//! `scripts/install-deps.sh prom infra` (prometheus, openssl).

use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{
    client, first_value, free_port, repo_root, workspace_bin, ClientOptions, Daemon, Pki,
    Prometheus,
};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn prometheus_scrapes_node_exporter_over_tls_with_basic_auth_and_rules_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki")).await.unwrap();

    // Web config in the exporter-toolkit format; the bcrypt hash is made here, the password
    // itself never appears in the exporter's argv or config.
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let web_config = dir.path().join("web.yml");
    std::fs::write(
        &web_config,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: '{hash}'\n",
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    )
    .unwrap();

    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let mut cmd = Command::new(workspace_bin("hpcmon-node-exporter"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web_config.display()))
        .args([
            "--collector.disable-defaults",
            "--collector.loadavg",
            "--collector.meminfo",
        ]);
    let mut exporter = Daemon::spawn("hpcmon-node-exporter", cmd);

    let good = client(
        &ClientOptions::default()
            .ca(pki.ca_pem())
            .basic_auth(USER, PASSWORD),
    )
    .unwrap();
    exporter
        .wait_http_with(&good, &format!("{base}/-/ready"), Duration::from_secs(20))
        .await
        .unwrap();

    // The right password gets the metrics.
    let r = good.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.lines().any(|l| l.starts_with("node_load1 ")),
        "no node_load1 in:\n{body}"
    );
    assert!(
        body.contains("node_memory_MemAvailable_bytes"),
        "no meminfo in:\n{body}"
    );

    // A wrong password, or none, gets 401 and nothing else, on every path.
    let wrong = client(
        &ClientOptions::default()
            .ca(pki.ca_pem())
            .basic_auth(USER, "wrong"),
    )
    .unwrap();
    let anonymous = client(&ClientOptions::default().ca(pki.ca_pem())).unwrap();
    let other_user = client(
        &ClientOptions::default()
            .ca(pki.ca_pem())
            .basic_auth("root", PASSWORD),
    )
    .unwrap();
    for (who, c) in [
        ("wrong password", &wrong),
        ("no credentials", &anonymous),
        ("unknown user", &other_user),
    ] {
        for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
            let r = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 401, "{who} on {path}");
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("node_"),
                "{who} on {path} leaked metrics: {body}"
            );
        }
    }

    // TLS is real: a client that does not trust our CA cannot connect, and plain HTTP gets
    // no metrics.
    let untrusting = client(&ClientOptions::default().basic_auth(USER, PASSWORD)).unwrap();
    assert!(
        untrusting
            .get(format!("{base}/metrics"))
            .send()
            .await
            .is_err(),
        "certificate not verified"
    );
    let plain = client(&ClientOptions::default().basic_auth(USER, PASSWORD)).unwrap();
    match plain
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    {
        Err(_) => {}
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            assert!(
                !status.is_success() && !body.contains("node_"),
                "plain HTTP served {status}: {body}"
            );
        }
    }

    // A real Prometheus scrapes it over TLS with basic auth (password from a file), plus a
    // job with a wrong password, and loads the repo's node rules.
    let rules = std::fs::read_to_string(repo_root().join("rules/node.rules.yml")).unwrap();
    let ca = std::fs::read_to_string(&pki.ca_cert).unwrap();
    let target = format!("127.0.0.1:{port}");
    let tls = "scheme: https\ntls_config:\n  ca_file: ca.crt\nbasic_auth:\n  username: prometheus";
    let config = Prometheus::config(
        &[
            (
                "node",
                &target,
                &format!("{tls}\n  password_file: password"),
            ),
            (
                "node-badauth",
                &target,
                &format!("{tls}\n  password_file: wrong-password"),
            ),
        ],
        &["node.rules.yml"],
    );
    let prom = Prometheus::start(
        &config,
        &[
            ("ca.crt", &ca),
            ("password", PASSWORD),
            ("wrong-password", "wrong"),
            ("node.rules.yml", &rules),
        ],
    )
    .await
    .unwrap();

    let t = Duration::from_secs(30);
    prom.wait_for(r#"up{job="node"}"#, |r| first_value(r) == Some(1.0), t)
        .await
        .unwrap();
    prom.wait_for(
        r#"up{job="node-badauth"}"#,
        |r| first_value(r) == Some(0.0),
        t,
    )
    .await
    .unwrap();
    let targets = prom.targets().await.unwrap();
    let bad = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["labels"]["job"] == "node-badauth")
        .unwrap();
    assert!(bad["lastError"].as_str().unwrap().contains("401"), "{bad}");

    // A recording rule from rules/node.rules.yml evaluates on the scraped data and agrees
    // with the raw samples it is computed from.
    let rec = prom
        .wait_for(
            r#"instance:node_memory_utilisation:ratio{job="node"}"#,
            |r| first_value(r).is_some(),
            t,
        )
        .await
        .unwrap();
    let ratio = first_value(&rec).unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "memory utilisation {ratio}");
    assert_eq!(rec[0]["metric"]["instance"], target.as_str());
    let raw = first_value(
        &prom
            .query(r#"1 - node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"}"#)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!((raw - ratio).abs() < 0.2, "rule {ratio} vs raw {raw}");

    // Every rule of the file loaded and none is in error.
    let groups = prom.rules().await.unwrap();
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node.rules"]);
    let kinds: Vec<&str> = groups[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"recording") && kinds.contains(&"alerting"),
        "{kinds:?}"
    );
    for g in groups.as_array().unwrap() {
        for rule in g["rules"].as_array().unwrap() {
            assert_ne!(rule["health"], "err", "rule in error: {rule}");
        }
    }

    exporter.assert_running();
}
