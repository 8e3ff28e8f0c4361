//! `bcache` collector: bcache cache-set statistics from `/sys/fs/bcache/<uuid>/`, as
//! node_exporter 1.5: `node_bcache_*{uuid}` for the set, `{uuid,backing_device}` for each
//! `bdevN` (dirty data, writeback rate and its controller terms, lifetime hit/miss/bypass
//! counters) and `{uuid,cache_device}` for each `cacheN` (I/O errors, bytes written), plus
//! `node_bcache_priority_stats_*` with `--collector.bcache.priorityStats` (reading
//! `priority_stats` walks every bucket: expensive on large caches).
//!
//! Values are bcache's human-readable sysfs numbers (`1.5M`), decoded as node_exporter
//! does. As there, `btree_read_average_duration_seconds` is the kernel's microseconds
//! times 1e-9. No bcache means no metrics (success).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet, MetricType};

use super::read;
use super::Config;

/// Flags of the `bcache` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Expose expensive priority stats.
    #[arg(
        long = "collector.bcache.priorityStats",
        id = "collector.bcache.priorityStats"
    )]
    pub priority_stats: bool,
}

/// The integer part and the "fraction" of a bcache number, as node_exporter decodes them:
/// `1.5` is 1 + 5/10.24 (bcache prints tenths of the unit's 1024ths).
fn pseudo_float(s: &str) -> Option<f64> {
    let mut parts = s.split('.');
    let int: f64 = go_float(parts.next()?)?;
    match parts.next() {
        None => Some(int),
        Some(frac) => Some(int + go_float(frac)? / 10.24),
    }
}

/// A float as Go's `strconv.ParseFloat` reads the plain decimal forms sysfs uses.
fn go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("nan") {
        return None;
    }
    s.parse().ok()
}

/// Decodes a bcache human-readable number (`512`, `1.2k`, `3.0G`) into an integer.
pub(crate) fn dehumanize(s: &str) -> Option<u64> {
    let last = *s.as_bytes().last()?;
    if last > b'9' {
        let mul: f64 = match last {
            b'k' => 1024.0,
            b'M' => 1024f64.powi(2),
            b'G' => 1024f64.powi(3),
            b'T' => 1024f64.powi(4),
            b'P' => 1024f64.powi(5),
            b'E' => 1024f64.powi(6),
            b'Z' => 1024f64.powi(7),
            b'Y' => 1024f64.powi(8),
            _ => 0.0,
        };
        let mant = pseudo_float(s.get(..s.len() - 1)?)?;
        Some((mant * mul) as u64)
    } else {
        Some(go_float(s)? as u64)
    }
}

/// [`dehumanize`] with an optional leading `-`.
fn dehumanize_signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => Some((dehumanize(rest)? as i64).wrapping_neg()),
        None => Some(dehumanize(s)? as i64),
    }
}

/// `writeback_rate_debug` of a backing device: rate, target, proportional, integral, change.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Writeback {
    pub rate: u64,
    pub target: u64,
    pub proportional: i64,
    pub integral: i64,
    pub change: i64,
}

/// Parses `writeback_rate_debug` (`rate:  1.1M/sec`, `target: 3.0G`, ...).
pub(crate) fn parse_writeback(text: &str) -> anyhow::Result<Writeback> {
    let mut w = Writeback::default();
    for line in text.lines() {
        let last = || line.split_ascii_whitespace().last().unwrap_or("");
        let bad = || format!("invalid writeback_rate_debug line {line:?}");
        if line.starts_with("rate:") {
            w.rate = dehumanize(last().trim_end_matches("/sec")).with_context(bad)?;
        } else if line.starts_with("dirty:") {
            dehumanize(last()).with_context(bad)?;
        } else if line.starts_with("target:") {
            w.target = dehumanize(last()).with_context(bad)?;
        } else if line.starts_with("proportional:") {
            w.proportional = dehumanize_signed(last()).with_context(bad)?;
        } else if line.starts_with("integral:") {
            w.integral = dehumanize_signed(last()).with_context(bad)?;
        } else if line.starts_with("change:") {
            w.change = dehumanize_signed(last().trim_end_matches("/sec")).with_context(bad)?;
        } else if line.starts_with("next io:") {
            last()
                .trim_end_matches("ms")
                .parse::<i64>()
                .ok()
                .with_context(bad)?;
        }
    }
    Ok(w)
}

/// Parses `priority_stats`: `(unused percent, metadata percent)`.
pub(crate) fn parse_priority(text: &str) -> anyhow::Result<(u64, u64)> {
    let (mut unused, mut meta) = (0, 0);
    for line in text.lines() {
        let pct = || {
            let v = line.split_ascii_whitespace().last().unwrap_or("");
            v.strip_suffix('%')
                .unwrap_or(v)
                .parse::<u64>()
                .with_context(|| format!("invalid priority_stats line {line:?}"))
        };
        if line.starts_with("Unused:") {
            unused = pct()?;
        } else if line.starts_with("Metadata:") {
            meta = pct()?;
        }
    }
    Ok((unused, meta))
}

/// One sysfs value: missing reads as 0, garbage is an error.
fn value(dir: &Path, name: &str) -> anyhow::Result<u64> {
    let p = dir.join(name);
    let raw = match std::fs::read_to_string(&p) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("failed to read: {}", p.display())),
    };
    // node_exporter drops the last byte (the newline).
    let mut s = raw.as_str();
    if let Some(c) = s.chars().last() {
        s = &s[..s.len() - c.len_utf8()];
    }
    dehumanize(s).with_context(|| format!("invalid value {s:?} in {}", p.display()))
}

const PERIOD: [(&str, &str, &str); 7] = [
    (
        "bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    (
        "cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
    ),
    (
        "cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
    ),
    (
        "cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
    ),
    (
        "cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
    ),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    (
        "cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
    ),
];

/// The [`PERIOD`] counters of a `stats_*` directory.
fn periods(dir: &Path) -> anyhow::Result<Vec<u64>> {
    PERIOD.iter().map(|(file, ..)| value(dir, file)).collect()
}

struct Bcache {
    dir: PathBuf,
    priority: bool,
}

/// Builds the `bcache` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Bcache {
        dir: cfg.paths.sys("fs/bcache"),
        priority: cfg.flags::<Flags>()?.priority_stats,
    }))
}

fn put(
    out: &mut MetricSet,
    kind: MetricType,
    name: &str,
    help: &str,
    labels: &[(&'static str, &str)],
    v: f64,
) {
    out.family_dyn(&format!("node_bcache_{name}"), help, kind)
        .sample(labels, v);
}

impl Bcache {
    fn set(&self, uuid: &str, dir: &Path, out: &mut MetricSet) -> anyhow::Result<()> {
        use MetricType::{Counter, Gauge};
        let u = [("uuid", uuid)];
        let internal = dir.join("internal");
        let set_values = [
            (dir, "average_key_size", Gauge, "average_key_size_sectors", "Average data per key in the btree (sectors).", 1.0),
            (dir, "btree_cache_size", Gauge, "btree_cache_size_bytes", "Amount of memory currently used by the btree cache.", 1.0),
            (dir, "cache_available_percent", Gauge, "cache_available_percent", "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", 1.0),
            (dir, "congested", Gauge, "congested", "Congestion.", 1.0),
            (dir, "root_usage_percent", Gauge, "root_usage_percent", "Percentage of the root btree node in use (tree depth increases if too high).", 1.0),
            (dir, "tree_depth", Gauge, "tree_depth", "Depth of the btree.", 1.0),
            (&internal, "active_journal_entries", Gauge, "active_journal_entries", "Number of journal entries that are newer than the index.", 1.0),
            (&internal, "btree_nodes", Gauge, "btree_nodes", "Total nodes in the btree.", 1.0),
            (&internal, "btree_read_average_duration_us", Gauge, "btree_read_average_duration_seconds", "Average btree read duration.", 1e-9),
            (&internal, "cache_read_races", Counter, "cache_read_races_total", "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", 1.0),
        ];
        // Read everything first: a bad value fails the set before anything is written.
        let mut vals = Vec::new();
        for (d, file, ..) in &set_values {
            vals.push(value(d, file)?);
        }
        // The set's own period counters are read (and so checked) but not exposed.
        periods(&dir.join("stats_five_minute"))?;
        periods(&dir.join("stats_total"))?;
        let mut bdevs = Vec::new();
        for (name, p) in read::entries(dir)? {
            if !is_numbered(&name, "bdev") {
                continue;
            }
            let dirty = value(&p, "dirty_data")?;
            let wb_path = p.join("writeback_rate_debug");
            let wb = parse_writeback(
                &std::fs::read_to_string(&wb_path)
                    .with_context(|| format!("failed to read: {}", wb_path.display()))?,
            )?;
            periods(&p.join("stats_five_minute"))?;
            bdevs.push((name, dirty, wb, periods(&p.join("stats_total"))?));
        }
        let mut caches = Vec::new();
        for (name, p) in read::entries(dir)? {
            if !is_numbered(&name, "cache") {
                continue;
            }
            let vals = [
                value(&p, "io_errors")?,
                value(&p, "metadata_written")?,
                value(&p, "written")?,
            ];
            let prio = if self.priority {
                let pp = p.join("priority_stats");
                Some(parse_priority(
                    &std::fs::read_to_string(&pp)
                        .with_context(|| format!("failed to read: {}", pp.display()))?,
                )?)
            } else {
                None
            };
            caches.push((name, vals, prio));
        }

        for ((_, _, kind, name, help, scale), v) in set_values.iter().zip(vals) {
            put(out, *kind, name, help, &u, v as f64 * scale);
        }
        for (name, dirty, wb, totals) in &bdevs {
            let l = [("uuid", uuid), ("backing_device", name.as_str())];
            put(
                out,
                Gauge,
                "dirty_data_bytes",
                "Amount of dirty data for this backing device in the cache.",
                &l,
                *dirty as f64,
            );
            put(
                out,
                Gauge,
                "dirty_target_bytes",
                "Current dirty data target threshold for this backing device in bytes.",
                &l,
                wb.target as f64,
            );
            put(
                out,
                Gauge,
                "writeback_rate",
                "Current writeback rate for this backing device in bytes.",
                &l,
                wb.rate as f64,
            );
            put(
                out,
                Gauge,
                "writeback_rate_proportional_term",
                "Current result of proportional controller, part of writeback rate",
                &l,
                wb.proportional as f64,
            );
            put(
                out,
                Gauge,
                "writeback_rate_integral_term",
                "Current result of integral controller, part of writeback rate",
                &l,
                wb.integral as f64,
            );
            put(
                out,
                Gauge,
                "writeback_change",
                "Last writeback rate change step for this backing device.",
                &l,
                wb.change as f64,
            );
            for ((_, metric, help), v) in PERIOD.iter().zip(totals) {
                put(out, Counter, metric, help, &l, *v as f64);
            }
        }
        for (name, v, prio) in &caches {
            let l = [("uuid", uuid), ("cache_device", name.as_str())];
            put(
                out,
                Gauge,
                "io_errors",
                "Number of errors that have occurred, decayed by io_error_halflife.",
                &l,
                v[0] as f64,
            );
            put(
                out,
                Counter,
                "metadata_written_bytes_total",
                "Sum of all non data writes (btree writes and all other metadata).",
                &l,
                v[1] as f64,
            );
            put(
                out,
                Counter,
                "written_bytes_total",
                "Sum of all data that has been written to the cache.",
                &l,
                v[2] as f64,
            );
            if let Some((unused, meta)) = prio {
                put(
                    out,
                    Gauge,
                    "priority_stats_unused_percent",
                    "The percentage of the cache that doesn't contain any data.",
                    &l,
                    *unused as f64,
                );
                put(
                    out,
                    Gauge,
                    "priority_stats_metadata_percent",
                    "Bcache's metadata overhead.",
                    &l,
                    *meta as f64,
                );
            }
        }
        Ok(())
    }
}

/// `bdev0`, `cache12`: the prefix followed by a digit (node_exporter's `bdev[0-9]*` glob).
fn is_numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|r| r.as_bytes().first().is_some_and(u8::is_ascii_digit))
}

impl Collector for Bcache {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let sets = read::entries_or_empty(&self.dir).context("failed to retrieve bcache stats")?;
        for (uuid, dir) in sets {
            if uuid.contains('-') {
                self.set(&uuid, &dir, out)
                    .context("failed to retrieve bcache stats")?;
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
        let c = new(&test_config(&testdata().join("fixtures/b-bcache"), &[])).unwrap();
        assert_golden("bcache", &render(&*c).unwrap());
    }

    #[test]
    fn golden_priority_stats() {
        let c = new(&test_config(
            &testdata().join("fixtures/b-bcache"),
            &["--collector.bcache.priorityStats"],
        ))
        .unwrap();
        assert_golden("bcache_priority", &render(&*c).unwrap());
    }

    #[test]
    fn human_numbers() {
        assert_eq!(dehumanize("512"), Some(512));
        assert_eq!(
            dehumanize("1.5k"),
            Some(((1.0 + 5.0 / 10.24) * 1024.0) as u64)
        );
        assert_eq!(dehumanize("2.0M"), Some(2 * 1024 * 1024));
        assert_eq!(dehumanize("3G"), Some(3 << 30));
        assert_eq!(dehumanize("7x"), Some(0));
        assert_eq!(dehumanize(""), None);
        assert_eq!(dehumanize("k"), None);
        assert_eq!(dehumanize_signed("-1.0k"), Some(-1024));
        let w = parse_writeback(
            "rate:\t\t1.1M/sec\ndirty:\t\t20.4G\ntarget:\t\t38.8G\nproportional:\t-5.5M\n\
             integral:\t1.0k\nchange:\t\t-2.3k/sec\nnext io:\t-1266ms\n",
        )
        .unwrap();
        assert_eq!(w.target, ((38.0 + 8.0 / 10.24) * 1024f64.powi(3)) as u64);
        assert!(w.proportional < 0 && w.change < 0 && w.integral == 1024);
        assert!(parse_writeback("rate: fast\n").is_err());
        assert_eq!(
            parse_priority("Unused:\t\t99%\nMetadata:\t0%\n").unwrap(),
            (99, 0)
        );
        assert!(parse_priority("Unused: lots\n").is_err());
    }

    #[test]
    fn no_bcache_is_success_without_metrics() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap(),
            ""
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = dehumanize(&s);
            let _ = dehumanize_signed(&s);
            let _ = parse_writeback(&s);
            let _ = parse_priority(&s);
        }
    }
}
