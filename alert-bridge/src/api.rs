//! The query API: `GET /api/v1/alerts` (JSON or CSV, filters, matchers, keyset or page
//! pagination), `GET /api/v1/alerts/{id}` (with history) and `GET /api/v1/stats`.
//!
//! Every query has a deadline (`--storage.query-timeout`). A reader's mistake (bad parameter,
//! too broad a matcher) is a 400 and a slow query a 503; neither counts as a storage error, so
//! the bridge's storage alert only fires for real storage failures.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::{now_ms, AppState};
use crate::payload::{self, Status};
use crate::storage::{self, Episode, Query, QueryError, SortKey};

// ---------------------------------------------------------------------------------------
// Query API

/// Formats ms since the epoch as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses a time parameter: RFC 3339 or Unix seconds (fractions allowed).
pub fn parse_time_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.abs() < 1e13 {
            return Ok((f * 1000.0).round() as i64);
        }
    }
    match payload::parse_time(s) {
        Ok(Some(ms)) => Ok(ms),
        _ => Err(format!(
            "invalid time {s:?}: want RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds"
        )),
    }
}

/// Output format of the list endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// Parses the query string of `/api/v1/alerts` (and `/api/v1/stats`).
pub fn parse_query(raw: &str, headers: &HeaderMap) -> Result<(Query, Format), String> {
    let mut q = Query::default();
    let mut format = if headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
    {
        Format::Csv
    } else {
        Format::Json
    };
    let mut page: Option<i64> = None;
    let split = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let v = v.as_ref();
        match k.as_ref() {
            "from" | "start" if !v.is_empty() => q.from = Some(parse_time_param(v)?),
            "to" | "end" if !v.is_empty() => q.to = Some(parse_time_param(v)?),
            "status" if !v.is_empty() => {
                q.status = Some(match v {
                    "firing" => Status::Firing,
                    "resolved" => Status::Resolved,
                    _ => return Err(format!("status {v:?}: want firing or resolved")),
                })
            }
            "severity" => q.severity.extend(split(v)),
            "alertname" => q.alertname.extend(split(v)),
            "fingerprint" if !v.is_empty() => q.fingerprint = Some(v.to_string()),
            "q" | "text" if !v.is_empty() => q.text = Some(v.to_string()),
            "match[]" | "matcher" | "filter" if !v.trim().is_empty() => {
                q.matchers.extend(crate::matcher::parse(v)?)
            }
            "sort" if !v.is_empty() => {
                let (desc, key) = match v.strip_prefix('-') {
                    Some(k) => (true, k),
                    None => (false, v.strip_prefix('+').unwrap_or(v)),
                };
                q.descending = desc;
                q.sort = match key {
                    "starts_at" | "startsAt" => SortKey::StartsAt,
                    "last_seen" | "lastSeen" => SortKey::LastSeen,
                    "id" => SortKey::Id,
                    _ => {
                        return Err(format!(
                            "sort {v:?}: want starts_at, last_seen or id, '-' for descending"
                        ))
                    }
                };
            }
            "limit" if !v.is_empty() => {
                q.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| format!("limit {v:?}: want 1..10000"))?
            }
            "page" if !v.is_empty() => {
                page = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| format!("page {v:?}: want a number from 1"))?,
                )
            }
            "cursor" if !v.is_empty() => {
                let (a, b) = v
                    .split_once('_')
                    .ok_or_else(|| format!("cursor {v:?} is not one this API returned"))?;
                q.cursor = Some((
                    a.parse().map_err(|_| format!("bad cursor {v:?}"))?,
                    b.parse().map_err(|_| format!("bad cursor {v:?}"))?,
                ));
            }
            "format" => {
                format = match v {
                    "json" | "" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return Err(format!("format {v:?}: want json or csv")),
                }
            }
            _ => {}
        }
    }
    if let Some(p) = page {
        q.offset = (p - 1) * q.limit;
    }
    if let (Some(f), Some(t)) = (q.from, q.to) {
        if f > t {
            return Err("from is after to".into());
        }
    }
    Ok((q, format))
}

fn json_obj(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

fn episode_json(e: &Episode) -> serde_json::Value {
    let dur = e.ends_at.unwrap_or_else(now_ms) - e.starts_at;
    serde_json::json!({
        "id": e.id,
        "fingerprint": e.fingerprint,
        "status": e.status,
        "startsAt": rfc3339(e.starts_at),
        "endsAt": e.ends_at.map(rfc3339),
        "durationSeconds": dur as f64 / 1000.0,
        "alertname": e.alertname,
        "severity": e.severity,
        "instance": e.instance,
        "labels": json_obj(&e.labels),
        "annotations": json_obj(&e.annotations),
        "generatorURL": e.generator_url,
        "receiver": e.receiver,
        "groupKey": e.group_key,
        "firstSeen": rfc3339(e.first_seen),
        "lastSeen": rfc3339(e.last_seen),
        "notifications": e.notifications,
    })
}

fn csv_cell(s: &str) -> String {
    // Cells a spreadsheet would run as a formula get a leading apostrophe.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn episodes_csv(rows: &[Episode]) -> String {
    let mut out = String::from(
        "id,status,severity,alertname,instance,fingerprint,starts_at,ends_at,duration_seconds,summary,description,labels,generator_url,notifications\n",
    );
    for e in rows {
        let ann = json_obj(&e.annotations);
        let a = |k: &str| {
            ann.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let dur = e.ends_at.unwrap_or_else(now_ms) - e.starts_at;
        let cells = [
            e.id.to_string(),
            csv_cell(&e.status),
            csv_cell(&e.severity),
            csv_cell(&e.alertname),
            csv_cell(&e.instance),
            csv_cell(&e.fingerprint),
            rfc3339(e.starts_at),
            e.ends_at.map(rfc3339).unwrap_or_default(),
            format!("{:.3}", dur as f64 / 1000.0),
            csv_cell(&a("summary")),
            csv_cell(&a("description")),
            csv_cell(&e.labels),
            csv_cell(&e.generator_url),
            e.notifications.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn json_response(code: StatusCode, v: serde_json::Value) -> Response {
    (code, axum::Json(v)).into_response()
}

fn api_error(code: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    json_response(
        code,
        serde_json::json!({"status": "error", "errorType": kind, "error": msg.into()}),
    )
}

fn bad_request(st: &AppState, msg: impl Into<String>) -> Response {
    st.metrics.query_rejected("bad_data");
    api_error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn not_ready(st: &AppState) -> Response {
    st.metrics.query_rejected("not_ready");
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "storage is not ready",
    )
}

fn timed_out(st: &AppState) -> Response {
    st.metrics.query_rejected("timeout");
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        format!(
            "the query did not finish within {:?} (--storage.query-timeout); narrow it",
            st.settings.query_timeout
        ),
    )
}

fn query_error(st: &AppState, e: QueryError) -> Response {
    match e {
        QueryError::Bad(m) => bad_request(st, m),
        QueryError::Storage(e) if storage::is_timeout(&e) => timed_out(st),
        QueryError::Storage(e) => {
            st.metrics.storage_error("query");
            tracing::warn!(error = %e, "query failed");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        }
    }
}

/// Runs a query with the API's deadline (the query is cancelled, not the storage).
async fn deadline<T>(
    st: &AppState,
    f: impl std::future::Future<Output = Result<T, QueryError>>,
) -> Result<T, Response> {
    match tokio::time::timeout(st.settings.query_timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(query_error(st, e)),
        Err(_) => Err(timed_out(st)),
    }
}

pub(crate) async fn list_alerts(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (q, format) = match parse_query(raw.as_deref().unwrap_or(""), &headers) {
        Ok(x) => x,
        Err(e) => return bad_request(&st, e),
    };
    let Some(db) = st.db() else {
        return not_ready(&st);
    };
    let (rows, more) = match deadline(&st, storage::list(db, &q)).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if format == Format::Csv {
        return (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            episodes_csv(&rows),
        )
            .into_response();
    }
    let next = if more {
        rows.last().map(|e| format!("{}_{}", q.sort.of(e), e.id))
    } else {
        None
    };
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "status": "success",
            "data": rows.iter().map(episode_json).collect::<Vec<_>>(),
            "more": more,
            "nextCursor": next,
        }),
    )
}

pub(crate) async fn get_alert(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return bad_request(&st, "id must be a number");
    };
    let Some(db) = st.db() else {
        return not_ready(&st);
    };
    let found = deadline(&st, async { Ok(storage::get(db, id).await?) }).await;
    match found {
        Ok(Some((e, hist))) => {
            let mut v = episode_json(&e);
            v["history"] = hist
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "receivedAt": rfc3339(h.received_at),
                        "status": h.status,
                        "endsAt": h.ends_at.map(rfc3339),
                        "annotations": json_obj(&h.annotations),
                        "receiver": h.receiver,
                        "groupKey": h.group_key,
                        "reason": h.reason,
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                serde_json::json!({"status": "success", "data": v}),
            )
        }
        Ok(None) => api_error(StatusCode::NOT_FOUND, "not_found", format!("no alert {id}")),
        Err(r) => r,
    }
}

pub(crate) async fn stats(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (q, _) = match parse_query(raw.as_deref().unwrap_or(""), &headers) {
        Ok(x) => x,
        Err(e) => return bad_request(&st, e),
    };
    let Some(db) = st.db() else {
        return not_ready(&st);
    };
    let rows = match deadline(&st, storage::stats(db, &q)).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    use std::collections::BTreeMap;
    let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_sev: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut total = 0;
    for (name, sev, status, n) in &rows {
        total += n;
        *by_status.entry(status).or_default() += n;
        *by_sev.entry(sev).or_default() += n;
        let e = by_name.entry(name).or_default();
        *e.entry("total").or_default() += n;
        *e.entry(status).or_default() += n;
    }
    json_response(
        StatusCode::OK,
        serde_json::json!({"status": "success", "data": {
            "total": total,
            "byStatus": by_status,
            "bySeverity": by_sev,
            "byAlertname": by_name,
            "groups": rows.iter().map(|(a, s, st, n)| serde_json::json!(
                {"alertname": a, "severity": s, "status": st, "count": n})).collect::<Vec<_>>(),
        }}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let h = HeaderMap::new();
        let (q, f) = parse_query(
            "from=2026-01-01T00:00:00Z&to=1767229200&status=firing&severity=critical,warning\
             &match[]=%7Binstance%3D~%22n.*%22%7D&matcher=job%3D%22x%22&sort=-last_seen&limit=5&page=3&format=csv&q=disk",
            &h,
        )
        .unwrap();
        assert_eq!(f, Format::Csv);
        assert_eq!(q.from, Some(1_767_225_600_000));
        assert_eq!(q.to, Some(1_767_229_200_000));
        assert_eq!(q.status, Some(Status::Firing));
        assert_eq!(q.severity, ["critical", "warning"]);
        assert_eq!(q.matchers.len(), 2);
        assert_eq!((q.sort, q.descending), (SortKey::LastSeen, true));
        assert_eq!((q.limit, q.offset), (5, 10));
        assert_eq!(q.text.as_deref(), Some("disk"));
        for bad in [
            "from=yesterday",
            "status=pending",
            "limit=0",
            "limit=100000",
            "sort=labels",
            "match[]=%7Bx%3D%7D",
            "cursor=abc",
            "from=2&to=1",
            "format=xml",
        ] {
            assert!(parse_query(bad, &h).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_cell("=cmd()"), "\"'=cmd()\"");
    }
}
