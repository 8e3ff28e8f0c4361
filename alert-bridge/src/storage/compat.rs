//! alertsnitch-compatible tables on MySQL/MariaDB, so that OpenSCOW's alarm-log page (which
//! sends raw SQL through a Grafana datasource named `AlarmDB-MySQL`) shows our alerts.
//!
//! alertsnitch logs every notification: an `AlertGroup` row, its `GroupLabel`,
//! `CommonLabel` and `CommonAnnotation` rows, and per alert an `Alert` row with its
//! `AlertLabel` and `AlertAnnotation` rows. OpenSCOW keeps, per `(startsAt, fingerprint)`,
//! the row with the highest `ID` and joins its `description` annotation and `severity`
//! label. The bridge writes the same rows, in the same transaction as the episode, for each
//! **state change** of an episode (first notification, resolution, re-fire, annotation
//! change, closed by reconciliation) — not for repeated deliveries — so the highest `ID` of
//! an episode is always its current state. On top of alertsnitch:
//!
//! * times are UTC `DATETIME`s (whole seconds);
//! * the `severity` label is mapped for OpenSCOW, which tags `Error` and `Warning` only
//!   (`--compat.severity-map`, default `critical=Error,warning=Warning,info=Info`); an alert
//!   without one gets `none`;
//! * an alert without a `description` annotation gets its `summary` (else its alert name) as
//!   `description`, since OpenSCOW's query drops alerts without one;
//! * values longer than the columns (`VARCHAR(100)` names, `VARCHAR(1000)` values, `TEXT`)
//!   are cut to fit; the exact values stay in the alert log's own tables.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::mysql::MySqlConnection;
use sqlx::Row as _;

use super::keys::{truncate_bytes, truncate_chars};
use super::state::EpisodeRow;
use super::write::{Event, Source};
use crate::payload::LabelSet;

/// Settings of the compatibility tables.
#[derive(Debug, Clone, PartialEq)]
pub struct CompatConfig {
    /// `(our severity, written severity)`, matched case-insensitively.
    pub severity_map: Vec<(String, String)>,
}

impl Default for CompatConfig {
    fn default() -> Self {
        Self::parse(DEFAULT_SEVERITY_MAP).unwrap_or(Self {
            severity_map: Vec::new(),
        })
    }
}

/// The default `--compat.severity-map`.
pub const DEFAULT_SEVERITY_MAP: &str = "critical=Error,warning=Warning,info=Info";

/// Severity written for alerts without a `severity` label.
pub const MISSING_SEVERITY: &str = "none";

impl CompatConfig {
    /// Parses `from=to,from=to` (an empty string maps nothing).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut severity_map = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (from, to) = item
                .split_once('=')
                .ok_or_else(|| format!("severity map item {item:?}: want from=to"))?;
            let (from, to) = (from.trim(), to.trim());
            if from.is_empty() || to.is_empty() || to.chars().count() > 1000 {
                return Err(format!("severity map item {item:?}: want from=to"));
            }
            severity_map.push((from.to_string(), to.to_string()));
        }
        Ok(Self { severity_map })
    }

    /// The severity written for our `severity` label value (`None`: no label).
    pub fn severity(&self, ours: Option<&str>) -> String {
        let Some(v) = ours else {
            return MISSING_SEVERITY.to_string();
        };
        self.severity_map
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(v))
            .map_or_else(|| v.to_string(), |(_, to)| to.clone())
    }
}

/// The `description` OpenSCOW shows: the annotation, else `summary`, else the alert name.
pub fn description(annotations: &LabelSet, labels: &LabelSet) -> String {
    annotations
        .get("description")
        .or_else(|| annotations.get("summary"))
        .or_else(|| labels.get("alertname"))
        .cloned()
        .unwrap_or_default()
}

fn utc(ms: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(ms.div_euclid(1000), 0)
        .unwrap_or_default()
        .naive_utc()
}

const NAME_MAX: usize = 100;
const VALUE_MAX: usize = 1000;
const TEXT_MAX: usize = 65_535;

fn name(s: &str) -> &str {
    truncate_chars(s, NAME_MAX)
}
fn value(s: &str) -> &str {
    truncate_chars(s, VALUE_MAX)
}
fn text(s: &str) -> &str {
    truncate_bytes(s, TEXT_MAX)
}

fn placeholders(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

/// Ids of the rows a multi-row INSERT just created (consecutive, by
/// `auto_increment_increment`), checked against what the table holds.
async fn inserted_ids(
    conn: &mut MySqlConnection,
    table: &str,
    check_col: &str,
    first: u64,
    expected: &[String],
) -> Result<Vec<i64>, sqlx::Error> {
    let inc: i64 = sqlx::query_scalar("SELECT CAST(@@auto_increment_increment AS SIGNED)")
        .fetch_one(&mut *conn)
        .await?;
    let ids: Vec<i64> = (0..expected.len() as i64)
        .map(|i| first as i64 + i * inc.max(1))
        .collect();
    let sql = format!(
        "SELECT ID, {check_col} FROM {table} WHERE ID IN ({})",
        vec!["?"; ids.len()].join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    let got: HashMap<i64, String> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i32, _>(0)? as i64,
                r.try_get_unchecked::<String, _>(1)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    for (id, want) in ids.iter().zip(expected) {
        if got.get(id) != Some(want) {
            return Err(sqlx::Error::Protocol(format!(
                "{table}: AUTO_INCREMENT ids of a multi-row insert are not consecutive \
                 (innodb_autoinc_lock_mode?)"
            )));
        }
    }
    Ok(ids)
}

struct Group {
    time: NaiveDateTime,
    receiver: String,
    status: String,
    external_url: String,
    group_key: String,
    labels: Vec<(String, String, &'static str)>,
}

/// Writes the compatibility rows of `events`; returns each event's `Alert.ID`.
pub(crate) async fn write(
    conn: &mut MySqlConnection,
    events: &[Event<'_>],
    states: &HashMap<(String, i64), EpisodeRow>,
    cfg: &CompatConfig,
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // One AlertGroup per notification (and one for reconciliation closes).
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    let mut event_group = Vec::with_capacity(events.len());
    for ev in events {
        let (id, group) = match &ev.source {
            Source::Notification { n, .. } => {
                let mut labels = Vec::new();
                for (k, v) in &n.group_labels {
                    labels.push((k.clone(), v.clone(), "GroupLabel"));
                }
                for (k, v) in &n.common_labels {
                    labels.push((k.clone(), v.clone(), "CommonLabel"));
                }
                for (k, v) in &n.common_annotations {
                    labels.push((k.clone(), v.clone(), "CommonAnnotation"));
                }
                (
                    *n as *const _ as usize,
                    Group {
                        time: utc(ev.received_at),
                        receiver: n.receiver.clone(),
                        status: n.status.as_str().to_string(),
                        external_url: n.external_url.clone(),
                        group_key: n.group_key.clone(),
                        labels,
                    },
                )
            }
            Source::Episode => (
                0,
                Group {
                    time: utc(ev.received_at),
                    receiver: "hpcmon-alert-bridge".into(),
                    status: "resolved".into(),
                    external_url: String::new(),
                    group_key: "reconciliation".into(),
                    labels: Vec::new(),
                },
            ),
        };
        let next = groups.len();
        let gi = *group_of.entry(id).or_insert_with(|| {
            groups.push(group);
            next
        });
        event_group.push(gi);
    }
    let mut group_ids = Vec::with_capacity(groups.len());
    for part in groups.chunks(200) {
        let sql = format!(
            "INSERT INTO AlertGroup (time, receiver, status, externalURL, groupKey) VALUES {}",
            placeholders(part.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        let mut expected = Vec::new();
        for g in part {
            let gk = truncate_chars(&g.group_key, 255).to_string();
            q = q
                .bind(g.time)
                .bind(truncate_chars(&g.receiver, 100))
                .bind(truncate_chars(&g.status, 50))
                .bind(text(&g.external_url))
                .bind(gk.clone());
            expected.push(gk);
        }
        let first = q.execute(&mut *conn).await?.last_insert_id();
        group_ids.extend(inserted_ids(conn, "AlertGroup", "groupKey", first, &expected).await?);
    }
    for table in ["GroupLabel", "CommonLabel", "CommonAnnotation"] {
        let col = match table {
            "GroupLabel" => "GroupLabel",
            "CommonLabel" => "Label",
            _ => "Annotation",
        };
        let rows: Vec<(i64, &str, &str)> = groups
            .iter()
            .zip(&group_ids)
            .flat_map(|(g, id)| {
                g.labels
                    .iter()
                    .filter(move |(_, _, t)| *t == table)
                    .map(move |(k, v, _)| (*id, k.as_str(), v.as_str()))
            })
            .collect();
        for part in rows.chunks(500) {
            let sql = format!(
                "INSERT INTO {table} (AlertGroupID, {col}, Value) VALUES {}",
                placeholders(part.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (id, k, v) in part {
                q = q.bind(*id).bind(name(k)).bind(value(v));
            }
            q.execute(&mut *conn).await?;
        }
    }
    // Alert rows, with their labels and annotations.
    struct AlertRow {
        group: i64,
        status: &'static str,
        starts: NaiveDateTime,
        ends: Option<NaiveDateTime>,
        generator_url: String,
        fingerprint: String,
        labels: LabelSet,
        annotations: LabelSet,
    }
    let mut rows = Vec::with_capacity(events.len());
    for (ev, gi) in events.iter().zip(&event_group) {
        let st = states.get(&ev.key);
        let (labels, generator_url, fingerprint, starts_at) = match &ev.source {
            Source::Notification { a, .. } => (
                a.labels.clone(),
                a.generator_url.clone(),
                a.fingerprint.clone(),
                a.starts_at,
            ),
            Source::Episode => {
                let e = st.ok_or_else(|| sqlx::Error::Protocol("episode state missing".into()))?;
                (
                    serde_json::from_str(&e.labels).unwrap_or_default(),
                    e.generator_url.clone(),
                    e.fingerprint.clone(),
                    e.starts_at,
                )
            }
        };
        let annotations: LabelSet = serde_json::from_str(&ev.annotations).unwrap_or_default();
        rows.push(AlertRow {
            group: group_ids[*gi],
            status: ev.status.as_str(),
            starts: utc(starts_at),
            ends: ev.ends_at.map(utc),
            generator_url,
            fingerprint,
            labels,
            annotations,
        });
    }
    let mut alert_ids: Vec<i64> = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        // Cut runs at ~4 MB of bound text (max_allowed_packet).
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < 200 && bytes < 4 << 20 {
            bytes += rows[end].generator_url.len() + rows[end].fingerprint.len() + 64;
            end += 1;
        }
        let part = &rows[start..end];
        let sql = format!(
            "INSERT INTO Alert (alertGroupID, status, startsAt, endsAt, generatorURL, fingerprint) \
             VALUES {}",
            placeholders(part.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        let mut expected = Vec::new();
        for r in part {
            let fp = text(&r.fingerprint).to_string();
            q = q
                .bind(r.group)
                .bind(r.status)
                .bind(r.starts)
                .bind(r.ends)
                .bind(text(&r.generator_url))
                .bind(fp.clone());
            expected.push(fp);
        }
        let first = q.execute(&mut *conn).await?.last_insert_id();
        alert_ids.extend(inserted_ids(conn, "Alert", "fingerprint", first, &expected).await?);
        start = end;
    }
    let mut label_rows: Vec<(i64, String, String)> = Vec::new();
    let mut annotation_rows: Vec<(i64, String, String)> = Vec::new();
    for (r, id) in rows.iter().zip(&alert_ids) {
        for (k, v) in &r.labels {
            if k == "severity" {
                continue;
            }
            label_rows.push((*id, name(k).to_string(), value(v).to_string()));
        }
        let sev = cfg.severity(r.labels.get("severity").map(String::as_str));
        label_rows.push((*id, "severity".into(), value(&sev).to_string()));
        for (k, v) in &r.annotations {
            if k == "description" {
                continue;
            }
            annotation_rows.push((*id, name(k).to_string(), value(v).to_string()));
        }
        let desc = description(&r.annotations, &r.labels);
        annotation_rows.push((*id, "description".into(), value(&desc).to_string()));
    }
    for (table, col, rows) in [
        ("AlertLabel", "Label", &label_rows),
        ("AlertAnnotation", "Annotation", &annotation_rows),
    ] {
        for part in rows.chunks(500) {
            let sql = format!(
                "INSERT INTO {table} (AlertID, {col}, Value) VALUES {}",
                placeholders(part.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (id, k, v) in part {
                q = q.bind(*id).bind(k.as_str()).bind(v.as_str());
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(alert_ids.into_iter().map(Some).collect())
}

/// Deletes the compatibility rows written for these episodes (before the episodes go), and
/// the alert groups left without alerts.
pub(crate) async fn delete_for_episodes(
    conn: &mut MySqlConnection,
    episode_ids: &[i64],
) -> Result<(), sqlx::Error> {
    for part in episode_ids.chunks(500) {
        let ph = vec!["?"; part.len()].join(", ");
        let sql = format!(
            "SELECT a.ID, a.alertGroupID FROM Alert a JOIN notifications n \
             ON n.compat_alert_id = a.ID WHERE n.episode_id IN ({ph})"
        );
        let mut q = sqlx::query(&sql);
        for id in part {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            continue;
        }
        let mut alerts = Vec::new();
        let mut groups = Vec::new();
        for r in &rows {
            alerts.push(r.try_get::<i32, _>(0)? as i64);
            groups.push(r.try_get::<i32, _>(1)? as i64);
        }
        groups.sort_unstable();
        groups.dedup();
        for chunk in alerts.chunks(500) {
            let sql = format!(
                "DELETE FROM Alert WHERE ID IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
        for chunk in groups.chunks(500) {
            let sql = format!(
                "DELETE FROM AlertGroup WHERE ID IN ({}) AND NOT EXISTS \
                 (SELECT 1 FROM Alert WHERE Alert.alertGroupID = AlertGroup.ID)",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_map() {
        let c = CompatConfig::default();
        assert_eq!(c.severity(Some("critical")), "Error");
        assert_eq!(c.severity(Some("Warning")), "Warning");
        assert_eq!(c.severity(Some("info")), "Info");
        assert_eq!(c.severity(Some("page")), "page");
        assert_eq!(c.severity(None), MISSING_SEVERITY);
        let c = CompatConfig::parse("page=Error, ticket = Warning").unwrap();
        assert_eq!(c.severity(Some("page")), "Error");
        assert_eq!(c.severity(Some("ticket")), "Warning");
        assert!(CompatConfig::parse("critical").is_err());
        assert!(CompatConfig::parse("=x").is_err());
        assert_eq!(CompatConfig::parse("").unwrap().severity_map.len(), 0);
    }

    #[test]
    fn description_falls_back() {
        let l: LabelSet = [("alertname".to_string(), "A".to_string())].into();
        let mut a = LabelSet::new();
        assert_eq!(description(&a, &l), "A");
        a.insert("summary".into(), "s".into());
        assert_eq!(description(&a, &l), "s");
        a.insert("description".into(), "d".into());
        assert_eq!(description(&a, &l), "d");
    }
}
