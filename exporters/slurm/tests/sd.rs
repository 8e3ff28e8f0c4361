//! Prometheus service discovery from Slurm, end to end: a real Slurm 22.05 cluster
//! (`scripts/slurm-cluster.sh`: n1-n4 in partition debug, gpu1-gpu2 with two GPUs each in
//! partition gpu), `hpcmon-slurm-exporter` serving `/sd/nodes`, `hpcmon-node-exporter`, and a
//! real Prometheus that
//!
//! 1. discovers every node through `http_sd_configs` (job `node`), with the `node`,
//!    `partition` and `cluster` labels, and scrapes each (the test cluster's nodes all live on
//!    this machine: `--sd.node-host=127.0.0.1` points every target at the one node exporter,
//!    the `node` label keeps them apart);
//! 2. loads the same targets from files written by `scripts/slurm-file-sd.sh`
//!    (`file_sd_configs`, job `node-file`);
//! 3. follows the cluster: a job that relabels on `__meta_slurm_node_flags` to drop drained
//!    nodes loses n2 once `scontrol` drains it, and gets it back after `resume`;
//!
//! plus the endpoint's answers for GPU nodes, BMC targets (`--sd.bmc-host={node}-bmc`) and a
//! bad `exporter` parameter.
//!
//! Needs `scripts/install-deps.sh slurm prom`; the cluster lock serialises it with the other
//! tests that start the cluster. Binaries: `cargo build --workspace --bins`.
//! Runtime ~30 s plus any wait for the cluster lock.

use std::process::Command;
use std::time::{Duration, Instant};

use hpcmon_e2e::{
    free_port, repo_root, require_program, start_binary, ClusterOptions, Daemon, Prometheus,
    SlurmCluster,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hpcmon-slurm-exporter");
const NODES: [&str; 6] = ["gpu1", "gpu2", "n1", "n2", "n3", "n4"];

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The `node` label of every active target of `job` that is up, sorted.
async fn up_nodes(prom: &Prometheus, job: &str) -> Vec<String> {
    let t = prom.targets().await.unwrap();
    let mut v: Vec<String> = t
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["labels"]["job"] == job && x["health"] == "up")
        .map(|x| x["labels"]["node"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

async fn wait_up_nodes(prom: &Prometheus, job: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = up_nodes(prom, job).await;
        if got == want {
            return prom.targets().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "job {job}: nodes up {got:?}, want {want:?}; targets: {}",
            prom.targets().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_discovers_every_node_through_the_exporter() {
    require_program("curl", "infra");
    let cluster = SlurmCluster::start(ClusterOptions::default());
    let tmp = tempfile::Builder::new()
        .prefix("hpcmon-slurm-sd-")
        .tempdir()
        .unwrap();

    let (_node, node_port) = start_binary("hpcmon-node-exporter", tmp.path(), &[], &[]).await;
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--slurm.poll-interval=1s")
        .arg("--slurm.sshare-interval=2s")
        .arg("--sd.node-host=127.0.0.1")
        .arg(format!("--sd.node-port={node_port}"))
        .arg("--sd.bmc-host={node}-bmc")
        .env("SLURM_CONF", cluster.conf());
    let mut exporter = Daemon::spawn("slurm-exporter", cmd);
    let base = format!("http://127.0.0.1:{port}");
    exporter
        .wait_http(&format!("{base}/-/ready"), Duration::from_secs(30))
        .await
        .expect("slurm exporter ready");

    // The endpoint itself.
    let (status, body) = get(&format!("{base}/sd/nodes")).await;
    assert_eq!(status, 200, "{body}");
    let groups: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["labels"]["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, NODES, "{body}");
    for g in groups.as_array().unwrap() {
        assert_eq!(g["targets"][0], format!("127.0.0.1:{node_port}"), "{g}");
        assert_eq!(g["labels"]["cluster"], "hpcmon", "{g}");
        let want = if g["labels"]["node"].as_str().unwrap().starts_with("gpu") {
            "gpu"
        } else {
            "debug"
        };
        assert_eq!(g["labels"]["partition"], want, "{g}");
    }
    let (_, body) = get(&format!("{base}/sd/nodes?exporter=gpu")).await;
    let gpu: Value = serde_json::from_str(&body).unwrap();
    let gpu: Vec<(&str, &str)> = gpu
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["labels"]["node"].as_str().unwrap(),
                g["labels"]["__meta_slurm_node_gpus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(gpu, [("gpu1", "2"), ("gpu2", "2")]);
    let (_, body) = get(&format!("{base}/sd/nodes?exporter=ipmi")).await;
    let ipmi: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ipmi.as_array().unwrap().len(), 6);
    assert_eq!(ipmi[2]["targets"][0], "n1-bmc", "{ipmi}");
    let (status, body) = get(&format!("{base}/sd/nodes?exporter=bmc;rm")).await;
    assert_eq!(status, 400, "{body}");

    // file_sd: the same targets through scripts/slurm-file-sd.sh.
    let sd_dir = tmp.path().join("file-sd");
    let out = Command::new(repo_root().join("scripts/slurm-file-sd.sh"))
        .arg(&base)
        .arg(&sd_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slurm-file-sd.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(sd_dir.join("nodes.json")).unwrap()).unwrap();
    assert_eq!(file, groups);

    // A real Prometheus discovering them.
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    http_sd_configs:
      - url: {base}/sd/nodes
        refresh_interval: 1s
  - job_name: node-file
    file_sd_configs:
      - files: [{files}]
        refresh_interval: 1s
  - job_name: node-available
    http_sd_configs:
      - url: {base}/sd/nodes?exporter=node
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__meta_slurm_node_flags]
        regex: '.*,drain,.*'
        action: drop
      - source_labels: [__meta_slurm_node_state]
        target_label: slurm_state
"#,
        files = sd_dir.join("nodes.json").display()
    );
    let prom = Prometheus::start(&config, &[]).await.unwrap();
    let targets = wait_up_nodes(&prom, "node", &NODES).await;
    for t in targets.as_array().unwrap() {
        if t["labels"]["job"] == "node" {
            assert_eq!(t["labels"]["cluster"], "hpcmon", "{t}");
            assert!(t["labels"]["partition"] == "debug" || t["labels"]["partition"] == "gpu");
            // State is for relabelling, not a target label (it would churn every series).
            assert!(t["labels"].get("__meta_slurm_node_state").is_none(), "{t}");
        }
    }
    wait_up_nodes(&prom, "node-file", &NODES).await;
    wait_up_nodes(&prom, "node-available", &NODES).await;
    // Every node's series arrive, told apart by `node`.
    let r = prom
        .wait_for(
            r#"count(count by (node) (node_load1{job="node"}))"#,
            |r| r[0]["value"][1] == "6",
            Duration::from_secs(30),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");

    // Following the cluster: drain n2, it leaves the job that drops drained nodes.
    cluster.run(
        "scontrol",
        &[
            "update",
            "nodename=n2",
            "state=drain",
            "reason=hpcmon-sd-test",
        ],
    );
    wait_up_nodes(&prom, "node-available", &["gpu1", "gpu2", "n1", "n3", "n4"]).await;
    wait_up_nodes(&prom, "node", &NODES).await;
    cluster.run("scontrol", &["update", "nodename=n2", "state=resume"]);
    wait_up_nodes(&prom, "node-available", &NODES).await;
    exporter.assert_running();
}
