//! Modbus TCP: room sensors, power meters and air conditioners, directly or through a
//! serial gateway, on the multi-target endpoint `/modbus?target=HOST[:PORT]&module=NAME&sub_target=UNIT`
//! (modbus_exporter's pattern; `sub_target` is the unit/slave id, default 1).
//!
//! - [`config`]: modules (register maps) in YAML, and the built-in templates
//!   (`th_transmitter`, `power_meter_3phase`, `precision_ac`).
//! - [`decode`]: registers → numbers (types, byte and word order), property-tested.
//! - [`collect`]: the client (`tokio-modbus`): read planning, deadlines, retries, one
//!   connection per target at a time.

pub mod collect;
pub mod config;
pub mod decode;
