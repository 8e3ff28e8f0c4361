//! Real machine-room peers for the SNMP and Modbus tests: net-snmp's `snmpd` serving a
//! UPS and an ENTITY-SENSOR probe through the project's `scripts/snmp-sim.sh`, and a
//! pymodbus server through `scripts/modbus-sim.sh`, both on 127.0.0.1 in the room port
//! block (23000-23999), plus hand-made misbehaving peers (silent, garbage, short answers).
//! Stopped on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::repo;

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A port in 23000-23999 free for both UDP and TCP on 127.0.0.1.
pub fn room_port() -> u16 {
    let start = (std::process::id() as u16 % 50) * 20;
    for _ in 0..1000 {
        let p = 23000 + (start + NEXT.fetch_add(1, Ordering::SeqCst)) % 1000;
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port in 23000-23999");
}

fn require_file(path: &str, group: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: run scripts/install-deps.sh {group}"
    );
}

/// net-snmp's snmpd with the simulated UPS and probe (stopped on drop).
pub struct SnmpSim {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl SnmpSim {
    /// Starts snmpd with a v2c community and, if given, an SNMPv3 authPriv (SHA/AES) user.
    pub fn start(community: &str, v3: Option<(&str, &str, &str)>) -> SnmpSim {
        require_file("/usr/sbin/snmpd", "room");
        let dir = tempfile::tempdir().unwrap();
        let port = room_port();
        let sim = SnmpSim { dir, port };
        let mut env = vec![("SNMP_SIM_COMMUNITY", community.to_string())];
        if let Some((u, a, p)) = v3 {
            env.push(("SNMP_SIM_V3_USER", u.into()));
            env.push(("SNMP_SIM_V3_AUTH", a.into()));
            env.push(("SNMP_SIM_V3_PRIV", p.into()));
        }
        sim.script(&["start"], &env);
        sim
    }

    fn script(&self, args: &[&str], env: &[(&str, String)]) -> String {
        let out = Command::new(repo().join("scripts/snmp-sim.sh"))
            .args(args)
            .env("SNMP_SIM_DIR", self.dir.path())
            .env("SNMP_SIM_PORT", self.port.to_string())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("running scripts/snmp-sim.sh");
        assert!(
            out.status.success(),
            "snmp-sim.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Drives the devices: `set(&["mains=off", "minutes=4"])`.
    pub fn set(&self, kv: &[&str]) {
        let mut args = vec!["set"];
        args.extend_from_slice(kv);
        self.script(&args, &[]);
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for SnmpSim {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/snmp-sim.sh"))
            .arg("stop")
            .env("SNMP_SIM_DIR", self.dir.path())
            .env("SNMP_SIM_PORT", self.port.to_string())
            .output();
    }
}

/// The pymodbus server (stopped on drop).
pub struct ModbusSim {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl ModbusSim {
    /// Starts it with `state` (JSON, see scripts/lib/room_modbus_sim.py), or the built-in
    /// template units when `None`.
    pub fn start(state: Option<&str>) -> ModbusSim {
        require_file(
            "/usr/lib/python3/dist-packages/pymodbus/__init__.py",
            "room",
        );
        let dir = tempfile::tempdir().unwrap();
        if let Some(s) = state {
            std::fs::write(dir.path().join("state.json"), s).unwrap();
        }
        let port = room_port();
        let sim = ModbusSim { dir, port };
        let out = Command::new(repo().join("scripts/modbus-sim.sh"))
            .arg("start")
            .env("MODBUS_SIM_DIR", sim.dir.path())
            .env("MODBUS_SIM_PORT", port.to_string())
            .output()
            .expect("running scripts/modbus-sim.sh");
        assert!(
            out.status.success(),
            "modbus-sim.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        sim
    }

    /// Sets registers: `set(1, "input", 0, &[315])`.
    pub fn set(&self, unit: u8, table: &str, addr: u16, values: &[u16]) {
        let mut cmd = Command::new(repo().join("scripts/modbus-sim.sh"));
        cmd.args(["set", &unit.to_string(), table, &addr.to_string()])
            .args(values.iter().map(|v| v.to_string()))
            .env("MODBUS_SIM_DIR", self.dir.path())
            .env("MODBUS_SIM_PORT", self.port.to_string());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ModbusSim {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/modbus-sim.sh"))
            .arg("stop")
            .env("MODBUS_SIM_DIR", self.dir.path())
            .env("MODBUS_SIM_PORT", self.port.to_string())
            .output();
    }
}

/// A UDP peer on 127.0.0.1 that counts datagrams and answers each with `reply` (nothing
/// when `None`: a silent agent whose port is open, so no ICMP "port unreachable" speeds
/// the failure up).
pub struct UdpPeer {
    pub port: u16,
    pub received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpPeer {
    pub fn start(reply: Option<Vec<u8>>) -> UdpPeer {
        let sock = UdpSocket::bind(("127.0.0.1", room_port())).unwrap();
        let port = sock.local_addr().unwrap().port();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !s.load(Ordering::SeqCst) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    r.fetch_add(1, Ordering::SeqCst);
                    if let Some(b) = &reply {
                        let _ = sock.send_to(b, from);
                    }
                }
            }
        });
        UdpPeer {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How the hand-made Modbus TCP peer behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FakeModbus {
    /// Accepts connections and never answers.
    Silent,
    /// Answers register reads with one register fewer than asked (value 7 each).
    Short,
    /// Answers register reads correctly (value = address), after `delay`.
    Slow(Duration),
}

/// A hand-made Modbus TCP peer for the failures pymodbus cannot produce; counts the most
/// connections it had open at once and the most requests it was answering at once.
pub struct FakeModbusPeer {
    pub port: u16,
    pub max_open: Arc<AtomicUsize>,
    pub max_busy: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeModbusPeer {
    pub fn start(mode: FakeModbus) -> FakeModbusPeer {
        let l = TcpListener::bind(("127.0.0.1", room_port())).unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let max_open = Arc::new(AtomicUsize::new(0));
        let max_busy = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, a, st) = (max_open.clone(), accepted.clone(), stop.clone());
        let (mb, b) = (max_busy.clone(), busy.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        let (open, st) = (open.clone(), st.clone());
                        let (mb, b) = (mb.clone(), b.clone());
                        std::thread::spawn(move || {
                            serve(s, mode, &st, &b, &mb);
                            open.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeModbusPeer {
            port,
            max_open,
            max_busy,
            accepted,
            stop,
        }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeModbusPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    mut s: TcpStream,
    mode: FakeModbus,
    stop: &AtomicBool,
    busy: &AtomicUsize,
    max_busy: &AtomicUsize,
) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        // MBAP header (7 bytes) + function + address + count.
        while buf.len() >= 12 {
            let req: Vec<u8> = buf.drain(..12).collect();
            if mode == FakeModbus::Silent {
                continue;
            }
            let func = req[7];
            let addr = u16::from_be_bytes([req[8], req[9]]);
            let count = u16::from_be_bytes([req[10], req[11]]);
            let n = match mode {
                FakeModbus::Short => count.saturating_sub(1),
                _ => count,
            };
            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
            max_busy.fetch_max(now, Ordering::SeqCst);
            if let FakeModbus::Slow(d) = mode {
                std::thread::sleep(d);
            }
            let mut pdu = vec![func, (2 * n) as u8];
            for i in 0..n {
                let v = if mode == FakeModbus::Short {
                    7
                } else {
                    addr + i
                };
                pdu.extend_from_slice(&v.to_be_bytes());
            }
            let mut resp = vec![req[0], req[1], 0, 0];
            resp.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
            resp.push(req[6]);
            resp.extend_from_slice(&pdu);
            // Done with the request before the answer leaves: once the client has it, it may
            // send the next request (on another connection) at once, and that must not be
            // counted as overlapping this one.
            busy.fetch_sub(1, Ordering::SeqCst);
            let sent = s.write_all(&resp);
            if sent.is_err() {
                return;
            }
        }
    }
}

/// Open file descriptors of process `pid` that are sockets.
pub fn socket_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Threads of process `pid`.
pub fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}
