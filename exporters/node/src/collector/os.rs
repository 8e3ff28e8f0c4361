//! `os` collector: `node_os_info` and `node_os_version` from the host's os-release
//! (`/etc/os-release`, else `/usr/lib/os-release`, under `--path.rootfs`), like
//! node_exporter 1.5. The parsed file is cached and re-read only when its modification
//! time or size changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// The labels of `node_os_info`, and the os-release keys they come from.
const INFO_LABELS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// Parses os-release (a shell-compatible `KEY=value` file): values may be unquoted,
/// "double quoted" (with `\"`, `\\`, `` \` `` and `\$` escapes) or 'single quoted'; comments and
/// malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let value = unquote(raw);
        if let Some(prev) = out.iter_mut().find(|(k, _)| k == key) {
            prev.1 = value;
        } else {
            out.push((key.to_owned(), value));
        }
    }
    out
}

fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => match chars.next() {
                Some(n) => out.push(n),
                None => break,
            },
            (None, c) if c.is_whitespace() => break,
            (_, c) => out.push(c),
        }
    }
    out
}

/// The `major.minor` prefix of VERSION_ID as a number (`12` → 12, `22.04.3` → 22.04).
pub(crate) fn version_number(version_id: &str) -> Option<f64> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(version_id);
    if major == 0 {
        return None;
    }
    let mut end = major;
    if version_id[major..].starts_with('.') {
        end += 1 + digits(&version_id[major + 1..]);
    }
    version_id[..end].trim_end_matches('.').parse().ok()
}

/// Which file was parsed: path, modification time and size.
type CacheKey = (PathBuf, Option<SystemTime>, u64);
/// The last parse and what it was parsed from.
type Cache = Option<(CacheKey, Vec<(String, String)>)>;

struct Os {
    candidates: [PathBuf; 2],
    cache: Mutex<Cache>,
}

/// Builds the `os` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Os {
        candidates: [
            cfg.paths.root("/etc/os-release"),
            cfg.paths.root("/usr/lib/os-release"),
        ],
        cache: Mutex::new(None),
    }))
}

impl Os {
    fn release(&self) -> anyhow::Result<Vec<(String, String)>> {
        for path in &self.candidates {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let key = (path.clone(), meta.modified().ok(), meta.len());
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((k, v)) = cache.as_ref() {
                if *k == key {
                    return Ok(v.clone());
                }
            }
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(_) => continue,
            };
            let parsed = parse(&text);
            *cache = Some((key, parsed.clone()));
            return Ok(parsed);
        }
        anyhow::bail!(
            "no os-release file found (tried {} and {})",
            self.candidates[0].display(),
            self.candidates[1].display()
        )
    }
}

impl Collector for Os {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let release = self.release()?;
        let get = |k: &str| {
            release
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let labels: Vec<(&str, &str)> = INFO_LABELS.iter().map(|(l, k)| (*l, get(k))).collect();
        out.gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        )
        .sample(&labels, 1.0);
        if let Some(v) = version_number(get("VERSION_ID")) {
            out.gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
            )
            .sample(
                &[
                    ("id", get("ID")),
                    ("id_like", get("ID_LIKE")),
                    ("name", get("NAME")),
                ],
                v,
            );
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

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(&testdata().join("fixtures/a-os"), &[])).unwrap();
        assert_golden("os", &render(&*c).unwrap());
    }

    #[test]
    fn golden_usr_lib_fallback_and_quoting() {
        // No /etc/os-release; /usr/lib/os-release uses single quotes, escapes, comments.
        let c = new(&test_config(&testdata().join("fixtures/a-os-odd"), &[])).unwrap();
        assert_golden("os_odd", &render(&*c).unwrap());
    }

    #[test]
    fn missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(&*new(&test_config(dir.path(), &[])).unwrap()).is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(version_number("12"), Some(12.0));
        assert_eq!(version_number("22.04"), Some(22.04));
        assert_eq!(version_number("8.10.2"), Some(8.1));
        assert_eq!(version_number("rolling"), None);
        assert_eq!(version_number("7."), Some(7.0));
        assert_eq!(version_number(""), None);
    }

    #[test]
    fn reread_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("root/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("os-release"), "ID=a\nVERSION_ID=1\n").unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c)
            .unwrap()
            .contains("node_os_version{id=\"a\",id_like=\"\",name=\"\"} 1\n"));
        std::fs::write(etc.join("os-release"), "ID=bb\nVERSION_ID=2.5\n").unwrap();
        assert!(render(&*c)
            .unwrap()
            .contains("node_os_version{id=\"bb\",id_like=\"\",name=\"\"} 2.5\n"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            for (_, v) in parse(&s) {
                let _ = version_number(&v);
            }
            let _ = version_number(&s);
        }
    }
}
