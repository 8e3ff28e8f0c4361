//! Runs the real `hpcmon-gpu-exporter` binary on 127.0.0.1 and scrapes it over HTTP.
//!
//! On this GPU-less CI machine the real NVML path must fail cleanly: `gpu_nvml_up 0` with a
//! reason, the exporter's own metrics, every collector successful. On a machine with an
//! NVIDIA driver the same test checks that NVML came up instead (the full real-GPU check is
//! `scripts/real-gpu-check.sh`).

use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{free_port, Daemon};

fn has_nvidia_driver() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
}

async fn start(args: &[&str]) -> (Daemon, String) {
    hpcmon_e2e::install_crypto_provider();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hpcmon-gpu-exporter"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args);
    let mut d = Daemon::spawn("gpu-exporter", cmd).with_grace(Duration::from_secs(2));
    let base = format!("http://127.0.0.1:{port}");
    d.wait_http(&format!("{base}/-/ready"), Duration::from_secs(20))
        .await
        .unwrap();
    (d, base)
}

async fn get(url: &str, accept: Option<&str>) -> (String, String) {
    let c = hpcmon_e2e::client(&hpcmon_e2e::ClientOptions::default()).unwrap();
    let mut req = c.get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ct, r.text().await.unwrap())
}

fn has_line(text: &str, prefix: &str) -> bool {
    text.lines().any(|l| l.starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_nvml_state_and_own_metrics_without_a_gpu() {
    let (mut d, base) = start(&[]).await;
    let (ct, text) = get(&format!("{base}/metrics"), None).await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    if has_nvidia_driver() {
        assert!(has_line(&text, "gpu_nvml_up 1"), "{text}");
    } else {
        assert!(has_line(&text, "gpu_nvml_up 0"), "{text}");
        assert!(
            text.contains("gpu_nvml_up_reason{reason=\"library_not_found\"} 1")
                || text.contains("gpu_nvml_up_reason{reason=\"driver_not_loaded\"} 1"),
            "{text}"
        );
        assert!(!text.contains("gpu_info{"), "{text}");
    }
    for c in ["info", "memory", "xid", "slurm_job"] {
        assert!(
            has_line(
                &text,
                &format!("gpu_scrape_collector_success{{collector=\"{c}\"}} 1")
            ),
            "{c}: {text}"
        );
    }
    assert!(has_line(&text, "process_resident_memory_bytes "), "{text}");
    assert!(has_line(&text, "gpu_exporter_build_info{"), "{text}");
    // OpenMetrics negotiation.
    let (ct, om) = get(
        &format!("{base}/metrics"),
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.trim_end().ends_with("# EOF"));
    // Landing page lists the collectors.
    let (_, page) = get(&format!("{base}/"), None).await;
    assert!(page.contains("slurm_job"));
    d.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_every_family_for_fake_gpus_through_the_binary() {
    let (mut d, base) = start(&[
        "--gpu.fake-devices=8",
        "--gpu.pcie-throughput",
        "--collector.gpm",
        "--gpu.refresh-interval=100ms",
    ])
    .await;
    // GPM values need two samples per GPU.
    let mut text = String::new();
    for _ in 0..100 {
        text = get(&format!("{base}/metrics"), None).await.1;
        if text.matches("\ngpu_gpm_sm_activity_ratio{").count() == 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(has_line(&text, "gpu_nvml_up 1"), "{text}");
    assert_eq!(text.matches("\ngpu_info{").count(), 8, "{text}");
    assert_eq!(text.matches("\ngpu_up{").count(), 8, "{text}");
    assert_eq!(
        text.matches("\ngpu_gpm_sm_activity_ratio{").count(),
        8,
        "{text}"
    );
    // Nothing is refused by the fakes, and each H100 SXM has 18 NVLinks.
    assert!(!text.contains("gpu_field_unavailable{"), "{text}");
    assert_eq!(text.matches("\ngpu_nvlink_up{").count(), 8 * 18, "{text}");
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fake-2gpu.prom"
    ))
    .unwrap();
    // Every family of the fake golden output (except the per-job/MIG/XID ones that need a
    // fixture) is served by the binary.
    for fam in golden
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|f| {
            !f.starts_with("gpu_mig_")
                && (!f.contains("xid") || f.starts_with("gpu_xid_event_watch"))
                && !f.starts_with("gpu_slurm_job_")
                && *f != "gpu_fan_speed_ratio"
        })
    {
        assert!(text.contains(&format!("# TYPE {fam} ")), "{fam} missing");
    }
    d.assert_running();
}
