//! Alert bridge benchmark (loopback only, bounded in count and time).
//!
//! 1. **Ingest**: a load generator posts webhook notifications of 1, 10 and 100 alerts
//!    (mixed: 60 % new episodes, 30 % repeats, 10 % resolves) from 8 concurrent clients to the
//!    real bridge binary; prints alerts stored per second and p50/p99 request latency.
//! 2. **Floor**: the same notifications written by a bare loop of prepared single-row
//!    INSERT/UPDATE statements, one transaction per notification, no HTTP, no JSON; the
//!    bridge's rate is printed as a ratio of it.
//! 3. **Query**: a log of N (default 1M) episodes is generated in SQL (with a `job_id` label of
//!    400 000 distinct values), then the bridge answers label-matcher + time-range queries;
//!    prints p50/p99.
//!
//! `cargo bench -p hpcmon-alert-bridge --bench ingest -- [--backend sqlite|postgres|mariadb|both|all]
//!  [--seconds S] [--episodes N] [--jobs N]` (PostgreSQL via scripts/postgres.sh, MariaDB via
//! alert-bridge/scripts/mariadb.sh). See bench/alert-bridge.sh.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pct, Bridge, Store, BASE};
use hpcmon_alert_bridge::payload::{Alert, LabelSet, Status};
use hpcmon_alert_bridge::storage::keys::{pair_hash, value_prefix};
use hpcmon_alert_bridge::storage::Dialect;
use serde_json::json;
use sqlx::Connection as _;

const CLIENTS: usize = 8;

struct Args {
    backends: Vec<String>,
    seconds: u64,
    episodes: i64,
    jobs: i64,
    max_alerts: usize,
    sizes: Vec<usize>,
    /// Extra flags for the bridge under test (`--bridge-arg F`, repeatable).
    bridge_args: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        backends: vec!["sqlite".into(), "postgres".into()],
        seconds: 8,
        episodes: 1_000_000,
        jobs: 400_000,
        max_alerts: 200_000,
        sizes: vec![1, 10, 100],
        bridge_args: Vec::new(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--backend" => {
                a.backends = match next.as_str() {
                    "both" => vec!["sqlite".into(), "postgres".into()],
                    "all" => vec!["sqlite".into(), "postgres".into(), "mariadb".into()],
                    _ => vec![next],
                };
                i += 1;
            }
            "--seconds" => {
                a.seconds = next.parse().expect("--seconds N");
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
            "--sizes" => {
                a.sizes = next
                    .split(',')
                    .map(|s| s.parse().expect("--sizes N[,N...]"))
                    .collect();
                i += 1;
            }
            "--bridge-arg" => {
                a.bridge_args.push(next);
                i += 1;
            }
            "--max-alerts" => {
                a.max_alerts = next.parse().expect("--max-alerts N");
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

/// Deterministic workload: a sequence of notifications of `size` alerts each.
struct Workload {
    seq: u64,
    firing: Vec<Alert>,
    rng: u64,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Self {
            seq: 0,
            firing: Vec::new(),
            rng: seed | 1,
        }
    }
    fn rand(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
    fn alert(&mut self) -> Alert {
        let r = self.rand() % 10;
        if r >= 6 && !self.firing.is_empty() {
            let i = (self.rand() as usize) % self.firing.len();
            if r == 9 {
                // Resolve.
                let mut a = self.firing.swap_remove(i);
                a.status = Status::Resolved;
                a.ends_at = Some(a.starts_at + 60_000);
                return a;
            }
            return self.firing[i].clone(); // Repeat.
        }
        self.seq += 1;
        let n = self.seq;
        let labels: LabelSet = [
            ("alertname", format!("BenchAlert{}", n % 20)),
            ("instance", format!("n{:04}:9100", n % 2000)),
            (
                "severity",
                ["critical", "warning", "info"][(n % 3) as usize].to_string(),
            ),
            ("cluster", "bench".to_string()),
            ("job", "node".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let annotations: LabelSet = [
            ("summary".to_string(), format!("Bench alert {n}")),
            (
                "description".to_string(),
                "Generated by the alert bridge benchmark.".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let a = Alert {
            fingerprint: format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            status: Status::Firing,
            starts_at: BASE + n as i64 * 1000,
            ends_at: None,
            labels,
            annotations,
            generator_url: "http://127.0.0.1:9090/graph?g0.expr=up".into(),
        };
        if self.firing.len() < 50_000 {
            self.firing.push(a.clone());
        }
        a
    }
    fn notification(&mut self, size: usize) -> Vec<Alert> {
        let mut v: Vec<Alert> = Vec::with_capacity(size);
        while v.len() < size {
            let a = self.alert();
            // Alertmanager never puts one alert twice in a notification.
            if !v.iter().any(|b| b.fingerprint == a.fingerprint) {
                v.push(a);
            }
        }
        v
    }
}

fn to_json(alerts: &[Alert]) -> String {
    let ms = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    json!({
        "version": "4", "receiver": "bench", "status": "firing", "groupKey": "{}:{}",
        "externalURL": "http://127.0.0.1:9093", "truncatedAlerts": 0,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "alerts": alerts.iter().map(|a| json!({
            "status": a.status.as_str(), "labels": a.labels, "annotations": a.annotations,
            "startsAt": ms(a.starts_at),
            "endsAt": a.ends_at.map(ms).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "generatorURL": a.generator_url, "fingerprint": a.fingerprint,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// Pre-generates the notifications (so generation is not timed), split across clients.
fn workload(size: usize, max_alerts: usize) -> Vec<Vec<Vec<Alert>>> {
    let mut w = Workload::new(42 + size as u64);
    let n = max_alerts / size;
    let mut per: Vec<Vec<Vec<Alert>>> = vec![Vec::new(); CLIENTS];
    for i in 0..n {
        per[i % CLIENTS].push(w.notification(size));
    }
    per
}

/// Posts the workload through the bridge for at most `secs`; returns (alerts/s, p50, p99, notifications).
async fn run_http(
    store: &Store,
    bridge_args: &[&str],
    load: &[Vec<Vec<Alert>>],
    secs: u64,
) -> (f64, f64, f64, Vec<Vec<Alert>>) {
    let bridge = Bridge::start(store, bridge_args).await;
    let url = format!("http://127.0.0.1:{}/webhook", bridge.port);
    let bodies: Vec<Vec<(String, Vec<Alert>)>> = load
        .iter()
        .map(|c| c.iter().map(|n| (to_json(n), n.clone())).collect())
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for client in bodies {
        let url = url.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut lat = Vec::new();
            let mut sent = Vec::new();
            for (body, alerts) in client {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let t = Instant::now();
                let r = c.post(&url).body(body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                sent.push(alerts);
            }
            (lat, sent)
        }));
    }
    let deadline = t0 + Duration::from_secs(secs);
    while !tasks.iter().all(|t| t.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut sent = Vec::new();
    for t in tasks {
        let (l, s) = t.await.unwrap();
        lat.extend(l);
        sent.extend(s);
    }
    let el = t0.elapsed().as_secs_f64();
    let alerts: usize = sent.iter().map(|n| n.len()).sum();
    (
        alerts as f64 / el,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        sent,
    )
}

/// The floor: the same notifications, written by a bare loop of prepared single-row statements,
/// one transaction per notification (same schema: label pairs by hash).
macro_rules! floor_loop {
    ($conn:expr, $notifs:expr, $d:expr) => {{
        let d: Dialect = $d;
        let mut pairs: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut episodes: HashMap<(String, i64), (i64, bool)> = HashMap::new();
        let mut alerts = 0usize;
        let returning = if d == Dialect::Mysql { "" } else { " RETURNING id" };
        let ins_ep = d.sql(&format!("INSERT INTO episodes (fingerprint, starts_at, status, ends_at, alertname, severity, instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, notifications, changed_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,1,1){returning}")).into_owned();
        let ins_pair = d.sql(&format!("INSERT INTO label_pairs (name, value, vprefix, hash) VALUES ($1, $2, $3, $4){returning}")).into_owned();
        let ins_link = d.sql("INSERT INTO episode_labels (pair_id, episode_id) VALUES ($1, $2)").into_owned();
        let ins_hist = d.sql("INSERT INTO notifications (episode_id, received_at, status, ends_at, annotations, receiver, group_key) VALUES ($1,$2,$3,$4,$5,$6,$7)").into_owned();
        let upd = d.sql("UPDATE episodes SET last_seen = $1, notifications = notifications + 1, status = $2, ends_at = $3 WHERE id = $4").into_owned();
        let t0 = Instant::now();
        for n in $notifs {
            let mut tx = $conn.begin().await.unwrap();
            for a in n {
                alerts += 1;
                let now = BASE;
                let key = (a.fingerprint.clone(), a.starts_at);
                match episodes.get(&key).copied() {
                    None => {
                        let q = sqlx::query(&ins_ep)
                            .bind(&a.fingerprint).bind(a.starts_at).bind(a.status.as_str()).bind(a.ends_at)
                            .bind(a.alertname()).bind(a.severity()).bind(a.instance()).bind(a.labels_json())
                            .bind(a.annotations_json()).bind(&a.generator_url).bind("bench").bind("{}:{}")
                            .bind(now).bind(now);
                        let id: i64 = if d == Dialect::Mysql {
                            q.execute(&mut *tx).await.unwrap();
                            sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS SIGNED)").fetch_one(&mut *tx).await.unwrap()
                        } else {
                            sqlx::Row::get(&q.fetch_one(&mut *tx).await.unwrap(), 0)
                        };
                        for (k, v) in &a.labels {
                            let h = pair_hash(k, v);
                            let pid = match pairs.get(&h) {
                                Some(p) => *p,
                                None => {
                                    let q = sqlx::query(&ins_pair).bind(k).bind(v.as_bytes()).bind(value_prefix(v)).bind(h.clone());
                                    let p: i64 = if d == Dialect::Mysql {
                                        q.execute(&mut *tx).await.unwrap();
                                        sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS SIGNED)").fetch_one(&mut *tx).await.unwrap()
                                    } else {
                                        sqlx::Row::get(&q.fetch_one(&mut *tx).await.unwrap(), 0)
                                    };
                                    pairs.insert(h, p);
                                    p
                                }
                            };
                            sqlx::query(&ins_link).bind(pid).bind(id).execute(&mut *tx).await.unwrap();
                        }
                        sqlx::query(&ins_hist)
                            .bind(id).bind(now).bind(a.status.as_str()).bind(a.ends_at).bind(a.annotations_json())
                            .bind("bench").bind("{}:{}").execute(&mut *tx).await.unwrap();
                        episodes.insert(key, (id, a.status == Status::Resolved));
                    }
                    Some((id, resolved)) => {
                        sqlx::query(&upd)
                            .bind(now).bind(a.status.as_str()).bind(a.ends_at).bind(id)
                            .execute(&mut *tx).await.unwrap();
                        if a.status == Status::Resolved && !resolved {
                            sqlx::query(&ins_hist)
                                .bind(id).bind(now).bind(a.status.as_str()).bind(a.ends_at).bind(a.annotations_json())
                                .bind("bench").bind("{}:{}").execute(&mut *tx).await.unwrap();
                            episodes.insert(key, (id, true));
                        }
                    }
                }
            }
            tx.commit().await.unwrap();
        }
        alerts as f64 / t0.elapsed().as_secs_f64()
    }};
}

async fn run_floor(backend: &str, notifs: &[Vec<Alert>]) -> f64 {
    let store = Store::new(backend, "floor");
    // Migrate through the bridge's own code, then write with a bare connection.
    let db = hpcmon_alert_bridge::storage::Db::open(&store.url, &Default::default())
        .await
        .unwrap();
    db.close().await;
    match backend {
        "sqlite" => {
            use std::str::FromStr;
            let o = sqlx::sqlite::SqliteConnectOptions::from_str(&store.url)
                .unwrap()
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
            let mut c = sqlx::SqliteConnection::connect_with(&o).await.unwrap();
            floor_loop!(c, notifs, Dialect::Sqlite)
        }
        "postgres" => {
            let mut c = sqlx::PgConnection::connect(&store.url).await.unwrap();
            floor_loop!(c, notifs, Dialect::Postgres)
        }
        _ => {
            let mut c = sqlx::MySqlConnection::connect(&store.url).await.unwrap();
            floor_loop!(c, notifs, Dialect::Mysql)
        }
    }
}

/// A query kind: its name and its matcher for a random number.
type QueryKind = (String, Box<dyn Fn(u64) -> String>);

async fn run_queries(store: &Store, n: i64, jobs: i64) -> Vec<(String, f64, f64, f64)> {
    let bridge = Bridge::start(store, &[]).await;
    let c = reqwest::Client::new();
    let span = n * 2600;
    let mut out = Vec::new();
    let prefix_len = (jobs.max(10) as f64).log10().ceil() as usize - 2;
    let kinds: [QueryKind; 5] = [
        (
            "label = + 1 day range".into(),
            Box::new(|r| format!("match[]=%7Binstance%3D%22n{:04}%22%7D", r % 2000)),
        ),
        (
            "label =~ + 1 day range".into(),
            Box::new(|r| format!("match[]=%7Binstance%3D~%22n{:02}.*%22%7D", r % 20)),
        ),
        (
            "label = + severity + 1 day".into(),
            Box::new(|r| {
                format!(
                    "match[]=%7Binstance%3D%22n{:04}%22%7D&severity=critical",
                    r % 2000
                )
            }),
        ),
        (
            format!("=~ prefix, {jobs} values"),
            Box::new(move |r| {
                // j + the first digits: 100 of the label's values.
                let p = format!("{:06}", r % jobs as u64);
                format!("match[]=%7Bjob_id%3D~%22j{}.*%22%7D", &p[..prefix_len])
            }),
        ),
        (
            format!("=~ no prefix, {jobs} values"),
            Box::new(move |r| format!("match[]=%7Bjob_id%3D~%22.*{:04}%22%7D", r % 10_000)),
        ),
    ];
    let mut rng = 7u64;
    for (name, f) in kinds {
        let mut lat = Vec::new();
        let mut rows = 0usize;
        for _ in 0..200 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let from = BASE + (rng % (span as u64)) as i64;
            let to = from + 86_400_000;
            let url = format!(
                "http://127.0.0.1:{}/api/v1/alerts?{}&from={}&to={}&limit=100",
                bridge.port,
                f(rng),
                from as f64 / 1000.0,
                to as f64 / 1000.0
            );
            let t = Instant::now();
            let r = c.get(&url).send().await.unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.status());
            let v: serde_json::Value = r.json().await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            rows += v["data"].as_array().unwrap().len();
        }
        out.push((
            name.clone(),
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            rows as f64 / 200.0,
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    hpcmon_e2e::install_crypto_provider();
    let a = args();
    println!(
        "alert bridge benchmark: {} clients, <= {} s and <= {} alerts per run, loopback",
        CLIENTS, a.seconds, a.max_alerts
    );
    let bridge_args: Vec<&str> = a.bridge_args.iter().map(String::as_str).collect();
    for backend in &a.backends {
        println!("\n== {backend} ==");
        println!(
            "{:<26} {:>12} {:>10} {:>10} {:>14} {:>7}",
            "ingest (alerts/notif.)", "alerts/s", "p50 ms", "p99 ms", "floor alerts/s", "ratio"
        );
        for &size in &a.sizes {
            let load = workload(size, a.max_alerts);
            let store = Store::new(backend, &format!("http{size}"));
            let (rate, p50, p99, sent) = run_http(&store, &bridge_args, &load, a.seconds).await;
            drop(store);
            let floor = run_floor(backend, &sent).await;
            println!(
                "{:<26} {:>12.0} {:>10.2} {:>10.2} {:>14.0} {:>6.2}x",
                format!("{size} per notification"),
                rate,
                p50,
                p99,
                floor,
                rate / floor
            );
        }
        if a.episodes > 0 {
            let store = Store::new(backend, "query");
            let t = Instant::now();
            common::generate(&store, a.episodes, a.jobs).await;
            println!(
                "\nquery on {} episodes (generated in {:.1} s), 200 queries each, limit 100:",
                a.episodes,
                t.elapsed().as_secs_f64()
            );
            println!(
                "{:<32} {:>10} {:>10} {:>12}",
                "query", "p50 ms", "p99 ms", "rows/query"
            );
            for (name, p50, p99, rows) in run_queries(&store, a.episodes, a.jobs).await {
                println!("{name:<32} {p50:>10.2} {p99:>10.2} {rows:>12.1}");
            }
        }
    }
}
