//! Shared parts of the alert bridge benchmarks: a store per backend (SQLite file, private
//! PostgreSQL cluster, private MariaDB server — all on loopback), the release bridge binary, a
//! generated log of N episodes, RSS readings.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hpcmon_e2e::free_port;
use sqlx::Connection as _;

pub const BASE: i64 = 1_767_225_600_000; // 2026-01-01

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A storage for one run, with cleanup.
pub struct Store {
    pub backend: String,
    pub url: String,
    pub url_arg: String,
    dir: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

impl Store {
    pub fn new(backend: &str, tag: &str) -> Store {
        match backend {
            "sqlite" => {
                let d = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", d.path().join(format!("{tag}.db")).display());
                Store {
                    backend: backend.into(),
                    url_arg: format!("--storage.url={url}"),
                    url,
                    dir: None,
                    _tmp: Some(d),
                }
            }
            "postgres" | "mariadb" => {
                let dir = PathBuf::from(format!(
                    "/tmp/hpcmon-ab-bench-{backend}-{}-{tag}",
                    std::process::id()
                ));
                let port = free_port();
                let arg = |s: &str| s.to_string();
                let (port, dir_s) = (port.to_string(), dir.display().to_string());
                let url_file = if backend == "postgres" {
                    run_script(
                        &repo().join("scripts/postgres.sh"),
                        &[arg("start"), dir_s, port],
                    );
                    dir.join("url")
                } else {
                    let script = repo().join("alert-bridge/scripts/mariadb.sh");
                    run_script(&script, &[arg("start"), dir_s.clone(), port]);
                    run_script(&script, &[arg("createdb"), dir_s, arg("bench")]);
                    dir.join("url-bench")
                };
                let url = std::fs::read_to_string(&url_file)
                    .unwrap()
                    .trim()
                    .to_string();
                Store {
                    backend: backend.into(),
                    url,
                    url_arg: format!("--storage.url-file={}", url_file.display()),
                    dir: Some(dir),
                    _tmp: None,
                }
            }
            other => panic!("unknown backend {other} (sqlite, postgres, mariadb)"),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            if self.backend == "postgres" {
                let _ = Command::new(repo().join("scripts/postgres.sh"))
                    .arg("stop")
                    .arg(d)
                    .arg("immediate")
                    .output();
            } else {
                let _ = Command::new(repo().join("alert-bridge/scripts/mariadb.sh"))
                    .arg("stop")
                    .arg(d)
                    .output();
            }
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The release bridge binary on a free loopback port.
pub struct Bridge {
    child: Child,
    pub port: u16,
}

impl Bridge {
    pub async fn start(store: &Store, extra: &[&str]) -> Bridge {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_hpcmon-alert-bridge"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(&store.url_arg)
            .arg("--log.level=warn")
            .arg("--retention=0")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = c
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "bridge not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Bridge { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// (VmRSS, VmHWM) in bytes.
    pub fn rss(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kb = |key: &str| -> u64 {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                * 1024
        };
        (kb("VmRSS:"), kb("VmHWM:"))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const GEN_SQLITE: &str = "INSERT INTO episodes (id, fingerprint, starts_at, ends_at, status, alertname, severity, instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, notifications, changed_at)
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
     SELECT i, printf('%016x', i), $2 + i * 2600,
            CASE WHEN i % 20 = 0 THEN NULL ELSE $2 + i * 2600 + 600000 END,
            CASE WHEN i % 20 = 0 THEN 'firing' ELSE 'resolved' END,
            'Alert' || (i % 20), CASE i % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
            printf('n%04d', i % 2000),
            '{\"alertname\":\"Alert' || (i % 20) || '\",\"instance\":\"' || printf('n%04d', i % 2000) || '\",\"job_id\":\"' || printf('j%06d', i % $3) || '\"}',
            '{\"summary\":\"generated ' || i || '\"}', '', 'bench', '{}:{}', $2 + i * 2600, $2 + i * 2600, 1, 1
     FROM s";

const GEN_PG: &str = "INSERT INTO episodes (id, fingerprint, starts_at, ends_at, status, alertname, severity, instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, notifications, changed_at)
     OVERRIDING SYSTEM VALUE
     SELECT i, lpad(to_hex(i), 16, '0'), $2 + i * 2600,
            CASE WHEN i % 20 = 0 THEN NULL ELSE $2 + i * 2600 + 600000 END,
            CASE WHEN i % 20 = 0 THEN 'firing' ELSE 'resolved' END,
            'Alert' || (i % 20), CASE i % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
            'n' || lpad((i % 2000)::text, 4, '0'),
            '{\"alertname\":\"Alert' || (i % 20) || '\",\"instance\":\"n' || lpad((i % 2000)::text, 4, '0') || '\",\"job_id\":\"j' || lpad((i % $3)::text, 6, '0') || '\"}',
            '{\"summary\":\"generated ' || i || '\"}', '', 'bench', '{}:{}', $2 + i * 2600, $2 + i * 2600, 1, 1
     FROM generate_series(1::bigint, $1::bigint) AS i";

const GEN_MYSQL: &str = "INSERT INTO episodes (id, fingerprint, starts_at, ends_at, status, alertname, severity, instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, notifications, changed_at)
     SELECT seq, LPAD(HEX(seq), 16, '0'), ? + seq * 2600,
            CASE WHEN seq % 20 = 0 THEN NULL ELSE ? + seq * 2600 + 600000 END,
            CASE WHEN seq % 20 = 0 THEN 'firing' ELSE 'resolved' END,
            CONCAT('Alert', seq % 20), CASE seq % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
            CONCAT('n', LPAD(seq % 2000, 4, '0')),
            CONCAT('{\"alertname\":\"Alert', seq % 20, '\",\"instance\":\"n', LPAD(seq % 2000, 4, '0'), '\",\"job_id\":\"j', LPAD(seq % ?, 6, '0'), '\"}'),
            CONCAT('{\"summary\":\"generated ', seq, '\"}'), '', 'bench', '{}:{}', ? + seq * 2600, ? + seq * 2600, 1, 1
     FROM seq_1_to_";

/// Label pairs and links for alertname, severity, instance and job_id (`jobs` distinct values).
fn gen_labels(backend: &str) -> Vec<String> {
    let (blob, hash) = match backend {
        "sqlite" => ("CAST({v} AS BLOB)", "NULL"),
        "postgres" => (
            "convert_to({v}, 'UTF8')",
            "sha256(convert_to('{n}', 'UTF8') || '\\xff'::bytea || convert_to({v}, 'UTF8'))",
        ),
        _ => (
            "CONVERT({v} USING binary)",
            "UNHEX(SHA2(CONCAT(CONVERT('{n}' USING binary), X'FF', CONVERT({v} USING binary)), 256))",
        ),
    };
    let job = match backend {
        "sqlite" => "json_extract({t}labels, '$.job_id')",
        "postgres" => "({t}labels::jsonb ->> 'job_id')",
        _ => "JSON_UNQUOTE(JSON_EXTRACT({t}labels, '$.job_id'))",
    };
    let mut out = Vec::new();
    for (name, tmpl) in [
        ("alertname", "{t}alertname"),
        ("severity", "{t}severity"),
        ("instance", "{t}instance"),
        ("job_id", job),
    ] {
        let (col, ecol) = (tmpl.replace("{t}", ""), tmpl.replace("{t}", "e."));
        let b = blob.replace("{v}", "v");
        let h = hash.replace("{n}", name).replace("{v}", "v");
        out.push(format!(
            "INSERT INTO label_pairs (name, value, vprefix, hash) SELECT '{name}', {b}, {b}, {h} \
             FROM (SELECT DISTINCT {col} AS v FROM episodes) d"
        ));
        let eb = blob.replace("{v}", &ecol);
        // SQLite: CROSS JOIN fixes the loop order (episodes outside, the pair looked up by
        // (name, vprefix) inside); left to itself the planner scanned every episode per pair.
        let join = if backend == "sqlite" {
            "CROSS JOIN"
        } else {
            "JOIN"
        };
        out.push(format!(
            "INSERT INTO episode_labels (pair_id, episode_id) SELECT p.id, e.id FROM episodes e \
             {join} label_pairs p ON p.name = '{name}' AND p.vprefix = {eb}"
        ));
    }
    out
}

/// Generates `n` episodes (2 000 instances, 20 alert names, a `job_id` label with `jobs`
/// distinct values, episodes 2.6 s apart, 5 % still firing) through SQL.
pub async fn generate(store: &Store, n: i64, jobs: i64) {
    generate_at(&store.backend, &store.url, n, jobs).await
}

/// [`generate`] into the database at `url` (`backend`: sqlite, postgres or mariadb).
pub async fn generate_at(backend: &str, url: &str, n: i64, jobs: i64) {
    let db = hpcmon_alert_bridge::storage::Db::open(url, &Default::default())
        .await
        .unwrap();
    db.close().await;
    match backend {
        "sqlite" => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(GEN_SQLITE)
                .bind(n)
                .bind(BASE)
                .bind(jobs)
                .execute(&mut c)
                .await
                .unwrap();
            for q in gen_labels("sqlite") {
                sqlx::query(&q).execute(&mut c).await.unwrap();
            }
            sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        }
        "postgres" => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(GEN_PG)
                .bind(n)
                .bind(BASE)
                .bind(jobs)
                .execute(&mut c)
                .await
                .unwrap();
            for q in gen_labels("postgres") {
                sqlx::query(&q).execute(&mut c).await.unwrap();
            }
            for q in [
                "SELECT setval(pg_get_serial_sequence('episodes', 'id'), (SELECT MAX(id) FROM episodes))",
                "ANALYZE",
            ] {
                sqlx::query(q).execute(&mut c).await.unwrap();
            }
        }
        _ => {
            let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
            sqlx::query(&format!("{GEN_MYSQL}{n}"))
                .bind(BASE)
                .bind(BASE)
                .bind(jobs)
                .bind(BASE)
                .bind(BASE)
                .execute(&mut c)
                .await
                .unwrap();
            for q in gen_labels("mariadb") {
                sqlx::query(&q).execute(&mut c).await.unwrap();
            }
            sqlx::query("ANALYZE TABLE episodes, label_pairs, episode_labels")
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    // SQLite cannot hash in SQL: the bridge's own code fills the hashes in when it opens.
    let db = hpcmon_alert_bridge::storage::Db::open(url, &Default::default())
        .await
        .unwrap();
    db.close().await;
    // Statistics taken while every hash was NULL would tell the planner the unique hash index
    // is useless (an equality matcher then scanned every label of every episode): again, now.
    if backend == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    }
}

/// Runs a database start/create script; panics with its stderr when it fails.
fn run_script(script: &std::path::Path, args: &[String]) {
    let out = Command::new(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
