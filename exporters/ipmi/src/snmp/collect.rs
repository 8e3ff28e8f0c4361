//! Reading one agent with one module: the `async-snmp` client, GET of the module's scalar
//! instances, GETBULK walks of its subtrees (GETNEXT for SNMPv1), all under the scrape's
//! deadline.
//!
//! Each request waits at most the module's `timeout` and is resent `retries` times; both
//! shrink so that every try fits in the time the scrape has left. The client's socket and
//! its receive task are shut down when the module is done, on every path (also when the
//! deadline cuts a request short), so a silent agent leaves nothing behind. SNMPv3 engine
//! discovery results are cached per target ([`Runtime::engines`]), saving the discovery
//! round trip on every scrape after the first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_snmp::{Client, EngineCache, Oid, Retry, UdpControl, UdpHandle, Value};
use hpcmon_kit::MetricSet;

use super::auth::SnmpAuth;
use super::config::{ModuleKind, SnmpModule};
use super::render::{self, Answers, Rendered};
use crate::config::split_target;

/// Most values one walk may return (a runaway agent cannot fill memory).
pub const MAX_WALK_VALUES: usize = 100_000;

/// State shared by SNMP scrapes.
#[derive(Debug, Default)]
pub struct Runtime {
    /// SNMPv3 engine IDs, boots and times by target.
    pub engines: Arc<EngineCache>,
}

/// What one module's scrape of one target gave.
#[derive(Debug, Default)]
pub struct ModuleScrape {
    /// The metrics (also when `errors` is not empty).
    pub metrics: MetricSet,
    /// What went wrong (empty: success).
    pub errors: Vec<String>,
    /// Values the agent returned.
    pub pdus: usize,
    /// Rows dropped by `max_rows`.
    pub dropped: usize,
}

/// Host and port of an `/snmp` target (`HOST`, `HOST:PORT`; default port 161).
pub fn host_port(target: &str) -> Result<(String, u16), String> {
    let (h, p) = split_target(target);
    let port = match p {
        None => 161,
        Some(p) => p
            .parse()
            .map_err(|_| format!("bad port in target {target:?}"))?,
    };
    Ok((h.to_string(), port))
}

/// Scrapes `target` with `module` and `auth` until `deadline`.
pub async fn scrape(
    rt: &Runtime,
    target: &str,
    auth: &SnmpAuth,
    module: &SnmpModule,
    deadline: Instant,
) -> ModuleScrape {
    let mut out = ModuleScrape::default();
    let mut answers = Answers::new();
    let mut client: Option<(Client<UdpHandle>, UdpControl)> = None;
    let left = deadline.saturating_duration_since(Instant::now());
    let res = tokio::time::timeout(
        left,
        fetch(
            rt,
            target,
            auth,
            module,
            deadline,
            &mut answers,
            &mut client,
        ),
    )
    .await;
    let stats = client.as_ref().map(|(c, _)| c.stats());
    if let Some((_, control)) = client {
        control.shutdown().await;
    }
    let failure = match res {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "the scrape's deadline ({left:.1?}) passed before {target} answered everything ({} values so far)",
            answers.len()
        )),
    };
    if let Some(e) = failure {
        let hint = stats.map(|s| diagnose(&s, auth)).unwrap_or_default();
        out.errors.push(format!("{e}{hint}"));
    }
    out.pdus = answers.len();
    let r: Rendered = match &module.kind {
        ModuleKind::Metrics(defs) => {
            render::render(defs, &answers, module.max_rows, &mut out.metrics)
        }
        ModuleKind::EntitySensor => {
            super::entity_sensor::render(&answers, module.max_rows, &mut out.metrics)
        }
    };
    out.dropped = r.dropped;
    out.errors.extend(r.errors);
    out
}

/// What the client's socket saw, as a hint to why a scrape failed: nothing at all, only
/// datagrams that are not SNMP, or (SNMPv3) answers that were not authenticated for the
/// configured user (the agent's usmStats reports for an unknown user, a wrong passphrase or
/// security level are unauthenticated, so they are discarded, not trusted).
fn diagnose(s: &async_snmp::UdpStats, auth: &SnmpAuth) -> String {
    if s.malformed_datagrams > 0 {
        return format!(
            " ({} datagrams from the agent were not SNMP messages)",
            s.malformed_datagrams
        );
    }
    if s.correlated_datagrams == 0 && s.discarded_datagrams == 0 {
        return if auth.version == 3 {
            " (no answer at all: agent down or filtered; an agent that cannot decrypt the request, with a wrong privacy passphrase or protocol, stays silent too)".into()
        } else {
            " (no answer at all: agent down, filtered, or a wrong community: agents drop those silently)".into()
        };
    }
    if auth.version == 3 {
        return format!(
            " (the agent answered, but nothing authenticated for {}: wrong user name, passphrase, privacy passphrase or security level)",
            auth.describe
        );
    }
    String::new()
}

/// Each request's timeout: the module's, shrunk so that all tries of one request fit in
/// what is left (at least 10 ms).
fn request_timeout(module: &SnmpModule, deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    let per_try = left / (module.retries + 1);
    module.timeout.min(per_try).max(Duration::from_millis(10))
}

async fn fetch(
    rt: &Runtime,
    target: &str,
    auth: &SnmpAuth,
    module: &SnmpModule,
    deadline: Instant,
    answers: &mut Answers,
    slot: &mut Option<(Client<UdpHandle>, UdpControl)>,
) -> Result<(), String> {
    let (host, port) = host_port(target)?;
    let retry =
        Retry::fixed(module.retries, Duration::ZERO).map_err(|e| format!("retries: {e}"))?;
    let left = deadline.saturating_duration_since(Instant::now());
    let (client, ctl) = Client::builder((host.as_str(), port), auth.client.clone())
        .request_timeout(request_timeout(module, deadline))
        .construction_timeout(left.max(Duration::from_millis(10)))
        .retry(retry)
        .engine_cache(rt.engines.clone())
        .connect_with_control()
        .await
        .map_err(|e| format!("connecting to {target}: {e}"))?;
    *slot = Some((client.clone(), ctl));
    // Scalars: one GET (the client splits it into requests of its maximum size).
    if !module.get.is_empty() {
        let oids: Vec<Oid> = module.get.iter().map(|o| Oid::from_slice(o)).collect();
        let r = client
            .get_many(&oids)
            .await
            .map_err(|e| format!("GET from {target}: {e}"))?;
        for vb in r.varbinds {
            answers.insert(vb.oid.arcs().to_vec(), vb.value);
        }
    }
    for root in &module.walk {
        let oid = Oid::from_slice(root);
        let mut walk = if auth.version == 1 {
            client.walk_getnext(oid)
        } else {
            client.bulk_walk(oid, module.max_repetitions)
        }
        .map_err(|e| format!("walking {} on {target}: {e}", render::dotted(root)))?;
        let mut n = 0usize;
        while let Some(item) = walk.next().await {
            let vb =
                item.map_err(|e| format!("walking {} on {target}: {e}", render::dotted(root)))?;
            if matches!(vb.value, Value::EndOfMibView) {
                break;
            }
            n += 1;
            if n > MAX_WALK_VALUES {
                return Err(format!(
                    "walking {} on {target}: more than {MAX_WALK_VALUES} values; narrow the module's walk",
                    render::dotted(root)
                ));
            }
            answers.insert(vb.oid.arcs().to_vec(), vb.value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(host_port("ups1").unwrap(), ("ups1".into(), 161));
        assert_eq!(
            host_port("127.0.0.1:1161").unwrap(),
            ("127.0.0.1".into(), 1161)
        );
        assert!(host_port("h:x").is_err());
    }
}
