//! # hpcmon-alert-bridge
//!
//! A durable, idempotent alert log fed by Alertmanager's webhook, with a query API and a web
//! page. Alertmanager keeps no history; the bridge stores one row per alert *episode*
//! (fingerprint + startsAt), updates it with every notification, and answers queries.
//!
//! * [`payload`]: the webhook payload (version "4") and its validation.
//! * [`storage`]: SQLite/PostgreSQL through sqlx: migrations, idempotent upserts, queries.
//! * [`matcher`]: Prometheus label matchers, evaluated safely (no regex in SQL).
//! * [`app`]: the HTTP handlers, the batching writer task and retention.
//! * [`metrics`]: the bridge's own metrics.

pub mod app;
pub mod matcher;
pub mod metrics;
pub mod payload;
pub mod storage;
