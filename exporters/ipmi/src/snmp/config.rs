//! SNMP modules (`snmp.modules` of `--config.file`, plus the built-ins) and auths.
//!
//! A module says what to read and how to turn it into metrics. Its format follows
//! snmp_exporter's generated `snmp.yml` (a module there can be copied nearly as is):
//!
//! ```yaml
//! snmp:
//!   targets: [10.3.0.0/24]         # allow-list for every /snmp request (optional)
//!   modules:
//!     my_probe:                    # /snmp?target=HOST[:PORT]&module=my_probe&auth=NAME
//!       walk: [1.3.6.1.4.1.99999.1]   # subtrees to walk (GETBULK); default: what the metrics need
//!       get: [1.3.6.1.4.1.99999.2.0]  # single instances to GET; default: the scalar metrics' .0
//!       timeout: 2s                # each request (capped by the scrape's deadline)
//!       retries: 2                 # resends of a request that got no answer
//!       max_repetitions: 25        # GETBULK size
//!       max_rows: 1000             # rows per metric at most (the rest is dropped and counted)
//!       targets: [10.3.0.0/24]     # allow-list for /snmp?target= (others: 403)
//!       metrics:
//!         - name: probe_temperature_celsius
//!           oid: 1.3.6.1.4.1.99999.1.2.1.3      # a table column (with indexes) or a scalar
//!           type: gauge            # gauge | counter | float | double | DisplayString | OctetString | EnumAsInfo | EnumAsStateSet
//!           scale: 0.1             # value * scale + offset
//!           offset: 0
//!           help: Probe temperature.
//!           indexes: [{labelname: probe, type: gauge}]   # gauge | DisplayString | OctetString | IpAddr
//!           lookups:               # a label from another column of the same row
//!             - {labels: [probe], labelname: probe_name, oid: 1.3.6.1.4.1.99999.1.2.1.2, type: DisplayString}
//!         - name: probe_status
//!           oid: 1.3.6.1.4.1.99999.1.2.1.4
//!           type: EnumAsStateSet   # one series per state, 1 for the current one
//!           indexes: [{labelname: probe, type: gauge}]
//!           enum_values: {1: ok, 2: warning, 3: critical}
//!     my_pdu:
//!       kind: entity_sensor        # the built-in ENTITY-SENSOR-MIB reader (no metrics list)
//! ```
//!
//! Built-in modules: `ups_mib` (UPS-MIB, RFC 1628, snmp_exporter's metric names;
//! `modules/snmp/ups_mib.yml`) and `entity_sensor` (ENTITY-SENSOR-MIB, RFC 3433: the
//! temperature, humidity, current, voltage and power sensors of PDUs and environment probes;
//! [`super::entity_sensor`]). A module of the file with the same name replaces a built-in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;

use super::auth::{RawAuth, SnmpAuth};
use crate::config::AllowedTarget;
use crate::names::{check_label_name, check_metric_name};

/// The built-in declarative modules: name and YAML text.
pub const BUILTIN: &[(&str, &str)] = &[("ups_mib", include_str!("../../modules/snmp/ups_mib.yml"))];

/// A metric's type (snmp_exporter's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MetricType {
    /// A number that goes up and down.
    #[serde(rename = "gauge")]
    Gauge,
    /// A counter (exposed as such; the name is the module's).
    #[serde(rename = "counter")]
    Counter,
    /// A number (opaque float allowed).
    #[serde(rename = "float")]
    Float,
    /// A number (opaque double allowed).
    #[serde(rename = "double")]
    Double,
    /// Text, as a label named like the metric (value 1).
    DisplayString,
    /// Bytes, as a `0x…` hex label named like the metric (an OID value: dotted).
    OctetString,
    /// An enumeration, as a label with the state's name (value 1).
    EnumAsInfo,
    /// An enumeration, one series per state (1 for the current one).
    EnumAsStateSet,
}

/// How index arcs become a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IndexType {
    /// One arc, as a number.
    #[serde(rename = "gauge")]
    Gauge,
    /// A length arc then that many characters (text).
    DisplayString,
    /// A length arc then that many bytes (hex).
    OctetString,
    /// Four arcs, as a dotted IPv4 address.
    IpAddr,
}

/// One index label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// The label.
    pub labelname: String,
    /// How to read it.
    #[serde(rename = "type")]
    pub kind: IndexType,
    /// DisplayString/OctetString without a length arc (the rest of the index).
    #[serde(default)]
    pub implied: bool,
}

/// A label read from another column of the same row.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    labels: Vec<String>,
    labelname: String,
    oid: String,
    #[serde(default, rename = "type")]
    kind: Option<MetricType>,
}

/// A resolved lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The index labels whose arcs (in this order) index the column.
    pub labels: Vec<String>,
    /// The label to set.
    pub labelname: String,
    /// The column.
    pub oid: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    oid: String,
    #[serde(rename = "type")]
    kind: MetricType,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    offset: f64,
    #[serde(default)]
    indexes: Vec<Index>,
    #[serde(default)]
    lookups: Vec<RawLookup>,
    #[serde(default)]
    enum_values: BTreeMap<i64, String>,
}

/// One metric of a declarative module.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    /// Metric name.
    pub name: String,
    /// The object (a column for tables; a scalar's instance is `oid.0`).
    pub oid: Vec<u32>,
    /// Type.
    pub kind: MetricType,
    /// Help text.
    pub help: String,
    /// `value * scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Index labels (none: a scalar).
    pub indexes: Vec<Index>,
    /// Labels from other columns.
    pub lookups: Vec<Lookup>,
    /// Enumeration names.
    pub enum_values: BTreeMap<i64, String>,
}

/// What a module turns the answers into.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleKind {
    /// A list of metric definitions.
    Metrics(Vec<MetricDef>),
    /// The ENTITY-SENSOR-MIB reader.
    EntitySensor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    walk: Vec<String>,
    #[serde(default)]
    get: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    max_repetitions: Option<u32>,
    #[serde(default)]
    max_rows: Option<usize>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    metrics: Vec<RawMetric>,
}

/// The `snmp` section.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSnmp {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
}

/// A resolved module.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmpModule {
    /// Module name.
    pub name: String,
    /// What to make of the answers.
    pub kind: ModuleKind,
    /// Subtrees to walk (none under another).
    pub walk: Vec<Vec<u32>>,
    /// Instances to GET.
    pub get: Vec<Vec<u32>>,
    /// Each request's timeout.
    pub timeout: Duration,
    /// Resends of an unanswered request.
    pub retries: u32,
    /// GETBULK max-repetitions.
    pub max_repetitions: u32,
    /// Rows per metric at most.
    pub max_rows: usize,
    /// Allow-list for `/snmp?target=`; `None`: any.
    pub targets: Option<Vec<AllowedTarget>>,
}

/// The `snmp` section, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SnmpConfig {
    /// Allow-list for every `/snmp` request (besides the auth's and the module's).
    pub targets: Option<Vec<AllowedTarget>>,
    /// Auths by name (`public_v2` built in).
    pub auths: BTreeMap<String, Arc<SnmpAuth>>,
    /// Modules by name (built-ins overlaid with the file's).
    pub modules: BTreeMap<String, Arc<SnmpModule>>,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig::resolve(RawSnmp::default()).unwrap_or_else(|e| {
            tracing::error!(error = %format!("{e:#}"), "built-in SNMP modules do not parse");
            SnmpConfig {
                targets: None,
                auths: BTreeMap::new(),
                modules: BTreeMap::new(),
            }
        })
    }
}

/// Parses a dotted OID (`1.3.6.1.2.1.33`, a leading dot allowed).
pub fn parse_oid(s: &str) -> anyhow::Result<Vec<u32>> {
    let t = s.trim().trim_start_matches('.');
    let arcs: Vec<u32> = t
        .split('.')
        .map(|a| a.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            anyhow::anyhow!(
                "{s:?} is not a numeric OID (like 1.3.6.1.2.1.33); MIB names are not resolved"
            )
        })?;
    if arcs.len() < 2 || arcs[0] > 2 || arcs.len() > 128 {
        bail!("{s:?} is not a valid OID");
    }
    Ok(arcs)
}

fn starts_with(a: &[u32], prefix: &[u32]) -> bool {
    a.len() >= prefix.len() && a[..prefix.len()] == *prefix
}

/// Drops every OID that lies under another one of the list (and duplicates).
pub fn minimal_roots(mut roots: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
    roots.sort();
    roots.dedup();
    let mut out: Vec<Vec<u32>> = Vec::new();
    for r in roots {
        if !out.iter().any(|o| starts_with(&r, o)) {
            out.push(r);
        }
    }
    out
}

fn resolve_metric(m: RawMetric) -> anyhow::Result<MetricDef> {
    check_metric_name(&m.name)?;
    let oid = parse_oid(&m.oid).with_context(|| format!("metric {}", m.name))?;
    let mut names = std::collections::HashSet::new();
    for i in &m.indexes {
        check_label_name(&i.labelname).with_context(|| format!("metric {}", m.name))?;
        if !names.insert(i.labelname.clone()) {
            bail!("metric {}: index label {} twice", m.name, i.labelname);
        }
    }
    if let Some(pos) = m.indexes.iter().position(|i| i.implied) {
        if pos + 1 != m.indexes.len()
            || !matches!(
                m.indexes[pos].kind,
                IndexType::DisplayString | IndexType::OctetString
            )
        {
            bail!(
                "metric {}: only the last index, a DisplayString or OctetString, can be implied",
                m.name
            );
        }
    }
    let mut lookups = Vec::new();
    for l in m.lookups {
        check_label_name(&l.labelname).with_context(|| format!("metric {}", m.name))?;
        for lab in &l.labels {
            if !names.contains(lab) {
                bail!(
                    "metric {}: lookup {} uses {lab}, which is not one of its index labels",
                    m.name,
                    l.labelname
                );
            }
        }
        if let Some(k) = l.kind {
            if !matches!(
                k,
                MetricType::DisplayString | MetricType::OctetString | MetricType::Gauge
            ) {
                bail!(
                    "metric {}: lookup {} type must be DisplayString, OctetString or gauge",
                    m.name,
                    l.labelname
                );
            }
        }
        lookups.push(Lookup {
            labels: l.labels,
            labelname: l.labelname.clone(),
            oid: parse_oid(&l.oid)
                .with_context(|| format!("metric {} lookup {}", m.name, l.labelname))?,
        });
    }
    let label_like = matches!(
        m.kind,
        MetricType::DisplayString
            | MetricType::OctetString
            | MetricType::EnumAsInfo
            | MetricType::EnumAsStateSet
    );
    if label_like {
        check_label_name(&m.name).with_context(|| {
            format!(
                "metric {}: this type puts the value in a label named like the metric",
                m.name
            )
        })?;
        if names.contains(&m.name) {
            bail!("metric {}: an index label has the metric's name", m.name);
        }
    }
    if matches!(m.kind, MetricType::EnumAsStateSet | MetricType::EnumAsInfo)
        && m.enum_values.is_empty()
    {
        bail!("metric {}: {:?} needs enum_values", m.name, m.kind);
    }
    let scale = m.scale.unwrap_or(1.0);
    if !scale.is_finite() || !m.offset.is_finite() {
        bail!("metric {}: scale and offset must be finite", m.name);
    }
    let help = m
        .help
        .unwrap_or_else(|| format!("{} - {}", m.name, m.oid.trim_start_matches('.')));
    Ok(MetricDef {
        name: m.name,
        oid,
        kind: m.kind,
        help,
        scale,
        offset: m.offset,
        indexes: m.indexes,
        lookups,
        enum_values: m.enum_values,
    })
}

fn resolve_module(name: &str, m: RawModule) -> anyhow::Result<SnmpModule> {
    let kind = match m.kind.as_deref() {
        None | Some("metrics") => {
            if m.metrics.is_empty() {
                bail!("no metrics (or give `kind: entity_sensor`)");
            }
            let mut defs = Vec::new();
            for raw in m.metrics {
                defs.push(resolve_metric(raw)?);
            }
            ModuleKind::Metrics(defs)
        }
        Some("entity_sensor") => {
            if !m.metrics.is_empty() {
                bail!("kind entity_sensor has its own metrics; remove `metrics`");
            }
            ModuleKind::EntitySensor
        }
        Some(k) => bail!("kind {k:?} is not metrics or entity_sensor"),
    };
    let mut walk = m
        .walk
        .iter()
        .map(|o| parse_oid(o).context("walk"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut get = m
        .get
        .iter()
        .map(|o| parse_oid(o).context("get"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // What the metrics need and the lists do not cover: tables and lookups walked,
    // scalars fetched with one GET.
    let covered = |walk: &[Vec<u32>], o: &[u32]| walk.iter().any(|w| starts_with(o, w));
    match &kind {
        ModuleKind::EntitySensor => {
            for o in [
                super::entity_sensor::SENSOR_TABLE,
                super::entity_sensor::PHYSICAL_NAME,
            ] {
                if !covered(&walk, o) {
                    walk.push(o.to_vec());
                }
            }
        }
        ModuleKind::Metrics(defs) => {
            let explicit = walk.clone();
            for d in defs {
                if d.indexes.is_empty() {
                    let mut inst = d.oid.clone();
                    inst.push(0);
                    if !covered(&explicit, &inst) && !get.contains(&inst) {
                        get.push(inst);
                    }
                } else if !covered(&explicit, &d.oid) {
                    walk.push(d.oid.clone());
                }
                for l in &d.lookups {
                    if !covered(&explicit, &l.oid) {
                        walk.push(l.oid.clone());
                    }
                }
            }
        }
    }
    let walk = minimal_roots(walk);
    get.retain(|g| !covered(&walk, g));
    let timeout = match &m.timeout {
        Some(t) => hpcmon_kit::duration::parse(t).with_context(|| format!("timeout {t:?}"))?,
        None => Duration::from_secs(2),
    };
    if timeout.is_zero() {
        bail!("timeout must be positive");
    }
    let retries = m.retries.unwrap_or(2);
    if retries > 10 {
        bail!("retries {retries} is over 10");
    }
    let max_repetitions = m.max_repetitions.unwrap_or(25);
    if !(1..=1000).contains(&max_repetitions) {
        bail!("max_repetitions must be 1..=1000");
    }
    let max_rows = m.max_rows.unwrap_or(1000);
    if max_rows == 0 {
        bail!("max_rows must be positive");
    }
    let targets = crate::config::parse_targets(m.targets.as_deref())?;
    Ok(SnmpModule {
        name: name.to_string(),
        kind,
        walk,
        get,
        timeout,
        retries,
        max_repetitions,
        max_rows,
        targets,
    })
}

/// The built-in modules.
pub fn builtins() -> anyhow::Result<BTreeMap<String, Arc<SnmpModule>>> {
    let mut out = BTreeMap::new();
    for (name, text) in BUILTIN {
        let raw: RawModule = serde_yaml_ng::from_str(text)
            .with_context(|| format!("built-in SNMP module {name}"))?;
        out.insert(name.to_string(), Arc::new(resolve_module(name, raw)?));
    }
    let es = RawModule {
        kind: Some("entity_sensor".into()),
        walk: vec![],
        get: vec![],
        timeout: None,
        retries: None,
        max_repetitions: None,
        max_rows: None,
        targets: None,
        metrics: vec![],
    };
    out.insert(
        "entity_sensor".to_string(),
        Arc::new(resolve_module("entity_sensor", es)?),
    );
    Ok(out)
}

impl SnmpConfig {
    /// Resolves the section over the built-ins.
    pub fn resolve(raw: RawSnmp) -> anyhow::Result<SnmpConfig> {
        let mut modules = builtins()?;
        for (name, m) in raw.modules {
            modules.insert(
                name.clone(),
                Arc::new(resolve_module(&name, m).with_context(|| format!("module {name:?}"))?),
            );
        }
        let mut auths = BTreeMap::new();
        auths.insert("public_v2".to_string(), Arc::new(SnmpAuth::public_v2()));
        for (name, a) in raw.auths {
            let auth = super::auth::resolve(&name, a).with_context(|| format!("auth {name:?}"))?;
            auths.insert(name, Arc::new(auth));
        }
        Ok(SnmpConfig {
            targets: crate::config::parse_targets(raw.targets.as_deref())?,
            auths,
            modules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> anyhow::Result<SnmpConfig> {
        SnmpConfig::resolve(serde_yaml_ng::from_str(y)?)
    }

    /// The built-in ups_mib has exactly snmp_exporter's metric names, types and index
    /// labels (testdata/snmp/ups_mib_reference.txt, taken from its snmp.yml).
    #[test]
    fn ups_mib_matches_snmp_exporter() {
        let reference: Vec<String> = include_str!("../../testdata/snmp/ups_mib_reference.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(String::from)
            .collect();
        let b = builtins().unwrap();
        let ModuleKind::Metrics(defs) = &b["ups_mib"].kind else {
            panic!("ups_mib is declarative");
        };
        let ours: Vec<String> = defs
            .iter()
            .map(|d| {
                let t = match d.kind {
                    MetricType::Gauge => "gauge",
                    MetricType::Counter => "counter",
                    MetricType::DisplayString => "DisplayString",
                    MetricType::OctetString => "OctetString",
                    _ => "other",
                };
                let idx: Vec<&str> = d.indexes.iter().map(|i| i.labelname.as_str()).collect();
                format!(
                    "{} {t} {}",
                    d.name,
                    if idx.is_empty() {
                        "-".to_string()
                    } else {
                        idx.join(",")
                    }
                )
            })
            .collect();
        assert_eq!(ours, reference);
        // One walk of upsObjects reads it all.
        assert_eq!(
            b["ups_mib"].walk,
            vec![parse_oid("1.3.6.1.2.1.33.1").unwrap()]
        );
        assert!(b["ups_mib"].get.is_empty());
        assert_eq!(b["entity_sensor"].kind, ModuleKind::EntitySensor);
    }

    #[test]
    fn user_module_derives_walks_and_gets() {
        let c = parse(
            "modules:\n  p:\n    metrics:\n      - {name: a, oid: 1.3.6.1.4.1.9.1.1, type: gauge}\n      - {name: b, oid: 1.3.6.1.4.1.9.2.1.3, type: gauge, indexes: [{labelname: i, type: gauge}], lookups: [{labels: [i], labelname: n, oid: 1.3.6.1.4.1.9.2.1.2}]}\n      - {name: c, oid: 1.3.6.1.4.1.9.2.1.4, type: EnumAsStateSet, indexes: [{labelname: i, type: gauge}], enum_values: {1: ok, 2: bad}}\n",
        )
        .unwrap();
        let m = &c.modules["p"];
        let s = |v: &Vec<Vec<u32>>| {
            v.iter()
                .map(|o| {
                    o.iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            s(&m.walk),
            [
                "1.3.6.1.4.1.9.2.1.2",
                "1.3.6.1.4.1.9.2.1.3",
                "1.3.6.1.4.1.9.2.1.4"
            ]
        );
        assert_eq!(s(&m.get), ["1.3.6.1.4.1.9.1.1.0"]);
        assert_eq!(m.timeout, Duration::from_secs(2));
        assert!(c.auths.contains_key("public_v2"));
        // An explicit walk covering everything makes the GET unnecessary.
        let c = parse("modules:\n  p:\n    walk: [1.3.6.1.4.1.9]\n    metrics:\n      - {name: a, oid: 1.3.6.1.4.1.9.1.1, type: gauge}\n").unwrap();
        assert!(c.modules["p"].get.is_empty());
    }

    #[test]
    fn bad_modules_are_refused_with_the_reason() {
        for (y, want) in [
            ("modules:\n  p: {}\n", "no metrics"),
            ("modules:\n  p:\n    metrics:\n      - {name: a, oid: sysDescr, type: gauge}\n", "numeric OID"),
            ("modules:\n  p:\n    metrics:\n      - {name: a, oid: 1.3.6, type: integer}\n", "integer"),
            ("modules:\n  p:\n    metrics:\n      - {name: 'a b', oid: 1.3.6, type: gauge}\n", "metric name"),
            ("modules:\n  p:\n    metrics:\n      - {name: a, oid: 1.3.6, type: EnumAsStateSet}\n", "enum_values"),
            ("modules:\n  p:\n    metrics:\n      - {name: a, oid: 1.3.6, type: gauge, indexes: [{labelname: i, type: gauge}], lookups: [{labels: [j], labelname: n, oid: 1.3.7}]}\n", "not one of its index labels"),
            ("modules:\n  p:\n    metrics:\n      - {name: a, oid: 1.3.6, type: gauge, indexes: [{labelname: i, type: gauge, implied: true}]}\n", "implied"),
            ("modules:\n  p:\n    kind: bogus\n", "bogus"),
            ("modules:\n  p:\n    kind: entity_sensor\n    max_repetitions: 0\n", "max_repetitions"),
            ("modules:\n  p:\n    kind: entity_sensor\n    timeout: soon\n", "timeout"),
            ("auths:\n  a:\n    community: x\n", "not read from the config file"),
        ] {
            let e = format!("{:#}", parse(y).unwrap_err());
            assert!(e.contains(want), "{y}: {e}");
        }
    }

    #[test]
    fn oids_and_roots() {
        assert_eq!(parse_oid(".1.3.6.1").unwrap(), vec![1, 3, 6, 1]);
        assert!(parse_oid("1").is_err());
        assert!(parse_oid("3.1").is_err());
        assert!(parse_oid("1.3.x").is_err());
        assert_eq!(
            minimal_roots(vec![
                vec![1, 3, 6],
                vec![1, 3, 6, 1],
                vec![1, 3, 5],
                vec![1, 3, 6]
            ]),
            vec![vec![1, 3, 5], vec![1, 3, 6]]
        );
    }
}
