//! Running FreeIPMI tools for a target under a deadline.
//!
//! Every call goes through [`hpcmon_kit::command::run_unchecked`]: its own process group,
//! SIGKILLed and reaped at the deadline. Before a call starts it takes a permit from the
//! global semaphore (`--ipmi.max-concurrency`), waiting at most until the deadline.
//!
//! Remote credentials go to FreeIPMI on its stdin as a configuration file
//! (`--config-file=/dev/stdin` with `username`/`password` lines, quoted and escaped by
//! [`conf_quote`] so `#`, spaces, quotes and backslashes arrive intact): never on argv (visible in
//! `ps`), never on disk. FreeIPMI is also told to give up a little before the deadline
//! (`--session-timeout`), so a dead BMC normally ends with FreeIPMI's own "connection
//! timeout" message rather than a kill.
//!
//! Each target has its own SDR cache directory (one per tool inside it), named by an
//! injective encoding of the exact target string; every directory is checked to be ours and
//! not writable by group or others before FreeIPMI is pointed at it. A stale cache ("out of date", which every
//! BMC whose SDR repository changed produces) is detected in the tool's error output and the
//! call is retried once with `--sdr-cache-recreate`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use hpcmon_kit::command::{run_unchecked, Cmd, CommandError};
use tokio::sync::Semaphore;

use crate::config::Module;

/// State shared by every scrape: the session semaphore, the busy set and paths.
#[derive(Debug)]
pub struct Runtime {
    /// Caps concurrent FreeIPMI processes (BMC sessions) over all targets.
    pub sessions: Arc<Semaphore>,
    max_sessions: usize,
    /// (target, collector) pairs with a call in progress.
    busy: Mutex<HashSet<String>>,
    /// Root of the per-target SDR cache directories.
    pub cache_root: PathBuf,
    /// Directory of the FreeIPMI binaries; empty: search `PATH`.
    pub freeipmi_path: PathBuf,
    /// Sensor/SEL state interpretation files to pass instead of FreeIPMI's system ones.
    pub interpret: Interpret,
    /// `--ipmi.sensor-thresholds`: report `ipmi_sensor_threshold` unless a module says.
    pub sensor_thresholds: bool,
    /// What collectors remember about a target between scrapes, by (target, key).
    memo: Mutex<Memo>,
    /// Per-target locks held while an SDR cache is built: the BMC's SDR reservation is
    /// shared, and two concurrent builds fail ("ipmi_sdr_cache_create: internal IPMI error").
    sdr_build: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// (target, key) → (when, value).
type Memo = HashMap<(String, &'static str), (Instant, String)>;

/// Most remembered (target, key) entries; beyond it the memo starts over (targets come
/// from query parameters, so the map must stay bounded).
const MEMO_MAX: usize = 20_000;

/// FreeIPMI reads its sensor and SEL state interpretation files
/// (`/etc/freeipmi/freeipmi_interpret_{sensor,sel}.conf`, ~60 KB each) one byte per
/// `read(2)` on every run, which costs ~30 ms of CPU per call. When a file has no active
/// line (Debian ships them fully commented: the built-in defaults), pointing FreeIPMI at
/// `/dev/null` gives the same states for free; a site that customised a file keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpret {
    /// `--sensor-state-config-file` for ipmi-sensors, if overridden.
    pub sensor: Option<PathBuf>,
    /// `--event-state-config-file` for ipmi-sel, if overridden.
    pub sel: Option<PathBuf>,
}

/// Whether a FreeIPMI configuration file is absent or only comments and blank lines.
pub fn only_defaults(path: &Path) -> bool {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

impl Interpret {
    /// Decides from the system files under `etc` (normally `/etc/freeipmi`).
    pub fn detect(etc: &Path) -> Interpret {
        let pick = |f: &str| only_defaults(&etc.join(f)).then(|| PathBuf::from("/dev/null"));
        Interpret {
            sensor: pick("freeipmi_interpret_sensor.conf"),
            sel: pick("freeipmi_interpret_sel.conf"),
        }
    }
}

/// Marks (target, collector) busy until dropped.
pub struct BusyGuard<'a> {
    rt: &'a Runtime,
    key: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.rt.busy.lock() {
            b.remove(&self.key);
        }
    }
}

impl Runtime {
    /// A runtime allowing `max_sessions` concurrent FreeIPMI processes.
    pub fn new(max_sessions: usize, cache_root: PathBuf, freeipmi_path: PathBuf) -> Self {
        Runtime {
            sessions: Arc::new(Semaphore::new(max_sessions.max(1))),
            max_sessions: max_sessions.max(1),
            busy: Mutex::new(HashSet::new()),
            cache_root,
            freeipmi_path,
            interpret: Interpret::detect(Path::new("/etc/freeipmi")),
            sensor_thresholds: true,
            memo: Mutex::new(HashMap::new()),
            sdr_build: Mutex::new(HashMap::new()),
        }
    }

    fn sdr_build_lock(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.sdr_build.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MEMO_MAX {
            m.retain(|_, l| Arc::strong_count(l) > 1);
        }
        m.entry(target.to_string()).or_default().clone()
    }

    /// A value remembered for (`target`, `key`) less than `max_age` ago.
    pub fn recall(&self, target: &str, key: &'static str, max_age: Duration) -> Option<String> {
        let m = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(target.to_string(), key))
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `value` for (`target`, `key`).
    pub fn remember(&self, target: &str, key: &'static str, value: String) {
        let mut m = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert((target.to_string(), key), (Instant::now(), value));
    }

    /// Forgets (`target`, `key`).
    pub fn forget(&self, target: &str, key: &'static str) {
        let mut m = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&(target.to_string(), key));
    }

    /// Claims (target, collector); `None` while a previous call for it is still running.
    pub fn claim(&self, target: &str, collector: &str) -> Option<BusyGuard<'_>> {
        let key = format!("{target}\u{0}{collector}");
        let mut b = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        b.insert(key.clone()).then(|| BusyGuard { rt: self, key })
    }

    fn program(&self, name: &str) -> PathBuf {
        if self.freeipmi_path.as_os_str().is_empty() {
            PathBuf::from(name)
        } else {
            self.freeipmi_path.join(name)
        }
    }
}

/// What to talk to: the local BMC (in-band) or a remote one, with its module.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST[:PORT]`, or `None` for the local BMC.
    pub host: Option<String>,
    /// Settings and credentials.
    pub module: Arc<Module>,
}

/// Checks a `target` parameter: a host name or IPv4 address with an optional port. Rejects
/// anything FreeIPMI would read as an option or as a host range (`node[1-4]`, `a,b`).
pub fn valid_host(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 255
        && !t.starts_with('-')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

impl Target {
    /// The name used in logs and for the busy set: the host, or `local`.
    pub fn label(&self) -> &str {
        self.host.as_deref().unwrap_or("local")
    }

    /// This target's SDR cache directory (created 0700 on first use): `local` for the
    /// in-band BMC, `h-` and the exact target string percent-encoded (letters, digits, `.`,
    /// `-`, `_` kept) for a remote one. The encoding is injective, so no two targets share
    /// a cache, and the prefix keeps `.`/`..` from naming anything but a child.
    pub fn cache_dir(&self, rt: &Runtime) -> PathBuf {
        let Some(host) = &self.host else {
            return rt.cache_root.join("local");
        };
        let mut name = String::from("h-");
        for b in host.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        rt.cache_root.join(name)
    }
}

/// The default `--ipmi.sdr-cache-dir`.
pub const DEFAULT_SDR_CACHE_DIR: &str = "/var/cache/hpcmon-ipmi";

/// Creates `p` (mode 0700) if missing, then checks that it is a directory owned by this
/// process's effective user that neither group nor others can write: FreeIPMI trusts the
/// SDR caches in it, so a directory someone else can write to would let them forge the
/// records that say how to read every sensor. `p` itself may be a symbolic link only if
/// the link belongs to us or to root.
pub fn ensure_private_dir(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if std::fs::symlink_metadata(p).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
            .map_err(|e| anyhow!("creating SDR cache directory {}: {e}", p.display()))?;
    }
    let euid = nix::unistd::geteuid().as_raw();
    let link = std::fs::symlink_metadata(p)
        .map_err(|e| anyhow!("SDR cache directory {}: {e}", p.display()))?;
    if link.file_type().is_symlink() && link.uid() != euid && link.uid() != 0 {
        bail!(
            "SDR cache directory {} is a symbolic link owned by uid {}, not by uid {euid} (this process) or root; refusing to use it",
            p.display(),
            link.uid()
        );
    }
    let md =
        std::fs::metadata(p).map_err(|e| anyhow!("SDR cache directory {}: {e}", p.display()))?;
    if !md.is_dir() {
        bail!("SDR cache directory {} is not a directory", p.display());
    }
    if md.uid() != euid {
        bail!(
            "SDR cache directory {} is owned by uid {}, not by uid {euid} (this process); refusing to use it (remove it, or chown it and chmod it 0700)",
            p.display(),
            md.uid()
        );
    }
    if md.mode() & 0o022 != 0 {
        bail!(
            "SDR cache directory {} is group- or world-writable (mode {:o}); refusing to use it (chmod 0700 it)",
            p.display(),
            md.mode() & 0o7777
        );
    }
    Ok(())
}

fn ensure_dir(p: &Path) -> anyhow::Result<()> {
    ensure_private_dir(p)
}

/// One value for FreeIPMI's configuration-file format: in double quotes (which keep
/// whitespace), with `\`, `#` and `"` escaped by a backslash (the only escapes it knows;
/// an unescaped `#` starts a comment even inside quotes). Newlines, carriage returns and NUL
/// cannot be carried; the configuration refuses them.
pub fn conf_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if matches!(c, '\\' | '#' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether FreeIPMI has written an SDR cache under `dir` (`.freeipmi/sdr-cache/*`).
fn cache_populated(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(".freeipmi/sdr-cache"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Whether FreeIPMI's error says the SDR cache must be rebuilt.
pub fn stale_sdr_cache(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("out of date")
        || s.contains("sdr_cache_create")
        || (s.contains("sdr cache")
            && (s.contains("invalid") || s.contains("corrupt") || s.contains("flush")))
}

/// Options that say which BMC and how (not the tool's own options).
fn target_args(t: &Target, remaining: Duration) -> (Vec<String>, Option<Vec<u8>>) {
    let m = &t.module;
    let mut a = Vec::new();
    if !m.driver.is_empty() {
        a.push(format!("--driver-type={}", m.driver));
    }
    if !m.workaround_flags.is_empty() {
        a.push(format!(
            "--workaround-flags={}",
            m.workaround_flags.join(",")
        ));
    }
    let Some(host) = &t.host else {
        return (a, None);
    };
    // Let FreeIPMI give up shortly before our deadline (and retransmit within it).
    let session_ms = (remaining.as_millis() as u64 * 9 / 10).clamp(200, 60_000);
    let retrans_ms = (session_ms / 4).clamp(50, 1000);
    a.push(format!("--hostname={host}"));
    a.push(format!("--privilege-level={}", m.privilege));
    a.push(format!("--session-timeout={session_ms}"));
    a.push(format!("--retransmission-timeout={retrans_ms}"));
    // Credentials through stdin, as FreeIPMI configuration-file lines.
    a.push("--config-file=/dev/stdin".into());
    let mut conf = String::new();
    if !m.user.is_empty() {
        conf.push_str(&format!("username {}\n", conf_quote(&m.user)));
    }
    if !m.password.expose().is_empty() {
        conf.push_str(&format!("password {}\n", conf_quote(m.password.expose())));
    }
    (a, Some(conf.into_bytes()))
}

/// Runs FreeIPMI's `program` with `args` against `t`, within `deadline`. With `sdr`, the
/// target's SDR cache is used (and rebuilt once if stale). Returns stdout; a non-zero exit
/// is an error carrying FreeIPMI's first stderr line.
pub async fn run_tool(
    rt: &Runtime,
    t: &Target,
    program: &str,
    args: &[&str],
    sdr: bool,
    deadline: Instant,
) -> anyhow::Result<String> {
    let wait = deadline.saturating_duration_since(Instant::now());
    let _permit = match tokio::time::timeout(wait, rt.sessions.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => bail!("session semaphore closed"),
        Err(_) => bail!(
            "no BMC session slot free before the deadline (--ipmi.max-concurrency={})",
            rt.max_sessions
        ),
    };
    let mut recreate = false;
    loop {
        let mut sdr_args = Vec::new();
        let mut _building = None;
        if sdr {
            // One cache per (target, tool): the target's collectors run concurrently and two
            // FreeIPMI processes must not build the same cache file at once.
            let target_dir = t.cache_dir(rt);
            ensure_dir(&target_dir)?;
            let dir = target_dir.join(program);
            ensure_dir(&dir)?;
            if recreate || !cache_populated(&dir) {
                let lock = rt.sdr_build_lock(t.label());
                let wait = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(wait, lock.lock_owned()).await {
                    Ok(g) => _building = Some(g),
                    Err(_) => bail!(
                        "deadline passed while another SDR cache build for {} ran",
                        t.label()
                    ),
                }
            }
            sdr_args.push(format!("--sdr-cache-directory={}", dir.display()));
            sdr_args.push("--quiet-cache".to_string());
            if recreate {
                sdr_args.push("--sdr-cache-recreate".to_string());
            }
        }
        // (after any wait for the SDR lock: the time left is what the tool gets)
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            bail!("deadline passed before {program} could start");
        }
        let (targs, stdin) = target_args(t, remaining);
        let mut cmd = Cmd::new(rt.program(program)).args(targs).args(sdr_args);
        match program {
            "ipmi-sensors" | "ipmimonitoring" => {
                if let Some(f) = &rt.interpret.sensor {
                    cmd = cmd.arg(format!("--sensor-state-config-file={}", f.display()));
                }
            }
            "ipmi-sel" if args.contains(&"--output-event-state") => {
                if let Some(f) = &rt.interpret.sel {
                    cmd = cmd.arg(format!("--event-state-config-file={}", f.display()));
                }
            }
            _ => {}
        }
        cmd = cmd.args(args.iter().copied());
        if let Some(s) = stdin {
            cmd = cmd.stdin(s);
        }
        let out = match run_unchecked(&cmd, remaining).await {
            Ok(o) => o,
            Err(CommandError::Timeout { timeout, .. }) => bail!(
                "{program} did not finish within {:.3}s; its process group was killed",
                timeout.as_secs_f64()
            ),
            Err(e) => return Err(e.into()),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        if sdr && !recreate && stale_sdr_cache(&stderr) {
            tracing::info!(
                target = t.label(),
                program,
                "SDR cache out of date; rebuilding it"
            );
            recreate = true;
            continue;
        }
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(no error output)");
        let first: String = first.chars().take(300).collect();
        bail!("{program} failed ({}): {first}", out.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Module, Secret};

    fn module() -> Arc<Module> {
        let mut m = Module::local_default();
        m.driver = "LAN_2_0".into();
        m.user = "admin".into();
        m.workaround_flags = vec!["opensesspriv".into()];
        std::env::set_var("HPCMON_IPMI_UNIT_PW", "s3cret-unit");
        m.password =
            crate::config::Config::parse("modules:\n  x:\n    password_env: HPCMON_IPMI_UNIT_PW\n")
                .unwrap()
                .modules["x"]
                .password
                .clone();
        let _ = Secret::default();
        Arc::new(m)
    }

    #[test]
    fn remote_args_keep_the_password_off_argv() {
        let t = Target {
            host: Some("127.0.0.1:623".into()),
            module: module(),
        };
        let (args, stdin) = target_args(&t, Duration::from_secs(2));
        let pw = t.module.password.expose().to_string();
        assert!(args.iter().all(|a| !a.contains(&pw)));
        assert!(args.contains(&"--hostname=127.0.0.1:623".to_string()));
        assert!(args.contains(&"--session-timeout=1800".to_string()));
        assert!(args.contains(&"--workaround-flags=opensesspriv".to_string()));
        let stdin = String::from_utf8(stdin.unwrap()).unwrap();
        assert_eq!(stdin, "username \"admin\"\npassword \"s3cret-unit\"\n");
        // Local: no host, no credentials.
        let l = Target {
            host: None,
            module: Arc::new(Module::local_default()),
        };
        let (args, stdin) = target_args(&l, Duration::from_secs(2));
        assert!(args.is_empty() && stdin.is_none());
    }

    #[test]
    fn host_validation() {
        assert!(valid_host("127.0.0.1:22000"));
        assert!(valid_host("bmc-node01.example.org"));
        assert!(!valid_host("-h"));
        assert!(!valid_host("node[1-4]"));
        assert!(!valid_host("a,b"));
        assert!(!valid_host("a b"));
        assert!(!valid_host(""));
    }

    #[test]
    fn interpretation_files() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            Interpret::detect(d.path()),
            Interpret {
                sensor: Some("/dev/null".into()),
                sel: Some("/dev/null".into())
            }
        );
        std::fs::write(
            d.path().join("freeipmi_interpret_sensor.conf"),
            "# c\n\n  # x\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("freeipmi_interpret_sel.conf"),
            "# site rule\nIPMI_Power_Supply_Power_Supply_Failure_Detected Warning\n",
        )
        .unwrap();
        let i = Interpret::detect(d.path());
        assert_eq!(i.sensor, Some("/dev/null".into()));
        assert_eq!(i.sel, None);
    }

    #[test]
    fn stale_cache_messages() {
        assert!(stale_sdr_cache("SDR Cache '/x/sdr-cache-vm.127.0.0.1:22900' out of date: Please flush the cache and regenerate it"));
        assert!(stale_sdr_cache("ipmi-sensors: SDR Cache invalid"));
        assert!(stale_sdr_cache(
            "ipmi_sdr_cache_create: internal IPMI error"
        ));
        assert!(!stale_sdr_cache("ipmi-sensors: password invalid"));
        assert!(!stale_sdr_cache("ipmi-sensors: connection timeout"));
    }

    #[test]
    fn busy_claims() {
        let rt = Runtime::new(2, PathBuf::from("/tmp"), PathBuf::new());
        let g = rt.claim("h", "ipmi").unwrap();
        assert!(rt.claim("h", "ipmi").is_none());
        assert!(rt.claim("h", "sel").is_some());
        drop(g);
        assert!(rt.claim("h", "ipmi").is_some());
        let t = Target {
            host: Some("10.0.0.1:623".into()),
            module: module(),
        };
        assert_eq!(t.cache_dir(&rt), PathBuf::from("/tmp/h-10.0.0.1%3A623"));
    }

    #[test]
    fn cache_dirs_are_one_per_exact_target() {
        let rt = Runtime::new(2, PathBuf::from("/c"), PathBuf::new());
        let dir = |h: Option<&str>| {
            Target {
                host: h.map(str::to_string),
                module: module(),
            }
            .cache_dir(&rt)
        };
        let all = [
            dir(Some("bmc-1")),
            dir(Some("bmc_1")),
            dir(Some("bmc:1")),
            dir(Some("bmc.1")),
            dir(Some("local")),
            dir(None),
            dir(Some("..")),
            dir(Some(".")),
        ];
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.parent(), Some(Path::new("/c")), "{a:?}");
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn odd_credentials_are_quoted_for_freeipmi() {
        std::env::set_var("HPCMON_IPMI_ODD_PW", "p#a s\"b\\c ü\t");
        let mut m = crate::config::Config::parse(
            "modules:\n  x:\n    user: 'ad#m in'\n    password_env: HPCMON_IPMI_ODD_PW\n",
        )
        .unwrap()
        .modules["x"]
            .clone();
        m.workaround_flags.clear();
        let t = Target {
            host: Some("127.0.0.1:623".into()),
            module: Arc::new(m),
        };
        let (_, stdin) = target_args(&t, Duration::from_secs(2));
        assert_eq!(
            String::from_utf8(stdin.unwrap()).unwrap(),
            "username \"ad\\#m in\"\npassword \"p\\#a s\\\"b\\\\c ü\t\"\n"
        );
    }
}
