//! Reading one Modbus TCP target (a device, or a gateway with units behind it) with
//! `tokio-modbus`: one connection per target at a time, adjacent registers read together,
//! every connect and read under a deadline with retries.
//!
//! A scrape that fails in part (an exception for one read, a short answer, a decode error)
//! still exports what it read, and reports the failure (`modbus_up 0` and the error in the
//! log). An exception is the device's answer, so it is not retried; a timeout or a broken
//! connection is retried (`retries`) on a new connection while the deadline allows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hpcmon_kit::{MetricSet, MetricType};
use tokio_modbus::client::{Client as _, Context as ModbusContext};
use tokio_modbus::{Request, Response, Slave};

use super::config::{Metric, MetricKind, Module, RegisterKind};
use super::decode::decode;

/// One read request: `count` registers (or bits) of `kind` from `start`, covering
/// `metrics` (indices into the module's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Table.
    pub kind: RegisterKind,
    /// First address.
    pub start: u16,
    /// Registers or bits.
    pub count: u16,
    /// The metrics inside it.
    pub metrics: Vec<usize>,
}

/// Most bits in one coil / discrete-input read (Modbus allows 2000).
const MAX_BITS_PER_READ: u16 = 2000;

/// Groups the module's values into as few reads as possible: values of the same table
/// whose addresses touch or overlap are read together, up to `max_registers` (bits: 16
/// times as many, at most 2000) per request. Gaps are never read across (a device may
/// answer an exception for addresses it does not have).
pub fn plan(metrics: &[Metric], max_registers: u16) -> Vec<Read> {
    let mut order: Vec<usize> = (0..metrics.len()).collect();
    order.sort_by_key(|&i| (metrics[i].register, metrics[i].address));
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let m = &metrics[i];
        let limit = if m.register.is_bits() {
            max_registers.saturating_mul(16).min(MAX_BITS_PER_READ)
        } else {
            max_registers
        };
        let (a, end) = (
            u32::from(m.address),
            u32::from(m.address) + u32::from(m.width()),
        );
        if let Some(r) = reads.last_mut() {
            let r_end = u32::from(r.start) + u32::from(r.count);
            let new_end = r_end.max(end);
            if r.kind == m.register
                && a <= r_end
                && new_end - u32::from(r.start) <= u32::from(limit)
            {
                r.count = (new_end - u32::from(r.start)) as u16;
                r.metrics.push(i);
                continue;
            }
        }
        reads.push(Read {
            kind: m.register,
            start: m.address,
            count: m.width(),
            metrics: vec![i],
        });
    }
    reads
}

/// Per-target locks: one connection per target at a time (a serial gateway serves one
/// request at a time; two scrapers of one device must not interleave).
#[derive(Debug, Default)]
pub struct Runtime {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Runtime {
    fn lock_for(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the locks nobody holds or waits for: the map stays as small as the set of
        // targets being scraped right now, whatever targets clients name.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(target.to_string()).or_default().clone()
    }
}

/// What a scrape of one target gave.
#[derive(Debug, Default)]
pub struct Scrape {
    /// The values read (also when `errors` is not empty).
    pub metrics: MetricSet,
    /// What went wrong (empty: success).
    pub errors: Vec<String>,
    /// Read requests answered (exceptions included).
    pub reads: usize,
}

/// The time left until `deadline`, at most `cap`; an error once it has passed.
fn budget(deadline: Instant, cap: Duration) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("the scrape's deadline passed".into());
    }
    Ok(left.min(cap))
}

async fn connect(
    addr: SocketAddr,
    unit: u8,
    m: &Module,
    deadline: Instant,
) -> Result<ModbusContext, String> {
    let mut last = String::new();
    for attempt in 0..=m.retries {
        let t = budget(deadline, m.timeout).map_err(|e| {
            if last.is_empty() {
                e
            } else {
                format!("{last}; then {e}")
            }
        })?;
        match tokio::time::timeout(
            t,
            tokio_modbus::client::tcp::connect_slave(addr, Slave(unit)),
        )
        .await
        {
            Ok(Ok(ctx)) => {
                if !m.sleep_after_connect.is_zero() {
                    let s = budget(deadline, m.sleep_after_connect)?;
                    tokio::time::sleep(s).await;
                }
                return Ok(ctx);
            }
            Ok(Err(e)) => last = format!("connecting to {addr} (try {}): {e}", attempt + 1),
            Err(_) => {
                last = format!(
                    "connecting to {addr} (try {}): no answer within {t:?}",
                    attempt + 1
                )
            }
        }
    }
    Err(last)
}

/// Registers (as `u16`; bits as 0/1) of one read, or why not. `Err((msg, reconnect))`:
/// `reconnect` when the connection can no longer be trusted.
async fn read_once(
    ctx: &mut ModbusContext,
    r: &Read,
    t: Duration,
) -> Result<Vec<u16>, (String, bool)> {
    let what = format!("{} {}+{}", r.kind.as_str(), r.start, r.count);
    // Through `call`, not tokio-modbus' `read_*` helpers: those assert (panic in debug
    // builds) when a device answers fewer registers than asked; a short answer is the
    // device's fault and must be an error here.
    let req = match r.kind {
        RegisterKind::Holding => Request::ReadHoldingRegisters(r.start, r.count),
        RegisterKind::Input => Request::ReadInputRegisters(r.start, r.count),
        RegisterKind::Coil => Request::ReadCoils(r.start, r.count),
        RegisterKind::Discrete => Request::ReadDiscreteInputs(r.start, r.count),
    };
    let fut = async {
        ctx.call(req).await.map(|x| {
            x.map(|resp| match resp {
                Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) => Some(w),
                Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => {
                    Some(b.into_iter().map(u16::from).collect())
                }
                _ => None,
            })
        })
    };
    match tokio::time::timeout(t, fut).await {
        Err(_) => Err((format!("reading {what}: no answer within {t:?}"), true)),
        Ok(Err(e)) => Err((format!("reading {what}: {e}"), true)),
        Ok(Ok(Err(exc))) => Err((
            format!(
                "reading {what}: Modbus exception {:#04x} ({exc})",
                u8::from(exc)
            ),
            false,
        )),
        Ok(Ok(Ok(None))) => Err((
            format!("reading {what}: the answer is not a read response"),
            true,
        )),
        Ok(Ok(Ok(Some(v)))) => {
            // Coils come back padded to whole bytes; registers must be exactly as many as
            // asked.
            if v.len() < usize::from(r.count) {
                return Err((
                    format!(
                        "reading {what}: short answer ({} of {} values)",
                        v.len(),
                        r.count
                    ),
                    false,
                ));
            }
            Ok(v)
        }
    }
}

/// Scrapes `target` (`HOST:PORT`), unit `unit`, with module `m`, until `deadline`.
pub async fn scrape(rt: &Runtime, target: &str, unit: u8, m: &Module, deadline: Instant) -> Scrape {
    let mut out = Scrape::default();
    let lock = rt.lock_for(target);
    let left = deadline.saturating_duration_since(Instant::now());
    let Ok(_guard) = tokio::time::timeout(left, lock.lock()).await else {
        out.errors.push(format!(
            "another scrape of {target} did not finish before this one's deadline (one connection per target)"
        ));
        return out;
    };
    let addr = match resolve(target, deadline, m.timeout).await {
        Ok(a) => a,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let reads = plan(&m.metrics, m.max_registers_per_read);
    let mut ctx: Option<ModbusContext> = None;
    let mut values: Vec<Option<Vec<u16>>> = vec![None; reads.len()];
    'reads: for (ri, r) in reads.iter().enumerate() {
        let mut last = String::new();
        for _attempt in 0..=m.retries {
            if ctx.is_none() {
                match connect(addr, unit, m, deadline).await {
                    Ok(c) => ctx = Some(c),
                    Err(e) => {
                        out.errors.push(e);
                        break 'reads;
                    }
                }
            }
            let t = match budget(deadline, m.timeout) {
                Ok(t) => t,
                Err(e) => {
                    out.errors.push(format!(
                        "{e} before reading {} {}",
                        r.kind.as_str(),
                        r.start
                    ));
                    break 'reads;
                }
            };
            let c = ctx.as_mut().expect("connected above");
            match read_once(c, r, t).await {
                Ok(v) => {
                    out.reads += 1;
                    values[ri] = Some(v);
                    continue 'reads;
                }
                Err((e, reconnect)) => {
                    if !reconnect {
                        // The device answered (exception, short answer): not retried.
                        out.reads += 1;
                        out.errors.push(e);
                        continue 'reads;
                    }
                    if let Some(mut c) = ctx.take() {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(100), c.disconnect()).await;
                    }
                    last = e;
                }
            }
        }
        out.errors.push(last);
    }
    if let Some(mut c) = ctx.take() {
        let _ = tokio::time::timeout(Duration::from_millis(100), c.disconnect()).await;
    }
    for (r, v) in reads.iter().zip(&values) {
        let Some(v) = v else { continue };
        for &i in &r.metrics {
            let metric = &m.metrics[i];
            let off = usize::from(metric.address - r.start);
            let slice = v.get(off..).unwrap_or(&[]);
            let raw = if metric.register.is_bits() {
                slice
                    .first()
                    .map(|b| f64::from(*b))
                    .ok_or_else(|| "short answer".to_string())
            } else {
                decode(slice, &metric.layout).map_err(|e| e.to_string())
            };
            match raw {
                Ok(raw) => add(&mut out.metrics, metric, raw),
                Err(e) => out.errors.push(format!(
                    "{} ({} {}): {e}",
                    metric.name,
                    metric.register.as_str(),
                    metric.address
                )),
            }
        }
    }
    out
}

async fn resolve(target: &str, deadline: Instant, cap: Duration) -> Result<SocketAddr, String> {
    let t = budget(deadline, cap)?;
    match tokio::time::timeout(t, tokio::net::lookup_host(target)).await {
        Err(_) => Err(format!("resolving {target}: no answer within {t:?}")),
        Ok(Err(e)) => Err(format!("resolving {target}: {e}")),
        Ok(Ok(mut it)) => it
            .next()
            .ok_or_else(|| format!("resolving {target}: no address")),
    }
}

/// Adds one decoded value (`raw`, before factor and offset) as `metric` says.
pub fn add(out: &mut MetricSet, metric: &Metric, raw: f64) {
    if !metric.enum_values.is_empty() {
        let f = out.gauge_dyn(&metric.name, &metric.help);
        let current = raw as i64;
        let known = raw.fract() == 0.0 && metric.enum_values.contains_key(&current);
        for (k, state) in &metric.enum_values {
            let mut labels = metric.labels.clone();
            labels.push((metric.name.clone(), state.clone()));
            f.sample_owned(labels, if known && *k == current { 1.0 } else { 0.0 });
        }
        if !known {
            let mut labels = metric.labels.clone();
            labels.push((metric.name.clone(), format!("{raw}")));
            f.sample_owned(labels, 1.0);
        }
        return;
    }
    let kind = match metric.kind {
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Counter => MetricType::Counter,
    };
    out.family_dyn(&metric.name, &metric.help, kind)
        .sample_owned(
            metric.labels.clone(),
            crate::scale::apply(raw, metric.factor, metric.offset),
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::decode::{DataType, Layout, Order};
    use proptest::prelude::*;

    fn metric(kind: RegisterKind, address: u16, t: DataType) -> Metric {
        Metric {
            name: format!("m{address}"),
            help: String::new(),
            register: kind,
            address,
            layout: Layout {
                data_type: t,
                byte_order: Order::Big,
                word_order: Order::Big,
                bit: 0,
            },
            factor: 1.0,
            offset: 0.0,
            kind: MetricKind::Gauge,
            labels: vec![],
            enum_values: Default::default(),
        }
    }

    #[test]
    fn plan_merges_adjacent_values_only() {
        use DataType::*;
        use RegisterKind::*;
        let ms = vec![
            metric(Input, 0, Float32),
            metric(Input, 2, Float32),
            metric(Input, 4, Int16),
            metric(Input, 70, Float32),
            metric(Holding, 0, Uint16),
            metric(Coil, 0, Bool),
            metric(Coil, 1, Bool),
        ];
        let p = plan(&ms, 125);
        let shape: Vec<_> = p.iter().map(|r| (r.kind, r.start, r.count)).collect();
        assert_eq!(
            shape,
            vec![(Coil, 0, 2), (Input, 0, 5), (Input, 70, 2), (Holding, 0, 1)]
        );
        // A cap of 3 registers splits the run.
        let p = plan(&ms[..3], 3);
        assert_eq!(
            p.iter().map(|r| (r.start, r.count)).collect::<Vec<_>>(),
            vec![(0, 2), (2, 3)]
        );
    }

    #[test]
    fn state_sets_and_scaling() {
        let mut m = metric(RegisterKind::Holding, 0, DataType::Uint16);
        m.name = "mode".into();
        m.enum_values = [(0, "off".to_string()), (1, "cooling".to_string())].into();
        let mut out = MetricSet::new();
        add(&mut out, &m, 1.0);
        add(&mut out, &m, 7.0);
        let mut v = metric(RegisterKind::Input, 1, DataType::Int16);
        v.factor = 0.1;
        v.offset = -1.0;
        add(&mut out, &v, 250.0);
        out.normalize();
        let t = hpcmon_kit::metrics::encode_text(&out);
        assert!(t.contains("mode{mode=\"cooling\"} 1\n"), "{t}");
        assert!(t.contains("mode{mode=\"off\"} 0\n"), "{t}");
        assert!(t.contains("mode{mode=\"7\"} 1\n"), "{t}");
        assert!(t.contains("m1 24\n"), "{t}");
    }

    /// Golden output of the built-in templates with the readings the simulator
    /// (scripts/lib/room_modbus_sim.py) serves: the reference for dashboards and rules.
    #[test]
    fn golden_builtin_templates() {
        let raws: &[(&str, &[f64])] = &[
            ("th_transmitter", &[235.0, 452.0]),
            (
                "power_meter_3phase",
                &[
                    231.5, 229.8, 230.4, 12.5, 11.0, 9.75, 2890.0, 2530.0, 2240.0, 50.0, 12345.5,
                ],
            ),
            (
                "precision_ac",
                &[1.0, 245.0, 480.0, 180.0, 220.0, 0.0, 88640.0, 1.0],
            ),
        ];
        let b = crate::modbus::config::builtins().unwrap();
        let mut out = MetricSet::new();
        for (name, values) in raws {
            let m = &b[*name];
            assert_eq!(m.metrics.len(), values.len(), "{name}");
            for (metric, raw) in m.metrics.iter().zip(values.iter()) {
                add(&mut out, metric, *raw);
            }
        }
        crate::collector::testutil::golden(
            "modbus/templates.prom",
            &crate::collector::testutil::text(out),
        );
    }

    proptest! {
        /// Every value is inside exactly one read of its table, and no read is longer than
        /// the cap.
        #[test]
        fn plan_covers_every_value(spec in proptest::collection::vec((0u8..4, 0u16..300, 0u8..4), 1..60),
                                   cap in 1u16..126) {
            let kinds = [RegisterKind::Coil, RegisterKind::Discrete, RegisterKind::Input, RegisterKind::Holding];
            let types = [DataType::Uint16, DataType::Float32, DataType::Float64, DataType::Int16];
            let ms: Vec<Metric> = spec.iter().map(|(k, a, t)| {
                let kind = kinds[usize::from(*k)];
                metric(kind, *a, if kind.is_bits() { DataType::Bool } else { types[usize::from(*t)] })
            }).collect();
            let reads = plan(&ms, cap);
            let mut seen = vec![0; ms.len()];
            for r in &reads {
                let limit = if r.kind.is_bits() { (cap * 16).min(2000) } else { cap };
                // (one value wider than the cap gets a read of its own)
                prop_assert!((r.count <= limit || r.metrics.len() == 1) && r.count > 0);
                for &i in &r.metrics {
                    seen[i] += 1;
                    prop_assert_eq!(ms[i].register, r.kind);
                    prop_assert!(ms[i].address >= r.start);
                    prop_assert!(u32::from(ms[i].address) + u32::from(ms[i].width()) <= u32::from(r.start) + u32::from(r.count));
                }
            }
            prop_assert!(seen.iter().all(|n| *n == 1));
        }
    }
}
