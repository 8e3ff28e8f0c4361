//! SNMP: UPSes, PDUs and environment probes on the multi-target endpoint
//! `/snmp?target=HOST[:PORT]&module=NAME[,NAME…]&auth=NAME` (snmp_exporter's pattern, so
//! Prometheus' usual relabelling works unchanged).
//!
//! - [`auth`]: communities and SNMPv3 USM users (secrets from files or the environment).
//! - [`config`]: modules: the built-in `ups_mib` (snmp_exporter's metric names) and
//!   `entity_sensor`, and user modules in YAML (OIDs, types, scale, index and lookup labels,
//!   enumerations as state sets).
//! - [`render`] and [`entity_sensor`]: answers → metrics, pure and property-tested.
//! - [`collect`]: the client: GET and GETBULK walks under deadlines with retries.
//!
//! ## Why `async-snmp`
//!
//! Two maintained SNMP client crates were evaluated (crates.io, 2026-11):
//!
//! - **`async-snmp`** (0.18, MIT/Apache-2.0, releases every few weeks through 2026): Tokio
//!   native; v1, v2c and v3 USM (MD5, SHA-1/2 authentication; DES, 3DES, AES-128/192/256
//!   privacy) with engine discovery, time-window handling and a shareable engine cache;
//!   GET, GETNEXT, GETBULK and walk streams that detect non-increasing OIDs; per-request
//!   timeouts and retries built in; master keys computed once from a passphrase and reused;
//!   communities redacted from `Debug`; pure-Rust crypto (RustCrypto).
//! - **`snmp2`** (0.5, a fork of the abandoned `snmp` crate, part of RoboPLC): v1/v2c/v3
//!   with sync and async sessions, but one request at a time per session, no walk helper,
//!   no retry policy, no shared engine cache, and v3 key derivation on every session.
//!
//! `async-snmp` does what this exporter needs (deadlines, retries, GETBULK walks, v3
//! authPriv) without hand-written protocol code; its cost is a newer minimum Rust (1.88).

pub mod auth;
pub mod collect;
pub mod config;
pub mod entity_sensor;
pub mod render;
