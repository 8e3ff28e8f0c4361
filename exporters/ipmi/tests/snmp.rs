//! `/snmp` against real agents: Debian's net-snmp `snmpd` serving a UPS (UPS-MIB) and a
//! PDU/environment probe (ENTITY-SENSOR-MIB) through pass_persist (scripts/snmp-sim.sh),
//! over SNMPv2c and SNMPv3 authPriv (SHA/AES), driven to on-battery, low-battery, overload
//! and bypass states; and misbehaving peers (a wrong community, wrong v3 credentials, a
//! silent agent, an agent answering garbage, wrong value types).

mod common;

use common::room::*;
use common::*;

/// An auth/module config for one simulated agent.
fn config(dir: &std::path::Path, sim_target: &str, community: &str) -> String {
    let cf = dir.join("community");
    std::fs::write(&cf, format!("{community}\n")).unwrap();
    format!(
        "snmp:\n  auths:\n    room:\n      version: 2\n      community_file: {}\n      targets: ['{sim_target}']\n",
        cf.display()
    )
}

fn scrape(e: &Exporter, q: &str) -> String {
    let (code, body) = e.get(&format!("/snmp?{q}"), Some(5.0));
    assert_eq!(code, 200, "{body}\n{}", e.log());
    body
}

#[test]
fn ups_and_probe_over_v2c_follow_the_simulated_room() {
    let community = format!("c0mm-{}-x", std::process::id());
    let sim = SnmpSim::start(&community, None);
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start_plain(&config(dir.path(), &sim.target(), &community), &[]);
    // Prometheus' `params: {module: [ups_mib, entity_sensor]}` repeats the parameter.
    let q = format!(
        "target={}&module=ups_mib&module=entity_sensor&auth=room",
        sim.target()
    );

    let b = scrape(&e, &q);
    for (series, want) in [
        ("snmp_up{module=\"ups_mib\"}", 1.0),
        ("snmp_up{module=\"entity_sensor\"}", 1.0),
        ("snmp_scrape_collector_success{collector=\"ups_mib\"}", 1.0),
        ("upsBatteryStatus", 2.0),
        ("upsOutputSource", 3.0),
        ("upsSecondsOnBattery", 0.0),
        ("upsEstimatedMinutesRemaining", 45.0),
        ("upsEstimatedChargeRemaining", 100.0),
        ("upsBatteryTemperature", 27.0),
        ("upsBatteryVoltage", 54.5),
        ("upsInputFrequency{upsInputLineIndex=\"1\"}", 50.0),
        ("upsInputVoltage{upsInputLineIndex=\"3\"}", 230.0),
        ("upsOutputPercentLoad{upsOutputLineIndex=\"2\"}", 35.0),
        ("upsAlarmsPresent", 0.0),
        ("upsInputLineBads", 0.0),
        (
            "entity_sensor_temperature_celsius{index=\"1\",name=\"Room Temperature\"}",
            24.5,
        ),
        (
            "entity_sensor_humidity_ratio{index=\"2\",name=\"Room Humidity\"}",
            0.45,
        ),
        (
            "entity_sensor_current_amperes{index=\"11\",name=\"Phase L1 Current\"}",
            10.2,
        ),
    ] {
        assert_eq!(value(&b, series), Some(want), "{series} in\n{b}");
    }
    assert!(
        b.contains("upsIdentModel{upsIdentModel=\"SIM-UPS 10k\"} 1"),
        "{b}"
    );
    // 63 UPS values in one walk.
    assert!(
        value(&b, "snmp_scrape_pdus_returned{module=\"ups_mib\"}").unwrap() >= 60.0,
        "{b}"
    );

    // Mains pulled, battery running low.
    sim.set(&["mains=off", "minutes=4", "charge=20"]);
    let b = scrape(&e, &q);
    for (series, want) in [
        ("snmp_up{module=\"ups_mib\"}", 1.0),
        ("upsOutputSource", 5.0),
        ("upsBatteryStatus", 3.0),
        ("upsSecondsOnBattery", 120.0),
        ("upsEstimatedMinutesRemaining", 4.0),
        ("upsInputVoltage{upsInputLineIndex=\"1\"}", 0.0),
        ("upsAlarmsPresent", 2.0),
        ("upsInputLineBads", 1.0),
    ] {
        assert_eq!(value(&b, series), Some(want), "{series} in\n{b}");
    }
    assert!(
        b.contains("upsAlarmDescr{upsAlarmId=\"1\",upsAlarmDescr=\"1.3.6.1.2.1.33.1.6.3.2\"} 1"),
        "onBattery alarm in\n{b}"
    );

    // Back on mains, overloaded, on bypass; the room warms up and phase L1 is loaded.
    sim.set(&[
        "mains=on",
        "minutes=45",
        "charge=100",
        "load=120",
        "bypass=true",
        "room_temp=31.5",
        "phase_amps=[30.5,11,9.8]",
    ]);
    let b = scrape(&e, &q);
    for (series, want) in [
        ("upsOutputSource", 4.0),
        ("upsOutputPercentLoad{upsOutputLineIndex=\"1\"}", 120.0),
        ("upsBatteryStatus", 2.0),
        (
            "entity_sensor_temperature_celsius{index=\"1\",name=\"Room Temperature\"}",
            31.5,
        ),
        (
            "entity_sensor_current_amperes{index=\"11\",name=\"Phase L1 Current\"}",
            30.5,
        ),
    ] {
        assert_eq!(value(&b, series), Some(want), "{series} in\n{b}");
    }
    assert!(
        b.contains("upsAlarmDescr=\"1.3.6.1.2.1.33.1.6.3.8\"} 1"),
        "overload alarm in\n{b}"
    );
    assert!(
        b.contains("upsAlarmDescr=\"1.3.6.1.2.1.33.1.6.3.9\"} 1"),
        "bypass alarm in\n{b}"
    );

    // The community is on no command line and in no log line.
    let log = e.log();
    assert!(!log.contains(&community), "community leaked into the log");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", e.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(&community));
}

#[test]
fn snmpv3_auth_priv_and_wrong_credentials() {
    let (user, auth_pw, priv_pw) = ("hpcmon-ups", "auth-pass-1234", "priv-pass-5678");
    let sim = SnmpSim::start("public", Some((user, auth_pw, priv_pw)));
    let dir = tempfile::tempdir().unwrap();
    let apf = dir.path().join("auth");
    std::fs::write(&apf, format!("{auth_pw}\n")).unwrap();
    let t = sim.target();
    let y = format!(
        "snmp:\n  targets: ['{t}']\n  auths:\n    v3:\n      version: 3\n      username: {user}\n      security_level: authPriv\n      auth_protocol: SHA\n      password_file: {}\n      priv_protocol: AES\n      priv_password_env: ROOM_TEST_PRIV\n    v3_wrong_priv:\n      version: 3\n      username: {user}\n      security_level: authPriv\n      password_file: {}\n      priv_password_env: ROOM_TEST_WRONG\n    v3_wrong_auth:\n      version: 3\n      username: {user}\n      security_level: authPriv\n      password_env: ROOM_TEST_WRONG\n      priv_password_env: ROOM_TEST_PRIV\n    v3_unknown_user:\n      version: 3\n      username: nobody-here\n      security_level: authPriv\n      password_env: ROOM_TEST_PRIV\n      priv_password_env: ROOM_TEST_PRIV\n",
        apf.display(),
        apf.display()
    );
    let e = Exporter::start_env(
        &y,
        &[],
        &[
            ("ROOM_TEST_PRIV", priv_pw),
            ("ROOM_TEST_WRONG", "not-the-pass-99"),
        ],
    );
    let b = scrape(
        &e,
        &format!("target={t}&module=ups_mib,entity_sensor&auth=v3"),
    );
    assert_eq!(
        value(&b, "snmp_up{module=\"ups_mib\"}"),
        Some(1.0),
        "{b}\n{}",
        e.log()
    );
    assert_eq!(
        value(&b, "snmp_up{module=\"entity_sensor\"}"),
        Some(1.0),
        "{b}"
    );
    assert_eq!(value(&b, "upsBatteryStatus"), Some(2.0), "{b}");
    // A second scrape reuses the cached engine (no discovery) and works the same.
    let b = scrape(&e, &format!("target={t}&module=ups_mib&auth=v3"));
    assert_eq!(value(&b, "upsOutputSource"), Some(3.0), "{b}");

    for (auth, hint) in [
        ("v3_wrong_priv", "cannot decrypt the request"),
        (
            "v3_wrong_auth",
            "nothing authenticated for SNMPv3 user hpcmon-ups authPriv SHA/AES",
        ),
        (
            "v3_unknown_user",
            "nothing authenticated for SNMPv3 user nobody-here",
        ),
    ] {
        let b = scrape(&e, &format!("target={t}&module=ups_mib&auth={auth}"));
        assert_eq!(
            value(&b, "snmp_up{module=\"ups_mib\"}"),
            Some(0.0),
            "{auth}: {b}"
        );
        assert!(
            !b.contains("upsBatteryStatus "),
            "{auth}: no UPS values expected:\n{b}"
        );
        let log = e.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("SNMP scrape failed") && l.contains(auth))
            .unwrap_or_else(|| panic!("no failure line for {auth}:\n{log}"));
        assert!(line.contains(&t) && line.contains(hint), "{hint}: {line}");
    }
    let log = e.log();
    for secret in [auth_pw, priv_pw, "not-the-pass-99"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    assert!(
        log.contains("nobody-here"),
        "the unknown user's name is in its error: {log}"
    );
}

#[test]
fn silent_garbage_and_wrong_community_agents_fail_in_time_without_leaks() {
    let sim = SnmpSim::start("right-community", None);
    let silent = UdpPeer::start(None);
    let garbage = UdpPeer::start(Some(b"\x30\x03\x02\x01\xff not snmp at all".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("wrong");
    std::fs::write(&cf, "wrong-community").unwrap();
    let y = format!(
        "snmp:\n  auths:\n    wrong:\n      community_file: {}\n      targets: ['{}']\n  modules:\n    quick:\n      kind: entity_sensor\n      timeout: 300ms\n      retries: 1\n",
        cf.display(),
        sim.target()
    );
    let e = Exporter::start_plain(&y, &[]);
    let cases = [
        (
            format!("target={}&module=ups_mib&auth=wrong", sim.target()),
            "wrong community",
            "or a wrong community",
        ),
        (
            format!("target={}&module=quick", silent.target()),
            "silent",
            "no answer at all",
        ),
        (
            format!("target={}&module=quick", garbage.target()),
            "garbage",
            "were not SNMP messages",
        ),
        // A module timeout longer than the scrape's: the scrape's deadline (2 s) wins.
        (
            format!("target={}&module=ups_mib", silent.target()),
            "silent, long module timeout",
            "deadline",
        ),
    ];
    let warm = e.get(&format!("/snmp?{}", cases[1].0), Some(2.0));
    assert_eq!(warm.0, 200);
    let (sockets0, threads0) = (socket_count(e.pid()), thread_count(e.pid()));
    for round in 0..3 {
        for (q, what, _) in &cases {
            // The HTTP client gives up after 20 s: an answer means the deadline held.
            let (code, b) = e.get(&format!("/snmp?{q}"), Some(2.0));
            assert_eq!(code, 200, "{what}: {b}");
            let up = b.lines().find(|l| l.starts_with("snmp_up{")).unwrap_or("");
            assert!(up.ends_with(" 0"), "{what} (round {round}): {up}\n{b}");
        }
    }
    assert!(silent.received.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(garbage.received.load(std::sync::atomic::Ordering::SeqCst) > 0);
    // Every client socket and receive task is gone after its scrape.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        socket_count(e.pid()) <= sockets0,
        "sockets {} > {sockets0}",
        socket_count(e.pid())
    );
    assert!(
        thread_count(e.pid()) <= threads0 + 2,
        "threads {} vs {threads0}",
        thread_count(e.pid())
    );
    let log = e.log();
    let fails = log
        .lines()
        .filter(|l| l.contains("SNMP scrape failed"))
        .count();
    assert!(fails >= 12, "one failure line per scrape: {fails}\n{log}");
    for (q, what, hint) in &cases {
        let target = q.split('&').next().unwrap().trim_start_matches("target=");
        assert!(
            log.lines().any(|l| l.contains("SNMP scrape failed")
                && l.contains(target)
                && l.contains(hint)),
            "{what}: no failure line with {hint:?}:\n{log}"
        );
    }
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn malformed_values_fail_the_module_and_keep_the_rest() {
    let sim = SnmpSim::start("public", None);
    sim.set(&["malformed=true"]);
    let e = Exporter::start_plain("", &[]);
    let b = scrape(&e, &format!("target={}&module=ups_mib", sim.target()));
    assert_eq!(value(&b, "snmp_up{module=\"ups_mib\"}"), Some(0.0), "{b}");
    assert!(
        b.contains("upsIdentModel{upsIdentModel=\"SIM-UPS 10k\"} 1"),
        "strings still served:\n{b}"
    );
    assert!(!b.contains("\nupsBatteryStatus "), "{b}");
    let log = e.log();
    assert!(
        log.contains(
            "upsBatteryStatus (1.3.6.1.2.1.33.1.2.1.0): expected a number, got octet_string"
        ),
        "{log}"
    );
    // Fixed again: up again.
    sim.set(&["malformed=false"]);
    let b = scrape(&e, &format!("target={}&module=ups_mib", sim.target()));
    assert_eq!(value(&b, "snmp_up{module=\"ups_mib\"}"), Some(1.0), "{b}");
}

#[test]
fn allow_lists_bad_requests_and_user_modules() {
    let sim = SnmpSim::start("public", None);
    let outside = UdpPeer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("c");
    std::fs::write(&cf, "public").unwrap();
    // A user module: the probe's rows by ENTITY-MIB name (lookup), phase currents scaled,
    // the sensor type as a state set and the UPS battery status as an enum state set.
    let y = format!(
        "snmp:\n  auths:\n    fenced:\n      community_file: {}\n      targets: ['{}']\n  modules:\n    probe:\n      metrics:\n        - name: probe_reading\n          oid: 1.3.6.1.2.1.99.1.1.1.4\n          type: gauge\n          scale: 0.1\n          indexes: [{{labelname: sensor, type: gauge}}]\n          lookups: [{{labels: [sensor], labelname: sensor_name, oid: 1.3.6.1.2.1.47.1.1.1.1.7}}]\n        - name: probe_type\n          oid: 1.3.6.1.2.1.99.1.1.1.1\n          type: EnumAsStateSet\n          indexes: [{{labelname: sensor, type: gauge}}]\n          enum_values: {{5: amperes, 8: celsius, 9: percentRH}}\n        - name: ups_battery_status\n          oid: 1.3.6.1.2.1.33.1.2.1\n          type: EnumAsStateSet\n          enum_values: {{1: unknown, 2: normal, 3: low, 4: depleted}}\n",
        cf.display(),
        sim.target()
    );
    let e = Exporter::start_plain(&y, &[]);
    let b = scrape(
        &e,
        &format!("target={}&module=probe&auth=fenced", sim.target()),
    );
    assert_eq!(
        value(&b, "snmp_up{module=\"probe\"}"),
        Some(1.0),
        "{b}\n{}",
        e.log()
    );
    assert_eq!(
        value(
            &b,
            "probe_reading{sensor=\"1\",sensor_name=\"Room Temperature\"}"
        ),
        Some(24.5),
        "{b}"
    );
    assert_eq!(
        value(
            &b,
            "probe_reading{sensor=\"12\",sensor_name=\"Phase L2 Current\"}"
        ),
        Some(11.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "probe_type{sensor=\"2\",probe_type=\"percentRH\"}"),
        Some(1.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "probe_type{sensor=\"2\",probe_type=\"celsius\"}"),
        Some(0.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "ups_battery_status{ups_battery_status=\"normal\"}"),
        Some(1.0),
        "{b}"
    );

    // Outside the auth's allow-list: 403, and not one datagram is sent.
    let (code, body) = e.get(
        &format!("/snmp?target={}&module=probe&auth=fenced", outside.target()),
        Some(2.0),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        outside.received.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    for (q, code) in [
        ("module=probe", 400),
        ("target=a%20b&module=probe", 400),
        ("target=-x&module=probe", 400),
        ("target=127.0.0.1:99999&module=probe", 400),
        ("target=127.0.0.1&module=nope", 400),
        ("target=127.0.0.1&auth=nope", 400),
    ] {
        let (c, body) = e.get(&format!("/snmp?{q}"), Some(2.0));
        assert_eq!(c, code, "{q}: {body}");
    }
}

#[test]
fn bad_configurations_stop_the_exporter_at_startup() {
    for (y, want) in [
        ("snmp:\n  auths:\n    a:\n      community: public\n", "not read from the config file"),
        ("snmp:\n  auths:\n    a:\n      version: 3\n      username: u\n      security_level: authPriv\n      password_env: ROOM_UNSET_VAR\n", "ROOM_UNSET_VAR"),
        ("snmp:\n  modules:\n    m:\n      metrics:\n        - {name: x, oid: upsBatteryStatus, type: gauge}\n", "numeric OID"),
        ("modbus:\n  modules:\n    m:\n      metrics:\n        - {name: x, register: holding, address: 1, data_type: float16}\n", "float16"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yml");
        std::fs::write(&cfg, y).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hpcmon-ipmi-exporter"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .arg(format!("--ipmi.sdr-cache-dir={}", dir.path().join("sdr").display()))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{y} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{y}: {err}");
    }
}

/// In-process: scrapes of a silent agent cut short by the deadline (v2c, and v3 stuck in
/// engine discovery) leave no task of the SNMP client behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_cut_scrapes_leave_no_task_behind() {
    use hpcmon_ipmi_exporter::snmp::collect::{scrape, Runtime};
    use hpcmon_ipmi_exporter::snmp::config::SnmpConfig;
    use std::time::{Duration, Instant};
    let silent = UdpPeer::start(None);
    std::env::set_var("ROOM_TASKS_PW", "long-enough-1");
    let cfg: SnmpConfig = SnmpConfig::resolve(
        serde_yaml_ng::from_str("auths:\n  v3:\n    version: 3\n    username: u\n    security_level: authPriv\n    password_env: ROOM_TASKS_PW\n    priv_password_env: ROOM_TASKS_PW\n").unwrap(),
    )
    .unwrap();
    let module = cfg.modules["ups_mib"].clone();
    let rt = Runtime::default();
    let metrics = tokio::runtime::Handle::current().metrics();
    let base = metrics.num_alive_tasks();
    for auth in ["public_v2", "v3"] {
        for _ in 0..10 {
            let s = scrape(
                &rt,
                &silent.target(),
                &cfg.auths[auth],
                &module,
                Instant::now() + Duration::from_millis(150),
            )
            .await;
            assert!(!s.errors.is_empty(), "{auth}");
            assert_eq!(s.metrics.sample_count(), 0);
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(metrics.num_alive_tasks(), base, "tasks left behind");
}
