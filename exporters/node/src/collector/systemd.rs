//! `systemd` collector: unit and manager state from systemd over D-Bus (`zbus`), as
//! node_exporter 1.5:
//!
//! - `node_systemd_version{version}`, `node_systemd_units{state}` (all units by active
//!   state), `node_systemd_system_running` (`systemctl is-system-running` is `running`);
//! - per loaded unit matching `--collector.systemd.unit-include` and not
//!   `--collector.systemd.unit-exclude`: `node_systemd_unit_state{name,state,type}` (one
//!   series per state, 1 for the current one; `type` is the service or mount type),
//!   `node_systemd_timer_last_trigger_seconds{name}`,
//!   `node_systemd_socket_{accepted_connections_total,current_connections,
//!   refused_connections_total}{name}`, and with their flags
//!   `node_systemd_unit_start_time_seconds`, `node_systemd_unit_tasks_{current,max}` and
//!   `node_systemd_service_restart_total`.
//!
//! It talks to `org.freedesktop.systemd1` on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or
//! `/run/dbus/system_bus_socket`), or with `--collector.systemd.private` directly to
//! systemd's `/run/systemd/private`. The connection is kept between scrapes and made again
//! after an error. Every call has a deadline: connecting (including authentication) gives up
//! at the scrape's deadline, each method call after `--collector.systemd.call-timeout`, and
//! the per-unit queries stop when the scrape's deadline passes. A failed property read
//! leaves that one series out, as in node_exporter. Off by default, as there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::Config;

/// Debian's node_exporter 1.5 default for `--collector.systemd.unit-exclude` (upstream's
/// lacks `target`).
pub const DEFAULT_EXCLUDE: &str = ".+\\.(automount|device|mount|scope|slice|target)";
/// The first systemd version with `SystemState` and timer trigger times.
const MIN_VERSION_SYSTEM_STATE: f64 = 212.0;
const UNIT_STATES: [&str; 5] = ["active", "activating", "deactivating", "inactive", "failed"];
const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// Flags of the `systemd` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of systemd units to include. Units must both match include and not match
    /// exclude to be included [default: .+].
    #[arg(
        long = "collector.systemd.unit-include",
        id = "collector.systemd.unit-include",
        value_name = "REGEX"
    )]
    pub unit_include: Option<String>,
    /// DEPRECATED: Use --collector.systemd.unit-include.
    #[arg(
        long = "collector.systemd.unit-whitelist",
        id = "collector.systemd.unit-whitelist",
        hide = true
    )]
    pub unit_whitelist: Option<String>,
    /// Regexp of systemd units to exclude. Units must both match include and not match
    /// exclude to be included [default: .+\.(automount|device|mount|scope|slice|target)].
    #[arg(
        long = "collector.systemd.unit-exclude",
        id = "collector.systemd.unit-exclude",
        value_name = "REGEX"
    )]
    pub unit_exclude: Option<String>,
    /// DEPRECATED: Use collector.systemd.unit-exclude.
    #[arg(
        long = "collector.systemd.unit-blacklist",
        id = "collector.systemd.unit-blacklist",
        hide = true
    )]
    pub unit_blacklist: Option<String>,
    /// Establish a private, direct connection to systemd without dbus (requires root; for
    /// testing purposes only).
    #[arg(
        long = "collector.systemd.private",
        id = "collector.systemd.private",
        hide = true
    )]
    pub private: bool,
    /// Enables service unit tasks metrics unit_tasks_current and unit_tasks_max.
    #[arg(
        long = "collector.systemd.enable-task-metrics",
        id = "collector.systemd.enable-task-metrics"
    )]
    pub enable_task_metrics: bool,
    /// Enables service unit metric service_restart_total.
    #[arg(
        long = "collector.systemd.enable-restarts-metrics",
        id = "collector.systemd.enable-restarts-metrics"
    )]
    pub enable_restarts_metrics: bool,
    /// Enables service unit metric unit_start_time_seconds.
    #[arg(
        long = "collector.systemd.enable-start-time-metrics",
        id = "collector.systemd.enable-start-time-metrics"
    )]
    pub enable_start_time_metrics: bool,
    /// Deadline of each D-Bus method call (hpcmon only).
    #[arg(
        long = "collector.systemd.call-timeout",
        id = "collector.systemd.call-timeout",
        default_value = "5s",
        value_parser = hpcmon_kit::duration::parse,
        value_name = "DURATION"
    )]
    pub call_timeout: Duration,
}

/// One entry of `ListUnits`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unit {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub path: OwnedObjectPath,
}

type ListUnitsEntry = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// The numeric version in systemd's `Version` (`252.19-1~deb12u1` → 252.19), as
/// node_exporter finds it: the first run of three or more digits with an optional fraction.
pub(crate) fn parse_version(v: &str) -> Option<f64> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"[0-9]{3,}(\.[0-9]+)?").expect("valid regex"));
    re.find(v)?.as_str().parse().ok()
}

/// A D-Bus integer property of any width as f64 (`None` for other types).
fn number(v: &Value<'_>) -> Option<f64> {
    Some(match v {
        Value::U8(x) => *x as f64,
        Value::U16(x) => *x as f64,
        Value::U32(x) => *x as f64,
        Value::U64(x) => *x as f64,
        Value::I16(x) => *x as f64,
        Value::I32(x) => *x as f64,
        Value::I64(x) => *x as f64,
        _ => return None,
    })
}

/// A `u64` property, for the "unset" (`u64::MAX`) check.
fn u64_of(v: &Value<'_>) -> Option<u64> {
    match v {
        Value::U64(x) => Some(*x),
        Value::U32(x) => Some(*x as u64),
        _ => None,
    }
}

/// A connection and how to address systemd on it.
struct Bus {
    conn: Connection,
    /// `None` on the private (peer-to-peer) socket, which has no bus names.
    dest: Option<&'static str>,
}

impl Bus {
    fn get(&self, path: &str, iface: &str, prop: &str) -> zbus::Result<OwnedValue> {
        let reply = self.conn.call_method(
            self.dest,
            path,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(iface, prop),
        )?;
        reply.body().deserialize::<OwnedValue>()
    }

    fn list_units(&self) -> zbus::Result<Vec<Unit>> {
        let reply =
            self.conn
                .call_method(self.dest, MANAGER_PATH, Some(MANAGER), "ListUnits", &())?;
        let units: Vec<ListUnitsEntry> = reply.body().deserialize()?;
        Ok(units
            .into_iter()
            .map(|u| Unit {
                name: u.0,
                load_state: u.2,
                active_state: u.3,
                path: u.6,
            })
            .collect())
    }
}

struct Systemd {
    include: Regex,
    exclude: Regex,
    private: bool,
    tasks: bool,
    restarts: bool,
    start_time: bool,
    call_timeout: Duration,
    bus: Mutex<Option<Arc<Bus>>>,
    /// A connection attempt is still running (past an earlier scrape's deadline).
    connecting: Arc<AtomicBool>,
}

/// `--collector.systemd.unit-X` or its deprecated name (not both).
fn pattern(
    new: &Option<String>,
    old: &Option<String>,
    default: &str,
    names: (&str, &str),
) -> anyhow::Result<Regex> {
    let p = match (new, old) {
        (Some(_), Some(_)) => {
            anyhow::bail!("--{} and --{} are mutually exclusive", names.1, names.0)
        }
        (Some(p), None) => p.as_str(),
        (None, Some(p)) => {
            tracing::warn!("--{} is DEPRECATED, use --{}", names.1, names.0);
            p.as_str()
        }
        (None, None) => default,
    };
    Regex::new(&format!("^(?:{p})$")).with_context(|| format!("invalid --{} {p:?}", names.0))
}

/// Builds the `systemd` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let f = cfg.flags::<Flags>()?;
    Ok(Arc::new(Systemd {
        include: pattern(
            &f.unit_include,
            &f.unit_whitelist,
            ".+",
            (
                "collector.systemd.unit-include",
                "collector.systemd.unit-whitelist",
            ),
        )?,
        exclude: pattern(
            &f.unit_exclude,
            &f.unit_blacklist,
            DEFAULT_EXCLUDE,
            (
                "collector.systemd.unit-exclude",
                "collector.systemd.unit-blacklist",
            ),
        )?,
        private: f.private,
        tasks: f.enable_task_metrics,
        restarts: f.enable_restarts_metrics,
        start_time: f.enable_start_time_metrics,
        call_timeout: f.call_timeout,
        bus: Mutex::new(None),
        connecting: Arc::new(AtomicBool::new(false)),
    }))
}

impl Systemd {
    /// The cached connection, or a new one made before `ctx`'s deadline.
    fn bus(&self, ctx: &Context) -> anyhow::Result<Arc<Bus>> {
        if let Some(b) = self.bus.lock().expect("bus lock").as_ref() {
            return Ok(b.clone());
        }
        anyhow::ensure!(
            !self.connecting.swap(true, Ordering::AcqRel),
            "an earlier connection attempt to the system bus is still running"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let (private, timeout, connecting) =
            (self.private, self.call_timeout, self.connecting.clone());
        std::thread::Builder::new()
            .name("systemd-dbus-connect".into())
            .spawn(move || {
                let r = connect(private, timeout);
                connecting.store(false, Ordering::Release);
                let _ = tx.send(r);
            })
            .context("starting the D-Bus connection thread")?;
        let bus = match rx.recv_timeout(ctx.remaining()) {
            Ok(r) => Arc::new(r.context("couldn't get dbus connection")?),
            Err(_) => anyhow::bail!("couldn't get dbus connection before the scrape's deadline"),
        };
        *self.bus.lock().expect("bus lock") = Some(bus.clone());
        Ok(bus)
    }

    fn collect_with(&self, bus: &Bus, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let (version, full) = match bus.get(MANAGER_PATH, MANAGER, "Version") {
            Ok(v) => match &*v {
                Value::Str(s) => match parse_version(s) {
                    Some(n) => (n, s.to_string()),
                    None => (0.0, String::new()),
                },
                _ => (0.0, String::new()),
            },
            Err(e) => {
                tracing::debug!(error = %e, "unable to get the systemd version");
                (0.0, String::new())
            }
        };
        out.gauge("node_systemd_version", "Detected systemd version")
            .sample(&[("version", &full)], version);

        let all = bus.list_units().context("couldn't get units")?;
        let mut summary: BTreeMap<&str, f64> = UNIT_STATES.iter().map(|s| (*s, 0.0)).collect();
        for u in &all {
            *summary.entry(u.active_state.as_str()).or_default() += 1.0;
        }
        let fam = out.gauge("node_systemd_units", "Summary of systemd unit states");
        for (state, n) in &summary {
            fam.sample(&[("state", state)], *n);
        }
        let units: Vec<&Unit> = all
            .iter()
            .filter(|u| {
                self.include.is_match(&u.name)
                    && !self.exclude.is_match(&u.name)
                    && u.load_state == "loaded"
            })
            .collect();

        let deadline = || -> anyhow::Result<()> {
            anyhow::ensure!(
                !ctx.remaining().is_zero(),
                "scrape deadline reached while querying systemd units"
            );
            Ok(())
        };
        let prop = |u: &Unit, iface: &str, name: &str| -> Option<OwnedValue> {
            match bus.get(u.path.as_str(), iface, name) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(unit = %u.name, property = name, error = %e, "couldn't get unit property");
                    None
                }
            }
        };
        let svc = "org.freedesktop.systemd1.Service";

        for u in &units {
            deadline()?;
            let ty = if u.name.ends_with(".service") {
                prop(u, svc, "Type")
            } else if u.name.ends_with(".mount") {
                prop(u, "org.freedesktop.systemd1.Mount", "Type")
            } else {
                None
            };
            let ty = match ty.as_deref() {
                Some(Value::Str(s)) => s.to_string(),
                _ => String::new(),
            };
            let fam = out.gauge("node_systemd_unit_state", "Systemd unit");
            for s in UNIT_STATES {
                fam.sample(
                    &[("name", &u.name), ("state", s), ("type", &ty)],
                    if u.active_state == s { 1.0 } else { 0.0 },
                );
            }
            if self.restarts && u.name.ends_with(".service") {
                if let Some(v) = prop(u, svc, "NRestarts").and_then(|v| number(&v)) {
                    out.counter(
                        "node_systemd_service_restart_total",
                        "Service unit count of Restart triggers",
                    )
                    .sample(&[("name", &u.name)], v);
                }
            }
        }
        if self.start_time {
            for u in &units {
                deadline()?;
                let usec = if u.active_state != "active" {
                    0.0
                } else {
                    match prop(u, "org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp")
                        .and_then(|v| number(&v))
                    {
                        Some(v) => v,
                        None => continue,
                    }
                };
                out.gauge(
                    "node_systemd_unit_start_time_seconds",
                    "Start time of the unit since unix epoch in seconds.",
                )
                .sample(&[("name", &u.name)], usec / 1e6);
            }
        }
        if self.tasks {
            for u in units.iter().filter(|u| u.name.ends_with(".service")) {
                deadline()?;
                for (p, metric, help) in [
                    (
                        "TasksCurrent",
                        "node_systemd_unit_tasks_current",
                        "Current number of tasks per Systemd unit",
                    ),
                    (
                        "TasksMax",
                        "node_systemd_unit_tasks_max",
                        "Maximum number of tasks per Systemd unit",
                    ),
                ] {
                    if let Some(v) = prop(u, svc, p).and_then(|v| u64_of(&v)) {
                        if v != u64::MAX {
                            out.gauge(metric, help)
                                .sample(&[("name", &u.name)], v as f64);
                        }
                    }
                }
            }
        }
        if version >= MIN_VERSION_SYSTEM_STATE {
            for u in units.iter().filter(|u| u.name.ends_with(".timer")) {
                deadline()?;
                if let Some(v) = prop(u, "org.freedesktop.systemd1.Timer", "LastTriggerUSec")
                    .and_then(|v| number(&v))
                {
                    out.gauge(
                        "node_systemd_timer_last_trigger_seconds",
                        "Seconds since epoch of last trigger.",
                    )
                    .sample(&[("name", &u.name)], v / 1e6);
                }
            }
        }
        let sock = "org.freedesktop.systemd1.Socket";
        for u in units.iter().filter(|u| u.name.ends_with(".socket")) {
            deadline()?;
            let Some(accepted) = prop(u, sock, "NAccepted").and_then(|v| number(&v)) else {
                continue;
            };
            out.counter(
                "node_systemd_socket_accepted_connections_total",
                "Total number of accepted socket connections",
            )
            .sample(&[("name", &u.name)], accepted);
            let Some(current) = prop(u, sock, "NConnections").and_then(|v| number(&v)) else {
                continue;
            };
            out.gauge(
                "node_systemd_socket_current_connections",
                "Current number of socket connections",
            )
            .sample(&[("name", &u.name)], current);
            if let Some(refused) = prop(u, sock, "NRefused").and_then(|v| number(&v)) {
                // node_exporter 1.5 exposes this counter-named family as a gauge.
                out.gauge(
                    "node_systemd_socket_refused_connections_total",
                    "Total number of refused socket connections",
                )
                .sample(&[("name", &u.name)], refused);
            }
        }
        if version >= MIN_VERSION_SYSTEM_STATE {
            let state = bus
                .get(MANAGER_PATH, MANAGER, "SystemState")
                .context("couldn't get system state")?;
            let running = matches!(&*state, Value::Str(s) if s.as_str() == "running");
            out.gauge(
                "node_systemd_system_running",
                "Whether the system is operational (see 'systemctl is-system-running')",
            )
            .sample(&[], if running { 1.0 } else { 0.0 });
        }
        Ok(())
    }
}

/// Connects to the system bus (or systemd's private socket) with `timeout` per call.
fn connect(private: bool, timeout: Duration) -> zbus::Result<Bus> {
    if private {
        let conn = zbus::blocking::connection::Builder::address("unix:path=/run/systemd/private")?
            .p2p()
            .method_timeout(timeout)
            .build()?;
        return Ok(Bus { conn, dest: None });
    }
    let conn = zbus::blocking::connection::Builder::system()?
        .method_timeout(timeout)
        .build()?;
    Ok(Bus {
        conn,
        dest: Some(DEST),
    })
}

impl Collector for Systemd {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let bus = self.bus(ctx)?;
        let r = self.collect_with(&bus, ctx, out);
        if r.is_err() {
            // Reconnect next time: the bus or systemd may have restarted.
            *self.bus.lock().expect("bus lock") = None;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("252.19-1~deb12u1"), Some(252.19));
        assert_eq!(parse_version("249"), Some(249.0));
        assert_eq!(parse_version("v12"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn patterns_are_anchored_and_deprecated_names_exclusive() {
        let names = (
            "collector.systemd.unit-include",
            "collector.systemd.unit-whitelist",
        );
        let p = pattern(&None, &None, DEFAULT_EXCLUDE, names).unwrap();
        assert!(p.is_match("home.mount") && !p.is_match("sshd.service"));
        let p = pattern(&Some("ssh.*".into()), &None, ".+", names).unwrap();
        assert!(p.is_match("sshd.service") && !p.is_match("openssh.service"));
        let p = pattern(&None, &Some("cron.*".into()), ".+", names).unwrap();
        assert!(p.is_match("cron.service"));
        assert!(pattern(&Some("a".into()), &Some("b".into()), ".+", names).is_err());
        assert!(pattern(&Some("(".into()), &None, ".+", names).is_err());
    }

    #[test]
    fn no_bus_fails_the_collector_within_the_deadline() {
        // A bus address where nothing listens: the collector fails, it does not hang.
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("unix:path={}", dir.path().join("none").display());
        let conn = zbus::blocking::connection::Builder::address(addr.as_str())
            .unwrap()
            .build();
        assert!(conn.is_err());
    }

    proptest! {
        #[test]
        fn version_parser_never_panics(s in "\\PC{0,30}") {
            let _ = parse_version(&s);
        }
    }
}
