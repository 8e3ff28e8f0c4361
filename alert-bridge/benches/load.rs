//! Alert bridge under load: memory and matcher latency (loopback only, bounded).
//!
//! 1. **Memory**: 24 clients post one ~15 MB notification each at the same moment to the release
//!    binary (SQLite), retrying 503s after 200 ms (as Alertmanager retries, faster). Prints the
//!    bridge's peak RSS (VmHWM), the time until all 24 are stored and the 503s — with the
//!    default admission limits, and with the limits lifted (the reference, same run, same work).
//! 2. **Matchers**: a log of 500 000 episodes whose `job_id` label has 432 000 distinct values;
//!    an equality matcher (the reference), a regex with a literal prefix and one without, each
//!    alone (p50/p99 of 20) and four at once (5 rounds), with the peak RSS growth.
//!
//! `cargo bench -p hpcmon-alert-bridge --bench load -- [--skip-memory] [--skip-matchers]
//!  [--size-mb 15] [--clients 24] [--episodes 1000000] [--jobs 432000]`. See bench/alert-bridge-load.sh.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pct, Bridge, Store, BASE};
use serde_json::{json, Value};

struct Args {
    memory: bool,
    matchers: bool,
    size_mb: usize,
    clients: usize,
    episodes: i64,
    jobs: i64,
}

fn args() -> Args {
    let mut a = Args {
        memory: true,
        matchers: true,
        size_mb: 15,
        clients: 24,
        episodes: 1_000_000,
        jobs: 432_000,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--skip-memory" => a.memory = false,
            "--skip-matchers" => a.matchers = false,
            "--size-mb" => {
                a.size_mb = next.parse().expect("--size-mb N");
                i += 1;
            }
            "--clients" => {
                a.clients = next.parse().expect("--clients N");
                i += 1;
            }
            "--episodes" => {
                a.episodes = next.parse().expect("--episodes N");
                i += 1;
            }
            "--jobs" => {
                a.jobs = next.parse().expect("--jobs N");
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    a
}

/// One notification of about `mb` MB: unique alerts with a 7 kB description each.
fn big_body(client: usize, mb: usize) -> String {
    let per = 7_000;
    let n = mb * 1_000_000 / (per + 400);
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({"status": "firing",
                "labels": {"alertname": "LoadTest", "instance": format!("n{:04}:9100", i % 2000),
                    "severity": "warning", "client": client.to_string(), "job": "node"},
                "annotations": {"summary": format!("alert {client}-{i}"),
                    "description": "d".repeat(per)},
                "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": format!("{client:04}{i:012x}")})
        })
        .collect();
    json!({"version": "4", "receiver": "load", "status": "firing", "groupKey": "{}:{}",
        "externalURL": "http://127.0.0.1:9093", "truncatedAlerts": 0,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": alerts})
    .to_string()
}

struct MemoryRun {
    peak_rss: u64,
    base_rss: u64,
    seconds: f64,
    throttled: u64,
}

async fn memory_run(bodies: &Arc<Vec<String>>, extra: &[&str]) -> MemoryRun {
    let store = Store::new("sqlite", "memory");
    let bridge = Bridge::start(&store, extra).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base_rss = bridge.rss().0;
    let url = bridge.url("/webhook");
    let throttled = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Sample RSS while the load runs (VmHWM catches what sampling misses).
    let pid = bridge.pid();
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !done.load(Ordering::Relaxed) {
                let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak = peak.max(kb * 1024);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..bodies.len() {
        let (url, bodies, throttled) = (url.clone(), bodies.clone(), throttled.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for _ in 0..3000 {
                let r = c
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .timeout(Duration::from_secs(300))
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => return,
                    503 => {
                        throttled.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    s => panic!("HTTP {s}: {}", r.text().await.unwrap_or_default()),
                }
            }
            panic!("notification {i} never admitted");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let sampled = sampler.await.unwrap();
    let hwm = bridge.rss().1;
    MemoryRun {
        peak_rss: hwm.max(sampled),
        base_rss,
        seconds,
        throttled: throttled.load(Ordering::Relaxed),
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

async fn memory(a: &Args) {
    println!(
        "\n== memory: {} clients x one {} MB notification, SQLite, release binary ==",
        a.clients, a.size_mb
    );
    let bodies: Arc<Vec<String>> =
        Arc::new((0..a.clients).map(|c| big_body(c, a.size_mb)).collect());
    let size = bodies[0].len();
    println!(
        "body {:.1} MB, {} alerts each",
        size as f64 / 1e6,
        size / 7_400
    );
    println!(
        "{:<44} {:>10} {:>10} {:>9} {:>6}",
        "run", "peak MiB", "base MiB", "seconds", "503s"
    );
    let limited = memory_run(&bodies, &[]).await;
    let open = memory_run(
        &bodies,
        &[
            "--webhook.max-concurrent=1000",
            "--webhook.max-inflight-bytes=4294967296",
        ],
    )
    .await;
    for (name, r) in [
        ("default limits (8 requests, 24 MiB in flight)", &limited),
        ("limits lifted (reference)", &open),
    ] {
        println!(
            "{name:<44} {:>10.1} {:>10.1} {:>9.1} {:>6}",
            mib(r.peak_rss),
            mib(r.base_rss),
            r.seconds,
            r.throttled
        );
    }
    println!(
        "peak RSS with limits / without: {:.2}x; memory per admitted body byte: {:.1}",
        limited.peak_rss as f64 / open.peak_rss as f64,
        (limited.peak_rss - limited.base_rss) as f64 / (24u64 << 20) as f64
    );
}

async fn time_query(c: &reqwest::Client, url: &str) -> f64 {
    let t = Instant::now();
    let r = c.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let _: Value = r.json().await.unwrap();
    t.elapsed().as_secs_f64() * 1000.0
}

/// A matcher kind: its name and its matcher for a random number.
type MatcherKind = (&'static str, Box<dyn Fn(u64) -> String>);

async fn matchers(a: &Args) {
    let (n, jobs) = (a.episodes, a.jobs);
    println!(
        "\n== matchers: {n} episodes, job_id with {jobs} distinct values, SQLite, limit 100 =="
    );
    let store = Store::new("sqlite", "matchers");
    let t = Instant::now();
    common::generate(&store, n, jobs).await;
    println!("generated in {:.1} s", t.elapsed().as_secs_f64());
    let bridge = Bridge::start(&store, &[]).await;
    let c = reqwest::Client::new();
    let kinds: [MatcherKind; 3] = [
        (
            "job_id = (reference)",
            Box::new(move |r| format!("{{job_id=\"j{:06}\"}}", r % jobs as u64)),
        ),
        (
            "job_id =~ \"j0123.*\" (prefix)",
            Box::new(move |r| format!("{{job_id=~\"j{:04}.*\"}}", r % (jobs as u64 / 100).max(1))),
        ),
        (
            "job_id =~ \".*1234\" (no prefix)",
            Box::new(|r| format!("{{job_id=~\".*{:04}\"}}", r % 10_000)),
        ),
    ];
    println!(
        "{:<34} {:>9} {:>9} {:>12} {:>12} {:>14}",
        "matcher", "p50 ms", "p99 ms", "4x p50 ms", "4x p99 ms", "4x +RSS MiB"
    );
    let mut rng = 11u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (name, f) in kinds {
        let url = |r: u64| {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("match[]", &f(r))
                .append_pair("limit", "100")
                .finish();
            bridge.url(&format!("/api/v1/alerts?{q}"))
        };
        // The first query of a kind may build the bridge's value index for the label (SQLite,
        // no literal prefix): timed and printed apart.
        let first = time_query(&c, &url(next())).await;
        println!("{name:<34} first query {first:.1} ms");
        let mut alone = Vec::new();
        for _ in 0..20 {
            alone.push(time_query(&c, &url(next())).await);
        }
        let before = bridge.rss().0;
        let mut peak = before;
        let mut together = Vec::new();
        for _ in 0..5 {
            let urls: Vec<String> = (0..4).map(|_| url(next())).collect();
            let futs = urls.iter().map(|u| time_query(&c, u));
            let mut joined = Box::pin(futures_util::future::join_all(futs));
            let lat = loop {
                tokio::select! {
                    l = &mut joined => break l,
                    () = tokio::time::sleep(Duration::from_millis(5)) => {
                        peak = peak.max(bridge.rss().0);
                    }
                }
            };
            together.extend(lat);
        }
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>12.1} {:>12.1} {:>14.1}",
            pct(&mut alone, 0.5),
            pct(&mut alone, 0.99),
            pct(&mut together, 0.5),
            pct(&mut together, 0.99),
            mib(peak.saturating_sub(before))
        );
    }
    let _ = BASE;
}

#[tokio::main]
async fn main() {
    hpcmon_e2e::install_crypto_provider();
    let a = args();
    println!("alert bridge load benchmark (loopback; numbers only, no assertions on time)");
    if a.memory {
        memory(&a).await;
    }
    if a.matchers {
        matchers(&a).await;
    }
}
