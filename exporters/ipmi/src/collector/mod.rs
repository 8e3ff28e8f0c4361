//! The collectors, one file each, named after their metrics:
//!
//! | collector (`ipmi_up{collector}`) | file | metrics |
//! | --- | --- | --- |
//! | `ipmi` (sensors) | [`sensors`] | `ipmi_{temperature_celsius,fan_speed_rpm,voltage_volts,current_amperes,power_watts}` + `_state`, `ipmi_sensor_{value,state,threshold}` |
//! | `dcmi` | [`dcmi`] | `ipmi_dcmi_power_consumption_watts`, `ipmi_dcmi_power_*` |
//! | `chassis` | [`chassis`] | `ipmi_chassis_*_state` |
//! | `bmc` | [`bmc`] | `ipmi_bmc_info` |
//! | `sel` | [`sel`] | `ipmi_sel_*` |
//! | `bmc-watchdog` | [`watchdog`] | `ipmi_bmc_watchdog_*` |
//! | `env` (no BMC needed) | [`env`](mod@env) | `env_*` |
//!
//! A BMC collector is an async function `collect(rt, target, deadline, out)`; [`run_bmc`]
//! runs one for a target with the per-(target, collector) busy guard, and [`LocalBmc`]
//! adapts one to the kit's [`Collector`] for `/metrics`.
//!
//! To add a collector of `/metrics`: write `NAME.rs` with a `pub fn new(&Config) ->
//! anyhow::Result<Arc<dyn Collector>>` (and, if it has flags, a `#[group(skip)] pub struct
//! Flags` deriving `clap::Args`, read with `cfg.flags::<Flags>()`), then add `pub mod NAME;`
//! and one row to [`REGISTRY`]. A BMC collector (`.when(local_bmc)`) also serves `/ipmi`
//! modules: its `collect` gets an arm in [`run_bmc`] and its name a place in
//! [`crate::config::BMC_COLLECTORS`].

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use hpcmon_kit::registry::{flags, CollectorFlags, Registration};
use hpcmon_kit::{Collector, Context, MetricSet};

use crate::freeipmi::{Runtime, Target};
use crate::remote::ConfigHolder;

pub mod bmc;
pub mod chassis;
pub mod dcmi;
pub mod env;
pub mod sel;
pub mod sensors;
pub mod watchdog;

/// What the collectors of `/metrics` are built from: the FreeIPMI runtime and the
/// configuration (shared with `/ipmi`), whether this node has a local BMC, and each
/// collector's own flags.
#[derive(Clone)]
pub struct Config {
    /// Shared FreeIPMI runtime (semaphore, busy set, caches).
    pub rt: Arc<Runtime>,
    /// The configuration (for the `local` module and `environment`).
    pub config: Arc<ConfigHolder>,
    /// Whether `/metrics` reads the local BMC (`--ipmi.local`): the BMC collectors are
    /// built only then.
    pub local: bool,
    /// `--scrape.timeout`: also the bound on `/ipmi`, `/snmp` and `/modbus` scrapes.
    pub max_timeout: std::time::Duration,
    /// Every registered collector's flags, by type (see [`Config::flags`]).
    pub collector_flags: CollectorFlags,
}

impl Config {
    /// The parsed flags of type `F` (a collector's `Flags`, registered in its row).
    pub fn flags<F: std::any::Any>(&self) -> anyhow::Result<&F> {
        self.collector_flags.get::<F>()
    }
}

/// Whether the BMC collectors apply: `/metrics` reads the local BMC.
fn local_bmc(cfg: &Config) -> bool {
    cfg.local
}

const ON: bool = true;
const OFF: bool = false;

/// The collectors of `/metrics` (the local BMC and the environment): name, default, help
/// line, flags and constructor. One row each. A BMC collector is also one of the module
/// collectors of `/ipmi` ([`run_bmc`], [`crate::config::BMC_COLLECTORS`]).
pub const REGISTRY: &[Registration<Config>] = &[
    Registration::new("ipmi", ON, "local BMC sensors (ipmi-sensors)", sensors::new).when(local_bmc),
    Registration::new("dcmi", ON, "local BMC DCMI power (ipmi-dcmi)", dcmi::new).when(local_bmc),
    Registration::new(
        "chassis",
        ON,
        "local chassis status (ipmi-chassis)",
        chassis::new,
    )
    .when(local_bmc),
    Registration::new("bmc", ON, "local BMC identity (bmc-info)", bmc::new).when(local_bmc),
    Registration::new("sel", ON, "local system event log (ipmi-sel)", sel::new).when(local_bmc),
    Registration::new(
        "bmc-watchdog",
        OFF,
        "local BMC watchdog timer (ipmi-raw)",
        watchdog::new,
    )
    .when(local_bmc),
    Registration::new(
        "env",
        ON,
        "node environment sensors from hwmon and thermal zones (no BMC needed)",
        env::new,
    )
    .flags(flags::<env::Flags>()),
];

/// Runs BMC collector `name` for `t` until `deadline`, unless a previous call for the same
/// target and collector is still running.
pub async fn run_bmc(
    rt: &Runtime,
    t: &Target,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<MetricSet> {
    let Some(_busy) = rt.claim(t.label(), name) else {
        bail!("previous {name} call for {} is still running", t.label());
    };
    let mut out = MetricSet::new();
    match name {
        "ipmi" => sensors::collect(rt, t, deadline, &mut out).await?,
        "dcmi" => dcmi::collect(rt, t, deadline, &mut out).await?,
        "chassis" => chassis::collect(rt, t, deadline, &mut out).await?,
        "bmc" => bmc::collect(rt, t, deadline, &mut out).await?,
        "sel" => sel::collect(rt, t, deadline, &mut out).await?,
        "bmc-watchdog" => watchdog::collect(rt, t, deadline, &mut out).await?,
        other => bail!("unknown collector {other}"),
    }
    Ok(out)
}

/// A local (in-band) BMC collector for the kit's scraper; reads the `local` module from
/// the current configuration at each scrape.
pub struct LocalBmc {
    /// Collector name.
    pub name: &'static str,
    /// Shared runtime.
    pub rt: Arc<Runtime>,
    /// The configuration (for the `local` module).
    pub config: Arc<ConfigHolder>,
}

impl LocalBmc {
    /// The local BMC collector `name` over `cfg`'s runtime and configuration.
    pub fn shared(name: &'static str, cfg: &Config) -> Arc<dyn Collector> {
        Arc::new(LocalBmc {
            name,
            rt: cfg.rt.clone(),
            config: cfg.config.clone(),
        })
    }
}

impl Collector for LocalBmc {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let target = Target {
            host: None,
            module: self.config.local_module(),
        };
        let deadline = ctx.deadline.min(Instant::now() + target.module.timeout);
        let set = tokio::runtime::Handle::current()
            .block_on(run_bmc(&self.rt, &target, self.name, deadline))?;
        out.extend(set);
        Ok(())
    }
}

/// Whether this node has an in-band IPMI device.
pub fn local_bmc_present() -> bool {
    ["/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

#[cfg(test)]
pub(crate) mod testutil {
    use hpcmon_kit::MetricSet;

    /// Text exposition of a set, for golden comparisons.
    pub fn text(mut set: MetricSet) -> String {
        set.normalize();
        hpcmon_kit::metrics::encode_text(&set)
    }

    /// Compares `got` with `testdata/NAME` (the golden outputs the dashboard check reads);
    /// `UPDATE_GOLDEN=1` rewrites it.
    pub fn golden(name: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            got,
            want,
            "golden {} (UPDATE_GOLDEN=1 to rewrite)",
            path.display()
        );
    }
}
