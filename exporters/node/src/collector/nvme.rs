//! `nvme` collector: `node_nvme_info{device,firmware_revision,model,serial,state}` (always 1)
//! from `/sys/class/nvme/<device>/{firmware_rev,model,serial,state}`, values trimmed of the
//! padding the controllers report, as in node_exporter 1.5. A missing attribute is `""`.

use std::path::PathBuf;
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// Builds the `nvme` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Nvme {
        class: cfg.paths.sys("class/nvme"),
    }))
}

/// The `nvme` collector.
pub struct Nvme {
    class: PathBuf,
}

impl Collector for Nvme {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mut devs: Vec<(String, PathBuf)> = match std::fs::read_dir(&self.class) {
            Ok(rd) => rd
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        devs.sort();
        for (name, dir) in devs {
            let attr = |f: &str| {
                std::fs::read_to_string(dir.join(f))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default()
            };
            let (fw, model, serial, state) = (
                attr("firmware_rev"),
                attr("model"),
                attr("serial"),
                attr("state"),
            );
            out.gauge(
                "node_nvme_info",
                "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            )
            .sample(
                &[
                    ("device", &name),
                    ("firmware_revision", &fw),
                    ("model", &model),
                    ("serial", &serial),
                    ("state", &state),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, testdata};

    #[test]
    fn golden() {
        let c = Nvme {
            class: testdata().join("fixtures/b-nvme/sys/class/nvme"),
        };
        assert_golden("nvme", &render(&c).unwrap());
    }

    #[test]
    fn no_nvme_is_empty() {
        let c = Nvme {
            class: "/nonexistent".into(),
        };
        assert_eq!(render(&c).unwrap(), "");
    }
}
