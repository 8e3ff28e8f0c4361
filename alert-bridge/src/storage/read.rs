//! Reading: the query API's SQL.
//!
//! Every query is built from fixed fragments; user strings only travel as bound parameters,
//! and sets of any size (label-pair ids, alert names, severities) as **one** parameter (a JSON
//! array), so no query can overflow a backend's parameter limit.
//!
//! **Label matchers** follow Prometheus (anchored regex, a missing label is the empty string).
//! Equality is an index lookup by pair hash. A regular expression is never run by the
//! database: the bridge streams the label's values from `label_pairs` and matches them with
//! Rust's `regex` (linear time). When every match must begin with one of a few literal
//! prefixes (`n00.*`, `gpu(1|2).*`), only those index ranges are read; otherwise the scan is
//! bounded ([`MAX_SCANNED_VALUES`]). Values stream through one at a time (memory does not grow
//! with the number of distinct values), and at most [`SCANS_AT_ONCE`] scans run at once. On
//! SQLite, a label that needs a full scan is read once into a bounded in-memory index and
//! matched there afterwards (see [`super::value_index`]).

use futures_util::TryStreamExt as _;
use sqlx::Row as _;
use tokio::sync::Semaphore;

use super::keys::{index_key, pair_hash, prefix_upper_bound, VPREFIX};
use super::sql::{bind_params, Param, Sql};
use super::{on_pool, Db, Role};
use crate::matcher::{Matcher, Op};
use crate::payload::Status;

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
            fingerprint: $r.try_get_unchecked(1)?,
            status: $r.try_get_unchecked(2)?,
            starts_at: $r.try_get(3)?,
            ends_at: $r.try_get(4)?,
            alertname: $r.try_get_unchecked(5)?,
            severity: $r.try_get_unchecked(6)?,
            instance: $r.try_get_unchecked(7)?,
            labels: $r.try_get_unchecked(8)?,
            annotations: $r.try_get_unchecked(9)?,
            generator_url: $r.try_get_unchecked(10)?,
            receiver: $r.try_get_unchecked(11)?,
            group_key: $r.try_get_unchecked(12)?,
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
    pub reason: String,
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
    /// SQLite: ` INDEXED BY` the index on this key's column (nothing for the rowid).
    fn sqlite_index(self) -> &'static str {
        match self {
            SortKey::StartsAt => " INDEXED BY episodes_starts_at",
            SortKey::LastSeen => " INDEXED BY episodes_last_seen",
            SortKey::Id => "",
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

/// An error of a query: the reader's mistake (4xx, not a storage problem) or storage (5xx).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Bad(String),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Most distinct label values one regex or negative matcher may select.
pub const MAX_MATCHED_PAIRS: usize = 100_000;
/// Most label values one matcher may scan.
pub const MAX_SCANNED_VALUES: usize = 2_000_000;
/// Most label-value scans running at once (the rest wait).
pub const SCANS_AT_ONCE: usize = 2;
/// Most label matchers in one query.
pub const MAX_MATCHERS: usize = 32;

static SCANS: Semaphore = Semaphore::const_new(SCANS_AT_ONCE);

/// Which label values a matcher is decided by, and whether episodes carrying one of them
/// are the result (`include`) or are removed from it.
enum Plan<'a> {
    /// The value equal to this one.
    Equals(&'a str),
    /// Every value but the empty string.
    NonEmpty,
    /// The values the regex matches (or, with `negate`, does not match).
    Regex(&'a Matcher, bool),
}

/// Prometheus semantics, with "label missing" = "": see the module docs.
fn plan(m: &Matcher) -> (Plan<'_>, bool) {
    let empty = m.matches("");
    match m.op {
        Op::Eq if !m.value.is_empty() => (Plan::Equals(&m.value), true),
        Op::Eq => (Plan::NonEmpty, false),
        Op::Ne if !m.value.is_empty() => (Plan::Equals(&m.value), false),
        Op::Ne => (Plan::NonEmpty, true),
        // In general: the values v with matches(v) != matches(""); episodes carrying one are
        // the result when a missing label does not match, and are removed when it does.
        Op::Re => (Plan::Regex(m, empty), !empty),
        Op::Nre => (Plan::Regex(m, !empty), !empty),
    }
}

/// A range `[lo, hi)` of `label_pairs.vprefix` (`hi` None: unbounded).
type Range = (Vec<u8>, Option<Vec<u8>>);

/// Streams the label's values (within the regex's literal prefixes, when it has some) and
/// returns the pair ids whose value the regex matches (`negate`: does not match).
async fn scan(db: &Db, m: &Matcher, negate: bool) -> Result<Vec<i64>, QueryError> {
    let _permit = SCANS
        .acquire()
        .await
        .map_err(|_| QueryError::Bad("shutting down".into()))?;
    // Ranges [lo, hi) over vprefix; None = the whole label.
    let ranges: Option<Vec<Range>> = if negate {
        None
    } else {
        m.literal_prefixes().map(|ps| {
            ps.into_iter()
                .map(|p| {
                    let p = p[..p.len().min(VPREFIX)].to_vec();
                    let hi = prefix_upper_bound(&p);
                    (p, hi)
                })
                .collect()
        })
    };
    let name = crate::storage::keys::plain_text(&m.name).into_owned();
    // SQLite: a label indexed in memory, or one that a full scan would have to read (no
    // literal prefix), is matched from the value index.
    if let Db::Sqlite(s) = db {
        if ranges.is_none() || s.values.holds(&name).await {
            if let Some(ids) = s
                .values
                .matching(s, m, &name, negate, MAX_MATCHED_PAIRS)
                .await?
            {
                return Ok(ids);
            }
        }
    }
    let mut ids = Vec::new();
    let mut scanned = 0usize;
    let runs: Vec<Option<Range>> = match ranges {
        None => vec![None],
        Some(r) => r.into_iter().map(Some).collect(),
    };
    for range in runs {
        on_pool!(db, Role::Read, |p, d| {
            let (sql, lo, hi) = match &range {
                None => ("SELECT id, value FROM label_pairs WHERE name = $1", None, None),
                Some((lo, Some(hi))) => (
                    "SELECT id, value FROM label_pairs WHERE name = $1 AND vprefix >= $2 AND vprefix < $3",
                    Some(lo.clone()),
                    Some(hi.clone()),
                ),
                Some((lo, None)) => (
                    "SELECT id, value FROM label_pairs WHERE name = $1 AND vprefix >= $2",
                    Some(lo.clone()),
                    None,
                ),
            };
            let sql = d.sql(sql);
            let mut q = sqlx::query(&sql).bind(&name);
            if let Some(lo) = lo {
                q = q.bind(lo);
            }
            if let Some(hi) = hi {
                q = q.bind(hi);
            }
            let mut rows = q.fetch(p);
            while let Some(r) = rows.try_next().await? {
                scanned += 1;
                if scanned > MAX_SCANNED_VALUES {
                    return Err(QueryError::Bad(format!(
                        "matcher on {:?} would scan more than {MAX_SCANNED_VALUES} label values; \
                         give the regular expression a literal prefix or use another label",
                        m.name
                    )));
                }
                let id: i64 = r.try_get(0)?;
                let v: Vec<u8> = r.try_get(1)?;
                let v = String::from_utf8_lossy(&v);
                if m.regex_matches(&v) != negate {
                    ids.push(id);
                    if ids.len() > MAX_MATCHED_PAIRS {
                        return Err(QueryError::Bad(format!(
                            "matcher on {:?} selects more than {MAX_MATCHED_PAIRS} distinct values",
                            m.name
                        )));
                    }
                }
            }
            Ok::<(), QueryError>(())
        })?;
    }
    Ok(ids)
}

/// A LIKE pattern (escape character `!`) finding `s` inside the annotations' JSON text: `s` is
/// JSON-escaped the way the stored text is (quotes, newlines, backslashes) and lowercased.
fn like_pattern(s: &str) -> String {
    let json = serde_json::to_string(&s.to_lowercase()).unwrap_or_default();
    let inner = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or("");
    let mut out = String::from("%");
    for c in inner.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Builds the WHERE conditions (without the cursor) into `sql`.
async fn where_clause(
    db: &Db,
    q: &Query,
    sql: &mut Sql,
) -> Result<(Vec<String>, bool), QueryError> {
    if q.matchers.len() > MAX_MATCHERS {
        return Err(QueryError::Bad(format!(
            "{} label matchers (at most {MAX_MATCHERS})",
            q.matchers.len()
        )));
    }
    let mut conds = Vec::new();
    // SQLite: whether a label matcher keeps few episodes (see `few_episodes`).
    let mut selective = false;
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
    let keyed =
        |v: &[String]| -> Vec<String> { v.iter().map(|s| index_key(s).into_owned()).collect() };
    if !q.severity.is_empty() {
        let l = sql.text_set(&keyed(&q.severity));
        conds.push(format!("e.severity IN {l}"));
    }
    if !q.alertname.is_empty() {
        let l = sql.text_set(&keyed(&q.alertname));
        conds.push(format!("e.alertname IN {l}"));
    }
    if let Some(f) = &q.fingerprint {
        let p = sql.p(Param::Text(index_key(f).into_owned()));
        conds.push(format!("e.fingerprint = {p}"));
    }
    if let Some(t) = &q.text {
        let p = sql.p(Param::Text(like_pattern(t)));
        conds.push(format!("LOWER(e.annotations) LIKE {p} ESCAPE '!'"));
    }
    for m in &q.matchers {
        let (plan, include) = plan(m);
        let sub = match plan {
            Plan::Equals(v) => {
                let hash = pair_hash(&m.name, v);
                if include && !selective {
                    selective = few_episodes(db, Few::Pair(&hash)).await?;
                }
                let h = sql.p(Param::Bytes(hash));
                format!(
                    "SELECT el.episode_id FROM episode_labels el JOIN label_pairs lp \
                     ON lp.id = el.pair_id WHERE lp.hash = {h}"
                )
            }
            Plan::NonEmpty => {
                let n = sql.p(Param::Text(
                    crate::storage::keys::plain_text(&m.name).into_owned(),
                ));
                let h = sql.p(Param::Bytes(pair_hash(&m.name, "")));
                format!(
                    "SELECT el.episode_id FROM episode_labels el JOIN label_pairs lp \
                     ON lp.id = el.pair_id WHERE lp.name = {n} AND lp.hash <> {h}"
                )
            }
            Plan::Regex(m, negate) => {
                let ids = scan(db, m, negate).await?;
                if ids.is_empty() {
                    if include {
                        conds.push("1 = 0".into());
                    }
                    continue;
                }
                if include && !selective {
                    selective = few_episodes(db, Few::Pairs(&ids)).await?;
                }
                let set = sql.id_set(ids);
                format!("SELECT episode_id FROM episode_labels WHERE pair_id IN {set}")
            }
        };
        conds.push(if include {
            format!("e.id IN ({sub})")
        } else {
            format!("e.id NOT IN ({sub})")
        });
    }
    Ok((conds, selective))
}

/// Episodes a matcher selects, counted up to this many.
const FEW_EPISODES: i64 = 5_000;

/// What [`few_episodes`] counts: the episodes carrying one pair (by hash), or any of these.
enum Few<'a> {
    Pair(&'a [u8]),
    Pairs(&'a [i64]),
}

/// SQLite only: whether fewer than [`FEW_EPISODES`] episodes carry the pair(s), counted with a
/// bounded index read. SQLite's planner does not know how selective an `e.id IN (…)` label
/// condition is. Under `ORDER BY … LIMIT` it may walk the sort column's index over the whole
/// table, testing each episode: 32 ms for one `job_id` among 200k episodes, against 0.04 ms
/// for sorting its 3 matches. Or it may sort every match: 270 ms for the 66k episodes of
/// `{severity="critical"}`, against 32 ms walking the index. [`list`] then picks accordingly.
async fn few_episodes(db: &Db, what: Few<'_>) -> Result<bool, QueryError> {
    let Db::Sqlite(s) = db else {
        return Ok(false);
    };
    let n: i64 = match what {
        Few::Pair(hash) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM episode_labels el JOIN label_pairs lp \
                 ON lp.id = el.pair_id WHERE lp.hash = ? LIMIT ?)",
            )
            .bind(hash)
            .bind(FEW_EPISODES)
            .fetch_one(&s.read)
            .await?
        }
        Few::Pairs(ids) => {
            let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM episode_labels \
                 WHERE pair_id IN (SELECT value FROM json_each(?)) LIMIT ?)",
            )
            .bind(json)
            .bind(FEW_EPISODES)
            .fetch_one(&s.read)
            .await?
        }
    };
    Ok(n < FEW_EPISODES)
}

fn where_text(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

/// Lists episodes. Returns up to `limit` rows and whether more follow.
pub async fn list(db: &Db, q: &Query) -> Result<(Vec<Episode>, bool), QueryError> {
    let mut sql = Sql::new(db.dialect());
    let (mut conds, selective) = where_clause(db, q, &mut sql).await?;
    let has_matchers = !q.matchers.is_empty();
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
    // SQLite cannot tell how many episodes a label condition keeps (see `few_episodes`). A
    // selective matcher: `+` keeps it from walking an index in sort order, so it reads the
    // few matching episodes and sorts them. A broad one (thousands of episodes): it walks the
    // sort column's index and stops at the limit, instead of sorting every match.
    let (plus, indexed) = match (db, selective, has_matchers) {
        (Db::Sqlite(_), true, _) => ("+", ""),
        (Db::Sqlite(_), false, true) => ("", q.sort.sqlite_index()),
        _ => ("", ""),
    };
    sql.text = format!(
        "SELECT {EPISODE_COLS} FROM episodes e{indexed} {} ORDER BY {plus}{col} {dir}, {plus}e.id {dir} LIMIT {limit} OFFSET {offset}",
        where_text(&conds)
    );
    let mut out: Vec<Episode> = on_pool!(db, Role::Read, |p, d| {
        let text = sql.finish();
        let rows = bind_params!(sqlx::query(&text), &sql.params)
            .fetch_all(p)
            .await?;
        rows.iter()
            .map(|r| Ok(episode_from_row!(r)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    let more = out.len() as i64 > q.limit;
    out.truncate(q.limit as usize);
    Ok((out, more))
}

/// One episode with its history, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<(Episode, Vec<HistoryRow>)>, sqlx::Error> {
    let sql = format!("SELECT {EPISODE_COLS} FROM episodes e WHERE e.id = $1");
    on_pool!(db, Role::Read, |p, d| {
        let Some(r) = sqlx::query(&d.sql(&sql)).bind(id).fetch_optional(p).await? else {
            return Ok(None);
        };
        let e = episode_from_row!(r);
        let rows = sqlx::query(&d.sql(
            "SELECT received_at, status, ends_at, annotations, receiver, group_key, reason \
             FROM notifications WHERE episode_id = $1 ORDER BY received_at, id",
        ))
        .bind(id)
        .fetch_all(p)
        .await?;
        let hist = rows
            .iter()
            .map(|r| {
                Ok(HistoryRow {
                    received_at: r.try_get(0)?,
                    status: r.try_get_unchecked(1)?,
                    ends_at: r.try_get(2)?,
                    annotations: r.try_get_unchecked(3)?,
                    receiver: r.try_get_unchecked(4)?,
                    group_key: r.try_get_unchecked(5)?,
                    reason: r.try_get_unchecked(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((e, hist)))
    })
}

/// Episode counts grouped by (alertname, severity, status) for the query's filters.
pub async fn stats(db: &Db, q: &Query) -> Result<Vec<(String, String, String, i64)>, QueryError> {
    let mut sql = Sql::new(db.dialect());
    let (conds, _) = where_clause(db, q, &mut sql).await?;
    sql.text = format!(
        "SELECT e.alertname, e.severity, e.status, COUNT(*) FROM episodes e {} \
         GROUP BY e.alertname, e.severity, e.status ORDER BY e.alertname, e.severity, e.status",
        where_text(&conds)
    );
    let out = on_pool!(db, Role::Read, |p, d| {
        let text = sql.finish();
        let rows = bind_params!(sqlx::query(&text), &sql.params)
            .fetch_all(p)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get_unchecked(0)?,
                    r.try_get_unchecked(1)?,
                    r.try_get_unchecked(2)?,
                    r.try_get(3)?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_escaped() {
        assert_eq!(like_pattern("50%_A!"), "%50!%!_a!!%");
        assert_eq!(like_pattern("a\"b\\"), "%a\\\"b\\\\%");
    }
}
