//! Turning an agent's answers (OID → value) into metrics, as a declarative module says:
//! snmp_exporter's semantics (index labels, lookups, scale, strings and enumerations as
//! labels). Pure: property-tested never to panic on any answer.
//!
//! A value of the wrong type (text where a number is due), an index that does not fit the
//! module's index definition, or a scale/precision out of range is a malformed answer: the
//! series is skipped and the error reported (the module's scrape then counts as failed);
//! `noSuchObject`/`noSuchInstance`/`endOfMibView` are "not there" and skipped silently.

use std::collections::BTreeMap;

use async_snmp::Value;
use hpcmon_kit::{MetricSet, MetricType as KitType};

use super::config::{Index, IndexType, MetricDef, MetricType};
use crate::names::bounded;

/// What the agent answered: every instance OID with its value.
pub type Answers = BTreeMap<Vec<u32>, Value>;

/// What rendering found besides metrics.
#[derive(Debug, Default, PartialEq)]
pub struct Rendered {
    /// Malformed answers (one line each).
    pub errors: Vec<String>,
    /// Rows dropped by `max_rows`.
    pub dropped: usize,
}

/// The instances under `prefix`, in OID order.
pub fn under<'a>(
    data: &'a Answers,
    prefix: &'a [u32],
) -> impl Iterator<Item = (&'a [u32], &'a Value)> + 'a {
    data.range(prefix.to_vec()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(move |(k, v)| (&k[prefix.len()..], v))
}

/// Dotted text of arcs.
pub fn dotted(arcs: &[u32]) -> String {
    let mut s = String::with_capacity(arcs.len() * 3);
    for (i, a) in arcs.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&a.to_string());
    }
    s
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        s.push_str(&format!("{x:02X}"));
    }
    s
}

/// A value as label text: strings as text (`hex`: bytes as `0x…`), OIDs dotted, numbers
/// in decimal. `None` for exceptions.
pub fn text(v: &Value, as_hex: bool) -> Option<String> {
    if v.is_exception() {
        return None;
    }
    Some(match v {
        Value::OctetString(b) if as_hex => hex(b),
        Value::OctetString(b) => {
            let b: &[u8] = b;
            let end = b.iter().rposition(|c| *c != 0).map_or(0, |p| p + 1);
            bounded(&String::from_utf8_lossy(&b[..end]))
        }
        Value::ObjectIdentifier(o) => o.to_string(),
        Value::IpAddress(a) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        Value::Null => String::new(),
        other => match number(other) {
            Some(n) => format_number(n),
            None => format!("{other:?}"),
        },
    })
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A numeric value (integers, counters, gauges, time ticks, opaque float/double).
pub fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_opaque_float().map(f64::from))
        .or_else(|| v.as_opaque_double())
}

/// Splits index arcs into labels; `None` when they do not fit the definition.
pub fn parse_index(mut arcs: &[u32], defs: &[Index]) -> Option<Vec<(String, String, Vec<u32>)>> {
    let mut out = Vec::with_capacity(defs.len());
    for d in defs {
        let (value, used) = match d.kind {
            IndexType::Gauge => (arcs.first()?.to_string(), 1),
            IndexType::IpAddr => {
                let a = arcs.get(..4)?;
                if a.iter().any(|x| *x > 255) {
                    return None;
                }
                (format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]), 4)
            }
            IndexType::DisplayString | IndexType::OctetString => {
                let (bytes, used) = if d.implied {
                    (arcs, arcs.len())
                } else {
                    let n = usize::try_from(*arcs.first()?).ok()?;
                    (arcs.get(1..1 + n)?, 1 + n)
                };
                let bytes: Vec<u8> = bytes
                    .iter()
                    .map(|x| u8::try_from(*x).ok())
                    .collect::<Option<_>>()?;
                let v = if d.kind == IndexType::OctetString {
                    hex(&bytes)
                } else {
                    bounded(&String::from_utf8_lossy(&bytes))
                };
                (v, used)
            }
        };
        out.push((d.labelname.clone(), value, arcs[..used].to_vec()));
        arcs = &arcs[used..];
    }
    arcs.is_empty().then_some(out)
}

/// Adds the metrics of `defs` found in `data`.
pub fn render(
    defs: &[MetricDef],
    data: &Answers,
    max_rows: usize,
    out: &mut MetricSet,
) -> Rendered {
    let mut r = Rendered::default();
    for d in defs {
        let mut rows = 0usize;
        for (rest, v) in under(data, &d.oid) {
            if rest.is_empty() {
                continue;
            }
            let index = if d.indexes.is_empty() {
                if rest != [0] {
                    continue; // another object sharing the prefix, or a table under a scalar's name
                }
                Vec::new()
            } else {
                match parse_index(rest, &d.indexes) {
                    Some(i) => i,
                    None => {
                        r.errors.push(format!(
                            "{} ({}.{}): the index does not fit the module's indexes",
                            d.name,
                            dotted(&d.oid),
                            dotted(rest)
                        ));
                        continue;
                    }
                }
            };
            if v.is_exception() {
                continue;
            }
            rows += 1;
            if rows > max_rows {
                r.dropped += 1;
                continue;
            }
            let mut labels: Vec<(String, String)> = index
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect();
            for l in &d.lookups {
                let mut key = l.oid.clone();
                for lab in &l.labels {
                    if let Some((_, _, arcs)) = index.iter().find(|(k, _, _)| k == lab) {
                        key.extend_from_slice(arcs);
                    }
                }
                let val = data
                    .get(&key)
                    .and_then(|v| text(v, false))
                    .unwrap_or_default();
                labels.retain(|(k, _)| *k != l.labelname);
                labels.push((l.labelname.clone(), val));
            }
            if let Err(e) = add(d, v, labels, out) {
                r.errors.push(format!(
                    "{} ({}.{}): {e}",
                    d.name,
                    dotted(&d.oid),
                    dotted(rest)
                ));
            }
        }
    }
    r
}

fn add(
    d: &MetricDef,
    v: &Value,
    mut labels: Vec<(String, String)>,
    out: &mut MetricSet,
) -> Result<(), String> {
    let want_number =
        || number(v).ok_or_else(|| format!("expected a number, got {}", v.kind().as_str()));
    match d.kind {
        MetricType::Gauge | MetricType::Float | MetricType::Double => {
            let n = want_number()?;
            out.gauge_dyn(&d.name, &d.help)
                .sample_owned(labels, crate::scale::apply(n, d.scale, d.offset));
        }
        MetricType::Counter => {
            let n = want_number()?;
            out.family_dyn(&d.name, &d.help, KitType::Counter)
                .sample_owned(labels, crate::scale::apply(n, d.scale, d.offset));
        }
        MetricType::DisplayString | MetricType::OctetString => {
            let t = text(
                v,
                d.kind == MetricType::OctetString && matches!(v, Value::OctetString(_)),
            )
            .unwrap_or_default();
            labels.push((d.name.clone(), t));
            out.gauge_dyn(&d.name, &d.help).sample_owned(labels, 1.0);
        }
        MetricType::EnumAsInfo | MetricType::EnumAsStateSet => {
            let n = want_number()?;
            let current = (n.fract() == 0.0).then_some(n as i64);
            let name = current.and_then(|c| d.enum_values.get(&c));
            let f = out.gauge_dyn(&d.name, &d.help);
            if d.kind == MetricType::EnumAsInfo {
                labels.push((
                    d.name.clone(),
                    name.cloned().unwrap_or_else(|| format_number(n)),
                ));
                f.sample_owned(labels, 1.0);
            } else {
                for (k, state) in &d.enum_values {
                    let mut l = labels.clone();
                    l.push((d.name.clone(), state.clone()));
                    f.sample_owned(l, if Some(*k) == current { 1.0 } else { 0.0 });
                }
                if name.is_none() {
                    labels.push((d.name.clone(), format_number(n)));
                    f.sample_owned(labels, 1.0);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snmp::config::{builtins, parse_oid, ModuleKind};
    use async_snmp::Oid;
    use proptest::prelude::*;

    /// Answers from a captured `snmpbulkwalk -On` (testdata/snmp/*.walk).
    pub(crate) fn parse_walk(text: &str) -> Answers {
        let mut d = Answers::new();
        for l in text.lines().filter(|l| l.starts_with('.')) {
            let (o, rest) = l.split_once(" = ").unwrap();
            let (kind, v) = rest.split_once(": ").unwrap();
            let v = match kind {
                "INTEGER" => Value::Integer(v.parse().unwrap()),
                "STRING" => Value::from(v.trim_matches('"')),
                "Counter32" => Value::Counter32(v.parse().unwrap()),
                "Gauge32" => Value::Gauge32(v.parse().unwrap()),
                "OID" => Value::from(Oid::from_slice(&parse_oid(v).unwrap())),
                "Timeticks" => Value::TimeTicks(v[1..v.find(')').unwrap()].parse().unwrap()),
                other => panic!("walk type {other}"),
            };
            d.insert(parse_oid(o).unwrap(), v);
        }
        d
    }

    /// The golden output of a real walk (scripts/snmp-sim.sh, on battery), the reference
    /// for dashboards and rules.
    #[test]
    fn golden_ups_walk() {
        let d = parse_walk(include_str!("../../testdata/snmp/ups-onbattery.walk"));
        let mut out = MetricSet::new();
        assert_eq!(render(&ups_defs(), &d, 1000, &mut out), Rendered::default());
        crate::collector::testutil::golden("snmp/ups.prom", &encode(out.clone()));
        let normal = parse_walk(include_str!("../../testdata/snmp/ups-normal.walk"));
        let mut out = MetricSet::new();
        assert_eq!(
            render(&ups_defs(), &normal, 1000, &mut out),
            Rendered::default()
        );
        let t = encode(out);
        assert!(
            t.contains("upsOutputSource 3\n") && !t.contains("upsAlarmDescr{"),
            "{t}"
        );
    }

    fn ups_defs() -> Vec<MetricDef> {
        match &builtins().unwrap()["ups_mib"].kind {
            ModuleKind::Metrics(d) => d.clone(),
            _ => unreachable!(),
        }
    }

    fn oid(s: &str) -> Vec<u32> {
        parse_oid(s).unwrap()
    }

    fn encode(mut set: MetricSet) -> String {
        set.normalize();
        hpcmon_kit::metrics::encode_text(&set)
    }

    #[test]
    fn ups_mib_like_snmp_exporter() {
        let mut d = Answers::new();
        let u = "1.3.6.1.2.1.33.1";
        d.insert(oid(&format!("{u}.1.1.0")), Value::from("hpcmon"));
        d.insert(oid(&format!("{u}.2.1.0")), Value::Integer(2));
        d.insert(oid(&format!("{u}.2.5.0")), Value::Integer(545));
        d.insert(oid(&format!("{u}.3.1.0")), Value::Counter32(3));
        d.insert(oid(&format!("{u}.3.3.1.2.1")), Value::Integer(500));
        d.insert(oid(&format!("{u}.3.3.1.2.2")), Value::Integer(499));
        d.insert(oid(&format!("{u}.4.4.1.5.1")), Value::Integer(35));
        d.insert(
            oid(&format!("{u}.6.2.1.2.1")),
            Value::from(Oid::from_slice(&[1, 3, 6, 1, 2, 1, 33, 1, 6, 3, 2])),
        );
        d.insert(oid(&format!("{u}.7.1.0")), Value::NoSuchInstance);
        let mut out = MetricSet::new();
        let r = render(&ups_defs(), &d, 1000, &mut out);
        assert_eq!(r, Rendered::default());
        let t = encode(out);
        for want in [
            "upsIdentManufacturer{upsIdentManufacturer=\"hpcmon\"} 1\n",
            "upsBatteryStatus 2\n",
            "upsBatteryVoltage 54.5\n",
            "# TYPE upsInputLineBads counter\nupsInputLineBads 3\n",
            "upsInputFrequency{upsInputLineIndex=\"1\"} 50\n",
            "upsInputFrequency{upsInputLineIndex=\"2\"} 49.9\n",
            "upsOutputPercentLoad{upsOutputLineIndex=\"1\"} 35\n",
            "upsAlarmDescr{upsAlarmId=\"1\",upsAlarmDescr=\"1.3.6.1.2.1.33.1.6.3.2\"} 1\n",
        ] {
            assert!(t.contains(want), "{want} in\n{t}");
        }
        assert!(!t.contains("upsTestId"), "{t}");
    }

    #[test]
    fn wrong_types_and_bad_indexes_are_reported() {
        let mut d = Answers::new();
        d.insert(oid("1.3.6.1.2.1.33.1.2.1.0"), Value::from("n/a"));
        d.insert(oid("1.3.6.1.2.1.33.1.3.3.1.2.1.7"), Value::Integer(1));
        let mut out = MetricSet::new();
        let r = render(&ups_defs(), &d, 1000, &mut out);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(
            r.errors[0].contains(
                "upsBatteryStatus (1.3.6.1.2.1.33.1.2.1.0): expected a number, got octet_string"
            ),
            "{:?}",
            r.errors
        );
        assert!(r.errors[1].contains("index does not fit"), "{:?}", r.errors);
        assert_eq!(out.sample_count(), 0);
    }

    #[test]
    fn lookups_enums_strings_and_row_caps() {
        let y = "modules:\n  p:\n    metrics:\n      - {name: t, oid: 1.3.6.1.4.1.9.1.3, type: gauge, scale: 0.1, indexes: [{labelname: probe, type: DisplayString}], lookups: [{labels: [probe], labelname: where, oid: 1.3.6.1.4.1.9.1.2}]}\n      - {name: s, oid: 1.3.6.1.4.1.9.1.4, type: EnumAsStateSet, indexes: [{labelname: probe, type: DisplayString}], enum_values: {1: ok, 2: bad}}\n      - {name: i, oid: 1.3.6.1.4.1.9.1.5, type: EnumAsInfo, indexes: [{labelname: probe, type: DisplayString}], enum_values: {1: ok, 2: bad}}\n      - {name: mac, oid: 1.3.6.1.4.1.9.1.6, type: OctetString, indexes: [{labelname: probe, type: DisplayString}]}\n";
        let c =
            crate::snmp::config::SnmpConfig::resolve(serde_yaml_ng::from_str(y).unwrap()).unwrap();
        let ModuleKind::Metrics(defs) = &c.modules["p"].kind else {
            unreachable!()
        };
        let mut d = Answers::new();
        // index "ab" = length 2, 'a' 'b'
        d.insert(oid("1.3.6.1.4.1.9.1.2.2.97.98"), Value::from("hall A"));
        d.insert(oid("1.3.6.1.4.1.9.1.3.2.97.98"), Value::Integer(215));
        d.insert(oid("1.3.6.1.4.1.9.1.3.1.99"), Value::Integer(300));
        d.insert(oid("1.3.6.1.4.1.9.1.4.2.97.98"), Value::Integer(2));
        d.insert(oid("1.3.6.1.4.1.9.1.5.2.97.98"), Value::Integer(9));
        d.insert(
            oid("1.3.6.1.4.1.9.1.6.2.97.98"),
            Value::from(&[0xde_u8, 0xad][..]),
        );
        let mut out = MetricSet::new();
        let r = render(defs, &d, 1, &mut out);
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!(
            r.dropped, 1,
            "the second t row (in OID order) is over max_rows 1"
        );
        let t = encode(out);
        for want in [
            // (the row of index "c" comes first in OID order: its length arc is 1)
            "t{probe=\"c\",where=\"\"} 30\n",
            "s{probe=\"ab\",s=\"bad\"} 1\n",
            "s{probe=\"ab\",s=\"ok\"} 0\n",
            "i{probe=\"ab\",i=\"9\"} 1\n",
            "mac{probe=\"ab\",mac=\"0xDEAD\"} 1\n",
        ] {
            assert!(t.contains(want), "{want} in\n{t}");
        }
        assert!(!t.contains("t{probe=\"ab\""), "{t}");
    }

    #[test]
    fn lookup_labels() {
        let y = "modules:\n  p:\n    metrics:\n      - {name: t, oid: 1.3.6.1.4.1.9.1.3, type: gauge, scale: 0.1, indexes: [{labelname: probe, type: DisplayString}], lookups: [{labels: [probe], labelname: where, oid: 1.3.6.1.4.1.9.1.2}]}\n";
        let c =
            crate::snmp::config::SnmpConfig::resolve(serde_yaml_ng::from_str(y).unwrap()).unwrap();
        let ModuleKind::Metrics(defs) = &c.modules["p"].kind else {
            unreachable!()
        };
        let mut d = Answers::new();
        d.insert(oid("1.3.6.1.4.1.9.1.2.2.97.98"), Value::from("hall A"));
        d.insert(oid("1.3.6.1.4.1.9.1.3.2.97.98"), Value::Integer(215));
        let mut out = MetricSet::new();
        assert_eq!(render(defs, &d, 10, &mut out), Rendered::default());
        let t = encode(out);
        assert!(t.contains("t{probe=\"ab\",where=\"hall A\"} 21.5\n"), "{t}");
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i32>().prop_map(Value::Integer),
            any::<u32>().prop_map(Value::Counter32),
            any::<u32>().prop_map(Value::Gauge32),
            any::<u32>().prop_map(Value::TimeTicks),
            any::<u64>().prop_map(Value::Counter64),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::from(&b[..])),
            proptest::collection::vec(any::<u32>(), 2..12)
                .prop_map(|a| Value::from(Oid::from_slice(&a))),
            Just(Value::Null),
            Just(Value::NoSuchObject),
            Just(Value::EndOfMibView),
        ]
    }

    proptest! {
        /// Any answers under the UPS subtree: metrics and errors, never a panic, and every
        /// sample value finite.
        #[test]
        fn any_answer_renders_without_panic(
            rows in proptest::collection::vec((proptest::collection::vec(0u32..12, 1..6), any_value()), 0..60)
        ) {
            let mut d = Answers::new();
            for (suffix, v) in rows {
                let mut k = oid("1.3.6.1.2.1.33.1");
                k.extend(suffix);
                d.insert(k, v);
            }
            let mut out = MetricSet::new();
            let _ = render(&ups_defs(), &d, 50, &mut out);
            for f in out.families() {
                for s in &f.samples {
                    prop_assert!(s.value.is_finite());
                }
            }
        }

        #[test]
        fn index_parser_never_panics(arcs in proptest::collection::vec(any::<u32>(), 0..12),
                                     kinds in proptest::collection::vec(0u8..4, 0..4), implied in any::<bool>()) {
            let n = kinds.len();
            let defs: Vec<Index> = kinds.iter().enumerate().map(|(i, k)| Index {
                labelname: format!("l{i}"),
                kind: [IndexType::Gauge, IndexType::DisplayString, IndexType::OctetString, IndexType::IpAddr][usize::from(*k)],
                implied: implied && i + 1 == n && (*k == 1 || *k == 2),
            }).collect();
            if let Some(v) = parse_index(&arcs, &defs) {
                prop_assert_eq!(v.len(), defs.len());
                let used: usize = v.iter().map(|x| x.2.len()).sum();
                prop_assert_eq!(used, arcs.len());
            }
        }
    }
}
