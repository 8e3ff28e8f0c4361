//! Benchmark: hpcmon-node-exporter against Debian's prometheus-node-exporter.
//!
//! Built and run by `bench/node.sh [N]` (a single-file program compiled with `rustc`, std
//! only, so it needs no Cargo workspace member). Both exporters run on 127.0.0.1 with the
//! same collectors (node_exporter's default set, `--collector.disable-defaults` plus one
//! `--collector.NAME` each on both sides; a collector that succeeds on one side only is left
//! out and listed), get a few warm-up scrapes, then N scrapes each, interleaved (ABBA
//! order; with a third, older build of ours, the order reverses every other round). Printed per scrape: CPU time of each exporter process (utime+stime deltas
//! from `/proc/PID/stat`, and the same from the process CPU clock, `clock_getcpuclockid`,
//! which has nanosecond resolution), wall time seen by the client, peak RSS (`VmHWM`), the
//! ratios ours/theirs next to the targets, sample counts of the shared families, each
//! collector's mean `node_scrape_collector_duration_seconds`, and "the floor": reading the
//! same files (the ones node_exporter opened during one scrape, captured with `strace`)
//! with nothing else, N times, in this process.
//!
//! Usage: node-bench N OURS_BIN THEIRS_BIN [OURS_BEFORE_BIN] — timing only, no assertions.

#[allow(dead_code)]
#[path = "../exporters/node/tests/compat_expfmt/mod.rs"]
mod expfmt;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Collectors a distribution's build turns on although node_exporter 1.5 itself leaves them
/// off: Debian's package enables `systemd` by default (its `--help` says "default: enabled";
/// upstream's README lists systemd among the collectors disabled by default). The default set
/// is upstream's, so these are left out unless named in BENCH_COLLECTORS.
const DISTRO_DEFAULTS: &[&str] = &["systemd"];

const CPU_TARGET: f64 = 0.25;
const RSS_TARGET: f64 = 0.5;

// ---------------------------------------------------------------------------------------
// libc bits (std only: declared by hand; glibc x86_64/aarch64 layouts).

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_getcpuclockid(pid: i32, clock_id: *mut i32) -> i32;
    fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
    fn statfs(path: *const std::ffi::c_char, buf: *mut u64) -> i32;
    fn sysconf(name: i32) -> i64;
}

const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const SC_CLK_TCK: i32 = 2;

/// CPU time (ns) of process `pid` (0: this process) from its process CPU clock.
fn cpu_clock_ns(pid: u32) -> Option<u128> {
    let mut id = CLOCK_PROCESS_CPUTIME_ID;
    if pid != 0 {
        // SAFETY: plain libc call with a valid out pointer.
        if unsafe { clock_getcpuclockid(pid as i32, &mut id) } != 0 {
            return None;
        }
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain libc call with a valid out pointer.
    if unsafe { clock_gettime(id, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { sysconf(SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime+stime of `pid` in clock ticks, from /proc/PID/stat.
fn stat_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12) // fields 14 and 15
}

/// A `/proc/PID/status` value in kB.
fn status_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| {
            v.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------
// Processes and HTTP.

struct Proc {
    child: Child,
    port: u16,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the benchmark's scratch directory, also when it panics.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn start(name: &'static str, bin: &str, args: &[String], log: &Path) -> Result<Proc, String> {
    let port = free_port();
    let logf = File::create(log).map_err(|e| e.to_string())?;
    // As a service runs: no backtrace capture on every error (a collector without its
    // hardware fails on every scrape), whatever the shell running the benchmark has set.
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(|e| e.to_string())?)
        .stderr(logf)
        .spawn()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    let mut p = Proc { child, port, name };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{name} exited ({st}): {}", log.trim()));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(format!("{name} not listening after 10s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One scrape: (body, client-side wall time).
fn scrape(port: u16) -> Result<(String, Duration), String> {
    let t0 = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::with_capacity(256 * 1024);
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let wall = t0.elapsed();
    let raw = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!(
            "bad response: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked response (not expected for HTTP/1.0)".into());
    }
    Ok((body.to_string(), wall))
}

/// The collectors an exporter's `--help` offers ("Enable the NAME collector ... (default:
/// enabled|disabled)"), with whether each is on by default.
fn collectors_in_help(bin: &str) -> BTreeMap<String, bool> {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run --help");
    let help =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut names = BTreeMap::new();
    for part in help.split("Enable the ").skip(1) {
        let Some(name) = part.split(" collector").next() else {
            continue;
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let on = part
            .split("(default: ")
            .nth(1)
            .is_some_and(|d| d.starts_with("enabled"));
        names.insert(name.to_string(), on);
    }
    names
}

// ---------------------------------------------------------------------------------------
// The floor.

/// Paths a process opens (and statfs's) while it serves one scrape, captured with strace.
fn traced_paths(p: &Proc, dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let out = dir.join(format!("strace-{}.txt", p.name));
    let mut st = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,open,statfs", "-o"])
        .arg(&out)
        .arg("-p")
        .arg(p.child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("strace: {e} (install it: scripts/install-deps.sh bench)"))?;
    std::thread::sleep(Duration::from_millis(700));
    let res = scrape(p.port);
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(st.id().to_string())
        .status();
    let _ = st.wait();
    res?;
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let mut files = BTreeSet::new();
    let mut mounts = BTreeSet::new();
    for line in text.lines() {
        let Some(q0) = line.find('"') else { continue };
        let Some(len) = line[q0 + 1..].find('"') else {
            continue;
        };
        let path = &line[q0 + 1..q0 + 1 + len];
        if line.contains("= -1 ") || path.contains("\\") {
            continue;
        }
        if line.contains("statfs(") {
            mounts.insert(PathBuf::from(path));
        } else if line.contains("open")
            && !path.starts_with("/proc/self")
            && !path.contains("strace")
        {
            files.insert(PathBuf::from(path));
        }
    }
    Ok((files.into_iter().collect(), mounts.into_iter().collect()))
}

/// Reads every file (to EOF; directories are listed) and statfs's every mount, `n` times.
/// `naive`: each file with `std::fs::read_to_string` (a fresh buffer, an `fstat`, reads that
/// start at 32 bytes and double), else `read_to_end` into one reused 1 MiB buffer (one `read`
/// per file plus the one that sees EOF). Returns (wall, cpu) per iteration and the number of
/// paths that could be read.
fn floor(
    files: &[PathBuf],
    mounts: &[PathBuf],
    n: usize,
    naive: bool,
) -> (Duration, Duration, usize) {
    let readable: Vec<(&PathBuf, bool)> = files
        .iter()
        .filter(|p| {
            p.is_dir()
                || File::open(p)
                    .and_then(|mut f| f.read(&mut [0u8; 1]))
                    .is_ok()
        })
        .map(|p| (p, p.is_dir()))
        .collect();
    let cmounts: Vec<std::ffi::CString> = mounts
        .iter()
        .filter_map(|m| std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).ok())
        .collect();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut sfs = [0u64; 32];
    let c0 = cpu_clock_ns(0).unwrap_or(0);
    let t0 = Instant::now();
    for _ in 0..n {
        for (p, dir) in &readable {
            if *dir {
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        std::hint::black_box(e.file_name());
                    }
                }
            } else if naive {
                let _ = std::hint::black_box(std::fs::read_to_string(p));
            } else if let Ok(mut f) = File::open(p) {
                buf.clear();
                let _ = f.read_to_end(&mut buf);
                std::hint::black_box(&buf);
            }
        }
        for m in &cmounts {
            // SAFETY: valid NUL-terminated path and a 256-byte buffer (struct statfs is 120).
            unsafe { statfs(m.as_ptr(), sfs.as_mut_ptr()) };
        }
    }
    let wall = t0.elapsed() / n as u32;
    let cpu = Duration::from_nanos(((cpu_clock_ns(0).unwrap_or(0) - c0) / n as u128) as u64);
    (wall, cpu, readable.len() + cmounts.len())
}

// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Side {
    walls: Vec<Duration>,
    cpu_ticks: u64,
    cpu_ns: u128,
    collector_secs: BTreeMap<String, f64>,
    last: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Scrapes every process `n` times, interleaved (the order reverses every other round, ABBA
/// for two), after 10 warm-up scrapes each; CPU deltas of each process over the loop.
fn interleaved(procs: &[&Proc], n: usize) -> Vec<Side> {
    for _ in 0..10 {
        for p in procs {
            scrape(p.port).unwrap_or_else(|e| panic!("{} warm-up scrape: {e}", p.name));
        }
    }
    let mut sides: Vec<Side> = procs.iter().map(|_| Side::default()).collect();
    let t0: Vec<(u64, u128)> = procs
        .iter()
        .map(|p| {
            (
                stat_ticks(p.child.id()),
                cpu_clock_ns(p.child.id()).unwrap_or(0),
            )
        })
        .collect();
    for i in 0..n {
        let mut order: Vec<usize> = (0..procs.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let (body, wall) = scrape(procs[k].port)
                .unwrap_or_else(|e| panic!("{} scrape {i}: {e}", procs[k].name));
            sides[k].walls.push(wall);
            sides[k].last = body;
        }
    }
    for (k, p) in procs.iter().enumerate() {
        sides[k].cpu_ticks = stat_ticks(p.child.id()) - t0[k].0;
        sides[k].cpu_ns = cpu_clock_ns(p.child.id())
            .unwrap_or(0)
            .saturating_sub(t0[k].1);
    }
    sides
}

/// CPU ms per scrape of each exporter running only `collectors` (both sides).
fn cpu_per_scrape(
    bins: [&str; 2],
    bases: [&[String]; 2],
    collectors: &[&str],
    n: usize,
    dir: &Path,
) -> [f64; 2] {
    let enable: Vec<String> = collectors
        .iter()
        .map(|c| format!("--collector.{c}"))
        .collect();
    let ours = start(
        "ours",
        bins[0],
        &[bases[0], &enable].concat(),
        &dir.join("pc-ours.log"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let theirs = start(
        "theirs",
        bins[1],
        &[bases[1], &enable].concat(),
        &dir.join("pc-theirs.log"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let sides = interleaved(&[&ours, &theirs], n);
    [0, 1].map(|k| sides[k].cpu_ns as f64 / 1e6 / n as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 5 {
        eprintln!("usage: {} N OURS_BIN THEIRS_BIN [OURS_BEFORE_BIN]", args[0]);
        std::process::exit(2);
    }
    let n: usize = args[1].parse().expect("N must be a number");
    let (ours_bin, theirs_bin) = (&args[2], &args[3]);
    let before_bin = args.get(4).filter(|b| !b.is_empty());
    let dir = std::env::temp_dir().join(format!("hpcmon-node-bench-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());
    std::fs::create_dir_all(dir.join("textfile")).unwrap();
    std::fs::write(
        dir.join("textfile/bench.prom"),
        "# HELP bench_info A textfile metric.\n# TYPE bench_info gauge\nbench_info 1\n",
    )
    .unwrap();
    let textfile_flag = format!(
        "--collector.textfile.directory={}",
        dir.join("textfile").display()
    );
    let base = vec!["--collector.disable-defaults".to_string(), textfile_flag];

    // The set: every collector node_exporter enables by default, on both sides (each side
    // started with --collector.disable-defaults plus the same --collector.NAME list, so that
    // our own extras, such as slurm_job, are off). BENCH_COLLECTORS="a b c" overrides it.
    let theirs_have = collectors_in_help(theirs_bin);
    let ours_have = collectors_in_help(ours_bin);
    let wanted: Vec<String> = match std::env::var("BENCH_COLLECTORS") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(String::from).collect(),
        _ => theirs_have
            .iter()
            .filter(|(c, on)| **on && !DISTRO_DEFAULTS.contains(&c.as_str()))
            .map(|(c, _)| c.clone())
            .collect(),
    };
    // With an older build in the loop, the set is what all three have (same work for each).
    let before_have = before_bin.map(|b| collectors_in_help(b));
    let mut wanted = wanted;
    let mut not_in_before = Vec::new();
    if let Some(bh) = &before_have {
        wanted.retain(|c| {
            let keep = bh.contains_key(c) || !ours_have.contains_key(c);
            if !keep {
                not_in_before.push(c.clone());
            }
            keep
        });
    }
    let missing: Vec<&String> = wanted.iter().filter(|c| !ours_have.contains_key(*c)).collect();
    let mut collectors = Vec::new();
    let mut unequal = Vec::new();
    // BENCH_KEEP_UNEQUAL=1 keeps them in the set (every wanted collector enabled on both, as
    // an admin's unit file would; the work then differs where one side fails early).
    let keep_unequal = std::env::var("BENCH_KEEP_UNEQUAL").is_ok_and(|v| v == "1");
    for c in wanted.iter().filter(|c| ours_have.contains_key(*c) && theirs_have.contains_key(*c)) {
        // Both sides must do the same work: a collector that succeeds on one side and fails
        // on the other (no hardware here for ours, say) is left out and listed.
        let ok = |bin: &str, name: &'static str| {
            let mut a = base.clone();
            a.push(format!("--collector.{c}"));
            start(name, bin, &a, &dir.join(format!("probe-{name}.log")))
                .and_then(|p| scrape(p.port))
                .map(|(body, _)| {
                    body.contains(&format!(
                        "node_scrape_collector_success{{collector=\"{c}\"}} 1"
                    ))
                })
                .unwrap_or(false)
        };
        let (o, t) = (ok(ours_bin, "ours"), ok(theirs_bin, "theirs"));
        if o == t || keep_unequal {
            collectors.push(c.clone());
        }
        if o != t {
            unequal.push(format!("{c} (ours {}, theirs {})", if o { "ok" } else { "fails" }, if t { "ok" } else { "fails" }));
        }
    }
    let enable: Vec<String> = collectors
        .iter()
        .map(|c| format!("--collector.{c}"))
        .collect();
    let args_all = [base.clone(), enable.clone()].concat();
    let ours = start("ours", ours_bin, &args_all, &dir.join("ours.log")).unwrap_or_else(|e| panic!("{e}"));
    let theirs =
        start("theirs", theirs_bin, &args_all, &dir.join("theirs.log")).unwrap_or_else(|e| panic!("{e}"));
    let before = before_bin.map(|b| {
        start("before", b, &args_all, &dir.join("before.log")).unwrap_or_else(|e| panic!("{e}"))
    });

    println!("hpcmon node exporter benchmark: {n} scrapes of each exporter, interleaved, on 127.0.0.1");
    println!("ours:   {ours_bin} (pid {})", ours.child.id());
    println!("theirs: {theirs_bin} (pid {})", theirs.child.id());
    if let (Some(b), Some(p)) = (before_bin, &before) {
        println!("before: {b} (pid {})", p.child.id());
    }
    println!(
        "collectors ({}): {}",
        collectors.len(),
        collectors.join(" ")
    );
    if std::env::var("BENCH_COLLECTORS").map_or(true, |l| l.trim().is_empty()) {
        println!(
            "not in the set: {} (on by default in this distribution's node_exporter build, off \
             in node_exporter 1.5 itself; add it with BENCH_COLLECTORS)",
            DISTRO_DEFAULTS.join(" ")
        );
    }
    if !missing.is_empty() {
        println!(
            "not compared: node_exporter default collectors that ours lacks ({}): {}",
            missing.len(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        );
    }
    if !not_in_before.is_empty() {
        println!(
            "not compared: collectors the before build lacks ({}): {}",
            not_in_before.len(),
            not_in_before.join(" ")
        );
    }
    if !unequal.is_empty() {
        let what = if keep_unequal {
            "in the set although the work is unequal (BENCH_KEEP_UNEQUAL=1)"
        } else {
            "not compared: unequal work here"
        };
        println!("{what}: {}", unequal.join(", "));
    }

    // File lists for the floor (traced before the timed loop, then warm up again).
    let traced_theirs = traced_paths(&theirs, &dir);
    let traced_ours = traced_paths(&ours, &dir);
    let mut procs: Vec<&Proc> = vec![&ours, &theirs];
    if let Some(b) = &before {
        procs.push(b);
    }
    let mut sides = interleaved(&procs, n);
    // Per-collector durations: scrape again (outside the timed loop) and average 20 of them.
    for (k, p) in procs.iter().enumerate() {
        for _ in 0..20 {
            let (body, _) = scrape(p.port).expect("scrape");
            let e = expfmt::parse(&body).expect("parse");
            for s in e
                .samples
                .iter()
                .filter(|s| s.name == "node_scrape_collector_duration_seconds")
            {
                if let Some((_, c)) = s.labels.iter().find(|(k, _)| k == "collector") {
                    *sides[k].collector_secs.entry(c.clone()).or_default() += s.value / 20.0;
                }
            }
        }
    }
    let hwm: Vec<f64> = procs
        .iter()
        .map(|p| status_kb(p.child.id(), "VmHWM") / 1024.0)
        .collect();
    let rss: Vec<f64> = procs
        .iter()
        .map(|p| status_kb(p.child.id(), "VmRSS") / 1024.0)
        .collect();
    let tck = clk_tck();

    let cpu_stat: Vec<f64> = sides
        .iter()
        .map(|s| s.cpu_ticks as f64 / tck / n as f64 * 1e3)
        .collect();
    let cpu_clk: Vec<f64> = sides
        .iter()
        .map(|s| s.cpu_ns as f64 / 1e6 / n as f64)
        .collect();
    let stats: Vec<(f64, f64, f64)> = sides
        .iter()
        .map(|s| {
            let mut w: Vec<f64> = s.walls.iter().map(|d| ms(*d)).collect();
            w.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let mean = w.iter().sum::<f64>() / w.len() as f64;
            (
                w[w.len() / 2],
                mean,
                w[(w.len() * 99 / 100).min(w.len() - 1)],
            )
        })
        .collect();
    let verdict = |ratio: f64, target: f64| {
        if ratio <= target {
            "meets target"
        } else {
            "MISSES target"
        }
    };
    let has_before = before.is_some();
    println!();
    print!(
        "{:<40} {:>10} {:>10} {:>12}",
        "per scrape", "ours", "theirs", "ours/theirs"
    );
    if has_before {
        print!(" {:>10} {:>13}", "before", "before/theirs");
    }
    println!("  target");
    let row = |label: &str, v: &[f64], prec: usize, target: Option<f64>| {
        let r = v[0] / v[1];
        print!("{label:<40} {:>10.prec$} {:>10.prec$} {r:>12.3}", v[0], v[1]);
        if has_before {
            print!(" {:>10.prec$} {:>13.3}", v[2], v[2] / v[1]);
        }
        match target {
            Some(t) => println!("  <= {t} ({})", verdict(r, t)),
            None => println!(),
        }
    };
    row("CPU ms, utime+stime /proc/PID/stat", &cpu_stat, 3, Some(CPU_TARGET));
    row("CPU ms, process CPU clock (ns res.)", &cpu_clk, 3, Some(CPU_TARGET));
    row("wall ms, median (client side)", &stats.iter().map(|s| s.0).collect::<Vec<_>>(), 3, None);
    row("wall ms, mean", &stats.iter().map(|s| s.1).collect::<Vec<_>>(), 3, None);
    row("wall ms, p99", &stats.iter().map(|s| s.2).collect::<Vec<_>>(), 3, None);
    row("peak RSS MiB (VmHWM)", &hwm, 1, Some(RSS_TARGET));
    row("RSS MiB now (VmRSS)", &rss, 1, None);
    println!(
        "(/proc/PID/stat counts in ticks of {:.0} ms: ±{:.3} ms per scrape at N={n})",
        1e3 / tck,
        1e3 / tck / n as f64
    );

    // Sample counts of the shared families.
    let eo = expfmt::parse(&sides[0].last).expect("parse ours");
    let et = expfmt::parse(&sides[1].last).expect("parse theirs");
    let exporter_family = |f: &str| {
        f.starts_with("go_")
            || f.starts_with("process_")
            || f.starts_with("promhttp_")
            || f == "node_exporter_build_info"
    };
    let mut same = 0;
    let mut differ = Vec::new();
    for (name, t) in et.families.iter().filter(|(n, _)| !exporter_family(n)) {
        if let Some(o) = eo.families.get(name) {
            if o.samples == t.samples {
                same += 1;
            } else {
                differ.push(format!("{name}: ours {} theirs {}", o.samples, t.samples));
            }
        }
    }
    let only = |a: &expfmt::Exposition, b: &expfmt::Exposition| -> Vec<String> {
        a.families
            .keys()
            .filter(|n| !exporter_family(n) && !b.families.contains_key(*n))
            .cloned()
            .collect()
    };
    println!();
    println!(
        "samples: {} in ours, {} in theirs; {} shared families (without go_/process_/promhttp_/build_info): {} with identical sample counts, {} differ",
        eo.samples.len(),
        et.samples.len(),
        same + differ.len(),
        same,
        differ.len()
    );
    for d in &differ {
        println!("  differs: {d}");
    }
    let (oo, to) = (only(&eo, &et), only(&et, &eo));
    if !oo.is_empty() {
        println!("  families only in ours: {}", oo.join(" "));
    }
    if !to.is_empty() {
        println!("  families only in theirs: {}", to.join(" "));
    }

    println!();
    println!("per collector, mean node_scrape_collector_duration_seconds over 20 scrapes (ms):");
    print!(
        "  {:<17} {:>9} {:>9} {:>8}",
        "collector", "ours", "theirs", "ratio"
    );
    if has_before {
        print!(" {:>9}", "before");
    }
    println!();
    let mut rows: Vec<(&String, f64, f64, f64)> = sides[1]
        .collector_secs
        .iter()
        .map(|(c, t)| {
            let get = |k: usize| {
                sides
                    .get(k)
                    .and_then(|s| s.collector_secs.get(c).copied())
                    .unwrap_or(f64::NAN)
            };
            (c, get(0), *t, get(2))
        })
        .collect();
    rows.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    for (c, o, t, b) in rows {
        print!("  {c:<17} {:>9.3} {:>9.3} {:>8.3}", o * 1e3, t * 1e3, o / t);
        if has_before {
            print!(" {:>9.3}", b * 1e3);
        }
        println!();
    }

    println!();
    for (who, traced, naive) in [
        ("node_exporter's", &traced_theirs, false),
        ("ours's", &traced_ours, false),
        ("ours's, read_to_string", &traced_ours, true),
    ] {
        match traced {
            Ok((files, mounts)) => {
                let (wall, cpu, count) = floor(files, mounts, n, naive);
                println!(
                    "floor ({who} files): read {} files/dirs + statfs {} mounts ({} usable) {n} times in one process: {:.3} ms wall, {:.3} ms CPU per iteration",
                    files.len(),
                    mounts.len(),
                    count,
                    ms(wall),
                    ms(cpu)
                );
            }
            Err(e) => println!("floor ({who} files): not measured: {e}"),
        }
    }
    println!("(file lists: what each exporter opened/statfs'd during one scrape, traced with strace -f; /proc/self excluded)");
    drop(ours);
    drop(theirs);
    drop(before);

    // Per-collector CPU: each collector alone, minus both exporters' cost with none.
    let m: usize = std::env::var("BENCH_PER_COLLECTOR_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if m > 0 {
        let bins = [ours_bin.as_str(), theirs_bin.as_str()];
        let bases = [base.as_slice(), base.as_slice()];
        let none = cpu_per_scrape(bins, bases, &[], m, &dir);
        println!();
        println!(
            "per collector: CPU ms per scrape with only that collector enabled, minus the exporter with none \
             ({m} interleaved scrapes each; BENCH_PER_COLLECTOR_N=0 skips)"
        );
        println!(
            "  {:<17} {:>9} {:>9} {:>8}",
            "collector", "ours", "theirs", "ratio"
        );
        println!(
            "  {:<17} {:>9.3} {:>9.3} {:>8.3}",
            "(none)",
            none[0],
            none[1],
            none[0] / none[1]
        );
        let mut rows = Vec::new();
        for c in &collectors {
            let v = cpu_per_scrape(bins, bases, &[c.as_str()], m, &dir);
            rows.push((c.clone(), v[0] - none[0], v[1] - none[1]));
        }
        rows.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        let (mut so, mut st) = (0.0, 0.0);
        for (c, o, t) in &rows {
            so += o;
            st += t;
            println!("  {c:<17} {o:>9.3} {t:>9.3} {:>8.3}", o / t);
        }
        println!("  {:<17} {so:>9.3} {st:>9.3} {:>8.3}", "(sum)", so / st);
    }
}
