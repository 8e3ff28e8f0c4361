//! A real Prometheus scrapes the binary (scripted fake GPUs, as CI has none) with
//! `rules/gpu.rules.yml` loaded: the per-job recording rules work on the exporter's real
//! output, including a GPU attributed only through the prolog's mapping directory.

use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{first_value, free_port, repo_root, Daemon, Prometheus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_join_jobs_onto_gpu_metrics() {
    hpcmon_e2e::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1"), "55 0 physics\n").unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hpcmon-gpu-exporter"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--gpu.fake-devices=2")
        .arg(format!("--gpu.job-map-dir={}", dir.path().display()))
        .arg(format!("--path.procfs={}", dir.path().display()));
    let mut exporter = Daemon::spawn("gpu-exporter", cmd).with_grace(Duration::from_secs(2));
    exporter
        .wait_http(
            &format!("http://127.0.0.1:{port}/-/ready"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let rules = std::fs::read_to_string(repo_root().join("rules/gpu.rules.yml")).unwrap();
    let target = format!("127.0.0.1:{port}");
    let prom = Prometheus::start(
        &Prometheus::config(&[("gpu", &target, "")], &["gpu.rules.yml"]),
        &[("gpu.rules.yml", &rules)],
    )
    .await
    .unwrap();
    prom.wait_for(
        r#"up{job="gpu"}"#,
        |r| first_value(r) == Some(1.0),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let r = prom
        .wait_for(
            r#"jobid:gpu_utilization_ratio:avg{jobid="55",user="root",account="physics"}"#,
            |r| first_value(r).is_some(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(first_value(&r), Some(0.87));
    let r = prom
        .wait_for(
            r#"jobid:gpus:count{jobid="55"}"#,
            |r| first_value(r).is_some(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(first_value(&r), Some(1.0));
    // No GPU is down; NVML is up.
    let r = prom.query("count(gpu_up == 1)").await.unwrap();
    assert_eq!(first_value(&r), Some(2.0));
    exporter.assert_running();
}
