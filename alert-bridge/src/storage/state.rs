//! An episode's state and how one notification changes it. Pure functions: the writer loads
//! the rows a batch touches, applies every alert in arrival order here, and writes the final
//! states back, so the rules live in one place for every backend.
//!
//! Rules (see the README's "Semantics"):
//! * a notification always counts as a delivery (`notifications`, `last_seen`, receiver);
//! * firing → resolved, a changed `endsAt` while resolved, and changed annotations are state
//!   changes (a history row);
//! * a **late firing replay** of a resolved episode (the other Alertmanager of an HA pair, a
//!   retried older notification) arrives within `refire_grace` of the resolution being
//!   recorded and changes nothing;
//! * a firing notification **later** than that re-opens the episode: a **re-fire**, with a
//!   history row of reason `refired`.

use std::sync::Arc;

use crate::payload::{Alert, Status};
use crate::storage::keys::{index_key, plain_text};

/// One episode row.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeRow {
    /// `None` until inserted.
    pub id: Option<i64>,
    pub fingerprint: String,
    pub starts_at: i64,
    pub status: Status,
    pub ends_at: Option<i64>,
    pub alertname: String,
    pub severity: String,
    pub instance: String,
    pub labels: String,
    /// Shared with the history rows of the batch (a notification's annotations can be large).
    pub annotations: Arc<str>,
    pub generator_url: String,
    pub receiver: String,
    pub group_key: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub notifications: i64,
    pub changed_at: i64,
    /// When the resolution was recorded (received time), for telling replays from re-fires.
    pub resolved_seen: Option<i64>,
}

/// Why a history row was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first notification of the episode.
    First,
    /// Firing → resolved.
    Resolved,
    /// Still resolved, with another `endsAt`.
    EndsAt,
    /// Same status, other annotations.
    Annotations,
    /// Resolved → firing again with the same `startsAt`.
    Refired,
    /// Closed because Alertmanager no longer has the alert (reconciliation).
    Vanished,
}

impl Change {
    /// The `reason` stored in the history row.
    pub fn reason(self) -> &'static str {
        match self {
            Change::First => "first notification",
            Change::Resolved => "resolved",
            Change::EndsAt => "end time changed",
            Change::Annotations => "annotations changed",
            Change::Refired => "refired",
            Change::Vanished => VANISHED_REASON,
        }
    }
}

/// History reason of episodes closed by reconciliation.
pub const VANISHED_REASON: &str = "no longer active in Alertmanager";

/// The key an alert's episode is stored under.
pub fn key_of(a: &Alert) -> (String, i64) {
    (index_key(&a.fingerprint).into_owned(), a.starts_at)
}

/// A new episode from its first notification.
pub fn first(a: &Alert, receiver: &str, group_key: &str, received_at: i64) -> EpisodeRow {
    EpisodeRow {
        id: None,
        fingerprint: index_key(&a.fingerprint).into_owned(),
        starts_at: a.starts_at,
        status: a.status,
        ends_at: a.ends_at,
        alertname: index_key(a.alertname()).into_owned(),
        severity: index_key(a.severity()).into_owned(),
        instance: index_key(a.instance()).into_owned(),
        labels: a.labels_json(),
        annotations: a.annotations_json().into(),
        generator_url: plain_text(&a.generator_url).into_owned(),
        receiver: plain_text(receiver).into_owned(),
        group_key: plain_text(group_key).into_owned(),
        first_seen: received_at,
        last_seen: received_at,
        notifications: 1,
        changed_at: 1,
        resolved_seen: (a.status == Status::Resolved).then_some(received_at),
    }
}

/// Applies one later notification of the episode; returns the state change, if any.
pub fn apply(
    e: &mut EpisodeRow,
    a: &Alert,
    receiver: &str,
    group_key: &str,
    received_at: i64,
    refire_grace_ms: i64,
) -> Option<Change> {
    e.notifications += 1;
    e.last_seen = e.last_seen.max(received_at);
    e.receiver = plain_text(receiver).into_owned();
    e.group_key = plain_text(group_key).into_owned();
    if !a.generator_url.is_empty() {
        e.generator_url = plain_text(&a.generator_url).into_owned();
    }
    let annotations: Arc<str> = a.annotations_json().into();
    let change = match (e.status, a.status) {
        (Status::Firing, Status::Resolved) => {
            e.status = Status::Resolved;
            e.ends_at = a.ends_at;
            e.resolved_seen = Some(received_at);
            e.annotations = annotations;
            Some(Change::Resolved)
        }
        (Status::Resolved, Status::Firing) => {
            let resolved_seen = e.resolved_seen.unwrap_or(e.first_seen);
            if received_at >= resolved_seen.saturating_add(refire_grace_ms) {
                e.status = Status::Firing;
                e.ends_at = None;
                e.resolved_seen = None;
                e.annotations = annotations;
                Some(Change::Refired)
            } else {
                // A late replay of the firing state: the resolution stands.
                None
            }
        }
        (Status::Resolved, Status::Resolved) => {
            let change = if e.ends_at != a.ends_at {
                Some(Change::EndsAt)
            } else if e.annotations != annotations {
                Some(Change::Annotations)
            } else {
                None
            };
            e.ends_at = a.ends_at;
            e.annotations = annotations;
            change
        }
        (Status::Firing, Status::Firing) => {
            let change = (e.annotations != annotations).then_some(Change::Annotations);
            e.annotations = annotations;
            change
        }
    };
    if change.is_some() {
        e.changed_at = e.notifications;
    }
    change
}

/// Closes a firing episode that Alertmanager no longer has.
pub fn vanish(e: &mut EpisodeRow, at: i64) -> Option<Change> {
    if e.status != Status::Firing {
        return None;
    }
    e.status = Status::Resolved;
    e.ends_at = Some(at.max(e.starts_at));
    e.resolved_seen = Some(at);
    e.changed_at = e.notifications;
    Some(Change::Vanished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::LabelSet;

    fn alert(status: Status, ends: Option<i64>, summary: &str) -> Alert {
        let labels: LabelSet = [("alertname".to_string(), "A".to_string())].into();
        Alert {
            fingerprint: "f".into(),
            status,
            starts_at: 1_000,
            ends_at: ends,
            labels,
            annotations: [("summary".to_string(), summary.to_string())].into(),
            generator_url: String::new(),
        }
    }

    const GRACE: i64 = 60_000;

    #[test]
    fn fire_resolve_replay_refire() {
        let fire = alert(Status::Firing, None, "hot");
        let mut e = first(&fire, "r", "g", 10_000);
        assert_eq!(
            (e.status, e.notifications, e.changed_at),
            (Status::Firing, 1, 1)
        );
        // A duplicate (HA pair): a delivery, no change.
        assert_eq!(apply(&mut e, &fire, "r", "g", 10_500, GRACE), None);
        assert_eq!(e.notifications, 2);
        let res = alert(Status::Resolved, Some(5_000), "hot");
        assert_eq!(
            apply(&mut e, &res, "r", "g", 20_000, GRACE),
            Some(Change::Resolved)
        );
        assert_eq!(
            (e.status, e.ends_at, e.resolved_seen),
            (Status::Resolved, Some(5_000), Some(20_000))
        );
        // A late firing replay within the grace: the resolution stands.
        assert_eq!(apply(&mut e, &fire, "r", "g", 30_000, GRACE), None);
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(&*e.annotations, r#"{"summary":"hot"}"#);
        // The same resolution again: nothing; another end time: a change.
        assert_eq!(apply(&mut e, &res, "r", "g", 31_000, GRACE), None);
        let res2 = alert(Status::Resolved, Some(6_000), "hot");
        assert_eq!(
            apply(&mut e, &res2, "r", "g", 32_000, GRACE),
            Some(Change::EndsAt)
        );
        // Firing again after the grace: a re-fire.
        let again = alert(Status::Firing, None, "hotter");
        assert_eq!(
            apply(&mut e, &again, "r", "g", 20_000 + GRACE, GRACE),
            Some(Change::Refired)
        );
        assert_eq!(
            (e.status, e.ends_at, e.resolved_seen),
            (Status::Firing, None, None)
        );
        assert_eq!(&*e.annotations, r#"{"summary":"hotter"}"#);
        assert_eq!(e.changed_at, e.notifications);
        // Annotations changing while firing.
        let other = alert(Status::Firing, None, "cold");
        assert_eq!(
            apply(&mut e, &other, "r", "g", 90_000, GRACE),
            Some(Change::Annotations)
        );
    }

    #[test]
    fn resolved_first_and_vanish() {
        let res = alert(Status::Resolved, Some(2_000), "x");
        let e = first(&res, "r", "g", 10);
        assert_eq!(e.resolved_seen, Some(10));
        let mut f = first(&alert(Status::Firing, None, "x"), "r", "g", 10);
        assert_eq!(vanish(&mut f, 50_000), Some(Change::Vanished));
        assert_eq!((f.status, f.ends_at), (Status::Resolved, Some(50_000)));
        assert_eq!(vanish(&mut f, 60_000), None);
    }

    #[test]
    fn odd_values_become_storable_keys() {
        let mut a = alert(Status::Firing, None, "x");
        a.labels.insert("alertname".into(), "a\0b".into());
        a.labels.insert("instance".into(), "i".repeat(100_000));
        a.fingerprint = "f".repeat(5000);
        let e = first(&a, "r\0", "g", 1);
        assert!(
            !e.alertname.contains('\0') && e.instance.len() <= 255 && e.fingerprint.len() <= 255
        );
        assert!(!e.receiver.contains('\0'));
        // The exact values stay in the labels' JSON.
        let back: LabelSet = serde_json::from_str(&e.labels).unwrap();
        assert_eq!(back["alertname"], "a\0b");
    }
}
