//! `hpcmon-jobstats` against the real stack: a Slurm 22.05 cluster with the cgroup plugins and
//! slurmdbd + MariaDB (`scripts/slurm-cluster.sh`, `HPCMON_SLURM_CGROUP=1 HPCMON_SLURM_DBD=1`),
//! the shipped EpilogSlurmctld, real jobs (busy, idle, memory-hungry, OOM-killed, timed out, a
//! GPU job, and a program with a known serial fraction at 1 and 2 cores), the node exporter's
//! `slurm_job` collector, the GPU exporter's scripted fake NVML with the prolog's job mapping,
//! a real Prometheus with every rule file and a real VictoriaMetrics fed by remote_write.
//!
//! It asserts the numbers and the notes of the reports, that the epilog's summary survives
//! the job's series being deleted, the scaling prediction against the hand computation, the
//! exit codes of bad input, and the HTTP API and page (in headless Chromium).
//!
//! Binaries: `cargo build --workspace --bins` (scripts/test.sh does) for the exporters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hpcmon_e2e::{
    free_port, repo_root, require_program, start_binary, ClusterOptions, Daemon, Prometheus,
    SlurmCluster,
};
use serde_json::Value;

const JOBSTATS: &str = env!("CARGO_BIN_EXE_hpcmon-jobstats");
/// How long the measured jobs run: over the advice rules' 60 s minimum.
const RUN_SECS: u64 = 65;
/// The memory job's allocation, MiB.
const MEM_MIB: f64 = 300.0;

fn jobstats(prom: &str, args: &[&str], slurm_conf: &Path) -> Output {
    Command::new(JOBSTATS)
        .arg(format!("--prometheus.url={prom}"))
        .args(args)
        .env("SLURM_CONF", slurm_conf)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn report(prom: &str, jobid: &str, slurm_conf: &Path) -> Value {
    let out = jobstats(prom, &["--json", jobid], slurm_conf);
    assert!(
        out.status.success(),
        "hpcmon-jobstats --json {jobid}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn eff(r: &Value) -> f64 {
    let u = &r["usage"];
    let cpus: f64 = u["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["cpus"].as_f64().unwrap())
        .sum();
    let used: f64 = u["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["cores_used"].as_f64().unwrap())
        .sum();
    // As the report does: Slurm's CPU count when it exceeds what the cgroups show (a node
    // where the job ran nothing has no cgroup).
    used / cpus.max(r["job"]["cpus"].as_f64().unwrap_or(0.0))
}

fn rules(r: &Value) -> Vec<String> {
    r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rule"].as_str().unwrap().to_string())
        .collect()
}

/// `[DD-][HH:]MM:SS[.sss]` (sacct's TotalCPU) in seconds.
fn sacct_seconds(s: &str) -> f64 {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().unwrap(), r),
        None => (0.0, s),
    };
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse::<f64>().unwrap()).collect();
    let hms = match parts.as_slice() {
        [m, s] => m * 60.0 + s,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => panic!("sacct time {s:?}"),
    };
    days * 86400.0 + hms
}

/// CPU efficiency of a finished 1-CPU job as Slurm accounted it: the batch step's TotalCPU
/// over the job's elapsed time.
fn sacct_efficiency(c: &SlurmCluster, jobid: &str) -> f64 {
    let out = c.run(
        "sacct",
        &[
            "-n",
            "-P",
            "-o",
            "JobID,TotalCPU,ElapsedRaw,AllocCPUS",
            "-j",
            jobid,
        ],
    );
    let line = |suffix: &str| {
        out.lines()
            .find(|l| l.split('|').next() == Some(&format!("{jobid}{suffix}")))
            .unwrap_or_else(|| panic!("no {jobid}{suffix} in sacct:\n{out}"))
            .split('|')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let batch = line(".batch");
    let job = line("");
    let cpu = sacct_seconds(&batch[1]);
    let elapsed: f64 = job[2].parse().unwrap();
    let cpus: f64 = job[3].parse().unwrap();
    cpu / (elapsed * cpus)
}

async fn start_vm(dir: &Path) -> (Daemon, u16) {
    let bin = require_program("victoria-metrics", "vm");
    let log = dir.join("vm.log");
    hpcmon_e2e::start_on_free_port(&log, |port| {
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("vm").display()))
            .arg("-retentionPeriod=1d")
            .arg("-search.latencyOffset=1s");
        Daemon::spawn_logged("victoria-metrics", cmd, &log)
    })
    .await
    .unwrap_or_else(|e| panic!("victoria-metrics did not start: {e:#}"))
}

/// Waits until every job in `want` is in its expected final state.
fn wait_states(c: &SlurmCluster, want: &BTreeMap<&str, (&str, &str)>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pending = Vec::new();
        for (name, (id, state)) in want {
            let s = c.state(id);
            if s != *state {
                pending.push(format!("{name} ({id}) is {s:?}, want {state}"));
            }
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not end as expected: {pending:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_summaries_and_scaling_on_a_real_cluster() {
    require_program("python3", "base");
    let tmp = tempfile::Builder::new()
        .prefix("hpcmon-jobstats-e2e-")
        .tempdir()
        .unwrap();
    // slurmctld runs the epilog as root; it reads its settings from a file we write once
    // Prometheus' address is known (slurmctld passes no environment of ours).
    let defaults = tmp.path().join("jobstats.defaults");
    let epilog = tmp.path().join("epilog.sh");
    std::fs::write(
        &epilog,
        format!(
            "#!/bin/sh\nexport HPCMON_JOBSTATS_DEFAULTS={}\nexec {}\n",
            defaults.display(),
            repo_root()
                .join("jobstats/scripts/epilog-slurmctld.sh")
                .display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&epilog, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&defaults, "HPCMON_JOBSTATS_ENABLE=0\n").unwrap();

    let cluster = SlurmCluster::start(ClusterOptions {
        cgroup: true,
        dbd: true,
        epilog_ctld: Some(epilog.clone()),
    });
    let conf = cluster.conf();

    // ---- the monitoring stack ----
    let (vm, vm_port) = start_vm(tmp.path()).await;
    let (_node, node_port) = start_binary(
        "hpcmon-node-exporter",
        tmp.path(),
        &[
            "--collector.slurm_job".into(),
            "--collector.slurm_job.cgroup-root=/sys/fs/cgroup".into(),
        ],
        &[],
    )
    .await;
    let map_dir = tmp.path().join("gpu-map");
    std::fs::create_dir_all(&map_dir).unwrap();
    let (_gpu, gpu_port) = start_binary(
        "hpcmon-gpu-exporter",
        tmp.path(),
        &[
            "--gpu.fake-devices=2".into(),
            format!("--gpu.job-map-dir={}", map_dir.display()),
        ],
        &[],
    )
    .await;
    let files = Prometheus::repo_rule_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let node_t = format!("127.0.0.1:{node_port}");
    let gpu_t = format!("127.0.0.1:{gpu_port}");
    let mut config = Prometheus::config(&[("node", &node_t, ""), ("gpu", &gpu_t, "")], &names);
    config.push_str(&format!(
        "remote_write:\n  - url: http://127.0.0.1:{vm_port}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n"
    ));
    let file_refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let prom = Prometheus::start_with_args(&config, &file_refs, &["--web.enable-admin-api"])
        .await
        .unwrap();
    let purl = prom.url();
    let vurl = format!("http://127.0.0.1:{vm_port}");
    std::fs::write(
        &defaults,
        format!(
            "export SLURM_CONF={conf}\nexport PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             HPCMON_JOBSTATS={bin}\nHPCMON_JOBSTATS_ARGS=\"--prometheus.url={purl} --log.level=info\"\n\
             HPCMON_JOBSTATS_DELAY=3\nHPCMON_JOBSTATS_TIMEOUT=60\nHPCMON_JOBSTATS_LOG={log}\n",
            conf = conf.display(),
            bin = JOBSTATS,
            log = tmp.path().join("epilog.log").display()
        ),
    )
    .unwrap();

    // ---- the jobs ----
    let py = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".to_string()
    } else {
        require_program("python3", "base").display().to_string()
    };
    let s = RUN_SECS;
    let busy = cluster.sbatch(&[
        "-J",
        "busy",
        "-A",
        "physics",
        "-n1",
        "-c1",
        "--mem=200M",
        "--wrap",
        &format!("timeout {s} sh -c 'while :; do :; done'; true"),
    ]);
    // Two nodes x 1200M: a request over the memory rule's 2 GiB minimum, left unused.
    let idle = cluster.sbatch(&[
        "-J",
        "idle",
        "-A",
        "physics",
        "-N2",
        "--ntasks-per-node=1",
        "-c2",
        "--mem=1200M",
        "--wrap",
        &format!("sleep {s}"),
    ]);
    let mem = cluster.sbatch(&[
        "-J",
        "mem",
        "-A",
        "chemistry",
        "-n1",
        "-c1",
        "--mem=600M",
        "--wrap",
        &format!(
            "{py} -c 'import time; x = b\"\\x01\" * ({} << 20); time.sleep({s})'",
            MEM_MIB as u64
        ),
    ]);
    let oom = cluster.sbatch(&[
        "-J",
        "oom",
        "-A",
        "chemistry",
        "-n1",
        "-c1",
        "--mem=100M",
        "--wrap",
        &format!("{py} -c 'x = b\"\\x01\" * (400 << 20)'"),
    ]);
    let timeout = cluster.sbatch(&[
        "-J",
        "slow",
        "-A",
        "physics",
        "-n1",
        "-c1",
        "--mem=100M",
        "-t",
        "1",
        "--wrap",
        "sleep 600",
    ]);
    let gpu = cluster.sbatch(&[
        "-J",
        "train",
        "-A",
        "ml",
        "-p",
        "gpu",
        "--gres=gpu:1",
        "-n1",
        "-c1",
        "--mem=100M",
        "--wrap",
        &format!("sleep {s}"),
    ]);
    // A program with a known serial fraction: 20 s serial + 40 s of work split over the
    // cores it holds (sleeps stand for the work, so the 2-core machine is no limit):
    // T(p) = 20 + 40/p, i.e. T1 = 60 s, serial fraction 1/3.
    let scal = |p: u32| {
        cluster.sbatch(&[
            "-J",
            "scal",
            "-A",
            "physics",
            "-p",
            "gpu",
            "-N1",
            "-n1",
            &format!("-c{p}"),
            "--mem=100M",
            "--wrap",
            "sleep 20; sleep $((40 / SLURM_CPUS_PER_TASK))",
        ])
    };
    let scal1 = scal(1);
    let scal2 = scal(2);
    let held = cluster.sbatch(&["-J", "held", "-H", "--wrap", "true"]);
    println!("jobs: busy {busy} idle {idle} mem {mem} oom {oom} timeout {timeout} gpu {gpu} scal {scal1},{scal2} held {held}");

    // The GPU prolog's mapping: fake GPU 0 (87% busy) belongs to the GPU job.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.state(&gpu) != "RUNNING" {
        assert!(Instant::now() < deadline, "the GPU job did not start");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::write(map_dir.join("0"), format!("{gpu} 0\n")).unwrap();

    // ---- while they run ----
    tokio::time::sleep(Duration::from_secs(25)).await;
    let r = report(&purl, &busy, &conf);
    assert_eq!(r["job"]["state"], "RUNNING");
    assert_eq!(r["source"], "prometheus");
    let e = eff(&r);
    println!("busy job while running: efficiency {e:.3}");
    // It shares the machine's 2 cores with the whole stack; the exact check is at its end.
    assert!(e > 0.5, "busy job efficiency {e}");
    // A slow Prometheus and no summary yet: a clear error, exit 3, within the deadline.
    let hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = format!("http://{}", hold.local_addr().unwrap());
    let out = jobstats(&slow, &["--prometheus.timeout=2s", &idle], &conf);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer within"));
    drop(hold);
    // Unknown job: exit 2.
    let out = jobstats(&purl, &["999999"], &conf);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown"));

    // ---- after they end ----
    let want: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("busy", (busy.as_str(), "COMPLETED")),
        ("idle", (idle.as_str(), "COMPLETED")),
        ("mem", (mem.as_str(), "COMPLETED")),
        ("oom", (oom.as_str(), "OUT_OF_MEMORY")),
        ("timeout", (timeout.as_str(), "TIMEOUT")),
        ("gpu", (gpu.as_str(), "COMPLETED")),
        ("scal1", (scal1.as_str(), "COMPLETED")),
        ("scal2", (scal2.as_str(), "COMPLETED")),
    ]);
    wait_states(&cluster, &want, Duration::from_secs(200));

    let r = report(&purl, &busy, &conf);
    let busy_eff = eff(&r);
    // The truth from Slurm's own accounting (jobacct_gather/cgroup): the batch step's
    // TotalCPU over the elapsed time of its one CPU.
    let truth = sacct_efficiency(&cluster, &busy);
    println!(
        "busy: {busy_eff:.3} (sacct {truth:.3}) notes {:?}",
        rules(&r)
    );
    assert!(busy_eff > 0.5, "busy {busy_eff}");
    assert!(
        (busy_eff - truth).abs() < 0.05,
        "report {busy_eff} vs sacct {truth}"
    );
    assert!(!rules(&r).iter().any(|n| n.starts_with("cpu_efficiency")));

    let r = report(&purl, &idle, &conf);
    let e = eff(&r);
    println!("idle: {e:.3} notes {:?}", rules(&r));
    assert!(e < 0.05, "idle {e}");
    // The batch script runs on the first node only; the second holds 2 CPUs and no process
    // (no cgroup, no series). The report counts Slurm's 4 CPUs and says a node sat idle.
    assert_eq!(r["job"]["cpus"], 4);
    assert_eq!(r["usage"]["allocated_cpus"], 4.0);
    for n in ["idle_nodes", "cpu_efficiency_low", "memory_overrequested"] {
        assert!(
            rules(&r).contains(&n.to_string()),
            "idle job lacks note {n}: {:?}",
            r["notes"]
        );
    }

    let r = report(&purl, &mem, &conf);
    let peak = r["usage"]["nodes"][0]["mem_peak_bytes"].as_f64().unwrap() / 1048576.0;
    println!("mem: peak {peak:.1} MiB");
    assert!((MEM_MIB..MEM_MIB * 1.1).contains(&peak), "peak {peak} MiB");

    let r = report(&purl, &oom, &conf);
    println!("oom: notes {:?}", rules(&r));
    assert_eq!(r["job"]["state"], "OUT_OF_MEMORY");
    assert_eq!(r["notes"][0]["severity"], "critical");
    assert!(rules(&r).iter().any(|n| n.starts_with("out_of_memory")));

    let r = report(&purl, &timeout, &conf);
    assert_eq!(r["job"]["state"], "TIMEOUT");
    assert!(
        rules(&r).iter().any(|n| n.starts_with("timeout")),
        "{:?}",
        r["notes"]
    );

    let r = report(&purl, &gpu, &conf);
    let u = r["usage"]["gpus"][0]["utilization"].as_f64();
    println!("gpu: {:?}", r["usage"]["gpus"]);
    assert!((u.unwrap() - 0.87).abs() < 0.01, "gpu utilisation {u:?}");

    let r = report(&purl, &held, &conf);
    assert_eq!(r["source"], "none");
    assert!(r["usage"].is_null());

    // The same report from VictoriaMetrics (fed by Prometheus' remote_write).
    let r = report(&vurl, &busy, &conf);
    let vm_eff = eff(&r);
    println!("busy from VictoriaMetrics: {vm_eff:.3}");
    assert!(
        (vm_eff - busy_eff).abs() < 0.05,
        "vm {vm_eff} vs prometheus {busy_eff}"
    );

    // ---- summaries: the epilog stored one; the report survives the series' deletion ----
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = cluster.run(
            "sacct",
            &["-X", "-n", "-P", "-o", "AdminComment", "-j", &busy],
        );
        if c.trim().starts_with("hpcmon1:") {
            println!("busy's AdminComment: {} bytes", c.trim().len());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the epilog stored no summary for {busy}: {c:?}\nepilog log:\n{}",
            std::fs::read_to_string(tmp.path().join("epilog.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let client = reqwest::Client::new();
    let resp = client
        .post(format!(
            "{purl}/api/v1/admin/tsdb/delete_series?match[]={{jobid=%22{busy}%22}}"
        ))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "delete_series: {}",
        resp.status()
    );
    let r = report(&purl, &busy, &conf);
    assert_eq!(r["source"], "summary", "{r}");
    let e = eff(&r);
    assert!(
        (e - busy_eff).abs() < 0.01,
        "summary {e} vs live {busy_eff}"
    );

    // ---- scaling: T(p) = 20 + 40/p measured at 1 and 2 cores ----
    let plot = tmp.path().join("scaling.svg");
    let out = jobstats(
        &purl,
        &[
            "scaling",
            "--json",
            "--name",
            "scal",
            "--since",
            "now-1hours",
            "--predict",
            "4",
            "--plot",
            plot.to_str().unwrap(),
        ],
        &conf,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &v[0]["analysis"];
    println!("scaling: {a}");
    // Hand computation: T1 = 60, T2 = 40, S = 1.5, e = (1/1.5 - 1/2) / (1 - 1/2) = 1/3;
    // T(4) = 60 * (1/3 + (2/3)/4) = 30 s.
    let kf = a["karp_flatt"][0][1].as_f64().unwrap();
    assert!((kf - 1.0 / 3.0).abs() < 0.05, "karp-flatt {kf}");
    let t4 = a["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cpus"] == 4)
        .unwrap()["seconds"]
        .as_f64()
        .unwrap();
    assert!((t4 - 30.0).abs() < 3.0, "T(4) = {t4}");
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));

    // ---- the HTTP API and page ----
    let port = free_port();
    let mut cmd = Command::new(JOBSTATS);
    cmd.arg(format!("--prometheus.url={purl}"))
        .arg("serve")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--serve.user-header=X-Remote-User")
        .env("SLURM_CONF", &conf);
    let mut serve = Daemon::spawn_logged("jobstats-serve", cmd, &tmp.path().join("serve.log"));
    serve
        .wait_http(
            &format!("http://127.0.0.1:{port}/-/healthy"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: String, user: &'static str| {
        let c = client.clone();
        async move {
            c.get(path)
                .header("X-Remote-User", user)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = get(format!("{base}/api/v1/jobs/{idle}"), "root").await;
    assert_eq!(resp.status(), 200);
    let j: Value = resp.json().await.unwrap();
    assert!(eff(&j) < 0.05);
    let resp = get(format!("{base}/api/v1/jobs/{idle}"), "alice").await;
    assert_eq!(resp.status(), 403, "another user's job");
    let resp = get(format!("{base}/api/v1/jobs/999999"), "root").await;
    assert_eq!(resp.status(), 404);
    let m = get(format!("{base}/metrics"), "root")
        .await
        .text()
        .await
        .unwrap();
    // One report, a fixed number of queries (9), whatever the job's size.
    assert!(
        m.lines()
            .any(|l| l == "hpcmon_jobstats_prometheus_queries_total 9"),
        "{m}"
    );
    let resp = get(format!("{base}/api/v1/jobs/{scal2}/scaling"), "root").await;
    assert_eq!(resp.status(), 200);

    // The page as a person sees it: headless Chromium renders it from a second server that
    // trusts every caller (Chromium cannot send the proxy's header).
    let port2 = free_port();
    let mut cmd = Command::new(JOBSTATS);
    cmd.arg(format!("--prometheus.url={purl}"))
        .arg("serve")
        .arg(format!("--web.listen-address=127.0.0.1:{port2}"))
        .arg("--serve.allow-all-users")
        .env("SLURM_CONF", &conf);
    let mut open = Daemon::spawn_logged("jobstats-open", cmd, &tmp.path().join("open.log"));
    open.wait_http(
        &format!("http://127.0.0.1:{port2}/-/healthy"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let chromium = require_program("chromium", "chromium");
    let page_url = format!("http://127.0.0.1:{port2}/jobs/{idle}");
    let browse = |what: &str| {
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=900,900",
                &format!("--user-data-dir={}", profile.path().display()),
                what,
                &page_url,
            ])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let html = browse("--dump-dom");
    assert!(html.contains(&format!("Job {idle}")), "{html}");
    assert!(
        html.contains("id=\"cpu-eff\">0%<") || html.contains("id=\"cpu-eff\">1%<"),
        "{html}"
    );
    assert_eq!(
        html.matches("class=\"bar\"").count(),
        2,
        "(CPU, memory) bars of the host: {html}"
    );
    assert!(html.contains("data-rule=\"cpu_efficiency_low\""), "{html}");
    assert!(
        html.contains("--mem="),
        "the memory advice names the flag: {html}"
    );
    browse("--screenshot");
    let shot = tmp.path().join("screenshot.png");
    assert!(std::fs::metadata(&shot)
        .map(|m| m.len() > 10_000)
        .unwrap_or(false));
    if let Ok(dir) = std::env::var("HPCMON_E2E_KEEP") {
        let _ = std::fs::copy(&shot, PathBuf::from(&dir).join("jobstats-page.png"));
    }
    open.stop();
    serve.stop();
    drop(vm);
}
