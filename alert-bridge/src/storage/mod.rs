//! Durable storage of alert episodes through `sqlx`: SQLite (default), PostgreSQL or
//! MySQL/MariaDB.
//!
//! * [`sql`]: the three dialects, placeholders and the dynamic query builder.
//! * [`keys`]: how arbitrary label values are stored so that none can fail an insert.
//! * [`state`]: an episode's state and the rules a notification applies to it.
//! * [`write`]: the batched, all-or-nothing writer ([`write::store_batch`]), reconciliation
//!   closes and retention.
//! * [`read`]: the query API's SQL (filters, label matchers, pagination, stats).
//! * [`compat`]: alertsnitch-compatible tables (MySQL/MariaDB), read by OpenSCOW's alarm log.
//!
//! **Schema** (`migrations/{sqlite,postgres,mysql}`, versioned, forward-only, run at start):
//! `episodes` (one row per fingerprint + startsAt), `label_pairs` + `episode_labels` (the
//! label index behind matchers), `notifications` (the state changes of each episode),
//! `writer_lock` (one row: serialises writers, also across bridges sharing a database) and
//! `health` (the readiness probe's commit).
//!
//! **Deadlines**: every statement has one on the server (PostgreSQL `statement_timeout` and
//! `lock_timeout`, MariaDB `max_statement_time` and `innodb_lock_wait_timeout`, SQLite's busy
//! timeout), and callers bound their wait on top.

pub mod compat;
#[cfg(test)]
mod db_tests;
pub mod keys;
pub mod read;
pub mod sql;
pub mod state;
pub mod value_index;
pub mod write;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor as _, Row as _};

pub use read::{get, list, stats, Episode, HistoryRow, Query, QueryError, SortKey};
pub use sql::{Dialect, Param};
pub use write::{
    close_vanished, retention_chunk, store_batch, Incoming, PairCache, Stored, WriteConfig,
};

/// WAL pages after which the SQLite writer checkpoints in its own commit: a backstop, should
/// [`crate::checkpoint`] fall behind (64 MiB of 4 KiB pages).
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// SQLite's pools: one writer connection, readers beside it (WAL), one probe connection.
#[derive(Clone)]
pub struct SqliteDb {
    pub write: SqlitePool,
    pub read: SqlitePool,
    pub probe: SqlitePool,
    /// The write-ahead log to fsync after the writer's commits (`synchronous=full`), or
    /// `None` (`normal`).
    pub log_to_sync: Option<std::path::PathBuf>,
    pub path: std::path::PathBuf,
    /// Label values for regex matchers (see [`value_index`]).
    pub values: value_index::ValueIndex,
}

/// Which database, with its pools.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// What a connection is used for (SQLite has a pool per role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Write,
    Read,
    Probe,
}

/// Runs `$body` with `$p` bound to the backend's pool for `$role` and `$d` to its dialect.
/// The body is compiled once per backend.
macro_rules! on_pool {
    ($db:expr, $role:expr, |$p:ident, $d:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite(s) => {
                #[allow(unused_variables)]
                let $d = $crate::storage::Dialect::Sqlite;
                let $p = match $role {
                    $crate::storage::Role::Write => &s.write,
                    $crate::storage::Role::Read => &s.read,
                    $crate::storage::Role::Probe => &s.probe,
                };
                $body
            }
            $crate::storage::Db::Postgres($p) => {
                #[allow(unused_variables)]
                let $d = $crate::storage::Dialect::Postgres;
                $body
            }
            $crate::storage::Db::Mysql($p) => {
                #[allow(unused_variables)]
                let $d = $crate::storage::Dialect::Mysql;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Options for opening storage.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite `synchronous` setting: `full` (default) or `normal`.
    pub sqlite_synchronous: String,
    /// Maximum connections to PostgreSQL/MySQL, or SQLite readers.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
    /// Server-side deadline of every statement (and of lock waits).
    pub statement_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sqlite_synchronous: "full".into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Describes a storage URL without its credentials (safe to log).
pub fn redact(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return format!("sqlite:{rest}");
    }
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = host.split(['?', '/']).next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => "<unparseable storage URL>".into(),
    }
}

/// The backend a URL selects, or an error naming the accepted schemes.
pub fn dialect_of(url: &str) -> anyhow::Result<Dialect> {
    let scheme = url.split(':').next().unwrap_or("");
    Ok(match scheme {
        "sqlite" => Dialect::Sqlite,
        "postgres" | "postgresql" => Dialect::Postgres,
        "mysql" | "mariadb" => Dialect::Mysql,
        _ => anyhow::bail!(
            "storage URL must start with sqlite://, postgres:// or mysql:// (mariadb://)"
        ),
    })
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl Db {
    /// Connects to `url` and runs the migrations.
    pub async fn open(url: &str, opts: &Options) -> anyhow::Result<Self> {
        let db = match dialect_of(url)? {
            Dialect::Sqlite => Self::open_sqlite(url, opts).await?,
            Dialect::Postgres => {
                let st = format!("{}ms", opts.statement_timeout.as_millis().max(1));
                let co = PgConnectOptions::from_str(url)
                    .map_err(|e| anyhow::anyhow!("parsing the storage URL {}: {e}", redact(url)))?
                    .options([
                        ("statement_timeout", st.as_str()),
                        ("lock_timeout", st.as_str()),
                        ("idle_in_transaction_session_timeout", st.as_str()),
                    ]);
                let pool = PgPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(co)
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", redact(url)))?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .context("migrating the PostgreSQL schema")?;
                Db::Postgres(pool)
            }
            Dialect::Mysql => {
                let url2 = match url.strip_prefix("mariadb:") {
                    Some(rest) => format!("mysql:{rest}"),
                    None => url.to_string(),
                };
                let co = MySqlConnectOptions::from_str(&url2)
                    .map_err(|e| anyhow::anyhow!("parsing the storage URL {}: {e}", redact(url)))?
                    .charset("utf8mb4")
                    .timezone(Some("+00:00".to_string()));
                let deadline = opts.statement_timeout;
                let pool = MySqlPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .acquire_timeout(opts.acquire_timeout)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            let version: String = sqlx::query_scalar("SELECT VERSION()")
                                .fetch_one(&mut *conn)
                                .await?;
                            let limit = if version.contains("MariaDB") {
                                format!(
                                    "max_statement_time = {}",
                                    deadline.as_secs_f64().max(0.001)
                                )
                            } else {
                                format!("max_execution_time = {}", deadline.as_millis().max(1))
                            };
                            conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                                .await?;
                            conn.execute(
                                format!(
                                    "SET SESSION innodb_lock_wait_timeout = {}, SESSION {limit}",
                                    secs(deadline)
                                )
                                .as_str(),
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(co)
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", redact(url)))?;
                sqlx::migrate!("./migrations/mysql")
                    .run(&pool)
                    .await
                    .context("migrating the MySQL/MariaDB schema")?;
                Db::Mysql(pool)
            }
        };
        db.backfill_pair_hashes().await?;
        Ok(db)
    }

    async fn open_sqlite(url: &str, opts: &Options) -> anyhow::Result<Self> {
        let sync = match opts.sqlite_synchronous.as_str() {
            "full" => SqliteSynchronous::Full,
            "normal" => SqliteSynchronous::Normal,
            other => anyhow::bail!("--storage.sqlite.synchronous: {other:?} is not full or normal"),
        };
        let co = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite storage URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(opts.statement_timeout)
            .pragma("temp_store", "memory");
        // Page caches (KiB, negative): 16 MiB for the writer, 8 MiB per reader. Readers lean on
        // the OS page cache; the bridge's memory stays within its (Helm) limit.
        let (write_co, read_co) = (
            co.clone()
                // With `full`, the writer's commits are made durable by [`Db::sync_log`],
                // outside the write lock (see crate::ingest); its connection need not wait.
                .synchronous(SqliteSynchronous::Normal)
                .pragma("cache_size", "-16384")
                // Checkpoints run beside the writer (crate::checkpoint); this is the backstop.
                .pragma(
                    "wal_autocheckpoint",
                    WRITER_AUTOCHECKPOINT_PAGES.to_string(),
                )
                // Room for every shape of the writer's statements (write.rs), kept prepared.
                .statement_cache_capacity(256),
            co.clone().pragma("cache_size", "-8192"),
        );
        let path = co.get_filename().to_path_buf();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // No ping before each batch: a dead connection fails the batch's first statement.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(write_co)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .context("migrating the SQLite schema")?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(read_co)
            .await?;
        // The readiness probe commits through its own connection, so that it is neither
        // queued behind the writer's batches nor able to hold up the writer for long.
        let probe = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(
                co.pragma("cache_size", "-512")
                    .busy_timeout(Duration::from_secs(2)),
            )
            .await?;
        let log_to_sync = (opts.sqlite_synchronous == "full").then(|| {
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            std::path::PathBuf::from(wal)
        });
        Ok(Db::Sqlite(SqliteDb {
            write,
            read,
            probe,
            log_to_sync,
            path,
            values: Default::default(),
        }))
    }

    /// Label pairs migrated from an older schema get their hash (SQLite has no SHA-256 in SQL).
    async fn backfill_pair_hashes(&self) -> anyhow::Result<()> {
        if !matches!(self, Db::Sqlite(_)) {
            return Ok(());
        }
        loop {
            let n = on_pool!(self, Role::Write, |p, d| {
                let rows = sqlx::query(
                    "SELECT id, name, value FROM label_pairs WHERE hash IS NULL LIMIT 1000",
                )
                .fetch_all(p)
                .await?;
                let mut tx = p.begin().await?;
                for r in &rows {
                    let id: i64 = r.try_get(0)?;
                    let name: String = r.try_get(1)?;
                    let value: Vec<u8> = r.try_get(2)?;
                    let hash = keys::pair_hash(&name, &String::from_utf8_lossy(&value));
                    sqlx::query(&d.sql("UPDATE label_pairs SET hash = $1 WHERE id = $2"))
                        .bind(hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<usize, sqlx::Error>(rows.len())
            })
            .context("hashing migrated label pairs")?;
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// The SQL dialect.
    /// Whether [`Db::sync_log`] must run before a commit is answered.
    pub fn needs_log_sync(&self) -> bool {
        matches!(
            self,
            Db::Sqlite(SqliteDb {
                log_to_sync: Some(_),
                ..
            })
        )
    }

    /// Makes the writer's commits so far durable, where the writer's connection does not
    /// (SQLite with `synchronous=full`: the writer commits with `NORMAL` and the write-ahead
    /// log is fsynced here, outside the write lock, so the next batch need not wait for the
    /// disk). Blocking: call it off the async workers. Elsewhere a commit is durable by
    /// itself, and this does nothing.
    pub fn sync_log(&self) -> std::io::Result<()> {
        let Db::Sqlite(SqliteDb {
            log_to_sync: Some(wal),
            ..
        }) = self
        else {
            return Ok(());
        };
        // Opened by name each time: the file SQLite writes now, never a deleted one. If there
        // is none, the last connection checkpointed the log into the synced database file.
        match std::fs::File::open(wal) {
            Ok(f) => f.sync_data(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// SQLite: a `PASSIVE` checkpoint on a reader connection (see [`crate::checkpoint`]).
    /// Other backends: nothing.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        if let Db::Sqlite(s) = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&s.read)
                .await?;
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
            Db::Mysql(_) => Dialect::Mysql,
        }
    }

    /// `sqlite`, `postgres` or `mysql`.
    pub fn backend(&self) -> &'static str {
        self.dialect().name()
    }

    /// Commits a tiny write (the `health` row): proof that the store can commit now. The
    /// caller bounds the wait.
    pub async fn probe(&self, now_ms: i64) -> Result<(), sqlx::Error> {
        on_pool!(self, Role::Probe, |p, d| {
            sqlx::query(&d.sql("UPDATE health SET checked_at = $1 WHERE id = 1"))
                .bind(now_ms)
                .execute(p)
                .await
                .map(|_| ())
        })
    }

    /// Size of the database in bytes, for the backends that can tell through SQL (SQLite's
    /// file size is read by the caller, off the async workers: see [`sqlite_size_blocking`]).
    pub async fn size_bytes(&self) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(p) => sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(p)
                .await
                .map(Some),
            Db::Mysql(p) => sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED) \
                 FROM information_schema.tables WHERE table_schema = DATABASE()",
            )
            .fetch_one(p)
            .await
            .map(Some),
        }
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Db::Sqlite(s) => Some(&s.path),
            _ => None,
        }
    }

    /// Number of episodes still firing.
    pub async fn firing(&self) -> Result<i64, sqlx::Error> {
        on_pool!(self, Role::Read, |p, d| {
            sqlx::query_scalar("SELECT COUNT(*) FROM episodes WHERE status = 'firing'")
                .fetch_one(p)
                .await
        })
    }

    /// Closes the pools.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => {
                s.read.close().await;
                s.probe.close().await;
                s.write.close().await;
            }
            Db::Postgres(p) => p.close().await,
            Db::Mysql(p) => p.close().await,
        }
    }
}

/// SQLite file + WAL size. Blocking (a stalled disk blocks it): call from a blocking thread.
pub fn sqlite_size_blocking(path: &std::path::Path) -> i64 {
    let mut n = 0u64;
    for suffix in ["", "-wal"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        n += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    n as i64
}

/// Whether a database error is transient (deadlock, serialization failure, lock wait
/// timeout): the same transaction may succeed if simply retried.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
            // MySQL: 1213 deadlock (40001), 1205 lock wait timeout (HY000).
            matches!(code.as_ref(), "40001" | "40P01" | "55P03")
                || d.message().contains("Deadlock found")
                || d.message().contains("Lock wait timeout")
                || d.message().contains("database is locked")
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Whether a database error is a statement deadline (a heavy query), not a broken store.
pub fn is_timeout(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // PostgreSQL query_canceled (statement_timeout); MariaDB max_statement_time
            // (1969, SQLSTATE 70100); MySQL max_execution_time (3024, HY000).
            matches!(code.as_ref(), "57014" | "70100")
                || d.message().contains("max_statement_time exceeded")
                || d.message()
                    .contains("maximum statement execution time exceeded")
        }
        _ => false,
    }
}

/// Whether a database error says the data cannot be stored (too long, invalid, constraint),
/// as opposed to the database being unavailable: retrying the same data would fail again.
pub fn is_data_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            let code = code.as_ref();
            // SQLSTATE classes 22 (data exception), 23 (integrity constraint violation) and
            // 54 (program limit exceeded); SQLite reports constraint failures as 19/2067/275...
            code.starts_with("22")
                || code.starts_with("23")
                || code.starts_with("54")
                || matches!(
                    code,
                    "19" | "275" | "531" | "787" | "1299" | "1555" | "2067" | "18"
                )
                || matches!(code, "HY000") && d.message().contains("Data too long")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("postgres://bridge:s3cret@db.example:5432/alerts?sslmode=require"),
            "postgres://db.example:5432"
        );
        assert_eq!(
            redact("mysql://bridge:s3cret@127.0.0.1:3306/alerts"),
            "mysql://127.0.0.1:3306"
        );
        assert_eq!(redact("sqlite:///var/lib/a.db"), "sqlite:///var/lib/a.db");
        assert!(!redact("garbage s3cret").contains("s3cret"));
    }

    #[test]
    fn backends_by_scheme() {
        assert_eq!(dialect_of("sqlite://a.db").unwrap(), Dialect::Sqlite);
        assert_eq!(dialect_of("postgresql://x/y").unwrap(), Dialect::Postgres);
        assert_eq!(dialect_of("mariadb://x/y").unwrap(), Dialect::Mysql);
        assert!(dialect_of("oracle://x").is_err());
    }
}
