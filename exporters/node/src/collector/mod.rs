//! The node exporter's collectors, one file each, named after the collector and thus after
//! the metrics it exposes (`node_<collector>_*`, with node_exporter's exceptions such as
//! `node_memory_*` from `meminfo` and `node_load1` from `loadavg`).
//!
//! To add a collector: write `NAME.rs` with a `new(&Config)` constructor, then add one line
//! to [`SPECS`] and one arm to [`build`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::{Collector, CollectorSpec};

pub mod conntrack;
pub mod cpu;
pub mod cpufreq;
pub mod diskstats;
pub mod edac;
pub mod entropy;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod infiniband;
pub mod loadavg;
pub mod mdadm;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod netstat;
pub mod nvme;
pub mod os;
pub mod pressure;
pub mod slurm_job;
pub mod sockstat;
pub mod stat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod timex;
pub mod uname;
pub mod vmstat;

/// Where the host's `/proc`, `/sys` and `/` are (settable to run in a container).
#[derive(Debug, Clone, clap::Args)]
pub struct Paths {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", default_value = "/proc")]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys")]
    pub sysfs: PathBuf,
    /// rootfs mountpoint (the host's `/`).
    #[arg(long = "path.rootfs", default_value = "/")]
    pub rootfs: PathBuf,
    /// udev data path (for disk labels).
    #[arg(long = "path.udev.data", default_value = "/run/udev/data")]
    pub udev_data: PathBuf,
}

impl Paths {
    /// A path under procfs, e.g. `proc("meminfo")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }
    /// A path under sysfs, e.g. `sys("class/hwmon")`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }
    /// A host path under the rootfs, e.g. `root("/etc/os-release")`.
    pub fn root(&self, abs: &str) -> PathBuf {
        self.rootfs.join(abs.trim_start_matches('/'))
    }
    /// Paths rooted at a fixture tree (`DIR/proc`, `DIR/sys`, `DIR/root`), for tests.
    pub fn fixture(dir: &Path) -> Self {
        Self {
            procfs: dir.join("proc"),
            sysfs: dir.join("sys"),
            rootfs: dir.join("root"),
            udev_data: dir.join("udev"),
        }
    }
}

/// Every setting the collectors take: the paths plus each collector's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub paths: Paths,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cpu: cpu::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub diskstats: diskstats::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub filesystem: filesystem::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub hwmon: hwmon::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub netclass: netclass::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub netdev: netdev::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub netstat: netstat::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub slurm_job: slurm_job::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub textfile: textfile::Flags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vmstat: vmstat::Flags,
}

/// Every collector, its default and what it reads.
pub const SPECS: &[CollectorSpec] = &[
    CollectorSpec {
        name: "conntrack",
        default_enabled: true,
        help: "Conntrack table usage from /proc/sys/net/netfilter",
    },
    CollectorSpec {
        name: "cpu",
        default_enabled: true,
        help: "CPU time per mode, node_cpu_info, guest time, throttles",
    },
    CollectorSpec {
        name: "cpufreq",
        default_enabled: true,
        help: "CPU frequency scaling from sysfs",
    },
    CollectorSpec {
        name: "diskstats",
        default_enabled: true,
        help: "Block device I/O statistics from /proc/diskstats",
    },
    CollectorSpec {
        name: "edac",
        default_enabled: true,
        help: "EDAC memory error counters from sysfs",
    },
    CollectorSpec {
        name: "entropy",
        default_enabled: true,
        help: "Available entropy from /proc/sys/kernel/random",
    },
    CollectorSpec {
        name: "filefd",
        default_enabled: true,
        help: "File descriptor usage from /proc/sys/fs/file-nr",
    },
    CollectorSpec {
        name: "filesystem",
        default_enabled: true,
        help: "Filesystem space and inodes via statfs, with stuck-mount protection",
    },
    CollectorSpec {
        name: "hwmon",
        default_enabled: true,
        help: "Hardware monitoring sensors from /sys/class/hwmon",
    },
    CollectorSpec {
        name: "infiniband",
        default_enabled: true,
        help: "InfiniBand port counters from /sys/class/infiniband",
    },
    CollectorSpec {
        name: "loadavg",
        default_enabled: true,
        help: "Load averages from /proc/loadavg",
    },
    CollectorSpec {
        name: "mdadm",
        default_enabled: true,
        help: "Software RAID status from /proc/mdstat",
    },
    CollectorSpec {
        name: "meminfo",
        default_enabled: true,
        help: "Memory statistics from /proc/meminfo",
    },
    CollectorSpec {
        name: "netclass",
        default_enabled: true,
        help: "Network interface properties from /sys/class/net",
    },
    CollectorSpec {
        name: "netdev",
        default_enabled: true,
        help: "Network interface counters from /proc/net/dev",
    },
    CollectorSpec {
        name: "netstat",
        default_enabled: true,
        help: "Network statistics from /proc/net/{netstat,snmp,snmp6}",
    },
    CollectorSpec {
        name: "nvme",
        default_enabled: true,
        help: "NVMe controller information from /sys/class/nvme",
    },
    CollectorSpec {
        name: "os",
        default_enabled: true,
        help: "OS release information from /etc/os-release",
    },
    CollectorSpec {
        name: "pressure",
        default_enabled: true,
        help: "Pressure stall information from /proc/pressure",
    },
    CollectorSpec {
        name: "slurm_job",
        default_enabled: true,
        help: "Per-Slurm-job CPU, memory and I/O usage from cgroups",
    },
    CollectorSpec {
        name: "sockstat",
        default_enabled: true,
        help: "Socket statistics from /proc/net/sockstat{,6}",
    },
    CollectorSpec {
        name: "stat",
        default_enabled: true,
        help: "Boot time, context switches, forks, interrupts and processes from /proc/stat",
    },
    CollectorSpec {
        name: "textfile",
        default_enabled: true,
        help: "Metrics from *.prom files in --collector.textfile.directory",
    },
    CollectorSpec {
        name: "thermal_zone",
        default_enabled: true,
        help: "Thermal zone temperatures from /sys/class/thermal",
    },
    CollectorSpec {
        name: "time",
        default_enabled: true,
        help: "The current system time and clock sources",
    },
    CollectorSpec {
        name: "timex",
        default_enabled: true,
        help: "Kernel clock discipline state from adjtimex(2)",
    },
    CollectorSpec {
        name: "uname",
        default_enabled: true,
        help: "Kernel and host identification from uname(2)",
    },
    CollectorSpec {
        name: "vmstat",
        default_enabled: true,
        help: "Virtual memory statistics from /proc/vmstat",
    },
];

/// Builds the collector named `name` (one of [`SPECS`]).
pub fn build(name: &str, cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    match name {
        "conntrack" => conntrack::new(cfg),
        "cpu" => cpu::new(cfg),
        "cpufreq" => cpufreq::new(cfg),
        "diskstats" => diskstats::new(cfg),
        "edac" => edac::new(cfg),
        "entropy" => entropy::new(cfg),
        "filefd" => filefd::new(cfg),
        "filesystem" => filesystem::new(cfg),
        "hwmon" => hwmon::new(cfg),
        "infiniband" => infiniband::new(cfg),
        "loadavg" => loadavg::new(cfg),
        "mdadm" => mdadm::new(cfg),
        "meminfo" => meminfo::new(cfg),
        "netclass" => netclass::new(cfg),
        "netdev" => netdev::new(cfg),
        "netstat" => netstat::new(cfg),
        "nvme" => nvme::new(cfg),
        "os" => os::new(cfg),
        "pressure" => pressure::new(cfg),
        "slurm_job" => slurm_job::new(cfg),
        "sockstat" => sockstat::new(cfg),
        "stat" => stat::new(cfg),
        "textfile" => textfile::new(cfg),
        "thermal_zone" => thermal_zone::new(cfg),
        "time" => time::new(cfg),
        "timex" => timex::new(cfg),
        "uname" => uname::new(cfg),
        "vmstat" => vmstat::new(cfg),
        other => anyhow::bail!("unknown collector {other:?}"),
    }
}

#[cfg(test)]
pub(crate) mod testutil;
