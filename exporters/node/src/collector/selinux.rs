//! `selinux` collector: `node_selinux_enabled`, and when enabled
//! `node_selinux_config_mode` (from `/etc/selinux/config`: 1 enforcing, 0 permissive,
//! -1 disabled) and `node_selinux_current_mode` (from `/sys/fs/selinux/enforce`), as
//! node_exporter 1.5.
//!
//! SELinux counts as enabled when selinuxfs is present (`<path.sysfs>/fs/selinux/enforce`)
//! and this process does not run in the `kernel` context. Unlike node_exporter, which reads
//! the host paths directly, the paths follow `--path.sysfs`, `--path.procfs` and
//! `--path.rootfs`, so that a containerised exporter sees the host.

use std::path::PathBuf;
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// The `SELINUX=` mode of an `/etc/selinux/config` text: 1 enforcing, 0 permissive, -1
/// anything else (disabled, missing).
pub(crate) fn config_mode(text: &str) -> i64 {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.strip_prefix("SELINUX=") {
            return match v.trim().trim_matches('"') {
                "enforcing" => 1,
                "permissive" => 0,
                _ => -1,
            };
        }
    }
    -1
}

struct Selinux {
    enforce: PathBuf,
    current: PathBuf,
    config: PathBuf,
}

/// Builds the `selinux` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Selinux {
        enforce: cfg.paths.sys("fs/selinux/enforce"),
        current: cfg.paths.proc("self/attr/current"),
        config: cfg.paths.root("/etc/selinux/config"),
    }))
}

impl Collector for Selinux {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        // The process context is read only where selinuxfs exists (one stat otherwise).
        let enabled = self.enforce.exists()
            && !read::attr(&self.current).is_ok_and(|c| c.trim_end_matches('\0') == "kernel");
        out.gauge(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
        )
        .sample(&[], if enabled { 1.0 } else { 0.0 });
        if !enabled {
            return Ok(());
        }
        let config = std::fs::read_to_string(&self.config).map_or(-1, |t| config_mode(&t));
        out.gauge(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
        )
        .sample(&[], config as f64);
        let current = read::attr(&self.enforce)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(-1);
        out.gauge(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
        )
        .sample(&[], current as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_enabled_permissive() {
        let c = new(&test_config(&testdata().join("fixtures/b-selinux"), &[])).unwrap();
        assert_golden("selinux", &render(&*c).unwrap());
    }

    #[test]
    fn disabled_without_selinuxfs() {
        let dir = tempfile::tempdir().unwrap();
        let t = render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap();
        assert_eq!(
            t,
            "# HELP node_selinux_enabled SELinux is enabled, 1 is true, 0 is false\n\
             # TYPE node_selinux_enabled gauge\nnode_selinux_enabled 0\n"
        );
    }

    #[test]
    fn config_modes() {
        assert_eq!(config_mode("# SELINUX=enforcing\nSELINUX=permissive\n"), 0);
        assert_eq!(config_mode("SELINUX=enforcing\nSELINUXTYPE=targeted\n"), 1);
        assert_eq!(config_mode("SELINUX=disabled\n"), -1);
        assert_eq!(config_mode(""), -1);
    }

    proptest! {
        #[test]
        fn config_parser_never_panics(s in "\\PC*") {
            let _ = config_mode(&s);
        }
    }
}
