//! Reading sysfs (and small procfs) attributes: the one home for it.
//!
//! A sysfs attribute is at most a page and comes whole from one `read(2)`, so [`attr`] does
//! open / one read / close, without the `statx` and second read of `fs::read_to_string`.
//! A collector that reads many attributes of one directory (a network interface, a hwmon
//! chip) opens the directory once as a [`Dir`] and reads each attribute relative to it with
//! `openat(2)`, so the kernel resolves the directory's path once instead of per attribute.
//!
//! A file read on every scrape can be kept open as a [`KeptFile`] and re-read from offset 0.
//!
//! Values are trimmed of surrounding white space, as the Go `procfs` library's
//! `SysReadFile` does, so values match node_exporter's on the same files.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

/// Largest attribute read: one page.
const PAGE: usize = 4096;

/// The first page of `f` from one `read(2)` (a driver that answers `EAGAIN` fails at once
/// instead of being polled forever).
fn read_once(mut f: File) -> io::Result<String> {
    let mut buf = [0u8; PAGE];
    let n = loop {
        match f.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn trimmed(mut s: String) -> String {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    s.drain(..start);
    s
}

/// One attribute file: its first page, trimmed.
pub fn attr(path: &Path) -> io::Result<String> {
    read_once(File::open(path)?).map(trimmed)
}

/// One attribute file: its first page as it is (for readers that trim differently, such as
/// node_exporter's hwmon collector, which strips only newlines).
pub fn attr_raw(path: &Path) -> io::Result<String> {
    read_once(File::open(path)?)
}

/// One attribute holding an unsigned decimal integer.
pub fn attr_u64(path: &Path) -> io::Result<u64> {
    parse(&attr(path)?, &path)
}

/// One attribute holding a signed decimal integer.
pub fn attr_i64(path: &Path) -> io::Result<i64> {
    parse(&attr(path)?, &path)
}

fn parse<T: std::str::FromStr>(s: &str, what: &dyn std::fmt::Debug) -> io::Result<T> {
    s.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("invalid number {s:?} in {what:?}"),
        )
    })
}

/// A directory's entries as `(name, path)`, sorted by name. Names that are not UTF-8 are
/// skipped (they cannot become label values).
pub fn entries(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    v.sort();
    Ok(v)
}

/// Like [`entries`], but a missing directory is an empty list (hardware that is absent).
pub fn entries_or_empty(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    match entries(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r,
    }
}

/// An open directory whose attributes are read with `openat(2)`.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` (following symlinks, as sysfs class entries are).
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_at(&self, name: &str, flags: OFlag) -> io::Result<OwnedFd> {
        openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | flags,
            Mode::empty(),
        )
        .map_err(io::Error::from)
    }

    fn open_file(&self, name: &str) -> io::Result<File> {
        self.open_at(name, OFlag::empty()).map(File::from)
    }

    /// The attribute `name` (a file name, or a relative path such as `device/vendor`).
    pub fn attr(&self, name: &str) -> io::Result<String> {
        read_once(self.open_file(name)?).map(trimmed)
    }

    /// The attribute `name` untrimmed (see [`attr_raw`]).
    pub fn attr_raw(&self, name: &str) -> io::Result<String> {
        read_once(self.open_file(name)?)
    }

    /// The attribute `name`, `None` when it is missing or unreadable (many attributes are
    /// optional, or refuse reads with `EINVAL` when the device is down).
    pub fn attr_opt(&self, name: &str) -> Option<String> {
        self.attr(name).ok()
    }

    /// The attribute `name` as an unsigned decimal integer.
    pub fn u64(&self, name: &str) -> io::Result<u64> {
        parse(&self.attr(name)?, &self.path.join(name))
    }

    /// The attribute `name` as a signed decimal integer.
    pub fn i64(&self, name: &str) -> io::Result<i64> {
        parse(&self.attr(name)?, &self.path.join(name))
    }

    /// A subdirectory, opened relative to this one.
    pub fn subdir(&self, name: &str) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.open_at(name, OFlag::O_DIRECTORY)?,
            path: self.path.join(name),
        })
    }
}

/// A procfs or sysfs file kept open between scrapes and re-read from offset 0 with
/// `pread(2)`: both regenerate a file's contents on every read from its start, so this is
/// the same as opening it anew, without the path walk, the open and the close (a third of a
/// scrape's kernel time when the file is small). When a read fails (the device behind the
/// file went away, the file was replaced), the file is opened again once.
///
/// Only for kernel-generated files (under `/proc` and `/sys`): a regular file replaced by a
/// rename would keep being read through the old descriptor.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    file: std::sync::Mutex<Option<File>>,
    /// Size of the last read, to read in one call next time.
    last_len: std::sync::atomic::AtomicUsize,
}

impl KeptFile {
    /// A file at `path`, opened on its first read.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: std::sync::Mutex::new(None),
            last_len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `read` on the kept descriptor; when that fails (the file was replaced, the
    /// device went away), opens the path again once and keeps the new descriptor.
    fn with_file<T>(&self, read: impl Fn(&File) -> io::Result<T>) -> io::Result<T> {
        let mut kept = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(v)) = kept.as_ref().map(&read) {
            return Ok(v);
        }
        *kept = None;
        let f = File::open(&self.path)?;
        let v = read(&f)?;
        *kept = Some(f);
        Ok(v)
    }

    /// The whole file, as `fs::read_to_string` would return it.
    pub fn read_to_string(&self) -> io::Result<String> {
        use std::sync::atomic::Ordering;
        let hint = self.last_len.load(Ordering::Relaxed);
        let s = self.with_file(|f| read_all_at(f, hint))?;
        self.last_len.store(s.len(), Ordering::Relaxed);
        Ok(s)
    }

    /// The whole file, like [`KeptFile::read_to_string`], for a kernel `seq_file` of records
    /// no longer than `max_record` bytes that is usually short (`/proc/net/udp`): one
    /// `pread` that comes back more than `max_record` bytes short of a page has everything,
    /// because the kernel fills its page-sized buffer record by record until the records run
    /// out or the next one does not fit. That saves the read at the end that
    /// `read_to_string` makes to see end-of-file, which for `/proc/net/udp` walks the whole
    /// UDP hash table once more. Longer contents fall back to reading up to end-of-file.
    pub fn read_short_seq(&self, max_record: usize) -> io::Result<String> {
        use std::os::unix::fs::FileExt;
        let (buf, n) = self.with_file(|f| {
            let mut buf = vec![0u8; 2 * PAGE];
            loop {
                match f.read_at(&mut buf, 0) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r.map(|n| (buf, n)),
                }
            }
        })?;
        if n + max_record >= PAGE {
            return self.read_to_string();
        }
        let mut buf = buf;
        buf.truncate(n);
        String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The file's contents trimmed, for one-value attributes.
    pub fn attr(&self) -> io::Result<String> {
        self.read_to_string().map(trimmed)
    }
}

/// Reads `f` from offset 0 to its end with `pread(2)`, starting with room for `hint` bytes.
fn read_all_at(f: &File, hint: usize) -> io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut buf: Vec<u8> = vec![0; (hint + 1024).next_power_of_two().max(PAGE)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_trimmed_and_numbers_checked() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("speed"), "1000\n").unwrap();
        std::fs::write(d.path().join("temp"), "-5\n").unwrap();
        std::fs::write(d.path().join("label"), "  Core 0 \n").unwrap();
        std::fs::write(d.path().join("bad"), "up\n").unwrap();
        std::fs::create_dir(d.path().join("device")).unwrap();
        std::fs::write(d.path().join("device/vendor"), "0x8086\n").unwrap();

        assert_eq!(attr(&d.path().join("label")).unwrap(), "Core 0");
        assert_eq!(attr_raw(&d.path().join("label")).unwrap(), "  Core 0 \n");
        assert_eq!(attr_u64(&d.path().join("speed")).unwrap(), 1000);
        assert_eq!(attr_i64(&d.path().join("temp")).unwrap(), -5);
        let e = attr_u64(&d.path().join("bad")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("\"up\""), "{e}");

        let dir = Dir::open(d.path()).unwrap();
        assert_eq!(dir.u64("speed").unwrap(), 1000);
        assert_eq!(dir.i64("temp").unwrap(), -5);
        assert_eq!(dir.attr("device/vendor").unwrap(), "0x8086");
        assert_eq!(dir.attr_raw("label").unwrap(), "  Core 0 \n");
        assert_eq!(
            dir.subdir("device").unwrap().attr("vendor").unwrap(),
            "0x8086"
        );
        assert_eq!(
            dir.attr("missing").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(dir.attr_opt("missing").is_none());
        assert!(dir.u64("bad").is_err());
        assert!(Dir::open(&d.path().join("speed")).is_err());
    }

    #[test]
    fn short_seq_reads_are_whole_and_long_ones_fall_back() {
        let d = tempfile::tempdir().unwrap();
        let short = "sl  local_address\n".to_string() + &"x".repeat(126) + "\n";
        let long: String = (0..100).map(|i| format!("{i:0>127}\n")).collect();
        std::fs::write(d.path().join("short"), &short).unwrap();
        std::fs::write(d.path().join("long"), &long).unwrap();
        let f = KeptFile::new(d.path().join("short"));
        assert_eq!(f.read_short_seq(512).unwrap(), short);
        assert_eq!(
            f.read_short_seq(512).unwrap(),
            short,
            "again, on the kept file"
        );
        let f = KeptFile::new(d.path().join("long"));
        assert_eq!(f.read_short_seq(512).unwrap().len(), 12_800);
        assert_eq!(f.read_short_seq(512).unwrap(), long);
        assert!(KeptFile::new(d.path().join("missing"))
            .read_short_seq(512)
            .is_err());
        // The kernel's own: whole, with its header.
        let udp = KeptFile::new("/proc/net/udp").read_short_seq(512).unwrap();
        assert!(udp.starts_with("   sl"), "{udp:?}");
        assert!(udp.ends_with('\n'), "{udp:?}");
    }

    #[test]
    fn entries_are_sorted_and_a_missing_dir_can_be_empty() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b", "a", "c"] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let names: Vec<String> = entries(d.path())
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(entries(&d.path().join("none")).is_err());
        assert!(entries_or_empty(&d.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn kept_files_are_reread_and_reopened() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stat");
        std::fs::write(&p, "cpu 1 2 3\n").unwrap();
        let k = KeptFile::new(&p);
        assert_eq!(k.read_to_string().unwrap(), "cpu 1 2 3\n");
        // Rewritten in place (as the kernel regenerates): the kept descriptor sees it.
        std::fs::write(&p, "cpu 4 5 6 and a longer line than before\n").unwrap();
        assert_eq!(
            k.read_to_string().unwrap(),
            "cpu 4 5 6 and a longer line than before\n"
        );
        // Larger than the first buffer.
        let big = "x".repeat(3 * PAGE + 17);
        std::fs::write(&p, &big).unwrap();
        assert_eq!(k.read_to_string().unwrap(), big);
        std::fs::write(&p, " 7 \n").unwrap();
        assert_eq!(k.attr().unwrap(), "7");
        // Gone: an error, and a new file at the path is found again.
        drop(std::fs::remove_file(&p));
        assert_eq!(
            k.read_to_string().unwrap(),
            " 7 \n",
            "unlinked but still open"
        );
        let missing = KeptFile::new(d.path().join("none"));
        assert_eq!(
            missing.read_to_string().unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::write(d.path().join("none"), "here\n").unwrap();
        assert_eq!(missing.attr().unwrap(), "here");
        std::fs::write(d.path().join("bin"), [0xff, 0xfe]).unwrap();
        let bin = KeptFile::new(d.path().join("bin"));
        assert_eq!(
            bin.read_to_string().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn kept_proc_files_regenerate() {
        // The kernel regenerates /proc files for every read from offset 0.
        let k = KeptFile::new("/proc/self/stat");
        let a = k.read_to_string().unwrap();
        let b = k.read_to_string().unwrap();
        assert!(a.starts_with(&format!("{} (", std::process::id())), "{a}");
        assert!(b.starts_with(&format!("{} (", std::process::id())), "{b}");
        let u = KeptFile::new("/proc/uptime");
        let first: f64 = u
            .attr()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second: f64 = u
            .attr()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(second > first, "{first} then {second}: not re-read");
    }

    #[test]
    fn only_the_first_page_is_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("big"), "x".repeat(3 * PAGE)).unwrap();
        assert_eq!(attr(&d.path().join("big")).unwrap().len(), PAGE);
    }
}
