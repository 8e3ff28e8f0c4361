//! Test helpers: a fake-backed GPU set and a text rendering of a scrape.

use std::sync::Arc;
use std::time::Duration;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::cache::CacheOptions;
use crate::fake::{FakeBackend, FakeWorld};
use crate::gpus::{GpuSet, Options};

/// Fast retries for tests; slow values refreshed every second (tests that change them while
/// running ask for faster).
pub fn fast() -> Options {
    Options {
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(40),
        health_interval: Duration::from_millis(20),
        event_retry: Duration::from_millis(20),
        reinit_max: Duration::from_secs(10),
        cache: CacheOptions {
            refresh_interval: Duration::from_secs(1),
            pcie_throughput: true,
            gpm: true,
        },
    }
}

/// A set over a fake world, initialised.
pub fn set_with(world: FakeWorld) -> (FakeBackend, Arc<GpuSet>) {
    set_with_opts(world, fast())
}

/// A set over a fake world with `opts`, initialised.
pub fn set_with_opts(world: FakeWorld, opts: Options) -> (FakeBackend, Arc<GpuSet>) {
    let b = FakeBackend::new(world);
    let set = GpuSet::new(Arc::new(b.clone()), opts);
    let _ = set.init_now();
    (b, set)
}

/// Waits until `f` holds, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Runs a collector once with a 2 s deadline and renders the text format.
pub fn render(c: &dyn Collector) -> (anyhow::Result<()>, String) {
    render_with(c, Duration::from_secs(2))
}

/// Runs a collector once with `timeout` and renders the text format.
pub fn render_with(c: &dyn Collector, timeout: Duration) -> (anyhow::Result<()>, String) {
    let mut out = MetricSet::new();
    let r = c.collect(&Context::with_timeout(timeout), &mut out);
    out.normalize();
    sort_samples(&mut out);
    (r, hpcmon_kit::metrics::encode_text(&out))
}

/// Sorts samples within families (per-device threads finish in any order).
pub fn sort_samples(set: &mut MetricSet) {
    let mut sorted = MetricSet::new();
    for f in set.families() {
        let mut samples = f.samples.clone();
        samples.sort_by(|a, b| a.labels.cmp(&b.labels));
        let nf = sorted.family(f.name.clone(), f.help.clone(), f.kind);
        for s in samples {
            nf.sample_owned(s.labels, s.value);
        }
    }
    *set = sorted;
}

/// The number of samples of family `name`.
pub fn count(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .count()
}

/// The value of the sample of `name` whose labels include all of `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let metric = series.split('{').next().unwrap_or("");
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}
