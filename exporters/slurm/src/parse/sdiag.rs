//! `sdiag` output: scheduler statistics and RPC counters.

use super::number;

/// RPC counters for one message type or one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Rpc {
    /// Message type (`REQUEST_JOB_INFO`) or user name.
    pub name: String,
    /// Calls.
    pub count: f64,
    /// Total time, microseconds.
    pub total_time_us: f64,
}

/// The parsed statistics. Fields are `None` when the line is absent (they vary by version
/// and by whether backfill has run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sdiag {
    /// Generic `Key: value` lines of the top section (`Server thread count`, `Jobs
    /// submitted`, ...), by key.
    pub general: Vec<(String, f64)>,
    /// `Main schedule statistics` lines, by key (`Last cycle`, `Mean depth cycle`, ...).
    pub main: Vec<(String, f64)>,
    /// `Backfilling stats` lines, by key.
    pub backfill: Vec<(String, f64)>,
    /// RPCs by message type.
    pub rpc_by_type: Vec<Rpc>,
    /// RPCs by user.
    pub rpc_by_user: Vec<Rpc>,
    /// Pending RPCs by message type (`(name, count)`).
    pub pending_rpcs: Vec<(String, f64)>,
}

impl Sdiag {
    fn get(v: &[(String, f64)], k: &str) -> Option<f64> {
        v.iter().find(|(key, _)| key == k).map(|(_, x)| *x)
    }
    /// A top-section value.
    pub fn general(&self, k: &str) -> Option<f64> {
        Self::get(&self.general, k)
    }
    /// A main-scheduler value.
    pub fn main(&self, k: &str) -> Option<f64> {
        Self::get(&self.main, k)
    }
    /// A backfill value.
    pub fn backfill(&self, k: &str) -> Option<f64> {
        Self::get(&self.backfill, k)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    General,
    Main,
    Backfill,
    RpcType,
    RpcUser,
    Pending,
    Other,
}

/// `NAME ( ID) count:N ave_time:N total_time:N`
fn rpc_line(line: &str) -> Option<Rpc> {
    let open = line.find('(')?;
    let name = line[..open].trim();
    if name.is_empty() {
        return None;
    }
    let rest = &line[line.find(')')? + 1..];
    let mut count = None;
    let mut total = None;
    for tok in rest.split_whitespace() {
        if let Some(v) = tok.strip_prefix("count:") {
            count = number(v);
        } else if let Some(v) = tok.strip_prefix("total_time:") {
            total = number(v);
        }
    }
    Some(Rpc {
        name: name.to_string(),
        count: count?,
        total_time_us: total.unwrap_or(0.0),
    })
}

/// Parses `sdiag` output. Unknown lines are ignored.
pub fn parse(out: &str) -> Sdiag {
    let mut s = Sdiag::default();
    let mut sec = Section::General;
    for raw in out.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('*') {
            continue;
        }
        if line.starts_with("Main schedule statistics") {
            sec = Section::Main;
            continue;
        }
        if line.starts_with("Backfilling stats") {
            sec = Section::Backfill;
            continue;
        }
        if line.starts_with("Remote Procedure Call statistics by message type") {
            sec = Section::RpcType;
            continue;
        }
        if line.starts_with("Remote Procedure Call statistics by user") {
            sec = Section::RpcUser;
            continue;
        }
        if line.starts_with("Pending RPC statistics") {
            sec = Section::Pending;
            continue;
        }
        if line.starts_with("Latency for") || line.starts_with("Federation") {
            sec = Section::Other;
            continue;
        }
        match sec {
            Section::RpcType => {
                if let Some(r) = rpc_line(line) {
                    s.rpc_by_type.push(r);
                }
            }
            Section::RpcUser => {
                if let Some(r) = rpc_line(line) {
                    s.rpc_by_user.push(r);
                }
            }
            Section::Pending => {
                // `REQUEST_X ( 1234) count:5`
                if let Some(r) = rpc_line(line) {
                    s.pending_rpcs.push((r.name, r.count));
                }
            }
            Section::General | Section::Main | Section::Backfill => {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                // `Last cycle when: Sat Nov 21 ... (1795293415)`: keep the epoch.
                let v = v.trim();
                let value = match (v.rfind('('), v.ends_with(')')) {
                    (Some(i), true) => number(&v[i + 1..v.len() - 1]),
                    _ => number(v.split_whitespace().next().unwrap_or("")),
                };
                let Some(value) = value else { continue };
                let entry = (k.trim().to_string(), value);
                match sec {
                    Section::General => s.general.push(entry),
                    Section::Main => s.main.push(entry),
                    _ => s.backfill.push(entry),
                }
            }
            Section::Other => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../testdata/sdiag.txt");

    #[test]
    fn captured_sample() {
        let s = parse(SAMPLE);
        assert_eq!(s.general("Server thread count"), Some(3.0));
        assert_eq!(s.general("Jobs submitted"), Some(20.0));
        assert_eq!(s.general("DBD Agent queue size"), Some(0.0));
        assert_eq!(s.main("Last cycle"), Some(140.0));
        assert_eq!(s.main("Mean depth cycle"), Some(8.0));
        assert_eq!(
            s.backfill("Total backfilled jobs (since last slurm start)"),
            Some(0.0)
        );
        assert_eq!(s.backfill("Last cycle when"), None); // N/A
        let r = &s.rpc_by_type[0];
        assert_eq!(
            (r.name.as_str(), r.count, r.total_time_us),
            ("REQUEST_SUBMIT_BATCH_JOB", 15.0, 13009.0)
        );
        assert_eq!(s.rpc_by_type.len(), 11);
        assert_eq!(s.rpc_by_user[0].name, "root");
        assert_eq!(s.rpc_by_user[0].count, 40.0);
        assert!(s.pending_rpcs.is_empty());
    }

    #[test]
    fn backfill_when_and_garbage() {
        let s = parse("Backfilling stats\n\tLast cycle when: Sat Nov 21 20:36:55 2026 (1795293415)\n\tLast cycle: 333\nRemote Procedure Call statistics by message type\n\tBROKEN ( 1) count:x\n\tREQUEST_PING ( 1008) count:2 ave_time:205 total_time:411\n");
        assert_eq!(s.backfill("Last cycle when"), Some(1795293415.0));
        assert_eq!(s.backfill("Last cycle"), Some(333.0));
        assert_eq!(s.rpc_by_type.len(), 1);
        assert_eq!(parse("garbage\n:::\n(((\n"), Sdiag::default());
    }
}
