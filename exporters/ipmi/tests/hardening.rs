//! Hardening (issue 13), against real simulated BMCs: odd passwords reach FreeIPMI intact,
//! the SDR cache directory is refused when others could write to it, modules only send
//! their credentials to allowed targets, and threshold series can be turned off.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn password_file(dir: &std::path::Path, name: &str, pw: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{pw}\n")).unwrap();
    p
}

/// Sets BMC user 2's (admin's) password through the BMC itself (ipmi_sim's lan.conf cannot
/// hold a password with a space), logging in with `current`: FreeIPMI's `ipmi-raw` sends
/// Set User Password (netfn App, cmd 0x47; user 2 with the 20-byte flag, operation "set",
/// the password as NUL-padded hex bytes), so no tool parses the password itself.
fn set_admin_password(sim: &Sim, current: &str, new: &str) {
    assert!(new.len() <= 20);
    let mut bytes: Vec<u8> = new.bytes().collect();
    bytes.resize(20, 0);
    let mut args: Vec<String> = ["00", "06", "47", "82", "02"].map(String::from).to_vec();
    args.extend(bytes.iter().map(|b| format!("{b:02x}")));
    let out = Command::new("/usr/sbin/ipmi-raw")
        .args(["-h", &sim.target(1), "-u", "admin", "-p", current])
        .args(["-l", "ADMIN", "-D", "LAN_2_0", "-W", "opensesspriv"])
        .args(&args)
        .output()
        .expect("ipmi-raw");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("rcvd: 47 00"),
        "setting password {new:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn odd_passwords_reach_the_bmc_intact() {
    require(&["ipmi-raw"]);
    let sim = Sim::start(1);
    let t = sim.target(1);
    let e = Exporter::start("", &[]);
    let mut current = "password".to_string();
    for (i, pw) in [
        "pa#ss word",
        "#",
        "quo\"te's \"",
        "back\\slash\\",
        "\\#\"\\\\",
        " lead\ttab ",
        "ünï€ dé#",
    ]
    .iter()
    .enumerate()
    {
        set_admin_password(&sim, &current, pw);
        current = pw.to_string();
        let good = password_file(sim.dir.path(), &format!("good-{i}"), pw);
        // What the old code sent for a password with '#': the part before it.
        let prefix = pw.split('#').next().unwrap();
        let bad = password_file(sim.dir.path(), &format!("prefix-{i}"), prefix);
        std::fs::write(
            e.config_path(),
            format!(
                "modules:\n{}{}",
                module_yaml("good", &good, "chassis", ""),
                module_yaml("prefix", &bad, "chassis", "")
            ),
        )
        .unwrap();
        assert_eq!(
            http("POST", e.port, "/-/reload", None).0,
            200,
            "{}",
            e.log()
        );
        let b = e.scrape(&t, "good", 5.0);
        assert_eq!(
            value(&b, "ipmi_up{collector=\"chassis\"}"),
            Some(1.0),
            "password {pw:?} did not authenticate: {b}\n{}",
            e.log()
        );
        if !pw.contains('#') {
            continue;
        }
        let b = e.scrape(&t, "prefix", 5.0);
        assert_eq!(
            value(&b, "ipmi_up{collector=\"chassis\"}"),
            Some(0.0),
            "prefix {prefix:?} of {pw:?} authenticated: {b}"
        );
    }
    let log = e.log();
    assert!(
        !log.contains("pa#ss"),
        "a password leaked into the log: {log}"
    );
}

/// Runs the exporter with `args`, expecting it to exit (not to serve); returns its status
/// and stderr. Fails if it is still running after 10 s.
fn run_expecting_exit(args: &[String]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hpcmon-ipmi-exporter"))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, std::fs::read_to_string(&log).unwrap_or_default());
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the exporter kept running with {args:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sdr_cache_dir_others_can_write_or_own_is_refused() {
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    // World-writable.
    let open = d.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (st, log) = run_expecting_exit(&[format!("--ipmi.sdr-cache-dir={}", open.display())]);
    assert!(!st.success(), "{log}");
    assert!(
        log.contains(&open.display().to_string()) && log.contains("writable"),
        "{log}"
    );
    // Group-writable.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o770)).unwrap();
    let (st, log) = run_expecting_exit(&[format!("--ipmi.sdr-cache-dir={}", open.display())]);
    assert!(!st.success() && log.contains("writable"), "{log}");
    // Owned by another user (needs root to set up).
    if nix::unistd::geteuid().is_root() {
        let theirs = d.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(
            &theirs,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .unwrap();
        let (st, log) = run_expecting_exit(&[format!("--ipmi.sdr-cache-dir={}", theirs.display())]);
        assert!(!st.success(), "{log}");
        assert!(log.contains("owned by uid 65534"), "{log}");
    }
    // The default is no longer under /tmp.
    let out = Command::new(env!("CARGO_BIN_EXE_hpcmon-ipmi-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("/var/cache/hpcmon-ipmi"), "{help}");
}

#[test]
fn missing_sdr_cache_dir_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(1);
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("new/cache");
    let pw = password_file(sim.dir.path(), "pw", "password");
    let arg = format!("--ipmi.sdr-cache-dir={}", cache.display());
    let e = Exporter::start(
        &format!("modules:\n{}", module_yaml("default", &pw, "ipmi", "")),
        &[&arg],
    );
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let b = e.scrape(&sim.target(1), "default", 5.0);
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(1.0), "{b}");
    // One directory per exact target: these three must not share one.
    let names: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    for t in ["bmc-1", "bmc_1", "bmc:1"] {
        let _ = e.get(&format!("/ipmi?target={t}&module=default"), Some(1.0));
    }
    let n = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(n, 4, "targets differing in '-', '_', ':' share a cache");
}

#[test]
fn module_allow_list_refuses_other_targets_without_contacting_them() {
    let sim = Sim::start(1);
    let t = sim.target(1);
    let pw = password_file(sim.dir.path(), "pw", "password");
    // A "fake BMC": a UDP socket that would receive FreeIPMI's session packets.
    let trap = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_target = trap.local_addr().unwrap().to_string();
    let yaml = format!(
        "modules:\n{}{}{}",
        module_yaml(
            "fenced",
            &pw,
            "chassis",
            &format!("    targets: [\"{t}\", 10.0.0.0/8, bmc01.example.org]\n")
        ),
        module_yaml("cidr", &pw, "chassis", "    targets: [127.0.0.0/8]\n"),
        module_yaml("open", &pw, "chassis", "")
    );
    let e = Exporter::start(&yaml, &[]);
    // Allowed: served.
    let b = e.scrape(&t, "fenced", 5.0);
    assert_eq!(
        value(&b, "ipmi_up{collector=\"chassis\"}"),
        Some(1.0),
        "{b}"
    );
    let b = e.scrape(&t, "cidr", 5.0);
    assert_eq!(
        value(&b, "ipmi_up{collector=\"chassis\"}"),
        Some(1.0),
        "{b}"
    );
    // Not allowed: 403, and nothing was sent to it.
    for target in [
        trap_target.clone(),
        "127.0.0.1".to_string(),
        "bmc01.example.org.evil.net".into(),
    ] {
        let (code, body) = e.get(&format!("/ipmi?target={target}&module=fenced"), Some(2.0));
        assert_eq!(code, 403, "{target}: {body}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = [0u8; 512];
    assert!(
        trap.recv_from(&mut buf).is_err(),
        "a refused target received packets"
    );
    // One warning line for the module with credentials and no allow-list, none for others.
    let log = e.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no targets allow-list"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("open"), "{log}");
}

#[test]
fn threshold_series_can_be_turned_off() {
    let sim = Sim::start(1);
    let t = sim.target(1);
    let pw = password_file(sim.dir.path(), "pw", "password");
    let yaml = format!(
        "modules:\n{}{}",
        module_yaml("with", &pw, "ipmi", ""),
        module_yaml("without", &pw, "ipmi", "    sensor_thresholds: false\n")
    );
    let e = Exporter::start(&yaml, &[]);
    let b = e.scrape(&t, "with", 5.0);
    assert!(b.contains("ipmi_sensor_threshold{"), "{b}");
    let b = e.scrape(&t, "without", 5.0);
    assert!(!b.contains("ipmi_sensor_threshold"), "{b}");
    assert_eq!(
        value(&b, "ipmi_temperature_celsius{id=\"3\",name=\"CPU1 Temp\"}"),
        Some(45.0),
        "{b}"
    );
    // The flag turns them off for every module (a module's own setting wins).
    let e = Exporter::start(&yaml, &["--ipmi.sensor-thresholds=false"]);
    let b = e.scrape(&t, "with", 5.0);
    assert!(!b.contains("ipmi_sensor_threshold"), "{b}");
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(1.0), "{b}");
}
