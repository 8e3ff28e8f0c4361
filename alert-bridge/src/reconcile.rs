//! Reconciliation against Alertmanager.
//!
//! Alertmanager sends no "resolved" for an alert that was silenced or inhibited when it
//! resolved, nor for one it lost; such episodes would stay "firing" for the whole retention.
//! Every `--reconcile.interval` the bridge reads `GET /api/v2/alerts` (active, silenced,
//! inhibited and unprocessed alerts) from every `--reconcile.alertmanager-url`, and closes the
//! firing episodes that none of them has, as resolved now, with the history reason
//! `no longer active in Alertmanager`.
//!
//! To be safe against an Alertmanager that just restarted (Prometheus re-sends its alerts
//! within a minute), an episode is closed only when it was missing in **two consecutive**
//! rounds, and never if a notification for it arrived after the second round's snapshot. A
//! round in which any Alertmanager cannot be read closes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use crate::app::{now_ms, AppState, ReconcileSettings};
use crate::payload;
use crate::storage::keys::index_key;
use crate::storage::{self, Db};

/// The active alerts of one Alertmanager, as `(fingerprint key, startsAt ms)`.
async fn active_alerts(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<HashSet<(String, i64)>> {
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let r = client.get(&url).send().await?.error_for_status()?;
    let v: serde_json::Value = r.json().await?;
    let arr = v
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{url}: not a JSON array"))?;
    let mut out = HashSet::with_capacity(arr.len());
    for a in arr {
        let (Some(fp), Some(starts)) = (a["fingerprint"].as_str(), a["startsAt"].as_str()) else {
            anyhow::bail!("{url}: an alert without fingerprint or startsAt");
        };
        let Ok(Some(ms)) = payload::parse_time(starts) else {
            anyhow::bail!("{url}: bad startsAt {starts:?}");
        };
        out.insert((index_key(fp).into_owned(), ms));
    }
    Ok(out)
}

/// Episodes still firing that no Alertmanager has (first seen before `snapshot`).
async fn missing(
    db: &Db,
    active: &HashSet<(String, i64)>,
    snapshot: i64,
) -> Result<HashSet<i64>, sqlx::Error> {
    let mut out = HashSet::new();
    let mut after = 0;
    loop {
        let page = storage::write::firing_page(db, after, 2000).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.id;
        for e in page {
            if e.first_seen < snapshot && !active.contains(&(e.fingerprint, e.starts_at)) {
                out.insert(e.id);
            }
        }
    }
}

pub(crate) async fn reconcile_task(st: Arc<AppState>, db: Db, cfg: ReconcileSettings) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(cfg.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reconciliation disabled: cannot build an HTTP client");
            return;
        }
    };
    let mut previous: HashSet<i64> = HashSet::new();
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snapshot = now_ms();
        let mut active = HashSet::new();
        let mut failed = false;
        for url in &cfg.urls {
            match active_alerts(&client, url).await {
                Ok(a) => active.extend(a),
                Err(e) => {
                    tracing::warn!(alertmanager = %url, error = %format!("{e:#}"), "reconciliation: cannot read alerts");
                    failed = true;
                }
            }
        }
        if failed {
            st.metrics.reconcile_errors.inc();
            previous.clear();
            continue;
        }
        let now_missing =
            match tokio::time::timeout(st.settings.query_timeout, missing(&db, &active, snapshot))
                .await
            {
                Ok(Ok(m)) => m,
                _ => {
                    st.metrics.reconcile_errors.inc();
                    st.metrics.storage_error("reconcile");
                    previous.clear();
                    continue;
                }
            };
        let close: Vec<i64> = now_missing.intersection(&previous).copied().collect();
        let r = tokio::time::timeout(
            st.settings.write_backstop,
            storage::close_vanished(&db, &close, snapshot, now_ms(), &st.settings.write),
        )
        .await;
        match r {
            Ok(Ok(n)) => {
                if n > 0 {
                    tracing::info!(
                        closed = n,
                        "reconciliation closed episodes Alertmanager no longer has"
                    );
                    st.committed();
                }
                st.metrics.reconcile_closed.inc_by(n);
                st.metrics
                    .reconcile_last_success
                    .set(now_ms() as f64 / 1000.0);
                let closed: HashSet<i64> = close.iter().copied().collect();
                previous = &now_missing - &closed;
            }
            _ => {
                st.metrics.reconcile_errors.inc();
                st.metrics.storage_error("reconcile");
                previous.clear();
            }
        }
    }
}
