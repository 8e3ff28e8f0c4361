//! The exporter's own process metrics (`process_*`, as client libraries expose them) and
//! `<ns>_exporter_build_info`.

use std::sync::LazyLock;

use crate::metrics::MetricSet;
use crate::sysfs::KeptFile;

/// `/proc/self/{stat,limits}`, kept open between scrapes (see [`KeptFile`]).
static SELF_STAT: LazyLock<KeptFile> = LazyLock::new(|| KeptFile::new("/proc/self/stat"));
static SELF_LIMITS: LazyLock<KeptFile> = LazyLock::new(|| KeptFile::new("/proc/self/limits"));

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
            // num_threads is field 20.
            if let Some(n) = num(17) {
                out.gauge("process_threads", "Number of OS threads in the process.")
                    .sample(&[], n);
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
    if let Some(n) = open_fds() {
        out.gauge("process_open_fds", "Number of open file descriptors.")
            .sample(&[], n as f64);
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
}

/// The number of open file descriptors. Since Linux 6.2 `stat` on `/proc/self/fd` gives it
/// as the directory's size, without listing the directory (a listing instantiates a dentry
/// per descriptor, and the exporter keeps its kernel files open: it was the costliest part of
/// the exporter's own metrics). Older kernels report size 0: then the directory is listed,
/// leaving out the descriptor the listing itself holds.
fn open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(m) if m.len() > 0 => Some(m.len()),
        _ => {
            let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
            Some(n.saturating_sub(1))
        }
    }
}

/// Adds `<ns>_exporter_build_info{version,revision,rustversion} 1`.
pub fn add_build_info(namespace: &str, version: &str, out: &mut MetricSet) {
    out.gauge(
        format!("{namespace}_exporter_build_info"),
        format!(
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
    fn open_fds_counts_descriptors() {
        let before = open_fds().unwrap();
        let files: Vec<_> = (0..32)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let during = open_fds().unwrap();
        // Other tests of this binary open and close files meanwhile: allow for some.
        assert!(
            during >= before + 24,
            "before {before}, with 32 more {during}"
        );
        drop(files);
        assert!(open_fds().unwrap() + 24 <= during);
    }

    #[test]
    fn reports_own_process() {
        let mut m = MetricSet::new();
        add_process_metrics(&mut m);
        let names: Vec<_> = m.families().iter().map(|f| f.name.as_ref()).collect();
        for n in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_max_bytes",
            "process_start_time_seconds",
            "process_threads",
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
