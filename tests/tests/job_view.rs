//! End to end, the job view (issue 9) on real data: a real Slurm 22.05 cluster with the cgroup
//! plugins (`scripts/slurm-cluster.sh` with `HPCMON_SLURM_CGROUP=1`: proctrack/cgroup,
//! task/cgroup, jobacct_gather/cgroup on this machine's cgroup v1 controllers), the mixed
//! workload of `scripts/slurm-jobs-workload.sh` (a job that burns its core, one that sleeps on
//! 2 CPUs, one that touches 300 MiB, a 2-task array, a 2-node job, a 1-GPU job),
//! `hpcmon-node-exporter` with its `slurm_job` collector reading the jobs' cgroups,
//! `hpcmon-slurm-exporter`, `hpcmon-ipmi-exporter` reading a simulated BMC (OpenIPMI's
//! `ipmi_sim` over IPMI-over-LAN on 127.0.0.1, `scripts/ipmi-sim.sh`), `hpcmon-gpu-exporter`
//! with its test-only scripted backend (`--gpu.fake-devices=2`: no GPU on the test machines)
//! and a job-map file written by the shipped `contrib/prolog.sh` for the GPU job's GPU index
//! as Slurm allocated it, and a real Prometheus scraping all of them (jobs `node`, `slurm`,
//! `ipmi`, `ipmi-local`, `gpu`, as in the demo) with every `rules/*.rules.yml` loaded. It checks:
//!
//! 1. the node exporter reports every running job (raw id, as in the cgroup path
//!    `/sys/fs/cgroup/<controller>/slurm_<node>/uid_0/job_<raw id>/`) with the CPUs and memory
//!    limit Slurm allocated it, summed over the fake nodes of a multi-node job;
//! 2. `slurm_job_info` has one row per running job with the jobid (as printed, `4_1` for an
//!    array task), jobid_raw, user, account, partition and nodes `squeue` prints;
//! 3. the rollups agree with what the jobs did: the busy job's
//!    `jobid:node_slurm_job_cpu_efficiency:ratio` > 0.8, the sleeping job's < 0.05, the memory
//!    job's `jobid:node_slurm_job_memory_max_usage_bytes:sum` within 10% of 300 MiB, the GPU
//!    job's `jobid:gpu_utilization:avg` is its fake GPU's 87% on 1 GPU, the BMC's inlet
//!    sensor (24 C) comes through `ipmi:inlet_temperature_celsius`, a PSU failure set on the
//!    simulated BMC fires `IPMIPowerSupplyFailure` (so the fault panels and "Firing alerts"
//!    have data), and the rollups join `jobid:slurm_job_info:raw` (the user of the busy job
//!    comes through);
//! 4. the live dashboard check (`scripts/lib/check_dashboards.py --live`) passes on EVERY
//!    dashboard (`dashboards/*.json`) with `jobid` bound to the GPU job (so the Job and GPU
//!    dashboards' GPU panels are checked too), and once more on the Job dashboard with
//!    `jobid` bound to an array task as Slurm prints it (`N_1`: the printed-id join path),
//!    where the GPU panels are excused because that task holds no GPU. What cannot have data
//!    on this machine is in `dashboards/live-allowlist.txt`, each with its reason;
//! 5. the long-term store: Prometheus remote-writes everything to a real single-node
//!    VictoriaMetrics (Debian's `victoria-metrics`, 127.0.0.1); the job view's recorded series
//!    (`jobid:*`, `jobid:slurm_job_info:raw`) arrive there with the values Prometheus computed,
//!    every recorded name Prometheus has is there, and the live dashboard check passes on every
//!    dashboard against VictoriaMetrics' query API too. The series counts per scrape job,
//!    per node and per job are printed (the sizing note of packaging/README.md).
//!
//! The busy job holds ONE core: the six fake nodes share this machine's real cores (2 on the
//! test VMs), and a job pinned to both would compete with Prometheus, the exporters and any
//! build running beside the test, so "near 1" would not be assured. One pinned core gets ~all
//! of that core while the scheduler moves other work to the other one.
//!
//! Needs root (slurmd creates cgroups), cgroup v1 controllers under /sys/fs/cgroup,
//! `scripts/install-deps.sh slurm prom ipmi` (slurm-wlm, munge, prometheus, OpenIPMI's
//! ipmi_sim, FreeIPMI) and python3; a missing one fails the test with the command to run.
//! Binaries: `cargo build -p hpcmon-node-exporter -p hpcmon-slurm-exporter
//! -p hpcmon-ipmi-exporter -p hpcmon-gpu-exporter` (scripts/test.sh builds every binary
//! first). The cluster uses fixed ports: the test takes the same lock file as
//! `exporters/slurm/tests/cluster.rs`; the simulated BMC takes free ports in the ipmi block
//! (22000-22799), everything else ports the kernel hands out, all on 127.0.0.1.
//! Runtime ~80 s (a minute of it waits for IPMIPowerSupplyFailure's `for: 1m`), plus any wait
//! for the cluster lock; the jobs stop by themselves after 240 s, and the cluster (jobs cancelled,
//! daemons stopped, cgroups removed), the simulator and every daemon are stopped on drop,
//! also on failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hpcmon_e2e::{
    first_value, repo_root, require_program, start_binary, ClusterOptions, Daemon, Prometheus,
    SlurmCluster, VictoriaMetrics,
};
use serde_json::Value;

/// What the memory job touches (`HPCMON_MEM_MIB` of the workload).
const MEM_MIB: u64 = 300;

/// The cgroup-mode cluster with accounting (slurmdbd: sshare has associations, so the
/// fair-share panels have data), from the harness: locked, stopped on drop (jobs cancelled,
/// orphans killed, job cgroups removed), also when the test fails.
struct Cluster(SlurmCluster);

impl Cluster {
    fn script(&self, name: &str) -> Command {
        self.0.script(name)
    }

    fn conf(&self) -> PathBuf {
        self.0.conf()
    }

    fn start() -> Self {
        require_program("python3", "base");
        Cluster(SlurmCluster::start(ClusterOptions {
            cgroup: true,
            dbd: true,
            epilog_ctld: None,
        }))
    }

    /// Submits the job-view workload; returns `name -> job id` as the script prints it.
    fn submit_workload(&self) -> BTreeMap<String, String> {
        let out = self
            .script("slurm-jobs-workload.sh")
            .env("HPCMON_JOB_SECONDS", "240")
            .env("HPCMON_BUSY_CPUS", "1")
            .env("HPCMON_MEM_MIB", MEM_MIB.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "slurm-jobs-workload.sh failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, id)| (n.to_string(), id.trim().to_string()))
            .collect()
    }

    /// Runs a Slurm client command against this cluster and returns stdout.
    fn slurm(&self, prog: &str, args: &[&str]) -> String {
        self.0.run(prog, args)
    }

    /// The GPU indices (`IDX:0` or `IDX:0-1`) Slurm allocated to a job, from
    /// `scontrol show job -d`, comma-separated as `SLURM_JOB_GPUS` has them.
    fn gpu_indices(&self, jobid: &str) -> String {
        let text = self.slurm("scontrol", &["show", "job", "-d", jobid]);
        let idx = text
            .split("IDX:")
            .nth(1)
            .and_then(|t| t.split(')').next())
            .unwrap_or_else(|| panic!("no GPU index (IDX:) for job {jobid}:\n{text}"));
        idx.split(',')
            .flat_map(|r| match r.split_once('-') {
                Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap()).collect(),
                None => vec![r.parse::<u32>().unwrap()],
            })
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Running jobs as `squeue` prints them.
    fn running(&self) -> Vec<SqJob> {
        self.slurm(
            "squeue",
            &["-h", "-t", "R", "-o", "%i|%A|%u|%a|%P|%N|%C|%m|%D|%j"],
        )
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 10, "squeue line {l:?}");
            SqJob {
                jobid: f[0].into(),
                raw: f[1].into(),
                user: f[2].into(),
                account: f[3].into(),
                partition: f[4].into(),
                nodes: f[5].into(),
                cpus: f[6].parse().unwrap(),
                mem_per_node: mem_bytes(f[7]),
                node_count: f[8].parse().unwrap(),
                name: f[9].into(),
            }
        })
        .collect()
    }
}

/// One simulated BMC: OpenIPMI's `ipmi_sim` through `scripts/ipmi-sim.sh` (as the IPMI
/// exporter's own tests run it), its LAN (UDP) and console (TCP) ports on 127.0.0.1 in the
/// ipmi block; stopped on drop, also when the test fails.
struct IpmiSim {
    dir: tempfile::TempDir,
    base: u16,
}

impl IpmiSim {
    fn start() -> Self {
        require_program("ipmi_sim", "ipmi");
        require_program("sdrcomp", "ipmi");
        assert!(
            Path::new("/usr/sbin/ipmi-sensors").is_file(),
            "FreeIPMI's /usr/sbin/ipmi-sensors is not installed; run `scripts/install-deps.sh ipmi`"
        );
        let free = |p: u16| {
            std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        };
        // A free (LAN, console) pair in 22000-22799, starting from a pid-dependent offset so
        // that concurrent tests rarely probe the same pair; retried if the script fails
        // (taken between the probe and ipmi_sim's bind).
        let mut base = 22000 + (std::process::id() as u16 % 400) * 2;
        let mut last = String::new();
        for _ in 0..20 {
            for _ in 0..400 {
                if free(base) && free(base + 1) {
                    break;
                }
                base = 22000 + (base - 22000 + 2) % 800;
            }
            let sim = IpmiSim {
                dir: tempfile::Builder::new()
                    .prefix("hpcmon-e2e-ipmisim-")
                    .tempdir()
                    .unwrap(),
                base,
            };
            let out = sim.script("start").arg("1").output().unwrap();
            if out.status.success() {
                return sim;
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            base = 22000 + (base - 22000 + 2) % 800;
        }
        panic!("scripts/ipmi-sim.sh start 1 failed 20 times; last:\n{last}");
    }

    fn script(&self, arg: &str) -> Command {
        let mut c = Command::new(repo_root().join("scripts/ipmi-sim.sh"));
        c.arg(arg)
            .env("IPMI_SIM_DIR", self.dir.path())
            .env("IPMI_SIM_BASE_PORT", self.base.to_string());
        c
    }

    /// `HOST:PORT` of the BMC's IPMI-over-LAN endpoint.
    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.base)
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        let _ = self.script("stop").output();
    }
}

#[derive(Debug, Clone)]
struct SqJob {
    jobid: String,
    raw: String,
    user: String,
    account: String,
    partition: String,
    nodes: String,
    cpus: u64,
    mem_per_node: u64,
    node_count: u64,
    name: String,
}

/// `squeue %m` (`600M`, `2G`, `100K`, plain MiB) in bytes.
fn mem_bytes(s: &str) -> u64 {
    let (num, mul) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1 << 20),
    };
    (num.parse::<f64>()
        .unwrap_or_else(|_| panic!("squeue memory {s:?}"))
        * mul as f64) as u64
}

/// `name{labels} value` samples of a text exposition (label values here have no `",`).
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut v = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(sp) = line.rfind(' ') else { continue };
        let series = &line[..sp];
        let (n, labels) = match series.find('{') {
            Some(i) => (&series[..i], &series[i + 1..series.len() - 1]),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let mut map = BTreeMap::new();
        for kv in labels.split("\",").filter(|s| !s.is_empty()) {
            if let Some((k, val)) = kv.split_once("=\"") {
                map.insert(k.to_string(), val.trim_end_matches('"').to_string());
            }
        }
        v.push((map, line[sp + 1..].parse().unwrap_or(f64::NAN)));
    }
    v
}

/// Value of `name{jobid=raw}` in a text exposition.
fn job_value(text: &str, name: &str, raw: &str) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|(l, _)| l.get("jobid").map(String::as_str) == Some(raw))
        .map(|(_, v)| v)
}

/// One-value query; `None` when the result is empty.
async fn value(prom: &Prometheus, q: &str) -> Option<f64> {
    first_value(&prom.query(q).await.unwrap_or(Value::Null))
}

/// Starts `hpcmon-NAME` on a free port (the harness' [`start_binary`]).
async fn start_exporter(
    name: &str,
    logs: &Path,
    args: &[String],
    env: &[(&str, &Path)],
) -> (Daemon, u16) {
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    start_binary(&format!("hpcmon-{name}"), logs, args, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_view_rollups_and_dashboards_on_a_real_cgroup_cluster() {
    let t0 = std::time::Instant::now();
    let cluster = Cluster::start();
    println!(
        "cluster (lock wait included) up after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let ids = cluster.submit_workload();
    println!("workload: {ids:?}");
    for k in ["busy", "idle", "mem", "array", "wide", "gpu"] {
        assert!(ids.contains_key(k), "workload printed no {k} job: {ids:?}");
    }

    // Every job of the workload runs: 1 + 2 + 1 + 2x1 CPUs on n[1-4] (8), 2x1 + 1 (and one
    // GPU) on gpu[1-2].
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let jobs = loop {
        let r = cluster.running();
        if r.len() >= 7 {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every workload job runs after 30 s: {r:?}\n{}",
            cluster.slurm("squeue", &["-o", "%i %j %T %r %N"])
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let by_name = |n: &str| -> SqJob {
        jobs.iter()
            .find(|j| j.name == n)
            .unwrap_or_else(|| panic!("no running job named {n}: {jobs:?}"))
            .clone()
    };
    let (busy, idle, mem, wide, gpu_job) = (
        by_name("busy"),
        by_name("idle"),
        by_name("mem"),
        by_name("wide"),
        by_name("gpujob"),
    );
    let array_task = jobs
        .iter()
        .find(|j| j.name == "sweep" && j.jobid.contains('_'))
        .unwrap_or_else(|| panic!("no running array task: {jobs:?}"))
        .clone();
    println!("running at {:.1} s: {jobs:#?}", t0.elapsed().as_secs_f64());
    // States the Slurm dashboard's panels show besides jobs: a held job (pending, reason
    // JobHeldUser) and a draining node with a reason (gpu2 keeps running the wide job).
    cluster.slurm(
        "sbatch",
        &[
            "-H",
            "-J",
            "held",
            "-o",
            "/dev/null",
            "-t",
            "5",
            "--mem=10M",
            "--wrap",
            "true",
        ],
    );
    cluster.slurm(
        "scontrol",
        &[
            "update",
            "nodename=gpu2",
            "state=drain",
            "reason=hpcmon e2e: drained",
        ],
    );

    let logs = tempfile::Builder::new()
        .prefix("hpcmon-e2e-jobview-")
        .tempdir()
        .unwrap();
    let (mut node, node_port) = start_exporter(
        "node-exporter",
        logs.path(),
        &[
            "--collector.slurm_job".into(),
            "--collector.slurm_job.cgroup-root=/sys/fs/cgroup".into(),
        ],
        &[],
    )
    .await;
    let conf = cluster.conf();
    let (mut slurm, slurm_port) = start_exporter(
        "slurm-exporter",
        logs.path(),
        &[
            "--slurm.poll-interval=1s".into(),
            "--slurm.sshare-interval=1s".into(),
        ],
        &[("SLURM_CONF", conf.as_path())],
    )
    .await;

    // The IPMI exporter on a simulated BMC (the demo's module: every collector; ipmi_sim has
    // no DCMI, so that collector reports 0), /metrics without a local BMC.
    let sim = IpmiSim::start();
    let pw = logs.path().join("bmc-password");
    std::fs::write(&pw, "password\n").unwrap();
    let ipmi_yml = logs.path().join("ipmi.yml");
    std::fs::write(
        &ipmi_yml,
        format!(
            "modules:\n  default:\n    user: admin\n    password_file: {}\n    privilege: admin\n    \
             driver: LAN_2_0\n    workaround_flags: [opensesspriv]\n    timeout: 4s\n    \
             collectors: [ipmi, chassis, bmc, sel, dcmi, bmc-watchdog]\n",
            pw.display()
        ),
    )
    .unwrap();
    let (mut ipmi, ipmi_port) = start_exporter(
        "ipmi-exporter",
        logs.path(),
        &[
            format!("--config.file={}", ipmi_yml.display()),
            format!("--ipmi.sdr-cache-dir={}", logs.path().join("sdr").display()),
            "--ipmi.local=off".into(),
        ],
        &[],
    )
    .await;

    // A BMC fault, as an admin would meet one: PSU1 reports a failure (the IPMI exporter's
    // own sim test sets the same bit). The IPMI and Overview dashboards' fault panels
    // (sensors not nominal, critical sensors by rack, firing alerts) get real data, and
    // IPMIPowerSupplyFailure (for: 1m) must fire: waited for before the live check. Set now, so
    // that the minute runs while the rollups fill their windows.
    let out = sim
        .script("console")
        .args(["1", "sensor_set_bit 0x20 0 5 1 1 1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ipmi-sim.sh console: {out:?}");
    let fault_set = std::time::Instant::now();

    // The GPU exporter: two scripted fake H100s (this machine has no GPU), and the job map the
    // shipped Slurm prolog writes for the GPU job, at the GPU index Slurm allocated it (the
    // demo cluster's GPUs are character devices: nothing runs on them, so the map is the
    // attribution, as for an allocated GPU that runs nothing). procfs is an empty folder:
    // the fake GPUs' process ids are not this machine's processes.
    let gpu_idx = cluster.gpu_indices(&gpu_job.raw);
    let map_dir = logs.path().join("gpustat");
    let empty_proc = logs.path().join("empty-proc");
    std::fs::create_dir_all(&empty_proc).unwrap();
    let prolog = repo_root().join("exporters/gpu/contrib/prolog.sh");
    let out = Command::new(&prolog)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HPCMON_GPU_JOB_MAP_DIR", &map_dir)
        .env("SLURM_JOB_ID", &gpu_job.raw)
        .env("SLURM_JOB_UID", "0")
        .env("SLURM_JOB_ACCOUNT", &gpu_job.account)
        .env("SLURM_JOB_GPUS", &gpu_idx)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", prolog.display()));
    assert!(
        out.status.success() && map_dir.join(gpu_idx.split(',').next().unwrap()).is_file(),
        "{} wrote no job map for GPU {gpu_idx} in {}: {}",
        prolog.display(),
        map_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut gpu, gpu_port) = start_exporter(
        "gpu-exporter",
        logs.path(),
        &[
            "--gpu.fake-devices=2".into(),
            format!("--gpu.job-map-dir={}", map_dir.display()),
            format!("--path.procfs={}", empty_proc.display()),
        ],
        &[],
    )
    .await;

    // 1. Raw series: every running job, by its raw id, with what Slurm allocated it.
    let text = reqwest::get(format!("http://127.0.0.1:{node_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for j in &jobs {
        let cpus = job_value(&text, "node_slurm_job_cpus", &j.raw);
        assert_eq!(
            cpus,
            Some(j.cpus as f64),
            "node_slurm_job_cpus of job {} (raw {}, {} CPUs on {}):\n{}",
            j.jobid,
            j.raw,
            j.cpus,
            j.nodes,
            samples(&text, "node_slurm_job_cpus")
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let limit = job_value(&text, "node_slurm_job_memory_limit_bytes", &j.raw);
        assert_eq!(
            limit,
            Some((j.mem_per_node * j.node_count) as f64),
            "node_slurm_job_memory_limit_bytes of job {} ({} B per node on {})",
            j.jobid,
            j.mem_per_node,
            j.nodes
        );
        let uid = samples(&text, "node_slurm_job_cpus")
            .into_iter()
            .find(|(l, _)| l["jobid"] == j.raw)
            .map(|(l, _)| l["uid"].clone());
        assert_eq!(uid.as_deref(), Some("0"), "uid of job {}", j.jobid);
    }
    assert_eq!(wide.node_count, 2, "the wide job spans two fake nodes");

    // Prometheus: both exporters every second, every rule file as it is, 1 s evaluation.
    // The CPU rollups use deriv() over 5m, which reads a job younger than its window right
    // (rate() would read a 30 s old busy job as 0.1 core).
    let rule_files = Prometheus::repo_rule_files();
    assert!(
        rule_files.iter().any(|(n, _)| n == "jobs.rules.yml"),
        "rules/jobs.rules.yml is missing"
    );
    let names: Vec<&str> = rule_files.iter().map(|(n, _)| n.as_str()).collect();
    let node_target = format!("127.0.0.1:{node_port}");
    let slurm_target = format!("127.0.0.1:{slurm_port}");
    let ipmi_local_target = format!("127.0.0.1:{ipmi_port}");
    let gpu_target = format!("127.0.0.1:{gpu_port}");
    let bmc = sim.target();
    // The BMC through the exporter's /ipmi endpoint (the README's multi-target relabelling),
    // with the room/rack target labels the IPMI dashboard and rules group by; a scrape of
    // ipmi_sim takes ~1 s, hence its own interval and timeout.
    let ipmi_job = format!(
        "    labels: {{room: e2e-room, rack: rack-a}}\n\
         metrics_path: /ipmi\n\
         params: {{module: [default]}}\n\
         scrape_interval: 4s\n\
         scrape_timeout: 4s\n\
         relabel_configs:\n\
         \x20 - {{source_labels: [__address__], target_label: __param_target}}\n\
         \x20 - {{source_labels: [__param_target], target_label: instance}}\n\
         \x20 - {{target_label: __address__, replacement: \"127.0.0.1:{ipmi_port}\"}}\n"
    );
    let config = Prometheus::config(
        &[
            ("node", node_target.as_str(), ""),
            ("slurm", slurm_target.as_str(), ""),
            ("ipmi", bmc.as_str(), ipmi_job.as_str()),
            (
                "ipmi-local",
                ipmi_local_target.as_str(),
                "    labels: {room: e2e-room, rack: rack-a}",
            ),
            ("gpu", gpu_target.as_str(), ""),
        ],
        &names,
    );
    let files: Vec<(&str, &str)> = rule_files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    // 5. Everything Prometheus stores, recorded series included, goes on to VictoriaMetrics.
    let vm = VictoriaMetrics::start(logs.path()).await.unwrap();
    let config = format!("{config}{}", vm.remote_write_config());
    let prom = Prometheus::start(&config, &files).await.unwrap();
    if let Err(e) = prom.wait_targets_up(Duration::from_secs(30)).await {
        panic!(
            "{e:#}\nipmi exporter log:\n{}\ngpu exporter log:\n{}",
            ipmi.log_tail(30),
            gpu.log_tail(30)
        );
    }
    let rule_health = prom.rules().await.unwrap();
    for g in rule_health.as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            assert_ne!(
                r["health"], "err",
                "rule {} fails: {}",
                r["name"], r["lastError"]
            );
        }
    }

    // 3. Rollups: wait until the rate window is full of scrapes (20 samples > 15 s), so the
    // efficiency is an average over 15 s, not extrapolated from a partly empty window.
    let eff = |raw: &str| format!("jobid:node_slurm_job_cpu_efficiency:ratio{{jobid=\"{raw}\"}}");
    for j in [&busy, &idle, &mem] {
        prom.wait_for(
            &eff(&j.raw),
            |r| first_value(r).is_some(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
    prom.wait_for(
        &format!(
            "count_over_time(node_slurm_job_cpu_seconds_total{{jobid=\"{}\"}}[5m])",
            busy.raw
        ),
        |r| first_value(r).is_some_and(|n| n >= 20.0),
        Duration::from_secs(40),
    )
    .await
    .unwrap();
    println!("rollup windows full at {:.1} s", t0.elapsed().as_secs_f64());
    let busy_eff = value(&prom, &eff(&busy.raw)).await.unwrap();
    let idle_eff = value(&prom, &eff(&idle.raw)).await.unwrap();
    let peak_q = format!(
        "jobid:node_slurm_job_memory_max_usage_bytes:sum{{jobid=\"{}\"}}",
        mem.raw
    );
    let peak = value(&prom, &peak_q).await;
    let wide_cpus = value(
        &prom,
        &format!("jobid:node_slurm_job_cpus:sum{{jobid=\"{}\"}}", wide.raw),
    )
    .await;
    let want = (MEM_MIB << 20) as f64;
    println!(
        "busy job {} efficiency {busy_eff:.3}; idle job {} efficiency {idle_eff:.4}; \
         memory job {} peak {:?} B ({:.1} MiB, touched {MEM_MIB} MiB); wide job {} CPUs {wide_cpus:?}",
        busy.jobid,
        idle.jobid,
        mem.jobid,
        peak,
        peak.unwrap_or(0.0) / (1u64 << 20) as f64,
        wide.jobid
    );
    if busy_eff <= 0.8 {
        let raw = prom
            .query(&format!(
                "node_slurm_job_cpu_seconds_total{{jobid=\"{}\"}}[30s]",
                busy.raw
            ))
            .await;
        let parts = prom
            .query(&format!(
                "{{__name__=~\"jobid:node_slurm_job_cpu.*\",jobid=\"{}\"}}",
                busy.raw
            ))
            .await;
        panic!(
            "busy job {} (1 core, one busy loop): CPU efficiency {busy_eff} <= 0.8; load: {}\n\
             raw counter (30 s): {raw:?}\nrollups: {parts:?}",
            busy.jobid,
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
        );
    }
    assert!(
        idle_eff < 0.05,
        "sleeping job {}: CPU efficiency {idle_eff} >= 0.05",
        idle.jobid
    );
    let peak = peak.unwrap_or_else(|| panic!("{peak_q} is empty"));
    assert!(
        (peak - want).abs() <= 0.1 * want,
        "memory job {}: peak {peak} B is not within 10% of the {want} B it touched",
        mem.jobid
    );
    assert_eq!(
        wide_cpus,
        Some(2.0),
        "wide job {} (1 CPU on each of {}): jobid:node_slurm_job_cpus:sum",
        wide.jobid,
        wide.nodes
    );
    // The rollups join the Slurm exporter's job identity through the raw id.
    let joined = prom
        .query(&format!(
            "{} * on (jobid) group_left (user, account, slurm_jobid) jobid:slurm_job_info:raw",
            eff(&busy.raw)
        ))
        .await
        .unwrap();
    let m = &joined[0]["metric"];
    assert_eq!(
        m["user"],
        busy.user.as_str(),
        "join with jobid:slurm_job_info:raw: {joined}"
    );
    assert_eq!(m["account"], busy.account.as_str(), "{joined}");
    assert_eq!(m["slurm_jobid"], busy.jobid.as_str(), "{joined}");

    // The GPU job through the GPU exporter's job map: its one (fake) GPU at 87%, joined to
    // the job's identity; the BMC's inlet sensor through the IPMI rules.
    let gpu_util_q = format!("jobid:gpu_utilization:avg{{jobid=\"{}\"}}", gpu_job.raw);
    let gpu_util = match prom
        .wait_for(
            &gpu_util_q,
            |r| first_value(r).is_some(),
            Duration::from_secs(20),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let text = reqwest::get(format!("http://127.0.0.1:{gpu_port}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!(
                "{e:#}\njob map {}: {:?}\ngpu exporter's gpu_slurm_job_info: {:?}",
                map_dir.display(),
                std::fs::read_dir(&map_dir)
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                    .unwrap_or_default(),
                samples(&text, "gpu_slurm_job_info")
            )
        }
    };
    let gpu_util = first_value(&gpu_util).unwrap();
    let gpus = value(
        &prom,
        &format!("jobid:gpus:count{{jobid=\"{}\"}}", gpu_job.raw),
    )
    .await;
    let gpu_info = prom
        .query(&format!(
            "uuid_jobid:gpu_utilization:ratio{{jobid=\"{}\"}}",
            gpu_job.raw
        ))
        .await
        .unwrap();
    let inlet = prom
        .wait_for(
            &format!("ipmi:inlet_temperature_celsius{{instance=\"{bmc}\"}}"),
            |r| first_value(r).is_some(),
            Duration::from_secs(20),
        )
        .await
        .map(|r| first_value(&r));
    println!(
        "gpu job {} (GPU index {gpu_idx}): utilisation {gpu_util}, GPUs {gpus:?}, {gpu_info}; \
         inlet of BMC {bmc}: {inlet:?}",
        gpu_job.jobid
    );
    assert!(
        (gpu_util - 0.87).abs() < 1e-9,
        "gpu job {}: jobid:gpu_utilization:avg {gpu_util}, the fake GPU reports 0.87",
        gpu_job.jobid
    );
    assert_eq!(
        gpus,
        Some(1.0),
        "gpu job {}: jobid:gpus:count",
        gpu_job.jobid
    );
    let m = &gpu_info[0]["metric"];
    assert_eq!(
        m["uuid"],
        format!(
            "GPU-{:08x}-1111-2222-3333-444455556666",
            gpu_idx.split(',').next().unwrap().parse::<u32>().unwrap()
        ),
        "the GPU job's GPU is the fake GPU of the index Slurm allocated: {gpu_info}"
    );
    assert_eq!(m["user"], gpu_job.user.as_str(), "{gpu_info}");
    assert_eq!(m["account"], gpu_job.account.as_str(), "{gpu_info}");
    assert_eq!(
        inlet.unwrap_or_else(|e| panic!("{e:#}\nipmi exporter log:\n{}", ipmi.log_tail(30))),
        Some(24.0),
        "ipmi_sim's Inlet Temp sensor reads 24 C"
    );

    // 2. slurm_job_info: one row per running job, as squeue prints it.
    let info = prom.query("slurm_job_info").await.unwrap();
    let rows: Vec<&Value> = info.as_array().into_iter().flatten().collect();
    for j in &jobs {
        let row = rows
            .iter()
            .map(|r| &r["metric"])
            .find(|m| m["jobid"] == j.jobid.as_str())
            .unwrap_or_else(|| panic!("no slurm_job_info row for job {} ({j:?}): {info}", j.jobid));
        for (label, want) in [
            ("jobid_raw", &j.raw),
            ("user", &j.user),
            ("account", &j.account),
            ("partition", &j.partition),
            ("nodes", &j.nodes),
            ("name", &j.name),
        ] {
            assert_eq!(
                row[label],
                want.as_str(),
                "slurm_job_info{{jobid=\"{}\"}} label {label}: {row}",
                j.jobid
            );
        }
        if j.jobid.contains('_') {
            let (array, task) = j.jobid.split_once('_').unwrap();
            assert_eq!(row["array_job_id"], array, "{row}");
            assert_eq!(row["array_task_id"], task, "{row}");
        }
    }
    assert_eq!(
        rows.len(),
        jobs.len(),
        "slurm_job_info rows vs running jobs: {info}"
    );

    prom.wait_for(
        &format!("ipmi:sensor_state{{instance=\"{bmc}\",name=\"PSU1 Status\"}} == 2"),
        |r| first_value(r).is_some(),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\nipmi exporter log:\n{}", ipmi.log_tail(30)));
    let alert = prom
        .wait_alert("IPMIPowerSupplyFailure", "firing", Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "IPMIPowerSupplyFailure firing {:.0} s after the PSU fault (at {:.1} s): {alert}",
        fault_set.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );

    // 5. VictoriaMetrics has the job view's recorded series with Prometheus' values (it
    // evaluates no rule: they can only come through remote_write).
    let in_vm = |q: String, pred: Box<dyn Fn(f64) -> bool>| {
        let vm = &vm;
        async move {
            let r = vm
                .wait_for(
                    &q,
                    |r| first_value(r).is_some_and(&pred),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            first_value(&r).unwrap()
        }
    };
    let vm_busy = in_vm(eff(&busy.raw), Box::new(|v| v > 0.8)).await;
    let vm_wide = in_vm(
        format!("jobid:node_slurm_job_cpus:sum{{jobid=\"{}\"}}", wide.raw),
        Box::new(|v| v == 2.0),
    )
    .await;
    let vm_peak = in_vm(
        peak_q.clone(),
        Box::new(move |v| (v - want).abs() <= 0.1 * want),
    )
    .await;
    let vm_gpu = in_vm(gpu_util_q.clone(), Box::new(|v| (v - 0.87).abs() < 1e-9)).await;
    let vm_user = vm
        .wait_for(
            &format!("jobid:slurm_job_info:raw{{jobid=\"{}\"}}", busy.raw),
            |r| r[0]["metric"]["user"] == busy.user.as_str(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let names_q =
        r#"count(count by (__name__) ({__name__=~"jobid:.+|uuid_jobid:.+|user:.+|account:.+"}))"#;
    let prom_names = value(&prom, names_q).await.unwrap_or(0.0);
    let vm_names = in_vm(names_q.to_string(), Box::new(move |v| v >= prom_names)).await;
    println!(
        "VictoriaMetrics (remote_write): busy efficiency {vm_busy:.3}, wide CPUs {vm_wide}, \
         memory peak {vm_peak} B, GPU utilisation {vm_gpu}, {} of jobid:slurm_job_info:raw; \
         {vm_names} recorded job-view names (Prometheus {prom_names})",
        vm_user[0]["metric"]["user"]
    );
    // Sizing: series per scrape job, per node and per job (packaging/README.md).
    let per_job = prom
        .query("count by (job) ({__name__=~\".+\", job!=\"\"})")
        .await
        .unwrap();
    let per_slurm_node = value(
        &prom,
        r#"count({job="slurm", node!=""}) / count(count by (node) ({job="slurm", node!=""}))"#,
    )
    .await;
    let per_jobid = value(
        &prom,
        r#"count({jobid!=""}) / count(count by (jobid) ({jobid!=""}))"#,
    )
    .await;
    let mut sizes: Vec<String> = per_job
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{}={}",
                r["metric"]["job"].as_str().unwrap_or("?"),
                r["value"][1].as_str().unwrap_or("?")
            )
        })
        .collect();
    sizes.sort();
    println!(
        "series per scrape job: {}; Slurm exporter series per Slurm node: {per_slurm_node:?}; \
         series carrying a jobid, per job: {per_jobid:?}",
        sizes.join(" ")
    );

    // 4. The live dashboard check on every dashboard, `jobid` bound to the GPU job (the Job
    // dashboard's GPU panels and the GPU dashboard's job rows need one); then the Job
    // dashboard alone for an array task as Slurm prints it (`N_1`, the printed-id join
    // path), with that run's own extra allow-list entries: the task holds no GPU.
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(repo_root().join("dashboards"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        // The machine-room dashboard needs the UPS/PDU/Modbus stack this test does not run;
        // exporters/ipmi/tests/room_live.rs live-checks it against real snmpd and pymodbus.
        .filter(|p| p.file_name().is_some_and(|n| n != "room.json"))
        // The actions dashboard needs hpcmon-actions with a journal of real actions;
        // actions/tests/tiers.rs live-checks it on the temperature tiers it drives.
        .filter(|p| p.file_name().is_some_and(|n| n != "actions.json"))
        .collect();
    dashboards.sort();
    assert!(dashboards.len() >= 8, "dashboards/*.json: {dashboards:?}");
    let allow = repo_root().join("dashboards/live-allowlist.txt");
    let array_allow = logs.path().join("allow-array-task.txt");
    std::fs::write(
        &array_allow,
        format!(
            "{}\n\
             hpcmon-job GPU utilisation per GPU  # the array task holds no GPU (checked with the GPU job)\n\
             hpcmon-job GPU memory used per GPU  # the array task holds no GPU (checked with the GPU job)\n",
            // The Job dashboard's own entries (the others would be reported as unused).
            std::fs::read_to_string(&allow)
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("hpcmon-job "))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
    .unwrap();
    let job_json = repo_root().join("dashboards/job.json");
    for (what, url, jobid, allow, paths) in [
        (
            "every dashboard",
            prom.url(),
            &gpu_job.jobid,
            &allow,
            dashboards.clone(),
        ),
        (
            "job dashboard, array task",
            prom.url(),
            &array_task.jobid,
            &array_allow,
            vec![job_json],
        ),
        (
            "every dashboard, on VictoriaMetrics",
            vm.url(),
            &gpu_job.jobid,
            &allow,
            dashboards.clone(),
        ),
    ] {
        let check = hpcmon_e2e::check_dashboards_live(
            &url,
            &paths,
            Some(allow.as_path()),
            &[format!("jobid={jobid}")],
        )
        .await
        .unwrap();
        println!(
            "live dashboard check, {what} (jobid={jobid}, {}, at {:.1} s):\n{}",
            check.status,
            t0.elapsed().as_secs_f64(),
            check.not_passed()
        );
        assert!(
            check.passed(),
            "live dashboard check, {what} (jobid={jobid}) failed ({}):\n{}{}",
            check.status,
            check.stdout,
            check.stderr
        );
    }

    node.assert_running();
    slurm.assert_running();
    ipmi.assert_running();
    gpu.assert_running();
}
