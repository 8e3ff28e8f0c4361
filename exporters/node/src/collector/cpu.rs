//! `cpu` collector: CPU time per mode from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), `node_cpu_info` and the flag/bug infos from
//! `/proc/cpuinfo` (behind `--collector.cpu.info`), isolated CPUs and the thermal throttle
//! counters from sysfs, as node_exporter 1.5 exposes them.
//!
//! Like node_exporter, counters never go backwards: a value lower than the last one seen
//! is replaced by the last one, unless `idle` dropped by 3 s or more, which means the CPU
//! was hot-plugged and its counters restarted. Unlike node_exporter, a CPU that went
//! offline (its line left `/proc/stat`) is not reported with stale values.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use hpcmon_kit::sysfs::KeptFile;
use hpcmon_kit::{sysfs, Collector, Context, MetricSet};
use regex::Regex;

use super::read;
use super::Config;

/// Flags of the `cpu` collector.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(skip)]
pub struct Flags {
    /// Enables metric node_cpu_guest_seconds_total.
    #[arg(long = "collector.cpu.guest",
        id = "collector.cpu.guest", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub guest: bool,
    /// Disables metric node_cpu_guest_seconds_total (kingpin's negation of the above).
    #[arg(long = "no-collector.cpu.guest", id = "no-collector.cpu.guest")]
    pub no_guest: bool,
    /// Enables metric node_cpu_info (from /proc/cpuinfo).
    #[arg(long = "collector.cpu.info", id = "collector.cpu.info")]
    pub info: bool,
    /// Regexp selecting the `flags` of /proc/cpuinfo to expose as node_cpu_flag_info
    /// (implies --collector.cpu.info).
    #[arg(
        long = "collector.cpu.info.flags-include",
        id = "collector.cpu.info.flags-include",
        value_name = "REGEX"
    )]
    pub flags_include: Option<String>,
    /// Regexp selecting the `bugs` of /proc/cpuinfo to expose as node_cpu_bug_info
    /// (implies --collector.cpu.info).
    #[arg(
        long = "collector.cpu.info.bugs-include",
        id = "collector.cpu.info.bugs-include",
        value_name = "REGEX"
    )]
    pub bugs_include: Option<String>,
}

/// Kernel clock ticks per second in /proc/stat (USER_HZ, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;
/// Idle going back by this many ticks (3 s) means the CPU's counters restarted.
const JUMP_BACK_TICKS: u64 = 300;

/// The ten per-CPU columns of /proc/stat, in order.
pub(crate) const NUM_FIELDS: usize = 10;
const IDLE: usize = 3;
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;
/// Modes of `node_cpu_seconds_total`, by column (guest columns are exposed separately).
const MODES: [(usize, &str); 8] = [
    (0, "user"),
    (1, "nice"),
    (2, "system"),
    (3, "idle"),
    (4, "iowait"),
    (5, "irq"),
    (6, "softirq"),
    (7, "steal"),
];

/// One `cpuN` line of /proc/stat: the CPU number and its tick counters (missing columns, on
/// old kernels or truncated lines, are 0).
pub(crate) type CpuTicks = (u32, [u64; NUM_FIELDS]);

/// Parses the per-CPU lines (`cpu0 ...`, not the `cpu ` total) of /proc/stat. Lines that are
/// not per-CPU lines, or whose CPU number or first counter does not parse, are skipped.
pub(crate) fn parse_stat_cpus(text: &str) -> Vec<CpuTicks> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let Some(Ok(id)) = fields.next().map(str::parse::<u32>) else {
            continue; // the aggregate "cpu " line, or garbage
        };
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut ticks = [0u64; NUM_FIELDS];
        let mut n = 0;
        for (slot, f) in ticks.iter_mut().zip(fields) {
            match f.parse::<u64>() {
                Ok(v) => {
                    *slot = v;
                    n += 1;
                }
                Err(_) => break,
            }
        }
        if n > 0 {
            out.push((id, ticks));
        }
    }
    out
}

/// One processor of /proc/cpuinfo, with the fields node_cpu_info uses.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct CpuInfo {
    pub processor: String,
    pub vendor: String,
    pub family: String,
    pub model: String,
    pub model_name: String,
    pub microcode: String,
    pub stepping: String,
    pub cachesize: String,
    pub package: String,
    pub core: String,
    pub flags: String,
    pub bugs: String,
}

/// Parses /proc/cpuinfo (`key<TAB>: value`, a `processor` line starting each CPU). On arm64
/// only `processor`, `model name` and `Features` exist, as node_exporter reads them there.
pub(crate) fn parse_cpuinfo(text: &str) -> Vec<CpuInfo> {
    let mut out: Vec<CpuInfo> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        if key == "processor" {
            out.push(CpuInfo {
                processor: value.to_owned(),
                ..CpuInfo::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else {
            continue;
        };
        let slot = match key {
            "vendor_id" => &mut cur.vendor,
            "cpu family" => &mut cur.family,
            "model" => &mut cur.model,
            "model name" => &mut cur.model_name,
            "microcode" => &mut cur.microcode,
            "stepping" => &mut cur.stepping,
            "cache size" => &mut cur.cachesize,
            "physical id" => &mut cur.package,
            "core id" => &mut cur.core,
            // x86 "flags", arm64 "Features".
            "flags" | "Features" => &mut cur.flags,
            "bugs" => &mut cur.bugs,
            _ => continue,
        };
        *slot = value.to_owned();
    }
    out
}

/// Parses a sysfs CPU list such as `0-3,8,10-11` (invalid parts are skipped; ranges are
/// capped so that garbage cannot allocate without bound).
pub(crate) fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in text.trim().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    if a <= b && b - a < 65536 {
                        out.extend(a..=b);
                    }
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.push(v);
                }
            }
        }
    }
    out
}

struct Cpu {
    stat: KeptFile,
    cpuinfo: PathBuf,
    cpu_dir: PathBuf,
    guest: bool,
    info: bool,
    flags_include: Option<Regex>,
    bugs_include: Option<Regex>,
    isolated: Vec<u32>,
    /// Last values seen per CPU (to keep counters monotonic).
    last: Mutex<HashMap<u32, [u64; NUM_FIELDS]>>,
}

/// Builds the `cpu` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    let f = cfg.flags::<Flags>()?;
    let compile = |flag: &str, re: &Option<String>| -> anyhow::Result<Option<Regex>> {
        re.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| Regex::new(s).with_context(|| format!("--collector.cpu.info.{flag}")))
            .transpose()
    };
    let flags_include = compile("flags-include", &f.flags_include)?;
    let bugs_include = compile("bugs-include", &f.bugs_include)?;
    let cpu_dir = cfg.paths.sys("devices/system/cpu");
    let isolated = std::fs::read_to_string(cpu_dir.join("isolated"))
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    Ok(Arc::new(Cpu {
        stat: KeptFile::new(cfg.paths.proc("stat")),
        cpuinfo: cfg.paths.proc("cpuinfo"),
        cpu_dir,
        guest: f.guest && !f.no_guest,
        info: f.info || flags_include.is_some() || bugs_include.is_some(),
        flags_include,
        bugs_include,
        isolated,
        last: Mutex::new(HashMap::new()),
    }))
}

impl Cpu {
    fn update_info(&self, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.cpuinfo)
            .with_context(|| format!("reading {}", self.cpuinfo.display()))?;
        let cpus = parse_cpuinfo(&text);
        let fam = out.gauge("node_cpu_info", "CPU information from /proc/cpuinfo.");
        for c in &cpus {
            fam.sample(
                &[
                    ("package", &c.package),
                    ("core", &c.core),
                    ("cpu", &c.processor),
                    ("vendor", &c.vendor),
                    ("family", &c.family),
                    ("model", &c.model),
                    ("model_name", &c.model_name),
                    ("microcode", &c.microcode),
                    ("stepping", &c.stepping),
                    ("cachesize", &c.cachesize),
                ],
                1.0,
            );
        }
        if let Some(first) = cpus.first() {
            if let Some(re) = &self.flags_include {
                let fam = out.gauge(
                    "node_cpu_flag_info",
                    "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                );
                for flag in first
                    .flags
                    .split_ascii_whitespace()
                    .filter(|f| re.is_match(f))
                {
                    fam.sample(&[("flag", flag)], 1.0);
                }
            }
            if let Some(re) = &self.bugs_include {
                let fam = out.gauge(
                    "node_cpu_bug_info",
                    "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                );
                for bug in first
                    .bugs
                    .split_ascii_whitespace()
                    .filter(|f| re.is_match(f))
                {
                    fam.sample(&[("bug", bug)], 1.0);
                }
            }
        }
        Ok(())
    }

    fn update_stat(&self, out: &mut MetricSet) -> anyhow::Result<()> {
        let text = read::kept(&self.stat)?;
        let cpus = parse_stat_cpus(&text);
        if cpus.is_empty() {
            anyhow::bail!("no per-CPU lines in {}", self.stat.path().display());
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::with_capacity(cpus.len());
        let mut samples: Vec<(String, [u64; NUM_FIELDS])> = Vec::with_capacity(cpus.len());
        for (id, new) in cpus {
            if !seen.insert(id) {
                continue; // a duplicated line would make duplicate series
            }
            let cur = last.entry(id).or_insert(new);
            if cur[IDLE] >= new[IDLE].saturating_add(JUMP_BACK_TICKS) {
                *cur = new; // hot-plugged: counters restarted
            } else {
                for (c, n) in cur.iter_mut().zip(new) {
                    if n >= *c {
                        *c = n;
                    }
                }
            }
            samples.push((id.to_string(), *cur));
        }
        drop(last);

        let fam = out.counter(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
        );
        for (id, t) in &samples {
            for (col, mode) in MODES {
                fam.sample(&[("cpu", id), ("mode", mode)], t[col] as f64 / USER_HZ);
            }
        }
        if self.guest {
            let fam = out.counter(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
            );
            for (id, t) in &samples {
                // Guest time is also counted in user and nice.
                fam.sample(&[("cpu", id), ("mode", "user")], t[GUEST] as f64 / USER_HZ);
                fam.sample(
                    &[("cpu", id), ("mode", "nice")],
                    t[GUEST_NICE] as f64 / USER_HZ,
                );
            }
        }
        Ok(())
    }

    fn update_isolated(&self, out: &mut MetricSet) {
        let fam = out.gauge(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
        );
        for cpu in &self.isolated {
            fam.sample(&[("cpu", &cpu.to_string())], 1.0);
        }
    }

    /// Core and package thermal throttle counts from `cpuN/thermal_throttle/` (Intel), read
    /// once per core and once per package. CPUs without that directory cost one `stat`.
    fn update_thermal_throttle(&self, out: &mut MetricSet) {
        let Ok(dir) = std::fs::read_dir(&self.cpu_dir) else {
            return;
        };
        let mut package: Vec<(u64, u64)> = Vec::new();
        let mut core: Vec<((u64, u64), u64)> = Vec::new();
        let mut seen_core: std::collections::HashSet<(u64, u64)> = Default::default();
        let mut names: Vec<(u64, PathBuf)> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let n = name.to_str()?.strip_prefix("cpu")?.parse::<u64>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        names.sort();
        for (_, cpu) in names {
            let throttle = cpu.join("thermal_throttle");
            if !throttle.is_dir() {
                continue;
            }
            let (Some(pkg), Some(core_id)) = (
                sysfs::attr_u64(&cpu.join("topology/physical_package_id")).ok(),
                sysfs::attr_u64(&cpu.join("topology/core_id")).ok(),
            ) else {
                continue;
            };
            if seen_core.insert((pkg, core_id)) {
                if let Ok(v) = sysfs::attr_u64(&throttle.join("core_throttle_count")) {
                    core.push(((pkg, core_id), v));
                }
            }
            if !package.iter().any(|(p, _)| *p == pkg) {
                if let Ok(v) = sysfs::attr_u64(&throttle.join("package_throttle_count")) {
                    package.push((pkg, v));
                }
            }
        }
        let fam = out.counter(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
        );
        for (pkg, v) in &package {
            fam.sample(&[("package", &pkg.to_string())], *v as f64);
        }
        let fam = out.counter(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
        );
        for ((pkg, c), v) in &core {
            fam.sample(
                &[("package", &pkg.to_string()), ("core", &c.to_string())],
                *v as f64,
            );
        }
    }
}

impl Collector for Cpu {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        if self.info {
            self.update_info(out)?;
        }
        self.update_stat(out)?;
        self.update_isolated(out);
        self.update_thermal_throttle(out);
        Ok(())
    }
}

/// A /proc/stat as a 4096-CPU machine writes it.
#[cfg(test)]
pub(crate) fn stat_4096() -> String {
    let mut s = String::from("cpu  1 2 3 4 5 6 7 8 0 0\n");
    for i in 0..4096u64 {
        let _ = std::fmt::Write::write_fmt(
            &mut s,
            format_args!(
                "cpu{i} {} {} {} {} {} {} {} {} {} {}\n",
                i * 10 + 1,
                i % 7,
                i * 3,
                100_000 + i,
                i % 13,
                0,
                i % 5,
                0,
                i % 2,
                0
            ),
        );
    }
    s.push_str("intr 123456");
    for i in 0..4096 {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!(" {}", i % 3));
    }
    s.push_str(
        "\nctxt 987654321\nbtime 1795287856\nprocesses 424242\nprocs_running 17\nprocs_blocked 2\n",
    );
    s.push_str("softirq 1 2 3 4 5 6 7 8 9 10 11\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};
    use proptest::prelude::*;

    fn config(dir: &std::path::Path, flags: Flags) -> Config {
        let mut cfg = test_config(dir, &[]);
        cfg.collector_flags.set(flags);
        cfg
    }

    fn default_flags() -> Flags {
        Flags {
            guest: true,
            ..Flags::default()
        }
    }

    #[test]
    fn golden_this_machine() {
        let dir = testdata().join("fixtures/a-cpu");
        let c = new(&config(&dir, default_flags())).unwrap();
        assert_golden("cpu", &render(&*c).unwrap());
    }

    #[test]
    fn golden_info_flags_bugs() {
        let dir = testdata().join("fixtures/a-cpu");
        let flags = Flags {
            guest: false,
            no_guest: false,
            info: false,
            flags_include: Some("^(sse|avx).*".into()),
            bugs_include: Some("^spectre".into()),
        };
        let c = new(&config(&dir, flags)).unwrap();
        assert_golden("cpu_info", &render(&*c).unwrap());
    }

    #[test]
    fn golden_offline_cpu_throttles_and_isolated() {
        // cpu1 offline: /proc/stat has cpu0, cpu2, cpu3; sysfs has thermal_throttle and an
        // isolated list.
        let dir = testdata().join("fixtures/a-cpu-offline");
        let c = new(&config(&dir, default_flags())).unwrap();
        assert_golden("cpu_offline", &render(&*c).unwrap());
    }

    #[test]
    fn golden_truncated_lines() {
        let dir = testdata().join("fixtures/a-cpu-truncated");
        let c = new(&config(&dir, default_flags())).unwrap();
        assert_golden("cpu_truncated", &render(&*c).unwrap());
    }

    #[test]
    fn four_thousand_cpus() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/stat"), stat_4096()).unwrap();
        let c = new(&config(dir.path(), default_flags())).unwrap();
        let text = render(&*c).unwrap();
        let count = |name: &str| {
            text.lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
                .count()
        };
        assert_eq!(count("node_cpu_seconds_total"), 4096 * 8);
        assert_eq!(count("node_cpu_guest_seconds_total"), 4096 * 2);
        assert!(text.contains("node_cpu_seconds_total{cpu=\"4095\",mode=\"user\"} 409.51\n"));
        assert!(text.contains("node_cpu_seconds_total{cpu=\"4095\",mode=\"idle\"} 1040.95\n"));
    }

    #[test]
    fn counters_do_not_go_back_unless_hotplugged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        let stat = dir.path().join("proc/stat");
        let c = new(&config(dir.path(), default_flags())).unwrap();
        std::fs::write(&stat, "cpu0 100 0 50 10000 0 0 0 0 0 0\n").unwrap();
        render(&*c).unwrap();
        // user goes back a bit: the old value stays.
        std::fs::write(&stat, "cpu0 90 0 60 10100 0 0 0 0 0 0\n").unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("{cpu=\"0\",mode=\"user\"} 1\n"), "{t}");
        assert!(t.contains("{cpu=\"0\",mode=\"system\"} 0.6\n"), "{t}");
        // idle drops by more than 3 s: hot-plug, take the new values.
        std::fs::write(&stat, "cpu0 5 0 6 7 0 0 0 0 0 0\n").unwrap();
        let t = render(&*c).unwrap();
        assert!(t.contains("{cpu=\"0\",mode=\"user\"} 0.05\n"), "{t}");
        assert!(t.contains("{cpu=\"0\",mode=\"idle\"} 0.07\n"), "{t}");
    }

    #[test]
    fn missing_stat_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = new(&config(dir.path(), default_flags())).unwrap();
        assert!(render(&*c).is_err());
    }

    #[test]
    fn guest_can_be_switched_off() {
        let dir = testdata().join("fixtures/a-cpu");
        for args in [
            &["--no-collector.cpu.guest"][..],
            &["--collector.cpu.guest=false"][..],
        ] {
            let c = new(&test_config(&dir, args)).unwrap();
            let t = render(&*c).unwrap();
            assert!(!t.contains("node_cpu_guest_seconds_total"), "{args:?}");
            assert!(t.contains("node_cpu_seconds_total"));
        }
        let c = new(&test_config(&dir, &[])).unwrap();
        assert!(render(&*c)
            .unwrap()
            .contains("node_cpu_guest_seconds_total"));
    }

    #[test]
    fn bad_regex_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags {
            flags_include: Some("(".into()),
            ..default_flags()
        };
        assert!(new(&config(dir.path(), flags)).is_err());
    }

    #[test]
    fn arm64_cpuinfo() {
        let text = "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n\nprocessor\t: 1\nFeatures\t: fp asimd sve\n";
        let cpus = parse_cpuinfo(text);
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].flags, "fp asimd sve");
        assert_eq!(cpus[1].processor, "1");
        assert_eq!(cpus[0].vendor, "");
    }

    #[test]
    fn cpu_list() {
        assert_eq!(parse_cpu_list("0-2,5,7-8\n"), vec![0, 1, 2, 5, 7, 8]);
        assert_eq!(parse_cpu_list("\n"), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("3-1,x,4"), vec![4]);
    }

    proptest! {
        #[test]
        fn stat_parser_never_panics(s in "\\PC*") {
            let _ = parse_stat_cpus(&s);
        }

        #[test]
        fn cpuinfo_parser_never_panics(s in "\\PC*") {
            let _ = parse_cpuinfo(&s);
            let _ = parse_cpu_list(&s);
        }

        #[test]
        fn stat_parser_survives_mutations(cut in 0usize..4000, junk in "[ a-z0-9\\n:-]{0,20}") {
            let real = std::fs::read_to_string(testdata().join("fixtures/a-cpu/proc/stat")).unwrap();
            let cut = cut.min(real.len());
            let cut = (0..=cut).rev().find(|&i| real.is_char_boundary(i)).unwrap_or(0);
            let mutated = format!("{}{}{}", &real[..cut], junk, &real[cut..]);
            let _ = parse_stat_cpus(&mutated);
            let _ = parse_stat_cpus(&real[..cut]);
        }
    }
}
