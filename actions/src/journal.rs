//! The journal: SQLite (WAL, `synchronous=FULL`), written before anything runs.
//!
//! * `actions`: one row per decision with its state; the unique `idem_key`
//!   (`rule|fingerprint|startsAt|phase`) makes Alertmanager's repeated notifications no-ops.
//! * `events`: every transition, append-only (the audit trail the page and API show).
//! * `changes` / `holders`: what hpcmon changed and which alerts still need it, so that a
//!   resolve reverts only hpcmon's own changes, and only when no other alert holds them.
//! * `last_change`: the hold-off clock per (group, target).
//! * `sources`: firing source alerts of rules that need several to agree.
//! * `settings`: the kill switch.
//!
//! A single writer connection serialises writes; readers use their own pool.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Row as _;

/// Action states.
pub mod state {
    /// Waiting for the executor.
    pub const PENDING: &str = "pending";
    /// Waiting for a hold-off, a rate limit or a retry (`not_before_ms`).
    pub const DEFERRED: &str = "deferred";
    /// Waiting for more source alerts to agree.
    pub const AWAITING_QUORUM: &str = "awaiting_quorum";
    /// Waiting for a person to confirm.
    pub const AWAITING_CONFIRMATION: &str = "awaiting_confirmation";
    /// Its commands are running (a restart finds it here if it died meanwhile).
    pub const RUNNING: &str = "running";
    /// Done.
    pub const DONE: &str = "done";
    /// Dry-run: checked and journaled with its commands, nothing run.
    pub const DRY_RUN: &str = "dry_run";
    /// Refused: bad targets, unknown names, over a cap.
    pub const REJECTED: &str = "rejected";
    /// Its commands failed (after the retries).
    pub const FAILED: &str = "failed";
    /// The alert resolved before the action ran.
    pub const SUPERSEDED: &str = "superseded";
    /// Cancelled through the API.
    pub const CANCELLED: &str = "cancelled";
    /// Every state, for metrics.
    pub const ALL: [&str; 11] = [
        PENDING,
        DEFERRED,
        AWAITING_QUORUM,
        AWAITING_CONFIRMATION,
        RUNNING,
        DONE,
        DRY_RUN,
        REJECTED,
        FAILED,
        SUPERSEDED,
        CANCELLED,
    ];
    /// States that have not ended.
    pub fn active(s: &str) -> bool {
        matches!(
            s,
            PENDING | DEFERRED | AWAITING_QUORUM | AWAITING_CONFIRMATION | RUNNING
        )
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An RFC 3339 rendering of a millisecond time, for journal texts.
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// One action row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ActionRow {
    pub id: i64,
    pub idem_key: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub rule: String,
    pub action: String,
    pub phase: String,
    pub revert_of: Option<i64>,
    pub priority: i64,
    pub mode: String,
    pub alertname: String,
    pub fingerprint: String,
    pub starts_ms: i64,
    pub labels: String,
    pub targets: String,
    pub reason: String,
    pub hold_off_ms: i64,
    pub max_nodes: i64,
    pub state: String,
    pub detail: String,
    pub not_before_ms: Option<i64>,
    pub attempts: i64,
    pub commands: String,
    pub affected: String,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl ActionRow {
    /// The row as the API shows it: JSON columns as JSON, times as RFC 3339 too.
    pub fn to_json(&self) -> serde_json::Value {
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
        let t = |ms: Option<i64>| ms.map(fmt_ms);
        serde_json::json!({
            "id": self.id,
            "rule": self.rule,
            "action": self.action,
            "phase": self.phase,
            "revert_of": self.revert_of,
            "priority": self.priority,
            "mode": self.mode,
            "state": self.state,
            "detail": self.detail,
            "alertname": self.alertname,
            "fingerprint": self.fingerprint,
            "starts_at": fmt_ms(self.starts_ms),
            "labels": parse(&self.labels),
            "targets": parse(&self.targets),
            "reason": self.reason,
            "hold_off_seconds": self.hold_off_ms / 1000,
            "max_nodes": self.max_nodes,
            "not_before": t(self.not_before_ms),
            "attempts": self.attempts,
            "commands": parse(&self.commands),
            "affected": parse(&self.affected),
            "created_at": fmt_ms(self.created_ms),
            "updated_at": fmt_ms(self.updated_ms),
            "started_at": t(self.started_ms),
            "finished_at": t(self.finished_ms),
        })
    }
}

/// One event row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub action_id: i64,
    pub at_ms: i64,
    pub state: String,
    pub detail: String,
    pub actor: String,
}

/// A new decision to journal.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub idem_key: String,
    pub rule: String,
    pub action: String,
    pub phase: &'static str,
    pub revert_of: Option<i64>,
    pub priority: i64,
    pub mode: &'static str,
    pub alertname: String,
    pub fingerprint: String,
    pub starts_ms: i64,
    pub labels: String,
    pub targets: String,
    pub reason: String,
    pub hold_off_ms: i64,
    pub max_nodes: i64,
    pub state: &'static str,
    pub detail: String,
}

/// A live change hpcmon made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Change {
    pub id: i64,
    pub kind: String,
    pub target: String,
    pub action_id: i64,
    pub status: String,
    pub prior: String,
    pub at_ms: i64,
    pub revert_action_id: Option<i64>,
}

/// Filters of [`Journal::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub state: Option<String>,
    pub rule: Option<String>,
    pub action: Option<String>,
    /// Only rows with an id below this (paging, newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// The journal's database.
#[derive(Debug, Clone)]
pub struct Journal {
    write: SqlitePool,
    read: SqlitePool,
}

/// Columns of `actions` in [`ActionRow`]'s order.
const COLS: &str = "id, idem_key, created_ms, updated_ms, rule, action, phase, revert_of, priority, mode, alertname, fingerprint, starts_ms, labels, targets, reason, hold_off_ms, max_nodes, state, detail, not_before_ms, attempts, commands, affected, started_ms, finished_ms";

impl Journal {
    /// Opens (creating and migrating) the journal at `path`.
    pub async fn open(path: &Path) -> anyhow::Result<Journal> {
        let co = SqliteConnectOptions::from_str("sqlite://")
            .expect("static URL")
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(co.clone())
            .await
            .with_context(|| format!("opening the journal {}", path.display()))?;
        sqlx::migrate!("./migrations")
            .run(&write)
            .await
            .context("migrating the journal")?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(co.read_only(true))
            .await?;
        Ok(Journal { write, read })
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` semantics: the single writer).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.write.begin().await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    /// One action.
    pub async fn get(&self, id: i64) -> Result<Option<ActionRow>, sqlx::Error> {
        sqlx::query_as::<_, ActionRow>(&format!("SELECT {COLS} FROM actions WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.read)
            .await
    }

    /// One action by its idempotency key.
    pub async fn get_by_key(&self, key: &str) -> Result<Option<ActionRow>, sqlx::Error> {
        sqlx::query_as::<_, ActionRow>(&format!("SELECT {COLS} FROM actions WHERE idem_key = ?"))
            .bind(key)
            .fetch_optional(&self.read)
            .await
    }

    /// Actions, newest first.
    pub async fn list(&self, q: &ListQuery) -> Result<Vec<ActionRow>, sqlx::Error> {
        let mut sql = format!("SELECT {COLS} FROM actions WHERE 1=1");
        if q.state.is_some() {
            sql.push_str(" AND state = ?");
        }
        if q.rule.is_some() {
            sql.push_str(" AND rule = ?");
        }
        if q.action.is_some() {
            sql.push_str(" AND action = ?");
        }
        if q.before.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query_as::<_, ActionRow>(&sql);
        for v in [&q.state, &q.rule, &q.action].into_iter().flatten() {
            query = query.bind(v.clone());
        }
        if let Some(b) = q.before {
            query = query.bind(b);
        }
        query.bind(q.limit).fetch_all(&self.read).await
    }

    /// An action's events, oldest first.
    pub async fn events(&self, id: i64) -> Result<Vec<EventRow>, sqlx::Error> {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, action_id, at_ms, state, detail, actor FROM events WHERE action_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await
    }

    /// Rows per (action, state), for metrics.
    pub async fn counts(&self) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT action, state, COUNT(*) FROM actions GROUP BY action, state")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Live changes per kind (e.g. nodes hpcmon powered down and still owns).
    pub async fn live_changes(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) FROM changes WHERE status IN ('planned','applied','reverting') GROUP BY kind",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The newest hold-off clock entry of a group (for metrics).
    pub async fn last_change_of(&self, grp: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT MAX(at_ms) FROM last_change WHERE grp = ?")
            .bind(grp)
            .fetch_one(&self.read)
            .await
    }

    /// The kill switch.
    pub async fn paused(&self) -> Result<bool, sqlx::Error> {
        let v: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'paused'")
                .fetch_optional(&self.read)
                .await?;
        Ok(v.as_deref() == Some("1"))
    }

    /// Sets the kill switch (durably).
    pub async fn set_paused(&self, paused: bool, actor: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_ms, actor) VALUES ('paused', ?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms, actor = excluded.actor",
        )
        .bind(if paused { "1" } else { "0" })
        .bind(now_ms())
        .bind(actor)
        .execute(&self.write)
        .await
        .map(|_| ())
    }

    /// The next action the executor may take: pending or deferred past its time, highest
    /// priority first, oldest first.
    pub async fn next_runnable(&self, now: i64) -> Result<Option<ActionRow>, sqlx::Error> {
        sqlx::query_as::<_, ActionRow>(&format!(
            "SELECT {COLS} FROM actions WHERE state IN ('pending','deferred') \
             AND (not_before_ms IS NULL OR not_before_ms <= ?) ORDER BY priority DESC, id LIMIT 1"
        ))
        .bind(now)
        .fetch_optional(&self.write)
        .await
    }

    /// The earliest time a deferred action becomes runnable.
    pub async fn next_wakeup(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT MIN(not_before_ms) FROM actions WHERE state IN ('pending','deferred')",
        )
        .fetch_one(&self.write)
        .await
    }

    /// Actions found `running` at startup: their process died mid-way.
    pub async fn interrupted(&self) -> Result<Vec<ActionRow>, sqlx::Error> {
        sqlx::query_as::<_, ActionRow>(&format!(
            "SELECT {COLS} FROM actions WHERE state = 'running' ORDER BY id"
        ))
        .fetch_all(&self.write)
        .await
    }

    /// Enforced actions started since `since_ms`, and the oldest such start.
    pub async fn started_since(&self, since_ms: i64) -> Result<(i64, Option<i64>), sqlx::Error> {
        let r = sqlx::query(
            "SELECT COUNT(*), MIN(started_ms) FROM actions WHERE mode = 'enforce' AND started_ms >= ?",
        )
        .bind(since_ms)
        .fetch_one(&self.write)
        .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Last change of `target` in `grp` (hold-off clock).
    pub async fn last_change(&self, grp: &str, target: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT at_ms FROM last_change WHERE grp = ? AND target = ?")
            .bind(grp)
            .bind(target)
            .fetch_optional(&self.write)
            .await
    }

    /// The live change of `target` by a `kind` action (planned, applied or being reverted).
    pub async fn live_change(
        &self,
        kind: &str,
        target: &str,
    ) -> Result<Option<Change>, sqlx::Error> {
        sqlx::query_as::<_, Change>(
            "SELECT id, kind, target, action_id, status, prior, at_ms, revert_action_id FROM changes \
             WHERE kind = ? AND target = ? AND status IN ('planned','applied','reverting') ORDER BY id DESC LIMIT 1",
        )
        .bind(kind)
        .bind(target)
        .fetch_optional(&self.write)
        .await
    }

    /// Targets `action_id` holds.
    pub async fn held_by(&self, action_id: i64) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT kind, target FROM holders WHERE action_id = ? ORDER BY target")
                .bind(action_id)
                .fetch_all(&self.write)
                .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Other holders of (`kind`, `target`) than `except`.
    pub async fn other_holders(
        &self,
        kind: &str,
        target: &str,
        except: i64,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT action_id FROM holders WHERE kind = ? AND target = ? AND action_id != ? ORDER BY action_id",
        )
        .bind(kind)
        .bind(target)
        .bind(except)
        .fetch_all(&self.write)
        .await
    }

    /// Changes a revert action has claimed (`reverting`, after a restart).
    pub async fn reverting_for(&self, revert_id: i64) -> Result<Vec<Change>, sqlx::Error> {
        sqlx::query_as::<_, Change>(
            "SELECT id, kind, target, action_id, status, prior, at_ms, revert_action_id FROM changes \
             WHERE revert_action_id = ? AND status = 'reverting' ORDER BY target",
        )
        .bind(revert_id)
        .fetch_all(&self.write)
        .await
    }
}

/// Inserts a decision unless its key exists; returns its id, or `None` for a duplicate.
pub async fn insert(c: &mut SqliteConnection, a: &NewAction) -> Result<Option<i64>, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO actions (idem_key, created_ms, updated_ms, rule, action, phase, revert_of, priority, mode, \
         alertname, fingerprint, starts_ms, labels, targets, reason, hold_off_ms, max_nodes, state, detail) \
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(&a.idem_key)
    .bind(now)
    .bind(now)
    .bind(&a.rule)
    .bind(&a.action)
    .bind(a.phase)
    .bind(a.revert_of)
    .bind(a.priority)
    .bind(a.mode)
    .bind(&a.alertname)
    .bind(&a.fingerprint)
    .bind(a.starts_ms)
    .bind(&a.labels)
    .bind(&a.targets)
    .bind(&a.reason)
    .bind(a.hold_off_ms)
    .bind(a.max_nodes)
    .bind(a.state)
    .bind(&a.detail)
    .execute(&mut *c)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let id = r.last_insert_rowid();
    event(c, id, a.state, &a.detail, "").await?;
    Ok(Some(id))
}

/// Appends an event.
pub async fn event(
    c: &mut SqliteConnection,
    id: i64,
    state: &str,
    detail: &str,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO events (action_id, at_ms, state, detail, actor) VALUES (?,?,?,?,?)")
        .bind(id)
        .bind(now_ms())
        .bind(state)
        .bind(detail)
        .bind(actor)
        .execute(c)
        .await
        .map(|_| ())
}

/// Moves an action to `state` with `detail` (and an event).
pub async fn set_state(
    c: &mut SqliteConnection,
    id: i64,
    state: &str,
    detail: &str,
    actor: &str,
    not_before_ms: Option<i64>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let finished = (!state::active(state)).then_some(now);
    sqlx::query(
        "UPDATE actions SET state = ?, detail = ?, updated_ms = ?, not_before_ms = ?, \
         finished_ms = COALESCE(?, finished_ms) WHERE id = ?",
    )
    .bind(state)
    .bind(detail)
    .bind(now)
    .bind(not_before_ms)
    .bind(finished)
    .bind(id)
    .execute(&mut *c)
    .await?;
    event(c, id, state, detail, actor).await
}

/// Records what an action runs (or would run) and what it affects.
pub async fn set_plan(
    c: &mut SqliteConnection,
    id: i64,
    commands: &[Vec<String>],
    affected: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE actions SET commands = ?, affected = ? WHERE id = ?")
        .bind(serde_json::to_string(commands).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(affected).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(c)
        .await
        .map(|_| ())
}

/// Marks an action started (attempt counted, start time set on the first attempt).
pub async fn mark_started(c: &mut SqliteConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE actions SET attempts = attempts + 1, started_ms = COALESCE(started_ms, ?) WHERE id = ?",
    )
    .bind(now_ms())
    .bind(id)
    .execute(c)
    .await
    .map(|_| ())
}

/// Plans a change of `target` by `action_id` (before its command runs) and makes the action
/// a holder.
pub async fn plan_change(
    c: &mut SqliteConnection,
    kind: &str,
    target: &str,
    action_id: i64,
    prior: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO changes (kind, target, action_id, status, prior, at_ms) VALUES (?,?,?,'planned',?,?)",
    )
    .bind(kind)
    .bind(target)
    .bind(action_id)
    .bind(prior)
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    add_holder(c, kind, target, action_id).await
}

/// Makes `action_id` a holder of (`kind`, `target`).
pub async fn add_holder(
    c: &mut SqliteConnection,
    kind: &str,
    target: &str,
    action_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT OR IGNORE INTO holders (kind, target, action_id) VALUES (?,?,?)")
        .bind(kind)
        .bind(target)
        .bind(action_id)
        .execute(c)
        .await
        .map(|_| ())
}

/// Removes every holder of (`kind`, `target`) and returns how many there were.
pub async fn drop_holders(
    c: &mut SqliteConnection,
    kind: &str,
    target: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM holders WHERE kind = ? AND target = ?")
        .bind(kind)
        .bind(target)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
}

/// Removes `action_id`'s holds.
pub async fn release(c: &mut SqliteConnection, action_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM holders WHERE action_id = ?")
        .bind(action_id)
        .execute(c)
        .await
        .map(|_| ())
}

/// Sets the status of `action_id`'s changes in `from` to `to`.
pub async fn change_status(
    c: &mut SqliteConnection,
    action_id: i64,
    targets: &[String],
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    for t in targets {
        sqlx::query(
            "UPDATE changes SET status = ?, ended_ms = CASE WHEN ? IN ('reverted','abandoned','failed') THEN ? ELSE ended_ms END \
             WHERE action_id = ? AND target = ? AND status = ?",
        )
        .bind(to)
        .bind(to)
        .bind(now_ms())
        .bind(action_id)
        .bind(t)
        .bind(from)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Claims a live change for reverting by `revert_id` (`reverting`), or ends it
/// (`reverted` / `abandoned`).
pub async fn set_change(
    c: &mut SqliteConnection,
    change_id: i64,
    status: &str,
    revert_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE changes SET status = ?, revert_action_id = COALESCE(?, revert_action_id), \
         ended_ms = CASE WHEN ? IN ('reverted','abandoned','failed') THEN ? ELSE ended_ms END WHERE id = ?",
    )
    .bind(status)
    .bind(revert_id)
    .bind(status)
    .bind(now_ms())
    .bind(change_id)
    .execute(c)
    .await
    .map(|_| ())
}

/// Starts the hold-off clock of `targets` in `grp`.
pub async fn touch(
    c: &mut SqliteConnection,
    grp: &str,
    targets: &[String],
    action_id: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for t in targets {
        sqlx::query(
            "INSERT INTO last_change (grp, target, at_ms, action_id) VALUES (?,?,?,?) \
             ON CONFLICT (grp, target) DO UPDATE SET at_ms = excluded.at_ms, action_id = excluded.action_id",
        )
        .bind(grp)
        .bind(t)
        .bind(now)
        .bind(action_id)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Records a firing (or resolved) source alert of a rule needing several.
pub async fn upsert_source(
    c: &mut SqliteConnection,
    rule: &str,
    fingerprint: &str,
    starts_ms: i64,
    distinct: &str,
    firing: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sources (rule, fingerprint, starts_ms, distinct_value, firing, updated_ms) VALUES (?,?,?,?,?,?) \
         ON CONFLICT (rule, fingerprint, starts_ms) DO UPDATE SET firing = excluded.firing, updated_ms = excluded.updated_ms",
    )
    .bind(rule)
    .bind(fingerprint)
    .bind(starts_ms)
    .bind(distinct)
    .bind(firing as i64)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|_| ())
}

/// Distinct values among a rule's firing sources.
pub async fn firing_sources(
    c: &mut SqliteConnection,
    rule: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT distinct_value FROM sources WHERE rule = ? AND firing = 1 ORDER BY distinct_value",
    )
    .bind(rule)
    .fetch_all(c)
    .await
}

/// Ids of a rule's actions waiting for agreement.
pub async fn awaiting_quorum(
    c: &mut SqliteConnection,
    rule: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM actions WHERE rule = ? AND state = 'awaiting_quorum' ORDER BY id",
    )
    .bind(rule)
    .fetch_all(c)
    .await
}

/// An action row inside a transaction.
pub async fn get_in(c: &mut SqliteConnection, key: &str) -> Result<Option<ActionRow>, sqlx::Error> {
    sqlx::query_as::<_, ActionRow>(&format!("SELECT {COLS} FROM actions WHERE idem_key = ?"))
        .bind(key)
        .fetch_optional(c)
        .await
}

/// The newest apply decision of `rule` for an alert `fingerprint`.
pub async fn latest_apply(
    c: &mut SqliteConnection,
    rule: &str,
    fingerprint: &str,
) -> Result<Option<ActionRow>, sqlx::Error> {
    sqlx::query_as::<_, ActionRow>(&format!(
        "SELECT {COLS} FROM actions WHERE rule = ? AND fingerprint = ? AND phase = 'apply' ORDER BY id DESC LIMIT 1"
    ))
    .bind(rule)
    .bind(fingerprint)
    .fetch_optional(c)
    .await
}

/// An action row by id inside a transaction.
pub async fn get_id_in(
    c: &mut SqliteConnection,
    id: i64,
) -> Result<Option<ActionRow>, sqlx::Error> {
    sqlx::query_as::<_, ActionRow>(&format!("SELECT {COLS} FROM actions WHERE id = ?"))
        .bind(id)
        .fetch_optional(c)
        .await
}
