//! The bridge's own metrics (`/metrics`), through `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `reason` label of the rejection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// `operation` label of the storage error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Operation {
    pub operation: String,
}

/// Every metric the bridge exports.
pub struct Metrics {
    pub registry: Registry,
    pub notifications_received: Counter,
    pub notifications_stored: Counter,
    pub notifications_rejected: Family<Reason, Counter>,
    pub alerts_received: Counter,
    pub alerts_stored: Counter,
    pub alerts_rejected: Family<Reason, Counter>,
    pub alerts_truncated: Counter,
    pub episodes_created: Counter,
    pub episode_changes: Counter,
    pub storage_errors: Family<Operation, Counter>,
    pub ingest_duration: Histogram,
    pub batch_notifications: Histogram,
    pub batch_duration: Histogram,
    pub storage_size: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub episodes_firing: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub storage_up: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub retention_deleted: Counter<u64, AtomicU64>,
    pub retention_deleted_pairs: Counter<u64, AtomicU64>,
    pub notifications_throttled: Counter,
    pub inflight_requests: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub inflight_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub queries_rejected: Family<Reason, Counter>,
    pub episodes_refired: Counter,
    pub reconcile_closed: Counter,
    pub reconcile_errors: Counter,
    pub reconcile_last_success: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// Registers every metric under the `alert_bridge` prefix.
    pub fn new(version: &str, backend: &str) -> Self {
        let mut r = Registry::with_prefix("alert_bridge");
        let m = Self {
            notifications_received: Counter::default(),
            notifications_stored: Counter::default(),
            notifications_rejected: Family::default(),
            alerts_received: Counter::default(),
            alerts_stored: Counter::default(),
            alerts_rejected: Family::default(),
            alerts_truncated: Counter::default(),
            episodes_created: Counter::default(),
            episode_changes: Counter::default(),
            storage_errors: Family::default(),
            ingest_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            batch_notifications: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            batch_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            storage_size: Gauge::default(),
            episodes_firing: Gauge::default(),
            storage_up: Gauge::default(),
            retention_deleted: Counter::default(),
            retention_deleted_pairs: Counter::default(),
            notifications_throttled: Counter::default(),
            inflight_requests: Gauge::default(),
            inflight_bytes: Gauge::default(),
            queries_rejected: Family::default(),
            episodes_refired: Counter::default(),
            reconcile_closed: Counter::default(),
            reconcile_errors: Counter::default(),
            reconcile_last_success: Gauge::default(),
            registry: Registry::default(),
        };
        r.register(
            "notifications_received",
            "Webhook notifications received (before validation)",
            m.notifications_received.clone(),
        );
        r.register(
            "notifications_stored",
            "Webhook notifications committed to storage and acknowledged",
            m.notifications_stored.clone(),
        );
        r.register(
            "notifications_rejected",
            "Webhook notifications not stored, by reason (4xx reasons and storage_error)",
            m.notifications_rejected.clone(),
        );
        r.register(
            "alerts_received",
            "Alerts in received notifications that parsed",
            m.alerts_received.clone(),
        );
        r.register(
            "alerts_stored",
            "Alerts committed to storage",
            m.alerts_stored.clone(),
        );
        r.register(
            "alerts_rejected",
            "Alerts in parsed notifications that were not stored, by reason",
            m.alerts_rejected.clone(),
        );
        r.register(
            "alerts_truncated",
            "Alerts Alertmanager left out of notifications (truncatedAlerts, max_alerts)",
            m.alerts_truncated.clone(),
        );
        r.register(
            "episodes_created",
            "New alert episodes (fingerprint, startsAt) stored",
            m.episodes_created.clone(),
        );
        r.register(
            "episode_changes",
            "State changes written to episode history (new, resolved, annotations changed)",
            m.episode_changes.clone(),
        );
        r.register(
            "storage_errors",
            "Storage operations that failed, by operation",
            m.storage_errors.clone(),
        );
        r.register_with_unit(
            "ingest_duration",
            "Time from receiving a webhook to answering it (parse, queue, commit)",
            prometheus_client::registry::Unit::Seconds,
            m.ingest_duration.clone(),
        );
        r.register(
            "storage_batch_notifications",
            "Notifications committed together in one storage transaction",
            m.batch_notifications.clone(),
        );
        r.register_with_unit(
            "storage_batch_duration",
            "Time one storage transaction took, from taking the writer lock to its commit",
            prometheus_client::registry::Unit::Seconds,
            m.batch_duration.clone(),
        );
        r.register_with_unit(
            "storage_size",
            "Size of the database (SQLite: file + WAL; PostgreSQL: pg_database_size)",
            prometheus_client::registry::Unit::Bytes,
            m.storage_size.clone(),
        );
        r.register(
            "episodes_firing",
            "Alert episodes whose last known state is firing",
            m.episodes_firing.clone(),
        );
        r.register(
            "storage_up",
            "1 if the last storage check succeeded, else 0",
            m.storage_up.clone(),
        );
        r.register(
            "retention_deleted_episodes",
            "Episodes deleted by retention",
            m.retention_deleted.clone(),
        );
        r.register(
            "retention_deleted_label_pairs",
            "Label pairs deleted by retention because no episode used them any more",
            m.retention_deleted_pairs.clone(),
        );
        r.register(
            "notifications_throttled",
            "Webhook notifications answered 503 + Retry-After because too many requests or \
             bytes were in flight (Alertmanager retries them)",
            m.notifications_throttled.clone(),
        );
        r.register(
            "webhook_inflight_requests",
            "Webhook requests being read, parsed or stored",
            m.inflight_requests.clone(),
        );
        r.register_with_unit(
            "webhook_inflight",
            "Webhook body bytes held by requests being read, parsed or stored",
            prometheus_client::registry::Unit::Bytes,
            m.inflight_bytes.clone(),
        );
        r.register(
            "queries_rejected",
            "API queries not answered, by reason: bad_data (400), timeout, not_ready \
             (not storage errors)",
            m.queries_rejected.clone(),
        );
        r.register(
            "episodes_refired",
            "Resolved episodes that fired again with the same startsAt",
            m.episodes_refired.clone(),
        );
        r.register(
            "reconcile_closed_episodes",
            "Firing episodes closed because Alertmanager no longer had the alert",
            m.reconcile_closed.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciliation rounds that failed (Alertmanager or storage unavailable)",
            m.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_last_success_timestamp_seconds",
            "When reconciliation against Alertmanager last completed",
            m.reconcile_last_success.clone(),
        );
        r.register(
            "build",
            "Build information",
            Info::new(vec![
                ("version".to_string(), version.to_string()),
                ("backend".to_string(), backend.to_string()),
            ]),
        );
        Self { registry: r, ..m }
    }

    /// Counts a rejected notification (and its alerts, when known).
    pub fn reject(&self, reason: &str, alerts: u64) {
        let l = Reason {
            reason: reason.to_string(),
        };
        self.notifications_rejected.get_or_create(&l).inc();
        if alerts > 0 {
            self.alerts_rejected.get_or_create(&l).inc_by(alerts);
        }
    }

    /// Counts an API query that was not answered for a reason other than storage.
    pub fn query_rejected(&self, reason: &str) {
        self.queries_rejected
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a failed storage operation.
    pub fn storage_error(&self, op: &str) {
        self.storage_errors
            .get_or_create(&Operation {
                operation: op.to_string(),
            })
            .inc();
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}
