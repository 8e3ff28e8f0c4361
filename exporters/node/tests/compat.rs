//! Compatibility against Debian's `prometheus-node-exporter` (node_exporter 1.5), measured on
//! this machine rather than claimed.
//!
//! For every collector that both exporters have (our [`SPECS`] ∩ the collectors named in
//! node_exporter's `--help`), the test starts both exporters on 127.0.0.1 with only that
//! collector enabled, scrapes both, and compares metric family names, types and label names
//! of the families the collector adds (over a baseline run with no collectors, whose
//! families — build info, process and Go runtime metrics — are compared once as the
//! `(exporter)` group). Collectors are compared only where they succeed on both sides
//! (`node_scrape_collector_success 1`); a collector that fails on ours while it succeeds on
//! theirs is itself a difference (`collector:NAME`).
//!
//! Every difference must be listed in `compat-allowlist.txt` (with a reason), and every entry
//! there must still be needed, so the list stays honest. Finally both exporters run with all
//! shared collectors together and `promtool check metrics` must report nothing on our output
//! that it does not also report on node_exporter's.
//!
//! Needs `prometheus-node-exporter` and `promtool` (`scripts/install-deps.sh prom`).

mod compat_expfmt;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use compat_expfmt::{Exposition, Family};
use hpcmon_e2e::free_port;
use hpcmon_node_exporter::collector::REGISTRY as SPECS;

const OURS: &str = env!("CARGO_BIN_EXE_hpcmon-node-exporter");
const THEIRS: &str = "prometheus-node-exporter";
const ALLOWLIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/compat-allowlist.txt");
/// The pseudo-collector that owns the families present with no collector enabled.
const EXPORTER: &str = "(exporter)";

// ---------------------------------------------------------------------------------------
// Processes and HTTP (std only).

/// A child process killed (and reaped) on drop, with its output in a log file.
struct Proc {
    child: Child,
    port: u16,
    log: PathBuf,
    what: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }
}

/// Starts `bin` on a free loopback port with `args`; `Err` (with its log) if it exits or
/// does not listen within 10 s.
fn start(bin: &str, args: &[String], dir: &Path, what: &str) -> Result<Proc, String> {
    let port = free_port();
    let log = dir.join(format!("{}.log", what.replace(['/', ' ', '(', ')'], "_")));
    let logf = File::create(&log).expect("create log");
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup log"))
        .stderr(logf)
        .spawn()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    let mut p = Proc {
        child,
        port,
        log,
        what: what.to_string(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = p.child.try_wait() {
            return Err(format!("{what} exited ({status}):\n{}", p.log_tail()));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(p);
        }
        if Instant::now() > deadline {
            return Err(format!("{what} not listening after 10s:\n{}", p.log_tail()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `GET path` over HTTP/1.0; returns the body of a 200 response.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = Duration::from_secs(20);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let raw = String::from_utf8(raw).map_err(|e| format!("response is not UTF-8: {e}"))?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP {status}: {}", &body[..body.len().min(300)]));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("bad chunk")?;
        let n = usize::from_str_radix(size.trim(), 16).map_err(|_| "bad chunk size")?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..n).ok_or("short chunk")?);
        body = rest.get(n + 2..).ok_or("short chunk")?;
    }
}

/// Runs a command with stdin from `input`, killing it after `timeout`; (exit code, stdout+stderr).
fn run_with_timeout(cmd: &mut Command, input: &Path, timeout: Duration) -> (i32, String) {
    let out = tempfile::NamedTempFile::new().expect("tempfile");
    let mut child = cmd
        .stdin(File::open(input).expect("open input"))
        .stdout(out.reopen().expect("reopen"))
        .stderr(out.reopen().expect("reopen"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (install: scripts/install-deps.sh prom)")
        });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    (status.code().unwrap_or(-1), text)
}

// ---------------------------------------------------------------------------------------
// Scrapes.

/// One exporter's scrape with a given set of collectors.
enum Scrape {
    /// The exporter did not start or the scrape failed (the error says why).
    Failed(String),
    Ok(Exposition, String),
}

impl Scrape {
    fn success(&self, collector: &str) -> Option<bool> {
        match self {
            Scrape::Failed(_) => Some(false),
            Scrape::Ok(e, _) => e
                .value("node_scrape_collector_success", &[("collector", collector)])
                .map(|v| v == 1.0),
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    textfile_dir: PathBuf,
    /// Whether our binary has `--collector.textfile.directory` (a fixed interface; the test
    /// fails without it but still compares the rest).
    ours_has_textfile_flag: bool,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let textfile_dir = dir.path().join("textfile");
        std::fs::create_dir(&textfile_dir).unwrap();
        std::fs::write(
            textfile_dir.join("compat.prom"),
            "# HELP compat_test_info A textfile metric for the compatibility test.\n\
             # TYPE compat_test_info gauge\ncompat_test_info{kind=\"textfile\"} 1\n",
        )
        .unwrap();
        let help = Command::new(OURS)
            .arg("--help")
            .output()
            .expect("run ours --help");
        let ours_has_textfile_flag = String::from_utf8_lossy(&help.stdout)
            .lines()
            .any(|l| l.trim_start().starts_with("--collector.textfile.directory"));
        Setup {
            dir,
            textfile_dir,
            ours_has_textfile_flag,
        }
    }

    fn args(&self, collectors: &[&str], ours: bool) -> Vec<String> {
        let mut args = vec!["--collector.disable-defaults".to_string()];
        if !ours || self.ours_has_textfile_flag {
            args.push(format!(
                "--collector.textfile.directory={}",
                self.textfile_dir.display()
            ));
        }
        args.extend(collectors.iter().map(|c| format!("--collector.{c}")));
        args
    }

    /// Starts both exporters with `collectors`, scrapes each once, stops them.
    fn scrape_both(&self, collectors: &[&str], tag: &str) -> (Scrape, Scrape) {
        let ours = start(
            OURS,
            &self.args(collectors, true),
            self.dir.path(),
            &format!("ours {tag}"),
        );
        let theirs = start(
            THEIRS,
            &self.args(collectors, false),
            self.dir.path(),
            &format!("theirs {tag}"),
        );
        let scrape = |p: Result<Proc, String>| match p {
            Err(e) => Scrape::Failed(e),
            Ok(p) => match http_get(p.port, "/metrics") {
                Err(e) => {
                    Scrape::Failed(format!("{}: scrape failed: {e}\n{}", p.what, p.log_tail()))
                }
                Ok(body) => match compat_expfmt::parse(&body) {
                    Ok(e) => Scrape::Ok(e, body),
                    Err(e) => Scrape::Failed(format!("{}: unparsable output: {e}", p.what)),
                },
            },
        };
        let theirs = match theirs {
            Err(e) => panic!(
                "Debian's node_exporter does not start ({e}); install it with \
                 scripts/install-deps.sh prom"
            ),
            ok => scrape(ok),
        };
        (scrape(ours), theirs)
    }
}

// ---------------------------------------------------------------------------------------
// Differences and the allow-list.

/// One difference; `key` is what an allow-list entry names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Diff {
    key: String,
    what: String,
}

/// Differences between two sets of families.
fn diff_families(ours: &BTreeMap<String, Family>, theirs: &BTreeMap<String, Family>) -> Vec<Diff> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for name in names {
        match (ours.get(name), theirs.get(name)) {
            (None, Some(t)) => out.push(Diff {
                key: name.clone(),
                what: format!("missing in ours ({} {:?})", t.typ, t.labels),
            }),
            (Some(o), None) => out.push(Diff {
                key: name.clone(),
                what: format!("only in ours ({} {:?})", o.typ, o.labels),
            }),
            (Some(o), Some(t)) => {
                if o.typ != t.typ {
                    out.push(Diff {
                        key: format!("{name}:type"),
                        what: format!("type: ours {}, theirs {}", o.typ, t.typ),
                    });
                }
                for l in t.labels.difference(&o.labels) {
                    out.push(Diff {
                        key: format!("{name}{{{l}}}"),
                        what: "label missing in ours".into(),
                    });
                }
                for l in o.labels.difference(&t.labels) {
                    out.push(Diff {
                        key: format!("{name}{{{l}}}"),
                        what: "label only in ours".into(),
                    });
                }
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

struct Entry {
    line: usize,
    pattern: String,
    reason: String,
}

impl Entry {
    /// `*` at the end of the pattern's family part matches any suffix; the rest is exact
    /// (`collector:NAME` entries are exact).
    fn matches(&self, key: &str) -> bool {
        if self.pattern.starts_with("collector:") || key.starts_with("collector:") {
            return self.pattern == key;
        }
        let split = |s: &str| -> (String, String) {
            match s.find(['{', ':']) {
                Some(i) => (s[..i].to_string(), s[i..].to_string()),
                None => (s.to_string(), String::new()),
            }
        };
        let (pf, prest) = split(&self.pattern);
        let (kf, krest) = split(key);
        let family_ok = match pf.strip_suffix('*') {
            Some(prefix) => kf.starts_with(prefix),
            None => pf == kf,
        };
        family_ok && prest == krest
    }
}

fn read_allowlist() -> Vec<Entry> {
    let text = std::fs::read_to_string(ALLOWLIST)
        .unwrap_or_else(|e| panic!("cannot read {ALLOWLIST}: {e}"));
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (pattern, reason) = line
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("{ALLOWLIST}:{}: entry without a reason", i + 1));
        assert!(
            !reason.trim().is_empty(),
            "{ALLOWLIST}:{}: entry without a reason",
            i + 1
        );
        entries.push(Entry {
            line: i + 1,
            pattern: pattern.to_string(),
            reason: reason.trim().to_string(),
        });
    }
    entries
}

/// The collectors Debian's node_exporter has, from its `--help`.
fn their_collectors() -> BTreeSet<String> {
    let out = Command::new(THEIRS)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {THEIRS}: {e}; install it with scripts/install-deps.sh prom")
        });
    let help =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let re = regex::Regex::new(r"Enable the ([a-z0-9_]+) collector").unwrap();
    re.captures_iter(&help).map(|c| c[1].to_string()).collect()
}

/// Lint problems `promtool check metrics` reports on an exposition, one line each.
fn promtool_problems(dir: &Path, name: &str, body: &str) -> BTreeSet<String> {
    let file = dir.join(name);
    std::fs::write(&file, body).unwrap();
    let (code, out) = run_with_timeout(
        Command::new("promtool").args(["check", "metrics"]),
        &file,
        Duration::from_secs(60),
    );
    // 0: clean, 3: lint problems; anything else (1: unparsable) is a failure of its own.
    assert!(
        code == 0 || code == 3,
        "promtool check metrics failed on {name} (rc {code}):\n{out}"
    );
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------------------

#[test]
fn compatible_with_debian_node_exporter() {
    let theirs_have = their_collectors();
    assert!(
        theirs_have.contains("cpu") && theirs_have.contains("meminfo"),
        "could not read node_exporter's collector list from --help: {theirs_have:?}"
    );
    let shared: Vec<&str> = SPECS
        .iter()
        .map(|s| s.name)
        .filter(|n| theirs_have.contains(*n))
        .collect();
    let ours_only: Vec<&str> = SPECS
        .iter()
        .map(|s| s.name)
        .filter(|n| !theirs_have.contains(*n))
        .collect();
    println!("shared collectors ({}): {}", shared.len(), shared.join(" "));
    println!("ours only (not compared): {}", ours_only.join(" "));

    let setup = Setup::new();
    // Differences by key, with the collectors they were seen in.
    let mut diffs: BTreeMap<Diff, Vec<String>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    if !setup.ours_has_textfile_flag {
        failures.push("ours has no --collector.textfile.directory flag".into());
    }

    // Baseline: no collectors; its families belong to the exporter itself.
    let (ours_base, theirs_base) = setup.scrape_both(&[], "baseline");
    let (ours_base, theirs_base) = match (ours_base, theirs_base) {
        (Scrape::Ok(o, _), Scrape::Ok(t, _)) => (o, t),
        (Scrape::Failed(e), _) | (_, Scrape::Failed(e)) => panic!("baseline scrape failed: {e}"),
    };
    for d in diff_families(&ours_base.families, &theirs_base.families) {
        diffs.entry(d).or_default().push(EXPORTER.into());
    }

    let mut compared = Vec::new();
    let mut status_lines = Vec::new();
    let mut ours_ok = Vec::new();
    for &c in &shared {
        let (ours, theirs) = setup.scrape_both(&[c], c);
        let (o_ok, t_ok) = (ours.success(c), theirs.success(c));
        if o_ok == Some(true) {
            ours_ok.push(c);
        }
        match (&ours, o_ok, t_ok) {
            (_, _, None) => {
                panic!("node_exporter reports no node_scrape_collector_success for {c}")
            }
            (Scrape::Ok(o, _), Some(true), Some(true)) => {
                compared.push(c);
                let Scrape::Ok(t, _) = &theirs else {
                    unreachable!()
                };
                let own = |e: &Exposition, base: &Exposition| -> BTreeMap<String, Family> {
                    e.families
                        .iter()
                        .filter(|(n, _)| !base.families.contains_key(*n))
                        .map(|(n, f)| (n.clone(), f.clone()))
                        .collect()
                };
                let (of, tf) = (own(o, &ours_base), own(t, &theirs_base));
                let n_diffs = diff_families(&of, &tf);
                status_lines.push(format!(
                    "  {c:<14} compared: {} families ours, {} theirs, {} differences",
                    of.len(),
                    tf.len(),
                    n_diffs.len()
                ));
                for d in n_diffs {
                    diffs.entry(d).or_default().push(c.into());
                }
            }
            (_, _, Some(true)) => {
                let why = match &ours {
                    Scrape::Failed(e) => e.lines().last().unwrap_or("").to_string(),
                    Scrape::Ok(_, _) if o_ok.is_none() => "no node_scrape_collector_success".into(),
                    Scrape::Ok(_, _) => "node_scrape_collector_success 0".into(),
                };
                status_lines.push(format!(
                    "  {c:<14} FAILS on ours, succeeds on theirs: {why}"
                ));
                diffs
                    .entry(Diff {
                        key: format!("collector:{c}"),
                        what: format!("fails on ours ({why}) while it succeeds on node_exporter"),
                    })
                    .or_default()
                    .push(c.into());
            }
            (_, Some(true), Some(false)) => status_lines.push(format!(
                "  {c:<14} not compared: succeeds on ours, fails on theirs (no such hardware here?)"
            )),
            (_, _, Some(false)) => status_lines.push(format!(
                "  {c:<14} not compared: fails on theirs (no such hardware here?) and on ours ({})",
                match &ours {
                    Scrape::Failed(e) => e.lines().last().unwrap_or(""),
                    Scrape::Ok(_, _) => "node_scrape_collector_success 0",
                }
            )),
        }
    }
    println!("per collector:\n{}", status_lines.join("\n"));

    // The allow-list.
    let entries = read_allowlist();
    let mut used: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
    let mut unexplained = Vec::new();
    for (d, seen) in &diffs {
        match entries.iter().position(|e| e.matches(&d.key)) {
            Some(i) => used[i].push(d.key.clone()),
            None => unexplained.push(format!("{:<50} {} [in {}]", d.key, d.what, seen.join(","))),
        }
    }
    println!("allowed differences, by allow-list entry:");
    for (e, keys) in entries.iter().zip(&used).filter(|(_, k)| !k.is_empty()) {
        println!("  {} ({}): {}", e.pattern, e.reason, keys.join(" "));
    }
    if !unexplained.is_empty() {
        failures.push(format!(
            "{} differences not in {ALLOWLIST}:\n  {}",
            unexplained.len(),
            unexplained.join("\n  ")
        ));
    }
    let stale: Vec<String> = entries
        .iter()
        .zip(&used)
        .filter(|(_, u)| u.is_empty())
        .map(|(e, _)| format!("line {}: {} ({})", e.line, e.pattern, e.reason))
        .collect();
    if !stale.is_empty() {
        failures.push(format!(
            "{} allow-list entries no longer needed (remove them from {ALLOWLIST}):\n  {}",
            stale.len(),
            stale.join("\n  ")
        ));
    }

    // promtool on both outputs with every shared collector ours can run.
    let (ours_all, theirs_all) = setup.scrape_both(&ours_ok, "all");
    match (ours_all, theirs_all) {
        (Scrape::Ok(_, ob), Scrape::Ok(_, tb)) => {
            let op = promtool_problems(setup.dir.path(), "ours.prom", &ob);
            let tp = promtool_problems(setup.dir.path(), "theirs.prom", &tb);
            let extra: Vec<&String> = op.difference(&tp).collect();
            println!(
                "promtool check metrics: {} problems on ours, {} on theirs, {} only on ours",
                op.len(),
                tp.len(),
                extra.len()
            );
            if !extra.is_empty() {
                failures.push(format!(
                    "promtool check metrics reports on ours but not on node_exporter:\n  {}",
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("\n  ")
                ));
            }
        }
        (Scrape::Failed(e), _) | (_, Scrape::Failed(e)) => {
            failures.push(format!("scrape with all shared collectors failed: {e}"))
        }
    }

    println!(
        "compared {} of {} shared collectors: {}",
        compared.len(),
        shared.len(),
        compared.join(" ")
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn allowlist_entries_match_exactly_what_they_name() {
    let e = |p: &str| Entry {
        line: 1,
        pattern: p.into(),
        reason: "r".into(),
    };
    assert!(e("go_*").matches("go_threads"));
    assert!(
        !e("go_*").matches("go_threads{x}"),
        "a family entry is not a label entry"
    );
    assert!(!e("go_*").matches("node_go"));
    assert!(e("a_b{c}").matches("a_b{c}"));
    assert!(!e("a_b{c}").matches("a_b{d}"));
    assert!(!e("a_b{c}").matches("a_b"));
    assert!(!e("a_b").matches("a_b{c}"));
    assert!(e("a_*{c}").matches("a_b{c}"));
    assert!(e("a_b:type").matches("a_b:type"));
    assert!(!e("a_b").matches("a_b:type"));
    assert!(e("collector:cpu").matches("collector:cpu"));
    assert!(!e("collector:cpu").matches("collector:cpufreq"));
    assert!(
        !e("collector:*").matches("collector:cpu"),
        "no wildcard for collectors"
    );
}

#[test]
fn family_differences_are_keyed_for_the_allowlist() {
    let f = |typ: &str, labels: &[&str]| Family {
        typ: typ.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        samples: 1,
    };
    let ours = BTreeMap::from([
        ("same".to_string(), f("gauge", &["a"])),
        ("typ".to_string(), f("gauge", &[])),
        ("lab".to_string(), f("counter", &["a", "extra"])),
        ("ours_only".to_string(), f("gauge", &[])),
    ]);
    let theirs = BTreeMap::from([
        ("same".to_string(), f("gauge", &["a"])),
        ("typ".to_string(), f("counter", &[])),
        ("lab".to_string(), f("counter", &["a", "missing"])),
        ("theirs_only".to_string(), f("gauge", &[])),
    ]);
    let keys: Vec<String> = diff_families(&ours, &theirs)
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert_eq!(
        keys,
        [
            "lab{missing}",
            "lab{extra}",
            "ours_only",
            "theirs_only",
            "typ:type"
        ]
    );
}
