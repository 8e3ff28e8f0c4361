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
//! | `env` (no BMC needed) | [`env`] | `env_*` |
//!
//! A BMC collector is an async function `collect(rt, target, deadline, out)`; [`run_bmc`]
//! runs one for a target with the per-(target, collector) busy guard, and [`LocalBmc`]
//! adapts one to the kit's [`Collector`] for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use hpcmon_kit::{Collector, CollectorSpec, Context, MetricSet};

use crate::freeipmi::{Runtime, Target};
use crate::remote::ConfigHolder;

pub mod bmc;
pub mod chassis;
pub mod dcmi;
pub mod env;
pub mod sel;
pub mod sensors;
pub mod watchdog;

/// The collectors of `/metrics` (the local BMC and the environment), with their flags.
pub const SPECS: &[CollectorSpec] = &[
    CollectorSpec {
        name: "ipmi",
        default_enabled: true,
        help: "local BMC sensors (ipmi-sensors)",
    },
    CollectorSpec {
        name: "dcmi",
        default_enabled: true,
        help: "local BMC DCMI power (ipmi-dcmi)",
    },
    CollectorSpec {
        name: "chassis",
        default_enabled: true,
        help: "local chassis status (ipmi-chassis)",
    },
    CollectorSpec {
        name: "bmc",
        default_enabled: true,
        help: "local BMC identity (bmc-info)",
    },
    CollectorSpec {
        name: "sel",
        default_enabled: true,
        help: "local system event log (ipmi-sel)",
    },
    CollectorSpec {
        name: "bmc-watchdog",
        default_enabled: false,
        help: "local BMC watchdog timer (ipmi-raw)",
    },
    CollectorSpec {
        name: "env",
        default_enabled: true,
        help: "node environment sensors from hwmon and thermal zones (no BMC needed)",
    },
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
