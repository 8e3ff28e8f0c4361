//! The `systemd` collector's behaviour on a scripted `org.freedesktop.systemd1` (see
//! `fake_systemd`): a systemd that answers too slowly fails only this collector, within the
//! call deadline, while the others are served; no bus at all fails it the same way; and the
//! exporter connects once the bus comes up, without a restart. Its values are compared with
//! node_exporter's in `fixture_compat_sysfs.rs`. Needs `dbus-daemon`
//! (`scripts/install-deps.sh prom`).

mod fake_systemd;

use std::ffi::OsStr;
use std::time::Duration;

use fake_systemd::{units, Bus};
use hpcmon_e2e::{require_program, start_binary};

async fn scrape(port: u16) -> String {
    hpcmon_e2e::client(&hpcmon_e2e::ClientOptions::default())
        .expect("http client")
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body")
}

fn success(body: &str, collector: &str) -> Option<f64> {
    let key = format!("node_scrape_collector_success{{collector=\"{collector}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_missing_systemd_fails_only_its_collector_and_recovers() {
    require_program("dbus-daemon", "prom");
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let address = format!(
        "unix:path={}",
        dir.path().join("system_bus_socket").display()
    );
    let args: Vec<String> = [
        "--collector.disable-defaults",
        "--collector.systemd",
        "--collector.loadavg",
        "--collector.systemd.call-timeout=300ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = [("DBUS_SYSTEM_BUS_ADDRESS", OsStr::new(&address))];

    // No bus yet: systemd fails, loadavg is served.
    let (exporter, port) = start_binary("hpcmon-node-exporter", logs.path(), &args, &env).await;
    let body = scrape(port).await;
    assert_eq!(success(&body, "systemd"), Some(0.0), "{body}");
    assert_eq!(success(&body, "loadavg"), Some(1.0), "{body}");
    assert!(!body.contains("node_systemd_units"), "{body}");

    // The bus comes up with a systemd that takes 3 s to list its units: the exporter
    // connects (no restart), the call deadline (300 ms) fails the collector and says so, and
    // the rest of the scrape is served.
    let slow = {
        let mut bus = Bus::start_in(dir.path());
        bus.serve(
            &units(),
            "252.19-1~deb12u1",
            "running",
            Duration::from_secs(3),
        );
        bus
    };
    let body = scrape(port).await;
    assert_eq!(success(&body, "systemd"), Some(0.0), "{body}");
    assert_eq!(success(&body, "loadavg"), Some(1.0), "{body}");
    let log = exporter.log();
    assert!(
        log.contains("collector=systemd") && log.to_lowercase().contains("timed out"),
        "no timeout logged for systemd:\n{log}"
    );

    // The bus restarts at the same address with a systemd that answers: the dead connection
    // fails at most one scrape, then the same exporter reconnects and reports everything.
    drop(slow);
    let mut bus = Bus::start_in(dir.path());
    bus.serve(&units(), "252.19-1~deb12u1", "running", Duration::ZERO);
    let mut body = String::new();
    for _ in 0..3 {
        body = scrape(port).await;
        if success(&body, "systemd") == Some(1.0) {
            break;
        }
    }
    assert_eq!(success(&body, "systemd"), Some(1.0), "{body}");
    for want in [
        "node_systemd_system_running 1",
        "node_systemd_version{version=\"252.19-1~deb12u1\"} 252.19",
        "node_systemd_units{state=\"failed\"} 1",
        "node_systemd_unit_state{name=\"sshd.service\",state=\"active\",type=\"notify\"} 1",
        "node_systemd_unit_state{name=\"broken.service\",state=\"active\",type=\"\"} 1",
        "node_systemd_socket_accepted_connections_total{name=\"sshd.socket\"} 1234",
        "node_systemd_timer_last_trigger_seconds{name=\"systemd-tmpfiles-clean.timer\"} 1732686400.5",
    ] {
        assert!(body.contains(want), "{want:?} missing:\n{body}");
    }
    for absent in [
        "nfs-idmapd.service",
        "home.mount",
        "multi-user.target",
        "system-getty.slice",
    ] {
        assert!(
            !body.contains(&format!("name=\"{absent}\"")),
            "{absent} should be filtered out:\n{body}"
        );
    }
}
