//! # hpcmon-e2e
//!
//! Harness for end-to-end tests across hpcmon's binaries and real components: start a
//! process on loopback and stop it on drop, find free ports, wait for readiness, run a real
//! Prometheus or Alertmanager with a generated config and query it.
//!
//! Exporter crates use it as a dev-dependency for their own integration tests; the tests in
//! this crate's `tests/` folder exercise the whole stack.
