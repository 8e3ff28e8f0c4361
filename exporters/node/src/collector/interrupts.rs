//! `interrupts` collector: `node_interrupts_total{cpu,type,info,devices}` per interrupt
//! and CPU from `/proc/interrupts`, as node_exporter 1.5. For numbered interrupts `info` is
//! the controller column and `devices` the rest of the line (`IO-APIC 5-edge ACPI:Ged`
//! gives `info="IO-APIC"`, `devices="5-edge ACPI:Ged"`); for named ones (`NMI`, `LOC`)
//! `info` is the description. Lines without a count per CPU (`ERR`, `MIS`) are skipped.
//! Off by default, as there (the series count grows with CPUs × interrupts).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// One interrupt line: name, info, devices and the per-CPU counts (as text).
#[derive(Debug, PartialEq)]
pub(crate) struct Interrupt<'a> {
    pub name: &'a str,
    pub info: String,
    pub devices: String,
    pub values: Vec<&'a str>,
}

/// Parses `/proc/interrupts`; the header gives the number of CPU columns. When a name
/// repeats, the last line wins (as in node_exporter).
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<Interrupt<'_>>> {
    let mut lines = text.lines();
    let cpus = lines
        .next()
        .context("interrupts empty")?
        .split_whitespace()
        .count();
    let mut out: Vec<Interrupt> = Vec::new();
    for line in lines {
        let p: Vec<&str> = line.split_whitespace().collect();
        if p.len() < cpus + 2 {
            continue;
        }
        let name = match p[0].char_indices().last() {
            Some((i, _)) => &p[0][..i],
            None => continue,
        };
        let values = p[1..=cpus].to_vec();
        let (info, devices) = if name.parse::<i64>().is_ok() {
            (p[cpus + 1].to_owned(), p[cpus + 2..].join(" "))
        } else {
            (p[cpus + 1..].join(" "), String::new())
        };
        out.retain(|i| i.name != name);
        out.push(Interrupt {
            name,
            info,
            devices,
            values,
        });
    }
    Ok(out)
}

struct Interrupts {
    path: PathBuf,
}

/// Builds the `interrupts` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Interrupts {
        path: cfg.paths.proc("interrupts"),
    }))
}

impl Collector for Interrupts {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::text(&self.path).context("couldn't get interrupts")?;
        let ints = parse(&text).context("couldn't get interrupts")?;
        let mut samples = Vec::new();
        for i in &ints {
            for (cpu, v) in i.values.iter().enumerate() {
                let v: f64 = v
                    .parse()
                    .with_context(|| format!("invalid value {v} in interrupts"))?;
                samples.push((cpu.to_string(), i, v));
            }
        }
        let fam = out.counter("node_interrupts_total", "Interrupt details.");
        for (cpu, i, v) in &samples {
            fam.sample(
                &[
                    ("cpu", cpu),
                    ("type", i.name),
                    ("info", &i.info),
                    ("devices", &i.devices),
                ],
                *v,
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
        let c = new(&test_config(&testdata().join("fixtures/a-interrupts"), &[])).unwrap();
        assert_golden("interrupts", &render(&*c).unwrap());
    }

    #[test]
    fn named_and_numbered() {
        let t = "   CPU0  CPU1\n 24:  1  2  IO-APIC  5-edge  ACPI:Ged\nNMI:  0  3  Non-maskable interrupts\nERR:  0\n";
        let p = parse(t).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name, p[0].info.as_str(), p[0].devices.as_str()),
            ("24", "IO-APIC", "5-edge ACPI:Ged")
        );
        assert_eq!(
            (p[1].name, p[1].info.as_str(), p[1].devices.as_str()),
            ("NMI", "Non-maskable interrupts", "")
        );
        assert!(parse("").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
