//! `pressure` collector: pressure stall information from `/proc/pressure/{cpu,io,memory}`
//! (`node_pressure_cpu_waiting_seconds_total`, `node_pressure_{io,memory}_{waiting,stalled}
//! _seconds_total`), like node_exporter 1.5. Without PSI (kernel < 4.20 or `psi=0`) the
//! collector fails, as node_exporter's does.

use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// The `total=` values (µs) of the `some` and `full` lines of one pressure file.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Psi {
    pub some: Option<u64>,
    pub full: Option<u64>,
}

/// Parses a /proc/pressure file: `some avg10=.. avg60=.. avg300=.. total=N` and `full ...`.
pub(crate) fn parse(text: &str) -> Psi {
    let mut psi = Psi::default();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let slot = match f.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        if let Some(total) = f.find_map(|kv| kv.strip_prefix("total=")) {
            if let Ok(v) = total.parse() {
                *slot = Some(v);
            }
        }
    }
    psi
}

struct Pressure {
    /// /proc/pressure/{cpu,io,memory}.
    files: [KeptFile; 3],
}

/// Builds the `pressure` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Pressure {
        files: ["cpu", "io", "memory"].map(|r| KeptFile::new(cfg.paths.proc("pressure").join(r))),
    }))
}

type Entry = (&'static str, bool, &'static str, &'static str);
/// resource, from the `full` line?, metric, help.
const METRICS: [Entry; 5] = [
    (
        "cpu",
        false,
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        false,
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        true,
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        false,
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        true,
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
];

impl Collector for Pressure {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let mut parsed: [(&str, Psi); 3] = [
            ("cpu", Psi::default()),
            ("io", Psi::default()),
            ("memory", Psi::default()),
        ];
        for ((_, psi), file) in parsed.iter_mut().zip(&self.files) {
            let text = file.read_to_string().with_context(|| {
                format!(
                    "reading {} (pressure information needs Linux >= 4.20 with CONFIG_PSI)",
                    file.path().display()
                )
            })?;
            *psi = parse(&text);
        }
        for (res, full, name, help) in METRICS {
            let psi = parsed.iter().find(|(r, _)| *r == res).map(|(_, p)| p);
            let v = psi.and_then(|p| if full { p.full } else { p.some });
            if let Some(v) = v {
                out.counter(name, help).sample(&[], v as f64 / 1e6);
            }
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
        let c = new(&test_config(&testdata().join("fixtures/a-pressure"), &[])).unwrap();
        assert_golden("pressure", &render(&*c).unwrap());
    }

    #[test]
    fn no_psi_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(&*new(&test_config(dir.path(), &[])).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("CONFIG_PSI"), "{err:#}");
    }

    #[test]
    fn truncated_line() {
        let p =
            parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=25778681\nfull avg10=0.00 avg6");
        assert_eq!(
            p,
            Psi {
                some: Some(25778681),
                full: None
            }
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
