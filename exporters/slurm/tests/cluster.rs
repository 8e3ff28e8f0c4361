//! Against a real Slurm 22.05 cluster (munge, slurmctld, six `slurmd -N` nodes, two with fake
//! GPUs) started by `scripts/slurm-cluster.sh` and loaded by `scripts/slurm-workload.sh`:
//!
//! 1. the exporter's numbers agree with what `squeue`/`sinfo` print at the same moment, and
//!    many scrapes cause no extra Slurm commands;
//! 2. a hung `squeue`, a missing `sinfo` and a garbage `sdiag` (wrappers in `--slurm.bin-dir`)
//!    fail only their collectors, the scrape still answers, the process stays up, the log
//!    names each failure in one line, and the last good data is served as stale;
//! 3. a stopped controller does the same.
//!
//! The cluster uses fixed ports (21000-21999), so the scenarios run one after another in one
//! test, under a lock file that also serialises other test binaries that start it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hpcmon_e2e::{free_port, require_program, ClusterOptions, Daemon, SlurmCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hpcmon-slurm-exporter");

/// The harness' cluster (plain mode: proctrack/linuxproc, no accounting) loaded with
/// `scripts/slurm-workload.sh`; locked, stopped on drop (also when the test fails).
struct Cluster(SlurmCluster);

impl Cluster {
    fn script(&self, name: &str) -> Command {
        self.0.script(name)
    }
    fn conf(&self) -> PathBuf {
        self.0.conf()
    }
    fn start() -> Self {
        for p in ["sdiag", "sshare"] {
            require_program(p, "slurm");
        }
        let c = Cluster(SlurmCluster::start(ClusterOptions::default()));
        let out = c.script("slurm-workload.sh").output().unwrap();
        assert!(
            out.status.success(),
            "slurm-workload.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }
    /// Runs a Slurm client command against this cluster and returns stdout.
    fn slurm(&self, prog: &str, args: &[&str]) -> String {
        let out = Command::new(prog)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{prog} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn stop_controller(&self) {
        let pid: i32 = std::fs::read_to_string(self.0.dir().join("run/slurmctld.fg.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) on the controller this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// `name{labels...}` values of a text exposition.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut v = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(sp) = line.rfind(' ') else { continue };
        let value: f64 = line[sp + 1..].parse().unwrap_or(f64::NAN);
        let series = &line[..sp];
        let (name, labels) = match series.find('{') {
            Some(i) => (&series[..i], &series[i + 1..series.len() - 1]),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        // Label values here never contain `",`.
        for kv in labels.split("\",").filter(|s| !s.is_empty()) {
            if let Some((k, val)) = kv.split_once("=\"") {
                map.insert(k.to_string(), val.trim_end_matches('"').to_string());
            }
        }
        v.push((name.to_string(), map, value));
    }
    v
}

fn get(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
}

fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

struct Exporter {
    daemon: Daemon,
    url: String,
    client: reqwest::Client,
}

impl Exporter {
    async fn start(cluster: &Cluster, extra: &[&str]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--slurm.poll-interval=1s")
            .arg("--slurm.sshare-interval=1s")
            .args(extra)
            .env("SLURM_CONF", cluster.conf());
        let mut daemon = Daemon::spawn("slurm-exporter", cmd);
        daemon
            .wait_http(
                &format!("http://127.0.0.1:{port}/-/ready"),
                Duration::from_secs(30),
            )
            .await
            .expect("exporter ready");
        Exporter {
            daemon,
            url: format!("http://127.0.0.1:{port}/metrics"),
            client: reqwest::Client::new(),
        }
    }

    /// One scrape; it must answer within the deadline Prometheus would give it.
    async fn scrape(&mut self) -> String {
        let r = self
            .client
            .get(&self.url)
            .header("X-Prometheus-Scrape-Timeout-Seconds", "5")
            .timeout(Duration::from_secs(8))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape failed: {e}\n{}", self.daemon.log_tail(20)));
        assert!(r.status().is_success());
        r.text().await.unwrap()
    }

    /// Scrapes until `f` holds (at most 30 s).
    async fn until(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.scrape().await;
            if f(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last scrape:\n{t}\nlog:\n{}",
                self.daemon.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn count_lines<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.trim().to_string()).or_insert(0.0) += 1.0;
    }
    m
}

/// What squeue and sinfo say, in the exporter's terms.
#[derive(Debug, PartialEq)]
struct Truth {
    jobs_by_state: BTreeMap<String, f64>,
    pending_by_reason: BTreeMap<String, f64>,
    nodes_by_long_state: BTreeMap<String, f64>,
    cpus: Vec<f64>,
}

fn truth(c: &Cluster) -> Truth {
    let jobs = c.slurm("squeue", &["-a", "-r", "-h", "--states=all", "-o", "%T"]);
    let pending = c.slurm("squeue", &["-a", "-r", "-h", "-t", "PD", "-o", "%r"]);
    let nodes = c.slurm("sinfo", &["-a", "-N", "-h", "-o", "%N %T"]);
    let cpus = c.slurm("sinfo", &["-a", "-h", "-o", "%C"]);
    let mut uniq = BTreeMap::new();
    for l in nodes.lines() {
        if let Some((n, s)) = l.split_once(' ') {
            uniq.insert(n.to_string(), s.to_string());
        }
    }
    Truth {
        jobs_by_state: count_lines(jobs.lines()),
        pending_by_reason: count_lines(pending.lines().map(
            |r| match r.find(", UnavailableNodes") {
                Some(i) => &r[..i],
                None => r,
            },
        )),
        nodes_by_long_state: count_lines(uniq.values().map(String::as_str)),
        cpus: cpus.trim().split('/').map(|x| x.parse().unwrap()).collect(),
    }
}

/// prometheus-slurm-exporter's bucket for a `sinfo %T` state.
fn compat_bucket(long: &str) -> &'static str {
    let s = long.trim_end_matches(['*', '~', '#', '%', '$', '@', '^', '-', '!']);
    match s {
        _ if s.starts_with("drain") => "drain",
        _ if s.starts_with("alloc") => "alloc",
        _ if s.starts_with("comp") => "comp",
        _ if s.starts_with("down") => "down",
        _ if s.starts_with("err") => "err",
        _ if s.starts_with("fail") => "fail",
        _ if s.starts_with("idle") => "idle",
        _ if s.starts_with("maint") => "maint",
        _ if s.starts_with("mix") => "mix",
        _ if s.starts_with("reserved") || s.starts_with("resv") => "resv",
        _ => "other",
    }
}

fn check_against(t: &Truth, m: &str) -> Result<(), String> {
    let mut errs = Vec::new();
    let mut check = |what: String, want: f64, got: Option<f64>| {
        if got != Some(want) {
            errs.push(format!("{what}: squeue/sinfo say {want}, exporter {got:?}"));
        }
    };
    for (state, n) in &t.jobs_by_state {
        check(
            format!("jobs {state}"),
            *n,
            Some(sum(m, "slurm_jobs", &[("state", state)])),
        );
        check(
            format!("slurm_queue_{}", state.to_lowercase()),
            *n,
            get(m, &format!("slurm_queue_{}", state.to_lowercase()), &[]),
        );
    }
    let total_jobs: f64 = t.jobs_by_state.values().sum();
    check(
        "all jobs".into(),
        total_jobs,
        Some(sum(m, "slurm_jobs", &[])),
    );
    for (reason, n) in &t.pending_by_reason {
        check(
            format!("pending {reason}"),
            *n,
            Some(sum(m, "slurm_jobs_pending", &[("reason", reason)])),
        );
    }
    let mut buckets: BTreeMap<&str, f64> = BTreeMap::new();
    for (state, n) in &t.nodes_by_long_state {
        *buckets.entry(compat_bucket(state)).or_default() += n;
    }
    for (b, n) in &buckets {
        check(
            format!("slurm_nodes_{b}"),
            *n,
            get(m, &format!("slurm_nodes_{b}"), &[]),
        );
    }
    let total_nodes: f64 = t.nodes_by_long_state.values().sum();
    check(
        "nodes".into(),
        total_nodes,
        Some(sum(m, "slurm_nodes_state", &[])),
    );
    for (i, k) in ["alloc", "idle", "other", "total"].iter().enumerate() {
        check(
            format!("slurm_cpus_{k}"),
            t.cpus[i],
            get(m, &format!("slurm_cpus_{k}"), &[]),
        );
        let native = ["allocated", "idle", "other", "total"][i];
        check(
            format!("sum slurm_node_cpus_{native}"),
            t.cpus[i],
            Some(sum(m, &format!("slurm_node_cpus_{native}"), &[])),
        );
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

fn write_script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn which(p: &str) -> String {
    require_program(p, "slurm").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_scenarios() {
    let cluster = Cluster::start();

    // 1. Agreement with squeue/sinfo at the same moment: read the truth, wait for two
    //    exporter polls after it, read the truth again; compare when it did not move.
    let mut exp = Exporter::start(&cluster, &[]).await;
    let mut last_err = String::new();
    let mut agreed = false;
    for _ in 0..15 {
        let before = truth(&cluster);
        let polls = get(&exp.scrape().await, "slurm_polls_total", &[]).unwrap();
        let m = exp
            .until("two more polls", |t| {
                get(t, "slurm_polls_total", &[]).unwrap_or(0.0) >= polls + 2.0
            })
            .await;
        let after = truth(&cluster);
        if before != after {
            last_err = format!("cluster changed during the check: {before:?} vs {after:?}");
            continue;
        }
        match check_against(&after, &m) {
            Ok(()) => {
                agreed = true;
                break;
            }
            Err(e) => last_err = e,
        }
    }
    assert!(agreed, "exporter disagrees with squeue/sinfo:\n{last_err}");

    let m = exp.scrape().await;
    // The workload's interesting states are all there.
    for reason in ["Resources", "Dependency", "JobHeldUser"] {
        assert!(
            sum(&m, "slurm_jobs_pending", &[("reason", reason)]) >= 1.0,
            "no job pending for {reason}\n{m}"
        );
    }
    assert!(sum(&m, "slurm_jobs_array_tasks", &[]) >= 1.0);
    assert_eq!(get(&m, "slurm_nodes_flag", &[("flag", "drain")]), Some(1.0));
    assert_eq!(
        get(&m, "slurm_node_state", &[("node", "n3"), ("state", "down")]),
        Some(1.0)
    );
    assert_eq!(
        get(
            &m,
            "slurm_node_reason_info",
            &[("node", "n4"), ("reason", "hpcmon: maintenance test")]
        ),
        Some(1.0)
    );
    assert_eq!(get(&m, "slurm_gpus_total", &[]), Some(4.0));
    assert_eq!(
        get(&m, "slurm_node_gpus_used", &[("node", "gpu1")]),
        Some(2.0)
    );
    assert_eq!(
        sum(&m, "slurm_jobs_gpus_allocated", &[("partition", "gpu")]),
        get(&m, "slurm_gpus_alloc", &[]).unwrap()
    );
    assert_eq!(
        get(
            &m,
            "slurm_cluster_info",
            &[("cluster", "hpcmon"), ("version", "22.05.8")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(&m, "slurm_license_total", &[("license", "matlab")]),
        Some(4.0)
    );
    assert_eq!(
        get(&m, "slurm_reservation_active", &[("reservation", "maint")]),
        Some(1.0)
    );
    assert!(
        get(
            &m,
            "slurm_scheduler_rpc_calls_total",
            &[("type", "REQUEST_JOB_INFO")]
        )
        .unwrap()
            >= 1.0
    );
    for (_, l, v) in samples(&m)
        .into_iter()
        .filter(|(n, _, _)| n == "slurm_scrape_collector_success")
    {
        assert_eq!(
            v,
            1.0,
            "collector {:?} failed:\n{}",
            l,
            exp.daemon.log_tail(20)
        );
    }

    // Scrapes are served from the snapshot: 30 scrapes cause no extra squeue runs.
    let runs = |t: &str| get(t, "slurm_command_runs_total", &[("command", "squeue")]).unwrap();
    let polls = |t: &str| get(t, "slurm_polls_total", &[]).unwrap();
    let m0 = exp.scrape().await;
    let scrapes: Vec<_> = (0..30).map(|_| exp.client.get(&exp.url).send()).collect();
    for s in scrapes {
        assert!(s.await.unwrap().status().is_success());
    }
    let m1 = exp.scrape().await;
    assert_eq!(
        runs(&m1) - runs(&m0),
        polls(&m1) - polls(&m0),
        "squeue ran more often than the poller polled"
    );

    // 2. Bad commands, through wrappers in --slurm.bin-dir.
    let bin = tempfile::tempdir().unwrap();
    let hang = bin.path().join("hang");
    write_script(
        bin.path(),
        "squeue",
        &format!(
            "[ -e {} ] && exec sleep 30\nexec {} \"$@\"",
            hang.display(),
            which("squeue")
        ),
    );
    write_script(
        bin.path(),
        "sdiag",
        "echo 'this is not sdiag output'; echo '@@@|||'",
    );
    write_script(
        bin.path(),
        "sshare",
        &format!("exec {} \"$@\"", which("sshare")),
    );
    write_script(
        bin.path(),
        "scontrol",
        &format!("exec {} \"$@\"", which("scontrol")),
    );
    // no sinfo at all
    let dir_flag = format!("--slurm.bin-dir={}", bin.path().display());
    let mut bad = Exporter::start(&cluster, &[&dir_flag, "--slurm.command-timeout=1s"]).await;
    let m = bad
        .until("squeue data", |t| {
            get(
                t,
                "slurm_scrape_collector_success",
                &[("collector", "jobs")],
            ) == Some(1.0)
        })
        .await;
    let running = get(&m, "slurm_queue_running", &[]).unwrap();
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "nodes")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(&m, "slurm_nodes_state", &[]),
        None,
        "nodes served without sinfo"
    );
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "scheduler")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "licenses")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "cluster")]
        ),
        Some(1.0)
    );
    std::fs::write(&hang, "").unwrap();
    let m = bad
        .until("squeue to hang", |t| {
            get(t, "slurm_command_success", &[("command", "squeue")]) == Some(0.0)
        })
        .await;
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "jobs")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(&m, "slurm_collector_stale", &[("collector", "jobs")]),
        Some(1.0)
    );
    assert_eq!(
        get(&m, "slurm_queue_running", &[]),
        Some(running),
        "last good data not served"
    );
    assert_eq!(
        get(
            &m,
            "slurm_scrape_collector_success",
            &[("collector", "licenses")]
        ),
        Some(1.0)
    );
    bad.daemon.assert_running();
    let log = bad.daemon.log();
    let has = |cmd: &str, what: &str| {
        log.lines().any(|l| {
            l.contains("slurm command failed")
                && l.contains(&format!("command={cmd}"))
                && l.contains(what)
        })
    };
    assert!(
        has("squeue", "timed out"),
        "no log line for the hung squeue:\n{log}"
    );
    assert!(
        has("sinfo", "cannot run"),
        "no log line for the missing sinfo:\n{log}"
    );
    assert!(
        has("sdiag", "unparsable"),
        "no log line for the garbage sdiag:\n{log}"
    );
    drop(bad);

    // 3. The controller goes away: every Slurm-backed collector fails with stale data, the
    //    process stays up.
    let m = exp.scrape().await;
    let running = get(&m, "slurm_queue_running", &[]).unwrap();
    cluster.stop_controller();
    let m = exp
        .until("squeue to fail", |t| {
            get(t, "slurm_command_success", &[("command", "squeue")]) == Some(0.0)
                && get(t, "slurm_command_success", &[("command", "sinfo")]) == Some(0.0)
        })
        .await;
    for c in ["jobs", "nodes", "partitions"] {
        assert_eq!(
            get(&m, "slurm_scrape_collector_success", &[("collector", c)]),
            Some(0.0),
            "{c}"
        );
        assert_eq!(
            get(&m, "slurm_collector_stale", &[("collector", c)]),
            Some(1.0),
            "{c}"
        );
    }
    assert_eq!(get(&m, "slurm_queue_running", &[]), Some(running));
    exp.daemon.assert_running();
    assert!(exp
        .daemon
        .log()
        .lines()
        .any(|l| l.contains("slurm command failed") && l.contains("command=squeue")));
}
