//! The summary table in SQLite or PostgreSQL (`--store.url`): one row per job, keyed by the
//! unique job id, holding the [`crate::summary::encode`] text. It outlives both Prometheus
//! retention and slurmdbd purges, and holds summaries too big for an AdminComment.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS jobstats_summary (
//!     jobid_raw  TEXT PRIMARY KEY,  -- sacct JobIDRaw
//!     jobid      TEXT NOT NULL,     -- as Slurm prints it (123_4 for an array task)
//!     user_name  TEXT NOT NULL,
//!     end_time   BIGINT,            -- unix seconds
//!     summary    TEXT NOT NULL,     -- summary::encode() output
//!     created_at BIGINT NOT NULL    -- unix seconds of the (last) put
//! );
//! CREATE INDEX IF NOT EXISTS jobstats_summary_user_end ON jobstats_summary (user_name, end_time);
//! ```
//!
//! URLs: `sqlite:///abs/path.db`, `sqlite://rel/path.db`, `sqlite:path.db` (the file is
//! created if missing) or `postgres://user:pass@host:port/db` (the database must exist; the
//! table is created). [`Store::put`] upserts, so a re-run epilog or the backfill replaces a
//! job's summary. SQLite serialises concurrent writers (epilogs of jobs that end together)
//! with a 10 s busy timeout.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::model::Report;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS jobstats_summary (\
    jobid_raw TEXT PRIMARY KEY, \
    jobid TEXT NOT NULL, \
    user_name TEXT NOT NULL, \
    end_time BIGINT, \
    summary TEXT NOT NULL, \
    created_at BIGINT NOT NULL)";
const CREATE_INDEX: &str = "CREATE INDEX IF NOT EXISTS jobstats_summary_user_end \
    ON jobstats_summary (user_name, end_time)";
// `$n` placeholders and ON CONFLICT work in both SQLite (>= 3.24) and PostgreSQL.
const UPSERT: &str = "INSERT INTO jobstats_summary \
    (jobid_raw, jobid, user_name, end_time, summary, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (jobid_raw) DO UPDATE SET jobid = excluded.jobid, user_name = excluded.user_name, \
    end_time = excluded.end_time, summary = excluded.summary, created_at = excluded.created_at";
const SELECT: &str = "SELECT summary FROM jobstats_summary WHERE jobid_raw = $1";

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The summary table.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// `url` without its password (safe to log).
pub fn redact(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_string();
    }
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = host.split(['?', '/']).next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => "<unparseable store URL>".into(),
    }
}

impl Store {
    /// Connects to `url` and creates the table if missing.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let pool = if url.starts_with("sqlite:") {
            let co = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("parsing the SQLite store URL {url:?}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            let path = co.get_filename().display().to_string();
            let p = SqlitePoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(15))
                .connect_with(co)
                .await
                .with_context(|| format!("opening the SQLite store {path}"))?;
            sqlx::query(CREATE_TABLE)
                .execute(&p)
                .await
                .with_context(|| format!("creating table jobstats_summary in {path}"))?;
            sqlx::query(CREATE_INDEX).execute(&p).await?;
            Pool::Sqlite(p)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let p = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("connecting to the store {}: {e}", redact(url)))?;
            // Two epilogs may create the table at once; PostgreSQL's IF NOT EXISTS is not
            // race-free (a unique violation in pg_type), so retry once.
            for attempt in 0..2 {
                let r = async {
                    sqlx::query(CREATE_TABLE).execute(&p).await?;
                    sqlx::query(CREATE_INDEX).execute(&p).await
                }
                .await;
                match r {
                    Ok(_) => break,
                    Err(_) if attempt == 0 => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(e) => {
                        return Err(anyhow::anyhow!(
                            "creating table jobstats_summary in {}: {e}",
                            redact(url)
                        ))
                    }
                }
            }
            Pool::Postgres(p)
        } else {
            anyhow::bail!(
                "store URL must start with sqlite: (sqlite:///path/file.db) or postgres:// (got {})",
                redact(url)
            );
        };
        Ok(Store { pool })
    }

    /// Stores `report`'s summary under its `jobid_raw`, replacing an earlier one.
    pub async fn put(&self, report: &Report) -> anyhow::Result<()> {
        let j = &report.job;
        anyhow::ensure!(
            !j.jobid_raw.is_empty(),
            "cannot store a summary without a job id"
        );
        let text = crate::summary::encode(report);
        let now = chrono::Utc::now().timestamp();
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(UPSERT)
                .bind(&j.jobid_raw)
                .bind(&j.jobid)
                .bind(&j.user)
                .bind(j.end_time)
                .bind(&text)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ()),
            Pool::Postgres(p) => sqlx::query(UPSERT)
                .bind(&j.jobid_raw)
                .bind(&j.jobid)
                .bind(&j.user)
                .bind(j.end_time)
                .bind(&text)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .with_context(|| format!("storing the summary of job {}", j.jobid_raw))?;
        Ok(())
    }

    /// The stored report of job `jobid_raw` (None: no row), decoded: `source` is
    /// [`crate::model::Source::Summary`]. A damaged row is an error naming the job.
    pub async fn get(&self, jobid_raw: &str) -> anyhow::Result<Option<Report>> {
        let text: Option<String> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(SELECT)
                    .bind(jobid_raw)
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(SELECT)
                    .bind(jobid_raw)
                    .fetch_optional(p)
                    .await
            }
        }
        .with_context(|| format!("reading the summary of job {jobid_raw}"))?;
        match text {
            None => Ok(None),
            Some(t) => crate::summary::decode(&t)
                .map(Some)
                .with_context(|| format!("the stored summary of job {jobid_raw}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobHeader, NodeUsage, Source, Usage, REPORT_VERSION};

    fn report(id: &str, cores: f64) -> Report {
        Report {
            version: REPORT_VERSION,
            job: JobHeader {
                jobid: format!("{id}_1"),
                jobid_raw: id.into(),
                user: "alice".into(),
                state: "COMPLETED".into(),
                nodes: 1,
                cpus: 4,
                end_time: Some(1_795_661_740),
                ..Default::default()
            },
            source: Source::Prometheus,
            usage: Some(Usage {
                allocated_cpus: 0.0,
                from: 1,
                to: 2,
                nodes: vec![NodeUsage {
                    node: "n1".into(),
                    cpus: 4.0,
                    cores_used: cores,
                    ..Default::default()
                }],
                gpus: vec![],
            }),
            notes: vec![],
            dashboard_url: None,
        }
    }

    async fn exercise(store: &Store) {
        assert!(store.get("1").await.unwrap().is_none());
        store.put(&report("1", 1.0)).await.unwrap();
        store.put(&report("2", 2.0)).await.unwrap();
        let r = store.get("1").await.unwrap().unwrap();
        assert_eq!(r.source, Source::Summary);
        assert_eq!(r.job.jobid, "1_1");
        assert_eq!(r.usage.unwrap().nodes[0].cores_used, 1.0);
        // Upsert: a second put replaces the first.
        store.put(&report("1", 3.0)).await.unwrap();
        let r = store.get("1").await.unwrap().unwrap();
        assert_eq!(r.usage.unwrap().nodes[0].cores_used, 3.0);
        assert_eq!(store.get("2").await.unwrap().unwrap().job.jobid_raw, "2");
        assert!(store.put(&report("", 1.0)).await.is_err());
    }

    #[tokio::test]
    async fn sqlite() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub.db");
        let url = format!("sqlite://{}", path.display()); // sqlite:///abs/path
        let store = Store::open(&url).await.unwrap();
        exercise(&store).await;
        // Reopening finds the table and the rows.
        drop(store);
        let store = Store::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        assert!(store.get("2").await.unwrap().is_some());
        // A damaged row is an error naming the job, not a panic or a wrong report.
        let Pool::Sqlite(p) = &store.pool else {
            unreachable!()
        };
        sqlx::query("UPDATE jobstats_summary SET summary = 'hpcmon1:zzzz' WHERE jobid_raw = '2'")
            .execute(p)
            .await
            .unwrap();
        let e = format!("{:#}", store.get("2").await.unwrap_err());
        assert!(e.contains("job 2") && e.contains("damaged"), "{e}");
    }

    #[tokio::test]
    async fn bad_urls() {
        let e = Store::open("mysql://x").await.unwrap_err().to_string();
        assert!(e.contains("sqlite:") && e.contains("postgres://"), "{e}");
        let e = Store::open("sqlite:///nonexistent-dir/x/y.db")
            .await
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("/nonexistent-dir/x/y.db"),
            "{e:#}"
        );
        assert_eq!(
            redact("postgres://u:secret@127.0.0.1:5432/db"),
            "postgres://127.0.0.1:5432"
        );
    }

    /// Against a real PostgreSQL (`scripts/postgres.sh`, as the alert bridge's tests use it;
    /// `scripts/install-deps.sh postgres` installs it). Fails where PostgreSQL is missing.
    #[tokio::test]
    async fn postgres() {
        let root = std::env::var("HPCMON_REPO_ROOT")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/..").to_string());
        let script = std::path::Path::new(&root).join("scripts/postgres.sh");
        assert!(
            script.exists() && std::path::Path::new("/usr/lib/postgresql").is_dir(),
            "PostgreSQL is not installed: run scripts/install-deps.sh postgres"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tmp = tempfile::tempdir().unwrap();
        // The server runs as the postgres user: it must traverse the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("pg");
        struct Guard(std::path::PathBuf, std::path::PathBuf);
        impl Drop for Guard {
            fn drop(&mut self) {
                let _ = std::process::Command::new(&self.0)
                    .args(["stop".as_ref(), self.1.as_os_str(), "immediate".as_ref()])
                    .output();
                let _ = std::fs::remove_dir_all(&self.1);
            }
        }
        let _g = Guard(script.clone(), dir.clone());
        let out = std::process::Command::new(&script)
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = std::fs::read_to_string(dir.join("url")).unwrap();
        let url = url.trim();
        // Two stores opening at once (two epilogs) both succeed.
        let (a, b) = tokio::join!(Store::open(url), Store::open(url));
        let (a, _b) = (a.unwrap(), b.unwrap());
        exercise(&a).await;
        let e = Store::open(&url.replace(&format!(":{port}/"), ":1/"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("127.0.0.1:1") && !e.contains("bridge:"),
            "password leaked: {e}"
        );
    }
}
