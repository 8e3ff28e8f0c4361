//! `mdadm` collector: Linux software RAID from `/proc/mdstat`: `node_md_state{device,state}`
//! (active, inactive, recovering, resync, check), `node_md_disks{device,state}` (active,
//! failed, spare), `node_md_disks_required`, `node_md_blocks` and `node_md_blocks_synced`,
//! as node_exporter 1.5 reports them.
//!
//! Without `/proc/mdstat` (no md driver) nothing is reported. A device entry that cannot be
//! parsed (a truncated file) is skipped with a log line instead of failing the whole collector
//! as node_exporter does; the other arrays are still reported.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use hpcmon_kit::{Collector, Context, MetricSet};
use regex::Regex;

use super::Config;

/// Builds the `mdadm` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Mdadm {
        mdstat: cfg.paths.proc("mdstat"),
    }))
}

/// The `mdadm` collector.
pub struct Mdadm {
    mdstat: PathBuf,
}

/// One array from `/proc/mdstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdStat {
    /// `md0`
    pub name: String,
    /// `active`, `inactive`, `recovering`, `resyncing` or `checking`.
    pub state: String,
    /// Disks in use (`[total/active]`).
    pub disks_active: i64,
    /// Disks the array needs.
    pub disks_total: i64,
    /// Disks marked `(F)`.
    pub disks_failed: i64,
    /// Disks marked `(S)`.
    pub disks_spare: i64,
    /// Size in 1K blocks.
    pub blocks_total: i64,
    /// Blocks in sync (equal to the size unless a rebuild/resync/check runs).
    pub blocks_synced: i64,
}

fn status_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]").expect("valid"))
}

fn recovery_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\((\d+)/\d+\)").expect("valid"))
}

/// `(active, total, size)` from the device line and the status line below it.
fn eval_status(device_line: &str, status_line: &str) -> Result<(i64, i64, i64), String> {
    let size: i64 = status_line
        .split_ascii_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unexpected status line {status_line:?}"))?;
    if device_line.contains("raid0") || device_line.contains("linear") {
        // Only member disks carry a `[n]` on the device line.
        let total = device_line.matches('[').count() as i64;
        return Ok((total, total, size));
    }
    if device_line.contains("inactive") {
        return Ok((0, 0, size));
    }
    let c = status_re()
        .captures(status_line)
        .ok_or_else(|| format!("no [total/active] in status line {status_line:?}"))?;
    let total = c[2].parse().map_err(|_| "bad total".to_owned())?;
    let active = c[3].parse().map_err(|_| "bad active".to_owned())?;
    Ok((active, total, size))
}

/// Parses `/proc/mdstat`. Entries that do not parse are returned as errors next to the good
/// ones so one bad entry does not hide the others.
pub fn parse(text: &str) -> (Vec<MdStat>, Vec<String>) {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with([' ', '\t'])
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            errors.push(format!("not enough fields in md line {line:?}"));
            continue;
        }
        let name = fields[0];
        let Some(status_line) = lines.get(i + 1).filter(|l| l.starts_with([' ', '\t'])) else {
            errors.push(format!("{name}: no status line"));
            continue;
        };
        let (active, total, size) = match eval_status(line, status_line) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut sync_idx = i + 2;
        if lines.get(sync_idx).is_some_and(|l| l.contains("bitmap")) {
            sync_idx += 1;
        }
        // The sync line belongs to this entry only if indented.
        let sync_line = lines
            .get(sync_idx)
            .filter(|l| l.starts_with([' ', '\t']))
            .copied()
            .unwrap_or("");
        let recovering = sync_line.contains("recovery");
        let resyncing = sync_line.contains("resync");
        let checking = sync_line.contains("check");
        let mut state = fields[2].to_owned();
        let mut synced = size;
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "checking"
            } else {
                "resyncing"
            }
            .to_owned();
            if sync_line.contains("PENDING") || sync_line.contains("DELAYED") {
                synced = 0;
            } else {
                match recovery_re()
                    .captures(sync_line)
                    .and_then(|c| c[1].parse().ok())
                {
                    Some(v) => synced = v,
                    None => {
                        errors.push(format!("{name}: unexpected sync line {sync_line:?}"));
                        continue;
                    }
                }
            }
        }
        out.push(MdStat {
            name: name.to_owned(),
            state,
            disks_active: active,
            disks_total: total,
            disks_failed: line.matches("(F)").count() as i64,
            disks_spare: line.matches("(S)").count() as i64,
            blocks_total: size,
            blocks_synced: synced,
        });
    }
    (out, errors)
}

impl Collector for Mdadm {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = match std::fs::read_to_string(&self.mdstat) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (arrays, errors) = parse(&text);
        for e in &errors {
            tracing::warn!(error = %e, "skipping unparsable /proc/mdstat entry");
        }
        for md in &arrays {
            let dev = md.name.as_str();
            out.gauge("node_md_disks_required", "Total number of disks of device.")
                .sample(&[("device", dev)], md.disks_total as f64);
            let disks = out.gauge(
                "node_md_disks",
                "Number of active/failed/spare disks of device.",
            );
            disks.sample(
                &[("device", dev), ("state", "active")],
                md.disks_active as f64,
            );
            disks.sample(
                &[("device", dev), ("state", "failed")],
                md.disks_failed as f64,
            );
            disks.sample(
                &[("device", dev), ("state", "spare")],
                md.disks_spare as f64,
            );
            let states = out.gauge("node_md_state", "Indicates the state of md-device.");
            for (label, raw) in [
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ] {
                let v = if md.state == raw { 1.0 } else { 0.0 };
                states.sample(&[("device", dev), ("state", label)], v);
            }
            out.gauge("node_md_blocks", "Total number of blocks on device.")
                .sample(&[("device", dev)], md.blocks_total as f64);
            out.gauge(
                "node_md_blocks_synced",
                "Number of blocks synced on device.",
            )
            .sample(&[("device", dev)], md.blocks_synced as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden() {
        let c = Mdadm {
            mdstat: testdata().join("fixtures/b-mdadm/proc/mdstat"),
        };
        assert_golden("mdadm", &render(&c).unwrap());
    }

    #[test]
    fn truncated_entries_are_skipped_others_kept() {
        let text = "Personalities : [raid1]\n\
                    md0 : active raid1 sda1[0] sdb1[1]\n      248896 blocks [2/2] [UU]\n\n\
                    md1 : active raid1 sda2[0] sdb2[1]\n      garbage\n\n\
                    md2 : active raid1 sda3[0](F) sdb3[1]\n      1000 blocks [2/1] [_U]\n      [=>..]  recovery = 1.0% (\n\n\
                    md3 : active\n";
        let (ok, errs) = parse(text);
        assert_eq!(ok.len(), 1, "{ok:?}");
        assert_eq!(ok[0].name, "md0");
        assert_eq!(ok[0].blocks_synced, 248896);
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn states_and_counts() {
        let text =
            std::fs::read_to_string(testdata().join("fixtures/b-mdadm/proc/mdstat")).unwrap();
        let (ok, errs) = parse(&text);
        assert!(errs.is_empty(), "{errs:?}");
        let md6 = ok.iter().find(|m| m.name == "md6").unwrap();
        assert_eq!(md6.state, "recovering");
        assert_eq!(
            (
                md6.disks_active,
                md6.disks_total,
                md6.disks_failed,
                md6.disks_spare
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(md6.blocks_synced, 16775552);
        let md10 = ok.iter().find(|m| m.name == "md10").unwrap();
        assert_eq!((md10.disks_active, md10.disks_total), (2, 2));
        let md11 = ok.iter().find(|m| m.name == "md11").unwrap();
        assert_eq!((md11.state.as_str(), md11.blocks_synced), ("resyncing", 0));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_mdstat_like_input(
            lines in proptest::collection::vec(
                "(md[0-9]{1,3} : (active|inactive)( raid[0156]| linear)?( sd[a-c][0-9]\\[[0-9]\\](\\(F\\)|\\(S\\))?){0,3}|      [0-9]{0,6} blocks( super 1.2)?( \\[[0-9]/[0-9]\\] \\[[U_]{1,3}\\])?|      \\[=>\\.\\]  (recovery|resync|check) = [0-9.]{1,4}% \\([0-9]{1,5}/[0-9]{1,5}\\)|      bitmap: 0/1 pages|      resync=(PENDING|DELAYED)|)",
                0..12)
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
