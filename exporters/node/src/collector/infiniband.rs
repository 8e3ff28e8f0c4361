//! `infiniband` collector: InfiniBand/RoCE HCAs from `/sys/class/infiniband/<device>/`:
//! `node_infiniband_info{board_id,device,firmware_version,hca_type}` and, per
//! `ports/<port>/`, `node_infiniband_{state_id,physical_state_id,rate_bytes_per_second}` and
//! the port counters (`counters/`, and `counters_ext/` as `node_infiniband_legacy_*`) with
//! node_exporter 1.5's names. Data counters count 4-byte words in sysfs and are reported in
//! bytes. A counter that reads `N/A (no PMA)` or is missing is left out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpcmon_kit::metrics::MetricType;
use hpcmon_kit::{sysfs, Collector, Context, MetricSet};

use super::Config;

/// Builds the `infiniband` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Infiniband {
        class: cfg.paths.sys("class/infiniband"),
    }))
}

/// The `infiniband` collector.
pub struct Infiniband {
    class: PathBuf,
}

/// `(subdir, file, metric suffix, multiplier, help)`.
const COUNTERS: &[(&str, &str, &str, f64, &str)] = &[
    ("counters", "excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", 1.0, "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error."),
    ("counters", "link_downed", "link_downed_total", 1.0, "Number of times the link failed to recover from an error state and went down"),
    ("counters", "link_error_recovery", "link_error_recovery_total", 1.0, "Number of times the link successfully recovered from an error state"),
    ("counters", "local_link_integrity_errors", "local_link_integrity_errors_total", 1.0, "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors."),
    ("counters", "multicast_rcv_packets", "multicast_packets_received_total", 1.0, "Number of multicast packets received (including errors)"),
    ("counters", "multicast_xmit_packets", "multicast_packets_transmitted_total", 1.0, "Number of multicast packets transmitted (including errors)"),
    ("counters", "port_rcv_constraint_errors", "port_constraint_errors_received_total", 1.0, "Number of packets received on the switch physical port that are discarded"),
    ("counters", "port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", 1.0, "Number of packets not transmitted from the switch physical port"),
    ("counters", "port_rcv_data", "port_data_received_bytes_total", 4.0, "Number of data octets received on all links"),
    ("counters", "port_xmit_data", "port_data_transmitted_bytes_total", 4.0, "Number of data octets transmitted on all links"),
    ("counters", "port_rcv_discards", "port_discards_received_total", 1.0, "Number of inbound packets discarded by the port because the port is down or congested"),
    ("counters", "port_xmit_discards", "port_discards_transmitted_total", 1.0, "Number of outbound packets discarded by the port because the port is down or congested"),
    ("counters", "port_rcv_errors", "port_errors_received_total", 1.0, "Number of packets containing an error that were received on this port"),
    ("counters", "port_rcv_packets", "port_packets_received_total", 1.0, "Number of packets received on all VLs by this port (including errors)"),
    ("counters", "port_xmit_packets", "port_packets_transmitted_total", 1.0, "Number of packets transmitted on all VLs from this port (including errors)"),
    ("counters", "port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", 1.0, "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port."),
    ("counters", "port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", 1.0, "Number of packets that could not be forwarded by the switch."),
    ("counters", "port_xmit_wait", "port_transmit_wait_total", 1.0, "Number of ticks during which the port had data to transmit but no data was sent during the entire tick"),
    ("counters", "symbol_error", "symbol_error_total", 1.0, "Number of minor link errors detected on one or more physical lanes."),
    ("counters", "unicast_rcv_packets", "unicast_packets_received_total", 1.0, "Number of unicast packets received (including errors)"),
    ("counters", "unicast_xmit_packets", "unicast_packets_transmitted_total", 1.0, "Number of unicast packets transmitted (including errors)"),
    ("counters", "VL15_dropped", "vl15_dropped_total", 1.0, "Number of incoming VL15 packets dropped due to resource limitations."),
    ("counters_ext", "port_multicast_rcv_packets", "legacy_multicast_packets_received_total", 1.0, "Number of multicast packets received"),
    ("counters_ext", "port_multicast_xmit_packets", "legacy_multicast_packets_transmitted_total", 1.0, "Number of multicast packets transmitted"),
    ("counters_ext", "port_rcv_data_64", "legacy_data_received_bytes_total", 4.0, "Number of data octets received on all links"),
    ("counters_ext", "port_xmit_data_64", "legacy_data_transmitted_bytes_total", 4.0, "Number of data octets transmitted on all links"),
    ("counters_ext", "port_rcv_packets_64", "legacy_packets_received_total", 1.0, "Number of data packets received on all links"),
    // node_exporter's help text really says "received" here.
    ("counters_ext", "port_xmit_packets_64", "legacy_packets_transmitted_total", 1.0, "Number of data packets received on all links"),
    ("counters_ext", "port_unicast_rcv_packets", "legacy_unicast_packets_received_total", 1.0, "Number of unicast packets received"),
    ("counters_ext", "port_unicast_xmit_packets", "legacy_unicast_packets_transmitted_total", 1.0, "Number of unicast packets transmitted"),
];

fn read(p: &Path) -> Option<String> {
    sysfs::attr(p).ok()
}

/// `4: ACTIVE` → 4.
fn state_id(s: &str) -> Option<f64> {
    s.split(':')
        .next()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|v| v as f64)
}

/// `40 Gb/sec (4X QDR)` → 5e9 bytes per second.
pub fn parse_rate(s: &str) -> Option<f64> {
    let mut f = s.split_ascii_whitespace();
    let v: f64 = f.next()?.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    match f.next()? {
        "Gb/sec" => Some(v * 125_000_000.0),
        "Mb/sec" => Some(v * 125_000.0),
        _ => None,
    }
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    sysfs::entries(dir).unwrap_or_default()
}

impl Collector for Infiniband {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for (dev, dir) in sorted_entries(&self.class) {
            let board = read(&dir.join("board_id")).unwrap_or_default();
            let fw = read(&dir.join("fw_ver")).unwrap_or_default();
            let hca = read(&dir.join("hca_type")).unwrap_or_default();
            out.gauge(
                "node_infiniband_info",
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            )
            .sample(
                &[
                    ("board_id", &board),
                    ("device", &dev),
                    ("firmware_version", &fw),
                    ("hca_type", &hca),
                ],
                1.0,
            );
            let mut ports: Vec<(u64, PathBuf)> = sorted_entries(&dir.join("ports"))
                .into_iter()
                .filter_map(|(n, p)| Some((n.parse().ok()?, p)))
                .collect();
            ports.sort();
            for (port, pdir) in ports {
                let port_s = port.to_string();
                let l = [("device", dev.as_str()), ("port", port_s.as_str())];
                if let Some(v) = read(&pdir.join("state")).and_then(|s| state_id(&s)) {
                    out.gauge("node_infiniband_state_id", "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)").sample(&l, v);
                }
                if let Some(v) = read(&pdir.join("phys_state")).and_then(|s| state_id(&s)) {
                    out.gauge("node_infiniband_physical_state_id", "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)").sample(&l, v);
                }
                if let Some(v) = read(&pdir.join("rate")).and_then(|s| parse_rate(&s)) {
                    out.gauge(
                        "node_infiniband_rate_bytes_per_second",
                        "Maximum signal transfer rate",
                    )
                    .sample(&l, v);
                }
                for (sub, file, suffix, mult, help) in COUNTERS {
                    let Some(v) =
                        read(&pdir.join(sub).join(file)).and_then(|s| s.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    out.family_dyn(
                        &format!("node_infiniband_{suffix}"),
                        help,
                        MetricType::Counter,
                    )
                    .sample(&l, v as f64 * mult);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden() {
        let c = Infiniband {
            class: testdata().join("fixtures/b-infiniband/sys/class/infiniband"),
        };
        assert_golden("infiniband", &render(&c).unwrap());
    }

    #[test]
    fn rates_and_states() {
        assert_eq!(parse_rate("40 Gb/sec (4X QDR)"), Some(5e9));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(312_500_000.0));
        assert_eq!(parse_rate("garbage"), None);
        assert_eq!(state_id("4: ACTIVE"), Some(4.0));
        assert_eq!(state_id("ACTIVE"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_rate(&s);
            let _ = state_id(&s);
        }
    }
}
