//! # hpcmon-ipmi-exporter
//!
//! Prometheus exporter for IPMI BMCs (local in-band on `/metrics`, remote through the
//! multi-target `/ipmi?target=&module=` endpoint), for the node's environment sensors
//! (hwmon, thermal zones) when there is no BMC, and for the machine room's power and
//! environment devices (UPS, PDUs, air conditioners, room sensors) over SNMP
//! (`/snmp?target=&module=&auth=`) and Modbus TCP (`/modbus?target=&module=&sub_target=`).
//! IPMI metric names follow prometheus-community's ipmi_exporter, UPS-MIB ones
//! snmp_exporter's `ups_mib` module. Every FreeIPMI call runs under the scrape's deadline in its own process
//! group; a global semaphore caps concurrent BMC sessions.
//!
//! - [`parse`]: pure parsers, one file per FreeIPMI tool output.
//! - [`collector`]: one file per collector, named after its metrics.
//! - [`config`]: the YAML modules (credentials from files or environment variables).
//! - [`freeipmi`]: building and running FreeIPMI commands for a target.
//! - [`remote`]: the multi-target endpoint and config reloads.
//! - [`snmp`], [`modbus`]: the machine room (UPS, PDUs, air conditioning, room sensors)
//!   over SNMP and Modbus TCP, served by [`room`] on `/snmp` and `/modbus`.
//! - [`names`], [`scale`]: checks for configured metric and label names; scale factors.

pub mod collector;
pub mod config;
pub mod freeipmi;
pub mod modbus;
pub mod names;
pub mod parse;
pub mod remote;
pub mod room;
pub mod scale;
pub mod snmp;

/// Who this exporter is.
pub const META: hpcmon_kit::Meta = hpcmon_kit::Meta {
    namespace: "ipmi",
    binary: "hpcmon-ipmi-exporter",
    description: "Prometheus exporter for IPMI BMCs (local and remote, ipmi_exporter compatible) and node environment sensors.",
    version: env!("CARGO_PKG_VERSION"),
    default_listen: ":9290",
};
