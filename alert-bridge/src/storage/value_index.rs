//! An in-memory index of label values for regular-expression matchers on SQLite.
//!
//! A matcher without a literal prefix (`job_id=~".*1234"`) must test every value of its label.
//! Streaming them from `label_pairs` costs a row decode per value: about 2 µs, so a label
//! with 400 000 values took most of a second. This index keeps each label's values that a
//! regex query has asked for once, in one text buffer with offsets and pair ids, and tests
//! them in memory, away from the async workers.
//!
//! **Freshness.** Label pairs are only ever added, except by retention, which bumps
//! `writer_lock.pairs_epoch` in the same transaction as its deletions. Every lookup first reads
//! the largest pair id and the epoch in one statement (two primary-key lookups). A new epoch
//! drops the whole index. A larger id makes the index read the pairs added since, by
//! primary-key range, and append those of the labels it holds. Readers only see committed
//! rows, and SQLite has one writer at a time, so ids become visible in increasing order and
//! none is skipped. This is also why the index is used on SQLite only: with several writers
//! on PostgreSQL or MariaDB (HA), a smaller id can commit after a larger one has been seen.
//!
//! **Bounds.** A label with more than [`MAX_VALUES`] values, or one that would take the index
//! past [`MAX_BYTES`] of text, is not indexed, and the caller streams it as before. Appends
//! that would pass the budget drop the index, which is rebuilt on demand.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use sqlx::Row as _;
use tokio::sync::Mutex;

use super::read::QueryError;
use super::SqliteDb;
use crate::matcher::Matcher;

/// At most this many values of one label are indexed.
pub const MAX_VALUES: usize = 2_000_000;
/// At most this many bytes of value text over all indexed labels (offsets and ids add 12
/// bytes per value).
pub const MAX_BYTES: usize = 64 << 20;

/// One label's values: value `i` is `text[ends[i-1]..ends[i]]` (`ends[-1]` = 0), pair `ids[i]`.
#[derive(Default)]
struct Values {
    text: String,
    ends: Vec<u32>,
    ids: Vec<i64>,
}

impl Values {
    fn push(&mut self, id: i64, v: &str) {
        self.text.push_str(v);
        self.ends.push(self.text.len() as u32);
        self.ids.push(id);
    }

    fn bytes(&self) -> usize {
        self.text.len() + 12 * self.ids.len()
    }

    /// Pair ids whose value the matcher's regex matches (`negate`: does not match).
    fn matching(&self, m: &Matcher, negate: bool, max: usize) -> Result<Vec<i64>, QueryError> {
        let mut out = Vec::new();
        let mut start = 0usize;
        for (i, &end) in self.ends.iter().enumerate() {
            let v = &self.text[start..end as usize];
            start = end as usize;
            if m.regex_matches(v) != negate {
                out.push(self.ids[i]);
                if out.len() > max {
                    return Err(QueryError::Bad(format!(
                        "matcher on {:?} selects more than {max} distinct values",
                        m.name
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[derive(Default)]
struct State {
    /// `writer_lock.pairs_epoch` the index was built under.
    epoch: i64,
    /// Every pair with an id up to this one is in the index (for the labels it holds).
    upto: i64,
    labels: HashMap<String, Values>,
    bytes: usize,
    /// Labels found too large to index (streamed by the caller without another try, until
    /// the index is dropped).
    refused: HashSet<String>,
}

impl State {
    fn clear(&mut self) {
        self.labels.clear();
        self.refused.clear();
        self.bytes = 0;
    }
}

/// The index (one per SQLite database; cheap to clone).
#[derive(Clone)]
pub struct ValueIndex {
    state: Arc<Mutex<State>>,
    /// Bytes of value text the index may hold ([`MAX_BYTES`]).
    budget: usize,
    /// Labels read into the index so far (for tests).
    pub(crate) builds: Arc<std::sync::atomic::AtomicU64>,
    /// Labels whose values were read for the index, kept or not (for tests).
    pub(crate) reads: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for ValueIndex {
    fn default() -> Self {
        Self::with_budget(MAX_BYTES)
    }
}

impl ValueIndex {
    /// An index holding at most `budget` bytes of value text.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            state: Default::default(),
            budget,
            builds: Default::default(),
            reads: Default::default(),
        }
    }

    /// Whether the label is in the index now.
    pub async fn holds(&self, name: &str) -> bool {
        self.state.lock().await.labels.contains_key(name)
    }

    /// The pair ids of `m.name` whose value `m`'s regex matches (`negate`: does not), or
    /// `None` when the label is too large to index (the caller then streams the values).
    pub async fn matching(
        &self,
        db: &SqliteDb,
        m: &Matcher,
        name: &str,
        negate: bool,
        max_matched: usize,
    ) -> Result<Option<Vec<i64>>, QueryError> {
        let mut st = self.state.clone().lock_owned().await;
        let (max_id, epoch): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT MAX(id) FROM label_pairs), \
             (SELECT pairs_epoch FROM writer_lock WHERE id = 1)",
        )
        .fetch_one(&db.read)
        .await?;
        let max_id = max_id.unwrap_or(0);
        if epoch != st.epoch || max_id < st.upto {
            st.clear();
            st.epoch = epoch;
            st.upto = max_id;
        } else if max_id > st.upto {
            if st.labels.is_empty() {
                st.upto = max_id;
            } else {
                let mut rows = sqlx::query(
                    "SELECT id, name, value FROM label_pairs WHERE id > ? AND id <= ? ORDER BY id",
                )
                .bind(st.upto)
                .bind(max_id)
                .fetch(&db.read);
                let mut over = false;
                while let Some(r) = rows.try_next().await? {
                    let n: String = r.try_get(1)?;
                    let st = &mut *st;
                    if let Some(vals) = st.labels.get_mut(&n) {
                        let v: Vec<u8> = r.try_get(2)?;
                        let v = String::from_utf8_lossy(&v);
                        vals.push(r.try_get(0)?, &v);
                        st.bytes += v.len() + 12;
                        if st.bytes > self.budget || vals.ids.len() > MAX_VALUES {
                            over = true;
                            break;
                        }
                    }
                }
                drop(rows);
                if over {
                    st.clear();
                }
                st.upto = max_id;
            }
        }
        if st.refused.contains(name) {
            return Ok(None);
        }
        if !st.labels.contains_key(name) {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut vals = Values::default();
            let mut rows =
                sqlx::query("SELECT id, value FROM label_pairs WHERE name = ? AND id <= ?")
                    .bind(name)
                    .bind(st.upto)
                    .fetch(&db.read);
            while let Some(r) = rows.try_next().await? {
                let v: Vec<u8> = r.try_get(1)?;
                vals.push(r.try_get(0)?, &String::from_utf8_lossy(&v));
                if vals.ids.len() > MAX_VALUES || st.bytes + vals.bytes() > self.budget {
                    drop(rows);
                    st.refused.insert(name.to_owned());
                    return Ok(None);
                }
            }
            drop(rows);
            st.bytes += vals.bytes();
            st.labels.insert(name.to_owned(), vals);
            self.builds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // Testing hundreds of thousands of values is CPU work: off the async workers.
        let (m, name) = (m.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            let vals = st.labels.get(&name).expect("indexed above");
            vals.matching(&m, negate, max_matched)
        })
        .await
        .map_err(|e| QueryError::Bad(format!("regex evaluation failed: {e}")))?
        .map(Some)
    }
}
