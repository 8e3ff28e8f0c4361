//! `filesystem` collector: `node_filesystem_{size,free,avail}_bytes`,
//! `node_filesystem_{files,files_free}`, `node_filesystem_readonly` and
//! `node_filesystem_device_error`, labelled `{device,fstype,mountpoint}` like node_exporter.
//!
//! Mounts come from `<procfs>/1/mounts` (falling back to `<procfs>/self/mounts`); mount points
//! are reported relative to `--path.rootfs` and `statfs(2)` is called on `<rootfs>/<mountpoint>`.
//!
//! **Stuck mounts.** `statfs` on a dead NFS server or a stopped FUSE daemon blocks in the kernel
//! and cannot be cancelled. The calls therefore run on a long-lived worker thread (one after
//! the other, as node_exporter does, so a scrape creates no thread), and the scrape waits for
//! each at most `--collector.filesystem.mount-timeout`, never past the scrape deadline. A
//! mount whose call does not return in time is reported `node_filesystem_device_error 1`;
//! the worker stuck in it is left behind and a fresh one serves the other mounts. While that
//! call is outstanding the mount is *not* asked again, so at most one thread per hung mount
//! exists and repeated scrapes do not grow the thread count. When the call finally returns,
//! the stuck thread exits and the mount is polled normally again.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::{Config, Paths};

/// Debian's node_exporter 1.5 default for `--collector.filesystem.mount-points-exclude`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter 1.5's default for `--collector.filesystem.fs-types-exclude`.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// Flags of the `filesystem` collector.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Regexp of mount points to exclude for filesystem collector.
    /// (`--collector.filesystem.ignored-mount-points` is node_exporter's old name for it.)
    #[arg(long = "collector.filesystem.mount-points-exclude", alias = "collector.filesystem.ignored-mount-points", default_value = DEFAULT_MOUNT_POINTS_EXCLUDE)]
    pub mount_points_exclude: String,
    /// Regexp of mount points to include (only these, minus the excluded ones).
    #[arg(long = "collector.filesystem.mount-points-include")]
    pub mount_points_include: Option<String>,
    /// Regexp of filesystem types to exclude for filesystem collector.
    /// (`--collector.filesystem.ignored-fs-types` is node_exporter's old name for it.)
    #[arg(long = "collector.filesystem.fs-types-exclude", alias = "collector.filesystem.ignored-fs-types", default_value = DEFAULT_FS_TYPES_EXCLUDE)]
    pub fs_types_exclude: String,
    /// Regexp of filesystem types to include (only these, minus the excluded ones).
    #[arg(long = "collector.filesystem.fs-types-include")]
    pub fs_types_include: Option<String>,
    /// How long to wait for statfs on a mount before marking it stuck (device_error 1).
    #[arg(long = "collector.filesystem.mount-timeout", default_value = "5s", value_parser = parse_timeout)]
    pub mount_timeout: Duration,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.into(),
            mount_points_include: None,
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.into(),
            fs_types_include: None,
            mount_timeout: Duration::from_secs(5),
        }
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    hpcmon_kit::duration::parse(s).map_err(|e| e.to_string())
}

/// Builds the `filesystem` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Filesystem::new(
        &cfg.paths,
        cfg.flags::<Flags>()?,
    )?))
}

/// One line of the mount table, with the mount point already relative to the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mount {
    /// First field (`/dev/sda1`, `tmpfs`, `server:/export`).
    pub device: String,
    /// Mount point as seen from the host's `/`.
    pub mountpoint: String,
    /// Filesystem type.
    pub fstype: String,
    /// Whether the mount options contain `ro`.
    pub readonly: bool,
}

/// Undoes the octal escapes of the mount table (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/*/mounts`. Lines with fewer than four fields are skipped. Mount points are
/// made relative to `rootfs` as node_exporter does (`/host/home` → `/home` for rootfs `/host`).
pub fn parse_mounts(text: &str, rootfs: &str) -> Vec<Mount> {
    let rootfs = rootfs.trim_end_matches('/');
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(device), Some(mp), Some(fstype), Some(opts)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let mp = unescape(mp);
        let mountpoint = if rootfs.is_empty() {
            mp
        } else {
            // Only a whole leading path component: `/hostile` is not under rootfs `/host`.
            match mp.strip_prefix(rootfs) {
                Some("") => "/".to_owned(),
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                _ => mp,
            }
        };
        out.push(Mount {
            device: device.to_owned(),
            mountpoint,
            fstype: fstype.to_owned(),
            readonly: opts.split(',').any(|o| o == "ro"),
        });
    }
    out
}

/// What `statfs` said about one mount.
#[derive(Debug, Clone, Copy)]
struct Stats {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statfs(path: &std::path::Path) -> std::io::Result<Stats> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `buf` a properly sized out-parameter.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bsize = buf.f_bsize as f64;
    Ok(Stats {
        size: buf.f_blocks as f64 * bsize,
        free: buf.f_bfree as f64 * bsize,
        avail: buf.f_bavail as f64 * bsize,
        files: buf.f_files as f64,
        files_free: buf.f_ffree as f64,
    })
}

/// The `filesystem` collector.
pub struct Filesystem {
    procfs: PathBuf,
    rootfs: PathBuf,
    mp_exclude: Regex,
    mp_include: Option<Regex>,
    fs_exclude: Regex,
    fs_include: Option<Regex>,
    timeout: Duration,
    /// Mount points with a `statfs` call still running (stuck, or not yet returned).
    outstanding: Arc<Mutex<HashSet<String>>>,
    /// The statfs worker thread's queue (None until first use or after it got stuck).
    worker: Mutex<Option<mpsc::Sender<Batch>>>,
    /// `<procfs>/1/mounts`, kept open between scrapes.
    mounts: KeptFile,
}

/// A scrape's statfs requests for the worker: `(slot, path, mount point key)` in order, and
/// where to answer each as it completes.
struct Batch {
    items: Vec<(usize, PathBuf, String)>,
    reply: mpsc::Sender<(usize, std::io::Result<Stats>)>,
}

/// Starts a statfs worker: one long-lived thread that runs each scrape's batch of requests in
/// turn (one hand-off per scrape, not per mount), so a scrape costs no thread creation. It
/// ends when its queue's sender is dropped — at once when idle, or when its stuck call
/// finally returns.
fn spawn_worker(outstanding: Arc<Mutex<HashSet<String>>>) -> std::io::Result<mpsc::Sender<Batch>> {
    let (tx, rx) = mpsc::channel::<Batch>();
    std::thread::Builder::new()
        .name("statfs".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for batch in rx {
                for (slot, path, key) in batch.items {
                    let r = statfs(&path);
                    outstanding.lock().expect("poisoned").remove(&key);
                    if batch.reply.send((slot, r)).is_err() {
                        // The scrape gave up on this batch (a call timed out): the rest is
                        // sent to a fresh worker; release them here.
                        break;
                    }
                }
            }
        })?;
    Ok(tx)
}

impl Filesystem {
    /// A collector reading the mount table under `paths` with the given flags.
    pub fn new(paths: &Paths, flags: &Flags) -> anyhow::Result<Self> {
        let re = |flag: &str, s: &str| {
            Regex::new(s).with_context(|| format!("--collector.filesystem.{flag}"))
        };
        Ok(Self {
            procfs: paths.procfs.clone(),
            rootfs: paths.rootfs.clone(),
            mp_exclude: re("mount-points-exclude", &flags.mount_points_exclude)?,
            mp_include: flags
                .mount_points_include
                .as_deref()
                .map(|s| re("mount-points-include", s))
                .transpose()?,
            fs_exclude: re("fs-types-exclude", &flags.fs_types_exclude)?,
            fs_include: flags
                .fs_types_include
                .as_deref()
                .map(|s| re("fs-types-include", s))
                .transpose()?,
            timeout: flags.mount_timeout,
            outstanding: Arc::default(),
            worker: Mutex::new(None),
            mounts: KeptFile::new(paths.procfs.join("1/mounts")),
        })
    }

    fn read_mounts(&self) -> anyhow::Result<Vec<Mount>> {
        let text = match self.mounts.read_to_string() {
            Ok(t) => t,
            Err(_) => {
                let p = self.procfs.join("self/mounts");
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?
            }
        };
        Ok(parse_mounts(&text, &self.rootfs.to_string_lossy()))
    }

    fn wanted(&self, m: &Mount) -> bool {
        !self.mp_exclude.is_match(&m.mountpoint)
            && !self.fs_exclude.is_match(&m.fstype)
            && self
                .mp_include
                .as_ref()
                .is_none_or(|r| r.is_match(&m.mountpoint))
            && self
                .fs_include
                .as_ref()
                .is_none_or(|r| r.is_match(&m.fstype))
    }
}

impl Collector for Filesystem {
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mut seen = HashSet::new();
        let mounts: Vec<Mount> = self
            .read_mounts()?
            .into_iter()
            .filter(|m| {
                self.wanted(m)
                    && seen.insert((m.device.clone(), m.mountpoint.clone(), m.fstype.clone()))
            })
            .collect();

        // The statfs calls of this scrape go to the long-lived worker thread as one batch; a
        // mount whose call is still outstanding from an earlier scrape is not asked again.
        let mut results: Vec<Option<std::io::Result<Stats>>> = Vec::new();
        results.resize_with(mounts.len(), || None);
        let mut todo: Vec<(usize, PathBuf, String)> = Vec::with_capacity(mounts.len());
        {
            let mut outstanding = self.outstanding.lock().expect("poisoned");
            for (i, m) in mounts.iter().enumerate() {
                if outstanding.insert(m.mountpoint.clone()) {
                    let path = self.rootfs.join(m.mountpoint.trim_start_matches('/'));
                    todo.push((i, path, m.mountpoint.clone()));
                } else {
                    tracing::debug!(mountpoint = %m.mountpoint, "statfs still outstanding, marking device_error");
                }
            }
        }
        let mut worker = self.worker.lock().expect("poisoned");
        while !todo.is_empty() {
            let left = ctx.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut outstanding = self.outstanding.lock().expect("poisoned");
                for (_, _, key) in &todo {
                    outstanding.remove(key);
                }
                break;
            }
            let (reply, answers) = mpsc::channel();
            let batch = Batch {
                items: todo.clone(),
                reply,
            };
            let unsent = match worker.as_ref() {
                Some(tx) => tx.send(batch).err().map(|e| e.0),
                None => Some(batch),
            };
            if let Some(batch) = unsent {
                match spawn_worker(Arc::clone(&self.outstanding)) {
                    Ok(tx) => {
                        // The new worker's receiver is alive: this send cannot fail.
                        let _ = tx.send(batch);
                        *worker = Some(tx);
                    }
                    Err(e) => {
                        let mut outstanding = self.outstanding.lock().expect("poisoned");
                        for (slot, _, key) in todo.drain(..) {
                            outstanding.remove(&key);
                            results[slot] = Some(Err(std::io::Error::new(e.kind(), e.to_string())));
                        }
                        break;
                    }
                }
            }
            // Answers come in order; each gets the per-mount timeout (within the deadline).
            let mut done = 0;
            for (slot, _, key) in &todo {
                let left = ctx.deadline.saturating_duration_since(Instant::now());
                match answers.recv_timeout(self.timeout.min(left)) {
                    Ok((s, r)) => {
                        results[s] = Some(r);
                        done += 1;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Stuck in the kernel: leave that thread to finish (it then exits, as
                        // its channel is dropped) and give the rest to a fresh worker.
                        *worker = None;
                        done += 1;
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.outstanding.lock().expect("poisoned").remove(key);
                        *worker = None;
                        results[*slot] = Some(Err(std::io::Error::other("statfs worker died")));
                        done += 1;
                        break;
                    }
                }
            }
            todo.drain(..done);
        }
        drop(worker);

        for (m, r) in mounts.iter().zip(results) {
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fstype.as_str()),
                ("mountpoint", m.mountpoint.as_str()),
            ];
            let s = match r {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    tracing::debug!(mountpoint = %m.mountpoint, error = %e, "statfs failed");
                    out.gauge(ERR_NAME, ERR_HELP).sample(&labels, 1.0);
                    continue;
                }
                None => {
                    tracing::warn!(mountpoint = %m.mountpoint, "mount point timed out or is still stuck, marking device_error");
                    out.gauge(ERR_NAME, ERR_HELP).sample(&labels, 1.0);
                    continue;
                }
            };
            out.gauge(ERR_NAME, ERR_HELP).sample(&labels, 0.0);
            // Like node_exporter 1.5, `readonly` (from the mount options) only for healthy mounts.
            let ro = if m.readonly { 1.0 } else { 0.0 };
            out.gauge("node_filesystem_readonly", "Filesystem read-only status.")
                .sample(&labels, ro);
            out.gauge("node_filesystem_size_bytes", "Filesystem size in bytes.")
                .sample(&labels, s.size);
            out.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
            )
            .sample(&labels, s.free);
            out.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
            )
            .sample(&labels, s.avail);
            out.gauge("node_filesystem_files", "Filesystem total file nodes.")
                .sample(&labels, s.files);
            out.gauge(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
            )
            .sample(&labels, s.files_free);
        }
        Ok(())
    }
}

const ERR_NAME: &str = "node_filesystem_device_error";
const ERR_HELP: &str = "Whether an error occurred while getting statistics for the given device.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn parses_escapes_rootfs_and_ro() {
        let text = "/dev/vda / ext4 rw,relatime 0 0\n\
                    /dev/sdb1 /host/data\\040disk xfs ro,noatime 0 0\n\
                    short line\n\
                    server:/export /host nfs4 rw 0 0\n";
        let m = parse_mounts(text, "/host");
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mountpoint, "/");
        assert_eq!(m[1].mountpoint, "/data disk");
        assert!(m[1].readonly);
        assert!(!m[0].readonly);
        assert_eq!(m[2].mountpoint, "/");
        assert_eq!(m[2].device, "server:/export");
        let other = parse_mounts("/dev/x /hostile ext4 rw 0 0\n", "/host");
        assert_eq!(other[0].mountpoint, "/hostile");
        let plain = parse_mounts(text, "/");
        assert_eq!(plain[1].mountpoint, "/host/data disk");
    }

    #[test]
    fn unescape_handles_odd_input() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("trail\\04"), "trail\\04");
        assert_eq!(unescape("\\999"), "\\999");
        assert_eq!(unescape("back\\134slash"), "back\\slash");
    }

    #[test]
    fn golden() {
        // The fixture's mount table points at directories inside the fixture's root, so
        // statfs works on them; sizes depend on the machine, so only the structure (and the
        // deterministic labels, device errors and readonly flags) goes into the golden file.
        let dir = testdata().join("fixtures/b-filesystem");
        let paths = Paths::fixture(&dir);
        let c = Filesystem::new(&paths, &Flags::default()).unwrap();
        let text = render(&c).unwrap();
        let masked: String = text
            .lines()
            .map(|l| match l.strip_prefix("node_filesystem_") {
                Some(rest)
                    if !rest.starts_with("device_error") && !rest.starts_with("readonly") =>
                {
                    let cut = l.rfind(' ').unwrap();
                    format!("{} <value>\n", &l[..cut])
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_golden("filesystem", &masked);
    }

    #[test]
    fn include_and_exclude_flags() {
        let dir = testdata().join("fixtures/b-filesystem");
        let paths = Paths::fixture(&dir);
        let flags = Flags {
            fs_types_include: Some("^ext4$".into()),
            ..Flags::default()
        };
        let text = render(&Filesystem::new(&paths, &flags).unwrap()).unwrap();
        assert!(text.contains("fstype=\"ext4\""));
        assert!(!text.contains("fstype=\"xfs\""), "{text}");
        let bad = Flags {
            mount_points_exclude: "(".into(),
            ..Flags::default()
        };
        assert!(Filesystem::new(&paths, &bad).is_err());
    }

    proptest! {
        #[test]
        fn parse_mounts_never_panics(s in "\\PC*", root in "(/|/host|/x/)") {
            let _ = parse_mounts(&s, &root);
        }

        #[test]
        fn parse_mounts_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = String::from_utf8_lossy(&b);
            let _ = parse_mounts(&s, "/");
            let _ = unescape(&s);
        }
    }
}
