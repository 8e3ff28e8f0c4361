//! A stalled disk must not freeze the bridge (issue 11).
//!
//! The SQLite database lives on a FUSE mount (`bindfs -f SRC MNT`, Debian package `bindfs`,
//! group `fuse` in `scripts/deps/`) whose daemon is then stopped with SIGSTOP, so that every
//! filesystem call on the mount blocks in the kernel. Before the fix, `/metrics` called
//! `std::fs::metadata` on an async worker and after a scrape or two `/-/healthy` and the webhook
//! hung; `/-/ready` stayed 200 because `SELECT 1` never touches the disk. Now every endpoint
//! answers (generous client timeouts, no duration assertion), readiness says 503 because no
//! commit finishes, the webhook answers 503 — and once the disk is back, the write that was
//! waiting commits (it was not cancelled) and readiness returns.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{payload, wh_alert, Bridge};
use serde_json::json;

fn require(program: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{program}` is missing: install it with `scripts/install-deps.sh fuse`");
}

fn is_mounted(mnt: &Path) -> bool {
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

/// Continues the FUSE daemon when dropped: declared after the bridge, so that it is dropped
/// first — a process blocked on the stopped mount could not be reaped, and while the daemon is
/// stopped every sync(2) on the machine waits for it. Keep the stop window short.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// The prefix of this test's directories under /tmp: `hpcmon-ab-stall-PID-…`, so that a later
/// run can tell a leftover of a dead run from a mount of a live one.
const PREFIX: &str = "hpcmon-ab-stall-";

/// Lazily unmounts `mnt` (`fusermount -u -z`: detaches it even while something is blocked on it).
fn unmount(mnt: &Path) {
    let _ = Command::new("fusermount")
        .args(["-u", "-z"])
        .arg(mnt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes the mounts (and directories) that earlier runs of this test left behind when they
/// were killed (their bindfs died with them: `PR_SET_PDEATHSIG`, so such a mount answers
/// ENOTCONN rather than hanging, but it would stay listed until unmounted).
fn sweep_leftovers() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for l in mounts.lines() {
        let Some(mnt) = l.split(' ').nth(1) else {
            continue;
        };
        let Some(rest) = mnt
            .strip_prefix("/tmp/")
            .and_then(|r| r.strip_prefix(PREFIX))
        else {
            continue;
        };
        let pid: i32 = rest
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid > 0 && Path::new(&format!("/proc/{pid}")).exists() {
            continue; // a live run's mount
        }
        let mnt = Path::new(mnt);
        unmount(mnt);
        if let Some(top) = mnt
            .ancestors()
            .find(|a| a.parent() == Some(Path::new("/tmp")))
        {
            if !is_mounted(mnt) {
                let _ = std::fs::remove_dir_all(top);
            }
        }
    }
}

/// The FUSE mount: continued, unmounted and its daemon stopped whatever happens — on drop
/// (also while unwinding from a failed assertion), by a watchdog if the stop window lasts
/// too long, and by the kernel if this test process dies (the daemon gets SIGKILL then, even
/// when stopped, and the mount is swept by the next run).
struct Mount {
    fuse: Child,
    mnt: PathBuf,
    done: Arc<AtomicBool>,
}

/// Longest the daemon stays stopped, whatever the test does.
const MAX_STALL: Duration = Duration::from_secs(90);

impl Mount {
    fn start(bindfs: &Path, src: &Path, mnt: &Path) -> Mount {
        let mut cmd = Command::new(bindfs);
        cmd.arg("-f")
            .arg(src)
            .arg(mnt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Mount {
            fuse: cmd.spawn().expect("start bindfs"),
            mnt: mnt.to_path_buf(),
            done: Arc::new(AtomicBool::new(false)),
        }
    }
    fn stop(&self) {
        unsafe { libc::kill(self.fuse.id() as i32, libc::SIGSTOP) };
        let (pid, done) = (self.fuse.id() as i32, self.done.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while t0.elapsed() < MAX_STALL {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if !done.load(Ordering::SeqCst) {
                eprintln!("stall test: the disk was stopped for {MAX_STALL:?}; continuing it");
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        });
    }
    fn cont(&self) {
        unsafe { libc::kill(self.fuse.id() as i32, libc::SIGCONT) };
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.cont();
        unmount(&self.mnt);
        // bindfs exits by itself once unmounted; kill it if it does not.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.fuse.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.fuse.kill();
        let _ = self.fuse.wait();
        self.done.store(true, Ordering::SeqCst);
        if is_mounted(&self.mnt) {
            // Still listed (e.g. the daemon was killed first): unmount again.
            unmount(&self.mnt);
        }
    }
}

/// GET with a generous timeout: (status, body), or the error.
async fn get(c: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = c
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let s = r.status().as_u16();
    Ok((s, r.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_disk_does_not_freeze_the_bridge_sqlite() {
    let bindfs = require("bindfs");
    require("fusermount");
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: this test needs FUSE"
    );
    sweep_leftovers();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .tempdir_in("/tmp")
        .unwrap();
    let (src, mnt) = (tmp.path().join("src"), tmp.path().join("mnt"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = Mount::start(&bindfs, &src, &mnt);
    let t0 = Instant::now();
    while !is_mounted(&mnt) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "bindfs did not mount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The bridge on the mount (a SQLite backend whose directory is the mount).
    let dir = tempfile::TempDir::new_in(&mnt).unwrap();
    let be = common::Backend::Sqlite(dir);
    let bridge = Bridge::start(&be, &["--storage.timeout=2s"]).await;
    let _resume = Resume(mount.fuse.id());
    let c = hpcmon_e2e::client(&Default::default()).unwrap();
    let body = |fp: &str| {
        payload(
            "firing",
            vec![wh_alert(
                fp,
                json!({"alertname": "Stall", "node": fp}),
                "x",
                "2026-01-01T00:00:00Z",
                None,
            )],
        )
        .to_string()
    };
    assert_eq!(bridge.post(body("before")).await.0, 200);
    assert_eq!(get(&c, &bridge.url("/-/ready")).await.unwrap().0, 200);

    mount.stop();
    // Let the kernel's cached attributes expire, so that stat() reaches the stopped daemon.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for i in 0..3 {
        let (s, m) = get(&c, &bridge.url("/metrics")).await.unwrap_or_else(|e| {
            panic!(
                "scrape {i} did not answer: {e}\n{}",
                bridge.daemon.log_tail(20)
            )
        });
        assert_eq!(s, 200);
        assert!(m.contains("alert_bridge_storage_up 0"), "scrape {i}: {m}");
        let (s, _) = get(&c, &bridge.url("/-/healthy"))
            .await
            .unwrap_or_else(|e| panic!("/-/healthy hung after scrape {i}: {e}"));
        assert_eq!(s, 200);
    }
    let (s, why) = get(&c, &bridge.url("/-/ready")).await.unwrap();
    assert_eq!(s, 503, "ready while no commit can finish: {why}");
    // The webhook answers (503: not committed in time) instead of hanging.
    let r = c
        .post(bridge.url("/webhook"))
        .body(body("during"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the webhook answers during the stall");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(get(&c, &bridge.url("/-/healthy")).await.unwrap().0, 200);

    mount.cont();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = get(&c, &bridge.url("/-/ready")).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready again after the disk came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The write that was waiting on the disk was not cancelled: it committed.
    bridge
        .wait_for("alertname=Stall", Duration::from_secs(30), |r| r.len() == 2)
        .await;
    drop(bridge);
    drop(mount);
    assert!(!is_mounted(&mnt), "{} is still mounted", mnt.display());
}
