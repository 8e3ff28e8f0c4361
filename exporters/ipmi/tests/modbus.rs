//! `/modbus` against a real Modbus TCP server (Debian's python3-pymodbus through
//! scripts/modbus-sim.sh, registers set by the test) with the built-in templates and a user
//! module; and against hand-made peers for what pymodbus cannot do (never answering,
//! answering short), plus a refused connection, an exception and the allow-list.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::room::*;
use common::*;

fn scrape(e: &Exporter, q: &str, timeout: f64) -> String {
    let (code, body) = e.get(&format!("/modbus?{q}"), Some(timeout));
    assert_eq!(code, 200, "{body}\n{}", e.log());
    body
}

#[test]
fn builtin_templates_read_the_simulated_devices() {
    let sim = ModbusSim::start(None);
    let e = Exporter::start_plain(&format!("modbus:\n  targets: ['{}']\n", sim.target()), &[]);
    let t = sim.target();

    let b = scrape(
        &e,
        &format!("target={t}&module=th_transmitter&sub_target=1"),
        5.0,
    );
    assert_eq!(value(&b, "modbus_up"), Some(1.0), "{b}\n{}", e.log());
    assert_eq!(value(&b, "room_temperature_celsius"), Some(23.5), "{b}");
    assert_eq!(value(&b, "room_humidity_ratio"), Some(0.452), "{b}");
    assert_eq!(
        value(&b, "modbus_scrape_read_requests"),
        Some(1.0),
        "both registers in one read: {b}"
    );
    assert_eq!(
        value(
            &b,
            "modbus_scrape_collector_success{collector=\"th_transmitter\"}"
        ),
        Some(1.0),
        "{b}"
    );

    let b = scrape(
        &e,
        &format!("target={t}&module=power_meter_3phase&sub_target=2"),
        5.0,
    );
    assert_eq!(value(&b, "modbus_up"), Some(1.0), "{b}\n{}", e.log());
    assert_eq!(
        value(&b, "power_meter_voltage_volts{phase=\"L1\"}"),
        Some(231.5),
        "{b}"
    );
    assert_eq!(
        value(&b, "power_meter_current_amperes{phase=\"L3\"}"),
        Some(9.75),
        "{b}"
    );
    assert_eq!(
        value(&b, "power_meter_active_power_watts{phase=\"L2\"}"),
        Some(2530.0),
        "{b}"
    );
    assert_eq!(value(&b, "power_meter_frequency_hertz"), Some(50.0), "{b}");
    assert_eq!(
        value(&b, "power_meter_active_energy_joules_total"),
        Some(12345.5 * 3.6e6),
        "{b}"
    );
    assert_eq!(
        value(&b, "modbus_scrape_read_requests"),
        Some(3.0),
        "0..18, 70, 342: {b}"
    );

    let b = scrape(
        &e,
        &format!("target={t}&module=precision_ac&sub_target=3"),
        5.0,
    );
    assert_eq!(value(&b, "modbus_up"), Some(1.0), "{b}\n{}", e.log());
    assert_eq!(
        value(&b, "precision_ac_mode{precision_ac_mode=\"cooling\"}"),
        Some(1.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_mode{precision_ac_mode=\"off\"}"),
        Some(0.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_return_air_temperature_celsius"),
        Some(24.5),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_supply_air_temperature_celsius"),
        Some(18.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_compressor_run_seconds_total"),
        Some(88640.0 * 3600.0),
        "low word first: {b}"
    );
    assert_eq!(value(&b, "precision_ac_unit_on"), Some(1.0), "{b}");

    // The room warms up, the AC stops on an alarm; negative values are signed.
    sim.set(1, "input", 0, &[315]);
    sim.set(3, "holding", 0, &[5]);
    sim.set(3, "holding", 3, &[(-25i16) as u16]);
    let b = scrape(
        &e,
        &format!("target={t}&module=th_transmitter&sub_target=1"),
        5.0,
    );
    assert_eq!(value(&b, "room_temperature_celsius"), Some(31.5), "{b}");
    let b = scrape(
        &e,
        &format!("target={t}&module=precision_ac&sub_target=3"),
        5.0,
    );
    assert_eq!(
        value(&b, "precision_ac_mode{precision_ac_mode=\"alarm_stop\"}"),
        Some(1.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_mode{precision_ac_mode=\"cooling\"}"),
        Some(0.0),
        "{b}"
    );
    assert_eq!(
        value(&b, "precision_ac_supply_air_temperature_celsius"),
        Some(-2.5),
        "{b}"
    );
}

#[test]
fn exceptions_fail_the_scrape_and_keep_what_was_read() {
    let sim = ModbusSim::start(Some(r#"{"units": {"5": {"holding": {"0": 1, "1": 2}}}}"#));
    let y = "modbus:\n  modules:\n    m:\n      metrics:\n        - {name: ok_value, register: holding, address: 0}\n        - {name: missing_value, register: holding, address: 100}\n        - {name: wrong_table, register: input, address: 0}\n";
    let e = Exporter::start_plain(y, &[]);
    let b = scrape(
        &e,
        &format!("target={}&module=m&sub_target=5", sim.target()),
        5.0,
    );
    assert_eq!(value(&b, "modbus_up"), Some(0.0), "{b}");
    assert_eq!(value(&b, "ok_value"), Some(1.0), "{b}");
    assert!(!b.contains("missing_value"), "{b}");
    assert_eq!(
        value(&b, "modbus_scrape_read_requests"),
        Some(3.0),
        "exceptions are answers, not retried: {b}"
    );
    let log = e.log();
    let line = log
        .lines()
        .find(|l| l.contains("Modbus scrape failed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("holding register 100+1: Modbus exception 0x02"),
        "{line}"
    );
    assert!(
        line.contains("input register 0+1: Modbus exception 0x02"),
        "{line}"
    );
    assert!(
        line.contains(&sim.target()) && line.contains("unit=5"),
        "{line}"
    );
}

#[test]
fn silent_short_and_refused_peers_fail_in_time() {
    let silent = FakeModbusPeer::start(FakeModbus::Silent);
    let short = FakeModbusPeer::start(FakeModbus::Short);
    let refused = {
        // A port that was free a moment ago: nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let y = "modbus:\n  modules:\n    m:\n      timeout: 300ms\n      retries: 1\n      metrics:\n        - {name: v, register: holding, address: 0, data_type: uint32}\n";
    let e = Exporter::start_plain(y, &[]);
    for (target, what, want) in [
        (silent.target(), "silent", "no answer within"),
        (short.target(), "short", "short answer"),
        (format!("127.0.0.1:{refused}"), "refused", "connecting to"),
    ] {
        for _ in 0..3 {
            let b = scrape(&e, &format!("target={target}&module=m"), 2.0);
            assert_eq!(value(&b, "modbus_up"), Some(0.0), "{what}: {b}");
            assert!(!b.contains("\nv "), "{what}: {b}");
        }
        let log = e.log();
        assert!(
            log.lines().any(|l| l.contains("Modbus scrape failed")
                && l.contains(&target)
                && l.contains(want)),
            "{what}: want {want:?} in\n{log}"
        );
    }
    // The silent peer got a retry on a fresh connection each scrape (retries: 1).
    assert!(
        silent.accepted.load(Ordering::SeqCst) >= 6,
        "{}",
        silent.accepted.load(Ordering::SeqCst)
    );
    assert!(!e.log().contains("panicked"));
}

#[test]
fn one_connection_per_target_at_a_time() {
    let slow = FakeModbusPeer::start(FakeModbus::Slow(Duration::from_millis(150)));
    let y = "modbus:\n  modules:\n    m:\n      timeout: 2s\n      metrics:\n        - {name: v, register: holding, address: 10}\n";
    let e = std::sync::Arc::new(Exporter::start_plain(y, &[]));
    let t = slow.target();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            let t = t.clone();
            std::thread::spawn(move || e.get(&format!("/modbus?target={t}&module=m"), Some(5.0)))
        })
        .collect();
    for h in handles {
        let (code, b) = h.join().unwrap();
        assert_eq!(code, 200);
        assert_eq!(value(&b, "v"), Some(10.0), "{b}");
    }
    assert_eq!(slow.accepted.load(Ordering::SeqCst), 4);
    // Never two requests in the device at once (the peer sees a closed connection a little
    // late, so connections are not what is counted).
    assert_eq!(
        slow.max_busy.load(Ordering::SeqCst),
        1,
        "scrapes of one target overlapped"
    );
}

#[test]
fn allow_list_and_bad_requests() {
    let outside = FakeModbusPeer::start(FakeModbus::Slow(Duration::ZERO));
    let e = Exporter::start_plain("modbus:\n  targets: [127.0.0.2]\n", &[]);
    let (code, body) = e.get(
        &format!("/modbus?target={}&module=th_transmitter", outside.target()),
        Some(2.0),
    );
    assert_eq!(code, 403, "{body}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        outside.accepted.load(Ordering::SeqCst),
        0,
        "a refused target was contacted"
    );
    for q in [
        "module=th_transmitter",
        "target=127.0.0.2",
        "target=127.0.0.2&module=nope",
        "target=127.0.0.2&module=th_transmitter&sub_target=300",
        "target=127.0.0.2&module=th_transmitter&sub_target=x",
        "target=a%20b&module=th_transmitter",
    ] {
        let (c, body) = e.get(&format!("/modbus?{q}"), Some(2.0));
        assert_eq!(c, 400, "{q}: {body}");
    }
}

#[test]
fn reloads_take_new_modules_and_keep_the_old_on_error() {
    let sim = ModbusSim::start(Some(r#"{"units": {"1": {"holding": {"0": 11, "1": 22}}}}"#));
    let y = |name: &str, addr: u32| {
        format!("modbus:\n  modules:\n    m:\n      metrics:\n        - {{name: {name}, register: holding, address: {addr}}}\n")
    };
    let e = Exporter::start_plain(&y("first", 0), &[]);
    let q = format!("target={}&module=m", sim.target());
    assert_eq!(value(&scrape(&e, &q, 5.0), "first"), Some(11.0));
    std::fs::write(e.config_path(), y("second", 1)).unwrap();
    let (code, body) = http("POST", e.port, "/-/reload", None);
    assert_eq!(code, 200, "{body}");
    let b = scrape(&e, &q, 5.0);
    assert_eq!(value(&b, "second"), Some(22.0), "{b}");
    assert!(!b.contains("\nfirst "), "{b}");
    // A broken module is refused with its reason; the old one stays in force.
    std::fs::write(e.config_path(), y("third", 70000)).unwrap();
    let (code, body) = http("POST", e.port, "/-/reload", None);
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("65535"), "{body}");
    assert_eq!(value(&scrape(&e, &q, 5.0), "second"), Some(22.0));
}
