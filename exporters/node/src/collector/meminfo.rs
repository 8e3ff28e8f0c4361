//! `meminfo` collector: every field of `/proc/meminfo` as `node_memory_<Field>[_bytes]`,
//! named exactly as node_exporter 1.5 names them: the kernel's CamelCase key, `(anon)` and
//! `(file)` turned into `_anon`/`_file`, and `_bytes` appended (value × 1024) for fields
//! given in kB. Unitless fields (`HugePages_Total`, ...) keep their bare name. All gauges.

use std::sync::Arc;

use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// Parses /proc/meminfo into `(metric suffix, value)` pairs in file order, e.g.
/// `("MemTotal_bytes", 25276514304.0)`, `("Active_anon_bytes", ...)`,
/// `("HugePages_Total", 0.0)`. Malformed lines are skipped; a repeated key keeps its last
/// value (as node_exporter's map does).
pub(crate) fn parse(text: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::with_capacity(64);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let unit = f.next();
        if f.next().is_some() {
            continue;
        }
        let Some(key) = key.strip_suffix(':') else {
            continue;
        };
        let Ok(mut v) = value.parse::<f64>() else {
            continue;
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_()".contains(&b))
        {
            continue;
        }
        let mut name = String::with_capacity(key.len() + 6);
        // Active(anon) -> Active_anon
        for c in key.chars() {
            match c {
                '(' => name.push('_'),
                ')' => {}
                c => name.push(c),
            }
        }
        if unit.is_some() {
            v *= 1024.0;
            name.push_str("_bytes");
        }
        if let Some(prev) = out.iter_mut().find(|(n, _)| *n == name) {
            prev.1 = v;
        } else {
            out.push((name, v));
        }
    }
    out
}

struct Meminfo {
    path: KeptFile,
}

/// Builds the `meminfo` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Meminfo {
        path: KeptFile::new(cfg.paths.proc("meminfo")),
    }))
}

impl Collector for Meminfo {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.path)?;
        let fields = parse(&text);
        if fields.is_empty() {
            anyhow::bail!("no fields in {}", self.path.path().display());
        }
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        for (key, v) in fields {
            name.clear();
            name.push_str("node_memory_");
            name.push_str(&key);
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(&key);
            help.push('.');
            out.gauge_dyn(&name, &help).sample(&[], v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::test_config;
    use crate::collector::testutil::{assert_golden, render, testdata};
    use proptest::prelude::*;

    fn collector(dir: &std::path::Path) -> Arc<dyn Collector> {
        new(&test_config(dir, &[])).unwrap()
    }

    #[test]
    fn golden_this_machine() {
        let c = collector(&testdata().join("fixtures/a-meminfo"));
        assert_golden("meminfo", &render(&*c).unwrap());
    }

    #[test]
    fn golden_truncated_and_odd_lines() {
        let c = collector(&testdata().join("fixtures/a-meminfo-odd"));
        assert_golden("meminfo_odd", &render(&*c).unwrap());
    }

    #[test]
    fn names_like_node_exporter() {
        let f = parse(
            "MemTotal:       24684096 kB\nActive(anon):       1536 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(
            f,
            vec![
                ("MemTotal_bytes".to_owned(), 24684096.0 * 1024.0),
                ("Active_anon_bytes".to_owned(), 1536.0 * 1024.0),
                ("HugePages_Total".to_owned(), 0.0),
            ]
        );
    }

    #[test]
    fn missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*collector(dir.path())).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn parser_survives_mutations(cut in 0usize..1600, junk in "[ a-zA-Z0-9_():\\n]{0,20}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-meminfo/proc/meminfo")).unwrap();
            let cut = cut.min(real.len());
            let mutated = format!("{}{}{}", &real[..cut], junk, &real[cut..]);
            let names: Vec<String> = parse(&mutated).into_iter().map(|(n, _)| n).collect();
            let mut dedup = names.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(names.len(), dedup.len(), "duplicate series");
        }
    }
}
