//! `zfs` collector: OpenZFS kernel statistics from `/proc/spl/kstat/zfs`, as node_exporter
//! 1.5: every 64-bit counter of `arcstats`, `abdstats`, `dbuf_stats`, `dmu_tx`,
//! `dnodestats`, `fm`, `vdev_cache_stats`, `vdev_mirror_stats`, `xuio_stats`, `zfetchstats`
//! and `zil` as untyped `node_zfs_<subsystem>_<name>` (help: the kstat's path, e.g.
//! `kstat.zfs.misc.arcstats.hits`), per pool `node_zfs_zpool_<io counter>{zpool}` from
//! `<pool>/io`, per dataset `node_zfs_zpool_dataset_<counter>{zpool,dataset}` from
//! `<pool>/objset-*`, and `node_zfs_zpool_state{zpool,state}` from `<pool>/state`.
//!
//! No ZFS module loaded fails the collector, as node_exporter reports it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// node_exporter's subsystem name → kstat file.
const SUBSYSTEMS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbuf_stats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];

const POOL_STATES: [&str; 6] = [
    "online", "degraded", "faulted", "offline", "removed", "unavail",
];

/// The kstat data type of 64-bit unsigned counters (`KSTAT_DATA_UINT64`).
const KSTAT_UINT64: &str = "4";

/// node_exporter's metric name part of a kstat key: after its last `.`, `-` as `_`.
fn metric_part(key: &str) -> String {
    key.rsplit('.').next().unwrap_or(key).replace('-', "_")
}

/// A named kstat's uint64 entries and, for an `objset-*` file, its dataset name.
pub(crate) type Named<'a> = (Vec<(&'a str, u64)>, Option<&'a str>);

/// The `(name, value)` of every uint64 entry of a named kstat (`name type data` table).
/// For an `objset-*` file also the `dataset_name`. A file without the table header, or a
/// uint64 entry that is not a number, is an error.
pub(crate) fn parse_named(text: &str) -> anyhow::Result<Named<'_>> {
    let mut header = false;
    let mut dataset = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_ascii_whitespace().collect();
        if !header {
            header = p == ["name", "type", "data"];
            continue;
        }
        if p.len() < 3 {
            continue;
        }
        if p[0] == "dataset_name" {
            dataset = Some(p[2]);
            continue;
        }
        if p[1] == KSTAT_UINT64 {
            let v = p[2].parse().with_context(|| {
                format!("could not parse expected integer value for {:?}", p[0])
            })?;
            out.push((p[0], v));
        }
    }
    anyhow::ensure!(header, "no \"name type data\" header");
    Ok((out, dataset))
}

/// The `(name, value)` pairs of a pool's `io` kstat: a header of at least 12 names starting
/// with `nread`, then lines of values. A value line shorter than the header is an error.
pub(crate) fn parse_io(text: &str) -> anyhow::Result<Vec<(&str, u64)>> {
    let mut names: Option<Vec<&str>> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_ascii_whitespace().collect();
        match &names {
            None => {
                if p.len() >= 12 && p[0] == "nread" {
                    names = Some(p);
                }
            }
            Some(n) => {
                anyhow::ensure!(p.len() >= n.len(), "short io line {line:?}");
                for (name, v) in n.iter().zip(&p) {
                    let v = v.parse().with_context(|| {
                        format!("could not parse expected integer value for {name:?}")
                    })?;
                    out.push((*name, v));
                }
            }
        }
    }
    Ok(out)
}

struct Zfs {
    base: PathBuf,
}

/// Builds the `zfs` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Zfs {
        base: cfg.paths.proc("spl/kstat/zfs"),
    }))
}

fn untyped(out: &mut MetricSet, name: &str, help: &str, labels: &[(&'static str, &str)], v: u64) {
    out.untyped_dyn(name, help).sample(labels, v as f64);
}

impl Zfs {
    fn pool(&self, pool: &str, dir: &Path, out: &mut MetricSet) -> anyhow::Result<()> {
        let io = dir.join("io");
        if io.is_file() {
            let text = read::text(&io)?;
            for (name, v) in parse_io(&text).with_context(|| format!("in {}", io.display()))? {
                let key = format!("kstat.zfs.misc.io.{name}");
                let metric = format!("node_zfs_zpool_{}", metric_part(&key));
                untyped(out, &metric, &key, &[("zpool", pool)], v);
            }
        }
        for (name, p) in read::entries(dir)? {
            if !name.starts_with("objset-") {
                continue;
            }
            let text = read::text(&p)?;
            let (values, dataset) =
                parse_named(&text).with_context(|| format!("in {}", p.display()))?;
            let dataset = dataset.unwrap_or_default();
            for (name, v) in values {
                let key = format!("kstat.zfs.misc.objset.{name}");
                let metric = format!("node_zfs_zpool_dataset_{}", metric_part(&key));
                untyped(
                    out,
                    &metric,
                    &key,
                    &[("zpool", pool), ("dataset", dataset)],
                    v,
                );
            }
        }
        let state = dir.join("state");
        if state.is_file() {
            let text = read::text(&state)?;
            let actual = text.lines().next().unwrap_or("").to_lowercase();
            let fam = out.gauge("node_zfs_zpool_state", "kstat.zfs.misc.state");
            for s in POOL_STATES {
                fam.sample(
                    &[("zpool", pool), ("state", s)],
                    if actual == s { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}

impl Collector for Zfs {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let entries = read::entries(&self.base).with_context(|| {
            format!(
                "no data: ZFS statistics are not available ({})",
                self.base.display()
            )
        })?;
        for (subsystem, file) in SUBSYSTEMS {
            let path = self.base.join(file);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            let (values, _) = parse_named(&text)
                .with_context(|| format!("did not parse a single {file:?} metric"))?;
            for (name, v) in values {
                let key = format!("kstat.zfs.misc.{file}.{name}");
                let metric = format!("node_{subsystem}_{}", metric_part(&key));
                untyped(out, &metric, &key, &[], v);
            }
        }
        for (pool, dir) in entries {
            if dir.is_dir() {
                self.pool(&pool, &dir, out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden() {
        let c = new(&test_config(&testdata().join("fixtures/a-zfs"), &[])).unwrap();
        assert_golden("zfs", &render(&*c).unwrap());
    }

    #[test]
    fn parsers() {
        let t = "13 1 0x01 3 144 1 2\nname type data\nhits 4 12\nc_max 4 34\nstr 7 x\n";
        assert_eq!(parse_named(t).unwrap().0, vec![("hits", 12), ("c_max", 34)]);
        assert!(parse_named("hits 4 12\n").is_err());
        assert!(parse_named("name type data\nhits 4 -1\n").is_err());
        let io = "5 3 0x00 1 80 1 2\nnread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n1 2 3 4 5 6 7 8 9 10 11 12\n";
        assert_eq!(parse_io(io).unwrap().len(), 12);
        assert!(parse_io(&io.replace(" 12\n", "\n")).is_err());
        assert_eq!(metric_part("kstat.zfs.misc.arcstats.l2-hits"), "l2_hits");
    }

    #[test]
    fn no_zfs_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_named(&s);
            let _ = parse_io(&s);
        }
    }
}
