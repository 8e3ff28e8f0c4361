//! # hpcmon-alert-bridge
//!
//! A durable, idempotent alert log fed by Alertmanager's webhook, with a query API and a web
//! page. Alertmanager keeps no history; the bridge stores one row per alert *episode*
//! (fingerprint + startsAt), updates it with every notification, and answers queries. On
//! MySQL/MariaDB it also writes alertsnitch's tables, which OpenSCOW's alarm-log page reads.
//!
//! * [`payload`]: the webhook payload (version "4") and its validation.
//! * [`storage`]: SQLite/PostgreSQL/MySQL through sqlx: schema, batched writes, queries.
//! * [`matcher`]: Prometheus label matchers, evaluated safely (no regex in SQL).
//! * [`app`]: shared state, routes, readiness and `/metrics`.
//! * [`ingest`]: the webhook (admission control) and the batching writer task.
//! * [`api`]: the query API.
//! * [`reconcile`]: closing episodes Alertmanager no longer has.
//! * [`retention`]: deleting old episodes and unused label pairs.
//! * [`checkpoint`]: SQLite's WAL checkpoints, beside the writer rather than in its commits.
//! * [`metrics`]: the bridge's own metrics.

pub mod api;
pub mod app;
pub mod checkpoint;
pub mod ingest;
pub mod matcher;
pub mod metrics;
pub mod payload;
pub mod reconcile;
pub mod retention;
pub mod storage;
