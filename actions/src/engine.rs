//! From a webhook notification to journaled decisions, in one transaction.
//!
//! For each alert and each rule whose matchers accept its labels:
//!
//! * firing alert, rule `when: firing` (or resolved alert, rule `when: resolved`): an
//!   **apply** decision keyed `rule|fingerprint|startsAt|apply`. Its targets get their first
//!   check here ([`crate::target::resolve`]); a refusal is journaled `rejected` with the
//!   reason. A rule needing several sources waits in `awaiting_quorum` until enough distinct
//!   ones fire (then every waiting decision of the rule becomes `pending`); one needing a
//!   confirmation waits in `awaiting_confirmation`.
//! * resolved alert, rule `when: firing`: the apply decision of that alert episode, if it
//!   has not run yet, is `superseded`; if it ran (or was dry-run) and the rule has
//!   `revert: true`, a **revert** decision is journaled (`…|revert`).
//!
//! Keys make replays no-ops: Alertmanager resends a group's alerts on every
//! `repeat_interval` and after failed deliveries.

use hpcmon_alert_bridge::payload::{Alert, Notification, Status};

use crate::journal::{self, state, NewAction};
use crate::policy::{Mode, Policy, Rule, When};
use crate::target;

/// What a notification led to.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Alerts in the notification.
    pub alerts: usize,
    /// Alerts no rule matched.
    pub unmatched: usize,
    /// Decisions journaled.
    pub journaled: usize,
    /// Decisions already in the journal (replayed notifications).
    pub duplicates: usize,
    /// Decisions refused when journaled (bad targets).
    pub rejected: usize,
    /// Waiting actions whose alert resolved before they ran.
    pub superseded: usize,
}

fn key(rule: &str, a: &Alert, phase: &str) -> String {
    format!("{rule}|{}|{}|{phase}", a.fingerprint, a.starts_at)
}

fn base(rule: &Rule, a: &Alert, mode: Mode, phase: &'static str) -> NewAction {
    NewAction {
        idem_key: key(&rule.name, a, phase),
        rule: rule.name.clone(),
        action: rule.action.as_str().into(),
        phase,
        revert_of: None,
        priority: rule.priority,
        mode: mode.as_str(),
        alertname: a.alertname().to_string(),
        fingerprint: a.fingerprint.clone(),
        starts_ms: a.starts_at,
        labels: a.labels_json(),
        targets: String::new(),
        reason: rule.full_reason(),
        hold_off_ms: rule.hold_off.as_millis() as i64,
        max_nodes: rule.max_nodes as i64,
        state: state::PENDING,
        detail: String::new(),
    }
}

/// Journals what `n` means under `policy` (`mode` is the effective mode: the policy's, or
/// dry-run when forced). Commits before returning.
pub async fn journal_notification(
    j: &journal::Journal,
    policy: &Policy,
    mode: Mode,
    n: &Notification,
) -> Result<Summary, sqlx::Error> {
    let mut tx = j.begin().await?;
    let mut s = Summary {
        alerts: n.alerts.len(),
        ..Default::default()
    };
    for a in &n.alerts {
        let mut matched = false;
        for rule in policy.rules.iter().filter(|r| r.matches(&a.labels)) {
            matched = true;
            match (a.status, rule.when) {
                (Status::Firing, When::Firing) | (Status::Resolved, When::Resolved) => {
                    apply(&mut tx, rule, a, mode, &mut s).await?
                }
                (Status::Resolved, When::Firing) => {
                    resolved(&mut tx, rule, a, mode, &mut s).await?
                }
                (Status::Firing, When::Resolved) => {}
            }
        }
        if !matched {
            s.unmatched += 1;
        }
    }
    tx.commit().await?;
    Ok(s)
}

async fn apply(
    c: &mut sqlx::SqliteConnection,
    rule: &Rule,
    a: &Alert,
    mode: Mode,
    s: &mut Summary,
) -> Result<(), sqlx::Error> {
    let phase = if a.status == Status::Firing {
        "apply"
    } else {
        "on_resolve"
    };
    let mut new = base(rule, a, mode, phase);
    match target::resolve(rule, &a.labels) {
        Err(why) => {
            new.state = state::REJECTED;
            new.detail = format!("refused: {why}");
            match journal::insert(c, &new).await? {
                Some(_) => {
                    s.journaled += 1;
                    s.rejected += 1;
                }
                None => s.duplicates += 1,
            }
            return Ok(());
        }
        Ok(t) => {
            new.targets = serde_json::to_string(&t).unwrap_or_default();
            new.detail = format!("{} on {}", rule.action.as_str(), t.describe());
        }
    }
    let mut promote = Vec::new();
    if rule.require.sources > 1 && a.status == Status::Firing {
        let distinct = a
            .labels
            .get(&rule.require.distinct_label)
            .cloned()
            .unwrap_or_else(|| format!("fingerprint {}", a.fingerprint));
        journal::upsert_source(c, &rule.name, &a.fingerprint, a.starts_at, &distinct, true).await?;
        let agree = journal::firing_sources(c, &rule.name).await?;
        if agree.len() < rule.require.sources {
            new.state = state::AWAITING_QUORUM;
            new.detail = format!(
                "{}; waiting for {} distinct {} values to agree, have {} ({})",
                new.detail,
                rule.require.sources,
                rule.require.distinct_label,
                agree.len(),
                agree.join(", ")
            );
        } else {
            new.detail = format!(
                "{}; {} distinct {} values agree ({})",
                new.detail,
                agree.len(),
                rule.require.distinct_label,
                agree.join(", ")
            );
            promote = journal::awaiting_quorum(c, &rule.name).await?;
        }
    }
    if new.state == state::PENDING && rule.require.confirm {
        new.state = state::AWAITING_CONFIRMATION;
        new.detail = format!(
            "{}; waiting for a confirmation (POST /api/v1/actions/ID/confirm)",
            new.detail
        );
    }
    match journal::insert(c, &new).await? {
        Some(_) => s.journaled += 1,
        None => {
            s.duplicates += 1;
            return Ok(());
        }
    }
    for id in promote {
        let (st, why) = if rule.require.confirm {
            (
                state::AWAITING_CONFIRMATION,
                "enough sources agree now; waiting for a confirmation",
            )
        } else {
            (state::PENDING, "enough sources agree now")
        };
        journal::set_state(c, id, st, why, "", None).await?;
    }
    Ok(())
}

async fn resolved(
    c: &mut sqlx::SqliteConnection,
    rule: &Rule,
    a: &Alert,
    mode: Mode,
    s: &mut Summary,
) -> Result<(), sqlx::Error> {
    if rule.require.sources > 1 {
        let distinct = a
            .labels
            .get(&rule.require.distinct_label)
            .cloned()
            .unwrap_or_else(|| format!("fingerprint {}", a.fingerprint));
        journal::upsert_source(c, &rule.name, &a.fingerprint, a.starts_at, &distinct, false)
            .await?;
        // Every episode of this alert is over (its startsAt may differ, see below).
        sqlx::query("UPDATE sources SET firing = 0 WHERE rule = ? AND fingerprint = ?")
            .bind(&rule.name)
            .bind(&a.fingerprint)
            .execute(&mut *c)
            .await?;
    }
    // The episode's apply decision: same startsAt, or else (Alertmanager merges an alert's
    // startsAt to the earliest it saw) the latest of that rule and fingerprint.
    let applied = match journal::get_in(c, &key(&rule.name, a, "apply")).await? {
        Some(r) => Some(r),
        None => journal::latest_apply(c, &rule.name, &a.fingerprint).await?,
    };
    let Some(applied) = applied else {
        return Ok(());
    };
    let waiting = matches!(
        applied.state.as_str(),
        state::PENDING | state::DEFERRED | state::AWAITING_QUORUM | state::AWAITING_CONFIRMATION
    );
    if waiting {
        let detail = if applied.started_ms.is_none() {
            "the alert resolved before the action ran; nothing was changed"
        } else {
            "the alert resolved while the action waited for a retry; what it changed is undone if the rule reverts"
        };
        journal::set_state(c, applied.id, state::SUPERSEDED, detail, "", None).await?;
        s.superseded += 1;
    }
    let ran = applied.started_ms.is_some()
        || matches!(
            applied.state.as_str(),
            state::RUNNING | state::DONE | state::DRY_RUN
        );
    if rule.revert && ran {
        let mut new = base(rule, a, mode, "revert");
        new.idem_key = format!(
            "{}|revert",
            applied
                .idem_key
                .strip_suffix("|apply")
                .unwrap_or(&applied.idem_key)
        );
        new.starts_ms = applied.starts_ms;
        // The inverse action, on what the apply decision targeted.
        new.action = rule
            .action
            .inverse()
            .expect("revert rules have an inverse")
            .as_str()
            .into();
        new.revert_of = Some(applied.id);
        new.targets = applied.targets.clone();
        // A revert keeps the mode of what it reverts: a dry-run never reverts for real.
        new.mode = if applied.mode == Mode::Enforce.as_str() {
            mode.as_str()
        } else {
            Mode::DryRun.as_str()
        };
        new.detail = format!("the alert resolved: undo #{}'s own changes", applied.id);
        match journal::insert(c, &new).await? {
            Some(_) => s.journaled += 1,
            None => s.duplicates += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use hpcmon_alert_bridge::payload;
    use serde_json::json;

    const POLICY: &str = r#"
mode: enforce
rules:
  - name: drain
    matchers: ['alertname="Hot"']
    action: slurm.drain
    nodes: {label: node}
    max_nodes: 4
    revert: true
  - name: kill
    matchers: ['alertname="Hotter"']
    action: slurm.cancel_jobs
    partitions: all
    require: {sources: 2, distinct_label: instance}
"#;

    fn notification(alerts: &[(&str, &str, &str, &str, bool)]) -> Notification {
        // (alertname, fingerprint, instance, node, resolved)
        let v = json!({
            "version": "4", "receiver": "r", "status": "firing", "groupKey": "g",
            "alerts": alerts.iter().map(|(n, fp, i, node, res)| json!({
                "status": if *res { "resolved" } else { "firing" },
                "labels": {"alertname": n, "instance": i, "node": node},
                "annotations": {},
                "startsAt": "2026-03-01T10:00:00Z",
                "endsAt": if *res { "2026-03-01T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
                "fingerprint": fp,
            })).collect::<Vec<_>>(),
        });
        payload::parse(v.to_string().as_bytes()).unwrap()
    }

    async fn journal() -> (tempfile::TempDir, Journal) {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(&d.path().join("j.db")).await.unwrap();
        (d, j)
    }

    #[tokio::test]
    async fn replays_are_no_ops_and_hostile_targets_are_refused() {
        let (_d, j) = journal().await;
        let p = Policy::parse(POLICY).unwrap();
        let n = notification(&[
            ("Hot", "a", "bmc1", "n1", false),
            ("Hot", "b", "bmc2", "n1; rm -rf /", false),
            ("Hot", "c", "bmc3", "n[1-10000]", false),
            ("Other", "d", "bmc4", "n1", false),
        ]);
        let s = journal_notification(&j, &p, Mode::Enforce, &n)
            .await
            .unwrap();
        assert_eq!(
            (s.journaled, s.rejected, s.unmatched, s.duplicates),
            (3, 2, 1, 0)
        );
        let again = journal_notification(&j, &p, Mode::Enforce, &n)
            .await
            .unwrap();
        assert_eq!((again.journaled, again.duplicates), (0, 3));
        let rows = j.list(&q()).await.unwrap();
        assert_eq!(rows.len(), 3);
        let by_fp = |fp: &str| rows.iter().find(|r| r.fingerprint == fp).unwrap();
        assert_eq!(by_fp("a").state, state::PENDING);
        assert_eq!(by_fp("b").state, state::REJECTED);
        assert!(by_fp("b").detail.contains("';'"), "{}", by_fp("b").detail);
        assert!(
            by_fp("c").detail.contains("10000 names"),
            "{}",
            by_fp("c").detail
        );
        assert_eq!(by_fp("b").targets, "");
    }

    #[tokio::test]
    async fn quorum_waits_for_two_distinct_sources() {
        let (_d, j) = journal().await;
        let p = Policy::parse(POLICY).unwrap();
        journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[("Hotter", "a", "bmc1", "", false)]),
        )
        .await
        .unwrap();
        // The same instance again (another fingerprint) does not count twice.
        journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[("Hotter", "b", "bmc1", "x", false)]),
        )
        .await
        .unwrap();
        let rows = j.list(&q()).await.unwrap();
        assert!(
            rows.iter().all(|r| r.state == state::AWAITING_QUORUM),
            "{rows:?}"
        );
        assert!(
            rows[0].detail.contains("have 1 (bmc1)"),
            "{}",
            rows[0].detail
        );
        journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[("Hotter", "c", "bmc2", "", false)]),
        )
        .await
        .unwrap();
        let rows = j.list(&q()).await.unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.state == state::PENDING), "{rows:?}");
    }

    #[tokio::test]
    async fn resolve_supersedes_what_has_not_run_and_reverts_what_has() {
        let (_d, j) = journal().await;
        let p = Policy::parse(POLICY).unwrap();
        journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[
                ("Hot", "a", "i", "n1", false),
                ("Hot", "b", "i", "n2", false),
            ]),
        )
        .await
        .unwrap();
        // Pretend the second one ran.
        let b = j
            .list(&q())
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.fingerprint == "b")
            .unwrap();
        let mut c = j.begin().await.unwrap();
        journal::mark_started(&mut c, b.id).await.unwrap();
        journal::set_state(&mut c, b.id, state::DONE, "done", "", None)
            .await
            .unwrap();
        c.commit().await.unwrap();
        let s = journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[("Hot", "a", "i", "n1", true), ("Hot", "b", "i", "n2", true)]),
        )
        .await
        .unwrap();
        assert_eq!((s.superseded, s.journaled), (1, 1));
        let rows = j.list(&q()).await.unwrap();
        let a = rows
            .iter()
            .find(|r| r.fingerprint == "a" && r.phase == "apply")
            .unwrap();
        assert_eq!(a.state, state::SUPERSEDED);
        let rev = rows.iter().find(|r| r.phase == "revert").unwrap();
        assert_eq!(
            (rev.action.as_str(), rev.revert_of, rev.state.as_str()),
            ("slurm.resume", Some(b.id), state::PENDING)
        );
        // A replayed resolve adds nothing.
        let s = journal_notification(
            &j,
            &p,
            Mode::Enforce,
            &notification(&[("Hot", "b", "i", "n2", true)]),
        )
        .await
        .unwrap();
        assert_eq!((s.journaled, s.duplicates), (0, 1));
    }

    fn q() -> crate::journal::ListQuery {
        crate::journal::ListQuery {
            limit: 100,
            ..std::default::Default::default()
        }
    }
}
