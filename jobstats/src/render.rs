//! The report as text for a terminal, in the spirit of Princeton's `jobstats`: a header
//! block from Slurm, overall CPU, memory and GPU use with small bar gauges, per-node and
//! per-GPU tables, the notes, and where the numbers came from.
//!
//! ANSI colours appear only with [`Style::color`]; without it the output is plain ASCII
//! (plus whatever the job's names contain).

use crate::advice::{duration, human_bytes};
use crate::model::{Report, Severity, Source};

/// How to render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
}

/// Width of the report.
const WIDTH: usize = 80;
/// Width of a gauge's bar.
const BAR: usize = 20;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";

struct Out {
    s: String,
    color: bool,
}

impl Out {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
    fn line(&mut self, text: &str) {
        self.s.push_str(text);
        self.s.push('\n');
    }
    fn section(&mut self, title: &str) {
        self.line("");
        let pad = WIDTH.saturating_sub(title.len()) / 2;
        let t = self.paint(BOLD, title);
        self.line(&format!("{}{t}", " ".repeat(pad)));
        self.line(&"=".repeat(WIDTH));
    }
    fn field(&mut self, label: &str, value: &str) {
        let l = self.paint(BOLD, &format!("{label:>15}"));
        self.line(&format!("{l}: {value}"));
    }
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.0}%", x * 100.0)
    } else {
        "?".into()
    }
}

fn bytes(b: Option<f64>) -> String {
    b.filter(|b| b.is_finite())
        .map(human_bytes)
        .unwrap_or_else(|| "-".into())
}

fn time(t: Option<i64>) -> String {
    use chrono::{DateTime, Local};
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|d| {
            d.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// `[|||||.....]` for a fraction 0..1 (clamped).
fn bar(frac: f64) -> String {
    let f = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let n = (f * BAR as f64).round() as usize;
    format!("[{}{}]", "|".repeat(n), ".".repeat(BAR - n))
}

/// Colour of a gauge: `good` when at least `ok`, `warn` above `bad`, else red.
fn level(x: f64, bad: f64, ok: f64) -> &'static str {
    if !x.is_finite() || x < bad {
        RED
    } else if x < ok {
        YELLOW
    } else {
        GREEN
    }
}

/// Word-wraps `text` to `width`, every line after the first indented by `indent` spaces.
fn wrap(text: &str, first: usize, width: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut room = width.saturating_sub(first);
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > room {
            lines.push(std::mem::take(&mut cur));
            room = width.saturating_sub(indent);
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Shortens a GPU UUID for a table: `GPU-1a2b3c4d-...` → `GPU-1a2b3c4d`.
fn short_uuid(u: &str) -> String {
    let (prefix, rest) = match u.split_once('-') {
        Some((p, r)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphabetic()) => {
            (format!("{p}-"), r)
        }
        _ => (String::new(), u),
    };
    let head: String = rest
        .split('-')
        .next()
        .unwrap_or(rest)
        .chars()
        .take(8)
        .collect();
    format!("{prefix}{head}")
}

/// Renders the report for a terminal.
pub fn text(report: &Report, style: Style) -> String {
    let mut o = Out {
        s: String::new(),
        color: style.color,
    };
    let job = &report.job;
    o.line(&"=".repeat(WIDTH));
    let title = "Slurm Job Statistics";
    let t = o.paint(BOLD, title);
    o.line(&format!("{}{t}", " ".repeat((WIDTH - title.len()) / 2)));
    o.line(&"=".repeat(WIDTH));
    o.field("Job ID", &job.jobid);
    o.field("User/Account", &format!("{}/{}", job.user, job.account));
    o.field("Job Name", &job.name);
    let state = if job.is_active() {
        format!("{} (numbers so far)", job.state)
    } else {
        job.state.clone()
    };
    let state = match job.state.as_str() {
        "COMPLETED" => o.paint(GREEN, &state),
        "RUNNING" | "PENDING" | "COMPLETING" => state,
        _ => o.paint(RED, &state),
    };
    o.field("State", &state);
    o.field("Partition", &job.partition);
    let nodes = if job.nodelist.is_empty() {
        job.nodes.to_string()
    } else {
        format!("{} ({})", job.nodes, job.nodelist)
    };
    o.field("Nodes", &nodes);
    o.field("CPU Cores", &job.cpus.to_string());
    let mem = match job.mem_requested_bytes {
        Some(m) if m.is_finite() && m > 0.0 => {
            if job.nodes > 1 {
                format!(
                    "{} ({} per node)",
                    human_bytes(m),
                    human_bytes(m / job.nodes as f64)
                )
            } else {
                human_bytes(m)
            }
        }
        _ => "unknown or unlimited".into(),
    };
    o.field("CPU Memory", &mem);
    o.field("GPUs", &job.gpus.to_string());
    o.field("Start Time", &time(job.start_time));
    let elapsed = job.elapsed_seconds.filter(|e| e.is_finite());
    let run = match (
        elapsed,
        job.time_limit_seconds.filter(|l| l.is_finite() && *l > 0.0),
    ) {
        (Some(e), Some(l)) => format!("{} of {} limit ({})", duration(e), duration(l), pct(e / l)),
        (Some(e), None) => format!("{} (no time limit)", duration(e)),
        (None, Some(l)) => format!("- (limit {})", duration(l)),
        (None, None) => "-".into(),
    };
    o.field("Run Time", &run);
    if let Some(e) = &job.exit_code {
        o.field("Exit Code", e);
    }

    match (&report.usage, report.source) {
        (Some(u), source) => {
            o.section("Overall Utilization");
            if source == Source::Summary {
                let m = o.paint(DIM, "  (from the summary stored at job end; the series are no longer in Prometheus)");
                o.line(&m);
            }
            if let Some(eff) = u.cpu_efficiency() {
                let g = o.paint(level(eff, 0.65, 0.8), &bar(eff));
                o.line(&format!(
                    "  CPU utilization   {g} {:>4}  ({:.1} of {} cores)",
                    pct(eff),
                    u.cores_used(),
                    trim_num(u.cpus())
                ));
            }
            let req = job
                .mem_requested_bytes
                .filter(|m| m.is_finite() && *m > 0.0);
            match (u.mem_peak_bytes(), req) {
                (Some(p), Some(r)) => {
                    let f = p / r;
                    let code = if f >= 0.95 {
                        RED
                    } else if f < 0.7 {
                        YELLOW
                    } else {
                        GREEN
                    };
                    let g = o.paint(code, &bar(f));
                    o.line(&format!(
                        "  CPU memory usage  {g} {:>4}  ({} peak of {})",
                        pct(f),
                        human_bytes(p),
                        human_bytes(r)
                    ));
                }
                (Some(p), None) => o.line(&format!("  CPU memory peak   {}", human_bytes(p))),
                _ => {}
            }
            if let Some(g) = u.gpu_utilization() {
                let n = u.gpus.iter().filter(|g| g.utilization.is_some()).count();
                let b = o.paint(level(g, 0.15, 0.5), &bar(g));
                o.line(&format!(
                    "  GPU utilization   {b} {:>4}  (mean of {n} GPU{})",
                    pct(g),
                    if n == 1 { "" } else { "s" }
                ));
            }
            if !u.nodes.is_empty() || !u.gpus.is_empty() {
                o.section("Detailed Utilization");
            }
            if !u.nodes.is_empty() {
                let w = u
                    .nodes
                    .iter()
                    .map(|n| n.node.chars().count())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                let h = format!(
                    "  {:<w$}  {:>6}  {:>7}  {:>7}  {:>24}",
                    "Node", "Cores", "Used", "CPU eff", "Mem peak / limit"
                );
                let h = o.paint(BOLD, &h);
                o.line(&h);
                for n in &u.nodes {
                    let eff = n
                        .cpu_efficiency
                        .or_else(|| (n.cpus > 0.0).then(|| n.cores_used / n.cpus));
                    let e = eff.map(pct).unwrap_or_else(|| "-".into());
                    let e = match eff {
                        Some(x) => o.paint(level(x, 0.65, 0.8), &format!("{e:>7}")),
                        None => format!("{e:>7}"),
                    };
                    let mem = format!("{} / {}", bytes(n.mem_peak_bytes), bytes(n.mem_limit_bytes));
                    let oom = if n.oom_kills > 0.0 {
                        o.paint(
                            BOLD_RED,
                            &format!("  {} OOM kill(s)", trim_num(n.oom_kills)),
                        )
                    } else {
                        String::new()
                    };
                    o.line(&format!(
                        "  {:<w$}  {:>6}  {:>7.1}  {e}  {mem:>24}{oom}",
                        n.node,
                        trim_num(n.cpus),
                        n.cores_used
                    ));
                }
            }
            if !u.gpus.is_empty() {
                if !u.nodes.is_empty() {
                    o.line("");
                }
                let w = u
                    .gpus
                    .iter()
                    .map(|g| g.node.chars().count())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                let h = format!(
                    "  {:<w$}  {:<12}  {:>6}  {:>24}",
                    "Node", "GPU", "Util", "Mem peak / total"
                );
                let h = o.paint(BOLD, &h);
                o.line(&h);
                for g in &u.gpus {
                    let util = match g.utilization {
                        Some(x) => o.paint(level(x, 0.15, 0.5), &format!("{:>6}", pct(x))),
                        None => format!("{:>6}", "-"),
                    };
                    let mem = format!(
                        "{} / {}",
                        bytes(g.mem_used_max_bytes),
                        bytes(g.mem_total_bytes)
                    );
                    o.line(&format!(
                        "  {:<w$}  {:<12}  {util}  {mem:>24}",
                        g.node,
                        short_uuid(&g.uuid)
                    ));
                }
            }
        }
        (None, _) => {
            o.line("");
            let why = if job.is_pending() {
                "the job has not started yet.".to_string()
            } else {
                "the node exporter's slurm_job collector had no series for it in Prometheus (too short to be scraped, or expired) and no summary was stored at job end.".to_string()
            };
            let text = format!("No metrics found for this job: {why}");
            for l in wrap(&text, 2, WIDTH, 2) {
                let l = o.paint(YELLOW, &l);
                o.line(&format!("  {l}"));
            }
        }
    }

    if !report.notes.is_empty() {
        o.section("Notes");
        for n in &report.notes {
            let (code, tag) = match n.severity {
                Severity::Critical => (BOLD_RED, "critical"),
                Severity::Warning => (RED, "warning"),
                Severity::Notice => (YELLOW, "notice"),
                Severity::Info => (CYAN, "info"),
            };
            let head = format!("* [{tag}] ");
            let lines = wrap(&n.message, 2 + head.len(), WIDTH, 4);
            for (i, l) in lines.iter().enumerate() {
                let text = if i == 0 {
                    format!("  {head}{l}")
                } else {
                    format!("    {l}")
                };
                let text = o.paint(code, &text);
                o.line(&text);
            }
        }
    }
    if let Some(url) = &report.dashboard_url {
        o.line("");
        o.field("Dashboard", url);
    }
    o.line("");
    o.s
}

/// A number without a useless fraction (`8`, `7.5`).
fn trim_num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuUsage, JobHeader, NodeUsage, Note, Usage, REPORT_VERSION};

    const G: f64 = 1024.0 * 1024.0 * 1024.0;

    fn report() -> Report {
        Report {
            version: REPORT_VERSION,
            job: JobHeader {
                jobid: "4242".into(),
                jobid_raw: "4242".into(),
                user: "alice".into(),
                account: "physics".into(),
                partition: "gpu".into(),
                name: "train".into(),
                state: "COMPLETED".into(),
                nodelist: "n[1-2]".into(),
                nodes: 2,
                cpus: 16,
                gpus: 2,
                mem_requested_bytes: Some(64.0 * G),
                submit_time: Some(1_700_000_000),
                start_time: Some(1_700_000_060),
                end_time: Some(1_700_005_460),
                elapsed_seconds: Some(5400.0),
                time_limit_seconds: Some(4.0 * 3600.0),
                exit_code: Some("0:0".into()),
            },
            source: Source::Prometheus,
            usage: Some(Usage {
                allocated_cpus: 0.0,
                from: 1_700_000_060,
                to: 1_700_005_460,
                nodes: vec![
                    NodeUsage {
                        node: "n1".into(),
                        cpus: 8.0,
                        cores_used: 7.2,
                        cpu_efficiency: Some(0.9),
                        mem_used_bytes: Some(10.0 * G),
                        mem_peak_bytes: Some(12.0 * G),
                        mem_limit_bytes: Some(32.0 * G),
                        oom_kills: 0.0,
                    },
                    NodeUsage {
                        node: "n2".into(),
                        cpus: 8.0,
                        cores_used: 0.8,
                        cpu_efficiency: Some(0.1),
                        mem_used_bytes: Some(1.0 * G),
                        mem_peak_bytes: Some(2.0 * G),
                        mem_limit_bytes: Some(32.0 * G),
                        oom_kills: 1.0,
                    },
                ],
                gpus: vec![
                    GpuUsage {
                        node: "n1".into(),
                        uuid: "GPU-1a2b3c4d-0000-1111-2222-333344445555".into(),
                        utilization: Some(0.83),
                        mem_used_max_bytes: Some(30.0 * G),
                        mem_total_bytes: Some(80.0 * G),
                    },
                    GpuUsage {
                        node: "n2".into(),
                        uuid: "GPU-9f8e7d6c-0000-1111-2222-333344445555".into(),
                        utilization: Some(0.0),
                        mem_used_max_bytes: Some(0.5 * G),
                        mem_total_bytes: Some(80.0 * G),
                    },
                ],
            }),
            notes: vec![
                Note { rule: "gpu_idle".into(), severity: Severity::Warning, message: "1 of the 2 allocated GPUs were idle (under 1% utilisation). Remove them from the request (--gres=gpu:N or --gpus), or make the program use them.".into() },
                Note { rule: "memory_overrequested".into(), severity: Severity::Notice, message: "Peak memory was 14.0 GiB of the 64.0 GiB requested (22%).".into() },
            ],
            dashboard_url: Some("https://grafana.example/d/job?var-jobid=4242".into()),
        }
    }

    #[test]
    fn plain_report() {
        let t = text(&report(), Style { color: false });
        assert!(!t.contains('\x1b'), "{t}");
        for want in [
            "Slurm Job Statistics".to_string(),
            "         Job ID: 4242".to_string(),
            "   User/Account: alice/physics".to_string(),
            "          State: COMPLETED".to_string(),
            "          Nodes: 2 (n[1-2])".to_string(),
            "      CPU Cores: 16".to_string(),
            "     CPU Memory: 64.0 GiB (32.0 GiB per node)".to_string(),
            "           GPUs: 2".to_string(),
            "       Run Time: 01:30:00 of 04:00:00 limit (38%)".to_string(),
            // 8 of 16 cores = 50%: 10 bars of 20.
            format!(
                "  CPU utilization   [{}{}]  50%  (8.0 of 16 cores)",
                "|".repeat(10),
                ".".repeat(10)
            ),
            // 14 of 64 GiB = 21.9%: 4.4 -> 4 bars.
            format!(
                "  CPU memory usage  [{}{}]  22%  (14.0 GiB peak of 64.0 GiB)",
                "|".repeat(4),
                ".".repeat(16)
            ),
            // (0.83 + 0) / 2 = 41.5%: 8.3 -> 8 bars.
            format!(
                "  GPU utilization   [{}{}]  42%  (mean of 2 GPUs)",
                "|".repeat(8),
                ".".repeat(12)
            ),
            "Detailed Utilization".to_string(),
            "  n1         8      7.2      90%       12.0 GiB / 32.0 GiB".to_string(),
            "  n2         8      0.8      10%        2.0 GiB / 32.0 GiB  1 OOM kill(s)".to_string(),
            "  n1    GPU-1a2b3c4d     83%       30.0 GiB / 80.0 GiB".to_string(),
            "  n2    GPU-9f8e7d6c      0%      512.0 MiB / 80.0 GiB".to_string(),
            "  * [warning] 1 of the 2 allocated GPUs were idle".to_string(),
            "  * [notice] Peak memory was 14.0 GiB".to_string(),
            "      Dashboard: https://grafana.example/d/job?var-jobid=4242".to_string(),
        ] {
            assert!(t.contains(&want), "missing {want:?} in\n{t}");
        }
        assert!(!t.contains("summary stored"));
        for l in t.lines() {
            assert!(l.chars().count() <= WIDTH, "too long: {l:?}");
        }
    }

    #[test]
    fn color_report() {
        let t = text(&report(), Style { color: true });
        assert!(t.contains("\x1b[31m  * [warning] 1 of the 2"), "{t}");
        assert!(t.contains("\x1b[33m  * [notice]"), "{t}");
        assert!(t.contains(&format!("{GREEN}COMPLETED{RESET}")));
        // Every colour is reset on the same line.
        for l in t.lines().filter(|l| l.contains('\x1b')) {
            assert!(l.ends_with(RESET) || l.contains(RESET), "{l:?}");
        }
        // Same text once the escapes are removed.
        let plain = text(&report(), Style { color: false });
        let mut stripped = String::new();
        let mut it = t.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for c in it.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                stripped.push(c);
            }
        }
        assert_eq!(stripped, plain);
    }

    #[test]
    fn summary_and_none_sources() {
        let mut r = report();
        r.source = Source::Summary;
        let t = text(&r, Style { color: false });
        assert!(t.contains("from the summary stored at job end"), "{t}");

        let mut r = report();
        r.source = Source::None;
        r.usage = None;
        r.notes.clear();
        r.dashboard_url = None;
        let t = text(&r, Style { color: false });
        assert!(
            t.contains("No metrics found for this job: the node exporter's slurm_job"),
            "{t}"
        );
        assert!(
            !t.contains("Overall Utilization") && !t.contains("Notes") && !t.contains("Dashboard"),
            "{t}"
        );
        for l in t.lines() {
            assert!(l.chars().count() <= WIDTH, "too long: {l:?}");
        }

        r.job.state = "PENDING".into();
        r.job.start_time = None;
        r.job.elapsed_seconds = None;
        let t = text(&r, Style { color: false });
        assert!(
            t.contains("it has not started") || t.contains("has not started yet"),
            "{t}"
        );
        assert!(t.contains("     Start Time: -"), "{t}");
    }

    #[test]
    fn running_and_odd_values() {
        let mut r = report();
        r.job.state = "RUNNING".into();
        r.job.time_limit_seconds = None;
        r.job.mem_requested_bytes = None;
        r.job.exit_code = None;
        let u = r.usage.as_mut().unwrap();
        u.nodes[0].cpu_efficiency = None;
        u.nodes[0].mem_peak_bytes = Some(f64::NAN);
        u.gpus.clear();
        let t = text(&r, Style { color: false });
        assert!(t.contains("State: RUNNING (numbers so far)"), "{t}");
        assert!(t.contains("01:30:00 (no time limit)"), "{t}");
        assert!(t.contains("CPU Memory: unknown or unlimited"), "{t}");
        assert!(!t.contains("GPU utilization"), "{t}");
        let mut r = report();
        r.job.cpus = 0;
        r.job.nodes = 0;
        r.job.elapsed_seconds = Some(f64::INFINITY);
        r.usage.as_mut().unwrap().nodes[0].cpus = 0.0;
        r.usage.as_mut().unwrap().nodes[1].cpus = 0.0;
        let _ = text(&r, Style { color: true });
    }

    #[test]
    fn helpers() {
        assert_eq!(short_uuid("GPU-1a2b3c4d-0000"), "GPU-1a2b3c4d");
        assert_eq!(short_uuid("MIG-abc"), "MIG-abc");
        assert_eq!(short_uuid("0123456789"), "01234567");
        assert_eq!(bar(f64::NAN), format!("[{}]", ".".repeat(BAR)));
        assert_eq!(wrap("a bb ccc", 0, 4, 0), vec!["a bb", "ccc"]);
        assert_eq!(wrap("", 0, 10, 0), vec![""]);
    }
}
