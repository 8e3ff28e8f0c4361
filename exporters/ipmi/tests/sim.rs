//! The exporter against real simulated BMCs (OpenIPMI `ipmi_sim` over IPMI-over-LAN on
//! 127.0.0.1, read with the real FreeIPMI tools): values, state changes made through the
//! simulator's console, SEL events, a dead target, a stopped (slow) BMC, a wrong password,
//! a stale SDR cache and configuration reloads.

mod common;

use std::time::{Duration, Instant};

use common::*;

const ALL: &str = "ipmi, dcmi, chassis, bmc, sel, bmc-watchdog";

fn password_file(dir: &std::path::Path, pw: &str) -> std::path::PathBuf {
    let p = dir.join(format!("pw-{}", pw.len()));
    std::fs::write(&p, format!("{pw}\n")).unwrap();
    p
}

#[test]
fn values_state_changes_and_sel_events() {
    let sim = Sim::start(1);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!("modules:\n{}", module_yaml("default", &pw, ALL, "")),
        &[],
    );
    let t = sim.target(1);

    let b = e.scrape(&t, "default", 5.0);
    for (series, want) in [
        ("ipmi_up{collector=\"ipmi\"}", 1.0),
        ("ipmi_up{collector=\"chassis\"}", 1.0),
        ("ipmi_up{collector=\"bmc\"}", 1.0),
        ("ipmi_up{collector=\"sel\"}", 1.0),
        ("ipmi_up{collector=\"bmc-watchdog\"}", 1.0),
        // ipmi_sim has no DCMI: that collector fails, the rest is served.
        ("ipmi_up{collector=\"dcmi\"}", 0.0),
        ("ipmi_scrape_collector_success{collector=\"dcmi\"}", 0.0),
        (
            "ipmi_temperature_celsius{id=\"3\",name=\"CPU1 Temp\"}",
            45.0,
        ),
        ("ipmi_temperature_state{id=\"3\",name=\"CPU1 Temp\"}", 0.0),
        (
            "ipmi_temperature_celsius{id=\"6\",name=\"Inlet Temp\"}",
            24.0,
        ),
        ("ipmi_fan_speed_rpm{id=\"4\",name=\"Fan1\"}", 4800.0),
        ("ipmi_voltage_volts{id=\"5\",name=\"12V Rail\"}", 12.0),
        (
            "ipmi_sensor_state{id=\"7\",name=\"PSU1 Status\",type=\"Power Supply\"}",
            0.0,
        ),
        (
            "ipmi_sensor_threshold{id=\"3\",name=\"CPU1 Temp\",level=\"upper_critical\"}",
            90.0,
        ),
        (
            "ipmi_sensor_threshold{id=\"4\",name=\"Fan1\",level=\"lower_critical\"}",
            500.0,
        ),
        (
            "ipmi_sensor_threshold{id=\"5\",name=\"12V Rail\",level=\"upper_critical\"}",
            13.2,
        ),
        ("ipmi_chassis_power_state", 0.0),
        ("ipmi_sel_logs_count", 0.0),
        ("ipmi_sel_free_space_bytes", 16000.0),
        ("ipmi_sel_events_count{state=\"critical\"}", 0.0),
        ("ipmi_bmc_watchdog_timer_state", 0.0),
    ] {
        assert_eq!(
            value(&b, series),
            Some(want),
            "{series} in\n{b}\n{}",
            e.log()
        );
    }
    assert!(b.contains("ipmi_bmc_info{firmware_revision=\"9.08\",manufacturer_id=\"MontaVista Software, Inc. (4753)\",system_firmware_version=\"N/A\"} 1"), "{b}");

    // CPU to 95 C (critical), fan to 8*50 = 400 RPM (below lower critical), PSU failure bit;
    // each with an event, which the simulated BMC logs in its SEL.
    sim.console(
        1,
        &[
            "sensor_set_value 0x20 0 1 95 1",
            "sensor_set_value 0x20 0 2 8 1",
            "sensor_set_bit 0x20 0 5 1 1 1",
        ],
    );
    let b = e.scrape(&t, "default", 5.0);
    for (series, want) in [
        (
            "ipmi_temperature_celsius{id=\"3\",name=\"CPU1 Temp\"}",
            95.0,
        ),
        ("ipmi_temperature_state{id=\"3\",name=\"CPU1 Temp\"}", 2.0),
        ("ipmi_fan_speed_rpm{id=\"4\",name=\"Fan1\"}", 400.0),
        ("ipmi_fan_speed_state{id=\"4\",name=\"Fan1\"}", 2.0),
        (
            "ipmi_sensor_state{id=\"7\",name=\"PSU1 Status\",type=\"Power Supply\"}",
            2.0,
        ),
        ("ipmi_temperature_state{id=\"6\",name=\"Inlet Temp\"}", 0.0),
    ] {
        assert_eq!(
            value(&b, series),
            Some(want),
            "{series} in\n{b}\n{}",
            e.log()
        );
    }
    // The BMC without DCMI was not asked again: the failure is the remembered one.
    assert_eq!(value(&b, "ipmi_up{collector=\"dcmi\"}"), Some(0.0), "{b}");
    assert!(
        e.log().contains("remembered; asked again every 600s"),
        "{}",
        e.log()
    );
    // Upper non-critical + upper critical (CPU), lower non-critical + lower critical (fan),
    // power supply failure.
    assert_eq!(value(&b, "ipmi_sel_logs_count"), Some(5.0), "{b}");
    assert_eq!(
        value(&b, "ipmi_sel_events_count{state=\"critical\"}"),
        Some(3.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "ipmi_sel_events_count{state=\"warning\"}"),
        Some(2.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "ipmi_sel_free_space_bytes"),
        Some(16000.0 - 5.0 * 16.0),
        "{b}"
    );

    // Inlet to 36 C: above its upper non-critical threshold (35). FreeIPMI's default state
    // interpretation (sensor_state.conf) calls that Nominal, exactly as ipmi_exporter would
    // report it; ipmi_sensor_threshold lets rules see the crossing anyway. 41 C is critical.
    sim.console(
        1,
        &[
            "sensor_set_value 0x20 0 4 36 1",
            "sensor_set_value 0x20 0 1 45 1",
        ],
    );
    let b = e.scrape(&t, "default", 5.0);
    assert_eq!(
        value(&b, "ipmi_temperature_celsius{id=\"6\",name=\"Inlet Temp\"}"),
        Some(36.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "ipmi_temperature_state{id=\"6\",name=\"Inlet Temp\"}"),
        Some(0.0),
        "{b}"
    );
    assert_eq!(
        value(
            &b,
            "ipmi_sensor_threshold{id=\"6\",name=\"Inlet Temp\",level=\"upper_non_critical\"}"
        ),
        Some(35.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "ipmi_temperature_state{id=\"3\",name=\"CPU1 Temp\"}"),
        Some(0.0),
        "{b}"
    );
    sim.console(1, &["sensor_set_value 0x20 0 4 41 1"]);
    let b = e.scrape(&t, "default", 5.0);
    assert_eq!(
        value(&b, "ipmi_temperature_state{id=\"6\",name=\"Inlet Temp\"}"),
        Some(2.0),
        "{b}"
    );
}

#[test]
fn sensor_excludes_and_module_collectors() {
    let sim = Sim::start(1);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!(
            "modules:\n{}",
            module_yaml("few", &pw, "sensors", "    exclude_sensor_ids: [7, 4]\n")
        ),
        &[],
    );
    let b = e.scrape(&sim.target(1), "few", 5.0);
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(1.0), "{b}");
    assert!(!b.contains("ipmi_up{collector=\"sel\"}"), "{b}");
    assert!(!b.contains("PSU1 Status") && !b.contains("Fan1"), "{b}");
    assert!(b.contains("CPU1 Temp"), "{b}");
    // Bad requests are refused, not passed to FreeIPMI.
    assert_eq!(e.get("/ipmi?target=-hfoo&module=few", None).0, 400);
    assert_eq!(e.get("/ipmi?target=node[1-9]&module=few", None).0, 400);
    assert_eq!(
        e.get(&format!("/ipmi?target={}&module=nope", sim.target(1)), None)
            .0,
        400
    );
    assert_eq!(e.get("/ipmi?module=few", None).0, 400);
}

#[test]
fn dead_target_answers_in_time_and_leaves_no_process() {
    require(&["ipmi-sensors"]);
    // UDP ports with a socket that never answers: FreeIPMI waits for a reply that never comes.
    let sockets: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let targets: Vec<String> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pw = password_file(dir.path(), "password");
    let e = Exporter::start(
        &format!("modules:\n{}", module_yaml("default", &pw, ALL, "")),
        &["--ipmi.max-concurrency=8"],
    );

    let scrapes = 100;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let e = &e;
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    for _ in 0..scrapes / 4 {
                        let t0 = Instant::now();
                        let b = e.scrape(t, "default", 0.5);
                        slowest = slowest.max(t0.elapsed());
                        for c in ["ipmi", "dcmi", "chassis", "bmc", "sel", "bmc-watchdog"] {
                            assert_eq!(
                                value(&b, &format!("ipmi_up{{collector=\"{c}\"}}")),
                                Some(0.0),
                                "{c}: {b}"
                            );
                        }
                    }
                    slowest
                })
            })
            .collect();
        for h in handles {
            slowest = slowest.max(h.join().unwrap());
        }
    });
    eprintln!(
        "{scrapes} scrapes of dead targets in {:?}, slowest {:?} (deadline 0.4 s)",
        started.elapsed(),
        slowest
    );
    // Every FreeIPMI process was killed and reaped: none is left, not even a zombie.
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<String> = targets
        .iter()
        .flat_map(|t| processes(e.pid(), &format!("--hostname={t}")))
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    let log = e.log();
    assert!(
        log.contains(&targets[0]) && log.contains("collector failed"),
        "{log}"
    );
    drop(sockets);
}

#[test]
fn wrong_password_is_reported_without_the_password() {
    let sim = Sim::start(1);
    let secret = "Wr0ng-Pa55word-7731";
    let good = "password";
    let bad_pw = password_file(sim.dir.path(), secret);
    let good_pw = password_file(sim.dir.path(), good);
    let yaml = format!(
        "modules:\n{}{}",
        module_yaml("bad", &bad_pw, "ipmi, chassis", ""),
        module_yaml("good", &good_pw, "ipmi", "")
    );
    let e = Exporter::start(&yaml, &[]);
    let t = sim.target(1);
    let b = e.scrape(&t, "bad", 5.0);
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(0.0), "{b}");
    assert_eq!(
        value(&b, "ipmi_up{collector=\"chassis\"}"),
        Some(0.0),
        "{b}"
    );
    let b = e.scrape(&t, "good", 5.0);
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(1.0), "{b}");
    let log = e.log();
    assert!(log.contains(&t), "log names the target: {log}");
    assert!(
        log.contains("password invalid"),
        "log names the failure: {log}"
    );
    assert!(
        !log.contains(secret),
        "the password leaked into the log: {log}"
    );
    // Not on any command line either (FreeIPMI gets it on stdin).
    let cmdlines = processes(e.pid(), secret);
    assert!(cmdlines.is_empty(), "{cmdlines:?}");
}

#[test]
fn stopped_bmc_times_out_and_recovers() {
    let sim = Sim::start(1);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!(
            "modules:\n{}",
            module_yaml("default", &pw, "ipmi, chassis, sel", "")
        ),
        &[],
    );
    let t = sim.target(1);
    assert_eq!(
        value(&e.scrape(&t, "default", 5.0), "ipmi_up{collector=\"ipmi\"}"),
        Some(1.0)
    );

    // A BMC that stops answering mid-life (SIGSTOP): the scrape still answers, with up 0.
    let pid = nix::unistd::Pid::from_raw(sim.pid(1));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let b = e.scrape(&t, "default", 1.0);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(0.0), "{b}");
    assert_eq!(value(&b, "ipmi_up{collector=\"sel\"}"), Some(0.0), "{b}");
    std::thread::sleep(Duration::from_millis(200));
    let left = processes(e.pid(), &format!("--hostname={t}"));
    assert!(left.is_empty(), "{left:#?}");

    // Once it answers again, so does the exporter.
    let mut up = None;
    for _ in 0..20 {
        up = value(&e.scrape(&t, "default", 5.0), "ipmi_up{collector=\"ipmi\"}");
        if up == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(up, Some(1.0), "{}", e.log());
}

#[test]
fn stale_sdr_cache_is_rebuilt() {
    let sim = Sim::start(1);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!("modules:\n{}", module_yaml("default", &pw, "ipmi, sel", "")),
        &[],
    );
    let t = sim.target(1);
    let b = e.scrape(&t, "default", 5.0);
    assert_eq!(
        value(&b, "ipmi_up{collector=\"ipmi\"}"),
        Some(1.0),
        "{b}\n{}",
        e.log()
    );
    // A restarted BMC has a new SDR repository timestamp: the cached SDR is out of date.
    sim.script(&["stop"]);
    std::thread::sleep(Duration::from_millis(1100));
    sim.script(&["start", "1"]);
    let b = e.scrape(&t, "default", 5.0);
    assert_eq!(
        value(&b, "ipmi_up{collector=\"ipmi\"}"),
        Some(1.0),
        "{b}\n{}",
        e.log()
    );
    assert_eq!(
        value(&b, "ipmi_up{collector=\"sel\"}"),
        Some(1.0),
        "{b}\n{}",
        e.log()
    );
    assert!(
        e.log().contains("SDR cache out of date; rebuilding it"),
        "{}",
        e.log()
    );
}

#[test]
fn config_reload_by_post_and_sighup() {
    let sim = Sim::start(1);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!("modules:\n{}", module_yaml("a", &pw, "chassis", "")),
        &[],
    );
    let t = sim.target(1);
    assert_eq!(e.get(&format!("/ipmi?target={t}&module=b"), None).0, 400);
    std::fs::write(
        e.config_path(),
        format!(
            "modules:\n{}{}",
            module_yaml("a", &pw, "chassis", ""),
            module_yaml("b", &pw, "bmc", "")
        ),
    )
    .unwrap();
    assert_eq!(http("POST", e.port, "/-/reload", None).0, 200);
    let b = e.scrape(&t, "b", 5.0);
    assert_eq!(value(&b, "ipmi_up{collector=\"bmc\"}"), Some(1.0), "{b}");

    // A broken file is refused and the old configuration stays.
    std::fs::write(e.config_path(), "modules: [\n").unwrap();
    assert_eq!(http("POST", e.port, "/-/reload", None).0, 500);
    assert_eq!(
        e.get(&format!("/ipmi?target={t}&module=b"), Some(5.0)).0,
        200
    );

    // SIGHUP.
    std::fs::write(
        e.config_path(),
        format!("modules:\n{}", module_yaml("c", &pw, "chassis", "")),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(e.pid()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let mut code = 0;
    for _ in 0..50 {
        code = e.get(&format!("/ipmi?target={t}&module=c"), Some(5.0)).0;
        if code == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, 200, "{}", e.log());
    assert_eq!(e.get(&format!("/ipmi?target={t}&module=a"), None).0, 400);
}

#[test]
fn metrics_without_a_local_bmc_serves_the_environment() {
    let sys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sys");
    let sysarg = format!("--path.sysfs={}", sys.display());
    // auto: no /dev/ipmi0 here -> only env.
    let e = Exporter::start("", &[&sysarg]);
    let (code, b) = e.get("/metrics", Some(5.0));
    assert_eq!(code, 200);
    assert_eq!(
        value(&b, "ipmi_scrape_collector_success{collector=\"env\"}"),
        Some(1.0),
        "{b}"
    );
    assert!(b.contains("env_temperature_celsius{source=\"thermal_zone\",device=\"thermal_zone1\",chip=\"acpitz\",sensor=\"temp\",label=\"\"} 27.8"), "{b}");
    if !std::path::Path::new("/dev/ipmi0").exists() {
        assert!(!b.contains("ipmi_up{collector=\"ipmi\"}"), "{b}");
        // Forced on without a device: the BMC collectors fail cleanly, env still works.
        let e = Exporter::start("", &[&sysarg, "--ipmi.local=on"]);
        let (_, b) = e.get("/metrics", Some(5.0));
        assert_eq!(value(&b, "ipmi_up{collector=\"ipmi\"}"), Some(0.0), "{b}");
        assert_eq!(value(&b, "ipmi_up{collector=\"env\"}"), Some(1.0), "{b}");
        assert!(b.contains("env_fan_speed_rpm"), "{b}");
    }
}

#[test]
fn concurrency_cap_bounds_freeipmi_processes() {
    let sim = Sim::start(4);
    let pw = password_file(sim.dir.path(), "password");
    let e = Exporter::start(
        &format!(
            "modules:\n{}",
            module_yaml("default", &pw, "ipmi, chassis, bmc, sel", "")
        ),
        &["--ipmi.max-concurrency=2"],
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut peak = 0;
    std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(processes(e.pid(), "").len());
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        });
        for _round in 0..3 {
            let hs: Vec<_> = (1..=4)
                .map(|i| {
                    let (e, t) = (&e, sim.target(i));
                    s.spawn(move || e.scrape(&t, "default", 10.0))
                })
                .collect();
            for h in hs {
                let b = h.join().unwrap();
                for c in ["ipmi", "chassis", "bmc", "sel"] {
                    assert_eq!(
                        value(&b, &format!("ipmi_up{{collector=\"{c}\"}}")),
                        Some(1.0),
                        "{c}: {b}"
                    );
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        peak = poller.join().unwrap();
    });
    eprintln!("peak FreeIPMI processes with --ipmi.max-concurrency=2: {peak}");
    assert!(
        peak <= 2,
        "{peak} FreeIPMI processes at once with a cap of 2"
    );
    assert!(peak >= 1, "the poller never saw a FreeIPMI process");
}
