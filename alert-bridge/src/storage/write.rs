//! Writing: [`store_batch`] (notifications, all-or-nothing), [`close_vanished`]
//! (reconciliation) and [`retention_chunk`].
//!
//! Every write transaction first reads the single `writer_lock` row (`FOR UPDATE` on
//! PostgreSQL and MySQL; SQLite's `BEGIN IMMEDIATE` is a database-wide write lock), so writes
//! are serialised even across bridges sharing one database: an HA pair of bridges fed by an HA
//! pair of Alertmanagers still stores one episode per alert, with no deadlock to retry.
//! Under that lock a batch loads the episodes it touches, applies its alerts in arrival order
//! ([`super::state`]), and writes the final rows back with a few multi-row statements.
//!
//! **Label-pair cache**: pair ids are cached across batches. Ids learnt in a transaction are
//! added only after it committed, the cache is emptied whenever a transaction fails (whatever
//! the reason), and it is dropped whenever `writer_lock.pairs_epoch` changed (retention
//! deleted pairs): a cached id is always one that exists.

use std::collections::{HashMap, HashSet};

use sqlx::Row as _;

use super::keys::{pair_hash, plain_text, value_prefix};
use super::sql::Dialect;
use super::state::{self, Change, EpisodeRow};
use super::{on_pool, Db, Role};
use crate::payload::{Alert, Notification, Status};

/// One notification to store, as received.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub notification: Notification,
    /// When it arrived, ms since the epoch.
    pub received_at: i64,
}

/// Settings of the writer.
#[derive(Debug, Clone)]
pub struct WriteConfig {
    /// A firing notification for a resolved episode re-opens it only when it arrives this much
    /// later than the resolution (earlier ones are late replays).
    pub refire_grace_ms: i64,
    /// alertsnitch-compatible tables (MySQL/MariaDB only).
    pub compat: Option<super::compat::CompatConfig>,
}

impl Default for WriteConfig {
    fn default() -> Self {
        Self {
            refire_grace_ms: 60_000,
            compat: None,
        }
    }
}

/// Counts of one stored batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Alerts applied.
    pub alerts: u64,
    /// Of which were new episodes.
    pub new_episodes: u64,
    /// History rows written (state changes).
    pub changes: u64,
    /// Of which were re-fires.
    pub refired: u64,
}

/// Label pair ids by pair hash (see the module docs for why an id in it always exists).
#[derive(Default)]
pub struct PairCache {
    epoch: Option<i64>,
    ids: HashMap<Vec<u8>, i64>,
}

impl PairCache {
    /// Number of cached pairs.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Forgets everything (after any failed transaction).
    pub fn clear(&mut self) {
        self.ids.clear();
        self.epoch = None;
    }
    fn sync_epoch(&mut self, epoch: i64) {
        if self.epoch != Some(epoch) {
            self.ids.clear();
            self.epoch = Some(epoch);
        }
    }
    fn merge(&mut self, new: HashMap<Vec<u8>, i64>) {
        if self.ids.len() + new.len() > 1_000_000 {
            self.ids.clear();
        }
        self.ids.extend(new);
    }
}

/// Largest multi-row statement, in rows and in bound bytes (well under SQLite's and
/// MySQL's limits on parameters and packet size).
const MAX_ROWS: usize = 256;
const MAX_BYTES: usize = 4 << 20;

/// Splits `items` into runs of at most [`MAX_ROWS`] items and about [`MAX_BYTES`] bytes, each
/// a power of two long (a run of 100 is written as 64 + 32 + 4), so that a statement has only
/// a handful of shapes: each is built and prepared once ([`statement`]), not parsed again for
/// every batch.
fn runs<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, it) in items.iter().enumerate() {
        let s = size(it) + 16;
        if i > start && (i - start >= MAX_ROWS || bytes + s > MAX_BYTES) {
            pow2_split(&items[start..i], &mut out);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    pow2_split(&items[start..], &mut out);
    out
}

fn pow2_split<'a, T>(mut rest: &'a [T], out: &mut Vec<&'a [T]>) {
    while !rest.is_empty() {
        let n = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
}

/// The keys of a lookup in chunks of at most [`MAX_ROWS`], each padded to a power of two by
/// repeating its last key (a key asked for twice matches once), for the same reason as
/// [`runs`].
/// The keys are borrowed, not copied.
fn padded<T>(items: &[T]) -> Vec<Vec<&T>> {
    items
        .chunks(MAX_ROWS)
        .map(|c| {
            let mut v: Vec<&T> = c.iter().collect();
            if let Some(last) = c.last() {
                v.resize(c.len().next_power_of_two(), last);
            }
            v
        })
        .collect()
}

/// The text of a writer statement of `rows` rows in dialect `d`, built by `build` the first
/// time and kept. [`runs`] and [`padded`] keep `rows` to powers of two up to [`MAX_ROWS`], so
/// this holds a few dozen texts at most; the connection keeps each prepared.
fn statement(
    kind: &'static str,
    d: Dialect,
    rows: usize,
    build: impl FnOnce() -> String,
) -> std::sync::Arc<str> {
    type Texts = HashMap<(&'static str, Dialect, usize), std::sync::Arc<str>>;
    static TEXTS: std::sync::OnceLock<std::sync::Mutex<Texts>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(Default::default);
    let lock = || texts.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = lock().get(&(kind, d, rows)) {
        return s.clone();
    }
    let s: std::sync::Arc<str> = d.sql(&build()).into();
    lock().insert((kind, d, rows), s.clone());
    s
}

fn values_sql(head: &str, rows: usize, cols: usize, first: usize, tail: &str) -> String {
    let mut s = String::from(head);
    for r in 0..rows {
        s.push_str(if r > 0 { ", (" } else { " (" });
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", first + r * cols + c));
        }
        s.push(')');
    }
    s.push_str(tail);
    s
}

/// `(fingerprint = $a AND starts_at = $b) OR …` for `n` keys, numbered from `first`.
fn keys_where(n: usize, first: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "(fingerprint = ${} AND starts_at = ${})",
                first + 2 * i,
                first + 2 * i + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

pub(crate) const EP_COLS: &str = "id, fingerprint, starts_at, status, ends_at, alertname, \
severity, instance, labels, annotations, generator_url, receiver, group_key, first_seen, \
last_seen, notifications, changed_at, resolved_seen";

const INSERT_COLS: &str = "fingerprint, starts_at, status, ends_at, alertname, severity, \
instance, labels, annotations, generator_url, receiver, group_key, first_seen, last_seen, \
notifications, changed_at, resolved_seen";

const UPDATED_COLS: &[&str] = &[
    "status",
    "ends_at",
    "annotations",
    "generator_url",
    "receiver",
    "group_key",
    "last_seen",
    "notifications",
    "changed_at",
    "resolved_seen",
];

fn status_of(s: &str) -> Status {
    if s == "resolved" {
        Status::Resolved
    } else {
        Status::Firing
    }
}

macro_rules! row_to_episode {
    ($r:expr) => {
        EpisodeRow {
            id: Some($r.try_get(0)?),
            fingerprint: $r.try_get_unchecked(1)?,
            starts_at: $r.try_get(2)?,
            status: status_of(&$r.try_get_unchecked::<String, _>(3)?),
            ends_at: $r.try_get(4)?,
            alertname: $r.try_get_unchecked(5)?,
            severity: $r.try_get_unchecked(6)?,
            instance: $r.try_get_unchecked(7)?,
            labels: $r.try_get_unchecked(8)?,
            annotations: $r.try_get_unchecked::<String, _>(9)?.into(),
            generator_url: $r.try_get_unchecked(10)?,
            receiver: $r.try_get_unchecked(11)?,
            group_key: $r.try_get_unchecked(12)?,
            first_seen: $r.try_get(13)?,
            last_seen: $r.try_get(14)?,
            notifications: $r.try_get(15)?,
            changed_at: $r.try_get(16)?,
            resolved_seen: $r.try_get(17)?,
        }
    };
}

macro_rules! bind_episode {
    ($q:expr, $e:expr) => {
        $q.bind(&$e.fingerprint)
            .bind($e.starts_at)
            .bind($e.status.as_str())
            .bind($e.ends_at)
            .bind(&$e.alertname)
            .bind(&$e.severity)
            .bind(&$e.instance)
            .bind(&$e.labels)
            .bind(&*$e.annotations)
            .bind(&$e.generator_url)
            .bind(&$e.receiver)
            .bind(&$e.group_key)
            .bind($e.first_seen)
            .bind($e.last_seen)
            .bind($e.notifications)
            .bind($e.changed_at)
            .bind($e.resolved_seen)
    };
}

fn episode_bytes(e: &EpisodeRow) -> usize {
    e.labels.len() + e.annotations.len() + e.generator_url.len() + e.group_key.len() + 200
}

/// Where a state change came from (what the compatibility tables need to describe it).
pub(crate) enum Source<'a> {
    Notification {
        n: &'a Notification,
        a: &'a Alert,
    },
    /// Reconciliation: no notification; the episode's stored labels and annotations.
    Episode,
}

/// One state change, with the episode's state right after it.
pub(crate) struct Event<'a> {
    pub key: (String, i64),
    pub change: Change,
    pub received_at: i64,
    pub status: Status,
    pub ends_at: Option<i64>,
    pub annotations: std::sync::Arc<str>,
    pub receiver: String,
    pub group_key: String,
    pub source: Source<'a>,
}

/// What a batch wrote, for the history and compat steps.
pub(crate) struct Written<'a> {
    pub events: Vec<Event<'a>>,
    pub ids: HashMap<(String, i64), i64>,
    pub states: HashMap<(String, i64), EpisodeRow>,
    pub new_pairs: HashMap<Vec<u8>, i64>,
    pub stored: Stored,
}

/// Takes the writer lock; returns the pairs epoch.
macro_rules! lock_writer {
    ($tx:expr, $d:expr) => {{
        let q = format!(
            "SELECT pairs_epoch FROM writer_lock WHERE id = 1{}",
            $d.for_update()
        );
        let epoch: i64 = sqlx::query_scalar(&q).fetch_one(&mut *$tx).await?;
        epoch
    }};
}

/// Loads the episodes with these keys into `states`.
macro_rules! load_states {
    ($tx:expr, $d:expr, $keys:expr, $states:expr) => {{
        for part in padded(&$keys) {
            let sql = statement("load", $d, part.len(), || {
                format!(
                    "SELECT {EP_COLS} FROM episodes WHERE {}",
                    keys_where(part.len(), 1)
                )
            });
            let mut q = sqlx::query(&sql);
            for (fp, st) in part {
                q = q.bind(fp).bind(*st);
            }
            for r in q.fetch_all(&mut *$tx).await? {
                let e = row_to_episode!(r);
                $states.insert((e.fingerprint.clone(), e.starts_at), e);
            }
        }
    }};
}

/// Writes the states of `$keys` (new ones inserted, existing ones updated by id) and fills
/// `$ids`.
macro_rules! write_states {
    ($tx:expr, $d:expr, $keys:expr, $states:expr, $ids:expr) => {{
        let new: Vec<&EpisodeRow> = $keys
            .iter()
            .filter_map(|k| $states.get(k))
            .filter(|e: &&EpisodeRow| e.id.is_none())
            .collect();
        for part in runs(&new, |e| episode_bytes(e)) {
            let tail = if $d == Dialect::Mysql {
                ""
            } else {
                " RETURNING id, fingerprint, starts_at"
            };
            let sql = statement("insert_episodes", $d, part.len(), || {
                values_sql(
                    &format!("INSERT INTO episodes ({INSERT_COLS}) VALUES"),
                    part.len(),
                    17,
                    1,
                    tail,
                )
            });
            let mut q = sqlx::query(&sql);
            for e in part {
                q = bind_episode!(q, e);
            }
            if $d == Dialect::Mysql {
                q.execute(&mut *$tx).await?;
                let sql = statement("inserted_ids", $d, part.len(), || {
                    format!(
                        "SELECT id, fingerprint, starts_at FROM episodes WHERE {}",
                        keys_where(part.len(), 1)
                    )
                });
                let mut q = sqlx::query(&sql);
                for e in part {
                    q = q.bind(&e.fingerprint).bind(e.starts_at);
                }
                for r in q.fetch_all(&mut *$tx).await? {
                    $ids.insert(
                        (
                            r.try_get_unchecked::<String, _>(1)?,
                            r.try_get::<i64, _>(2)?,
                        ),
                        r.try_get::<i64, _>(0)?,
                    );
                }
            } else {
                for r in q.fetch_all(&mut *$tx).await? {
                    $ids.insert(
                        (
                            r.try_get_unchecked::<String, _>(1)?,
                            r.try_get::<i64, _>(2)?,
                        ),
                        r.try_get::<i64, _>(0)?,
                    );
                }
            }
        }
        let old: Vec<&EpisodeRow> = $keys
            .iter()
            .filter_map(|k| $states.get(k))
            .filter(|e: &&EpisodeRow| e.id.is_some())
            .collect();
        for e in &old {
            $ids.insert(
                (e.fingerprint.clone(), e.starts_at),
                e.id.unwrap_or_default(),
            );
        }
        for part in runs(&old, |e| episode_bytes(e)) {
            let sql = statement("update_episodes", $d, part.len(), || {
                values_sql(
                    &format!("INSERT INTO episodes (id, {INSERT_COLS}) VALUES"),
                    part.len(),
                    18,
                    1,
                    &$d.on_conflict_update("id", UPDATED_COLS),
                )
            });
            let mut q = sqlx::query(&sql);
            for e in part {
                q = bind_episode!(q.bind(e.id), e);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Makes sure every label pair of the new episodes exists; links them; returns the pair ids
/// learnt in this transaction.
macro_rules! write_labels {
    ($tx:expr, $d:expr, $new_labels:expr, $ids:expr, $cache:expr) => {{
        let mut learnt: HashMap<Vec<u8>, i64> = HashMap::new();
        // Each new episode's pair hashes (computed once), and the pairs to look up: distinct,
        // not cached.
        let mut hashes: Vec<Vec<Vec<u8>>> = Vec::with_capacity($new_labels.len());
        let mut need: Vec<(Vec<u8>, &str, &str)> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (_, a) in &$new_labels {
            let mut hs = Vec::with_capacity(a.labels.len());
            for (k, v) in &a.labels {
                let h = pair_hash(k, v);
                if !$cache.ids.contains_key(&h) && seen.insert(h.clone()) {
                    need.push((h.clone(), k.as_str(), v.as_str()));
                }
                hs.push(h);
            }
            hashes.push(hs);
        }
        // Insert the missing ones; PostgreSQL and SQLite return the ids of the rows they
        // inserted, the others (already there) are looked up.
        let returning = if $d == Dialect::Mysql {
            ""
        } else {
            " RETURNING id, hash"
        };
        for part in runs(&need, |(_, k, v)| k.len() + v.len() + value_prefix(v).len()) {
            let sql = statement("insert_pairs", $d, part.len(), || {
                values_sql(
                    "INSERT INTO label_pairs (name, value, vprefix, hash) VALUES",
                    part.len(),
                    4,
                    1,
                    &format!("{}{returning}", $d.on_conflict_nothing("hash", "id")),
                )
            });
            let mut q = sqlx::query(&sql);
            for (h, k, v) in part {
                q = q
                    .bind(plain_text(k).into_owned())
                    .bind(v.as_bytes())
                    .bind(value_prefix(v))
                    .bind(h.as_slice());
            }
            if returning.is_empty() {
                q.execute(&mut *$tx).await?;
            } else {
                for r in q.fetch_all(&mut *$tx).await? {
                    learnt.insert(r.try_get::<Vec<u8>, _>(1)?, r.try_get::<i64, _>(0)?);
                }
            }
        }
        let missing: Vec<&Vec<u8>> = need
            .iter()
            .map(|(h, _, _)| h)
            .filter(|h| !learnt.contains_key(*h))
            .collect();
        for part in padded(&missing) {
            let sql = statement("pair_ids", $d, part.len(), || {
                let ph: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                format!(
                    "SELECT id, hash FROM label_pairs WHERE hash IN ({})",
                    ph.join(", ")
                )
            });
            let mut q = sqlx::query(&sql);
            for h in part {
                q = q.bind(h.as_slice());
            }
            for r in q.fetch_all(&mut *$tx).await? {
                learnt.insert(r.try_get::<Vec<u8>, _>(1)?, r.try_get::<i64, _>(0)?);
            }
        }
        let mut links: Vec<(i64, i64)> = Vec::new();
        for ((key, _), hs) in $new_labels.iter().zip(&hashes) {
            let Some(&eid) = $ids.get(key) else {
                return Err(sqlx::Error::Protocol("a new episode has no id".into()));
            };
            for h in hs {
                let Some(pid) = $cache.ids.get(h).or_else(|| learnt.get(h)).copied() else {
                    return Err(sqlx::Error::Protocol("a label pair has no id".into()));
                };
                links.push((pid, eid));
            }
        }
        for part in runs(&links, |_| 0) {
            let sql = statement("insert_links", $d, part.len(), || {
                values_sql(
                    "INSERT INTO episode_labels (pair_id, episode_id) VALUES",
                    part.len(),
                    2,
                    1,
                    "",
                )
            });
            let mut q = sqlx::query(&sql);
            for (p, e) in part {
                q = q.bind(*p).bind(*e);
            }
            q.execute(&mut *$tx).await?;
        }
        learnt
    }};
}

/// The history rows of `$w.events` (with the compat Alert ids, if any).
macro_rules! write_history {
    ($tx:expr, $d:expr, $w:expr, $compat_ids:expr) => {{
        let rows: Vec<(i64, &Event, Option<i64>)> = $w
            .events
            .iter()
            .zip($compat_ids.iter())
            .map(|(ev, c)| ($w.ids.get(&ev.key).copied().unwrap_or_default(), ev, *c))
            .collect();
        for part in runs(&rows, |(_, ev, _)| {
            ev.annotations.len() + ev.group_key.len()
        }) {
            let sql = statement("insert_history", $d, part.len(), || {
                values_sql(
                    "INSERT INTO notifications (episode_id, received_at, status, ends_at, \
                     annotations, receiver, group_key, reason, compat_alert_id) VALUES",
                    part.len(),
                    9,
                    1,
                    "",
                )
            });
            let mut q = sqlx::query(&sql);
            for (id, ev, c) in part {
                q = q
                    .bind(*id)
                    .bind(ev.received_at)
                    .bind(ev.status.as_str())
                    .bind(ev.ends_at)
                    .bind(&*ev.annotations)
                    .bind(&ev.receiver)
                    .bind(&ev.group_key)
                    .bind(ev.change.reason())
                    .bind(*c);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Applies the batch inside the transaction `$tx`; evaluates to a [`Written`].
macro_rules! store_core {
    ($tx:expr, $d:expr, $batch:expr, $cache:expr, $cfg:expr) => {{
        let epoch = lock_writer!($tx, $d);
        $cache.sync_epoch(epoch);
        let mut keys: Vec<(String, i64)> = Vec::new();
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        for inc in $batch {
            for a in &inc.notification.alerts {
                let k = state::key_of(a);
                if seen.insert(k.clone()) {
                    keys.push(k);
                }
            }
        }
        let mut states: HashMap<(String, i64), EpisodeRow> = HashMap::with_capacity(keys.len());
        load_states!($tx, $d, keys, states);
        let mut events: Vec<Event> = Vec::new();
        let mut new_labels: Vec<((String, i64), &Alert)> = Vec::new();
        let mut stored = Stored::default();
        for inc in $batch {
            let n = &inc.notification;
            for a in &n.alerts {
                stored.alerts += 1;
                let k = state::key_of(a);
                let change = match states.get_mut(&k) {
                    Some(e) => state::apply(
                        e,
                        a,
                        &n.receiver,
                        &n.group_key,
                        inc.received_at,
                        $cfg.refire_grace_ms,
                    ),
                    None => {
                        states.insert(
                            k.clone(),
                            state::first(a, &n.receiver, &n.group_key, inc.received_at),
                        );
                        new_labels.push((k.clone(), a));
                        stored.new_episodes += 1;
                        Some(Change::First)
                    }
                };
                if let Some(change) = change {
                    stored.changes += 1;
                    if change == Change::Refired {
                        stored.refired += 1;
                    }
                    let e = &states[&k];
                    events.push(Event {
                        key: k,
                        change,
                        received_at: inc.received_at,
                        status: e.status,
                        ends_at: e.ends_at,
                        annotations: e.annotations.clone(),
                        receiver: e.receiver.clone(),
                        group_key: e.group_key.clone(),
                        source: Source::Notification { n, a },
                    });
                }
            }
        }
        let mut ids: HashMap<(String, i64), i64> = HashMap::with_capacity(keys.len());
        write_states!($tx, $d, keys, states, ids);
        let new_pairs = write_labels!($tx, $d, new_labels, ids, $cache);
        Written {
            events,
            ids,
            states,
            new_pairs,
            stored,
        }
    }};
}

/// Stores notifications, all in one transaction: either every alert of every notification
/// is committed, or none. Returns after the commit. On any error the pair cache is emptied.
pub async fn store_batch(
    db: &Db,
    batch: &[Incoming],
    cache: &mut PairCache,
    cfg: &WriteConfig,
) -> Result<Stored, sqlx::Error> {
    let r = store_batch_inner(db, batch, cache, cfg).await;
    match r {
        Ok((stored, learnt)) => {
            cache.merge(learnt);
            Ok(stored)
        }
        Err(e) => {
            cache.clear();
            Err(e)
        }
    }
}

async fn store_batch_inner(
    db: &Db,
    batch: &[Incoming],
    cache: &mut PairCache,
    cfg: &WriteConfig,
) -> Result<(Stored, HashMap<Vec<u8>, i64>), sqlx::Error> {
    match db {
        Db::Sqlite(s) => {
            let d = Dialect::Sqlite;
            // BEGIN IMMEDIATE: take the write lock up front (no upgrade deadlocks).
            let mut tx = s.write.begin_with("BEGIN IMMEDIATE").await?;
            let w = store_core!(tx, d, batch, cache, cfg);
            let none = vec![None::<i64>; w.events.len()];
            write_history!(tx, d, w, none);
            tx.commit().await?;
            Ok((w.stored, w.new_pairs))
        }
        Db::Postgres(p) => {
            let d = Dialect::Postgres;
            let mut tx = p.begin().await?;
            let w = store_core!(tx, d, batch, cache, cfg);
            let none = vec![None::<i64>; w.events.len()];
            write_history!(tx, d, w, none);
            tx.commit().await?;
            Ok((w.stored, w.new_pairs))
        }
        Db::Mysql(p) => {
            let d = Dialect::Mysql;
            let mut tx = p.begin().await?;
            let w = store_core!(tx, d, batch, cache, cfg);
            let compat_ids = match &cfg.compat {
                Some(c) => super::compat::write(&mut tx, &w.events, &w.states, c).await?,
                None => vec![None; w.events.len()],
            };
            write_history!(tx, d, w, compat_ids);
            tx.commit().await?;
            Ok((w.stored, w.new_pairs))
        }
    }
}

/// A firing episode as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringEpisode {
    pub id: i64,
    pub fingerprint: String,
    pub starts_at: i64,
    pub first_seen: i64,
}

/// Firing episodes with id > `after`, in id order, at most `limit`.
pub async fn firing_page(
    db: &Db,
    after: i64,
    limit: i64,
) -> Result<Vec<FiringEpisode>, sqlx::Error> {
    on_pool!(db, Role::Read, |p, d| {
        let rows = sqlx::query(&d.sql(
            "SELECT id, fingerprint, starts_at, first_seen FROM episodes \
             WHERE status = 'firing' AND id > $1 ORDER BY id LIMIT $2",
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FiringEpisode {
                    id: r.try_get(0)?,
                    fingerprint: r.try_get_unchecked(1)?,
                    starts_at: r.try_get(2)?,
                    first_seen: r.try_get(3)?,
                })
            })
            .collect()
    })
}

/// Closes the episodes `ids` as resolved at `at` with the history reason
/// [`state::VANISHED_REASON`], unless they are no longer firing or got a notification after
/// `snapshot` (Alertmanager had them then). Returns how many were closed.
pub async fn close_vanished(
    db: &Db,
    ids: &[i64],
    snapshot: i64,
    at: i64,
    cfg: &WriteConfig,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    macro_rules! close {
        ($tx:expr, $d:expr) => {{
            lock_writer!($tx, $d);
            let mut states: HashMap<(String, i64), EpisodeRow> = HashMap::new();
            let mut keys = Vec::new();
            for part in ids.chunks(MAX_ROWS) {
                let ph: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT {EP_COLS} FROM episodes WHERE id IN ({})",
                    ph.join(", ")
                );
                let sql = $d.sql(&sql);
                let mut q = sqlx::query(&sql);
                for id in part {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(&mut *$tx).await? {
                    let mut e = row_to_episode!(r);
                    if e.last_seen >= snapshot || state::vanish(&mut e, at).is_none() {
                        continue;
                    }
                    let k = (e.fingerprint.clone(), e.starts_at);
                    keys.push(k.clone());
                    states.insert(k, e);
                }
            }
            let mut ids_by_key: HashMap<(String, i64), i64> = HashMap::new();
            write_states!($tx, $d, keys, states, ids_by_key);
            let events: Vec<Event> = keys
                .iter()
                .map(|k| {
                    let e = &states[k];
                    Event {
                        key: k.clone(),
                        change: Change::Vanished,
                        received_at: at,
                        status: e.status,
                        ends_at: e.ends_at,
                        annotations: e.annotations.clone(),
                        receiver: e.receiver.clone(),
                        group_key: e.group_key.clone(),
                        source: Source::Episode,
                    }
                })
                .collect();
            Written {
                events,
                ids: ids_by_key,
                states,
                new_pairs: HashMap::new(),
                stored: Stored::default(),
            }
        }};
    }
    let n = match db {
        Db::Sqlite(s) => {
            let d = Dialect::Sqlite;
            let mut tx = s.write.begin_with("BEGIN IMMEDIATE").await?;
            let w = close!(tx, d);
            let none = vec![None::<i64>; w.events.len()];
            write_history!(tx, d, w, none);
            tx.commit().await?;
            w.events.len()
        }
        Db::Postgres(p) => {
            let d = Dialect::Postgres;
            let mut tx = p.begin().await?;
            let w = close!(tx, d);
            let none = vec![None::<i64>; w.events.len()];
            write_history!(tx, d, w, none);
            tx.commit().await?;
            w.events.len()
        }
        Db::Mysql(p) => {
            let d = Dialect::Mysql;
            let mut tx = p.begin().await?;
            let w = close!(tx, d);
            let compat_ids = match &cfg.compat {
                Some(c) => super::compat::write(&mut tx, &w.events, &w.states, c).await?,
                None => vec![None; w.events.len()],
            };
            write_history!(tx, d, w, compat_ids);
            tx.commit().await?;
            w.events.len()
        }
    };
    Ok(n as u64)
}

/// What one retention step deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub episodes: u64,
    pub label_pairs: u64,
}

/// One retention step: deletes up to `limit` episodes that ended before `resolved_before`
/// (resolved) or were last seen before `firing_before` (firing but never resolved), with
/// their labels, history and compatibility rows; when there are none left, deletes label
/// pairs no episode uses any more (ids in `(pairs_after, pairs_after + 5000]`, so that
/// repeated calls walk the table). Returns what was deleted and the next `pairs_after`
/// (`None` once the walk is through).
pub async fn retention_chunk(
    db: &Db,
    resolved_before: Option<i64>,
    firing_before: Option<i64>,
    limit: i64,
    pairs_after: i64,
) -> Result<(Deleted, Option<i64>), sqlx::Error> {
    macro_rules! retain {
        ($tx:expr, $d:expr, |$ids:ident| $compat:expr) => {{
            lock_writer!($tx, $d);
            // NULL compares false, so a disabled retention never matches.
            let $ids: Vec<i64> = sqlx::query_scalar(&$d.sql(
                "SELECT id FROM episodes WHERE (status = 'resolved' AND ends_at < $1) \
                 OR (status = 'firing' AND last_seen < $2) ORDER BY id LIMIT $3",
            ))
            .bind(resolved_before)
            .bind(firing_before)
            .bind(limit)
            .fetch_all(&mut *$tx)
            .await?;
            let mut del = Deleted::default();
            let mut next = Some(pairs_after);
            if !$ids.is_empty() {
                $compat;
                let ph: Vec<String> = (1..=$ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!("DELETE FROM episodes WHERE id IN ({})", ph.join(", "));
                let sql = $d.sql(&sql);
                let mut q = sqlx::query(&sql);
                for id in &$ids {
                    q = q.bind(*id);
                }
                del.episodes = q.execute(&mut *$tx).await?.rows_affected();
            } else {
                let upto = pairs_after + 5000;
                let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM label_pairs")
                    .fetch_one(&mut *$tx)
                    .await?;
                let orphans: Vec<i64> = sqlx::query_scalar(&$d.sql(
                    "SELECT lp.id FROM label_pairs lp WHERE lp.id > $1 AND lp.id <= $2 \
                     AND NOT EXISTS (SELECT 1 FROM episode_labels el WHERE el.pair_id = lp.id)",
                ))
                .bind(pairs_after)
                .bind(upto)
                .fetch_all(&mut *$tx)
                .await?;
                if !orphans.is_empty() {
                    let ph: Vec<String> = (1..=orphans.len()).map(|i| format!("${i}")).collect();
                    let sql = format!("DELETE FROM label_pairs WHERE id IN ({})", ph.join(", "));
                    let sql = $d.sql(&sql);
                    let mut q = sqlx::query(&sql);
                    for id in &orphans {
                        q = q.bind(*id);
                    }
                    del.label_pairs = q.execute(&mut *$tx).await?.rows_affected();
                    // Cached pair ids may now be gone: every writer drops its cache.
                    sqlx::query(
                        "UPDATE writer_lock SET pairs_epoch = pairs_epoch + 1 WHERE id = 1",
                    )
                    .execute(&mut *$tx)
                    .await?;
                }
                next = (max.unwrap_or(0) > upto).then_some(upto);
            }
            (del, next)
        }};
    }
    match db {
        Db::Sqlite(s) => {
            let d = Dialect::Sqlite;
            let mut tx = s.write.begin_with("BEGIN IMMEDIATE").await?;
            let r = retain!(tx, d, |ids| ids.len());
            tx.commit().await?;
            Ok(r)
        }
        Db::Postgres(p) => {
            let d = Dialect::Postgres;
            let mut tx = p.begin().await?;
            let r = retain!(tx, d, |ids| ids.len());
            tx.commit().await?;
            Ok(r)
        }
        Db::Mysql(p) => {
            let d = Dialect::Mysql;
            let mut tx = p.begin().await?;
            let r = retain!(tx, d, |ids| super::compat::delete_for_episodes(
                &mut tx, &ids
            )
            .await?);
            tx.commit().await?;
            Ok(r)
        }
    }
}

/// Episode ids, for tests and tools: every `(fingerprint key, startsAt) → id`.
pub async fn episode_ids(db: &Db) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    on_pool!(db, Role::Read, |p, d| {
        let rows = sqlx::query("SELECT fingerprint, starts_at, id FROM episodes ORDER BY id")
            .fetch_all(p)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get_unchecked(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_powers_of_two_in_order() {
        for n in 0..700usize {
            let items: Vec<usize> = (0..n).collect();
            let parts = runs(&items, |_| 10);
            assert!(parts
                .iter()
                .all(|p| p.len().is_power_of_two() && p.len() <= MAX_ROWS));
            let joined: Vec<usize> = parts.concat();
            assert_eq!(joined, items, "n = {n}");
        }
        // The byte bound splits too: 3 items of 3 MiB are three statements.
        let big = vec![3usize << 20; 3];
        assert_eq!(runs(&big, |b| *b).len(), 3);
    }

    #[test]
    fn padded_chunks_repeat_the_last_key() {
        for n in 0..700usize {
            let items: Vec<usize> = (0..n).collect();
            let parts = padded(&items);
            let mut seen = Vec::new();
            for p in &parts {
                assert!(p.len().is_power_of_two() && p.len() <= MAX_ROWS);
                let last = **p.last().unwrap();
                for &&x in p {
                    if seen.last() != Some(&x) {
                        seen.push(x);
                    } else {
                        assert_eq!(x, last, "only the last key repeats");
                    }
                }
            }
            assert_eq!(seen, items, "n = {n}");
        }
    }

    #[test]
    fn statement_texts_are_built_once_per_shape() {
        let a = statement("test_shape", Dialect::Sqlite, 4, || "SELECT $1, $2".into());
        let b = statement("test_shape", Dialect::Sqlite, 4, || unreachable!());
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "SELECT ?, ?");
        let c = statement("test_shape", Dialect::Postgres, 4, || "SELECT $1".into());
        assert_eq!(&*c, "SELECT $1");
    }
}
