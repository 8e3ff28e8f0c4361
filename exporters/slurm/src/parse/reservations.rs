//! `scontrol -o show reservation`: one reservation per line.

use super::{key_values, non_empty, number};

/// One reservation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reservation {
    /// Name.
    pub name: String,
    /// `ACTIVE` or `INACTIVE`.
    pub state: String,
    /// Flags, e.g. `MAINT,SPEC_NODES`.
    pub flags: String,
    /// Node list.
    pub nodes: String,
    /// Partition (`None` when unset).
    pub partition: Option<String>,
    /// Users (`None` when unset).
    pub users: Option<String>,
    /// Accounts (`None` when unset).
    pub accounts: Option<String>,
    /// Node count.
    pub node_count: f64,
    /// Core count.
    pub core_count: f64,
    /// Start, as printed (`2026-11-22T20:36:04`, local time).
    pub start: String,
    /// End, as printed.
    pub end: String,
}

/// Parses the output (`No reservations in the system` gives none).
pub fn parse(out: &str) -> Vec<Reservation> {
    let mut v = Vec::new();
    for line in out.lines() {
        let kv = key_values(line.trim());
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let Some(name) = get("ReservationName") else {
            continue;
        };
        v.push(Reservation {
            name: name.to_string(),
            state: get("State").unwrap_or("").to_string(),
            flags: get("Flags").and_then(non_empty).unwrap_or("").to_string(),
            nodes: get("Nodes").and_then(non_empty).unwrap_or("").to_string(),
            partition: get("PartitionName").and_then(non_empty).map(str::to_string),
            users: get("Users").and_then(non_empty).map(str::to_string),
            accounts: get("Accounts").and_then(non_empty).map(str::to_string),
            node_count: get("NodeCnt").and_then(number).unwrap_or(0.0),
            core_count: get("CoreCnt").and_then(number).unwrap_or(0.0),
            start: get("StartTime").unwrap_or("").to_string(),
            end: get("EndTime").unwrap_or("").to_string(),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::local_time_seconds;

    #[test]
    fn one_reservation() {
        let out = "ReservationName=maint StartTime=2026-11-22T20:36:04 EndTime=2026-11-22T22:36:04 Duration=02:00:00 Nodes=n1 NodeCnt=1 CoreCnt=2 Features=(null) PartitionName=(null) Flags=MAINT,SPEC_NODES TRES=cpu=2 Users=root Groups=(null) Accounts=(null) Licenses=(null) State=ACTIVE BurstBuffer=(null) Watts=n/a MaxStartDelay=(null)\n";
        let r = &parse(out)[0];
        assert_eq!(r.name, "maint");
        assert_eq!(r.state, "ACTIVE");
        assert_eq!(r.flags, "MAINT,SPEC_NODES");
        assert_eq!((r.node_count, r.core_count), (1.0, 2.0));
        assert_eq!(r.users.as_deref(), Some("root"));
        assert_eq!(r.partition, None);
        let start = local_time_seconds(&r.start).unwrap();
        let end = local_time_seconds(&r.end).unwrap();
        assert_eq!(end - start, 7200.0);
        assert!(parse("No reservations in the system\n").is_empty());
        assert_eq!(local_time_seconds("Unknown"), None);
    }
}
