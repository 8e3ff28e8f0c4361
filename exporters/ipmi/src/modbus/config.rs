//! Modbus modules: register maps in YAML (`modbus.modules` of `--config.file`, plus the
//! built-in templates in `modules/modbus/*.yml`).
//!
//! ```yaml
//! modbus:
//!   targets: [10.3.0.0/24]          # allow-list for every /modbus request (optional)
//!   modules:
//!     my_meter:                     # /modbus?target=HOST[:PORT]&module=my_meter&sub_target=UNIT
//!       timeout: 2s                 # each connect / read (capped by the scrape's deadline)
//!       retries: 1                  # after a timeout or a broken connection (not after an exception)
//!       sleep_after_connect: 100ms  # workaround for gateways that drop the first request
//!       max_registers_per_read: 125 # adjacent registers are read together, up to this many
//!       targets: [10.3.0.0/24]      # allow-list for /modbus?target= (others: 403)
//!       metrics:
//!         - name: power_meter_voltage_volts
//!           help: Phase voltage.
//!           register: input         # holding | input | coil | discrete
//!           address: 0              # protocol address, 0-based (holding "40001" is 0)
//!           data_type: float32      # bool | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | float64
//!           byte_order: big         # bytes within a register (default big)
//!           word_order: big         # registers within a value (default big: high word first)
//!           factor: 1               # value = raw * factor + offset
//!           offset: 0
//!           metric_type: gauge      # gauge | counter (a counter's name ends in _total)
//!           labels: {phase: L1}
//!         - name: precision_ac_mode
//!           register: holding
//!           address: 0
//!           enum_values: {0: off, 1: cooling, 2: heating}   # → one series per state, 1 for the current one
//! ```
//!
//! modbus_exporter's six-digit addresses are understood when `register` is left out:
//! `address: 300001` is input register 1 (`1xxxxx` coils, `2xxxxx` discrete inputs,
//! `3xxxxx` input registers, `4xxxxx` holding registers; the remainder is the protocol
//! address). The unit (slave) id is the request's `sub_target` (default 1).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;

use super::decode::{DataType, Layout, Order};
use crate::config::AllowedTarget;
use crate::names::{check_label_name, check_metric_name};

/// The built-in modules: name and YAML text (templates to adapt, documented in the files).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "th_transmitter",
        include_str!("../../modules/modbus/th_transmitter.yml"),
    ),
    (
        "power_meter_3phase",
        include_str!("../../modules/modbus/power_meter_3phase.yml"),
    ),
    (
        "precision_ac",
        include_str!("../../modules/modbus/precision_ac.yml"),
    ),
];

/// Which table a value is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterKind {
    /// Coils (read/write bits, function 1).
    Coil,
    /// Discrete inputs (read-only bits, function 2).
    Discrete,
    /// Input registers (read-only, function 4).
    Input,
    /// Holding registers (function 3).
    Holding,
}

impl RegisterKind {
    /// Whether values are single bits.
    pub fn is_bits(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }

    /// The name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete input",
            RegisterKind::Input => "input register",
            RegisterKind::Holding => "holding register",
        }
    }
}

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A value that goes up and down.
    #[default]
    Gauge,
    /// A monotonically increasing value (name ends in `_total`).
    Counter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    register: Option<RegisterKind>,
    address: u32,
    #[serde(default)]
    data_type: Option<DataType>,
    #[serde(default)]
    byte_order: Order,
    #[serde(default)]
    word_order: Order,
    #[serde(default)]
    bit: u8,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    offset: f64,
    #[serde(default)]
    metric_type: MetricKind,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    enum_values: BTreeMap<i64, String>,
}

/// The YAML of one module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModule {
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    sleep_after_connect: Option<String>,
    #[serde(default)]
    max_registers_per_read: Option<u16>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    metrics: Vec<RawMetric>,
}

/// The `modbus` section.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawModbus {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
}

/// One value to read and export.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name.
    pub name: String,
    /// Help text.
    pub help: String,
    /// Table.
    pub register: RegisterKind,
    /// Protocol address (0-based).
    pub address: u16,
    /// How to decode it.
    pub layout: Layout,
    /// `raw * factor + offset`.
    pub factor: f64,
    /// See `factor`.
    pub offset: f64,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// Constant labels.
    pub labels: Vec<(String, String)>,
    /// Non-empty: export a state set (one series per state) instead of the value.
    pub enum_values: BTreeMap<i64, String>,
}

impl Metric {
    /// Registers (or bits) this value occupies.
    pub fn width(&self) -> u16 {
        if self.register.is_bits() {
            1
        } else {
            self.layout.data_type.registers()
        }
    }
}

/// A resolved module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Module name.
    pub name: String,
    /// Deadline of each connect and read.
    pub timeout: Duration,
    /// Extra tries after a timeout or a broken connection.
    pub retries: u32,
    /// Pause after connecting (some gateways need it).
    pub sleep_after_connect: Duration,
    /// Most registers in one read request (bits: 16 times as many).
    pub max_registers_per_read: u16,
    /// Allow-list for `/modbus?target=`; `None`: any target.
    pub targets: Option<Vec<AllowedTarget>>,
    /// The values.
    pub metrics: Vec<Metric>,
}

/// The `modbus` section, resolved: built-ins overlaid with the file's modules.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusConfig {
    /// Allow-list for every `/modbus` request (besides the module's).
    pub targets: Option<Vec<AllowedTarget>>,
    /// Modules by name.
    pub modules: BTreeMap<String, Arc<Module>>,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            targets: None,
            modules: builtins().unwrap_or_else(|e| {
                tracing::error!(error = %format!("{e:#}"), "built-in Modbus modules do not parse");
                BTreeMap::new()
            }),
        }
    }
}

fn duration(what: &str, v: Option<&str>, default: Duration) -> anyhow::Result<Duration> {
    match v {
        Some(t) => hpcmon_kit::duration::parse(t).with_context(|| format!("{what} {t:?}")),
        None => Ok(default),
    }
}

/// Parses the built-in modules.
pub fn builtins() -> anyhow::Result<BTreeMap<String, Arc<Module>>> {
    let mut out = BTreeMap::new();
    for (name, text) in BUILTIN {
        let raw: RawModule = serde_yaml_ng::from_str(text)
            .with_context(|| format!("built-in Modbus module {name}"))?;
        out.insert(
            name.to_string(),
            Arc::new(resolve_module(name, raw).with_context(|| format!("built-in {name}"))?),
        );
    }
    Ok(out)
}

impl ModbusConfig {
    /// Resolves the section; a module of the file replaces a built-in of the same name.
    pub fn resolve(raw: RawModbus) -> anyhow::Result<ModbusConfig> {
        let mut modules = builtins()?;
        for (name, m) in raw.modules {
            let module =
                resolve_module(&name, m).with_context(|| format!("modbus module {name:?}"))?;
            modules.insert(name, Arc::new(module));
        }
        Ok(ModbusConfig {
            targets: crate::config::parse_targets(raw.targets.as_deref())?,
            modules,
        })
    }
}

fn resolve_metric(m: RawMetric) -> anyhow::Result<Metric> {
    check_metric_name(&m.name)?;
    let (register, address) = match m.register {
        Some(r) => (r, m.address),
        None => {
            let kind = match m.address / 100_000 {
                1 => RegisterKind::Coil,
                2 => RegisterKind::Discrete,
                3 => RegisterKind::Input,
                4 => RegisterKind::Holding,
                _ => bail!(
                    "metric {}: give `register` (holding, input, coil, discrete), or a six-digit address 1xxxxx-4xxxxx",
                    m.name
                ),
            };
            (kind, m.address % 100_000)
        }
    };
    let address = u16::try_from(address)
        .map_err(|_| anyhow::anyhow!("metric {}: address {address} is over 65535", m.name))?;
    let data_type = match (register.is_bits(), m.data_type) {
        (true, None | Some(DataType::Bool)) => DataType::Bool,
        (true, Some(t)) => bail!(
            "metric {}: a {} is one bit; data_type {t:?} does not apply",
            m.name,
            register.as_str()
        ),
        (false, t) => t.unwrap_or(DataType::Uint16),
    };
    if m.bit > 15 {
        bail!("metric {}: bit {} is not in 0..=15", m.name, m.bit);
    }
    let layout = Layout {
        data_type,
        byte_order: m.byte_order,
        word_order: m.word_order,
        bit: m.bit,
    };
    let width = if register.is_bits() {
        1
    } else {
        data_type.registers()
    };
    if u32::from(address) + u32::from(width) > 65536 {
        bail!(
            "metric {}: {data_type:?} at {address} runs past address 65535",
            m.name
        );
    }
    if m.metric_type == MetricKind::Counter && !m.name.ends_with("_total") {
        bail!("metric {}: a counter's name must end in _total", m.name);
    }
    if m.metric_type == MetricKind::Counter && !m.enum_values.is_empty() {
        bail!(
            "metric {}: enum_values make a state set, not a counter",
            m.name
        );
    }
    let factor = m.factor.unwrap_or(1.0);
    if !factor.is_finite() || !m.offset.is_finite() {
        bail!(
            "metric {}: factor and offset must be finite numbers",
            m.name
        );
    }
    for k in m.labels.keys() {
        check_label_name(k).with_context(|| format!("metric {}", m.name))?;
    }
    if !m.enum_values.is_empty() && m.labels.contains_key(&m.name) {
        bail!(
            "metric {}: label {} is the state set's own label",
            m.name,
            m.name
        );
    }
    if !m.enum_values.is_empty() {
        check_label_name(&m.name).with_context(|| {
            format!(
                "metric {}: a state set's name is also its label name",
                m.name
            )
        })?;
    }
    let help = m
        .help
        .unwrap_or_else(|| format!("{} {address}.", register.as_str()));
    Ok(Metric {
        name: m.name,
        help,
        register,
        address,
        layout,
        factor,
        offset: m.offset,
        kind: m.metric_type,
        labels: m.labels.into_iter().collect(),
        enum_values: m.enum_values,
    })
}

fn resolve_module(name: &str, m: RawModule) -> anyhow::Result<Module> {
    let timeout = duration("timeout", m.timeout.as_deref(), Duration::from_secs(2))?;
    if timeout.is_zero() {
        bail!("timeout must be positive");
    }
    let retries = m.retries.unwrap_or(1);
    if retries > 10 {
        bail!("retries {retries} is over 10");
    }
    let sleep_after_connect = duration(
        "sleep_after_connect",
        m.sleep_after_connect.as_deref(),
        Duration::ZERO,
    )?;
    let max_registers_per_read = m.max_registers_per_read.unwrap_or(125);
    if !(1..=125).contains(&max_registers_per_read) {
        bail!("max_registers_per_read must be 1..=125 (Modbus' limit)");
    }
    if m.metrics.is_empty() {
        bail!("no metrics");
    }
    let targets = crate::config::parse_targets(m.targets.as_deref())?;
    let mut metrics = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for raw in m.metrics {
        let metric = resolve_metric(raw)?;
        if !seen.insert((metric.name.clone(), metric.labels.clone())) {
            bail!(
                "metric {} with labels {:?} is defined twice",
                metric.name,
                metric.labels
            );
        }
        metrics.push(metric);
    }
    Ok(Module {
        name: name.to_string(),
        timeout,
        retries,
        sleep_after_connect,
        max_registers_per_read,
        targets,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> anyhow::Result<ModbusConfig> {
        ModbusConfig::resolve(serde_yaml_ng::from_str(y)?)
    }

    #[test]
    fn builtins_parse() {
        let b = builtins().unwrap();
        assert_eq!(
            b.keys().collect::<Vec<_>>(),
            ["power_meter_3phase", "precision_ac", "th_transmitter"]
        );
        let th = &b["th_transmitter"];
        assert_eq!(th.metrics[0].name, "room_temperature_celsius");
        assert_eq!(th.metrics[0].layout.data_type, DataType::Int16);
    }

    #[test]
    fn full_module_and_prefixed_addresses() {
        let c = parse(
            "modules:\n  m:\n    timeout: 500ms\n    retries: 2\n    sleep_after_connect: 50ms\n    targets: ['127.0.0.1:1502']\n    metrics:\n      - {name: a_volts, register: holding, address: 10, data_type: float32, word_order: little, factor: 0.5, labels: {phase: L1}}\n      - {name: b, address: 300007}\n      - {name: c_on, address: 100002}\n      - {name: mode, register: holding, address: 0, enum_values: {0: off, 1: cooling}}\n      - {name: e_total, register: input, address: 1, data_type: uint32, metric_type: counter}\n",
        )
        .unwrap();
        let m = &c.modules["m"];
        assert_eq!(m.timeout, Duration::from_millis(500));
        assert_eq!(m.sleep_after_connect, Duration::from_millis(50));
        assert_eq!(m.metrics[0].layout.word_order, Order::Little);
        assert_eq!(m.metrics[0].labels, vec![("phase".into(), "L1".into())]);
        assert_eq!(
            (m.metrics[1].register, m.metrics[1].address),
            (RegisterKind::Input, 7)
        );
        assert_eq!(
            (m.metrics[2].register, m.metrics[2].layout.data_type),
            (RegisterKind::Coil, DataType::Bool)
        );
        assert_eq!(m.metrics[3].enum_values[&1], "cooling");
        // Built-ins stay next to the file's modules.
        assert!(c.modules.contains_key("th_transmitter"));
    }

    #[test]
    fn bad_modules_are_refused_with_the_reason() {
        for (y, want) in [
            ("modules:\n  m:\n    metrics: []\n", "no metrics"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, address: 7}\n", "register"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 70000}\n", "65535"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 65535, data_type: uint32}\n", "past"),
            ("modules:\n  m:\n    metrics:\n      - {name: 'a-b', register: holding, address: 1}\n", "metric name"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 1, metric_type: counter}\n", "_total"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: coil, address: 1, data_type: float32}\n", "one bit"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 1, bit: 16, data_type: bool}\n", "bit"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 1, labels: {__x: y}}\n", "label name"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 1}\n      - {name: x, register: holding, address: 2}\n", "twice"),
            ("modules:\n  m:\n    timeout: 0s\n    metrics:\n      - {name: x, register: holding, address: 1}\n", "timeout"),
            ("modules:\n  m:\n    max_registers_per_read: 200\n    metrics:\n      - {name: x, register: holding, address: 1}\n", "125"),
            ("modules:\n  m:\n    targets: ['a b']\n    metrics:\n      - {name: x, register: holding, address: 1}\n", "target"),
            ("modules:\n  m:\n    metrics:\n      - {name: x, register: holding, address: 1, data_type: float16}\n", "float16"),
            ("modules:\n  m:\n    bogus: 1\n    metrics: []\n", "bogus"),
        ] {
            let e = format!("{:#}", parse(y).unwrap_err());
            assert!(e.contains(want), "{y}: {e}");
        }
    }
}
