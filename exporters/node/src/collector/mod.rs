//! The node exporter's collectors, one file each, named after the collector and thus after
//! the metrics it exposes (`node_<collector>_*`, with node_exporter's exceptions such as
//! `node_memory_*` from `meminfo` and `node_load1` from `loadavg`).
//!
//! To add a collector: write `NAME.rs` with a `pub fn new(&Config) -> anyhow::Result<Arc<dyn
//! Collector>>` (and, if it has flags, a `#[group(skip)] pub struct Flags` deriving
//! `clap::Args`, read with `cfg.flags::<Flags>()`), then add `pub mod NAME;` and one row to
//! [`REGISTRY`]. `--collector.NAME`, `--no-collector.NAME`, the collector's own flags,
//! `collect[]` and the landing page follow from the row.

use std::path::{Path, PathBuf};

use hpcmon_kit::registry::{flags, CollectorFlags, Registration};

pub mod arp;
pub mod bonding;
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
pub mod nfs;
pub mod nfsd;
pub mod nvme;
pub mod os;
pub mod pressure;
pub mod rapl;
pub mod schedstat;
pub mod slurm_job;
pub mod sockstat;
pub mod softnet;
pub mod stat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod timex;
pub mod udp_queues;
pub mod uname;
pub mod vmstat;
// ---- Collectors added for issue 12 (new files; keep their `pub mod` lines here). ----
pub mod bcache;
pub mod btrfs;
pub mod cpu_vulnerabilities;
pub mod dmi;
pub mod ethtool;
pub mod fibrechannel;
pub mod interrupts;
pub mod ipvs;
pub mod lnstat;
pub mod meminfo_numa;
pub mod mountstats;
pub mod powersupplyclass;
pub mod processes;
pub(crate) mod read;
pub mod selinux;
pub mod systemd;
pub mod tapestats;
pub mod xfs;
pub mod zfs;
// ---- End of collectors added for issue 12. ----

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
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/proc`, `/sys` and `/` are.
    pub paths: Paths,
    /// Every registered collector's flags, by type (see [`Config::flags`]).
    pub collector_flags: CollectorFlags,
}

impl Config {
    /// The parsed flags of type `F` (a collector's `Flags`, registered in its row).
    pub fn flags<F: std::any::Any>(&self) -> anyhow::Result<&F> {
        self.collector_flags.get::<F>()
    }

    /// Settings parsed from command-line `args` (without the program name), as the binary
    /// would parse them.
    pub fn from_args(args: &[&str]) -> anyhow::Result<Self> {
        let m = crate::cli::command().try_get_matches_from(
            std::iter::once("hpcmon-node-exporter").chain(args.iter().copied()),
        )?;
        let paths = <Paths as clap::FromArgMatches>::from_arg_matches(&m)?;
        Ok(Self {
            paths,
            collector_flags: CollectorFlags::from_matches(&m, REGISTRY)?,
        })
    }
}

const ON: bool = true;
#[allow(dead_code)] // for the rows of collectors that are off by default
const OFF: bool = false;

/// Every collector: name, default, help line, flags and constructor. One row each.
pub const REGISTRY: &[Registration<Config>] = &[
    Registration::new(
        "conntrack",
        ON,
        "Conntrack table usage from /proc/sys/net/netfilter",
        conntrack::new,
    ),
    Registration::new(
        "cpu",
        ON,
        "CPU time per mode, node_cpu_info, guest time, throttles",
        cpu::new,
    )
    .flags(flags::<cpu::Flags>()),
    Registration::new(
        "cpufreq",
        ON,
        "CPU frequency scaling from sysfs",
        cpufreq::new,
    ),
    Registration::new(
        "diskstats",
        ON,
        "Block device I/O statistics from /proc/diskstats",
        diskstats::new,
    )
    .flags(flags::<diskstats::Flags>()),
    Registration::new(
        "edac",
        ON,
        "EDAC memory error counters from sysfs",
        edac::new,
    ),
    Registration::new(
        "entropy",
        ON,
        "Available entropy from /proc/sys/kernel/random",
        entropy::new,
    ),
    Registration::new(
        "filefd",
        ON,
        "File descriptor usage from /proc/sys/fs/file-nr",
        filefd::new,
    ),
    Registration::new(
        "filesystem",
        ON,
        "Filesystem space and inodes via statfs, with stuck-mount protection",
        filesystem::new,
    )
    .flags(flags::<filesystem::Flags>()),
    Registration::new(
        "hwmon",
        ON,
        "Hardware monitoring sensors from /sys/class/hwmon",
        hwmon::new,
    ),
    Registration::new(
        "infiniband",
        ON,
        "InfiniBand port counters from /sys/class/infiniband",
        infiniband::new,
    ),
    Registration::new(
        "loadavg",
        ON,
        "Load averages from /proc/loadavg",
        loadavg::new,
    ),
    Registration::new(
        "mdadm",
        ON,
        "Software RAID status from /proc/mdstat",
        mdadm::new,
    ),
    Registration::new(
        "meminfo",
        ON,
        "Memory statistics from /proc/meminfo",
        meminfo::new,
    ),
    Registration::new(
        "netclass",
        ON,
        "Network interface properties from /sys/class/net",
        netclass::new,
    )
    .flags(flags::<netclass::Flags>()),
    Registration::new(
        "netdev",
        ON,
        "Network interface counters from /proc/net/dev",
        netdev::new,
    )
    .flags(flags::<netdev::Flags>()),
    Registration::new(
        "netstat",
        ON,
        "Network statistics from /proc/net/{netstat,snmp,snmp6}",
        netstat::new,
    )
    .flags(flags::<netstat::Flags>()),
    Registration::new(
        "nvme",
        ON,
        "NVMe controller information from /sys/class/nvme",
        nvme::new,
    ),
    Registration::new(
        "os",
        ON,
        "OS release information from /etc/os-release",
        os::new,
    ),
    Registration::new(
        "pressure",
        ON,
        "Pressure stall information from /proc/pressure",
        pressure::new,
    ),
    Registration::new(
        "slurm_job",
        ON,
        "Per-Slurm-job CPU, memory and I/O usage from cgroups",
        slurm_job::new,
    )
    .flags(flags::<slurm_job::Flags>()),
    Registration::new(
        "sockstat",
        ON,
        "Socket statistics from /proc/net/sockstat{,6}",
        sockstat::new,
    ),
    Registration::new(
        "stat",
        ON,
        "Boot time, context switches, forks, interrupts and processes from /proc/stat",
        stat::new,
    ),
    Registration::new(
        "textfile",
        ON,
        "Metrics from *.prom files in --collector.textfile.directory",
        textfile::new,
    )
    .flags(flags::<textfile::Flags>()),
    Registration::new(
        "thermal_zone",
        ON,
        "Thermal zone temperatures from /sys/class/thermal",
        thermal_zone::new,
    ),
    Registration::new(
        "time",
        ON,
        "The current system time and clock sources",
        time::new,
    ),
    Registration::new(
        "timex",
        ON,
        "Kernel clock discipline state from adjtimex(2)",
        timex::new,
    ),
    Registration::new(
        "uname",
        ON,
        "Kernel and host identification from uname(2)",
        uname::new,
    ),
    Registration::new(
        "vmstat",
        ON,
        "Virtual memory statistics from /proc/vmstat",
        vmstat::new,
    )
    .flags(flags::<vmstat::Flags>()),
    Registration::new(
        "arp",
        ON,
        "ARP entries per device from /proc/net/arp",
        arp::new,
    )
    .flags(flags::<arp::Flags>()),
    Registration::new(
        "bonding",
        ON,
        "Bonded interfaces and their active slaves from /sys/class/net",
        bonding::new,
    ),
    Registration::new(
        "nfs",
        ON,
        "NFS client statistics from /proc/net/rpc/nfs",
        nfs::new,
    ),
    Registration::new(
        "nfsd",
        ON,
        "NFS server statistics from /proc/net/rpc/nfsd",
        nfsd::new,
    ),
    Registration::new(
        "rapl",
        ON,
        "RAPL energy counters from /sys/class/powercap",
        rapl::new,
    )
    .flags(flags::<rapl::Flags>()),
    Registration::new(
        "schedstat",
        ON,
        "Scheduler statistics per CPU from /proc/schedstat",
        schedstat::new,
    ),
    Registration::new(
        "softnet",
        ON,
        "Packet processing statistics per CPU from /proc/net/softnet_stat",
        softnet::new,
    ),
    Registration::new(
        "udp_queues",
        ON,
        "UDP queued bytes from /proc/net/udp{,6}",
        udp_queues::new,
    ),
    // ---- Collectors added for issue 12: one row each, below this line. ----
    Registration::new(
        "bcache",
        ON,
        "bcache cache-set statistics from /sys/fs/bcache",
        bcache::new,
    )
    .flags(flags::<bcache::Flags>()),
    Registration::new(
        "btrfs",
        ON,
        "Btrfs allocation from /sys/fs/btrfs, device errors via ioctl",
        btrfs::new,
    ),
    Registration::new(
        "xfs",
        ON,
        "XFS per-filesystem statistics from /sys/fs/xfs",
        xfs::new,
    ),
    Registration::new("zfs", ON, "ZFS kstats from /proc/spl/kstat/zfs", zfs::new),
    Registration::new(
        "dmi",
        ON,
        "DMI (SMBIOS) identification from /sys/class/dmi/id",
        dmi::new,
    ),
    Registration::new(
        "fibrechannel",
        ON,
        "Fibre Channel HBA ports from /sys/class/fc_host",
        fibrechannel::new,
    ),
    Registration::new(
        "ipvs",
        ON,
        "IPVS totals and backends from /proc/net/ip_vs{,_stats}",
        ipvs::new,
    )
    .flags(flags::<ipvs::Flags>()),
    Registration::new(
        "powersupplyclass",
        ON,
        "Power supplies from /sys/class/power_supply",
        powersupplyclass::new,
    )
    .flags(flags::<powersupplyclass::Flags>()),
    Registration::new(
        "selinux",
        ON,
        "SELinux status from selinuxfs and /etc/selinux/config",
        selinux::new,
    ),
    Registration::new(
        "tapestats",
        ON,
        "SCSI tape drive statistics from /sys/class/scsi_tape",
        tapestats::new,
    )
    .flags(flags::<tapestats::Flags>()),
    Registration::new(
        "cpu_vulnerabilities",
        OFF,
        "CPU vulnerability status from /sys/devices/system/cpu/vulnerabilities",
        cpu_vulnerabilities::new,
    ),
    Registration::new(
        "ethtool",
        OFF,
        "Network driver statistics and link modes via the ethtool ioctl",
        ethtool::new,
    )
    .flags(flags::<ethtool::Flags>()),
    Registration::new(
        "interrupts",
        OFF,
        "Interrupt counts per CPU from /proc/interrupts",
        interrupts::new,
    ),
    Registration::new(
        "lnstat",
        OFF,
        "Network cache statistics from /proc/net/stat",
        lnstat::new,
    ),
    Registration::new(
        "meminfo_numa",
        OFF,
        "Memory per NUMA node from /sys/devices/system/node",
        meminfo_numa::new,
    ),
    Registration::new(
        "mountstats",
        OFF,
        "Per-NFS-mount statistics from /proc/self/mountstats",
        mountstats::new,
    ),
    Registration::new(
        "processes",
        OFF,
        "Process and thread counts and states from /proc",
        processes::new,
    ),
    Registration::new(
        "systemd",
        OFF,
        "systemd unit and manager state over D-Bus",
        systemd::new,
    )
    .flags(flags::<systemd::Flags>()),
    // ---- End of collectors added for issue 12. ----
];

#[cfg(test)]
pub(crate) mod testutil;
