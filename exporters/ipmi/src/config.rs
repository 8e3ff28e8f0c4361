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
    /// The password itself; only for FreeIPMI's stdin.
    pub fn expose(&self) -> &str {
        &self.0
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
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModule {
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
        Ok(Config {
            modules,
            environment: raw.environment.unwrap_or_default(),
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
    let password = match (&m.password_file, &m.password_env) {
        (Some(_), Some(_)) => bail!("give password_file or password_env, not both"),
        (Some(f), None) => {
            let s = std::fs::read_to_string(f)
                .with_context(|| format!("reading password_file {}", f.display()))?;
            Secret(s.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, Some(v)) => {
            Secret(std::env::var(v).with_context(|| format!("password_env {v} is not set"))?)
        }
        (None, None) => Secret::default(),
    };
    if password.0.contains('\n') {
        bail!("the password must be one line");
    }
    let user = m.user.unwrap_or_default();
    if user.contains(['\n', '\r']) {
        bail!("the user name must be one line");
    }
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
