//! Retention: deletes old episodes (with their labels, history and compatibility rows) in
//! chunks, then the label pairs no episode uses any more, every `--retention.interval`.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{now_ms, AppState};
use crate::storage::{self, Db};

/// Episodes deleted per transaction (short transactions: ingest is never blocked for long).
const CHUNK: i64 = 500;

pub(crate) async fn retention_task(st: Arc<AppState>, db: Db) {
    let mut tick = tokio::time::interval(st.settings.retention_interval);
    loop {
        tick.tick().await;
        let now = now_ms();
        let cutoff = |d: Option<Duration>| d.map(|d| now - d.as_millis() as i64);
        let (rb, fb) = (
            cutoff(st.settings.retention_resolved),
            cutoff(st.settings.retention_firing),
        );
        let (mut episodes, mut pairs) = (0u64, 0u64);
        let mut pairs_after = Some(0i64);
        while let Some(after) = pairs_after {
            let r = tokio::time::timeout(
                st.settings.write_backstop,
                storage::retention_chunk(&db, rb, fb, CHUNK, after),
            )
            .await;
            match r {
                Ok(Ok((deleted, next))) => {
                    episodes += deleted.episodes;
                    pairs += deleted.label_pairs;
                    st.metrics.retention_deleted.inc_by(deleted.episodes);
                    st.metrics
                        .retention_deleted_pairs
                        .inc_by(deleted.label_pairs);
                    if deleted.episodes == 0 {
                        pairs_after = next;
                    }
                    // Let queued ingest batches in between chunks.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(e)) => {
                    st.metrics.storage_error("retention");
                    tracing::warn!(error = %e, "retention failed");
                    break;
                }
                Err(_) => {
                    st.metrics.storage_error("retention");
                    tracing::warn!("retention did not finish a chunk in time");
                    break;
                }
            }
        }
        if episodes + pairs > 0 {
            tracing::info!(episodes, label_pairs = pairs, "retention deleted old rows");
        }
    }
}
