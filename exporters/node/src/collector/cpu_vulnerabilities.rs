//! `cpu_vulnerabilities` collector: `node_cpu_vulnerabilities_info{codename,state,
//! mitigation}` (value 1) for every file in `/sys/devices/system/cpu/vulnerabilities/`, as
//! node_exporter (1.10+; Debian's 1.5 does not have it). `state` is `not affected`,
//! `vulnerable`, `mitigation` or `unknown`; `mitigation` is the rest of the kernel's text.
//! Off by default, as there.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(state, mitigation)` of a vulnerability file's text.
pub(crate) fn parse(raw: &str) -> (&'static str, String) {
    let t = raw.trim();
    let lower = t.to_lowercase();
    let rest = || t.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
    if lower.starts_with("not affected") {
        ("not affected", String::new())
    } else if lower.starts_with("vulnerable") {
        ("vulnerable", rest())
    } else if lower.starts_with("mitigation") {
        ("mitigation", rest())
    } else if lower.starts_with("unknown") {
        ("unknown", rest())
    } else {
        ("unknown", t.to_owned())
    }
}

struct CpuVulnerabilities {
    dir: PathBuf,
}

/// Builds the `cpu_vulnerabilities` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(CpuVulnerabilities {
        dir: cfg.paths.sys("devices/system/cpu/vulnerabilities"),
    }))
}

impl Collector for CpuVulnerabilities {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let files = read::entries_or_empty(&self.dir).context("failed to get vulnerabilities")?;
        let fam = out.gauge(
            "node_cpu_vulnerabilities_info",
            "Details of each CPU vulnerability reported by sysfs. The value of the series is an int encoded state of the vulnerability. The same state is stored as a string in the label",
        );
        for (name, p) in files {
            let text = read::text(&p).context("failed to get vulnerabilities")?;
            let (state, mitigation) = parse(&text);
            fam.sample(
                &[
                    ("codename", &name),
                    ("state", state),
                    ("mitigation", &mitigation),
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
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    #[test]
    fn golden_this_machine() {
        let c = new(&test_config(
            &testdata().join("fixtures/b-cpu_vulnerabilities"),
            &[],
        ))
        .unwrap();
        assert_golden("cpu_vulnerabilities", &render(&*c).unwrap());
    }

    #[test]
    fn states() {
        assert_eq!(parse("Not affected\n"), ("not affected", String::new()));
        assert_eq!(parse("Mitigation: PTI\n"), ("mitigation", "PTI".to_owned()));
        assert_eq!(
            parse(
                "Vulnerable: Clear CPU buffers attempted, no microcode; SMT Host state unknown\n"
            )
            .0,
            "vulnerable"
        );
        assert_eq!(
            parse("KVM: Mitigation: VMX unsupported\n"),
            ("unknown", "KVM: Mitigation: VMX unsupported".to_owned())
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
