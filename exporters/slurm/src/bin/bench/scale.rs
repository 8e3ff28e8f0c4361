//! `hpcmon-slurm-bench scale`: the exporter binary at cluster scale, over HTTP.
//!
//! Generates the outputs of `squeue`, `sinfo`, `sshare`, `sdiag` for a large cluster with
//! independent, skewed distributions (users, accounts, partitions, states, node counts, CPUs,
//! GPUs, pending reasons all drawn separately, Zipf-like), serves them to one or more
//! exporter binaries through `--slurm.bin-dir` wrappers, and reports for each: series, bytes
//! on the wire with and without `Accept-Encoding: gzip`, scrape time seen by the client and
//! resident memory; then each run's ratio to the first (the reference, e.g. the binary
//! before a change), all measured in the same run on the same data.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// splitmix64: a small deterministic generator (the same data on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Ranks 0..n with P(k) proportional to 1 / (k+1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        Self::weighted(
            &(1..=n)
                .map(|k| 1.0 / (k as f64).powf(s))
                .collect::<Vec<_>>(),
        )
    }

    fn weighted(w: &[f64]) -> Self {
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cdf = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        Self { cdf }
    }

    fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The shape of the generated cluster.
pub struct Shape {
    pub jobs: usize,
    pub users: usize,
    pub nodes: usize,
    pub accounts: usize,
    /// Associations in sshare whose users have no job (fair-share tree only).
    pub idle_associations: usize,
}

const PARTITIONS: [&str; 12] = [
    "cpu",
    "gpu",
    "short",
    "long",
    "bigmem",
    "debug",
    "a100",
    "h100",
    "preempt",
    "interactive",
    "chem",
    "phys",
];

fn gpu_type(partition: &str) -> Option<&'static str> {
    match partition {
        "gpu" => Some("v100"),
        "a100" => Some("a100"),
        "h100" => Some("h100"),
        _ => None,
    }
}

/// The generated command outputs.
pub struct Data {
    pub squeue: String,
    pub sinfo: String,
    pub sshare: String,
    pub sdiag: String,
    pub users_with_jobs: usize,
    pub sinfo_lines: usize,
}

pub fn generate(shape: &Shape) -> Data {
    let mut r = Rng(0x5eed_0013);
    let user_z = Zipf::new(shape.users, 1.1);
    let account_z = Zipf::new(shape.accounts, 1.0);
    let partition_z = Zipf::new(PARTITIONS.len(), 1.2);
    let nodes_z = Zipf::new(128, 1.6);
    let cpus_choices = [1, 2, 4, 8, 16, 32, 64, 128];
    let cpus_z = Zipf::new(cpus_choices.len(), 0.6);
    let gpus_choices = [1, 2, 4, 8];
    let gpus_z = Zipf::new(gpus_choices.len(), 1.0);
    let states = [
        ("PENDING", 0.50),
        ("RUNNING", 0.38),
        ("COMPLETED", 0.05),
        ("COMPLETING", 0.02),
        ("CANCELLED", 0.02),
        ("FAILED", 0.01),
        ("TIMEOUT", 0.005),
        ("SUSPENDED", 0.005),
        ("CONFIGURING", 0.005),
        ("PREEMPTED", 0.005),
    ];
    let state_z = Zipf::weighted(&states.map(|s| s.1));
    let reasons = [
        ("Priority", 0.50),
        ("Resources", 0.25),
        ("Dependency", 0.08),
        ("QOSMaxJobsPerUserLimit", 0.05),
        ("AssocGrpCpuLimit", 0.04),
        ("BeginTime", 0.03),
        ("JobHeldUser", 0.03),
        ("ReqNodeNotAvail, UnavailableNodes:c[00010-00013]", 0.02),
    ];
    let reason_z = Zipf::weighted(&reasons.map(|s| s.1));
    let qos = ["normal", "normal", "normal", "high", "low"];
    // Each user belongs to 1-3 accounts, drawn from the (skewed) account popularity; a job
    // runs under the user's first account most of the time.
    let user_accounts: Vec<Vec<usize>> = (0..shape.users)
        .map(|_| {
            let n = 1 + [0, 0, 0, 1, 2][r.below(5)];
            let mut a: Vec<usize> = (0..n).map(|_| account_z.sample(&mut r)).collect();
            a.dedup();
            a
        })
        .collect();

    let mut squeue = String::with_capacity(shape.jobs * 190);
    let mut active_users = BTreeSet::new();
    let mut array_left = 0usize;
    let mut array_id = 0u64;
    let mut array_task = 0usize;
    for i in 0..shape.jobs {
        let job_id = 5_000_000 + i as u64;
        let user = user_z.sample(&mut r);
        active_users.insert(user);
        let accts = &user_accounts[user];
        let account = if accts.len() > 1 && r.unit() < 0.2 {
            accts[1 + r.below(accts.len() - 1)]
        } else {
            accts[0]
        };
        let state = states[state_z.sample(&mut r)].0;
        let mut partition = PARTITIONS[partition_z.sample(&mut r)].to_string();
        if state == "PENDING" && r.unit() < 0.03 {
            let other = PARTITIONS[partition_z.sample(&mut r)];
            if other != partition {
                partition = format!("{partition},{other}");
            }
        }
        let first_partition = partition.split(',').next().unwrap_or("").to_string();
        let nodes = 1 + nodes_z.sample(&mut r);
        let cpus = nodes * cpus_choices[cpus_z.sample(&mut r)];
        let mem_g = cpus * [2, 4, 8][r.below(3)];
        let (tres_gpu, per_node) = match gpu_type(&first_partition) {
            Some(t) => {
                let g = gpus_choices[gpus_z.sample(&mut r)];
                (
                    format!(",gres/gpu={},gres/gpu:{t}={}", g * nodes, g * nodes),
                    format!("gres:gpu:{t}:{g}"),
                )
            }
            None => (String::new(), "N/A".to_string()),
        };
        let holds = !matches!(state, "PENDING");
        let tres = if holds {
            format!("cpu={cpus},mem={mem_g}G,node={nodes},billing={cpus}{tres_gpu}")
        } else {
            format!("cpu={cpus},mem={mem_g}G,node={nodes},billing={cpus}")
        };
        let (nodelist, start) = if holds {
            let first = r.below(shape.nodes.saturating_sub(nodes).max(1));
            if nodes == 1 {
                (format!("c{first:05}"), "2026-11-20T08:00:00")
            } else {
                (
                    format!("c[{first:05}-{:05}]", first + nodes - 1),
                    "2026-11-20T08:00:00",
                )
            }
        } else {
            (String::new(), "N/A")
        };
        let reason = match state {
            "PENDING" => reasons[reason_z.sample(&mut r)].0,
            "FAILED" => "NonZeroExitCode",
            _ => "None",
        };
        // About 15% of jobs are tasks of arrays of 10 to 1000 tasks.
        if array_left == 0 && r.unit() < 0.00035 {
            array_left = 10 + r.below(990);
            array_id = job_id;
            array_task = 0;
        }
        let (arr, task) = if array_left > 0 {
            array_left -= 1;
            array_task += 1;
            (array_id.to_string(), (array_task - 1).to_string())
        } else {
            (job_id.to_string(), "N/A".to_string())
        };
        let _ = writeln!(
            squeue,
            "{arr}|{task}|user{user:04}|acct{account:03}|{partition}|{state}|{nodes}|{cpus}|{tres}|{per_node}|N/A|(null)|{job_id}|{q}|{nodelist}|{start}|1-00:00:00|{reason}|job-{name}",
            q = qos[r.below(qos.len())],
            name = r.below(5000),
        );
    }

    // Nodes: every node in one partition, a fifth also in a second; GPU partitions' nodes
    // carry 8 GPUs of their type.
    let node_states = [
        ("allocated", 0.45),
        ("mixed", 0.25),
        ("idle", 0.20),
        ("allocated+drain", 0.02),
        ("idle+drain", 0.02),
        ("down+not_responding", 0.02),
        ("idle+powered_down", 0.02),
        ("mixed+completing", 0.01),
        ("idle+maintenance+reserved", 0.01),
    ];
    let node_state_z = Zipf::weighted(&node_states.map(|s| s.1));
    let mut sinfo = String::with_capacity(shape.nodes * 150);
    let mut sinfo_lines = 0;
    for n in 0..shape.nodes {
        let state = node_states[node_state_z.sample(&mut r)].0;
        let p1 = PARTITIONS[partition_z.sample(&mut r)];
        let mut parts = vec![p1];
        if r.unit() < 0.2 {
            let p2 = PARTITIONS[partition_z.sample(&mut r)];
            if p2 != p1 {
                parts.push(p2);
            }
        }
        let (gres, used) = match gpu_type(p1) {
            Some(t) => {
                let u = match state {
                    "allocated" => 8,
                    "mixed" => 1 + r.below(7),
                    _ => 0,
                };
                (format!("gpu:{t}:8(S:0-1)"), format!("gpu:{t}:{u}(IDX:N/A)"))
            }
            None => ("(null)".to_string(), "gpu:0".to_string()),
        };
        let alloc = match state {
            s if s.starts_with("allocated") => 128,
            s if s.starts_with("mixed") => 1 + r.below(127),
            _ => 0,
        };
        let other = if state.contains("drain") || state.starts_with("down") {
            128 - alloc
        } else {
            0
        };
        let idle = 128 - alloc - other;
        let reason = if state.contains("drain") || state.starts_with("down") {
            format!("hw check c{n:05} [root@2026-11-21T10:00:00]")
        } else {
            "none".to_string()
        };
        for p in &parts {
            let def = if *p == "cpu" { "*" } else { "" };
            let _ = writeln!(
                sinfo,
                "c{n:05}|{p}{def}|{state}|{alloc}/{idle}/{other}/128|512000|{mem}|{free}|{load:.2}|{gres}|{used}|ib,avx512|{reason}",
                mem = alloc * 3900,
                free = 512_000 - alloc * 3900,
                load = alloc as f64 * 0.9,
            );
            sinfo_lines += 1;
        }
    }

    // Fair-share tree: every account, every association of the users above, plus
    // associations of users without jobs.
    let mut by_account: Vec<Vec<String>> = vec![Vec::new(); shape.accounts];
    for (u, accts) in user_accounts.iter().enumerate() {
        for a in accts {
            by_account[*a].push(format!("user{u:04}"));
        }
    }
    for i in 0..shape.idle_associations {
        by_account[account_z.sample(&mut r)].push(format!("idle{i:05}"));
    }
    let mut sshare = String::from(
        "root|||0.000000|86400000|1.000000|\n root|root|1|0.010000|0|0.000000|1.000000\n",
    );
    for (a, users) in by_account.iter().enumerate() {
        if users.is_empty() {
            continue;
        }
        let _ = writeln!(
            sshare,
            " acct{a:03}||1|{:.6}|{}|{:.6}|",
            1.0 / shape.accounts as f64,
            1000 * (a + 1),
            1.0 / shape.accounts as f64
        );
        for u in users {
            let _ = writeln!(
                sshare,
                "  acct{a:03}|{u}|1|{:.6}|{}|{:.6}|{:.6}",
                1.0 / users.len() as f64,
                r.below(1_000_000),
                r.unit() / users.len() as f64,
                r.unit()
            );
        }
    }

    // sdiag with RPC statistics for every user.
    let mut sdiag = String::from(
        "*******************************************************\n\
sdiag output at Sat Nov 21 10:00:00 2026 (1763719200)\n\
Data since      Sat Nov 21 00:00:00 2026 (1763683200)\n\
*******************************************************\n\
Server thread count:  3\n\
Agent queue size:     0\n\
Agent count:          0\n\
Agent thread count:   0\n\
DBD Agent queue size: 0\n\n\
Jobs submitted: 250000\n\
Jobs started:   150000\n\
Jobs completed: 140000\n\
Jobs canceled:  5000\n\
Jobs failed:    1000\n\n\
Main schedule statistics (microseconds):\n\
\tLast cycle:   250000\n\
\tMax cycle:    2500000\n\
\tTotal cycles: 9000\n\
\tMean cycle:   300000\n\
\tMean depth cycle:  100\n\
\tCycles per minute: 1\n\
\tLast queue length: 50000\n\n\
Backfilling stats\n\
\tTotal backfilled jobs (since last slurm start): 20000\n\
\tTotal backfilled jobs (since last stats cycle start): 2000\n\
\tTotal backfilled heterogeneous job components: 0\n\
\tTotal cycles: 400\n\
\tLast cycle when: Sat Nov 21 09:59:00 2026 (1763719140)\n\
\tLast cycle: 5000000\n\
\tMax cycle:  30000000\n\
\tMean cycle: 6000000\n\
\tLast depth cycle: 50000\n\
\tLast depth cycle (try sched): 2000\n\
\tDepth Mean: 40000\n\
\tDepth Mean (try sched): 1500\n\
\tLast queue length: 50000\n\
\tQueue length mean: 48000\n\
\tLast table size: 900\n\
\tMean table size: 850\n\n\
Remote Procedure Call statistics by message type\n\
\tREQUEST_SUBMIT_BATCH_JOB                ( 4003) count:250000 ave_time:900    total_time:225000000\n\
\tREQUEST_JOB_INFO                        ( 2003) count:30000  ave_time:90000  total_time:2700000000\n\
\tREQUEST_NODE_INFO                       ( 2007) count:30000  ave_time:9000   total_time:270000000\n\
\tREQUEST_PARTITION_INFO                  ( 2009) count:60000  ave_time:300    total_time:18000000\n\
\tMESSAGE_NODE_REGISTRATION_STATUS        ( 1002) count:10000  ave_time:800    total_time:8000000\n\n\
Remote Procedure Call statistics by user\n",
    );
    let _ = writeln!(
        sdiag,
        "\troot            (       0) count:400000 ave_time:700    total_time:280000000"
    );
    for u in 0..shape.users {
        let count = 1 + 200_000 / (u + 1);
        let _ = writeln!(
            sdiag,
            "\tuser{u:04}        ({:>8}) count:{count:<6} ave_time:800    total_time:{}",
            10_000 + u,
            count * 800
        );
    }
    sdiag.push_str("\nPending RPC statistics\n\tNo pending RPCs\n");

    Data {
        squeue,
        sinfo,
        sshare,
        sdiag,
        users_with_jobs: active_users.len(),
        sinfo_lines,
    }
}

/// Writes the outputs and a `--slurm.bin-dir` of wrappers printing them into `dir`; the
/// reservation, license and config outputs are the captured ones in `testdata/`.
pub fn write_bin_dir(data: &Data, dir: &Path) -> PathBuf {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for (name, text) in [
        ("squeue.txt", &data.squeue),
        ("sinfo.txt", &data.sinfo),
        ("sshare.txt", &data.sshare),
        ("sdiag.txt", &data.sdiag),
    ] {
        std::fs::write(dir.join(name), text).expect("writing generated output");
    }
    let cat = |p: PathBuf| format!("exec cat '{}'", p.display());
    let scripts = [
        ("squeue", cat(dir.join("squeue.txt"))),
        (
            "sinfo",
            format!(
                "if [ \"$1\" = --version ]; then echo 'slurm 22.05.8'; exit 0; fi\n{}",
                cat(dir.join("sinfo.txt"))
            ),
        ),
        ("sshare", cat(dir.join("sshare.txt"))),
        ("sdiag", cat(dir.join("sdiag.txt"))),
        (
            "scontrol",
            format!(
                "case \"$*\" in\n  *reservation*) {} ;;\n  *licenses*) {} ;;\n  *) {} ;;\nesac",
                cat(testdata.join("reservations.txt")),
                cat(testdata.join("licenses.txt")),
                cat(testdata.join("config.txt"))
            ),
        ),
    ];
    for (name, body) in scripts {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("writing a wrapper");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

/// One exporter configuration to measure.
pub struct Run {
    pub label: String,
    pub bin: PathBuf,
    pub args: Vec<String>,
}

/// Parses `LABEL=BIN [--flag ...]...`: each `LABEL=BIN` starts a run; the `--` arguments
/// after it are that run's extra flags.
pub fn parse_runs(args: &[String]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for a in args {
        if a.starts_with("--") {
            runs.last_mut()
                .expect("flags before the first LABEL=BIN")
                .args
                .push(a.clone());
        } else {
            let (label, bin) = a.split_once('=').expect("LABEL=BIN");
            runs.push(Run {
                label: label.to_string(),
                bin: PathBuf::from(bin),
                args: Vec::new(),
            });
        }
    }
    runs
}

/// What one run measured.
struct Measured {
    series: usize,
    identity_bytes: usize,
    gzip_bytes: usize,
    gzip_served: bool,
    identity_ms: f64,
    gzip_ms: f64,
    /// The exporter's CPU time per scrape (all threads, from /proc/PID/stat).
    identity_cpu_ms: f64,
    gzip_cpu_ms: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
    /// Series per group of families (per job, per node, ...), in [`GROUPS`] order.
    groups: Vec<usize>,
    /// The slowest collectors of the first scrape: (collector, seconds).
    slowest: Vec<(String, f64)>,
}

/// Groups of families for the breakdown: (name, family prefixes); the last one takes the
/// rest.
const GROUPS: [(&str, &[&str]); 6] = [
    ("per job (slurm_job_*)", &["slurm_job_"]),
    ("per node (slurm_node_*)", &["slurm_node_"]),
    (
        "jobs by partition/account/user (slurm_jobs*)",
        &["slurm_jobs", "slurm_queue_"],
    ),
    ("fair share", &["slurm_user_", "slurm_account_"]),
    ("scheduler", &["slurm_scheduler_"]),
    ("other", &[]),
];

fn group_of(family: &str) -> usize {
    GROUPS
        .iter()
        .position(|(_, prefixes)| prefixes.iter().any(|p| family.starts_with(p)))
        .unwrap_or(GROUPS.len() - 1)
}

/// CPU time (user + system, all threads) the process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the ')'.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) * 1000.0 / hz
}

fn status_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// GET /metrics on a new connection; returns (status line, headers, body).
fn get(addr: &str, accept_encoding: &str) -> (String, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept_encoding}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (
        status.to_string(),
        headers.to_lowercase(),
        buf[end + 4..].to_vec(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn measure(run: &Run, bin_dir: &Path, scrapes: usize) -> Measured {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(&run.bin)
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--slurm.bin-dir={}", bin_dir.display()))
        // One snapshot for the whole measurement.
        .arg("--slurm.poll-interval=1h")
        .arg("--slurm.command-timeout=60s")
        .args(&run.args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", run.bin.display()));
    let pid = child.id();
    let t0 = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = write!(
                s,
                "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut b = String::new();
            let _ = s.read_to_string(&mut b);
            if b.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{} not ready",
            run.label
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A warm-up scrape (first-scrape allocations), then alternate identity and gzip.
    let (status, _, body) = get(&addr, "identity");
    assert!(status.contains(" 200"), "{}: {status}", run.label);
    let series = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    let identity_bytes = body.len();
    let mut families: std::collections::BTreeMap<String, usize> = Default::default();
    for l in body.split(|b| *b == b'\n') {
        if l.is_empty() || l[0] == b'#' {
            continue;
        }
        let name = l
            .split(|b| *b == b'{' || *b == b' ')
            .next()
            .unwrap_or_default();
        *families
            .entry(String::from_utf8_lossy(name).into_owned())
            .or_default() += 1;
    }
    let text = String::from_utf8_lossy(&body);
    let mut slowest: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("slurm_scrape_collector_duration_seconds{collector=\"")?;
            let (name, v) = rest.split_once("\"} ")?;
            Some((name.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(4);
    let mut groups = vec![0; GROUPS.len()];
    for (f, n) in &families {
        groups[group_of(f)] += n;
    }
    let (mut ti, mut tg, mut ci, mut cg) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut gzip_bytes = 0;
    let mut gzip_served = false;
    for _ in 0..scrapes {
        let (t, c) = (Instant::now(), cpu_ms(pid));
        let (_, _, b) = get(&addr, "identity");
        ti.push(t.elapsed().as_secs_f64() * 1e3);
        ci.push(cpu_ms(pid) - c);
        assert!(!b.is_empty());
        let (t, c) = (Instant::now(), cpu_ms(pid));
        let (_, headers, b) = get(&addr, "gzip");
        tg.push(t.elapsed().as_secs_f64() * 1e3);
        cg.push(cpu_ms(pid) - c);
        gzip_bytes = b.len();
        gzip_served = headers.contains("content-encoding: gzip");
    }
    let m = Measured {
        series,
        identity_bytes,
        gzip_bytes,
        gzip_served,
        identity_ms: median(ti),
        gzip_ms: median(tg),
        identity_cpu_ms: median(ci),
        gzip_cpu_ms: median(cg),
        rss_mib: status_kib(pid, "VmRSS") / 1024.0,
        peak_rss_mib: status_kib(pid, "VmHWM") / 1024.0,
        groups,
        slowest,
    };
    let _ = child.kill();
    let _ = child.wait();
    m
}

pub fn run(shape: &Shape, runs: &[Run]) {
    assert!(!runs.is_empty(), "no LABEL=BIN given");
    // A fresh private directory (creating it fails if anything is already there).
    let dir = std::env::temp_dir().join(format!(
        "hpcmon-slurm-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    let data = generate(shape);
    let bin = write_bin_dir(&data, &dir);
    println!(
        "scale: {} jobs ({:.1} MB squeue), {} users ({} with jobs), {} accounts, {} partitions, \
         {} nodes ({} sinfo lines), {} associations without jobs",
        shape.jobs,
        data.squeue.len() as f64 / 1e6,
        shape.users,
        data.users_with_jobs,
        shape.accounts,
        PARTITIONS.len(),
        shape.nodes,
        data.sinfo_lines,
        shape.idle_associations
    );
    let scrapes = 7;
    let results: Vec<Measured> = runs.iter().map(|r| measure(r, &bin, scrapes)).collect();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{:<16} {:>8} {:>11} {:>11} {:>6} {:>9} {:>7} {:>9} {:>7} {:>7} {:>8}",
        format!("median of {scrapes}"),
        "series",
        "identity B",
        "gzip B",
        "gz/id",
        "scrape ms",
        "CPU ms",
        "gzip ms",
        "CPU ms",
        "RSS MiB",
        "peak MiB"
    );
    for (r, m) in runs.iter().zip(&results) {
        println!(
            "{:<16} {:>8} {:>11} {:>11} {:>6} {:>9.1} {:>7.0} {:>9.1} {:>7.0} {:>7.1} {:>8.1}",
            r.label,
            m.series,
            m.identity_bytes,
            m.gzip_bytes,
            if m.gzip_served {
                format!("{:.3}", m.gzip_bytes as f64 / m.identity_bytes as f64)
            } else {
                "no gz".to_string()
            },
            m.identity_ms,
            m.identity_cpu_ms,
            m.gzip_ms,
            m.gzip_cpu_ms,
            m.rss_mib,
            m.peak_rss_mib
        );
    }
    let base = &results[0];
    for (r, m) in runs.iter().zip(&results).skip(1) {
        println!(
            "{} / {}: series {:.3}x, identity bytes {:.3}x, bytes on the wire with gzip {:.3}x, \
             scrape time {:.2}x (gzip {:.2}x), CPU per scrape {:.2}x (gzip {:.2}x), RSS {:.2}x, \
             peak RSS {:.2}x",
            r.label,
            runs[0].label,
            m.series as f64 / base.series as f64,
            m.identity_bytes as f64 / base.identity_bytes as f64,
            m.gzip_bytes as f64 / base.gzip_bytes as f64,
            m.identity_ms / base.identity_ms,
            m.gzip_ms / base.gzip_ms,
            m.identity_cpu_ms / base.identity_cpu_ms,
            m.gzip_cpu_ms / base.gzip_cpu_ms,
            m.rss_mib / base.rss_mib,
            m.peak_rss_mib / base.peak_rss_mib
        );
    }
    for (r, m) in runs.iter().zip(&results) {
        if !r.args.is_empty() {
            println!("  {} flags: {}", r.label, r.args.join(" "));
        }
        println!(
            "  {} series by group: {}",
            r.label,
            GROUPS
                .iter()
                .zip(&m.groups)
                .map(|((name, _), n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  {} slowest collectors (first scrape): {}",
            r.label,
            m.slowest
                .iter()
                .map(|(c, s)| format!("{c} {:.0} ms", s * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
