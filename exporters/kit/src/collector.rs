//! The collector interface and the scraper that runs collectors under a deadline.
//!
//! A [`Collector`] fills a [`MetricSet`] on each scrape. The [`Scraper`] runs every enabled
//! collector concurrently on the blocking thread pool, waits for each until the scrape's
//! deadline, and reports `<ns>_scrape_collector_success` and
//! `<ns>_scrape_collector_duration_seconds` for every collector. A collector that errors,
//! panics or overruns is reported as unsuccessful and the rest of the scrape is served.
//!
//! A collector stuck in a syscall (a dead NFS mount) cannot be cancelled; the scraper keeps at
//! most one call per collector outstanding: until the stuck call returns, later scrapes report
//! the collector as failed at once instead of starting another thread.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::MetricSet;

/// What a collector may know about the scrape it runs in.
#[derive(Debug, Clone)]
pub struct Context {
    /// When the scrape gives up on this collector.
    pub deadline: Instant,
}

impl Context {
    /// A context with a deadline `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
        }
    }

    /// Time left until the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// One source of metrics. Implementations live one per file, in each exporter's
/// `collector/` folder, named after the collector.
pub trait Collector: Send + Sync + 'static {
    /// Adds this scrape's samples to `out`. Runs on a blocking thread; should return by
    /// `ctx.deadline` (the scraper stops waiting then anyway).
    fn collect(&self, ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()>;
}

/// An error that still carries metrics: the collector failed (reported with
/// `<ns>_scrape_collector_success 0`), but `metrics` (e.g. the last good data, flagged stale by
/// the collector itself) are served anyway. Return it as `Err(PartialMetrics{..}.into())`.
#[derive(Debug)]
pub struct PartialMetrics {
    /// What is served despite the failure.
    pub metrics: MetricSet,
    /// Why the collector failed.
    pub error: String,
}

impl std::fmt::Display for PartialMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

impl std::error::Error for PartialMetrics {}

/// The static description of a collector: its flag name, default and help.
#[derive(Debug, Clone, Copy)]
pub struct CollectorSpec {
    /// Name used in `--collector.NAME` and in the `collector` label.
    pub name: &'static str,
    /// Enabled unless `--no-collector.NAME` (or `--collector.disable-defaults`).
    pub default_enabled: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

struct Entry {
    name: String,
    collector: Arc<dyn Collector>,
    busy: Arc<AtomicBool>,
    /// The last error logged at warn level, so a persistent failure logs once, not per scrape.
    last_error: std::sync::Mutex<Option<String>>,
}

/// Clears the busy flag when the collection ends, even by panic.
struct BusyGuard(Arc<AtomicBool>);
impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The outcome of one collector in one scrape.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Collector name.
    pub name: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Time spent, up to the deadline.
    pub duration: Duration,
    /// The error, if it failed.
    pub error: Option<String>,
}

/// Runs a set of collectors for one namespace.
pub struct Scraper {
    namespace: String,
    entries: Vec<Entry>,
    up_metric: Option<(String, String)>,
    lanes: Option<usize>,
    /// Every collector the exporter has, enabled or not (for `collect[]` errors).
    known: BTreeSet<String>,
}

/// One collector's call in one scrape.
struct Job {
    slot: usize,
    collector: Arc<dyn Collector>,
    guard: BusyGuard,
}

/// A collector's metrics, or its error with whatever partial metrics it still serves.
type CollectResult = Result<MetricSet, (String, Option<MetricSet>)>;

/// Where one scrape's lanes leave their results.
struct Results {
    /// One slot per selected collector; a lane fills the slot of each job it runs.
    slots: std::sync::Mutex<Vec<Option<(CollectResult, Duration)>>>,
    /// Jobs not finished yet; the lane that finishes the last one notifies `done`.
    remaining: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
    /// Set when the scrape stopped waiting (deadline): lanes start no further jobs.
    abandoned: AtomicBool,
}

/// Tells the lanes to start no further jobs once the scrape stops waiting.
struct AbandonOnDrop(Arc<Results>);
impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandoned.store(true, Ordering::Release);
    }
}

fn run_one(c: &dyn Collector, ctx: &Context) -> CollectResult {
    let mut out = MetricSet::new();
    match std::panic::catch_unwind(AssertUnwindSafe(|| c.collect(ctx, &mut out))) {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => match e.downcast::<PartialMetrics>() {
            Ok(p) => Err((p.error, Some(p.metrics))),
            Err(e) => Err((format!("{e:#}"), None)),
        },
        Err(p) => Err((format!("panic: {}", panic_message(&p)), None)),
    }
}

impl Scraper {
    /// A scraper for `namespace` (e.g. `node`), which prefixes the scrape self-metrics.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            entries: Vec::new(),
            up_metric: None,
            lanes: None,
            known: BTreeSet::new(),
        }
    }

    /// Runs the collectors on at most `n` blocking threads per scrape (taking them from a
    /// shared queue) instead of one thread each. Suits many fast collectors (node): fewer
    /// thread hand-offs per scrape. A collector stuck past the deadline holds one lane for
    /// that scrape only; later scrapes skip it until it returns. Default: one lane each.
    pub fn lanes(&mut self, n: usize) -> &mut Self {
        self.lanes = Some(n.max(1));
        self
    }

    /// Also reports each collector's success as gauge `name{collector}` (1 or 0), for
    /// exporters whose established names include one (ipmi_exporter's `ipmi_up`).
    pub fn up_metric(&mut self, name: impl Into<String>, help: impl Into<String>) -> &mut Self {
        self.up_metric = Some((name.into(), help.into()));
        self
    }

    /// Adds a collector under `name`.
    pub fn add(&mut self, name: impl Into<String>, collector: Arc<dyn Collector>) -> &mut Self {
        self.entries.push(Entry {
            name: name.into(),
            collector,
            busy: Arc::new(AtomicBool::new(false)),
            last_error: std::sync::Mutex::new(None),
        });
        self
    }

    /// Declares every collector the exporter has, enabled or not, so that a `collect[]`
    /// naming a disabled one is told apart from an unknown one ([`check_filter`]).
    ///
    /// [`check_filter`]: Self::check_filter
    pub fn known_collectors<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.known.extend(names.into_iter().map(str::to_owned));
        self
    }

    /// Checks a `collect[]` filter as node_exporter does: every name must be an enabled
    /// collector. The error reads `missing collector: NAME` or `disabled collector: NAME`.
    pub fn check_filter(&self, only: &BTreeSet<String>) -> Result<(), String> {
        for name in only {
            if self.entries.iter().any(|e| &e.name == name) {
                continue;
            }
            return Err(if self.known.contains(name) {
                format!("disabled collector: {name}")
            } else {
                format!("missing collector: {name}")
            });
        }
        Ok(())
    }

    /// Names of the registered collectors.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs every collector concurrently and waits for each until `timeout` has passed.
    /// Returns the merged metrics, including the scrape self-metrics, normalized.
    pub async fn scrape(&self, timeout: Duration) -> (MetricSet, Vec<Outcome>) {
        self.scrape_only(timeout, None).await
    }

    /// Like [`scrape`](Self::scrape), restricted to the named collectors when `only` is given
    /// (node_exporter's `collect[]` query parameter).
    pub async fn scrape_only(
        &self,
        timeout: Duration,
        only: Option<&BTreeSet<String>>,
    ) -> (MetricSet, Vec<Outcome>) {
        let ctx = Context::with_timeout(timeout);
        let scrape_start = Instant::now();
        // Collectors whose previous call is still outstanding are failed at once; the rest
        // become jobs, taken from a shared queue by `lanes` blocking tasks.
        let mut selected: Vec<&Entry> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        for e in &self.entries {
            if only.is_some_and(|o| !o.contains(&e.name)) {
                continue;
            }
            let slot = selected.len();
            selected.push(e);
            if e.busy.swap(true, Ordering::AcqRel) {
                continue;
            }
            jobs.push(Job {
                slot,
                collector: e.collector.clone(),
                guard: BusyGuard(e.busy.clone()),
            });
        }
        let started: Vec<usize> = jobs.iter().map(|j| j.slot).collect();
        let n_jobs = jobs.len();
        // Lanes store each result in its slot; the last one to finish wakes this task once
        // (not once per collector). At the deadline the finished results are taken as they are.
        let shared = Arc::new(Results {
            slots: std::sync::Mutex::new((0..selected.len()).map(|_| None).collect()),
            remaining: std::sync::atomic::AtomicUsize::new(n_jobs),
            done: tokio::sync::Notify::new(),
            abandoned: AtomicBool::new(false),
        });
        if n_jobs > 0 {
            let lanes = self.lanes.unwrap_or(n_jobs).clamp(1, n_jobs);
            let queue = Arc::new(std::sync::Mutex::new(jobs.into_iter()));
            for _ in 0..lanes {
                let queue = queue.clone();
                let shared = shared.clone();
                let cctx = ctx.clone();
                tokio::task::spawn_blocking(move || loop {
                    if shared.abandoned.load(Ordering::Acquire) {
                        // The scrape gave up waiting; later jobs are not worth starting.
                        break;
                    }
                    let Some(job) = queue.lock().expect("job queue").next() else {
                        break;
                    };
                    let t0 = Instant::now();
                    let r = run_one(&*job.collector, &cctx);
                    let d = t0.elapsed();
                    drop(job.guard);
                    shared.slots.lock().expect("result slots")[job.slot] = Some((r, d));
                    if shared.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        shared.done.notify_one();
                    }
                });
            }
            // Also when this future is dropped (the client went away).
            let _stop_lanes = AbandonOnDrop(shared.clone());
            let deadline = tokio::time::Instant::from_std(ctx.deadline);
            if tokio::time::timeout_at(deadline, shared.done.notified())
                .await
                .is_err()
            {
                // Deadline: jobs no lane has started yet are dropped (releasing their busy
                // flags) rather than run for a scrape that no longer waits.
                shared.abandoned.store(true, Ordering::Release);
                queue.lock().expect("job queue").by_ref().for_each(drop);
            }
        }
        let results: Vec<Option<(CollectResult, Duration)>> = shared
            .slots
            .lock()
            .expect("result slots")
            .iter_mut()
            .map(Option::take)
            .collect();

        let mut merged = MetricSet::new();
        let mut outcomes = Vec::with_capacity(selected.len());
        for (slot, (e, r)) in selected.iter().zip(results).enumerate() {
            let name = e.name.clone();
            let (result, duration) = match r {
                Some((r, d)) => (r, d),
                None if !started.contains(&slot) => (
                    Err(("previous collection is still running".to_string(), None)),
                    scrape_start.elapsed(),
                ),
                None => (
                    Err((
                        format!("deadline of {:.3}s exceeded", timeout.as_secs_f64()),
                        None,
                    )),
                    scrape_start.elapsed(),
                ),
            };
            match result {
                Ok(set) => {
                    merged.extend(set);
                    if e.last_error.lock().expect("last_error").take().is_some() {
                        tracing::info!(collector = %name, "collector recovered");
                    }
                    outcomes.push(Outcome {
                        name,
                        success: true,
                        duration,
                        error: None,
                    });
                }
                Err((error, partial)) => {
                    if let Some(set) = partial {
                        merged.extend(set);
                    }
                    let mut last = e.last_error.lock().expect("last_error");
                    if last.as_deref() == Some(error.as_str()) {
                        tracing::debug!(collector = %name, duration_seconds = duration.as_secs_f64(), %error, "collector failed");
                    } else {
                        tracing::warn!(collector = %name, duration_seconds = duration.as_secs_f64(), %error, "collector failed");
                        *last = Some(error.clone());
                    }
                    drop(last);
                    outcomes.push(Outcome {
                        name,
                        success: false,
                        duration,
                        error: Some(error),
                    });
                }
            }
        }
        add_outcome_metrics(&self.namespace, &outcomes, &mut merged);
        if let Some((name, help)) = &self.up_metric {
            let up = merged.gauge(name.clone(), help.clone());
            for o in &outcomes {
                up.sample(&[("collector", &o.name)], if o.success { 1.0 } else { 0.0 });
            }
        }
        merged.normalize();
        (merged, outcomes)
    }
}

/// Adds `<ns>_scrape_collector_{success,duration_seconds}` for the outcomes.
pub fn add_outcome_metrics(namespace: &str, outcomes: &[Outcome], out: &mut MetricSet) {
    let dur = out.gauge(
        format!("{namespace}_scrape_collector_duration_seconds"),
        format!("{namespace}_exporter: Duration of a collector scrape."),
    );
    for o in outcomes {
        dur.sample(&[("collector", &o.name)], o.duration.as_secs_f64());
    }
    let ok = out.gauge(
        format!("{namespace}_scrape_collector_success"),
        format!("{namespace}_exporter: Whether a collector succeeded."),
    );
    for o in outcomes {
        ok.sample(&[("collector", &o.name)], if o.success { 1.0 } else { 0.0 });
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl Collector for Fixed {
        fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
            out.gauge("t_value", "A value.").sample(&[], self.0);
            Ok(())
        }
    }
    struct Fails;
    impl Collector for Fails {
        fn collect(&self, _: &Context, _: &mut MetricSet) -> anyhow::Result<()> {
            anyhow::bail!("boom")
        }
    }
    struct Panics;
    impl Collector for Panics {
        fn collect(&self, _: &Context, _: &mut MetricSet) -> anyhow::Result<()> {
            panic!("bad input")
        }
    }
    struct Sleeps(Duration);
    impl Collector for Sleeps {
        fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
            std::thread::sleep(self.0);
            out.gauge("t_slow", "Slow.").sample(&[], 1.0);
            Ok(())
        }
    }

    fn success(set: &MetricSet, name: &str) -> Option<f64> {
        set.families()
            .iter()
            .find(|f| f.name == "t_scrape_collector_success")?
            .samples
            .iter()
            .find(|s| s.labels[0].1 == name)
            .map(|s| s.value)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_are_isolated_and_reported() {
        let mut s = Scraper::new("t");
        s.add("fixed", Arc::new(Fixed(7.0)))
            .add("fails", Arc::new(Fails))
            .add("panics", Arc::new(Panics))
            .add("slow", Arc::new(Sleeps(Duration::from_millis(600))));
        let (set, outcomes) = s.scrape(Duration::from_millis(200)).await;
        assert_eq!(success(&set, "fixed"), Some(1.0));
        assert_eq!(success(&set, "fails"), Some(0.0));
        assert_eq!(success(&set, "panics"), Some(0.0));
        assert_eq!(success(&set, "slow"), Some(0.0));
        assert!(set.families().iter().any(|f| f.name == "t_value"));
        assert!(!set.families().iter().any(|f| f.name == "t_slow"));
        let durations = set
            .families()
            .iter()
            .find(|f| f.name == "t_scrape_collector_duration_seconds")
            .unwrap();
        assert_eq!(durations.samples.len(), 4);
        let slow = outcomes.iter().find(|o| o.name == "slow").unwrap();
        assert!(slow.error.as_deref().unwrap().contains("deadline"));

        // The slow call is still outstanding: a second scrape does not start another one.
        let (set2, outcomes2) = s.scrape(Duration::from_millis(50)).await;
        assert_eq!(success(&set2, "slow"), Some(0.0));
        let slow2 = outcomes2.iter().find(|o| o.name == "slow").unwrap();
        assert!(slow2.error.as_deref().unwrap().contains("still running"));

        // Once it returns, the collector runs again.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (set3, _) = s.scrape(Duration::from_secs(2)).await;
        assert_eq!(success(&set3, "slow"), Some(1.0));
    }

    struct Stale;
    impl Collector for Stale {
        fn collect(&self, _: &Context, _: &mut MetricSet) -> anyhow::Result<()> {
            let mut metrics = MetricSet::new();
            metrics.gauge("t_old", "Last good value.").sample(&[], 3.0);
            Err(PartialMetrics {
                metrics,
                error: "source failed".into(),
            }
            .into())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partial_metrics_are_served_with_failure() {
        let mut s = Scraper::new("t");
        s.add("stale", Arc::new(Stale));
        let (set, outcomes) = s.scrape(Duration::from_secs(1)).await;
        assert_eq!(success(&set, "stale"), Some(0.0));
        assert!(set.families().iter().any(|f| f.name == "t_old"));
        assert_eq!(outcomes[0].error.as_deref(), Some("source failed"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn up_metric_mirrors_success() {
        let mut s = Scraper::new("t");
        s.up_metric("t_up", "Up.")
            .add("a", Arc::new(Fixed(1.0)))
            .add("b", Arc::new(Fails));
        let (set, _) = s.scrape(Duration::from_secs(1)).await;
        let up = set.families().iter().find(|f| f.name == "t_up").unwrap();
        let v = |n: &str| {
            up.samples
                .iter()
                .find(|s| s.labels[0].1 == n)
                .unwrap()
                .value
        };
        assert_eq!((v("a"), v("b")), (1.0, 0.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lanes_share_work_and_release_queued_jobs_at_the_deadline() {
        // Two lanes: one is held by the slow collector, the other serves all fast ones.
        let mut s = Scraper::new("t");
        s.lanes(2)
            .add("slow", Arc::new(Sleeps(Duration::from_millis(800))));
        for i in 0..5 {
            s.add(format!("fast{i}"), Arc::new(Fixed(i as f64)));
        }
        let (set, _) = s.scrape(Duration::from_millis(400)).await;
        assert_eq!(success(&set, "slow"), Some(0.0));
        for i in 0..5 {
            assert_eq!(success(&set, &format!("fast{i}")), Some(1.0), "fast{i}");
        }

        // One lane, held by the slow collector: the queued ones miss this deadline, but
        // are released, so the next scrape runs them while the slow one is still out.
        let mut s = Scraper::new("t");
        s.lanes(1)
            .add("slow", Arc::new(Sleeps(Duration::from_millis(800))))
            .add("fast", Arc::new(Fixed(1.0)));
        let (set, outcomes) = s.scrape(Duration::from_millis(200)).await;
        assert_eq!(success(&set, "fast"), Some(0.0));
        let fast = outcomes.iter().find(|o| o.name == "fast").unwrap();
        assert!(fast.error.as_deref().unwrap().contains("deadline"));
        let (set, outcomes) = s.scrape(Duration::from_millis(200)).await;
        assert_eq!(success(&set, "fast"), Some(1.0));
        let slow = outcomes.iter().find(|o| o.name == "slow").unwrap();
        assert!(slow.error.as_deref().unwrap().contains("still running"));
    }

    #[test]
    fn filter_names_must_be_enabled_collectors() {
        let mut s = Scraper::new("t");
        s.known_collectors(["a", "b", "off"])
            .add("a", Arc::new(Fixed(1.0)))
            .add("b", Arc::new(Fails));
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(s.check_filter(&set(&["a", "b"])), Ok(()));
        assert_eq!(
            s.check_filter(&set(&["a", "off"])),
            Err("disabled collector: off".to_string())
        );
        assert_eq!(
            s.check_filter(&set(&["nonesuch"])),
            Err("missing collector: nonesuch".to_string())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_runs_selected() {
        let mut s = Scraper::new("t");
        s.add("a", Arc::new(Fixed(1.0))).add("b", Arc::new(Fails));
        let only: BTreeSet<String> = ["a".to_string()].into();
        let (set, outcomes) = s.scrape_only(Duration::from_secs(1), Some(&only)).await;
        assert_eq!(outcomes.len(), 1);
        assert_eq!(success(&set, "a"), Some(1.0));
        assert_eq!(success(&set, "b"), None);
    }
}
