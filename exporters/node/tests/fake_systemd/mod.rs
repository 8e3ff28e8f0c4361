//! A scripted `org.freedesktop.systemd1` on a private `dbus-daemon` bus, for testing the
//! `systemd` collector where no systemd runs as PID 1.
//!
//! [`Bus::start`] runs `dbus-daemon` with a system-bus configuration listening on a socket in
//! a fresh temporary directory; [`Bus::serve`] publishes the manager
//! (`/org/freedesktop/systemd1`: `ListUnits`, `Version`, `SystemState`) and one object per
//! unit at systemd's escaped path, with the `Unit`, `Service`, `Socket`, `Timer` and `Mount`
//! properties the collector (and node_exporter's) reads. Exporters reach it through
//! `DBUS_SYSTEM_BUS_ADDRESS`. A real-systemd run is still owed (see the crate README).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::zvariant::OwnedObjectPath;

/// One unit as the fake systemd lists it.
#[derive(Debug, Clone)]
pub struct FakeUnit {
    pub name: &'static str,
    pub load_state: &'static str,
    pub active_state: &'static str,
    pub sub_state: &'static str,
    /// Service or mount `Type`.
    pub ty: &'static str,
    pub n_restarts: u32,
    pub tasks_current: u64,
    pub tasks_max: u64,
    pub active_enter_usec: u64,
    pub last_trigger_usec: u64,
    /// NAccepted, NConnections, NRefused.
    pub socket: (u32, u32, u32),
    /// Publish only the `Unit` interface: every type-specific property read fails.
    pub broken: bool,
}

impl FakeUnit {
    /// A loaded, active unit with no counters.
    pub const fn new(name: &'static str, active_state: &'static str) -> Self {
        Self {
            name,
            load_state: "loaded",
            active_state,
            sub_state: "running",
            ty: "simple",
            n_restarts: 0,
            tasks_current: u64::MAX,
            tasks_max: u64::MAX,
            active_enter_usec: 0,
            last_trigger_usec: 0,
            socket: (0, 0, 0),
            broken: false,
        }
    }
}

/// systemd's object-path escaping of a unit name (`sshd.service` → `sshd_2eservice`).
pub fn unit_path(name: &str) -> String {
    let mut p = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

struct Manager {
    units: Vec<FakeUnit>,
    version: String,
    state: String,
    /// How long `ListUnits` takes to answer (to test deadlines).
    delay: Duration,
}

type Listed = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn list_units(&self) -> Vec<Listed> {
        std::thread::sleep(self.delay);
        self.units
            .iter()
            .map(|u| {
                (
                    u.name.to_owned(),
                    format!("fake {}", u.name),
                    u.load_state.to_owned(),
                    u.active_state.to_owned(),
                    u.sub_state.to_owned(),
                    String::new(),
                    OwnedObjectPath::try_from(unit_path(u.name)).expect("valid path"),
                    0,
                    String::new(),
                    OwnedObjectPath::try_from("/").expect("valid path"),
                )
            })
            .collect()
    }
    #[zbus(property, name = "Version")]
    fn version(&self) -> String {
        self.version.clone()
    }
    #[zbus(property, name = "SystemState")]
    fn system_state(&self) -> String {
        self.state.clone()
    }
}

struct UnitIface(FakeUnit);
#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl UnitIface {
    #[zbus(property, name = "ActiveEnterTimestamp")]
    fn active_enter_timestamp(&self) -> u64 {
        self.0.active_enter_usec
    }
    #[zbus(property, name = "ActiveState")]
    fn active_state(&self) -> String {
        self.0.active_state.to_owned()
    }
}

struct ServiceIface(FakeUnit);
#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl ServiceIface {
    #[zbus(property, name = "Type")]
    fn type_(&self) -> String {
        self.0.ty.to_owned()
    }
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> u32 {
        self.0.n_restarts
    }
    #[zbus(property, name = "TasksCurrent")]
    fn tasks_current(&self) -> u64 {
        self.0.tasks_current
    }
    #[zbus(property, name = "TasksMax")]
    fn tasks_max(&self) -> u64 {
        self.0.tasks_max
    }
}

struct MountIface(FakeUnit);
#[zbus::interface(name = "org.freedesktop.systemd1.Mount")]
impl MountIface {
    #[zbus(property, name = "Type")]
    fn type_(&self) -> String {
        self.0.ty.to_owned()
    }
}

struct SocketIface(FakeUnit);
#[zbus::interface(name = "org.freedesktop.systemd1.Socket")]
impl SocketIface {
    #[zbus(property, name = "NAccepted")]
    fn n_accepted(&self) -> u32 {
        self.0.socket.0
    }
    #[zbus(property, name = "NConnections")]
    fn n_connections(&self) -> u32 {
        self.0.socket.1
    }
    #[zbus(property, name = "NRefused")]
    fn n_refused(&self) -> u32 {
        self.0.socket.2
    }
}

struct TimerIface(FakeUnit);
#[zbus::interface(name = "org.freedesktop.systemd1.Timer")]
impl TimerIface {
    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> u64 {
        self.0.last_trigger_usec
    }
}

/// A private `dbus-daemon` and, once served, the fake systemd on it.
pub struct Bus {
    daemon: Child,
    _dir: Option<tempfile::TempDir>,
    /// `unix:path=...`, for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    service: Option<zbus::blocking::Connection>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.service.take();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Bus {
    /// Starts `dbus-daemon` on a socket in a new private directory. Panics (the test fails)
    /// if `dbus-daemon` is missing: install it with `scripts/install-deps.sh prom`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut bus = Self::start_in(dir.path());
        bus._dir = Some(dir);
        bus
    }

    /// [`Bus::start`] in the caller's directory `dir` (socket `dir/system_bus_socket`, left
    /// over from an earlier bus or not), so that a bus can be restarted at the same address.
    pub fn start_in(dir: &std::path::Path) -> Self {
        let sock = dir.join("system_bus_socket");
        let _ = std::fs::remove_file(&sock);
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )
        .expect("writing the bus configuration");
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--nosyslog")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start dbus-daemon: {e} (install it with scripts/install-deps.sh prom)"
                )
            });
        let t0 = Instant::now();
        while !sock.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "dbus-daemon never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            daemon,
            _dir: None,
            address: format!("unix:path={}", sock.display()),
            service: None,
        }
    }

    /// Publishes the fake systemd with `units`, `version` and `state`; `ListUnits` answers
    /// after `delay`.
    pub fn serve(&mut self, units: &[FakeUnit], version: &str, state: &str, delay: Duration) {
        let mut b = zbus::blocking::connection::Builder::address(self.address.as_str())
            .expect("bus address")
            .name("org.freedesktop.systemd1")
            .expect("bus name")
            .serve_at(
                "/org/freedesktop/systemd1",
                Manager {
                    units: units.to_vec(),
                    version: version.to_owned(),
                    state: state.to_owned(),
                    delay,
                },
            )
            .expect("manager object");
        for u in units {
            let p = zbus::zvariant::ObjectPath::try_from(unit_path(u.name)).expect("unit path");
            b = b
                .serve_at(p.clone(), UnitIface(u.clone()))
                .expect("unit object");
            if u.broken {
                continue;
            }
            if u.name.ends_with(".service") {
                b = b
                    .serve_at(p.clone(), ServiceIface(u.clone()))
                    .expect("service");
            } else if u.name.ends_with(".mount") {
                b = b.serve_at(p.clone(), MountIface(u.clone())).expect("mount");
            } else if u.name.ends_with(".socket") {
                b = b
                    .serve_at(p.clone(), SocketIface(u.clone()))
                    .expect("socket");
            } else if u.name.ends_with(".timer") {
                b = b.serve_at(p.clone(), TimerIface(u.clone())).expect("timer");
            }
        }
        self.service = Some(b.build().expect("serving the fake systemd"));
    }
}

/// A node's worth of units: services of several types and states, a failed one, an
/// unloaded one, sockets, timers, mounts, slices and a device.
pub fn units() -> Vec<FakeUnit> {
    let mut v = Vec::new();
    let mut sshd = FakeUnit::new("sshd.service", "active");
    sshd.ty = "notify";
    sshd.n_restarts = 2;
    sshd.tasks_current = 3;
    sshd.tasks_max = 4915;
    sshd.active_enter_usec = 1_732_600_000_123_456;
    v.push(sshd);
    let mut slurmd = FakeUnit::new("slurmd.service", "active");
    slurmd.ty = "forking";
    slurmd.tasks_current = 41;
    slurmd.tasks_max = u64::MAX;
    slurmd.active_enter_usec = 1_732_600_100_000_000;
    v.push(slurmd);
    let mut munge = FakeUnit::new("munge.service", "failed");
    munge.sub_state = "failed";
    munge.ty = "forking";
    munge.n_restarts = 5;
    v.push(munge);
    let mut cron = FakeUnit::new("cron.service", "activating");
    cron.sub_state = "start";
    v.push(cron);
    let mut gone = FakeUnit::new("nfs-idmapd.service", "inactive");
    gone.load_state = "not-found";
    gone.sub_state = "dead";
    v.push(gone);
    let mut oneshot = FakeUnit::new("systemd-tmpfiles-clean.service", "inactive");
    oneshot.ty = "oneshot";
    oneshot.sub_state = "dead";
    v.push(oneshot);
    let mut sock = FakeUnit::new("sshd.socket", "active");
    sock.sub_state = "listening";
    sock.socket = (1234, 2, 7);
    sock.active_enter_usec = 1_732_599_990_000_000;
    v.push(sock);
    let mut timer = FakeUnit::new("systemd-tmpfiles-clean.timer", "active");
    timer.sub_state = "waiting";
    timer.last_trigger_usec = 1_732_686_400_500_000;
    v.push(timer);
    let mut never = FakeUnit::new("fstrim.timer", "active");
    never.sub_state = "waiting";
    v.push(never);
    let mut home = FakeUnit::new("home.mount", "active");
    home.ty = "nfs4";
    home.sub_state = "mounted";
    v.push(home);
    v.push(FakeUnit::new("system-getty.slice", "active"));
    v.push(FakeUnit::new("dev-vda1.device", "active"));
    v.push(FakeUnit::new("multi-user.target", "active"));
    // Listed, but its Service object is missing: its property reads fail.
    let mut broken = FakeUnit::new("broken.service", "active");
    broken.broken = true;
    v.push(broken);
    let mut stopping = FakeUnit::new("user@1000.service", "deactivating");
    stopping.sub_state = "stop-sigterm";
    v.push(stopping);
    v
}
