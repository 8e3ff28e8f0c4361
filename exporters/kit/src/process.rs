//! The exporter's own process metrics (`process_*`, as client libraries expose them) and
//! `<ns>_exporter_build_info`.

use std::sync::LazyLock;

use crate::metrics::MetricSet;
use crate::sysfs::KeptFile;

/// `/proc/self/{stat,limits,status}`, kept open between scrapes (see [`KeptFile`]).
static SELF_STAT: LazyLock<KeptFile> = LazyLock::new(|| KeptFile::new("/proc/self/stat"));
static SELF_LIMITS: LazyLock<KeptFile> = LazyLock::new(|| KeptFile::new("/proc/self/limits"));
static SELF_STATUS: LazyLock<KeptFile> = LazyLock::new(|| KeptFile::new("/proc/self/status"));

/// Adds `process_*` metrics for this process, read from `/proc/self`.
pub fn add_process_metrics(out: &mut MetricSet) {
    let ticks = clock_ticks();
    let page = page_size();
    if let Ok(stat) = SELF_STAT.read_to_string() {
        // Fields after the command name, which is in parentheses and may contain spaces.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
            if let (Some(ut), Some(st)) = (num(11), num(12)) {
                out.counter(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                )
                .sample(&[], (ut + st) / ticks);
            }
            if let Some(v) = num(20) {
                out.gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                )
                .sample(&[], v);
            }
            if let Some(v) = num(21) {
                out.gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                )
                .sample(&[], v * page);
            }
            // Constant for the process' life: computed once (boot time needs /proc/stat,
            // which is large on many-core nodes).
            static START: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
            let start_time = *START.get_or_init(|| Some(boot_time()? + num(19)? / ticks));
            if let Some(t) = start_time {
                out.gauge(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                )
                .sample(&[], t);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        out.gauge("process_open_fds", "Number of open file descriptors.")
            .sample(&[], rd.count() as f64);
    }
    if let Ok(limits) = SELF_LIMITS.read_to_string() {
        if let Some(v) = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
        {
            out.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            )
            .sample(&[], v);
        }
        // As client_golang reports it: "unlimited" is the largest u64.
        if let Some(v) = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| match v {
                "unlimited" => Some(u64::MAX as f64),
                _ => v.parse::<f64>().ok(),
            })
        {
            out.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
            )
            .sample(&[], v);
        }
    }
    if let Ok(status) = SELF_STATUS.read_to_string() {
        if let Some(n) = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            out.gauge("process_threads", "Number of OS threads in the process.")
                .sample(&[], n);
        }
    }
}

/// Adds `<ns>_exporter_build_info{version,revision,rustversion} 1`.
pub fn add_build_info(namespace: &str, version: &str, out: &mut MetricSet) {
    out.gauge(
        &format!("{namespace}_exporter_build_info"),
        &format!(
            "A metric with a constant '1' value labeled by version, revision, and rustversion from which {namespace}_exporter was built."
        ),
    )
    .sample(
        &[
            ("version", version),
            ("revision", option_env!("HPCMON_REVISION").unwrap_or("unknown")),
            ("rustversion", env!("HPCMON_RUSTC_VERSION")),
        ],
        1.0,
    );
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as f64
    } else {
        4096.0
    }
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_own_process() {
        let mut m = MetricSet::new();
        add_process_metrics(&mut m);
        let names: Vec<_> = m.families().iter().map(|f| f.name.as_str()).collect();
        for n in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_max_bytes",
            "process_start_time_seconds",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let rss = m
            .families()
            .iter()
            .find(|f| f.name == "process_resident_memory_bytes")
            .unwrap()
            .samples[0]
            .value;
        assert!(rss > 1e5, "rss {rss}");
    }
}
