//! `xfs` collector: per-filesystem XFS statistics from `/sys/fs/xfs/<device>/stats/stats`
//! (Linux 4.4+), as node_exporter 1.5: `node_xfs_*_total{device}` counters for extent
//! allocation, allocation and block-map B-trees, block mapping, directory and inode
//! operations, read/write calls and vnodes.
//!
//! No XFS mounted means no metrics (success). Lines node_exporter 1.5 does not read (newer
//! kernels add B-trees such as `rmapbt` or `rtrefcntbt`) are ignored; a known line with the
//! wrong number of values or a value that is not a 32-bit number fails the collector, as
//! there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// A stats line: its label, the accepted value counts, and per value (by position) the
/// metric suffix and help node_exporter gives it (`None`: not exposed).
type Line = (
    &'static str,
    &'static [usize],
    &'static [Option<(&'static str, &'static str)>],
);

const fn m(name: &'static str, help: &'static str) -> Option<(&'static str, &'static str)> {
    Some((name, help))
}

const LINES: &[Line] = &[
    ("extent_alloc", &[4], &[
        m("extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."),
        m("extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."),
        m("extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."),
        m("extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."),
    ]),
    ("abt", &[4], &[
        m("allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem."),
        m("allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem."),
        m("allocation_btree_records_inserted_total", "Number of allocation B-tree records inserted for a filesystem."),
        m("allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem."),
    ]),
    ("blk_map", &[7], &[
        m("block_mapping_reads_total", "Number of block map for read operations for a filesystem."),
        m("block_mapping_writes_total", "Number of block map for write operations for a filesystem."),
        m("block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."),
        m("block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."),
        m("block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."),
        m("block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."),
        m("block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."),
    ]),
    ("bmbt", &[4], &[
        m("block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem."),
        m("block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem."),
        m("block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem."),
        m("block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem."),
    ]),
    ("dir", &[4], &[
        m("directory_operation_lookup_total", "Number of file name directory lookups which miss the operating systems directory name lookup cache."),
        m("directory_operation_create_total", "Number of times a new directory entry was created for a filesystem."),
        m("directory_operation_remove_total", "Number of times an existing directory entry was created for a filesystem."),
        m("directory_operation_getdents_total", "Number of times the directory getdents operation was performed for a filesystem."),
    ]),
    ("ig", &[7], &[
        m("inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."),
        m("inode_operation_found_total", "Number of times the OS looked for and found an XFS inode in the inode cache."),
        m("inode_operation_recycled_total", "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."),
        m("inode_operation_missed_total", "Number of times the OS looked for an XFS inode in the cache, but did not find it."),
        m("inode_operation_duplicates_total", "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process."),
        m("inode_operation_reclaims_total", "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."),
        m("inode_operation_attribute_changes_total", "Number of times the OS explicitly changed the attributes of an XFS inode."),
    ]),
    // The kernel writes `rw <write> <read>`.
    ("rw", &[2], &[
        m("write_calls_total", "Number of write(2) system calls made to files in a filesystem."),
        m("read_calls_total", "Number of read(2) system calls made to files in a filesystem."),
    ]),
    ("vnodes", &[7, 8], &[
        m("vnode_active_total", "Number of vnodes not on free lists for a filesystem."),
        m("vnode_allocate_total", "Number of times vn_alloc called for a filesystem."),
        m("vnode_get_total", "Number of times vn_get called for a filesystem."),
        m("vnode_hold_total", "Number of times vn_hold called for a filesystem."),
        m("vnode_release_total", "Number of times vn_rele called for a filesystem."),
        m("vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."),
        m("vnode_remove_total", "Number of times vn_remove called for a filesystem."),
    ]),
    // Read (and checked) by node_exporter 1.5 but not exposed.
    ("trans", &[3], &[]),
    ("log", &[5], &[]),
    ("push_ail", &[10], &[]),
    ("xstrat", &[2], &[]),
    ("attr", &[4], &[]),
    ("icluster", &[3], &[]),
    ("buf", &[9], &[]),
    ("qm", &[8, 9], &[]),
    ("abtb2", &[15], &[]),
    ("abtc2", &[15], &[]),
    ("bmbt2", &[15], &[]),
    ("ibt2", &[15], &[]),
    ("debug", &[1], &[]),
];

/// Every exposed metric in node_exporter's order: `(suffix, help, line, position)`.
fn metrics() -> impl Iterator<Item = (&'static str, &'static str, &'static str, usize)> {
    LINES.iter().flat_map(|(label, _, ms)| {
        ms.iter()
            .enumerate()
            .filter_map(move |(i, m)| m.map(|(n, h)| (n, h, *label, i)))
    })
}

/// Parses a stats file into `(label, values)` for the lines listed in [`LINES`]. The `xpc`
/// line (64-bit byte counters) must hold three numbers; other lines, unknown or not exposed,
/// are only checked when node_exporter checks them.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<(&str, Vec<u32>)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(label) = f.next() else { continue };
        let fields: Vec<&str> = f.collect();
        if fields.is_empty() {
            continue;
        }
        if label == "xpc" {
            let v = read::u64s(fields.iter().copied())
                .with_context(|| format!("invalid XFS line {line:?}"))?;
            anyhow::ensure!(v.len() == 3, "incorrect number of values for XFS xpc stats");
            continue;
        }
        let Some((_, counts, _)) = LINES.iter().find(|(l, _, _)| *l == label) else {
            continue;
        };
        let v: Vec<u32> = fields
            .iter()
            .map(|s| s.parse::<u32>().ok())
            .collect::<Option<_>>()
            .with_context(|| format!("invalid XFS line {line:?}"))?;
        anyhow::ensure!(
            counts.contains(&v.len()),
            "incorrect number of values for XFS {label} stats: {}",
            v.len()
        );
        out.push((label, v));
    }
    Ok(out)
}

struct Xfs {
    dir: PathBuf,
}

/// Builds the `xfs` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Xfs {
        dir: cfg.paths.sys("fs/xfs"),
    }))
}

/// `(device, parsed stats)` for every `<dir>/<device>/stats/stats`.
fn read_all(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let devs = read::entries_or_empty(dir).with_context(|| format!("reading {}", dir.display()))?;
    for (name, p) in devs {
        let f = p.join("stats/stats");
        if f.is_file() {
            out.push((name, read::text(&f)?));
        }
    }
    Ok(out)
}

impl Collector for Xfs {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for (dev, text) in read_all(&self.dir).context("failed to retrieve XFS stats")? {
            let lines =
                parse(&text).with_context(|| format!("failed to retrieve XFS stats of {dev}"))?;
            for (suffix, help, label, i) in metrics() {
                // A line the file lacks reads as zero, as in node_exporter.
                let v = lines
                    .iter()
                    .find(|(l, _)| *l == label)
                    .and_then(|(_, v)| v.get(i).copied())
                    .unwrap_or(0);
                out.counter(format!("node_xfs_{suffix}"), help)
                    .sample(&[("device", &dev)], v as f64);
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
    fn golden_recorded() {
        let c = new(&test_config(&testdata().join("fixtures/b-xfs"), &[])).unwrap();
        assert_golden("xfs", &render(&*c).unwrap());
    }

    #[test]
    fn counts_are_checked_unknown_lines_ignored() {
        assert!(parse("extent_alloc 1 2 3\n").is_err());
        assert!(parse("vnodes 1 2 3 4 5 6 7 8 9\n").is_err());
        assert!(parse("rw 1 4294967296\n").is_err());
        assert!(parse("xpc 1 2\n").is_err());
        let p = parse("rmapbt 1 2\nxpc 1 2 18446744073709551615\nrw 5 6\nlonely\n").unwrap();
        assert_eq!(p, vec![("rw", vec![5, 6])]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap(),
            ""
        );
    }

    #[test]
    fn every_exposed_metric_is_unique() {
        let names: std::collections::BTreeSet<&str> = metrics().map(|m| m.0).collect();
        assert_eq!(names.len(), metrics().count());
        assert_eq!(names.len(), 39);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
