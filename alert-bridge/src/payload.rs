//! The Alertmanager webhook payload (version "4") and its validation.
//!
//! [`parse`] turns the raw request body into a [`Notification`] whose alerts are ready to
//! store, or a [`PayloadError`] that says why the payload can never succeed (the webhook
//! answers it with 400, and Alertmanager does not retry 4xx). Unknown fields are ignored,
//! because newer Alertmanagers add some. An `endsAt` of `0001-01-01T00:00:00Z` means the
//! alert is still firing.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

/// Label and annotation sets, kept sorted so that their JSON text is canonical.
pub type LabelSet = BTreeMap<String, String>;

/// The webhook body exactly as Alertmanager sends it (fields we do not use are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    #[serde(default)]
    pub group_labels: LabelSet,
    #[serde(default)]
    pub common_labels: LabelSet,
    #[serde(default)]
    pub common_annotations: LabelSet,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
}

/// One alert of the payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// An alert's state in one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
    /// Parses `firing` or `resolved`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "firing" => Some(Status::Firing),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// A validated alert, ready to store. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub fingerprint: String,
    pub status: Status,
    pub starts_at: i64,
    /// `None` while firing.
    pub ends_at: Option<i64>,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub generator_url: String,
}

impl Alert {
    /// The `alertname` label (empty if absent).
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
    /// The `severity` label (empty if absent).
    pub fn severity(&self) -> &str {
        self.labels.get("severity").map_or("", String::as_str)
    }
    /// Where the alert is: the `instance` label, else `node`, else empty.
    pub fn instance(&self) -> &str {
        self.labels
            .get("instance")
            .or_else(|| self.labels.get("node"))
            .map_or("", String::as_str)
    }
    /// Canonical JSON of the labels.
    pub fn labels_json(&self) -> String {
        serde_json::to_string(&self.labels).unwrap_or_else(|_| "{}".into())
    }
    /// Canonical JSON of the annotations.
    pub fn annotations_json(&self) -> String {
        serde_json::to_string(&self.annotations).unwrap_or_else(|_| "{}".into())
    }
}

/// A validated notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub receiver: String,
    pub status: Status,
    pub group_key: String,
    pub external_url: String,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    pub truncated_alerts: u64,
    pub alerts: Vec<Alert>,
}

/// Why a payload was rejected; `reason()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("unsupported webhook payload version {0:?} (want \"4\")")]
    Version(String),
    #[error("invalid payload: {0}")]
    Invalid(String),
}

impl PayloadError {
    /// The `reason` label of the rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            PayloadError::Malformed(_) => "malformed_json",
            PayloadError::Version(_) => "wrong_version",
            PayloadError::Invalid(_) => "invalid",
        }
    }
}

/// Longest label/annotation name, fingerprint, etc. we accept (bytes).
pub const MAX_NAME_LEN: usize = 1024;

/// Parses an RFC 3339 timestamp into milliseconds since the epoch. `Ok(None)` for
/// Go's zero time (`0001-01-01T00:00:00Z`), which Alertmanager uses for "not set".
pub fn parse_time(s: &str) -> Result<Option<i64>, String> {
    let t: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339(s).map_err(|e| format!("invalid timestamp {s:?}: {e}"))?;
    let ms = t.timestamp_millis();
    // Go's zero time, in any offset; anything before year 1000 is treated the same.
    if ms <= -30_610_224_000_000 {
        return Ok(None);
    }
    Ok(Some(ms))
}

fn check_labels(what: &str, i: usize, set: &LabelSet) -> Result<(), PayloadError> {
    for name in set.keys() {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(PayloadError::Invalid(format!(
                "alerts[{i}].{what}: name must be 1..{MAX_NAME_LEN} bytes"
            )));
        }
    }
    Ok(())
}

/// Parses and validates a webhook body. Never panics, whatever the bytes.
pub fn parse(body: &[u8]) -> Result<Notification, PayloadError> {
    let p: WebhookPayload =
        serde_json::from_slice(body).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    if p.version != "4" {
        return Err(PayloadError::Version(p.version));
    }
    let Some(status) = Status::parse(&p.status) else {
        return Err(PayloadError::Invalid(format!(
            "status {:?} is neither \"firing\" nor \"resolved\"",
            p.status
        )));
    };
    let mut alerts = Vec::with_capacity(p.alerts.len());
    for (i, a) in p.alerts.into_iter().enumerate() {
        let status = Status::parse(&a.status).ok_or_else(|| {
            PayloadError::Invalid(format!(
                "alerts[{i}].status {:?} is neither \"firing\" nor \"resolved\"",
                a.status
            ))
        })?;
        if a.fingerprint.is_empty() || a.fingerprint.len() > MAX_NAME_LEN {
            return Err(PayloadError::Invalid(format!(
                "alerts[{i}].fingerprint must be 1..{MAX_NAME_LEN} bytes"
            )));
        }
        if a.labels.is_empty() {
            return Err(PayloadError::Invalid(format!(
                "alerts[{i}].labels is empty"
            )));
        }
        check_labels("labels", i, &a.labels)?;
        check_labels("annotations", i, &a.annotations)?;
        let starts_at = parse_time(&a.starts_at)
            .map_err(|e| PayloadError::Invalid(format!("alerts[{i}].startsAt: {e}")))?
            .ok_or_else(|| PayloadError::Invalid(format!("alerts[{i}].startsAt is not set")))?;
        let ends = if a.ends_at.is_empty() {
            None
        } else {
            parse_time(&a.ends_at)
                .map_err(|e| PayloadError::Invalid(format!("alerts[{i}].endsAt: {e}")))?
        };
        let ends_at = match status {
            Status::Firing => None,
            Status::Resolved => Some(ends.ok_or_else(|| {
                PayloadError::Invalid(format!("alerts[{i}] is resolved but has no endsAt"))
            })?),
        };
        if let Some(e) = ends_at {
            if e < starts_at {
                return Err(PayloadError::Invalid(format!(
                    "alerts[{i}].endsAt is before startsAt"
                )));
            }
        }
        alerts.push(Alert {
            fingerprint: a.fingerprint,
            status,
            starts_at,
            ends_at,
            labels: a.labels,
            annotations: a.annotations,
            generator_url: a.generator_url,
        });
    }
    Ok(Notification {
        receiver: p.receiver,
        status,
        group_key: p.group_key,
        external_url: p.external_url,
        group_labels: p.group_labels,
        common_labels: p.common_labels,
        common_annotations: p.common_annotations,
        truncated_alerts: p.truncated_alerts,
        alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = include_str!("../testdata/webhook-sample.json");
    const RESOLVED: &str = include_str!("../testdata/webhook-sample-resolved.json");

    #[test]
    fn parses_real_firing_sample() {
        let n = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(n.receiver, "webhook");
        assert_eq!(n.alerts.len(), 1);
        let a = &n.alerts[0];
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.ends_at, None);
        assert_eq!(a.fingerprint, "ccfa0709acb8f95f");
        assert_eq!(a.alertname(), "RigAlwaysFiring");
        assert_eq!(a.severity(), "warning");
        assert_eq!(
            a.starts_at,
            parse_time("2026-11-21T19:29:16.84Z").unwrap().unwrap()
        );
        assert!(a.generator_url.starts_with("http://127.0.0.1:19090/graph"));
        assert_eq!(
            n.group_key,
            "{}:{alertname=\"RigAlwaysFiring\", cluster=\"rig\"}"
        );
    }

    #[test]
    fn parses_real_resolved_sample() {
        let n = parse(RESOLVED.as_bytes()).unwrap();
        let a = &n.alerts[0];
        assert_eq!(a.status, Status::Resolved);
        assert_eq!(a.ends_at.unwrap() - a.starts_at, 9_000);
        assert_eq!(a.instance(), "n3");
    }

    #[test]
    fn parses_every_captured_record() {
        for line in include_str!("../testdata/webhook-all.jsonl").lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let body = serde_json::to_vec(&v["body"]).unwrap();
            let n = parse(&body).unwrap();
            assert!(!n.alerts.is_empty());
        }
    }

    fn with(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let b = with(|v| {
            v["brandNew"] = serde_json::json!({"x": [1, 2]});
            v["alerts"][0]["alsoNew"] = serde_json::json!(true);
        });
        assert!(parse(&b).is_ok());
    }

    #[test]
    fn rejects_with_reasons() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "malformed_json"),
            (b"".to_vec(), "malformed_json"),
            (b"[]".to_vec(), "malformed_json"),
            (with(|v| v["version"] = "3".into()), "wrong_version"),
            (with(|v| v["version"] = 4.into()), "malformed_json"),
            (
                with(|v| v["alerts"][0]["labels"]["x"] = 1.into()),
                "malformed_json",
            ),
            (
                with(|v| {
                    v["alerts"][0].as_object_mut().unwrap().remove("startsAt");
                }),
                "malformed_json",
            ),
            (
                with(|v| {
                    v["alerts"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("fingerprint");
                }),
                "malformed_json",
            ),
            (
                with(|v| v["alerts"][0]["startsAt"] = "yesterday".into()),
                "invalid",
            ),
            (
                with(|v| v["alerts"][0]["startsAt"] = "0001-01-01T00:00:00Z".into()),
                "invalid",
            ),
            (
                with(|v| v["alerts"][0]["status"] = "pending".into()),
                "invalid",
            ),
            (with(|v| v["status"] = "bad".into()), "invalid"),
            (
                with(|v| v["alerts"][0]["fingerprint"] = "".into()),
                "invalid",
            ),
            (
                with(|v| v["alerts"][0]["labels"] = serde_json::json!({})),
                "invalid",
            ),
            (
                with(|v| {
                    v["alerts"][0]["status"] = "resolved".into();
                }),
                "invalid",
            ),
            (
                with(|v| {
                    v["alerts"][0]["status"] = "resolved".into();
                    v["alerts"][0]["endsAt"] = "2020-01-01T00:00:00Z".into();
                }),
                "invalid",
            ),
        ];
        for (body, reason) in cases {
            let e = parse(&body).unwrap_err();
            assert_eq!(
                e.reason(),
                reason,
                "{e} for {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn odd_label_values_are_kept_verbatim() {
        let odd = "a\"b'c\n<script>é😀; DROP TABLE episodes;--";
        let b = with(|v| v["alerts"][0]["labels"]["node"] = odd.into());
        let n = parse(&b).unwrap();
        assert_eq!(n.alerts[0].labels["node"], odd);
        let back: LabelSet = serde_json::from_str(&n.alerts[0].labels_json()).unwrap();
        assert_eq!(back["node"], odd);
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&b);
        }

        #[test]
        fn never_panics_on_mutated_sample(pos in 0usize..1200, byte in any::<u8>(), cut in 0usize..1300) {
            let mut b = SAMPLE.as_bytes().to_vec();
            if pos < b.len() { b[pos] = byte; }
            b.truncate(cut);
            let _ = parse(&b);
        }

        #[test]
        fn timestamps_roundtrip_or_reject(s in "\\PC{0,40}") {
            let _ = parse_time(&s);
        }

        #[test]
        fn any_label_values_survive(vals in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{0,30}", 1..6)) {
            let b = with(|v| v["alerts"][0]["labels"] = serde_json::to_value(&vals).unwrap());
            let n = parse(&b).unwrap();
            prop_assert_eq!(&n.alerts[0].labels, &vals);
        }
    }
}
