//! Shared helpers of the alert bridge's integration tests: the bridge binary on a free
//! loopback port, a real PostgreSQL cluster started by `scripts/postgres.sh`, and a real
//! MariaDB server (`alert-bridge/scripts/mariadb.sh`, one per test binary, one database per test).
#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hpcmon_e2e::{free_port, repo_root, Daemon};
use serde_json::{json, Value};

/// A PostgreSQL cluster of our own on 127.0.0.1 (`scripts/postgres.sh`), removed on drop.
pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    /// File holding the URL (with the password).
    pub url_file: PathBuf,
}

fn script() -> PathBuf {
    repo_root().join("scripts/postgres.sh")
}

impl Postgres {
    pub fn start() -> Postgres {
        assert!(
            Path::new("/usr/lib/postgresql").is_dir(),
            "PostgreSQL is not installed; run `scripts/install-deps.sh postgres`"
        );
        // Under /tmp (not a 0700 tempdir) so that the postgres user can reach it when root.
        let dir = PathBuf::from(format!(
            "/tmp/hpcmon-ab-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        let port = free_port();
        let pg = Postgres {
            url_file: dir.join("url"),
            dir,
            port,
        };
        pg.start_again();
        pg
    }

    /// Starts the (existing or new) cluster.
    pub fn start_again(&self) {
        let out = Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .output()
            .expect("running scripts/postgres.sh");
        assert!(
            out.status.success(),
            "scripts/postgres.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (`immediate` = like a crash).
    pub fn stop(&self, mode: &str) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .arg(mode)
            .output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test binary's MariaDB server on 127.0.0.1 (started on first use, killed when the test
/// binary exits: it runs in the foreground under a thread that lives as long as the process,
/// with PR_SET_PDEATHSIG).
pub struct MariaDbServer {
    pub dir: PathBuf,
    pub port: u16,
}

static MARIADB: OnceLock<MariaDbServer> = OnceLock::new();
static MARIADB_DIR: OnceLock<PathBuf> = OnceLock::new();
static DB_SEQ: AtomicUsize = AtomicUsize::new(0);

fn mariadb_script() -> PathBuf {
    repo_root().join("alert-bridge/scripts/mariadb.sh")
}

extern "C" fn remove_mariadb_dir() {
    if let Some(d) = MARIADB_DIR.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

impl MariaDbServer {
    /// The shared server (starts it the first time).
    pub fn get() -> &'static MariaDbServer {
        MARIADB.get_or_init(|| {
            assert!(
                Path::new("/usr/sbin/mariadbd").exists(),
                "MariaDB is not installed; run `scripts/install-deps.sh mariadb`"
            );
            let dir = PathBuf::from(format!(
                "/tmp/hpcmon-ab-mariadb-{}-{}",
                std::process::id(),
                free_port()
            ));
            let port = free_port();
            let _ = MARIADB_DIR.set(dir.clone());
            unsafe { libc::atexit(remove_mariadb_dir) };
            let d2 = dir.clone();
            let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
            std::thread::spawn(move || {
                let mut cmd = Command::new(mariadb_script());
                cmd.arg("start")
                    .arg(&d2)
                    .arg(port.to_string())
                    .env("MARIADB_FOREGROUND", "1")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                match cmd.spawn() {
                    Ok(mut child) => {
                        let _ = tx.send(Ok(()));
                        let _ = child.wait();
                        // Stay alive: this thread is mariadbd's "parent".
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
            rx.recv()
                .unwrap()
                .expect("starting alert-bridge/scripts/mariadb.sh");
            let server = MariaDbServer { dir, port };
            let t0 = Instant::now();
            loop {
                let ok = Command::new(mariadb_script())
                    .arg("sql")
                    .arg(&server.dir)
                    .arg("SELECT 1")
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(60),
                    "MariaDB did not start: {}",
                    std::fs::read_to_string(server.dir.join("mysqld.err")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            server
        })
    }

    /// Runs SQL as root; returns stdout (tab-separated, no headers).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(mariadb_script())
            .arg("sql")
            .arg(&self.dir)
            .arg(sql)
            .output()
            .expect("running mariadb.sh sql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A fresh database with its own account; returns (name, file holding the URL).
    pub fn create_db(&self) -> (String, PathBuf) {
        let name = format!(
            "t{}_{}",
            std::process::id() % 100_000,
            DB_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new(mariadb_script())
            .arg("createdb")
            .arg(&self.dir)
            .arg(&name)
            .output()
            .expect("mariadb.sh createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url_file = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        (name, url_file)
    }

    /// The read-only account OpenSCOW's Grafana datasource uses (the shipped grants); returns
    /// its password.
    pub fn readonly_user(&self, db: &str, user: &str) -> String {
        let out = Command::new(mariadb_script())
            .arg("readonly")
            .arg(&self.dir)
            .arg(db)
            .arg(user)
            .output()
            .expect("mariadb.sh readonly");
        assert!(
            out.status.success(),
            "readonly: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = String::from_utf8_lossy(&out.stdout).trim().to_string();
        std::fs::read_to_string(f).unwrap().trim().to_string()
    }
}

/// Which storage a test runs against.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(Postgres),
    /// A database on the test binary's MariaDB server.
    MariaDb {
        name: String,
        url_file: PathBuf,
    },
}

impl Backend {
    pub fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }
    pub fn postgres() -> Backend {
        Backend::Postgres(Postgres::start())
    }
    pub fn mariadb() -> Backend {
        let (name, url_file) = MariaDbServer::get().create_db();
        Backend::MariaDb { name, url_file }
    }
    pub fn by_name(name: &str) -> Backend {
        match name {
            "sqlite" => Self::sqlite(),
            "postgres" => Self::postgres(),
            "mariadb" => Self::mariadb(),
            _ => panic!("unknown backend {name}"),
        }
    }
    /// The storage URL (with its password).
    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite(d) => format!("sqlite://{}", d.path().join("alerts.db").display()),
            Backend::Postgres(pg) => std::fs::read_to_string(&pg.url_file)
                .unwrap()
                .trim()
                .to_string(),
            Backend::MariaDb { url_file, .. } => std::fs::read_to_string(url_file)
                .unwrap()
                .trim()
                .to_string(),
        }
    }
    /// The storage flag (a URL file for PostgreSQL: the password never goes on argv).
    pub fn storage_arg(&self) -> String {
        match self {
            Backend::Sqlite(d) => format!(
                "--storage.url=sqlite://{}",
                d.path().join("alerts.db").display()
            ),
            Backend::Postgres(pg) => format!("--storage.url-file={}", pg.url_file.display()),
            Backend::MariaDb { url_file, .. } => {
                format!("--storage.url-file={}", url_file.display())
            }
        }
    }
    pub fn pg(&self) -> &Postgres {
        match self {
            Backend::Postgres(p) => p,
            _ => panic!("not PostgreSQL"),
        }
    }
}

/// The bridge binary under test: this build's, or `HPCMON_ALERT_BRIDGE_BIN` (to run the suite
/// against another build, e.g. to see a regression test fail on the code before its fix).
pub fn bridge_bin() -> PathBuf {
    std::env::var_os("HPCMON_ALERT_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hpcmon-alert-bridge")))
}

/// A running bridge.
pub struct Bridge {
    pub daemon: Daemon,
    pub port: u16,
    pub client: reqwest::Client,
}

impl Bridge {
    pub async fn start(backend: &Backend, extra: &[&str]) -> Bridge {
        Self::start_on(backend, free_port(), extra).await
    }

    pub async fn start_on(backend: &Backend, port: u16, extra: &[&str]) -> Bridge {
        let mut cmd = Command::new(bridge_bin());
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(backend.storage_arg())
            .arg("--log.level=debug")
            .args(extra);
        let mut daemon = Daemon::spawn("alert-bridge", cmd).with_grace(Duration::from_secs(3));
        daemon
            .wait_http(
                &format!("http://127.0.0.1:{port}/-/ready"),
                Duration::from_secs(30),
            )
            .await
            .expect("bridge ready");
        Bridge {
            daemon,
            port,
            client: hpcmon_e2e::client(&Default::default()).unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POSTs a raw body to /webhook; returns (status, body).
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .client
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("POST /webhook");
        let s = r.status().as_u16();
        (s, r.text().await.unwrap_or_default())
    }

    pub async fn get_json(&self, path_and_query: &str) -> Value {
        let r = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("GET");
        let s = r.status();
        let t = r.text().await.unwrap();
        assert!(s.is_success(), "GET {path_and_query}: {s}: {t}");
        serde_json::from_str(&t).unwrap()
    }

    /// Every episode matching `query` (follows the cursor).
    pub async fn all(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let v = self
                .get_json(&format!("/api/v1/alerts?limit=10000{sep}{query}{cursor}"))
                .await;
            out.extend(v["data"].as_array().unwrap().iter().cloned());
            match v["nextCursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
    }

    /// Waits (bounded) until `check` holds for the episodes matching `query`.
    pub async fn wait_for(
        &self,
        query: &str,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.all(query).await;
            if check(&rows) {
                return rows;
            }
            if Instant::now() > deadline {
                panic!(
                    "episodes for {query:?} never satisfied the check within {timeout:?}: {}\n{}",
                    serde_json::to_string_pretty(&rows).unwrap(),
                    self.daemon.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of a metric sample line `name{labels}` (exact text before the value).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let t = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A webhook payload as Alertmanager sends it.
pub fn payload(status: &str, alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "bridge", "status": status, "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "version": "4",
        "groupKey": "{}:{}", "truncatedAlerts": 0
    })
}

/// One alert of a payload. `ends` is `None` while firing.
pub fn wh_alert(fp: &str, labels: Value, summary: &str, starts: &str, ends: Option<&str>) -> Value {
    json!({
        "status": if ends.is_some() { "resolved" } else { "firing" },
        "labels": labels,
        "annotations": {"summary": summary},
        "startsAt": starts,
        "endsAt": ends.unwrap_or("0001-01-01T00:00:00Z"),
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        "fingerprint": fp
    })
}
