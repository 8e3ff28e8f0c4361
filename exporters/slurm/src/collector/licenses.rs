//! `slurm_license_*` from scontrol show licenses.

use hpcmon_kit::MetricSet;

use super::Inputs;
use crate::poller::Data;

/// The Slurm commands it reads.
pub const SOURCES: &[crate::poller::Source] = &[crate::poller::Source::Licenses];

/// The `licenses` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(cfg.snapshot("licenses", SOURCES, collect))
}

/// Renders the license metrics.
pub fn collect(inp: &Inputs<'_>, out: &mut MetricSet) {
    let Some(ls) = inp.data.iter().find_map(|d| match d {
        Data::Licenses(l) => Some(l),
        _ => None,
    }) else {
        return;
    };
    type Get = fn(&crate::parse::licenses::License) -> f64;
    let fields: [(&str, &str, Get); 4] = [
        ("total", "Licenses configured", |l| l.total),
        ("used", "Licenses in use by jobs", |l| l.used),
        ("free", "Licenses free", |l| l.free),
        ("reserved", "Licenses held by reservations", |l| l.reserved),
    ];
    for (k, help, get) in fields {
        let f = out.gauge(format!("slurm_license_{k}"), format!("{help}, by license."));
        for l in ls {
            f.sample(&[("license", l.name.as_str())], get(l));
        }
    }
}
