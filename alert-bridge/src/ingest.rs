//! The webhook: admission control, body reading, parsing, and the batching writer task.
//!
//! **Admission**: at most `--webhook.max-concurrent` requests and `--webhook.max-inflight-bytes`
//! body bytes are held at once — from reading the body until the writer is done with the
//! notification, also when the request itself gave up waiting — so memory is bounded by
//! configuration, not by load. A request that cannot get a slot within
//! `--webhook.admission-wait` is answered `503` with `Retry-After` (Alertmanager retries);
//! bodies over `--webhook.max-body-bytes` get `413` before they are read.
//!
//! **Durability**: the handler answers 2xx only after the transaction holding the
//! notification committed and is durable (on SQLite the write-ahead log is synced after the
//! commit, beside the next batch: `Db::sync_log`). It waits at most `--storage.timeout` and then answers 503, but the
//! write is **not** cancelled: it commits or rolls back on its own (each statement has a
//! server-side deadline), and Alertmanager's retry is idempotent. Cancelling a transaction
//! half-way is what once left the label-pair cache pointing at rolled-back rows.
//!
//! **Poison pills**: if a notification still fails alone with a data error (a value some
//! backend cannot store), its alerts are stored one by one; the ones that cannot be stored are
//! reported in a 2xx answer (`422` if none could) and counted as `unstorable`, so that
//! Alertmanager does not retry forever and the notification's other alerts are kept.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::app::{now_ms, text, AppState};
use crate::payload;
use crate::storage::{self, Db, Incoming, PairCache, Stored};

/// What the writer answers for one notification.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub stored: u64,
    /// `(alert index, why)` of alerts that can never be stored.
    pub rejected: Vec<(usize, String)>,
}

type Reply = oneshot::Sender<Result<Outcome, String>>;

/// A notification for the writer, with the admission permits it holds until written.
pub(crate) struct Job {
    incoming: Incoming,
    reply: Reply,
    permits: Permits,
}

/// Admission permits: released (and the in-flight gauges lowered) on drop.
struct Permits {
    st: Arc<AppState>,
    _request: OwnedSemaphorePermit,
    kib: Option<OwnedSemaphorePermit>,
    bytes: i64,
}

impl Drop for Permits {
    fn drop(&mut self) {
        self.st.metrics.inflight_requests.dec();
        self.st.metrics.inflight_bytes.dec_by(self.bytes);
        drop(self.kib.take());
    }
}

fn kib(n: usize) -> u32 {
    n.div_ceil(1024).clamp(1, u32::MAX as usize) as u32
}

fn throttled(st: &AppState, why: &str) -> Response {
    st.metrics.notifications_throttled.inc();
    let mut r = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{why}; retry later"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}

pub(crate) fn bearer_ok(headers: &HeaderMap, want: &str) -> bool {
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    // Constant time in the token's length.
    let (a, b) = (got.trim().as_bytes(), want.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in b.iter().enumerate() {
        diff |= (*x ^ a.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

enum BodyError {
    TooLarge,
    Throttled,
    Unreadable,
}

/// Reads the body, taking byte permits as it goes (all at once when the length is declared).
async fn read_body(
    st: &Arc<AppState>,
    body: axum::body::Body,
    declared: Option<u64>,
    permits: &mut Permits,
) -> Result<Vec<u8>, BodyError> {
    let limit = st.settings.max_body_bytes;
    let mut body = body;
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        let need = kib(buf.len() + data.len());
        let held = permits.kib.as_ref().map_or(0, |p| p.num_permits() as u32);
        if need > held {
            // Beyond what was reserved (chunked bodies): take more, without waiting.
            let more = st
                .admission
                .kib
                .clone()
                .try_acquire_many_owned(need - held)
                .map_err(|_| BodyError::Throttled)?;
            match permits.kib.as_mut() {
                Some(p) => p.merge(more),
                None => permits.kib = Some(more),
            }
            let add = ((need - held) as i64) * 1024;
            permits.bytes += add;
            st.metrics.inflight_bytes.inc_by(add);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

pub(crate) async fn webhook(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let t0 = Instant::now();
    let m = &st.metrics;
    m.notifications_received.inc();
    if let Some(tok) = &st.settings.bearer_token {
        if !bearer_ok(req.headers(), tok) {
            m.reject("unauthorized", 0);
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    let limit = st.settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        m.reject("too_large", 0);
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over --webhook.max-body-bytes={limit}"),
        );
    }
    let Some(writer) = st.writer().cloned() else {
        m.reject("storage_error", 0);
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage is not ready yet");
    };
    // Admission: a request slot, then the declared body bytes.
    let wait = st.settings.admission_wait;
    let Ok(Ok(request)) =
        tokio::time::timeout(wait, st.admission.requests.clone().acquire_owned()).await
    else {
        return throttled(&st, "too many notifications in flight");
    };
    m.inflight_requests.inc();
    let mut permits = Permits {
        st: st.clone(),
        _request: request,
        kib: None,
        bytes: 0,
    };
    if let Some(n) = declared {
        let need = kib(n as usize);
        if need as usize > st.settings.max_inflight_bytes.div_ceil(1024) {
            // Could never fit, however long it waited.
            return throttled(&st, "body larger than --webhook.max-inflight-bytes");
        }
        match tokio::time::timeout(wait, st.admission.kib.clone().acquire_many_owned(need)).await {
            Ok(Ok(p)) => {
                permits.kib = Some(p);
                permits.bytes = need as i64 * 1024;
                m.inflight_bytes.inc_by(permits.bytes);
            }
            _ => return throttled(&st, "too many notification bytes in flight"),
        }
    }
    let read = tokio::time::timeout(
        st.settings.body_read_timeout,
        read_body(&st, req.into_body(), declared, &mut permits),
    )
    .await;
    let body = match read {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => {
            m.reject("too_large", 0);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over --webhook.max-body-bytes={limit}"),
            );
        }
        Ok(Err(BodyError::Throttled)) => {
            return throttled(&st, "too many notification bytes in flight")
        }
        Ok(Err(BodyError::Unreadable)) => {
            m.reject("malformed_json", 0);
            return text(StatusCode::BAD_REQUEST, "the body could not be read");
        }
        Err(_) => {
            m.reject("malformed_json", 0);
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the body was not received in time",
            );
        }
    };
    let parsed = payload::parse(&body);
    drop(body);
    let n = match parsed {
        Ok(n) => n,
        Err(e) => {
            m.reject(e.reason(), 0);
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let count = n.alerts.len() as u64;
    m.alerts_received.inc_by(count);
    m.alerts_truncated.inc_by(n.truncated_alerts);
    if count == 0 {
        m.notifications_stored.inc();
        return text(StatusCode::OK, "no alerts");
    }
    let (tx, rx) = oneshot::channel();
    let job = Job {
        incoming: Incoming {
            notification: n,
            received_at: now_ms(),
        },
        reply: tx,
        permits,
    };
    if writer.try_send(job).is_err() {
        m.reject("storage_error", count);
        return throttled(&st, "the storage queue is full");
    }
    let timeout = st.settings.storage_timeout;
    let r = tokio::time::timeout(timeout, rx).await;
    m.ingest_duration.observe(t0.elapsed().as_secs_f64());
    match r {
        Ok(Ok(Ok(o))) if o.rejected.is_empty() => {
            m.notifications_stored.inc();
            m.alerts_stored.inc_by(count);
            text(StatusCode::OK, format!("stored {count} alerts"))
        }
        Ok(Ok(Ok(o))) => {
            let why: Vec<String> = o
                .rejected
                .iter()
                .map(|(i, e)| format!("alerts[{i}]: {e}"))
                .collect();
            m.alerts_stored.inc_by(o.stored);
            m.alerts_rejected
                .get_or_create(&crate::metrics::Reason {
                    reason: "unstorable".into(),
                })
                .inc_by(o.rejected.len() as u64);
            if o.stored == 0 {
                m.notifications_rejected
                    .get_or_create(&crate::metrics::Reason {
                        reason: "unstorable".into(),
                    })
                    .inc();
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("no alert can be stored: {}", why.join("; ")),
                );
            }
            m.notifications_stored.inc();
            text(
                StatusCode::OK,
                format!(
                    "stored {} alerts; {} cannot be stored and were dropped: {}",
                    o.stored,
                    o.rejected.len(),
                    why.join("; ")
                ),
            )
        }
        Ok(Ok(Err(e))) => {
            m.reject("storage_error", count);
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage failed, retry later: {e}"),
            )
        }
        Ok(Err(_)) => {
            m.reject("storage_error", count);
            text(StatusCode::SERVICE_UNAVAILABLE, "storage writer stopped")
        }
        Err(_) => {
            m.reject("storage_error", count);
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not committed within {timeout:?} (--storage.timeout); the write goes on and \
                     may still commit: a retry is safe"
                ),
            )
        }
    }
}

/// Stores a batch: retries transient failures (deadlocks, lock timeouts) a few times, and
/// abandons a transaction that outlives the backstop (a dead connection: the statement
/// deadlines are enforced by the server, which is then unreachable).
async fn store(
    st: &AppState,
    db: &Db,
    incs: &[Incoming],
    cache: &mut PairCache,
) -> Result<Stored, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        st.health.busy_since.store(now_ms(), Ordering::SeqCst);
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            st.settings.write_backstop,
            storage::store_batch(db, incs, cache, &st.settings.write),
        )
        .await;
        st.health.busy_since.store(0, Ordering::SeqCst);
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                // Dropped half-way: the cache only ever learns after a commit, but be safe.
                cache.clear();
                Err(sqlx::Error::Protocol(format!(
                    "the transaction did not finish within {:?}; abandoned",
                    st.settings.write_backstop
                )))
            }
        };
        match r {
            Ok(s) => {
                st.committed();
                st.metrics.batch_notifications.observe(incs.len() as f64);
                st.metrics
                    .batch_duration
                    .observe(t0.elapsed().as_secs_f64());
                st.metrics.episodes_created.inc_by(s.new_episodes);
                st.metrics.episode_changes.inc_by(s.changes);
                st.metrics.episodes_refired.inc_by(s.refired);
                return Ok(s);
            }
            Err(e) if attempt < 4 && storage::is_transient(&e) => {
                tracing::debug!(error = %e, attempt, "transient storage error, retrying");
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One notification that failed alone with a data error: its alerts one by one.
async fn salvage(
    st: &AppState,
    db: &Db,
    inc: &Incoming,
    cache: &mut PairCache,
) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    for (i, a) in inc.notification.alerts.iter().enumerate() {
        let mut one = inc.clone();
        one.notification.alerts = vec![a.clone()];
        match store(st, db, std::slice::from_ref(&one), cache).await {
            Ok(_) => out.stored += 1,
            Err(e) if storage::is_data_error(&e) => {
                tracing::warn!(alert = i, fingerprint = %a.fingerprint, error = %e, "alert cannot be stored");
                out.rejected.push((i, e.to_string()));
            }
            Err(e) => {
                st.metrics.storage_error("insert");
                return Err(e.to_string());
            }
        }
    }
    Ok(out)
}

pub(crate) async fn writer_task(st: Arc<AppState>, db: Db, mut rx: mpsc::Receiver<Job>) {
    let mut cache = PairCache::default();
    while let Some(first) = rx.recv().await {
        let mut alerts = first.incoming.notification.alerts.len();
        let mut batch = vec![first];
        while alerts < st.settings.batch_max_alerts {
            match rx.try_recv() {
                Ok(j) => {
                    alerts += j.incoming.notification.alerts.len();
                    batch.push(j);
                }
                Err(_) => break,
            }
        }
        // The notifications move out of their jobs (no copy); replies and admission permits
        // stay, and are released once the batch is answered.
        let (incs, waiting): (Vec<Incoming>, Vec<(Reply, Permits)>) = batch
            .into_iter()
            .map(|j| (j.incoming, (j.reply, j.permits)))
            .unzip();
        let answers: Vec<Result<Outcome, String>> = match store(&st, &db, &incs, &mut cache).await {
            Ok(_) => incs
                .iter()
                .map(|inc| {
                    Ok(Outcome {
                        stored: inc.notification.alerts.len() as u64,
                        rejected: Vec::new(),
                    })
                })
                .collect(),
            // A statement error might come from one notification's data: retry one by one
            // so that it cannot fail the others.
            Err(sqlx::Error::Database(_)) if incs.len() > 1 => {
                let mut out = Vec::with_capacity(incs.len());
                for inc in &incs {
                    let r = match store(&st, &db, std::slice::from_ref(inc), &mut cache).await {
                        Ok(s) => Ok(Outcome {
                            stored: s.alerts,
                            rejected: Vec::new(),
                        }),
                        Err(e) if storage::is_data_error(&e) => {
                            salvage(&st, &db, inc, &mut cache).await
                        }
                        Err(e) => {
                            st.metrics.storage_error("insert");
                            Err(e.to_string())
                        }
                    };
                    out.push(r);
                }
                out
            }
            Err(e) if storage::is_data_error(&e) => {
                // One notification (the batch was just it).
                let mut out = Vec::with_capacity(incs.len());
                for inc in &incs {
                    out.push(salvage(&st, &db, inc, &mut cache).await);
                }
                out
            }
            Err(e) => {
                st.metrics.storage_error("insert");
                tracing::warn!(error = %e, notifications = incs.len(), "storing notifications failed");
                incs.iter().map(|_| Err(e.to_string())).collect()
            }
        };
        drop(incs);
        if answers.iter().any(|a| a.is_ok()) && db.needs_log_sync() {
            // Durable before answered, but synced beside the next batch (Db::sync_log).
            let (st, db) = (st.clone(), db.clone());
            tokio::spawn(async move {
                let synced = tokio::task::spawn_blocking(move || db.sync_log()).await;
                let failure = match synced {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("syncing the write-ahead log: {e}")),
                    Err(e) => Some(format!("syncing the write-ahead log: {e}")),
                };
                if let Some(why) = &failure {
                    st.metrics.storage_error("insert");
                    tracing::warn!(error = %why, "a committed batch could not be synced");
                }
                answer(waiting, answers, failure);
            });
        } else {
            answer(waiting, answers, None);
        }
    }
}

/// Sends the writer's answers (releasing the admission permits). A failed sync turns every
/// success into an error: the alerts are committed but may not survive a power cut, so
/// Alertmanager must retry (storing them again changes nothing).
fn answer(
    waiting: Vec<(Reply, Permits)>,
    answers: Vec<Result<Outcome, String>>,
    failure: Option<String>,
) {
    for ((reply, permits), answer) in waiting.into_iter().zip(answers) {
        let answer = match (&failure, answer) {
            (Some(why), Ok(_)) => Err(why.clone()),
            (_, a) => a,
        };
        let _ = reply.send(answer);
        drop(permits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sync_turns_successes_into_errors() {
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let st = AppState::new(Default::default(), "sqlite");
        let permits = || Permits {
            st: st.clone(),
            _request: Arc::new(tokio::sync::Semaphore::new(1))
                .try_acquire_owned()
                .unwrap(),
            kib: None,
            bytes: 0,
        };
        answer(
            vec![(tx1, permits()), (tx2, permits())],
            vec![
                Ok(Outcome {
                    stored: 3,
                    rejected: Vec::new(),
                }),
                Err("no space".into()),
            ],
            Some("syncing the write-ahead log: EIO".into()),
        );
        let a1 = rx1.blocking_recv().unwrap();
        assert_eq!(a1.unwrap_err(), "syncing the write-ahead log: EIO");
        assert_eq!(rx2.blocking_recv().unwrap().unwrap_err(), "no space");
    }

    #[test]
    fn bearer_comparison() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "tok"));
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert!(bearer_ok(&h, "tok"));
        assert!(!bearer_ok(&h, "to"));
        assert!(!bearer_ok(&h, "tokk"));
        h.insert(header::AUTHORIZATION, "Basic dG9r".parse().unwrap());
        assert!(!bearer_ok(&h, "tok"));
    }
}
