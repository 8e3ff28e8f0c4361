//! Benchmark of the Slurm exporter (`bench/slurm.sh` runs it).
//!
//! `hpcmon-slurm-bench synthetic [JOBS] [NODES]`: generates squeue/sinfo outputs (100k jobs,
//! 10k nodes by default) and times parse + aggregate + encode, in CPU seconds, against a
//! reference measured in the same run: one pass that only splits the same text into fields.
//!
//! `hpcmon-slurm-bench scale JOBS USERS NODES LABEL=BIN [--flag ...]...`: exporter binaries
//! (e.g. before and after a change) over HTTP on generated outputs of a large cluster with
//! independent, skewed distributions: series, bytes with and without gzip, scrape time, RSS,
//! and each run's ratio to the first (see `bench/scale.rs`).
//!
//! `hpcmon-slurm-bench cluster EXPORTER_BIN`: against the cluster of `$SLURM_CONF`:
//! 1. the bare `squeue` + `sinfo` (the poller's exact commands) vs. one full exporter poll of
//!    the same commands plus parse, aggregate and encode: the exporter's overhead ratio;
//! 2. slurmctld RPCs per poll interval (from `sdiag`'s per-type counters) with 1 and with 4
//!    concurrent scrapers hammering a running exporter.

#[path = "bench/scale.rs"]
mod scale;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hpcmon_kit::command::{run_blocking, Cmd};
use hpcmon_kit::{Context, MetricSet};
use hpcmon_slurm_exporter::collector::{self, LabelFlags};
use hpcmon_slurm_exporter::poller::{Flags, Poller, Source};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn flags(poll: Duration) -> Flags {
    Flags {
        poll_interval: poll,
        sshare_interval: Duration::from_secs(300),
        command_timeout: Duration::from_secs(30),
        bin_dir: None,
    }
}

fn gen_squeue(n: usize) -> String {
    let states = [
        "RUNNING",
        "RUNNING",
        "PENDING",
        "PENDING",
        "PENDING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
    ];
    let reasons = [
        "Priority",
        "Resources",
        "Dependency",
        "JobHeldUser",
        "QOSMaxJobsPerUserLimit",
        "ReqNodeNotAvail, UnavailableNodes:c[001-004]",
    ];
    let mut s = String::with_capacity(n * 160);
    for i in 0..n {
        let state = states[i % states.len()];
        let reason = if state == "PENDING" {
            reasons[i % reasons.len()]
        } else {
            "None"
        };
        let (arr, task) = if i % 10 == 0 {
            (format!("{}", 1_000_000 + i / 1000), format!("{}", i % 1000))
        } else {
            (format!("{}", 2_000_000 + i), "N/A".into())
        };
        let gpus = if i % 7 == 0 { ",gres/gpu=2" } else { "" };
        let (nodelist, start) = if state == "PENDING" {
            ("", "N/A")
        } else {
            ("c[001-004]", "2026-11-22T20:36:04")
        };
        let tpn = if i % 7 == 0 { "gres:gpu:2" } else { "N/A" };
        s.push_str(&format!(
            "{arr}|{task}|user{u}|acct{a}|part{p}|{state}|{nodes}|{cpus}|cpu={cpus},mem={mem}G,node={nodes},billing={cpus}{gpus}|{tpn}|N/A|(null)|{id}|normal|{nodelist}|{start}|1-00:00:00|{reason}|job-{name}\n",
            id = 3_000_000 + i,
            name = i % 2000,
            u = i % 500,
            a = i % 50,
            p = i % 8,
            nodes = 1 + i % 4,
            cpus = 4 * (1 + i % 16),
            mem = 1 + i % 64,
        ));
    }
    s
}

fn gen_sinfo(n: usize) -> String {
    let states = [
        "allocated",
        "mixed",
        "idle",
        "allocated+drain",
        "down+not_responding",
        "idle+powered_down",
        "mixed+completing",
        "idle+maintenance+reserved",
    ];
    let mut s = String::with_capacity(n * 120);
    for i in 0..n {
        let gres = if i % 10 == 0 {
            ("gpu:a100:8(S:0-1)", "gpu:a100:4(IDX:0-3)")
        } else {
            ("(null)", "gpu:0")
        };
        let reason = if states[i % states.len()].contains("drain")
            || states[i % states.len()].starts_with("down")
        {
            "disk errors [root@2026-11-21T10:00:00]"
        } else {
            "none"
        };
        s.push_str(&format!(
            "c{i:05}|part{p}{def}|{st}|32/32/0/64|256000|128000|100000|12.50|{g}|{gu}|ib,avx512|{reason}\n",
            p = i % 8,
            def = if i % 8 == 0 { "*" } else { "" },
            st = states[i % states.len()],
            g = gres.0,
            gu = gres.1,
        ));
    }
    s
}

fn render(p: &Poller, names: &[&str]) -> String {
    let mut set = MetricSet::new();
    for n in names {
        let cfg = collector::Config::new(p.clone(), LabelFlags::default());
        let c = collector::build(n, &cfg).unwrap();
        let _ = c.collect(&Context::with_timeout(Duration::from_secs(60)), &mut set);
    }
    set.normalize();
    hpcmon_kit::metrics::encode_text(&set)
}

fn synthetic(jobs: usize, nodes: usize) {
    let sq = gen_squeue(jobs);
    let si = gen_sinfo(nodes);
    println!(
        "synthetic: {jobs} jobs ({:.1} MB squeue output), {nodes} nodes ({:.1} MB sinfo output)",
        sq.len() as f64 / 1e6,
        si.len() as f64 / 1e6
    );
    let reps = 5;
    // Reference: split every line into its fields, nothing else.
    let c0 = cpu_seconds();
    let mut fields = 0usize;
    for _ in 0..reps {
        for l in sq.lines().chain(si.lines()) {
            fields += l.split('|').count();
        }
    }
    let reference = (cpu_seconds() - c0) / reps as f64;
    std::hint::black_box(fields);

    let mut parse_jobs_s = 0.0;
    let mut parse_s = 0.0;
    let mut total_s = 0.0;
    let mut bytes = 0;
    let mut series = 0;
    for _ in 0..reps {
        let p = Poller::new(
            flags(Duration::from_secs(30)),
            vec![Source::Squeue, Source::Sinfo],
        );
        let c0 = cpu_seconds();
        p.ingest(Source::Squeue, Ok(sq.clone()), Duration::ZERO);
        parse_jobs_s += cpu_seconds() - c0;
        p.ingest(Source::Sinfo, Ok(si.clone()), Duration::ZERO);
        p.finish_poll();
        let c1 = cpu_seconds();
        let text = render(&p, &["jobs", "nodes", "partitions"]);
        let c2 = cpu_seconds();
        parse_s += c1 - c0;
        total_s += c2 - c0;
        bytes = text.len();
        series = text.lines().filter(|l| !l.starts_with('#')).count();
    }
    let parse_s = parse_s / reps as f64;
    let parse_jobs_s = parse_jobs_s / reps as f64;
    let total_s = total_s / reps as f64;
    println!("  reference (split into fields only): {reference:.4} s CPU");
    println!("  parse squeue ({jobs} jobs):        {parse_jobs_s:.4} s CPU");
    println!("  parse squeue+sinfo:                 {parse_s:.4} s CPU");
    println!("  parse + aggregate + encode:         {total_s:.4} s CPU  ({series} series, {:.1} MB text)", bytes as f64 / 1e6);
    println!(
        "  ratio to reference:                 {:.1}x",
        total_s / reference
    );
}

fn sdiag_rpcs(conf_cmd: &Cmd) -> BTreeMap<String, f64> {
    let out = run_blocking(conf_cmd, Duration::from_secs(10)).expect("sdiag");
    let d = hpcmon_slurm_exporter::parse::sdiag::parse(&String::from_utf8_lossy(&out.stdout));
    d.rpc_by_type
        .into_iter()
        .map(|r| (r.name, r.count))
        .collect()
}

fn scrape_loop(url: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> usize {
    use std::io::{Read, Write};
    let mut n = 0;
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            if buf.starts_with(b"HTTP/1.1 200") {
                n += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    n
}

fn cluster(exporter: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = Poller::new(
        flags(Duration::from_secs(30)),
        vec![Source::Squeue, Source::Sinfo],
    );
    let sq = p.command(Source::Squeue);
    let si = p.command(Source::Sinfo);
    let jobs = String::from_utf8_lossy(&run_blocking(&sq, Duration::from_secs(30)).unwrap().stdout)
        .lines()
        .count();
    println!("cluster: {jobs} jobs in squeue");
    let reps = 10;
    // 1. bare commands vs a full poll + render, alternated to share conditions.
    let (mut bare, mut full) = (0.0, 0.0);
    for _ in 0..reps {
        let t = Instant::now();
        run_blocking(&sq, Duration::from_secs(30)).unwrap();
        run_blocking(&si, Duration::from_secs(30)).unwrap();
        bare += t.elapsed().as_secs_f64();
        let t = Instant::now();
        // the poller runs them concurrently; run sequentially here for a like-for-like ratio
        for s in [Source::Squeue, Source::Sinfo] {
            let out = run_blocking(&p.command(s), Duration::from_secs(30)).unwrap();
            p.ingest(
                s,
                Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
                Duration::ZERO,
            );
        }
        p.finish_poll();
        let text = render(&p, &["jobs", "nodes", "partitions"]);
        std::hint::black_box(text);
        full += t.elapsed().as_secs_f64();
    }
    let (bare, full) = (bare / reps as f64, full / reps as f64);
    println!(
        "  bare squeue + sinfo:            {:.1} ms wall",
        bare * 1e3
    );
    println!(
        "  exporter poll (same + parse/aggregate/encode): {:.1} ms wall",
        full * 1e3
    );
    println!(
        "  exporter overhead: {:+.1}% (ratio {:.3})",
        (full / bare - 1.0) * 100.0,
        full / bare
    );
    drop(rt);

    // 2. RPCs per poll interval with 1 and 4 scrapers.
    let sdiag = Cmd::new("sdiag");
    let interval = Duration::from_secs(5);
    let intervals = 4;
    for scrapers in [1usize, 4] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--slurm.poll-interval={}s", interval.as_secs()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("exporter");
        std::thread::sleep(Duration::from_secs(2)); // first poll (incl. the slow commands) done
        let before = sdiag_rpcs(&sdiag);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = format!("http://127.0.0.1:{port}/metrics");
        let handles: Vec<_> = (0..scrapers)
            .map(|_| {
                let (u, s) = (url.clone(), stop.clone());
                std::thread::spawn(move || scrape_loop(u, s))
            })
            .collect();
        std::thread::sleep(interval * intervals);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let scrapes: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let after = sdiag_rpcs(&sdiag);
        let _ = child.kill();
        let _ = child.wait();
        let mut delta: BTreeMap<&str, f64> = BTreeMap::new();
        for (k, v) in &after {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            if d > 0.0 {
                delta.insert(k, d);
            }
        }
        // our own sdiag call ("after") is one REQUEST_STATS_INFO
        if let Some(v) = delta.get_mut("REQUEST_STATS_INFO") {
            *v -= 1.0;
        }
        let total: f64 = delta.values().sum();
        println!(
            "  {scrapers} scraper(s): {scrapes} scrapes in {intervals} poll intervals of {}s -> {:.1} slurmctld RPCs per interval ({})",
            interval.as_secs(),
            total / intervals as f64,
            delta.iter().map(|(k, v)| format!("{k} {:.1}", v / intervals as f64)).collect::<Vec<_>>().join(", ")
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("synthetic") => {
            let jobs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let nodes = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            synthetic(jobs, nodes)
        }
        Some("cluster") => cluster(args.get(2).expect("cluster EXPORTER_BIN")),
        Some("scale") => {
            let n = |i: usize| -> usize {
                args.get(i)
                    .and_then(|s| s.parse().ok())
                    .expect("scale JOBS USERS NODES LABEL=BIN...")
            };
            let users = n(3);
            let shape = scale::Shape {
                jobs: n(2),
                users,
                nodes: n(4),
                accounts: (users / 10).max(1),
                idle_associations: users * 2 / 3,
            };
            scale::run(&shape, &scale::parse_runs(&args[5..]))
        }
        _ => {
            eprintln!("usage: hpcmon-slurm-bench synthetic [JOBS] [NODES] | cluster EXPORTER_BIN | scale JOBS USERS NODES LABEL=BIN [--flag ...]...");
            std::process::exit(2);
        }
    }
}
