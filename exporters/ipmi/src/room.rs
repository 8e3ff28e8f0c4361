//! The machine room's multi-target endpoints, in the style of snmp_exporter and
//! modbus_exporter so that Prometheus' usual relabelling recipe works:
//!
//! - `/snmp?target=HOST[:PORT]&module=NAME[,NAME…]&auth=NAME` (module default `ups_mib`,
//!   auth default `public_v2`): `snmp_up{module}`, `snmp_scrape_duration_seconds{module}`,
//!   `snmp_scrape_pdus_returned{module}`, `snmp_scrape_rows_dropped{module}` and the kit's
//!   `snmp_scrape_collector_{success,duration_seconds}{collector=module}`;
//! - `/modbus?target=HOST[:PORT]&module=NAME&sub_target=UNIT` (unit default 1, port 502):
//!   `modbus_up`, `modbus_scrape_read_requests` and
//!   `modbus_scrape_collector_{success,duration_seconds}{collector=module}`.
//!
//! A target must be a host name or IP address with an optional port (anything else: 400),
//! and pass every `targets:` allow-list that applies (the section's, the SNMP auth's, the
//! module's; otherwise 403, and nothing is sent to it). A failure is served as `*_up 0`
//! with whatever was read, and logged once per scrape with the target, module and cause
//! (never a secret: communities and passphrases are not in any message).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hpcmon_kit::collector::{add_outcome_metrics, Outcome};
use hpcmon_kit::server::{metrics_response, scrape_timeout};
use hpcmon_kit::MetricSet;

use crate::config::{allowed, split_target, Config};
use crate::freeipmi::valid_host;
use crate::remote::ConfigHolder;
use crate::{modbus, snmp};

/// What the two handlers need.
pub struct RoomState {
    /// Configuration (reloaded with the IPMI modules).
    pub config: Arc<ConfigHolder>,
    /// SNMP client state (engine cache).
    pub snmp: Arc<snmp::collect::Runtime>,
    /// Modbus per-target locks.
    pub modbus: Arc<modbus::collect::Runtime>,
    /// `--scrape.timeout`.
    pub max_timeout: Duration,
}

fn bad(code: StatusCode, msg: String) -> Response {
    (code, msg + "\n").into_response()
}

/// The `target` parameter, or why it is refused (400).
fn check_target(q: &HashMap<String, String>) -> Result<String, String> {
    let Some(t) = q.get("target") else {
        return Err("'target' parameter is missing".into());
    };
    let (h, p) = split_target(t);
    if !valid_host(t) || h.is_empty() || p.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(
            "'target' must be HOST or HOST:PORT (letters, digits, '.', '-', '_', ':')".into(),
        );
    }
    Ok(t.clone())
}

fn refuse(target: &str, what: &str) -> Response {
    tracing::warn!(target = %target, "target refused: not in the {what} targets allow-list");
    bad(
        StatusCode::FORBIDDEN,
        format!("target {target:?} is not in the {what} targets allow-list"),
    )
}

/// Scrapes one SNMP target with the requested modules and auth.
pub async fn snmp_handler(
    State(st): State<Arc<RoomState>>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    // `module` may repeat (Prometheus `params: {module: [a, b]}`) and hold a comma list.
    let module_names: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "module")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    let q: HashMap<String, String> = pairs.into_iter().collect();
    let target = match check_target(&q) {
        Ok(t) => t,
        Err(msg) => return bad(StatusCode::BAD_REQUEST, msg),
    };
    let cfg: Arc<Config> = st.config.current();
    let auth_name = q.get("auth").map_or("public_v2", String::as_str);
    let Some(auth) = cfg.snmp.auths.get(auth_name).cloned() else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("unknown auth {auth_name:?}"),
        );
    };
    let mut modules: Vec<Arc<snmp::config::SnmpModule>> = Vec::new();
    let names = if module_names.is_empty() {
        vec!["ups_mib".to_string()]
    } else {
        module_names
    };
    for name in &names {
        match cfg.snmp.modules.get(name) {
            Some(m) if !modules.iter().any(|x| x.name == m.name) => modules.push(m.clone()),
            Some(_) => {}
            None => return bad(StatusCode::BAD_REQUEST, format!("unknown module {name:?}")),
        }
    }
    if !allowed(cfg.snmp.targets.as_deref(), &target, 161) {
        return refuse(&target, "snmp section's");
    }
    if !allowed(auth.targets.as_deref(), &target, 161) {
        return refuse(&target, &format!("auth {auth_name:?}'s"));
    }
    for m in &modules {
        if !allowed(m.targets.as_deref(), &target, 161) {
            return refuse(&target, &format!("module {:?}'s", m.name));
        }
    }
    let deadline = Instant::now() + scrape_timeout(&headers, st.max_timeout);
    let mut out = MetricSet::new();
    let mut outcomes = Vec::new();
    let mut stats = Vec::new();
    for m in &modules {
        let start = Instant::now();
        let s = snmp::collect::scrape(&st.snmp, &target, &auth, m, deadline).await;
        let duration = start.elapsed();
        let error = (!s.errors.is_empty()).then(|| s.errors.join("; "));
        if let Some(e) = &error {
            tracing::warn!(target = %target, module = %m.name, auth = %auth.name, auth_kind = %auth.describe, duration_seconds = duration.as_secs_f64(), error = %e, "SNMP scrape failed");
        }
        out.extend(s.metrics);
        stats.push((m.name.clone(), s.pdus as f64, s.dropped as f64));
        outcomes.push(Outcome {
            name: m.name.clone(),
            success: error.is_none(),
            duration,
            error,
        });
    }
    add_snmp_self_metrics(&outcomes, &stats, &mut out);
    metrics_response(out, &headers)
}

/// Scrapes one Modbus target (unit `sub_target`) with the requested module.
pub async fn modbus_handler(
    State(st): State<Arc<RoomState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let target = match check_target(&q) {
        Ok(t) => t,
        Err(msg) => return bad(StatusCode::BAD_REQUEST, msg),
    };
    let cfg: Arc<Config> = st.config.current();
    let Some(module_name) = q.get("module") else {
        return bad(
            StatusCode::BAD_REQUEST,
            "'module' parameter is missing".into(),
        );
    };
    let Some(module) = cfg.modbus.modules.get(module_name).cloned() else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("unknown module {module_name:?}"),
        );
    };
    let unit: u8 = match q.get("sub_target").map(|s| s.parse::<u8>()) {
        None => 1,
        Some(Ok(u)) => u,
        Some(Err(_)) => {
            return bad(
                StatusCode::BAD_REQUEST,
                "'sub_target' must be a unit id 0..255".into(),
            )
        }
    };
    if !allowed(cfg.modbus.targets.as_deref(), &target, 502) {
        return refuse(&target, "modbus section's");
    }
    if !allowed(module.targets.as_deref(), &target, 502) {
        return refuse(&target, &format!("module {module_name:?}'s"));
    }
    let addr = match split_target(&target) {
        (h, None) => format!("{h}:502"),
        _ => target.clone(),
    };
    let deadline = Instant::now() + scrape_timeout(&headers, st.max_timeout);
    let start = Instant::now();
    let s = modbus::collect::scrape(&st.modbus, &addr, unit, &module, deadline).await;
    let duration = start.elapsed();
    let error = (!s.errors.is_empty()).then(|| s.errors.join("; "));
    if let Some(e) = &error {
        tracing::warn!(target = %target, unit, module = %module.name, duration_seconds = duration.as_secs_f64(), error = %e, "Modbus scrape failed");
    }
    let mut out = s.metrics;
    add_modbus_self_metrics(
        Outcome {
            name: module.name.clone(),
            success: error.is_none(),
            duration,
            error,
        },
        s.reads,
        &mut out,
    );
    metrics_response(out, &headers)
}

/// Adds `snmp_up`, `snmp_scrape_{duration_seconds,pdus_returned,rows_dropped}` (per
/// module) and the kit's outcome metrics; `stats`: (module, values returned, rows dropped).
pub fn add_snmp_self_metrics(
    outcomes: &[Outcome],
    stats: &[(String, f64, f64)],
    out: &mut MetricSet,
) {
    let up = out.gauge(
        "snmp_up",
        "'1' if every value of the module was read and understood, '0' otherwise.",
    );
    for o in outcomes {
        up.sample(&[("module", &o.name)], if o.success { 1.0 } else { 0.0 });
    }
    let d = out.gauge(
        "snmp_scrape_duration_seconds",
        "Total SNMP time scrape took (walk and processing).",
    );
    for o in outcomes {
        d.sample(&[("module", &o.name)], o.duration.as_secs_f64());
    }
    let p = out.gauge(
        "snmp_scrape_pdus_returned",
        "PDUs returned from get and walk.",
    );
    for (m, n, _) in stats {
        p.sample(&[("module", m)], *n);
    }
    let r = out.gauge(
        "snmp_scrape_rows_dropped",
        "Table rows not exported because a metric had more than the module's max_rows.",
    );
    for (m, _, n) in stats {
        r.sample(&[("module", m)], *n);
    }
    add_outcome_metrics("snmp", outcomes, out);
}

/// Adds `modbus_up`, `modbus_scrape_read_requests` and the kit's outcome metrics.
pub fn add_modbus_self_metrics(outcome: Outcome, reads: usize, out: &mut MetricSet) {
    out.gauge(
        "modbus_up",
        "'1' if every register of the module was read and decoded, '0' otherwise.",
    )
    .sample(&[], if outcome.success { 1.0 } else { 0.0 });
    out.gauge(
        "modbus_scrape_read_requests",
        "Modbus read requests answered during the scrape.",
    )
    .sample(&[], reads as f64);
    add_outcome_metrics("modbus", &[outcome], out);
}

/// The routes `GET /snmp` and `GET /modbus`.
pub fn routes(st: Arc<RoomState>) -> Router {
    Router::new()
        .route("/snmp", get(snmp_handler))
        .route("/modbus", get(modbus_handler))
        .with_state(st)
}

/// Logs one warning per SNMP auth that carries secrets (a community other than `public`,
/// a v3 user) and that no allow-list fences: `/snmp` would send its community (or run the
/// USM exchange) with any host a client names.
pub fn warn_unfenced(cfg: &Config) {
    if cfg.snmp.targets.is_some() {
        return;
    }
    for a in cfg.snmp.auths.values() {
        if a.secret && a.targets.is_none() {
            tracing::warn!(
                auth = %a.name,
                "SNMP auth has credentials but no targets allow-list: /snmp sends them to any target a client names; list its agents under the auth's (or the snmp section's) `targets:`"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn self_metrics_golden() {
        let o = |name: &str, success: bool, ms: u64| Outcome {
            name: name.into(),
            success,
            duration: Duration::from_millis(ms),
            error: (!success).then(|| "x".into()),
        };
        let mut out = MetricSet::new();
        add_snmp_self_metrics(
            &[o("ups_mib", true, 12), o("entity_sensor", false, 2000)],
            &[
                ("ups_mib".into(), 63.0, 0.0),
                ("entity_sensor".into(), 0.0, 0.0),
            ],
            &mut out,
        );
        add_modbus_self_metrics(o("th_transmitter", true, 3), 1, &mut out);
        golden("room-up.prom", &text(out));
    }
}
