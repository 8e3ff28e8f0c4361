//! SQLite checkpoints beside the writer.
//!
//! In WAL mode a commit appends pages to the write-ahead log; a checkpoint copies them into the
//! database file and syncs it. Left to SQLite, the committing connection does that every 1,000
//! pages, inside a webhook batch's commit: under load, about one commit in three, and a fifth
//! of the writer's time. This task does it instead, on a reader connection (its own thread),
//! a `PASSIVE` checkpoint at most every [`INTERVAL`] after new commits; it waits for no
//! reader and no writer. The writer's own automatic checkpoint stays, at
//! [`crate::storage::WRITER_AUTOCHECKPOINT_PAGES`], as a backstop should this task fall behind.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::storage::Db;

/// Time between checkpoints while commits arrive.
pub const INTERVAL: Duration = Duration::from_millis(250);

pub(crate) async fn checkpoint_task(st: Arc<AppState>, db: Db) {
    let mut seen = st.health.commits.load(Ordering::SeqCst);
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = st.health.commits.load(Ordering::SeqCst);
        if now == seen {
            continue;
        }
        seen = now;
        match tokio::time::timeout(st.settings.write_backstop, db.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                st.metrics.storage_error("checkpoint");
                tracing::warn!(error = %e, "checkpoint failed");
            }
            Err(_) => {
                st.metrics.storage_error("checkpoint");
                tracing::warn!("checkpoint did not finish in time");
            }
        }
    }
}
