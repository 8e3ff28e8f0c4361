//! Durable storage of alert episodes through `sqlx`: SQLite (default) or PostgreSQL.
//!
//! * **Schema** (`migrations/{sqlite,postgres}`, versioned, forward-only, run at start):
//!   `episodes` (one row per fingerprint + startsAt), `label_pairs` + `episode_labels` (the
//!   label index behind matchers) and `notifications` (the state changes of each episode).
//! * **Idempotent upsert**: [`Store::store_batch`] inserts or updates each episode with one
//!   `INSERT … ON CONFLICT DO UPDATE`; a resolved episode stays resolved whatever late
//!   "firing" replays arrive, duplicates (HA pair, group resends) only bump `last_seen` and
//!   the delivery count, and a history row is written only when the state really changed.
//! * **Durability**: a batch is one transaction; callers acknowledge only after it
//!   committed. SQLite runs in WAL mode with `synchronous=FULL` (each commit is fsynced, so
//!   neither `kill -9` nor a power cut loses a committed batch); one writer connection.
//! * **Queries** are built from fixed SQL fragments with `$N` placeholders; user strings are
//!   only ever bound as parameters.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row as _;

use crate::matcher::{Matcher, Op};
use crate::payload::{Notification, Status};

/// Which database, with its pools.
#[derive(Clone)]
pub enum Db {
    /// SQLite: one writer connection, a few readers (WAL lets them run beside the writer).
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        path: std::path::PathBuf,
    },
    /// PostgreSQL: one pool.
    Postgres(PgPool),
}

macro_rules! on_pool {
    ($db:expr, $write:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite { write, read, .. } => {
                let $p = if $write { write } else { read };
                $body
            }
            Db::Postgres($p) => $body,
        }
    };
}

/// A bind parameter of a dynamically built query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// Options for opening storage.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite `synchronous` setting: `full` (default) or `normal`.
    pub sqlite_synchronous: String,
    /// Maximum connections to PostgreSQL / SQLite readers.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sqlite_synchronous: "full".into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
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

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`) and runs the migrations.
    pub async fn open(url: &str, opts: &Options) -> anyhow::Result<Self> {
        let db = if url.starts_with("sqlite:") {
            let sync = match opts.sqlite_synchronous.as_str() {
                "full" => SqliteSynchronous::Full,
                "normal" => SqliteSynchronous::Normal,
                other => {
                    anyhow::bail!("--storage.sqlite.synchronous: {other:?} is not full or normal")
                }
            };
            let co = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite storage URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sync)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            let path = co.get_filename().to_path_buf();
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(co.clone())
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&write)
                .await
                .context("migrating the SQLite schema")?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(co)
                .await?;
            Db::Sqlite { write, read, path }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(opts.acquire_timeout)
                .connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", redact(url)))?;
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .context("migrating the PostgreSQL schema")?;
            Db::Postgres(pool)
        } else {
            anyhow::bail!("storage URL must start with sqlite:// or postgres://");
        };
        Ok(db)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, false, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    /// Size of the database in bytes (SQLite: main file + WAL).
    pub async fn size_bytes(&self) -> Result<i64, sqlx::Error> {
        match self {
            Db::Sqlite { path, .. } => {
                let mut n = 0u64;
                for suffix in ["", "-wal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    n += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                }
                Ok(n as i64)
            }
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await
            }
        }
    }

    /// Number of episodes still firing.
    pub async fn firing(&self) -> Result<i64, sqlx::Error> {
        on_pool!(self, false, p => sqlx::query_scalar("SELECT COUNT(*) FROM episodes WHERE status = 'firing'").fetch_one(p).await)
    }

    /// Closes the pools.
    pub async fn close(&self) {
        match self {
            Db::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// One notification to store, as received.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub notification: Notification,
    /// When it arrived, ms since the epoch.
    pub received_at: i64,
}

/// Columns of one upserted row (13 parameters each).
const UPSERT_COLS: usize = 13;

/// Most rows in one multi-row statement (13 parameters a row stays far below the SQLite
/// and PostgreSQL parameter limits).
const CHUNK: usize = 256;

fn upsert_sql(rows: usize) -> String {
    let mut s = String::from(
        "INSERT INTO episodes (fingerprint, starts_at, status, ends_at, alertname, severity, \
instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, notifications, changed_at) VALUES ",
    );
    for r in 0..rows {
        let b = r * UPSERT_COLS;
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 1..=UPSERT_COLS {
            s.push_str(&format!("${}, ", b + c));
        }
        s.push_str(&format!("${}, 1, 1)", b + UPSERT_COLS));
    }
    s.push_str(UPSERT_TAIL);
    s
}

const UPSERT_TAIL: &str = " ON CONFLICT (fingerprint, starts_at) DO UPDATE SET \
last_seen = CASE WHEN excluded.last_seen > episodes.last_seen THEN excluded.last_seen ELSE episodes.last_seen END, \
notifications = episodes.notifications + 1, \
receiver = excluded.receiver, \
group_key = excluded.group_key, \
status = CASE WHEN episodes.status = 'resolved' THEN 'resolved' ELSE excluded.status END, \
ends_at = CASE WHEN excluded.status = 'resolved' THEN excluded.ends_at ELSE episodes.ends_at END, \
annotations = CASE WHEN episodes.status = 'resolved' AND excluded.status = 'firing' \
  THEN episodes.annotations ELSE excluded.annotations END, \
generator_url = CASE WHEN excluded.generator_url <> '' THEN excluded.generator_url ELSE episodes.generator_url END, \
changed_at = CASE \
  WHEN episodes.status = 'firing' AND excluded.status = 'resolved' THEN episodes.notifications + 1 \
  WHEN excluded.status = 'resolved' AND episodes.ends_at IS DISTINCT FROM excluded.ends_at THEN episodes.notifications + 1 \
  WHEN NOT (episodes.status = 'resolved' AND excluded.status = 'firing') \
    AND episodes.annotations <> excluded.annotations THEN episodes.notifications + 1 \
  ELSE episodes.changed_at END \
RETURNING id, notifications, changed_at, fingerprint, starts_at";

fn values_sql(head: &str, rows: usize, cols: usize, tail: &str) -> String {
    let mut s = String::from(head);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 1..=cols {
            if c > 1 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", r * cols + c));
        }
        s.push(')');
    }
    s.push_str(tail);
    s
}

/// Splits a batch's alerts into chunks of at most [`CHUNK`] rows in which no episode key
/// repeats (PostgreSQL cannot upsert one row twice in a statement); order is kept.
fn chunks(batch: &[Incoming]) -> Vec<Vec<(&Incoming, &crate::payload::Alert)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(&Incoming, &crate::payload::Alert)> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for inc in batch {
        for a in &inc.notification.alerts {
            let k = (a.fingerprint.as_str(), a.starts_at);
            if cur.len() >= CHUNK || keys.contains(&k) {
                out.push(std::mem::take(&mut cur));
                keys.clear();
            }
            keys.insert(k);
            cur.push((inc, a));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const PAIR: &str = "INSERT INTO label_pairs (name, value) VALUES ($1, $2) \
ON CONFLICT (name, value) DO UPDATE SET name = excluded.name RETURNING id";
const EPISODE_LABEL_HEAD: &str = "INSERT INTO episode_labels (pair_id, episode_id) VALUES ";
const EPISODE_LABEL_TAIL: &str = " ON CONFLICT DO NOTHING";
const HISTORY_HEAD: &str = "INSERT INTO notifications (episode_id, received_at, status, ends_at, \
annotations, receiver, group_key) VALUES ";

/// Counts of one stored batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Alerts upserted.
    pub alerts: u64,
    /// Of which were new episodes.
    pub new_episodes: u64,
    /// History rows written (state changes).
    pub changes: u64,
}

/// Caches label pair ids (pairs are never deleted, so an id stays valid).
#[derive(Default)]
pub struct PairCache {
    ids: HashMap<(String, String), i64>,
}

impl PairCache {
    fn get(&self, k: &(String, String)) -> Option<i64> {
        self.ids.get(k).copied()
    }
    fn insert(&mut self, k: (String, String), id: i64) {
        if self.ids.len() > 1_000_000 {
            self.ids.clear();
        }
        self.ids.insert(k, id);
    }
}

macro_rules! store_in_tx {
    ($tx:expr, $batch:expr, $cache:expr, $new_pairs:expr, $stored:expr) => {{
        let mut links: Vec<(i64, i64)> = Vec::new();
        let mut history: Vec<(i64, &Incoming, &crate::payload::Alert)> = Vec::new();
        for chunk in chunks($batch) {
            let sql = upsert_sql(chunk.len());
            let mut q = sqlx::query(&sql);
            for (inc, a) in &chunk {
                let n = &inc.notification;
                q = q
                    .bind(&a.fingerprint)
                    .bind(a.starts_at)
                    .bind(a.status.as_str())
                    .bind(a.ends_at)
                    .bind(a.alertname())
                    .bind(a.severity())
                    .bind(a.instance())
                    .bind(a.labels_json())
                    .bind(a.annotations_json())
                    .bind(&a.generator_url)
                    .bind(&n.receiver)
                    .bind(&n.group_key)
                    .bind(inc.received_at);
            }
            let rows = q.fetch_all(&mut *$tx).await?;
            let mut by_key = HashMap::with_capacity(rows.len());
            for row in &rows {
                let id: i64 = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                let changed: i64 = row.try_get(2)?;
                let fp: String = row.try_get(3)?;
                let starts: i64 = row.try_get(4)?;
                by_key.insert((fp, starts), (id, count, changed));
            }
            for (inc, a) in chunk {
                let Some(&(id, count, changed)) = by_key.get(&(a.fingerprint.clone(), a.starts_at))
                else {
                    return Err(sqlx::Error::Protocol("upsert returned no row".into()));
                };
                $stored.alerts += 1;
                if count == 1 {
                    $stored.new_episodes += 1;
                    for (k, v) in &a.labels {
                        let key = (k.clone(), v.clone());
                        let pid = match $cache.get(&key) {
                            Some(p) => p,
                            None => {
                                let p: i64 = sqlx::query_scalar(PAIR)
                                    .bind(k)
                                    .bind(v)
                                    .fetch_one(&mut *$tx)
                                    .await?;
                                $new_pairs.push((key.clone(), p));
                                $cache.insert(key, p);
                                p
                            }
                        };
                        links.push((pid, id));
                    }
                }
                if changed == count {
                    $stored.changes += 1;
                    history.push((id, inc, a));
                }
            }
        }
        for part in links.chunks(CHUNK * 2) {
            let sql = values_sql(EPISODE_LABEL_HEAD, part.len(), 2, EPISODE_LABEL_TAIL);
            let mut q = sqlx::query(&sql);
            for (pid, id) in part {
                q = q.bind(*pid).bind(*id);
            }
            q.execute(&mut *$tx).await?;
        }
        for part in history.chunks(CHUNK) {
            let sql = values_sql(HISTORY_HEAD, part.len(), 7, "");
            let mut q = sqlx::query(&sql);
            for (id, inc, a) in part {
                q = q
                    .bind(*id)
                    .bind(inc.received_at)
                    .bind(a.status.as_str())
                    .bind(a.ends_at)
                    .bind(a.annotations_json())
                    .bind(&inc.notification.receiver)
                    .bind(&inc.notification.group_key);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Stores notifications, all in one transaction: either every alert of every notification
/// is committed, or none. Returns after the commit.
pub async fn store_batch(
    db: &Db,
    batch: &[Incoming],
    cache: &mut PairCache,
) -> Result<Stored, sqlx::Error> {
    let mut stored = Stored::default();
    let mut new_pairs: Vec<((String, String), i64)> = Vec::new();
    let r: Result<(), sqlx::Error> = async {
        match db {
            Db::Sqlite { write, .. } => {
                // BEGIN IMMEDIATE: take the write lock up front (no upgrade deadlocks).
                let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
                store_in_tx!(tx, batch, cache, new_pairs, stored);
                tx.commit().await?;
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                store_in_tx!(tx, batch, cache, new_pairs, stored);
                tx.commit().await?;
            }
        }
        Ok(())
    }
    .await;
    if r.is_err() {
        // Pair ids created in the rolled-back transaction are not valid.
        for (k, _) in &new_pairs {
            cache.ids.remove(k);
        }
    }
    r.map(|()| stored)
}

/// Deletes up to `limit` episodes that ended before `resolved_before` (resolved) or were last
/// seen before `firing_before` (firing but never resolved, e.g. lost by Alertmanager), with
/// their labels and history. Returns how many were deleted; call again until 0.
pub async fn retention_chunk(
    db: &Db,
    resolved_before: Option<i64>,
    firing_before: Option<i64>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM episodes WHERE id IN (SELECT id FROM episodes WHERE \
        (status = 'resolved' AND ends_at < $1) OR (status = 'firing' AND last_seen < $2) LIMIT $3)";
    let r = sqlx_bind_retention(db, sql, resolved_before, firing_before, limit).await?;
    Ok(r)
}

async fn sqlx_bind_retention(
    db: &Db,
    sql: &str,
    a: Option<i64>,
    b: Option<i64>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    // NULL compares false, so a disabled retention never matches.
    on_pool!(db, true, p => sqlx::query(sql).bind(a).bind(b).bind(limit).execute(p).await.map(|r| r.rows_affected()))
}

// ---------------------------------------------------------------------------------------
// Reading

/// A stored episode.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    pub id: i64,
    pub fingerprint: String,
    pub status: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub alertname: String,
    pub severity: String,
    pub instance: String,
    pub labels: String,
    pub annotations: String,
    pub generator_url: String,
    pub receiver: String,
    pub group_key: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub notifications: i64,
}

const EPISODE_COLS: &str = "e.id, e.fingerprint, e.status, e.starts_at, e.ends_at, e.alertname, \
e.severity, e.instance, e.labels, e.annotations, e.generator_url, e.receiver, e.group_key, \
e.first_seen, e.last_seen, e.notifications";

macro_rules! episode_from_row {
    ($r:expr) => {
        Episode {
            id: $r.try_get(0)?,
            fingerprint: $r.try_get(1)?,
            status: $r.try_get(2)?,
            starts_at: $r.try_get(3)?,
            ends_at: $r.try_get(4)?,
            alertname: $r.try_get(5)?,
            severity: $r.try_get(6)?,
            instance: $r.try_get(7)?,
            labels: $r.try_get(8)?,
            annotations: $r.try_get(9)?,
            generator_url: $r.try_get(10)?,
            receiver: $r.try_get(11)?,
            group_key: $r.try_get(12)?,
            first_seen: $r.try_get(13)?,
            last_seen: $r.try_get(14)?,
            notifications: $r.try_get(15)?,
        }
    };
}

/// A history row of an episode.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    pub received_at: i64,
    pub status: String,
    pub ends_at: Option<i64>,
    pub annotations: String,
    pub receiver: String,
    pub group_key: String,
}

/// Sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    StartsAt,
    LastSeen,
    Id,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::StartsAt => "e.starts_at",
            SortKey::LastSeen => "e.last_seen",
            SortKey::Id => "e.id",
        }
    }
    /// The episode's value of this key.
    pub fn of(self, e: &Episode) -> i64 {
        match self {
            SortKey::StartsAt => e.starts_at,
            SortKey::LastSeen => e.last_seen,
            SortKey::Id => e.id,
        }
    }
}

/// A validated alert query.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub status: Option<Status>,
    pub severity: Vec<String>,
    pub alertname: Vec<String>,
    pub fingerprint: Option<String>,
    pub text: Option<String>,
    pub matchers: Vec<Matcher>,
    pub sort: SortKey,
    pub descending: bool,
    /// (sort key value, id) of the last row of the previous page.
    pub cursor: Option<(i64, i64)>,
    /// 0-based offset (page pagination); ignored with a cursor.
    pub offset: i64,
    pub limit: i64,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            status: None,
            severity: vec![],
            alertname: vec![],
            fingerprint: None,
            text: None,
            matchers: vec![],
            sort: SortKey::StartsAt,
            descending: true,
            cursor: None,
            offset: 0,
            limit: 100,
        }
    }
}

/// An error of a query: bad request (4xx) or storage (5xx).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Bad(String),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Most distinct label values one regex/negative matcher may select.
pub const MAX_MATCHED_PAIRS: usize = 20_000;

struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    fn new() -> Self {
        Self {
            text: String::new(),
            params: Vec::new(),
        }
    }
    /// Appends `$N` for a new parameter.
    fn p(&mut self, v: Param) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }
    fn list(&mut self, vs: impl IntoIterator<Item = Param>) -> String {
        let items: Vec<String> = vs.into_iter().map(|v| self.p(v)).collect();
        items.join(", ")
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Int(i) => q.bind(*i),
                Param::Text(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}

async fn pairs_of(db: &Db, name: &str) -> Result<Vec<(i64, String)>, sqlx::Error> {
    on_pool!(db, false, p => {
        let rows = sqlx::query("SELECT id, value FROM label_pairs WHERE name = $1")
            .bind(name)
            .fetch_all(p)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    })
}

/// A LIKE pattern finding `s` inside the annotations' JSON text: `s` is JSON-escaped the way
/// the stored text is (quotes, newlines, backslashes), lowercased, and LIKE-escaped.
fn like_pattern(s: &str) -> String {
    let json = serde_json::to_string(&s.to_lowercase()).unwrap_or_default();
    let inner = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or("");
    let mut out = String::from("%");
    for c in inner.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Builds the WHERE clause (without the cursor) into `sql`.
async fn where_clause(db: &Db, q: &Query, sql: &mut Sql) -> Result<Vec<String>, QueryError> {
    let mut conds = Vec::new();
    if let Some(from) = q.from {
        let p = sql.p(Param::Int(from));
        conds.push(format!("(e.ends_at IS NULL OR e.ends_at >= {p})"));
    }
    if let Some(to) = q.to {
        let p = sql.p(Param::Int(to));
        conds.push(format!("e.starts_at <= {p}"));
    }
    if let Some(s) = q.status {
        let p = sql.p(Param::Text(s.as_str().into()));
        conds.push(format!("e.status = {p}"));
    }
    if !q.severity.is_empty() {
        let l = sql.list(q.severity.iter().cloned().map(Param::Text));
        conds.push(format!("e.severity IN ({l})"));
    }
    if !q.alertname.is_empty() {
        let l = sql.list(q.alertname.iter().cloned().map(Param::Text));
        conds.push(format!("e.alertname IN ({l})"));
    }
    if let Some(f) = &q.fingerprint {
        let p = sql.p(Param::Text(f.clone()));
        conds.push(format!("e.fingerprint = {p}"));
    }
    if let Some(t) = &q.text {
        let p = sql.p(Param::Text(like_pattern(t)));
        conds.push(format!("LOWER(e.annotations) LIKE {p} ESCAPE '\\'"));
    }
    for m in &q.matchers {
        if m.op == Op::Eq && !m.value.is_empty() {
            let n = sql.p(Param::Text(m.name.clone()));
            let v = sql.p(Param::Text(m.value.clone()));
            conds.push(format!(
                "e.id IN (SELECT el.episode_id FROM episode_labels el JOIN label_pairs lp \
                 ON lp.id = el.pair_id WHERE lp.name = {n} AND lp.value = {v})"
            ));
            continue;
        }
        // Evaluate the matcher here, over the label's distinct values.
        let pairs = pairs_of(db, &m.name).await?;
        let empty_matches = m.matches("");
        let ids: Vec<i64> = pairs
            .iter()
            .filter(|(_, v)| m.matches(v) != empty_matches)
            .map(|(id, _)| *id)
            .collect();
        if ids.len() > MAX_MATCHED_PAIRS {
            return Err(QueryError::Bad(format!(
                "matcher on {:?} selects {} distinct values (at most {MAX_MATCHED_PAIRS})",
                m.name,
                ids.len()
            )));
        }
        if empty_matches {
            // Episodes without the label match: exclude those whose value does not match.
            if !ids.is_empty() {
                let l = sql.list(ids.into_iter().map(Param::Int));
                conds.push(format!(
                    "e.id NOT IN (SELECT episode_id FROM episode_labels WHERE pair_id IN ({l}))"
                ));
            }
        } else if ids.is_empty() {
            conds.push("1 = 0".into());
        } else {
            let l = sql.list(ids.into_iter().map(Param::Int));
            conds.push(format!(
                "e.id IN (SELECT episode_id FROM episode_labels WHERE pair_id IN ({l}))"
            ));
        }
    }
    Ok(conds)
}

/// Lists episodes. Returns up to `limit` rows and whether more follow.
pub async fn list(db: &Db, q: &Query) -> Result<(Vec<Episode>, bool), QueryError> {
    let mut sql = Sql::new();
    let mut conds = where_clause(db, q, &mut sql).await?;
    let col = q.sort.column();
    if let Some((v, id)) = q.cursor {
        let (pv, pv2, pid) = (
            sql.p(Param::Int(v)),
            sql.p(Param::Int(v)),
            sql.p(Param::Int(id)),
        );
        let cmp = if q.descending { "<" } else { ">" };
        conds.push(format!(
            "({col} {cmp} {pv} OR ({col} = {pv2} AND e.id {cmp} {pid}))"
        ));
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    let limit = sql.p(Param::Int(q.limit + 1));
    let offset = sql.p(Param::Int(if q.cursor.is_some() { 0 } else { q.offset }));
    sql.text = format!(
        "SELECT {EPISODE_COLS} FROM episodes e {} ORDER BY {col} {dir}, e.id {dir} LIMIT {limit} OFFSET {offset}",
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    );
    let mut out: Vec<Episode> = on_pool!(db, false, p => {
        let rows = bind_all!(sqlx::query(&sql.text), &sql.params).fetch_all(p).await?;
        rows.iter().map(|r| Ok(episode_from_row!(r))).collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    let more = out.len() as i64 > q.limit;
    out.truncate(q.limit as usize);
    Ok((out, more))
}

/// One episode with its history, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<(Episode, Vec<HistoryRow>)>, sqlx::Error> {
    let sql = format!("SELECT {EPISODE_COLS} FROM episodes e WHERE e.id = $1");
    on_pool!(db, false, p => {
        let Some(r) = sqlx::query(&sql).bind(id).fetch_optional(p).await? else {
            return Ok(None);
        };
        let e = episode_from_row!(r);
        let rows = sqlx::query(
            "SELECT received_at, status, ends_at, annotations, receiver, group_key \
             FROM notifications WHERE episode_id = $1 ORDER BY received_at, id",
        )
        .bind(id)
        .fetch_all(p)
        .await?;
        let hist = rows
            .iter()
            .map(|r| {
                Ok(HistoryRow {
                    received_at: r.try_get(0)?,
                    status: r.try_get(1)?,
                    ends_at: r.try_get(2)?,
                    annotations: r.try_get(3)?,
                    receiver: r.try_get(4)?,
                    group_key: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((e, hist)))
    })
}

/// Episode counts grouped by (alertname, severity, status) for the query's filters.
pub async fn stats(db: &Db, q: &Query) -> Result<Vec<(String, String, String, i64)>, QueryError> {
    let mut sql = Sql::new();
    let conds = where_clause(db, q, &mut sql).await?;
    sql.text = format!(
        "SELECT e.alertname, e.severity, e.status, COUNT(*) FROM episodes e {} \
         GROUP BY e.alertname, e.severity, e.status ORDER BY e.alertname, e.severity, e.status",
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    );
    let out = on_pool!(db, false, p => {
        let rows = bind_all!(sqlx::query(&sql.text), &sql.params).fetch_all(p).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("postgres://bridge:s3cret@db.example:5432/alerts?sslmode=require"),
            "postgres://db.example:5432"
        );
        assert_eq!(redact("sqlite:///var/lib/a.db"), "sqlite:///var/lib/a.db");
        assert!(!redact("garbage s3cret").contains("s3cret"));
    }

    #[test]
    fn like_is_escaped() {
        assert_eq!(like_pattern("50%_A"), "%50\\%\\_a%");
        assert_eq!(like_pattern("a\"b\\"), "%a\\\\\"b\\\\\\\\%");
    }

    fn notif(body: serde_json::Value) -> Incoming {
        Incoming {
            notification: payload::parse(&serde_json::to_vec(&body).unwrap()).unwrap(),
            received_at: 1_000,
        }
    }

    fn alert(fp: &str, status: &str, ends: &str, summary: &str) -> serde_json::Value {
        serde_json::json!({"version":"4","receiver":"r","status":status,"groupKey":"g",
            "alerts":[{"status":status,"labels":{"alertname":"A","node":format!("n-{fp}"),"severity":"critical"},
            "annotations":{"summary":summary},"startsAt":"2026-01-01T00:00:00Z","endsAt":ends,
            "generatorURL":"http://p/graph","fingerprint":fp}]})
    }

    async fn sqlite() -> (tempfile::TempDir, Db) {
        let d = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", d.path().join("a.db").display());
        let db = Db::open(&url, &Options::default()).await.unwrap();
        (d, db)
    }

    #[tokio::test]
    async fn upsert_is_idempotent_and_resolved_wins() {
        let (_d, db) = sqlite().await;
        let mut c = PairCache::default();
        let z = "0001-01-01T00:00:00Z";
        let fire = notif(alert("f1", "firing", z, "hot"));
        let s = store_batch(&db, &[fire.clone(), fire.clone()], &mut c)
            .await
            .unwrap();
        assert_eq!(
            s,
            Stored {
                alerts: 2,
                new_episodes: 1,
                changes: 1
            }
        );
        let res = notif(alert("f1", "resolved", "2026-01-01T00:05:00Z", "hot"));
        store_batch(&db, &[res], &mut c).await.unwrap();
        // A late firing replay (e.g. from the second Alertmanager of an HA pair).
        let s = store_batch(&db, std::slice::from_ref(&fire), &mut c)
            .await
            .unwrap();
        assert_eq!(s.changes, 0);
        let (rows, more) = list(&db, &Query::default()).await.unwrap();
        assert!(!more);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, "resolved");
        assert_eq!(rows[0].ends_at, Some(rows[0].starts_at + 300_000));
        assert_eq!(rows[0].notifications, 4);
        let (_, hist) = get(&db, rows[0].id).await.unwrap().unwrap();
        let st: Vec<&str> = hist.iter().map(|h| h.status.as_str()).collect();
        assert_eq!(st, ["firing", "resolved"]);
        // A changed annotation while firing is recorded in the history.
        store_batch(&db, &[notif(alert("f2", "firing", z, "a"))], &mut c)
            .await
            .unwrap();
        store_batch(&db, &[notif(alert("f2", "firing", z, "b"))], &mut c)
            .await
            .unwrap();
        let q = Query {
            fingerprint: Some("f2".into()),
            ..Default::default()
        };
        let (rows, _) = list(&db, &q).await.unwrap();
        assert_eq!(rows[0].annotations, r#"{"summary":"b"}"#);
        assert_eq!(get(&db, rows[0].id).await.unwrap().unwrap().1.len(), 2);
    }

    #[tokio::test]
    async fn one_batch_with_the_same_episode_several_times() {
        let (_d, db) = sqlite().await;
        let mut c = PairCache::default();
        let z = "0001-01-01T00:00:00Z";
        let fire = notif(alert("d1", "firing", z, "hot"));
        let res = notif(alert("d1", "resolved", "2026-01-01T00:01:00Z", "hot"));
        let s = store_batch(&db, &[fire.clone(), res, fire], &mut c)
            .await
            .unwrap();
        assert_eq!(
            s,
            Stored {
                alerts: 3,
                new_episodes: 1,
                changes: 2
            }
        );
        let (rows, _) = list(&db, &Query::default()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].status.as_str(), rows[0].notifications),
            ("resolved", 3)
        );
        // The label index was written once.
        let q = Query {
            matchers: crate::matcher::parse(r#"{node="n-d1"}"#).unwrap(),
            ..Default::default()
        };
        assert_eq!(list(&db, &q).await.unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn retention_deletes_old_episodes_with_their_rows() {
        let (_d, db) = sqlite().await;
        let mut c = PairCache::default();
        let z = "0001-01-01T00:00:00Z";
        // Resolved at 00:05 and firing (last seen at received_at = 1000 ms) episodes.
        store_batch(
            &db,
            &[notif(alert("old", "resolved", "2026-01-01T00:05:00Z", "x"))],
            &mut c,
        )
        .await
        .unwrap();
        store_batch(&db, &[notif(alert("stale", "firing", z, "x"))], &mut c)
            .await
            .unwrap();
        let ends = crate::payload::parse_time("2026-01-01T00:05:00Z")
            .unwrap()
            .unwrap();
        // Cut-offs before both: nothing goes.
        assert_eq!(
            retention_chunk(&db, Some(ends), Some(1000), 10)
                .await
                .unwrap(),
            0
        );
        // Only the resolved one is past its cut-off.
        assert_eq!(
            retention_chunk(&db, Some(ends + 1), None, 10)
                .await
                .unwrap(),
            1
        );
        let (rows, _) = list(&db, &Query::default()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].fingerprint, "stale");
        // The firing one by its last notification.
        assert_eq!(retention_chunk(&db, None, Some(1001), 10).await.unwrap(), 1);
        assert!(list(&db, &Query::default()).await.unwrap().0.is_empty());
        // Labels and history went with them (ON DELETE CASCADE).
        if let Db::Sqlite { read, .. } = &db {
            let n: i64 = sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM episode_labels) + (SELECT COUNT(*) FROM notifications)")
                .fetch_one(read)
                .await
                .unwrap();
            assert_eq!(n, 0);
        }
    }

    #[tokio::test]
    async fn matchers_follow_prometheus_semantics() {
        let (_d, db) = sqlite().await;
        let mut c = PairCache::default();
        let z = "0001-01-01T00:00:00Z";
        for fp in ["a1", "a2", "b1"] {
            store_batch(&db, &[notif(alert(fp, "firing", z, "x"))], &mut c)
                .await
                .unwrap();
        }
        let run = |m: &str| {
            let db = db.clone();
            let m = crate::matcher::parse(m).unwrap();
            async move {
                let q = Query {
                    matchers: m,
                    sort: SortKey::Id,
                    descending: false,
                    ..Default::default()
                };
                list(&db, &q)
                    .await
                    .unwrap()
                    .0
                    .into_iter()
                    .map(|e| e.fingerprint)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(run(r#"{node="n-a1"}"#).await, ["a1"]);
        assert_eq!(run(r#"{node!="n-a1"}"#).await, ["a2", "b1"]);
        assert_eq!(run(r#"{node=~"n-a.*"}"#).await, ["a1", "a2"]);
        assert_eq!(run(r#"{node!~"n-a.*"}"#).await, ["b1"]);
        assert_eq!(run(r#"{node=~"n-a"}"#).await, Vec::<String>::new());
        assert_eq!(run(r#"{missing=""}"#).await, ["a1", "a2", "b1"]);
        assert_eq!(run(r#"{node=""}"#).await, Vec::<String>::new());
        assert_eq!(run(r#"{missing=~".*"}"#).await, ["a1", "a2", "b1"]);
        assert_eq!(run(r#"{node=~"n-a.*",node!="n-a2"}"#).await, ["a1"]);
        assert_eq!(
            run(r#"{node="'; DROP TABLE episodes;--"}"#).await,
            Vec::<String>::new()
        );
    }
}
