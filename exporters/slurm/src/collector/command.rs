//! `slurm_command_*`: how the poller's Slurm commands fare — success of the latest run, its
//! duration, runs and failures, and the age of the data being served.

use std::time::SystemTime;

use hpcmon_kit::{Collector, Context, MetricSet};

use crate::poller::Poller;

/// The `command` collector.
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn Collector>> {
    Ok(std::sync::Arc::new(CommandCollector(cfg.poller.clone())))
}

/// Reports on the poller's commands; always succeeds.
pub struct CommandCollector(pub Poller);

impl Collector for CommandCollector {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let p = &self.0;
        let now = SystemTime::now();
        let states: Vec<_> = p
            .sources()
            .iter()
            .map(|s| (s.name(), p.state(*s)))
            .collect();
        let f = out.gauge(
            "slurm_command_success",
            "Whether the latest run of the Slurm command succeeded (output parsed).",
        );
        for (name, st) in &states {
            if let Some(st) = st {
                f.sample(&[("command", name)], if st.ok { 1.0 } else { 0.0 });
            }
        }
        let f = out.gauge(
            "slurm_command_duration_seconds",
            "Duration of the latest run of the Slurm command.",
        );
        for (name, st) in &states {
            if let Some(st) = st {
                f.sample(&[("command", name)], st.duration.as_secs_f64());
            }
        }
        let f = out.counter("slurm_command_runs_total", "Runs of the Slurm command.");
        for (name, st) in &states {
            f.sample(
                &[("command", name)],
                st.as_ref().map_or(0.0, |s| s.runs as f64),
            );
        }
        let f = out.counter(
            "slurm_command_failures_total",
            "Failed runs of the Slurm command (error, timeout or unparsable output).",
        );
        for (name, st) in &states {
            f.sample(
                &[("command", name)],
                st.as_ref().map_or(0.0, |s| s.failures as f64),
            );
        }
        let f = out.gauge(
            "slurm_command_last_success_timestamp_seconds",
            "When the Slurm command last succeeded (Unix time).",
        );
        for (name, st) in &states {
            if let Some(t) = st.as_ref().and_then(|s| s.last_success) {
                f.sample(
                    &[("command", name)],
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
            }
        }
        let f = out.gauge(
            "slurm_command_data_age_seconds",
            "Age of the data served from the Slurm command (time since its last success).",
        );
        for (name, st) in &states {
            if let Some(t) = st.as_ref().and_then(|s| s.last_success) {
                f.sample(
                    &[("command", name)],
                    now.duration_since(t).map_or(0.0, |d| d.as_secs_f64()),
                );
            }
        }
        out.counter("slurm_polls_total", "Snapshots the poller has completed.")
            .sample(&[], p.polls() as f64);
        Ok(())
    }
}
