//! `btrfs` collector: Btrfs filesystem allocation from `/sys/fs/btrfs/<uuid>/` and, for
//! mounted filesystems, per-device size and error counters through the Btrfs ioctls, as
//! node_exporter 1.5:
//!
//! - `node_btrfs_info{uuid,label}`, `node_btrfs_global_rsv_size_bytes{uuid}`;
//! - `node_btrfs_reserved_bytes{uuid,block_group_type}` and, per RAID profile,
//!   `node_btrfs_{used_bytes,size_bytes,allocation_ratio}{uuid,block_group_type,mode}`;
//! - with the ioctls (a btrfs mount in `<path.procfs>/1/mounts`, opened under
//!   `--path.rootfs`): `node_btrfs_device_size_bytes`, `node_btrfs_device_unused_bytes`
//!   `{uuid,device,btrfs_dev_uuid}` and `node_btrfs_device_errors_total{uuid,type,device,
//!   btrfs_dev_uuid}`; without them `node_btrfs_device_size_bytes{uuid,device}` from sysfs.
//!
//! A filesystem whose ioctls fail (not mounted here, not the subvolume root) falls back to
//! sysfs, as in node_exporter. The ioctls only read the kernel's in-memory state.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::filesystem::parse_mounts;
use super::read;
use super::Config;

/// One RAID profile of a block group type (`allocation/data/raid1/`).
#[derive(Debug, PartialEq)]
pub(crate) struct Layout {
    pub mode: String,
    pub used: u64,
    pub total: u64,
    pub ratio: f64,
}

/// What sysfs says about one filesystem.
#[derive(Debug, PartialEq)]
pub(crate) struct FsStats {
    pub uuid: String,
    pub label: String,
    pub global_rsv_size: u64,
    /// `(block group type, reserved bytes, layouts)` for data, metadata, system.
    pub allocation: Vec<(&'static str, u64, Vec<Layout>)>,
    /// `(device name, size in bytes)`.
    pub devices: Vec<(String, u64)>,
}

/// A sysfs attribute as text; a missing file reads as empty (as in node_exporter).
fn text_or_empty(path: &Path) -> anyhow::Result<String> {
    match read::attr(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A number attribute; missing or not a number reads as 0 (as in node_exporter).
fn value(path: &Path) -> anyhow::Result<u64> {
    Ok(text_or_empty(path)?.parse().unwrap_or(0))
}

fn ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// Reads `/sys/fs/btrfs/<uuid>` (`dir`).
pub(crate) fn read_fs(dir: &Path) -> anyhow::Result<FsStats> {
    let mut devices = Vec::new();
    for (name, p) in read::entries(&dir.join("devices"))
        .with_context(|| format!("reading {}/devices", dir.display()))?
    {
        devices.push((name, value(&p.join("size"))?.wrapping_mul(512)));
    }
    let mut allocation = Vec::new();
    for kind in ["data", "metadata", "system"] {
        let a = dir.join("allocation").join(kind);
        let reserved = value(&a.join("bytes_reserved"))?;
        let mut layouts = Vec::new();
        for (mode, p) in read::entries(&a).with_context(|| format!("reading {}", a.display()))? {
            if !p.is_dir() {
                continue;
            }
            layouts.push(Layout {
                used: value(&p.join("used_bytes"))?,
                total: value(&p.join("total_bytes"))?,
                ratio: ratio(&mode, devices.len()),
                mode,
            });
        }
        allocation.push((kind, reserved, layouts));
    }
    let mut uuid = text_or_empty(&dir.join("metadata_uuid"))?;
    if uuid.is_empty() {
        uuid = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    Ok(FsStats {
        uuid,
        label: text_or_empty(&dir.join("label"))?,
        global_rsv_size: value(&dir.join("allocation/global_rsv_size"))?,
        allocation,
        devices,
    })
}

/// One device of a mounted filesystem, from `BTRFS_IOC_DEV_INFO` and `BTRFS_IOC_GET_DEV_STATS`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IoctlDevice {
    /// Last component of the device path (`sda1`).
    pub name: String,
    /// Device UUID, `8-4-4-4-12` hex.
    pub uuid: String,
    pub bytes_used: u64,
    pub total_bytes: u64,
    /// write, read, flush, corruption, generation errors.
    pub errors: [u64; 5],
}

mod ioctl {
    //! The three read-only Btrfs ioctls node_exporter uses (layouts from `linux/btrfs.h`).

    /// `struct btrfs_ioctl_fs_info_args` (1024 bytes).
    #[repr(C)]
    pub struct FsInfo {
        pub max_id: u64,
        pub num_devices: u64,
        pub fsid: [u8; 16],
        pub rest: [u8; 1024 - 32],
    }

    /// `struct btrfs_ioctl_dev_info_args` (4096 bytes).
    #[repr(C)]
    pub struct DevInfo {
        pub devid: u64,
        pub uuid: [u8; 16],
        pub bytes_used: u64,
        pub total_bytes: u64,
        pub unused: [u64; 379],
        pub path: [u8; 1024],
    }

    /// `struct btrfs_ioctl_get_dev_stats` (1032 bytes).
    #[repr(C)]
    pub struct DevStats {
        pub devid: u64,
        pub nr_items: u64,
        pub flags: u64,
        pub values: [u64; 5],
        pub unused: [u64; 121],
    }

    const fn iowr(dir: u64, nr: u64, size: usize) -> u64 {
        (dir << 30) | ((size as u64) << 16) | (0x94 << 8) | nr
    }
    const READ: u64 = 2;
    const READ_WRITE: u64 = 3;
    pub const FS_INFO: u64 = iowr(READ, 31, std::mem::size_of::<FsInfo>());
    pub const DEV_INFO: u64 = iowr(READ_WRITE, 30, std::mem::size_of::<DevInfo>());
    pub const GET_DEV_STATS: u64 = iowr(READ_WRITE, 52, std::mem::size_of::<DevStats>());

    /// Zeroed argument structs (all fields are plain integers).
    pub fn zeroed<T>() -> Box<T> {
        // SAFETY: the structs above consist of integers and integer arrays only, for which
        // all-zero bytes are valid values.
        unsafe { Box::new(std::mem::zeroed()) }
    }

    /// Runs ioctl `req` on `fd` with `arg`.
    pub fn call<T>(fd: i32, req: u64, arg: &mut T) -> std::io::Result<()> {
        // SAFETY: `arg` is a live, exclusively borrowed struct of the size encoded in `req`,
        // which is what the kernel reads and writes.
        let r = unsafe { libc::ioctl(fd, req as _, arg as *mut T) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// `8-4-4-4-12` lowercase hex, or `<zero>` for the all-zero UUID (the Go library's format).
fn uuid_string(b: &[u8; 16]) -> String {
    if b.iter().all(|&x| x == 0) {
        return "<zero>".to_owned();
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
const FIRST_FREE_OBJECTID: u64 = 256;

/// The filesystem id (hex, no dashes) and devices of the btrfs filesystem mounted at `mp`,
/// or `None` if `mp` is not the root of a btrfs subvolume.
fn ioctl_stats(mp: &Path) -> std::io::Result<Option<(String, Vec<IoctlDevice>)>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(mp)?;
    if !meta.is_dir() || meta.ino() != FIRST_FREE_OBJECTID {
        return Ok(None);
    }
    let dir = std::fs::File::open(mp)?;
    let fd = dir.as_raw_fd();
    // SAFETY: statfs is plain data; fstatfs fills it for a valid fd.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the duration of the call and `sfs` is a valid out pointer.
    if unsafe { libc::fstatfs(fd, &mut sfs) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    if sfs.f_type as i64 != BTRFS_SUPER_MAGIC {
        return Ok(None);
    }
    let mut info = ioctl::zeroed::<ioctl::FsInfo>();
    ioctl::call(fd, ioctl::FS_INFO, &mut *info)?;
    let fsid: String = info.fsid.iter().map(|x| format!("{x:02x}")).collect();
    let mut devices = Vec::new();
    for id in 0..=info.max_id {
        let mut di = ioctl::zeroed::<ioctl::DevInfo>();
        di.devid = id;
        match ioctl::call(fd, ioctl::DEV_INFO, &mut *di) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => continue,
            r => r?,
        }
        let mut ds = ioctl::zeroed::<ioctl::DevStats>();
        ds.devid = id;
        ds.nr_items = 5;
        ioctl::call(fd, ioctl::GET_DEV_STATS, &mut *ds)?;
        let end = di
            .path
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(di.path.len());
        let path = String::from_utf8_lossy(&di.path[..end]).into_owned();
        devices.push(IoctlDevice {
            name: path.rsplit('/').next().unwrap_or_default().to_owned(),
            uuid: uuid_string(&di.uuid),
            bytes_used: di.bytes_used,
            total_bytes: di.total_bytes,
            errors: ds.values,
        });
        if devices.len() as u64 == info.num_devices {
            break;
        }
    }
    Ok(Some((fsid, devices)))
}

struct Btrfs {
    class: PathBuf,
    mounts: [PathBuf; 2],
    rootfs: PathBuf,
}

/// Builds the `btrfs` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Btrfs {
        class: cfg.paths.sys("fs/btrfs"),
        mounts: [cfg.paths.proc("1/mounts"), cfg.paths.proc("mounts")],
        rootfs: cfg.paths.rootfs.clone(),
    }))
}

impl Btrfs {
    /// Device statistics by filesystem id of every mounted btrfs filesystem. Failures are
    /// logged at debug level and leave that filesystem to sysfs, as in node_exporter.
    fn ioctl_devices(&self, ctx: &Context) -> HashMap<String, Vec<IoctlDevice>> {
        let mut out = HashMap::new();
        let text = match std::fs::read_to_string(&self.mounts[0]) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::read_to_string(&self.mounts[1])
            }
            r => r,
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "btrfs: cannot read the mount table");
                return out;
            }
        };
        let root = self.rootfs.to_string_lossy();
        let mut done = std::collections::HashSet::new();
        for m in parse_mounts(&text, &root) {
            if m.fstype != "btrfs" || done.contains(&m.device) {
                continue;
            }
            if ctx.remaining().is_zero() {
                break;
            }
            let mp = self.rootfs.join(m.mountpoint.trim_start_matches('/'));
            match ioctl_stats(&mp) {
                Ok(Some((fsid, devs))) => {
                    if out.contains_key(&fsid) {
                        continue;
                    }
                    done.insert(m.device.clone());
                    out.insert(fsid, devs);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(mountpoint = %mp.display(), error = %e, "btrfs ioctl failed");
                }
            }
        }
        out
    }
}

fn emit(out: &mut MetricSet, s: &FsStats, devs: Option<&Vec<IoctlDevice>>) {
    let uuid = s.uuid.as_str();
    out.gauge("node_btrfs_info", "Filesystem information")
        .sample(&[("uuid", uuid), ("label", &s.label)], 1.0);
    out.gauge(
        "node_btrfs_global_rsv_size_bytes",
        "Size of global reserve.",
    )
    .sample(&[("uuid", uuid)], s.global_rsv_size as f64);
    for (kind, reserved, layouts) in &s.allocation {
        out.gauge(
            "node_btrfs_reserved_bytes",
            "Amount of space reserved for a data type",
        )
        .sample(
            &[("uuid", uuid), ("block_group_type", kind)],
            *reserved as f64,
        );
        for l in layouts {
            let labels = [
                ("uuid", uuid),
                ("block_group_type", *kind),
                ("mode", l.mode.as_str()),
            ];
            out.gauge(
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
            )
            .sample(&labels, l.used as f64);
            out.gauge(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
            )
            .sample(&labels, l.total as f64);
            out.gauge(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
            )
            .sample(&labels, l.ratio);
        }
    }
    let size_help = "Size of a device that is part of the filesystem.";
    let Some(devs) = devs else {
        for (name, size) in &s.devices {
            out.gauge("node_btrfs_device_size_bytes", size_help)
                .sample(&[("uuid", uuid), ("device", name)], *size as f64);
        }
        return;
    };
    for d in devs {
        let labels = [
            ("uuid", uuid),
            ("device", d.name.as_str()),
            ("btrfs_dev_uuid", d.uuid.as_str()),
        ];
        out.gauge("node_btrfs_device_size_bytes", size_help)
            .sample(&labels, d.total_bytes as f64);
        out.gauge(
            "node_btrfs_device_unused_bytes",
            "Unused bytes unused on a device that is part of the filesystem.",
        )
        .sample(&labels, d.total_bytes.wrapping_sub(d.bytes_used) as f64);
        let errors = out.counter(
            "node_btrfs_device_errors_total",
            "Errors reported for the device",
        );
        for (t, v) in ["write", "read", "flush", "corruption", "generation"]
            .iter()
            .zip(d.errors)
        {
            errors.sample(
                &[
                    ("uuid", uuid),
                    ("type", t),
                    ("device", d.name.as_str()),
                    ("btrfs_dev_uuid", d.uuid.as_str()),
                ],
                v as f64,
            );
        }
    }
}

impl Collector for Btrfs {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mut stats = Vec::new();
        let dirs = read::entries_or_empty(&self.class).context("failed to retrieve Btrfs stats")?;
        for (name, dir) in dirs {
            if name.contains('-') {
                stats.push(read_fs(&dir).context("failed to retrieve Btrfs stats")?);
            }
        }
        if stats.is_empty() {
            return Ok(());
        }
        let devices = self.ioctl_devices(ctx);
        for s in &stats {
            emit(out, s, devices.get(&s.uuid.replace('-', "")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};

    #[test]
    fn golden_recorded_raid1() {
        let c = new(&test_config(&testdata().join("fixtures/b-btrfs"), &[])).unwrap();
        assert_golden("btrfs", &render(&*c).unwrap());
    }

    #[test]
    fn ratios_and_uuid_format() {
        assert_eq!(ratio("raid1", 2), 2.0);
        assert_eq!(ratio("raid5", 3), 1.5);
        assert_eq!(ratio("raid6", 4), 2.0);
        assert_eq!(ratio("raid1c3", 3), 0.0);
        let mut b = [0u8; 16];
        assert_eq!(uuid_string(&b), "<zero>");
        b[0] = 0xab;
        b[15] = 1;
        assert_eq!(uuid_string(&b), "ab000000-0000-0000-0000-000000000001");
    }

    #[test]
    fn ioctl_struct_sizes_match_the_kernel() {
        assert_eq!(std::mem::size_of::<ioctl::FsInfo>(), 1024);
        assert_eq!(std::mem::size_of::<ioctl::DevInfo>(), 4096);
        assert_eq!(std::mem::size_of::<ioctl::DevStats>(), 1032);
        assert_eq!(ioctl::FS_INFO, 0x8400_941f);
        assert_eq!(ioctl::DEV_INFO, 0xd000_941e);
        assert_eq!(ioctl::GET_DEV_STATS, 0xc408_9434);
    }

    #[test]
    fn not_btrfs_is_no_ioctl_data() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ioctl_stats(dir.path()).unwrap().is_none());
        assert!(ioctl_stats(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn no_btrfs_is_success_without_metrics() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap(),
            ""
        );
    }
}
