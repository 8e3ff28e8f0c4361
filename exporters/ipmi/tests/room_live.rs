//! The whole machine-room path on real components: snmpd (UPS + probe) and pymodbus
//! (transmitter, meter, air conditioner) scraped through the exporter's /snmp and /modbus by
//! a real Prometheus with every rule file of the repository; the machine-room dashboard's
//! live check (every variable and panel query returns data) and the UPS-on-battery alert
//! firing when the simulated mains is pulled.

mod common;

use std::time::Duration;

use common::room::*;
use common::*;
use hpcmon_e2e::Prometheus;

fn job_lines(exporter_port: u16, path: &str, params: &str) -> String {
    format!(
        "metrics_path: {path}\nparams: {params}\nrelabel_configs:\n  - source_labels: [__address__]\n    target_label: __param_target\n  - source_labels: [__param_target]\n    target_label: instance\n  - target_label: room\n    replacement: hall-a\n  - target_label: __address__\n    replacement: 127.0.0.1:{exporter_port}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rules_dashboard_and_the_on_battery_alert() {
    let snmp = SnmpSim::start("public", None);
    let modbus = ModbusSim::start(None);
    let e = Exporter::start_plain(
        &format!(
            "snmp:\n  targets: ['{}']\nmodbus:\n  targets: ['{}']\n",
            snmp.target(),
            modbus.target()
        ),
        &[],
    );
    let ups = job_lines(e.port, "/snmp", "{module: [ups_mib, entity_sensor]}");
    let th = job_lines(
        e.port,
        "/modbus",
        "{module: [th_transmitter], sub_target: ['1']}",
    );
    let meter = job_lines(
        e.port,
        "/modbus",
        "{module: [power_meter_3phase], sub_target: ['2']}",
    );
    let ac = job_lines(
        e.port,
        "/modbus",
        "{module: [precision_ac], sub_target: ['3']}",
    );
    let rules = Prometheus::repo_rule_files();
    let names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    let cfg = Prometheus::config(
        &[
            ("ups", &snmp.target(), &ups),
            ("room-th", &modbus.target(), &th),
            ("room-meter", &modbus.target(), &meter),
            ("room-ac", &modbus.target(), &ac),
        ],
        &names,
    );
    let files: Vec<(&str, &str)> = rules
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let prom = Prometheus::start(&cfg, &files).await.unwrap();
    prom.wait_targets_up(Duration::from_secs(30)).await.unwrap();
    // The room temperature the policy uses: the hottest room sensor (probe 24.5 °C).
    prom.wait_for(
        "room:temperature_celsius{room=\"hall-a\",source=\"room_sensor\"} == 24.5",
        |r| r.as_array().is_some_and(|a| a.len() == 1),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    prom.wait_for(
        "room:phase_load:ratio",
        |r| r.as_array().is_some_and(|a| a.len() >= 6),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // Rate panels (meter energy) need two scrapes of the meter: wait for them rather than
    // race the scrape interval.
    prom.wait_for(
        "rate(power_meter_active_energy_joules_total[5m])",
        |r| r.as_array().is_some_and(|a| !a.is_empty()),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // The dashboard's live check: every variable and panel query returns data.
    let check = hpcmon_e2e::check_dashboards_live(
        &prom.url(),
        &[repo().join("dashboards/room.json")],
        None,
        &[],
    )
    .await
    .unwrap();
    assert!(
        check.passed(),
        "live dashboard check failed:\n{}{}",
        check.stdout,
        check.stderr
    );

    // A room sensor warms the room past the probe: the policy follows it.
    modbus.set(1, "input", 0, &[315]);
    prom.wait_for(
        "room:temperature_celsius{room=\"hall-a\"} == 31.5",
        |r| r.as_array().is_some_and(|a| a.len() == 1),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // Pull the mains: UPSOnBattery fires (for: 15s).
    assert!(prom
        .alerts()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["labels"]["alertname"] != "UPSOnBattery"));
    snmp.set(&["mains=off", "minutes=30"]);
    let a = prom
        .wait_alert("UPSOnBattery", "firing", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(a["labels"]["room"], "hall-a", "{a}");
    assert_eq!(a["labels"]["severity"], "critical", "{a}");
}
