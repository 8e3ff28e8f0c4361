//! The shipped Slurm prolog/epilog (`contrib/`) against the real binary: the prolog's files
//! attribute GPUs that run no process to the job (through `--gpu.job-map-dir`), and the
//! epilog ends the attribution. The GPUs are the binary's scripted fakes (no GPU in CI).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{free_port, Daemon};

fn run_script(script: &str, dir: &Path, env: &[(&str, &str)]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(script);
    let out = Command::new("bash")
        .arg(&path)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HPCMON_GPU_JOB_MAP_DIR", dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

async fn scrape(url: &str) -> String {
    let c = hpcmon_e2e::client(&hpcmon_e2e::ClientOptions::default()).unwrap();
    c.get(url).send().await.unwrap().text().await.unwrap()
}

fn job_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("gpu_slurm_job_info{"))
        .map(|l| {
            // drop the fake UUID, keep jobid/user/account
            l.split_once(",jobid=")
                .map(|(_, r)| format!("jobid={r}"))
                .unwrap_or_default()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prolog_attributes_idle_gpus_and_epilog_clears_them() {
    hpcmon_e2e::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("gpustat");
    // Job 77 of root (uid 0), account phys, holds GPUs 0 and 1; job 78 holds GPU 2 and has
    // no uid in its environment.
    let job77 = [
        ("SLURM_JOB_ID", "77"),
        ("SLURM_JOB_UID", "0"),
        ("SLURM_JOB_ACCOUNT", "phys"),
        ("SLURM_JOB_GPUS", "0,1"),
    ];
    run_script("prolog.sh", &map, &job77);
    run_script(
        "prolog.sh",
        &map,
        &[
            ("SLURM_JOB_ID", "78"),
            ("CUDA_VISIBLE_DEVICES", "2,../../etc"),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(map.join("0")).unwrap(),
        "77 0 phys\n"
    );
    assert!(!dir.path().join("etc").exists());

    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hpcmon-gpu-exporter"));
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--gpu.fake-devices=4")
        .arg(format!("--gpu.job-map-dir={}", map.display()))
        // no process of the fake GPUs exists in this procfs: attribution is the map's alone
        .arg(format!("--path.procfs={}", dir.path().display()));
    let mut d = Daemon::spawn("gpu-exporter", cmd).with_grace(Duration::from_secs(2));
    let base = format!("http://127.0.0.1:{port}");
    d.wait_http(&format!("{base}/-/ready"), Duration::from_secs(20))
        .await
        .unwrap();
    let text = scrape(&format!("{base}/metrics")).await;
    assert_eq!(
        job_lines(&text),
        vec![
            r#"jobid="77",user="root",account="phys"} 1"#.to_string(),
            r#"jobid="77",user="root",account="phys"} 1"#.to_string(),
            r#"jobid="78",user="",account=""} 1"#.to_string(),
        ],
        "{text}"
    );
    run_script("epilog.sh", &map, &[("SLURM_JOB_ID", "77")]);
    let text = scrape(&format!("{base}/metrics")).await;
    assert_eq!(
        job_lines(&text),
        vec![r#"jobid="78",user="",account=""} 1"#.to_string()],
        "{text}"
    );
    run_script("epilog.sh", &map, &[("SLURM_JOB_ID", "78")]);
    assert_eq!(std::fs::read_dir(&map).unwrap().count(), 0);
    d.assert_running();
}
