//! `timex` collector: the kernel's clock discipline state from adjtimex(2)
//! (`node_timex_sync_status`, `node_timex_offset_seconds`, `node_timex_maxerror_seconds`,
//! the PPS counters, ...), like node_exporter 1.5.

use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet, MetricType};

use super::Config;

/// The fields of `struct timex` this collector reads, and adjtimex's return value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timex {
    pub state: i32,
    pub offset: i64,
    pub freq: i64,
    pub maxerror: i64,
    pub esterror: i64,
    pub status: i32,
    pub constant: i64,
    pub tick: i64,
    pub ppsfreq: i64,
    pub jitter: i64,
    pub shift: i32,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i32,
}

/// Reads the clock state (adjtimex with `modes = 0` changes nothing).
pub(crate) fn read() -> std::io::Result<Timex> {
    // SAFETY: timex is plain data; modes = 0 makes adjtimex read-only.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Timex {
        state,
        offset: t.offset as i64,
        freq: t.freq as i64,
        maxerror: t.maxerror as i64,
        esterror: t.esterror as i64,
        status: t.status,
        constant: t.constant as i64,
        tick: t.tick as i64,
        ppsfreq: t.ppsfreq as i64,
        jitter: t.jitter as i64,
        shift: t.shift,
        stabil: t.stabil as i64,
        jitcnt: t.jitcnt as i64,
        calcnt: t.calcnt as i64,
        errcnt: t.errcnt as i64,
        stbcnt: t.stbcnt as i64,
        tai: t.tai,
    })
}

/// adjtimex's "clock not synchronized" state.
const TIME_ERROR: i32 = 5;
/// Status bit: offsets in nanoseconds instead of microseconds.
const STA_NANO: i32 = 0x2000;
/// Scaled-ppm unit of freq, ppsfreq and stabil (see NOTES in adjtimex(2)).
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;

/// Writes the metrics for `t`.
pub(crate) fn emit(t: &Timex, out: &mut MetricSet) {
    let divisor = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let g = MetricType::Gauge;
    let c = MetricType::Counter;
    let sync = if t.state == TIME_ERROR { 0.0 } else { 1.0 };
    let metrics: [(&str, &str, MetricType, f64); 17] = [
        (
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            g,
            sync,
        ),
        (
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            g,
            t.offset as f64 / divisor,
        ),
        (
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            g,
            1.0 + t.freq as f64 / PPM16FRAC,
        ),
        (
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            g,
            t.maxerror as f64 / 1e6,
        ),
        (
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            g,
            t.esterror as f64 / 1e6,
        ),
        (
            "node_timex_status",
            "Value of the status array bits.",
            g,
            t.status as f64,
        ),
        (
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            g,
            t.constant as f64,
        ),
        (
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            g,
            t.tick as f64 / 1e6,
        ),
        (
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            g,
            t.ppsfreq as f64 / PPM16FRAC,
        ),
        (
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            g,
            t.jitter as f64 / divisor,
        ),
        (
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            g,
            t.shift as f64,
        ),
        (
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            g,
            t.stabil as f64 / PPM16FRAC,
        ),
        (
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            c,
            t.jitcnt as f64,
        ),
        (
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            c,
            t.calcnt as f64,
        ),
        (
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            c,
            t.errcnt as f64,
        ),
        (
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            c,
            t.stbcnt as f64,
        ),
        (
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            g,
            t.tai as f64,
        ),
    ];
    for (name, help, kind, v) in metrics {
        out.family(name, help, kind).sample(&[], v);
    }
}

struct TimexCollector;

/// Builds the `timex` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(TimexCollector))
}

impl Collector for TimexCollector {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        let t = read().map_err(|e| anyhow::anyhow!("failed to retrieve adjtimex stats: {e}"))?;
        emit(&t, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render};
    use hpcmon_kit::metrics;

    fn golden(name: &str, t: Timex) {
        let mut set = MetricSet::new();
        emit(&t, &mut set);
        set.normalize();
        assert_golden(name, &metrics::encode_text(&set));
    }

    #[test]
    fn golden_unsynchronized_microseconds() {
        // This machine's adjtimex, recorded: not synchronized, STA_UNSYNC only.
        golden(
            "timex",
            Timex {
                state: TIME_ERROR,
                maxerror: 16_000_000,
                esterror: 16_000_000,
                status: 0x40,
                constant: 2,
                tick: 10_000,
                ..Timex::default()
            },
        );
    }

    #[test]
    fn golden_synchronized_nanoseconds_pps() {
        // chrony with PPS: STA_PLL|STA_PPSFREQ|STA_PPSTIME|STA_PPSSIGNAL|STA_NANO.
        golden(
            "timex_pps",
            Timex {
                state: 0,
                offset: -1234,
                freq: -1_179_648, // -18 ppm
                maxerror: 1500,
                esterror: 20,
                status: 0x1 | 0x2 | 0x4 | 0x100 | STA_NANO,
                constant: 7,
                tick: 10_000,
                ppsfreq: 655_360,
                jitter: 250,
                shift: 4,
                stabil: 65_536,
                jitcnt: 3,
                calcnt: 100,
                errcnt: 1,
                stbcnt: 2,
                tai: 37,
            },
        );
    }

    #[test]
    fn live_adjtimex() {
        let t = render(
            &*new(&crate::collector::testutil::test_config(
                std::path::Path::new("/"),
                &[],
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(t.matches("# TYPE node_timex_").count(), 17, "{t}");
        assert!(
            t.contains("node_timex_tick_seconds 0.01")
                || t.contains("node_timex_tick_seconds 0.00")
        );
    }
}
