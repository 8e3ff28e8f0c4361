//! The receiver's own metrics (`hpcmon_actions_*`), rendered with the kit's encoder.
//!
//! Counters live in memory (reset on restart, as counters may); the journal's state is read
//! at scrape time. Every label has a fixed set of values: action names from the policy's fixed
//! set, states, outcomes, programs, rejection reasons.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hpcmon_kit::MetricSet;

use crate::journal::{state, Journal};
use crate::policy::{Mode, ALL_ACTIONS};

/// Counters.
#[derive(Debug, Default)]
pub struct Metrics {
    notifications: AtomicU64,
    alerts: AtomicU64,
    unmatched: AtomicU64,
    journaled: AtomicU64,
    duplicates: AtomicU64,
    rejected_at_intake: AtomicU64,
    /// reason → count (bad_payload, too_large, unauthorized, storage_error)
    notifications_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// (action, outcome) → count
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
    /// (program, ok) → count
    commands: Mutex<BTreeMap<(String, bool), u64>>,
}

const OUTCOMES: [&str; 8] = [
    state::DONE,
    state::DRY_RUN,
    state::REJECTED,
    state::FAILED,
    state::DEFERRED,
    "retry",
    state::SUPERSEDED,
    state::CANCELLED,
];

impl Metrics {
    /// A notification arrived and was journaled.
    pub fn notification(&self, s: &crate::engine::Summary) {
        self.notifications.fetch_add(1, Ordering::Relaxed);
        self.alerts.fetch_add(s.alerts as u64, Ordering::Relaxed);
        self.unmatched
            .fetch_add(s.unmatched as u64, Ordering::Relaxed);
        self.journaled
            .fetch_add(s.journaled as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(s.duplicates as u64, Ordering::Relaxed);
        self.rejected_at_intake
            .fetch_add(s.rejected as u64, Ordering::Relaxed);
    }

    /// A notification was refused (`reason` from a fixed set).
    pub fn notification_rejected(&self, reason: &'static str) {
        *self
            .notifications_rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// An action reached an outcome.
    pub fn outcome(&self, action: &str, outcome: &str) {
        let action = if ALL_ACTIONS.iter().any(|a| a.as_str() == action) {
            action
        } else {
            "unknown"
        };
        *self
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((action.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// A command ran.
    pub fn command(&self, program: &str, ok: bool) {
        let program = match program {
            "scontrol" | "scancel" | "ipmi-power" => program,
            _ => "other",
        };
        *self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((program.to_string(), ok))
            .or_default() += 1;
    }

    /// Everything, with the journal's current state.
    pub async fn render(&self, journal: &Journal, mode: Mode, forced_dry_run: bool) -> MetricSet {
        let mut m = MetricSet::new();
        let c = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64;
        m.counter(
            "hpcmon_actions_notifications_total",
            "Webhook notifications journaled.",
        )
        .sample(&[], c(&self.notifications));
        m.counter(
            "hpcmon_actions_alerts_total",
            "Alerts in journaled notifications.",
        )
        .sample(&[], c(&self.alerts));
        m.counter(
            "hpcmon_actions_alerts_unmatched_total",
            "Alerts that no policy rule matched.",
        )
        .sample(&[], c(&self.unmatched));
        m.counter(
            "hpcmon_actions_decisions_total",
            "Decisions journaled (one per alert episode, rule and phase).",
        )
        .sample(&[], c(&self.journaled));
        m.counter(
            "hpcmon_actions_duplicate_decisions_total",
            "Decisions already in the journal: replayed notifications, which change nothing.",
        )
        .sample(&[], c(&self.duplicates));
        m.counter(
            "hpcmon_actions_refused_targets_total",
            "Decisions refused when journaled because their targets are not acceptable (hostile or malformed label values, over the node cap).",
        )
        .sample(&[], c(&self.rejected_at_intake));
        {
            let f = m.counter(
                "hpcmon_actions_notifications_rejected_total",
                "Webhook notifications not journaled, by reason.",
            );
            let map = self
                .notifications_rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for r in ["bad_payload", "too_large", "unauthorized", "storage_error"] {
                f.sample(&[("reason", r)], *map.get(r).unwrap_or(&0) as f64);
            }
        }
        {
            let f = m.counter(
                "hpcmon_actions_executions_total",
                "Actions that reached an outcome (done, dry_run, rejected, failed, deferred, retry, superseded, cancelled).",
            );
            let map = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            for a in ALL_ACTIONS {
                for o in OUTCOMES {
                    let v = map
                        .get(&(a.as_str().to_string(), o.to_string()))
                        .copied()
                        .unwrap_or(0);
                    f.sample(&[("action", a.as_str()), ("outcome", o)], v as f64);
                }
            }
        }
        {
            let f = m.counter(
                "hpcmon_actions_commands_total",
                "External commands run, by program and result.",
            );
            let map = self.commands.lock().unwrap_or_else(|e| e.into_inner());
            for p in ["scontrol", "scancel", "ipmi-power"] {
                for ok in [true, false] {
                    let v = map.get(&(p.to_string(), ok)).copied().unwrap_or(0);
                    f.sample(
                        &[("program", p), ("result", if ok { "ok" } else { "error" })],
                        v as f64,
                    );
                }
            }
        }
        m.gauge(
            "hpcmon_actions_enforce",
            "1 when actions are carried out, 0 in dry-run (policy mode, or --dry-run).",
        )
        .sample(&[], (mode == Mode::Enforce && !forced_dry_run) as u8 as f64);
        let up = journal.ping().await;
        m.gauge(
            "hpcmon_actions_journal_up",
            "1 when the journal database answers.",
        )
        .sample(&[], up as u8 as f64);
        if !up {
            return m;
        }
        if let Ok(p) = journal.paused().await {
            m.gauge(
                "hpcmon_actions_paused",
                "1 while the kill switch (POST /api/v1/pause) stops all actions.",
            )
            .sample(&[], p as u8 as f64);
        }
        if let Ok(rows) = journal.counts().await {
            let f = m.gauge(
                "hpcmon_actions_journal_actions",
                "Actions in the journal by action and state.",
            );
            for a in ALL_ACTIONS {
                for s in state::ALL {
                    let v = rows
                        .iter()
                        .find(|(ra, rs, _)| ra == a.as_str() && rs == s)
                        .map_or(0, |r| r.2);
                    f.sample(&[("action", a.as_str()), ("state", s)], v as f64);
                }
            }
        }
        if let Ok(rows) = journal.live_changes().await {
            let f = m.gauge(
                "hpcmon_actions_owned_changes",
                "Targets hpcmon changed and has not undone, by the changing action (e.g. nodes it powered down).",
            );
            for a in ALL_ACTIONS.iter().filter(|a| a.inverse().is_some()) {
                let v = rows
                    .iter()
                    .find(|(k, _)| k == a.as_str())
                    .map_or(0, |r| r.1);
                f.sample(&[("action", a.as_str())], v as f64);
            }
        }
        for g in ["queue", "drain", "power"] {
            if let Ok(Some(t)) = journal.last_change_of(g).await {
                m.gauge(
                    "hpcmon_actions_last_change_timestamp_seconds",
                    "When hpcmon last changed a target of the group (start of the hold-off).",
                )
                .sample(&[("group", g)], t as f64 / 1000.0);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family and label value a fresh journal exposes, as `testdata/metrics.prom`: the
    /// names the actions dashboard reads (scripts/check-dashboards.sh checks its queries
    /// against this file). `UPDATE_GOLDEN=1` rewrites it.
    #[tokio::test]
    async fn golden_families_of_a_fresh_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).await.unwrap();
        let m = Metrics::default();
        m.outcome("slurm.power_down", state::DONE);
        m.command("scontrol", true);
        m.notification_rejected("bad_payload");
        let set = m.render(&journal, Mode::DryRun, false).await;
        let text = hpcmon_kit::metrics::encode_text(&set);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/metrics.prom");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(text, want, "metrics differ from {}", path.display());
        for name in [
            "hpcmon_actions_enforce 0",
            "hpcmon_actions_paused 0",
            "hpcmon_actions_journal_up 1",
            "hpcmon_actions_executions_total{action=\"slurm.power_down\",outcome=\"done\"} 1",
            "hpcmon_actions_owned_changes{action=\"slurm.power_down\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }
}
