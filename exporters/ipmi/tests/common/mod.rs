//! Helpers for the tests against real simulated BMCs: `ipmi_sim` started through the
//! project's `scripts/ipmi-sim.sh`, the exporter binary, a minimal HTTP client and process
//! accounting. Everything listens on 127.0.0.1 in the ipmi port block (22000-22999) or on
//! ports the kernel hands out, and is stopped on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub mod room;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails with a clear message when a tool the tests need is missing.
pub fn require(tools: &[&str]) {
    for t in tools {
        let found = std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .chain([PathBuf::from("/usr/sbin")])
                    .any(|d| d.join(t).is_file())
            })
            .unwrap_or(false);
        assert!(
            found,
            "{t} is not installed: run scripts/install-deps.sh ipmi"
        );
    }
}

static NEXT: AtomicU16 = AtomicU16::new(0);

fn udp_tcp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A base port for `n` simulators (2 ports each) in 22000-22799 whose ports are free.
pub fn sim_ports(n: u16) -> u16 {
    let start = 22000 + (std::process::id() as u16 % 40) * 20;
    for _ in 0..400 {
        let off = NEXT.fetch_add(2 * n, Ordering::SeqCst);
        let base = 22000 + (start - 22000 + off) % 800;
        if base + 2 * n > 22800 {
            continue;
        }
        if (0..2 * n).all(|i| udp_tcp_free(base + i)) {
            return base;
        }
    }
    panic!("no free ports in 22000-22799");
}

/// Simulated BMCs (stopped on drop).
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub base: u16,
    pub n: u16,
}

impl Sim {
    pub fn start(n: u16) -> Sim {
        require(&["ipmi_sim", "sdrcomp"]);
        let dir = tempfile::tempdir().unwrap();
        let base = sim_ports(n);
        let sim = Sim { dir, base, n };
        sim.script(&["start", &n.to_string()]);
        sim
    }

    pub fn script(&self, args: &[&str]) -> String {
        let out = Command::new(repo().join("scripts/ipmi-sim.sh"))
            .args(args)
            .env("IPMI_SIM_DIR", self.dir.path())
            .env("IPMI_SIM_BASE_PORT", self.base.to_string())
            .output()
            .expect("running scripts/ipmi-sim.sh");
        assert!(
            out.status.success(),
            "ipmi-sim.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `HOST:PORT` of BMC `i` (1-based).
    pub fn target(&self, i: u16) -> String {
        format!("127.0.0.1:{}", self.base + 2 * (i - 1))
    }

    pub fn pid(&self, i: u16) -> i32 {
        std::fs::read_to_string(self.dir.path().join(format!("ipmi_sim-{i}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends commands to BMC `i`'s console (e.g. `sensor_set_value 0x20 0 1 95 1`).
    pub fn console(&self, i: u16, cmds: &[&str]) {
        let port = self.base + 2 * (i - 1) + 1;
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("console");
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf); // banner and prompt
        for c in cmds {
            s.write_all(format!("{c}\n").as_bytes()).unwrap();
            let _ = s.read(&mut buf);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/ipmi-sim.sh"))
            .arg("stop")
            .env("IPMI_SIM_DIR", self.dir.path())
            .env("IPMI_SIM_BASE_PORT", self.base.to_string())
            .output();
    }
}

/// A free TCP port on 127.0.0.1 (the harness crate's).
pub use hpcmon_e2e::free_port;

/// The exporter binary, killed on drop; its log (stderr) goes to a file.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Exporter {
    pub fn start(config_yaml: &str, extra: &[&str]) -> Exporter {
        require(&["ipmi-sensors"]);
        Exporter::start_plain(config_yaml, extra)
    }

    /// Starts the exporter without checking for the FreeIPMI tools (SNMP/Modbus tests).
    pub fn start_plain(config_yaml: &str, extra: &[&str]) -> Exporter {
        Exporter::start_env(config_yaml, extra, &[])
    }

    /// Like `start_plain`, with extra environment variables for the exporter.
    pub fn start_env(config_yaml: &str, extra: &[&str], env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ipmi.yml");
        std::fs::write(&cfg, config_yaml).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hpcmon-ipmi-exporter"));
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        // A private temporary SDR cache unless the test names one.
        if !extra.iter().any(|a| a.starts_with("--ipmi.sdr-cache-dir")) {
            cmd.arg(format!(
                "--ipmi.sdr-cache-dir={}",
                dir.path().join("sdr").display()
            ));
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .arg("--log.level=debug")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("exporter binary");
        let e = Exporter { child, port, dir };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "exporter did not listen: {}",
                e.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ipmi.yml")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// GET `path` with a scrape timeout header (seconds).
    pub fn get(&self, path: &str, scrape_timeout: Option<f64>) -> (u16, String) {
        http("GET", self.port, path, scrape_timeout)
    }

    pub fn scrape(&self, target: &str, module: &str, scrape_timeout: f64) -> String {
        let (code, body) = self.get(
            &format!("/ipmi?target={target}&module={module}"),
            Some(scrape_timeout),
        );
        assert_eq!(code, 200, "{body}");
        body
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request (Connection: close); returns status and body. A 20 s read
/// timeout turns a hung server into a failure.
pub fn http(method: &str, port: u16, path: &str, scrape_timeout: Option<f64>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(t) = scrape_timeout {
        req.push_str(&format!("X-Prometheus-Scrape-Timeout-Seconds: {t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("response (server hung?)");
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let code: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    // Chunked bodies: good enough to search in, the chunk sizes are on their own lines.
    (code, body)
}

/// The value of the first sample line starting with `series` (`name{labels}` exactly as
/// exposed).
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// Processes whose parent is `pid`, plus any process whose command line contains `needle`.
pub fn processes(pid: i32, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid: i32 = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if ppid == pid || (!needle.is_empty() && cmd.contains(needle) && !cmd.contains("cargo")) {
            out.push(format!("{name} (ppid {ppid}): {cmd}"));
        }
    }
    out
}

/// A module config for the simulators.
pub fn module_yaml(name: &str, password_file: &Path, collectors: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    user: admin\n    password_file: {}\n    privilege: admin\n    workaround_flags: [opensesspriv]\n    collectors: [{collectors}]\n{extra}",
        password_file.display()
    )
}
