//! Golden-output helpers: a poller fed with the captured outputs in `testdata/`.

use std::path::PathBuf;
use std::time::Duration;

use hpcmon_kit::{Context, MetricSet};

use super::{build, Config, LabelFlags};
use crate::poller::{Flags, Poller, Source};

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub fn flags() -> Flags {
    Flags {
        poll_interval: Duration::from_secs(30),
        sshare_interval: Duration::from_secs(300),
        command_timeout: Duration::from_secs(10),
        bin_dir: None,
    }
}

/// A poller holding one snapshot made of the captured outputs.
pub fn fixture_poller() -> Poller {
    let p = Poller::new(flags(), Source::ALL.to_vec());
    for (s, file) in [
        (Source::Squeue, "squeue.txt"),
        (Source::Sinfo, "sinfo.txt"),
        (Source::Sdiag, "sdiag-live.txt"),
        (Source::Sshare, "sshare.txt"),
        (Source::Reservations, "reservations.txt"),
        (Source::Licenses, "licenses.txt"),
        (Source::Config, "config.txt"),
    ] {
        let out = std::fs::read_to_string(testdata(file)).expect("testdata");
        p.ingest(s, Ok(out), Duration::from_millis(5));
    }
    p.finish_poll();
    p
}

/// Runs collector `name` on `p`, returning its metrics (also when it fails with stale data)
/// and whether it succeeded.
pub fn run(name: &str, p: &Poller, labels: &LabelFlags) -> (MetricSet, Result<(), String>) {
    run_with(name, &Config::new(p.clone(), labels.clone()))
}

/// Runs collector `name` built from `cfg`, as [`run`] does.
pub fn run_with(name: &str, cfg: &Config) -> (MetricSet, Result<(), String>) {
    let c = build(name, cfg).unwrap();
    let mut out = MetricSet::new();
    let r = c.collect(&Context::with_timeout(Duration::from_secs(1)), &mut out);
    let r = match r {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast::<hpcmon_kit::PartialMetrics>() {
            Ok(pm) => {
                out = pm.metrics;
                Err(pm.error)
            }
            Err(e) => Err(format!("{e:#}")),
        },
    };
    out.normalize();
    (out, r)
}

/// The value of `name{labels}` in `set`.
pub fn value(set: &MetricSet, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let f = set.families().iter().find(|f| f.name == name)?;
    f.samples
        .iter()
        .find(|s| {
            labels.len() == s.labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
}

/// Sum of all samples of `name` whose labels include `labels`.
pub fn sum(set: &MetricSet, name: &str, labels: &[(&str, &str)]) -> f64 {
    set.families()
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.samples.iter())
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
        .sum()
}
