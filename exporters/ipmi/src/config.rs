//! The YAML configuration (`--config.file`), reloaded on SIGHUP and `POST /-/reload`.
//!
//! ```yaml
//! modules:
//!   default:                      # /ipmi?target=HOST[:PORT]&module=default
//!     driver: LAN_2_0             # FreeIPMI driver type (default LAN_2_0)
//!     privilege: admin            # user | operator | admin (default admin)
//!     user: admin
//!     password_file: /etc/hpcmon/bmc.pass   # or password_env: BMC_PASSWORD
//!     workaround_flags: [opensesspriv]
//!     timeout: 10s                # upper bound; the scrape's own deadline may be shorter
//!     collectors: [ipmi, chassis, bmc, sel, dcmi, bmc-watchdog]
//!     exclude_sensor_ids: [7]
//!     sensor_thresholds: true     # ipmi_sensor_threshold series (default: --ipmi.sensor-thresholds)
//!     targets:                    # allow-list for /ipmi?target= (strongly advised)
//!       - 10.1.0.0/16             # CIDR: any IP target inside it, any port
//!       - bmc01.example.org       # host name or IP: that exact host, any port
//!       - 10.2.0.5:623            # host:port: only that port
//!   local:                        # used for /metrics (in-band); no credentials needed
//!     driver: ""                  # empty = FreeIPMI's auto-detection
//! environment:                    # node sensors without a BMC (the `env` collector)
//!   sources:
//!     - kind: hwmon
//!     - kind: thermal_zone
//! ```
//!
//! Passwords are never taken from the YAML itself, nor from argv: `password_file` (read at
//! load, trailing newline removed) or `password_env`. They are handed to FreeIPMI through
//! its stdin (`--config-file=/dev/stdin`), never written to disk, and never logged
//! ([`Secret`]'s `Debug` prints `<redacted>`).
//!
//! `environment.sources` is a list of tagged entries so that room-level sources (Modbus,
//! SNMP) can be added as new `kind`s later without changing the existing ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// Collectors that talk to a BMC, with the `collector` label they report under. `ipmi`
/// (sensors) and `bmc-watchdog` are ipmi_exporter's names.
pub const BMC_COLLECTORS: [&str; 6] = ["ipmi", "dcmi", "chassis", "bmc", "sel", "bmc-watchdog"];

/// A password: prints as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from a file or the environment.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself; only for the protocol that needs it (FreeIPMI's stdin, SNMP).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Reads a secret from `file` (whole, minus the trailing newline) or from the environment
/// variable `env`; `None` when neither is given. `what` names it in errors (which never
/// contain the secret).
pub fn read_secret(
    what: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> anyhow::Result<Option<Secret>> {
    match (file, env) {
        (Some(_), Some(_)) => bail!("give {what}_file or {what}_env, not both"),
        (Some(f), None) => {
            let s = std::fs::read_to_string(f)
                .with_context(|| format!("reading {what}_file {}", f.display()))?;
            Ok(Some(Secret(s.trim_end_matches(['\n', '\r']).to_string())))
        }
        (None, Some(v)) => Ok(Some(Secret(
            std::env::var(v).with_context(|| format!("{what}_env {v} is not set"))?,
        ))),
        (None, None) => Ok(None),
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    snmp: Option<crate::snmp::config::RawSnmp>,
    #[serde(default)]
    modbus: Option<crate::modbus::config::RawModbus>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModule {
    sensor_thresholds: Option<bool>,
    targets: Option<Vec<String>>,
    driver: Option<String>,
    privilege: Option<String>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// Rejected with a clear message: ipmi_exporter's inline password.
    pass: Option<serde_yaml_ng::Value>,
    password: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    workaround_flags: Vec<String>,
    timeout: Option<String>,
    collectors: Option<Vec<String>>,
    #[serde(default)]
    exclude_sensor_ids: Vec<u64>,
}

/// One module, resolved: credentials read, names checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Module name.
    pub name: String,
    /// FreeIPMI driver type; empty for auto-detection.
    pub driver: String,
    /// Privilege level (`USER`, `OPERATOR`, `ADMIN`).
    pub privilege: String,
    /// User name (empty: none).
    pub user: String,
    /// Password (may be empty).
    pub password: Secret,
    /// FreeIPMI workaround flags.
    pub workaround_flags: Vec<String>,
    /// Upper bound on a scrape of this module.
    pub timeout: Duration,
    /// BMC collectors to run, from [`BMC_COLLECTORS`].
    pub collectors: Vec<String>,
    /// Sensor record IDs not to report.
    pub exclude_sensor_ids: Vec<u64>,
    /// Whether to report `ipmi_sensor_threshold`; `None`: `--ipmi.sensor-thresholds`.
    pub sensor_thresholds: Option<bool>,
    /// Targets `/ipmi` may scrape with this module; `None`: any (with a startup warning
    /// when the module has credentials).
    pub targets: Option<Vec<AllowedTarget>>,
}

/// One entry of a module's `targets` allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTarget {
    /// An IP network: any target whose host is an IP address inside it, any port.
    Net(std::net::IpAddr, u8),
    /// A host name or IP address (compared case-insensitively, not resolved), with a port
    /// or any port.
    Host(String, Option<u16>),
}

/// Splits a `/ipmi` target into host and port (`HOST`, `HOST:PORT`; an IPv6 address has
/// more than one `:` and no port).
pub fn split_target(t: &str) -> (&str, Option<&str>) {
    match t.split_once(':') {
        Some((h, p)) if !p.contains(':') => (h, Some(p)),
        _ => (t, None),
    }
}

fn canon_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl AllowedTarget {
    /// Parses `A.B.C.D/N` (or IPv6 `/N`), `HOST` or `HOST:PORT`.
    pub fn parse(s: &str) -> anyhow::Result<AllowedTarget> {
        let s = s.trim();
        if let Some((ip, bits)) = s.split_once('/') {
            let ip: std::net::IpAddr = ip
                .parse()
                .with_context(|| format!("target {s:?}: {ip:?} is not an IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .with_context(|| format!("target {s:?}: prefix length is not 0..={max}"))?;
            return Ok(AllowedTarget::Net(ip, bits));
        }
        if s.parse::<std::net::IpAddr>().is_ok() {
            return Ok(AllowedTarget::Host(canon_host(s), None));
        }
        let (h, p) = split_target(s);
        if h.is_empty()
            || h.starts_with('-')
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            bail!("target {s:?} is not a host name, IP address, HOST:PORT or CIDR network");
        }
        let port = match p {
            Some(p) => Some(
                p.parse::<u16>()
                    .with_context(|| format!("target {s:?}: bad port {p:?}"))?,
            ),
            None => None,
        };
        Ok(AllowedTarget::Host(canon_host(h), port))
    }

    /// Whether `/ipmi?target=` value `t` is covered by this entry.
    pub fn allows(&self, t: &str) -> bool {
        self.allows_with_port(t, 623)
    }

    /// Whether target `t` is covered by this entry, `default_port` being the port of a
    /// target written without one (IPMI 623, SNMP 161, Modbus 502).
    pub fn allows_with_port(&self, t: &str, default_port: u16) -> bool {
        let (h, p) = split_target(t);
        let port: Option<u16> = match p {
            Some(p) => match p.parse() {
                Ok(p) => Some(p),
                Err(_) => return false,
            },
            None => None,
        };
        match self {
            AllowedTarget::Host(host, want) => {
                canon_host(h) == *host
                    && (want.is_none() || *want == Some(port.unwrap_or(default_port)))
            }
            AllowedTarget::Net(net, bits) => {
                let Ok(ip) = h.parse::<std::net::IpAddr>() else {
                    return false;
                };
                in_net(ip, *net, *bits)
            }
        }
    }
}

/// Parses an optional `targets:` allow-list.
pub fn parse_targets(list: Option<&[String]>) -> anyhow::Result<Option<Vec<AllowedTarget>>> {
    list.map(|l| l.iter().map(|t| AllowedTarget::parse(t)).collect())
        .transpose()
}

/// Whether an optional allow-list admits target `t` (`None`: everything).
pub fn allowed(list: Option<&[AllowedTarget]>, t: &str, default_port: u16) -> bool {
    match list {
        None => true,
        Some(list) => list.iter().any(|a| a.allows_with_port(t, default_port)),
    }
}

fn in_net(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    let (a, b, width) = match (ip, net) {
        (V4(a), V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32u32),
        (V6(a), V6(b)) => (u128::from(a), u128::from(b), 128u32),
        (V6(a), V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            None => return false,
        },
        (V4(_), V6(_)) => return false,
    };
    let shift = width - u32::from(bits);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

impl Module {
    /// Whether `/ipmi` may scrape `target` with this module.
    pub fn allows_target(&self, target: &str) -> bool {
        match &self.targets {
            None => true,
            Some(list) => list.iter().any(|a| a.allows(target)),
        }
    }

    /// Whether the module carries credentials (a user name or a password).
    pub fn has_credentials(&self) -> bool {
        !self.user.is_empty() || !self.password.expose().is_empty()
    }
}

impl Module {
    /// The built-in module for `/metrics` when the config has no `local` module.
    pub fn local_default() -> Module {
        Module {
            name: "local".into(),
            driver: String::new(),
            privilege: "ADMIN".into(),
            user: String::new(),
            password: Secret::default(),
            workaround_flags: Vec::new(),
            timeout: Duration::from_secs(10),
            collectors: BMC_COLLECTORS.iter().map(|s| s.to_string()).collect(),
            exclude_sensor_ids: Vec::new(),
            sensor_thresholds: None,
            targets: None,
        }
    }
}

/// A node environment source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// `/sys/class/hwmon`: temperatures, fans, power.
    Hwmon,
    /// `/sys/class/thermal/thermal_zone*`: temperatures.
    ThermalZone,
}

/// The `environment` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Sources to read, in order.
    pub sources: Vec<Source>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            sources: vec![Source::Hwmon, Source::ThermalZone],
        }
    }
}

/// The whole configuration, resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Modules by name.
    pub modules: BTreeMap<String, Module>,
    /// Environment sources.
    pub environment: Environment,
    /// SNMP auths and modules (`/snmp`).
    pub snmp: crate::snmp::config::SnmpConfig,
    /// Modbus modules (`/modbus`).
    pub modbus: crate::modbus::config::ModbusConfig,
}

fn privilege(p: Option<&str>) -> anyhow::Result<String> {
    match p.unwrap_or("admin").to_ascii_lowercase().as_str() {
        "user" => Ok("USER".into()),
        "operator" => Ok("OPERATOR".into()),
        "admin" | "administrator" => Ok("ADMIN".into()),
        other => bail!("privilege {other:?} is not user, operator or admin"),
    }
}

/// A value that goes onto FreeIPMI's command line must not look like an option.
fn safe_arg(what: &str, v: &str) -> anyhow::Result<()> {
    if v.starts_with('-')
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,".contains(c))
    {
        bail!("{what} {v:?} has characters FreeIPMI does not use");
    }
    Ok(())
}

impl Config {
    /// Parses YAML, reading password files and environment variables.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let raw: RawConfig = serde_yaml_ng::from_str(text).context("parsing YAML")?;
        let mut modules = BTreeMap::new();
        for (name, m) in raw.modules {
            let module = resolve(&name, m).with_context(|| format!("module {name:?}"))?;
            modules.insert(name, module);
        }
        let snmp = crate::snmp::config::SnmpConfig::resolve(raw.snmp.unwrap_or_default())
            .context("snmp")?;
        let modbus = crate::modbus::config::ModbusConfig::resolve(raw.modbus.unwrap_or_default())
            .context("modbus")?;
        Ok(Config {
            modules,
            environment: raw.environment.unwrap_or_default(),
            snmp,
            modbus,
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }
}

fn resolve(name: &str, m: RawModule) -> anyhow::Result<Module> {
    if m.pass.is_some() || m.password.is_some() {
        bail!(
            "passwords are not read from the config file itself: use password_file or password_env"
        );
    }
    let password = read_secret(
        "password",
        m.password_file.as_deref(),
        m.password_env.as_deref(),
    )?
    .unwrap_or_default();
    // FreeIPMI gets it as one line of its configuration-file format (see
    // `freeipmi::conf_quote`): every byte but these travels; IPMI 2.0 passwords have at
    // most 20 bytes (FreeIPMI refuses longer ones).
    if password.0.contains(['\n', '\r', '\0']) {
        bail!("the password must be one line without carriage returns or NUL bytes (FreeIPMI's configuration format cannot carry them)");
    }
    if password.0.len() > 20 {
        bail!(
            "the password has {} bytes; IPMI allows at most 20",
            password.0.len()
        );
    }
    let user = m.user.unwrap_or_default();
    if user.contains(['\n', '\r', '\0']) {
        bail!("the user name must be one line without carriage returns or NUL bytes");
    }
    let targets = parse_targets(m.targets.as_deref())?;
    let driver = m.driver.unwrap_or_else(|| {
        if name == "local" {
            String::new()
        } else {
            "LAN_2_0".into()
        }
    });
    if !driver.is_empty() {
        safe_arg("driver", &driver)?;
    }
    for w in &m.workaround_flags {
        safe_arg("workaround flag", w)?;
    }
    let timeout = match m.timeout {
        Some(t) => hpcmon_kit::duration::parse(&t).with_context(|| format!("timeout {t:?}"))?,
        None => Duration::from_secs(10),
    };
    let collectors = match m.collectors {
        None => vec!["ipmi".into(), "dcmi".into(), "chassis".into(), "bmc".into()],
        Some(c) => {
            let mut out = Vec::new();
            for n in c {
                let n = match n.as_str() {
                    "sensors" => "ipmi".to_string(),
                    "watchdog" => "bmc-watchdog".to_string(),
                    _ => n,
                };
                if !BMC_COLLECTORS.contains(&n.as_str()) {
                    bail!(
                        "unknown collector {n:?} (known: {})",
                        BMC_COLLECTORS.join(", ")
                    );
                }
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            out
        }
    };
    Ok(Module {
        name: name.to_string(),
        driver,
        privilege: privilege(m.privilege.as_deref())?,
        user,
        password,
        workaround_flags: m.workaround_flags,
        timeout,
        collectors,
        exclude_sensor_ids: m.exclude_sensor_ids,
        sensor_thresholds: m.sensor_thresholds,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_with_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let y = format!(
            "modules:\n  default:\n    user: admin\n    password_file: {}\n    privilege: operator\n    workaround_flags: [opensesspriv]\n    timeout: 3s\n    collectors: [sensors, sel, watchdog]\n    exclude_sensor_ids: [7]\nenvironment:\n  sources:\n    - kind: thermal_zone\n",
            pw.display()
        );
        let c = Config::parse(&y).unwrap();
        let m = &c.modules["default"];
        assert_eq!(m.password.expose(), "s3cret");
        assert_eq!(m.driver, "LAN_2_0");
        assert_eq!(m.privilege, "OPERATOR");
        assert_eq!(m.timeout, Duration::from_secs(3));
        assert_eq!(m.collectors, vec!["ipmi", "sel", "bmc-watchdog"]);
        assert_eq!(m.exclude_sensor_ids, vec![7]);
        assert_eq!(c.environment.sources, vec![Source::ThermalZone]);
        // Never printed.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn password_from_env() {
        std::env::set_var("HPCMON_IPMI_TEST_PW", "envpw");
        let c = Config::parse("modules:\n  m:\n    password_env: HPCMON_IPMI_TEST_PW\n").unwrap();
        assert_eq!(c.modules["m"].password.expose(), "envpw");
        assert!(Config::parse("modules:\n  m:\n    password_env: HPCMON_IPMI_UNSET_X\n").is_err());
    }

    #[test]
    fn rejects_bad_input() {
        let e = Config::parse("modules:\n  m:\n    pass: hunter2\n").unwrap_err();
        assert!(format!("{e:#}").contains("password_file"), "{e:#}");
        assert!(!format!("{e:#}").contains("hunter2"));
        assert!(Config::parse("modules:\n  m:\n    collectors: [bogus]\n").is_err());
        assert!(Config::parse("modules:\n  m:\n    workaround_flags: ['-h evil']\n").is_err());
        assert!(Config::parse("modules:\n  m:\n    privilege: root\n").is_err());
        assert!(Config::parse("modules:\n  m:\n    timeout: forever\n").is_err());
        assert!(Config::parse("modules: [\n").is_err());
        assert!(Config::parse("unknown_key: 1\n").is_err());
        assert!(Config::parse("environment:\n  sources:\n    - kind: modbus\n").is_err());
    }

    #[test]
    fn passwords_freeipmi_cannot_carry_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (i, pw) in ["a\0b", "a\rb", "123456789012345678901"].iter().enumerate() {
            let f = dir.path().join(format!("pw{i}"));
            std::fs::write(&f, pw).unwrap();
            let e = Config::parse(&format!(
                "modules:\n  m:\n    password_file: {}\n",
                f.display()
            ))
            .unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains("password"), "{msg}");
            assert!(!msg.contains(pw), "{msg}");
        }
        // Everything else FreeIPMI takes, 20 bytes at most, is accepted.
        std::env::set_var("HPCMON_IPMI_PW_ODD", "#\"\\ \tü€x");
        assert!(Config::parse("modules:\n  m:\n    password_env: HPCMON_IPMI_PW_ODD\n").is_ok());
        assert!(Config::parse("modules:\n  m:\n    user: \"a\\0b\"\n").is_err());
    }

    #[test]
    fn target_allow_lists() {
        let c = Config::parse(
            "modules:\n  m:\n    targets: [10.1.0.0/16, BMC01.example.org, '10.2.0.5:623', 'h2:1623', '::1', 'fd00::/8']\n  open: {}\n",
        )
        .unwrap();
        let m = &c.modules["m"];
        for ok in [
            "10.1.2.3",
            "10.1.255.1:22000",
            "bmc01.example.org",
            "bmc01.example.org:623",
            "10.2.0.5",
            "10.2.0.5:623",
            "h2:1623",
            "::1",
        ] {
            assert!(m.allows_target(ok), "{ok}");
        }
        for no in [
            "10.2.1.1",
            "10.2.0.5:624",
            "h2",
            "h2:623",
            "bmc01.example.org.evil.net",
            "evil-bmc01.example.org",
            "bmc02.example.org",
            "127.0.0.1",
            "10.1.2.3:notaport",
            "10.1",
        ] {
            assert!(!m.allows_target(no), "{no}");
        }
        assert!(c.modules["open"].allows_target("anything"));
        assert!(!c.modules["open"].has_credentials());
        for bad in ["10.0.0.0/33", "x/8", "a b", "h:99999", "-h", "[::1]"] {
            assert!(
                Config::parse(&format!("modules:\n  m:\n    targets: ['{bad}']\n")).is_err(),
                "{bad}"
            );
        }
        let c = Config::parse("modules:\n  m:\n    targets: [0.0.0.0/0]\n").unwrap();
        assert!(c.modules["m"].allows_target("192.168.1.1:623"));
        assert!(!c.modules["m"].allows_target("bmc01"));
    }

    #[test]
    fn sensor_thresholds_option() {
        let c = Config::parse("modules:\n  a: {}\n  b:\n    sensor_thresholds: false\n").unwrap();
        assert_eq!(c.modules["a"].sensor_thresholds, None);
        assert_eq!(c.modules["b"].sensor_thresholds, Some(false));
    }

    #[test]
    fn defaults() {
        let c = Config::parse("modules:\n  local: {}\n  r: {}\n").unwrap();
        assert_eq!(c.modules["local"].driver, "");
        assert_eq!(c.modules["r"].driver, "LAN_2_0");
        assert_eq!(
            c.modules["r"].collectors,
            vec!["ipmi", "dcmi", "chassis", "bmc"]
        );
        assert_eq!(c.environment, Environment::default());
        assert_eq!(Config::parse("").unwrap().modules.len(), 0);
    }
}
