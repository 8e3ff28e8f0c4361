//! The command line: the kit's flags, the paths, every collector's flags from
//! [`REGISTRY`](crate::collector::REGISTRY), and the flags of node_exporter 1.5 that this
//! exporter accepts without acting on them (so that a unit file written for node_exporter
//! starts it unchanged; each one used logs one warning).
//!
//! A flag or collector listed here that the registry defines (because it has since been
//! implemented) is not ignored: [`hpcmon_kit::registry::with_ignored`] skips it.

use hpcmon_kit::registry::{CollectorFlags, Exporter, IgnoredCollector, IgnoredFlag};
use hpcmon_kit::KitArgs;

use crate::collector::{Config, Paths, REGISTRY};

/// The flags every build has: the kit's and the paths. Collector flags come from the registry.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kit: KitArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub paths: Paths,
}

/// The exporter: who it is, its collectors, and what it accepts for compatibility.
pub const EXPORTER: Exporter<Config> = Exporter {
    meta: crate::META,
    registry: REGISTRY,
    ignored_flags: IGNORED_FLAGS,
    ignored_collectors: IGNORED_COLLECTORS,
};

/// The complete command line, as `main` parses it.
pub fn command() -> clap::Command {
    EXPORTER.command::<Cli>()
}

/// The collectors' settings from the parsed command line.
pub fn config(cli: Cli, collector_flags: CollectorFlags) -> Config {
    Config {
        paths: cli.paths,
        collector_flags,
    }
}

const NOT_IMPLEMENTED: &str = "not implemented by hpcmon-node-exporter";

/// node_exporter 1.5 flags (other than collector switches) without an effect here.
pub const IGNORED_FLAGS: &[IgnoredFlag] = &[
    IgnoredFlag::value(
        "runtime.gomaxprocs",
        "a Go runtime setting; the exporter runs collectors on one thread per scrape",
    ),
    IgnoredFlag::switch(
        "web.systemd-socket",
        "systemd socket activation is not supported; listening on --web.listen-address",
    ),
    IgnoredFlag::switch(
        "collector.netclass.netlink",
        "netclass reads sysfs, which has every attribute netlink has",
    ),
    IgnoredFlag::switch(
        "collector.netclass_rtnl.with-stats",
        "netclass reads sysfs; use the netdev collector for statistics",
    ),
    IgnoredFlag::switch("collector.netdev.address-info", NOT_IMPLEMENTED),
    IgnoredFlag::switch("collector.netdev.enable-detailed-metrics", NOT_IMPLEMENTED),
    IgnoredFlag::switch("collector.stat.softirq", NOT_IMPLEMENTED),
    IgnoredFlag::switch("collector.bcache.priorityStats", "no bcache collector"),
    IgnoredFlag::value("collector.arp.device-include", "no arp collector"),
    IgnoredFlag::value("collector.arp.device-exclude", "no arp collector"),
    IgnoredFlag::value("collector.ethtool.device-include", "no ethtool collector"),
    IgnoredFlag::value("collector.ethtool.device-exclude", "no ethtool collector"),
    IgnoredFlag::value("collector.ethtool.metrics-include", "no ethtool collector"),
    IgnoredFlag::value("collector.ipvs.backend-labels", "no ipvs collector"),
    IgnoredFlag::value(
        "collector.powersupply.ignored-supplies",
        "no powersupplyclass collector",
    ),
    IgnoredFlag::switch("collector.rapl.enable-zone-label", "no rapl collector"),
    IgnoredFlag::value(
        "collector.tapestats.ignored-devices",
        "no tapestats collector",
    ),
    IgnoredFlag::value("collector.systemd.unit-include", "no systemd collector"),
    IgnoredFlag::value("collector.systemd.unit-exclude", "no systemd collector"),
    IgnoredFlag::value("collector.systemd.unit-whitelist", "no systemd collector"),
    IgnoredFlag::value("collector.systemd.unit-blacklist", "no systemd collector"),
    IgnoredFlag::switch(
        "collector.systemd.enable-task-metrics",
        "no systemd collector",
    ),
    IgnoredFlag::switch(
        "collector.systemd.enable-restarts-metrics",
        "no systemd collector",
    ),
    IgnoredFlag::switch(
        "collector.systemd.enable-start-time-metrics",
        "no systemd collector",
    ),
    IgnoredFlag::switch("collector.systemd.private", "no systemd collector"),
    IgnoredFlag::value(
        "collector.ntp.server",
        "no ntp collector (timex covers the clock)",
    ),
    IgnoredFlag::value("collector.ntp.server-port", "no ntp collector"),
    IgnoredFlag::value("collector.ntp.protocol-version", "no ntp collector"),
    IgnoredFlag::switch("collector.ntp.server-is-local", "no ntp collector"),
    IgnoredFlag::value("collector.ntp.ip-ttl", "no ntp collector"),
    IgnoredFlag::value("collector.ntp.max-distance", "no ntp collector"),
    IgnoredFlag::value("collector.ntp.local-offset-tolerance", "no ntp collector"),
    IgnoredFlag::value("collector.perf.cpus", "no perf collector"),
    IgnoredFlag::value("collector.perf.tracepoint", "no perf collector"),
    IgnoredFlag::value("collector.qdisc.fixtures", "no qdisc collector"),
    IgnoredFlag::value("collector.qdisk.device-include", "no qdisc collector"),
    IgnoredFlag::value("collector.qdisk.device-exclude", "no qdisc collector"),
    IgnoredFlag::value("collector.runit.servicedir", "no runit collector"),
    IgnoredFlag::value("collector.supervisord.url", "no supervisord collector"),
    IgnoredFlag::value("collector.sysctl.include", "no sysctl collector"),
    IgnoredFlag::value("collector.sysctl.include-info", "no sysctl collector"),
    IgnoredFlag::value("collector.wifi.fixtures", "no wifi collector"),
];

const fn absent(name: &'static str) -> IgnoredCollector {
    IgnoredCollector {
        name,
        why: NOT_IMPLEMENTED,
    }
}

/// node_exporter 1.5's collectors (its `--collector.NAME` list on Linux) that this exporter
/// lacks. Those the registry has are skipped automatically.
pub const IGNORED_COLLECTORS: &[IgnoredCollector] = &[
    absent("arp"),
    absent("bcache"),
    absent("bonding"),
    absent("btrfs"),
    absent("buddyinfo"),
    absent("cgroups"),
    absent("dmi"),
    absent("drbd"),
    absent("drm"),
    absent("ethtool"),
    absent("fibrechannel"),
    absent("interrupts"),
    absent("ipvs"),
    absent("ksmd"),
    absent("lnstat"),
    absent("logind"),
    absent("meminfo_numa"),
    absent("mountstats"),
    absent("network_route"),
    absent("nfs"),
    absent("nfsd"),
    absent("ntp"),
    absent("perf"),
    absent("powersupplyclass"),
    absent("processes"),
    absent("qdisc"),
    absent("rapl"),
    absent("runit"),
    absent("schedstat"),
    absent("selinux"),
    absent("slabinfo"),
    absent("softnet"),
    absent("supervisord"),
    absent("sysctl"),
    absent("systemd"),
    absent("tapestats"),
    absent("tcpstat"),
    absent("udp_queues"),
    absent("wifi"),
    absent("xfs"),
    absent("zfs"),
    absent("zoneinfo"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }
}
