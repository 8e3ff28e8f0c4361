//! A hung mount must not stall the scrape nor pile up threads.
//!
//! The test mounts a FUSE filesystem (`bindfs -f SRC MNT`, Debian package `bindfs`, group
//! `fuse` in `scripts/deps/`), stops its daemon with SIGSTOP so that every `statfs` on the mount
//! blocks in the kernel, then scrapes `hpcmon-node-exporter` 20 times. Every scrape must
//! answer (generous client timeout, no duration assertion), report the mount as
//! `node_filesystem_device_error 1`, still report the root filesystem, and the exporter's thread
//! count (`Threads:` in `/proc/PID/status`) must not grow with the number of scrapes, and a
//! second, healthy FUSE mount listed after the hung one must still be served. The
//! daemon is continued and the mount lazily unmounted even when the test fails.

use hpcmon_e2e::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn require(program: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{program}` is missing: install it with `scripts/install-deps.sh fuse`");
}

/// GET http://127.0.0.1:PORT/PATH with a generous timeout; returns the body.
fn http_get(port: u16, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("bad response: {head}")));
    }
    // The body may be chunked; metric lines survive chunk framing well enough for our checks
    // only if we de-chunk, so do it properly.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_owned())
}

fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn is_mounted(mnt: &Path) -> bool {
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

/// Continues and kills the FUSE daemon, unmounts, and kills the exporter, whatever happens.
struct Cleanup {
    fuse: Option<Child>,
    exporter: Option<Child>,
    mnt: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &self.fuse {
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        if let Some(mut c) = self.exporter.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("fusermount")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        if is_mounted(&self.mnt) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.fuse.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sample_value(text: &str, name: &str, mountpoint: &str) -> Option<f64> {
    let needle = format!("mountpoint=\"{mountpoint}\"");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .find(|l| l.contains(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn hung_fuse_mount_does_not_stall_scrapes_or_grow_threads() {
    let bindfs = require("bindfs");
    require("fusermount");
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: this test needs FUSE"
    );

    let tmp = tempfile::Builder::new()
        .prefix("hpcmon-hung-mount")
        .tempdir_in("/tmp")
        .unwrap();
    let src = tmp.path().join("src");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::write(src.join("hello"), "hi").unwrap();

    let mut guard = Cleanup {
        fuse: None,
        exporter: None,
        mnt: mnt.clone(),
    };
    guard.fuse = Some(
        Command::new(&bindfs)
            .arg("-f")
            .arg(&src)
            .arg(&mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bindfs"),
    );
    let t0 = Instant::now();
    while !is_mounted(&mnt) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "bindfs did not mount {}",
            mnt.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mnt_s = mnt.to_string_lossy().into_owned();
    // A second, healthy mount after the hung one in the mount table: the statfs calls queued
    // behind the stuck one must still be answered (by a fresh worker).
    let mnt2 = tmp.path().join("mnt2");
    std::fs::create_dir_all(&mnt2).unwrap();
    let mut guard2 = Cleanup {
        fuse: None,
        exporter: None,
        mnt: mnt2.clone(),
    };
    guard2.fuse = Some(
        Command::new(&bindfs)
            .arg("-f")
            .arg(&src)
            .arg(&mnt2)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the second bindfs"),
    );
    let t0 = Instant::now();
    while !is_mounted(&mnt2) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "bindfs did not mount {}",
            mnt2.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mnt2_s = mnt2.to_string_lossy().into_owned();

    let port = free_port();
    guard.exporter = Some(
        Command::new(env!("CARGO_BIN_EXE_hpcmon-node-exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.filesystem",
                "--collector.filesystem.mount-timeout=500ms",
                "--scrape.timeout=3s",
                "--log.level=error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start exporter"),
    );
    let pid = guard.exporter.as_ref().unwrap().id();
    let client_timeout = Duration::from_secs(60);
    let t0 = Instant::now();
    let first = loop {
        match http_get(port, "/metrics", client_timeout) {
            Ok(body) => break body,
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "exporter never answered: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    // Healthy first: the FUSE mount is seen and stat-able.
    assert_eq!(
        sample_value(&first, "node_filesystem_device_error", &mnt_s),
        Some(0.0),
        "FUSE mount not reported healthy before SIGSTOP:\n{first}"
    );

    // Hang the daemon: every statfs on the mount now blocks in the kernel.
    let fuse_pid = guard.fuse.as_ref().unwrap().id() as i32;
    assert_eq!(unsafe { libc::kill(fuse_pid, libc::SIGSTOP) }, 0);

    let mut counts = Vec::new();
    for i in 0..20 {
        let body = http_get(port, "/metrics", client_timeout)
            .unwrap_or_else(|e| panic!("scrape {i} with the mount hung did not answer: {e}"));
        assert_eq!(
            sample_value(&body, "node_filesystem_device_error", &mnt_s),
            Some(1.0),
            "scrape {i}: hung mount not marked device_error 1:\n{body}"
        );
        assert!(
            sample_value(&body, "node_filesystem_size_bytes", &mnt_s).is_none(),
            "scrape {i}: hung mount still has a size"
        );
        assert_eq!(
            sample_value(&body, "node_filesystem_device_error", "/"),
            Some(0.0),
            "scrape {i}: root filesystem missing or failing:\n{body}"
        );
        assert!(
            sample_value(&body, "node_filesystem_size_bytes", "/").unwrap_or(0.0) > 0.0,
            "scrape {i}: root filesystem has no size"
        );
        assert_eq!(
            sample_value(&body, "node_filesystem_device_error", &mnt2_s),
            Some(0.0),
            "scrape {i}: the healthy mount after the hung one is not served:\n{body}"
        );
        assert!(
            sample_value(&body, "node_filesystem_size_bytes", &mnt2_s).unwrap_or(0.0) > 0.0,
            "scrape {i}: the healthy mount after the hung one has no size"
        );
        assert!(
            body.contains("node_scrape_collector_success{collector=\"filesystem\"} 1"),
            "scrape {i}: the filesystem collector did not finish within its deadline:\n{body}"
        );
        counts.push(threads(pid));
    }
    // One stuck statfs thread may exist for the mount; it must not be one per scrape. Allow a
    // little slack for the runtime's own pools, far below the 18 extra threads of a leak.
    eprintln!("threads: {counts:?}");
    let baseline = counts[1];
    let last = *counts.last().unwrap();
    assert!(
        last <= baseline + 3,
        "thread count grew across scrapes of a hung mount: {counts:?}"
    );
    assert!(
        counts.iter().max().unwrap() <= &(counts[0] + 4),
        "thread count grew across scrapes of a hung mount: {counts:?}"
    );

    // The daemon continues: the stuck call returns and the mount is healthy again.
    unsafe { libc::kill(fuse_pid, libc::SIGCONT) };
    let t0 = Instant::now();
    loop {
        let body = http_get(port, "/metrics", client_timeout).unwrap();
        if sample_value(&body, "node_filesystem_device_error", &mnt_s) == Some(0.0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "mount not healthy again after SIGCONT:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(guard);
    assert!(!is_mounted(&mnt), "cleanup left {} mounted", mnt.display());
}
