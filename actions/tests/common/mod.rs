//! Helpers for the end-to-end tests: the `hpcmon-actions` daemon (restartable on the same
//! port and journal), its API, simulated BMCs with chassis power control
//! (`scripts/ipmi-sim.sh` with `IPMI_SIM_POWER=1`), FreeIPMI reads, Alertmanager configs
//! and bounded waits. Everything listens on 127.0.0.1; every wait is bounded.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hpcmon_e2e::{free_port, repo_root, require_program, workspace_bin, Daemon};
use serde_json::Value;

/// The daemon, its port, journal and arguments (to restart it identically).
pub struct Actions {
    pub daemon: Option<Daemon>,
    pub port: u16,
    pub dir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub client: reqwest::Client,
    starts: u32,
}

impl Actions {
    /// Writes `policy` into `dir` and starts the daemon with its journal there.
    pub async fn start(
        dir: &Path,
        policy: &str,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Actions {
        Self::start_on(free_port(), dir, policy, extra, env).await
    }

    /// [`Actions::start`] on a given port (a second daemon behind the same webhook URL).
    pub async fn start_on(
        port: u16,
        dir: &Path,
        policy: &str,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Actions {
        std::fs::write(dir.join("policy.yml"), policy).unwrap();
        let mut args = vec![
            format!("--policy.file={}", dir.join("policy.yml").display()),
            format!(
                "--storage.path={}",
                dir.join("journal/journal.db").display()
            ),
            "--slurm.timeout=10s".to_string(),
            "--log.level=info,hpcmon_actions=debug".to_string(),
        ];
        args.extend(extra.iter().cloned());
        let mut a = Actions {
            daemon: None,
            port,
            dir: dir.to_path_buf(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            client: hpcmon_e2e::client(&Default::default()).unwrap(),
            starts: 0,
        };
        a.spawn().await;
        a
    }

    async fn spawn(&mut self) {
        self.starts += 1;
        let log = self.dir.join(format!("actions-{}.log", self.starts));
        let mut cmd = Command::new(workspace_bin("hpcmon-actions"));
        cmd.arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut d = Daemon::spawn_logged("hpcmon-actions", cmd, &log);
        d.wait_http(&self.url("/-/ready"), Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("hpcmon-actions did not start: {e:#}"));
        self.daemon = Some(d);
    }

    /// SIGKILLs the daemon (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        let mut d = self.daemon.take().expect("running");
        d.signal(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.exited().is_none() {
            assert!(Instant::now() < deadline, "hpcmon-actions survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM (a clean shutdown) and waits.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }

    /// Starts it again on the same port, policy and journal.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The webhook URL for Alertmanager.
    pub fn webhook(&self) -> String {
        self.url("/webhook")
    }

    /// Every log of every start, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for i in 1..=self.starts {
            let p = self.dir.join(format!("actions-{i}.log"));
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(60);
            s.push_str(&format!(
                "--- {} ---\n{}\n",
                p.display(),
                lines[from..].join("\n")
            ));
        }
        s
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let r = self.client.post(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// The journal, newest first.
    pub async fn actions(&self) -> Vec<Value> {
        self.get("/api/v1/actions?limit=1000").await["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Actions of `rule`, oldest first.
    pub async fn of_rule(&self, rule: &str) -> Vec<Value> {
        let mut v: Vec<Value> = self
            .actions()
            .await
            .into_iter()
            .filter(|a| a["rule"] == rule)
            .collect();
        v.reverse();
        v
    }

    /// Waits until `pred` holds for the journal; returns it.
    pub async fn wait_journal(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let j = self.actions().await;
            if pred(&j) {
                return j;
            }
            if Instant::now() >= deadline {
                panic!(
                    "journal: {what} not reached within {timeout:?}\n{}\n{}",
                    serde_json::to_string_pretty(&j).unwrap(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One metric sample's value from `/metrics` (`name{labels}` as printed).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let t = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        t.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Actions {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Polls `f` until it returns `Some`, at most `timeout`; panics with `what`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An Alertmanager config routing everything to `url`, grouped by alertname, with a short
/// `repeat_interval` when `repeat` is set (to make Alertmanager replay notifications).
pub fn am_config(url: &str, repeat: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: {repeat}\n\
         receivers:\n  - name: hook\n    webhook_configs:\n      - url: {url:?}\n        send_resolved: true\n"
    )
}

/// Simulated BMCs with chassis power control, stopped on drop.
pub struct Bmcs {
    pub dir: tempfile::TempDir,
    pub base: u16,
    pub n: u16,
}

fn udp_tcp_free(port: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl Bmcs {
    pub fn start(n: u16) -> Bmcs {
        for t in ["ipmi_sim", "sdrcomp", "ipmi-power"] {
            if !Path::new("/usr/sbin").join(t).exists() {
                require_program(t, "ipmi");
            }
        }
        // A free block in the ipmi test range (22800-22999, above the exporter's tests).
        let start = 22800 + (std::process::id() as u16 % 50) * 2;
        let base = (0..100)
            .map(|i| 22800 + (start - 22800 + i * 2 * n) % 190)
            .find(|b| (0..2 * n).all(|i| udp_tcp_free(b + i)))
            .expect("free ports for ipmi_sim");
        let b = Bmcs {
            dir: tempfile::tempdir().unwrap(),
            base,
            n,
        };
        b.script(&["start", &n.to_string()]);
        b
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new(repo_root().join("scripts/ipmi-sim.sh"))
            .args(args)
            .env("IPMI_SIM_DIR", self.dir.path())
            .env("IPMI_SIM_BASE_PORT", self.base.to_string())
            .env("IPMI_SIM_POWER", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ipmi-sim.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `127.0.0.1:PORT` of BMC `i` (1-based).
    pub fn target(&self, i: u16) -> String {
        format!("127.0.0.1:{}", self.base + 2 * (i - 1))
    }

    /// Sends console commands to BMC `i`.
    pub fn console(&self, i: u16, cmds: &[&str]) {
        let mut a = vec!["console".to_string(), i.to_string()];
        a.extend(cmds.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        self.script(&a);
    }

    /// Sets BMC `i`'s inlet temperature sensor (`Inlet Temp`, sensor 4).
    pub fn set_inlet(&self, i: u16, celsius: u8) {
        self.console(i, &[&format!("sensor_set_value 0x20 0 4 {celsius} 1")]);
    }

    /// Chassis power of BMC `i` as FreeIPMI reads it over IPMI-over-LAN.
    pub fn power(&self, i: u16) -> bool {
        let out = Command::new("ipmi-power")
            .args([
                "-h",
                &self.target(i),
                "-u",
                "admin",
                "-p",
                "password",
                "-l",
                "ADMIN",
            ])
            .args(["-D", "LAN_2_0", "-W", "opensesspriv", "--stat"])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        match s.trim().rsplit(':').next().map(str::trim) {
            Some("on") => true,
            Some("off") => false,
            _ => panic!(
                "ipmi-power --stat on BMC {i}: {s} {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Writes the IPMI exporter config (credentials from a password file) and a BMC map
    /// (`nodes[k]` → BMC k+1) into `dir`; returns the daemon flags for them.
    pub fn flags(&self, dir: &Path, nodes: &[&str]) -> Vec<String> {
        let pw = dir.join("bmc.pass");
        std::fs::write(&pw, "password\n").unwrap();
        let cfg = dir.join("ipmi.yml");
        std::fs::write(
            &cfg,
            format!(
                "modules:\n  default:\n    driver: LAN_2_0\n    privilege: admin\n    user: admin\n    password_file: {}\n    workaround_flags: [opensesspriv]\n",
                pw.display()
            ),
        )
        .unwrap();
        let map = dir.join("bmcs.txt");
        let mut m = String::from("# node bmc\n");
        for (k, n) in nodes.iter().enumerate() {
            m.push_str(&format!("{n} {}\n", self.target(k as u16 + 1)));
        }
        std::fs::write(&map, m).unwrap();
        vec![
            format!("--ipmi.config.file={}", cfg.display()),
            format!("--ipmi.bmc-map={}", map.display()),
            "--ipmi.timeout=5s".to_string(),
        ]
    }
}

impl Drop for Bmcs {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/ipmi-sim.sh"))
            .arg("stop")
            .env("IPMI_SIM_DIR", self.dir.path())
            .env("IPMI_SIM_BASE_PORT", self.base.to_string())
            .output();
    }
}

/// `sinfo` views of the cluster.
pub fn partition_state(c: &hpcmon_e2e::SlurmCluster, p: &str) -> String {
    c.run("sinfo", &["-h", "-p", p, "-o", "%a"])
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// (state, reason) of a node as `sinfo -N` prints them.
pub fn node_state(c: &hpcmon_e2e::SlurmCluster, n: &str) -> (String, String) {
    let out = c.run("sinfo", &["-h", "-N", "-n", n, "-o", "%T|%E"]);
    let line = out.lines().next().unwrap_or("").to_string();
    let (s, r) = line.split_once('|').unwrap_or((&line, ""));
    (s.trim().to_string(), r.trim().to_string())
}

/// The journal page's table rows (text).
pub fn rows(dom: &str) -> Vec<Vec<String>> {
    hpcmon_e2e::table_rows(dom, "rows")
}
