//! The command line and HTTP surface as a node_exporter 1.5 user meets them, checked against
//! Debian's `prometheus-node-exporter` itself (`scripts/install-deps.sh prom`):
//!
//! - every flag its `--help` lists (plus its hidden and deprecated flags, and kingpin's
//!   `--no-` negation of every switch) is accepted by our command line;
//! - a flag we accept without acting on it logs exactly one warning, and the README lists
//!   exactly those flags;
//! - `collect[]` naming an unknown or a disabled collector is refused with 400 as
//!   node_exporter refuses it, and a valid filter runs only the named collectors;
//! - `--web.disable-exporter-metrics` drops the `process_*` families on both;
//! - `--collector.filesystem.mount-timeout` and `--web.max-requests=0` take effect.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use hpcmon_e2e::{free_port, require_program, Daemon};
use hpcmon_node_exporter::cli::command;
use hpcmon_node_exporter::collector::{filesystem, Config};

const OURS: &str = env!("CARGO_BIN_EXE_hpcmon-node-exporter");
const THEIRS: &str = "prometheus-node-exporter";
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// Flags node_exporter 1.5 accepts but hides from `--help` (deprecated names and test knobs),
/// with a value to pass, from its source (`kingpin.Flag(..).Hidden()`).
const HIDDEN: &[(&str, Option<&str>)] = &[
    ("collector.diskstats.ignored-devices", Some("^ram\\d+$")),
    (
        "collector.filesystem.ignored-mount-points",
        Some("^/proc($|/)"),
    ),
    ("collector.filesystem.ignored-fs-types", Some("^proc$")),
    ("collector.filesystem.mount-timeout", Some("2s")),
    ("collector.netdev.device-whitelist", Some("^eth0$")),
    ("collector.netdev.device-blacklist", Some("^lo$")),
    ("collector.systemd.unit-whitelist", Some(".+")),
    ("collector.systemd.unit-blacklist", Some(".+\\.scope")),
    ("collector.systemd.private", None),
];

/// One flag of node_exporter's `--help`: its long name and, for a flag with a value, a
/// value to pass (its default, or an example for its kind when it has none).
#[derive(Debug)]
struct HelpFlag {
    long: String,
    value: Option<String>,
}

/// Undoes Go's `%q` quoting of a default in kingpin's help (`"^(a|b)\\d+$"` → `^(a|b)\d+$`).
fn unquote(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    v.replace("\\\\", "\\").replace("\\\"", "\"")
}

fn their_flags() -> Vec<HelpFlag> {
    require_program(THEIRS, "prom");
    let out = Command::new(THEIRS)
        .arg("--help")
        .output()
        .expect("run --help");
    let help =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut flags = Vec::new();
    for line in help.lines() {
        // A flag starts in the flag column; deeper lines continue a description.
        let Some(rest) = line
            .strip_prefix("      --")
            .or_else(|| line.strip_prefix("  -h, --"))
        else {
            continue;
        };
        // `--name=VALUE ...  help` or `--name  help`: the flag ends at two spaces.
        let spec = rest.split("  ").next().unwrap_or(rest).trim_end();
        let spec = spec.strip_suffix(" ...").unwrap_or(spec);
        let (long, value) = match spec.split_once('=') {
            None => (spec.to_string(), None),
            Some((long, v)) if v.starts_with('"') => (long.to_string(), Some(unquote(v))),
            Some((long, v))
                if v.chars()
                    .all(|c| c.is_ascii_uppercase() || "._-".contains(c)) =>
            {
                // A placeholder (no default): a value of the flag's kind.
                (long.to_string(), Some("^x$".to_string()))
            }
            Some((long, v)) => (long.to_string(), Some(v.to_string())),
        };
        flags.push(HelpFlag { long, value });
    }
    flags
}

fn parse(args: &[String]) -> Result<clap::ArgMatches, clap::Error> {
    command().try_get_matches_from(
        std::iter::once("hpcmon-node-exporter".to_string()).chain(args.iter().cloned()),
    )
}

#[test]
fn every_node_exporter_flag_is_accepted() {
    let flags = their_flags();
    assert!(
        flags.len() > 100
            && flags.iter().any(|f| f.long == "collector.zfs")
            && flags
                .iter()
                .any(|f| f.long == "collector.netstat.fields" && f.value.is_some()),
        "could not read node_exporter's flags from --help: {flags:?}"
    );
    let mut refused = Vec::new();
    let mut check = |args: Vec<String>| {
        if let Err(e) = parse(&args) {
            if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                refused.push(format!(
                    "{args:?}: {}",
                    e.to_string().lines().next().unwrap_or("")
                ));
            }
        }
    };
    let mut switches = 0;
    for f in &flags {
        match &f.value {
            Some(v) => check(vec![format!("--{}={v}", f.long)]),
            None => {
                switches += 1;
                check(vec![format!("--{}", f.long)]);
                if f.long != "help" && f.long != "version" {
                    // kingpin accepts --no-X for every switch X.
                    check(vec![format!("--no-{}", f.long)]);
                    check(vec![format!("--{}", f.long), format!("--no-{}", f.long)]);
                }
            }
        }
    }
    for (long, value) in HIDDEN {
        match value {
            Some(v) => check(vec![format!("--{long}={v}")]),
            None => check(vec![format!("--{long}"), format!("--no-{long}")]),
        }
    }
    // Separate-argument form, as unit files often write it.
    check(vec![
        "--collector.textfile.directory".into(),
        "/var/lib/node".into(),
    ]);
    check(vec![
        "--web.listen-address".into(),
        ":9100".into(),
        "--web.listen-address=:9101".into(),
    ]);
    assert!(switches > 70, "few switches parsed from --help: {switches}");
    assert!(
        refused.is_empty(),
        "flags node_exporter accepts but we refuse:\n{}",
        refused.join("\n")
    );
    // Typos still fail loudly.
    let e = parse(&["--collector.cpu.giest".to_string()]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownArgument);
}

#[test]
fn deprecated_names_set_the_same_settings() {
    let cfg = Config::from_args(&[
        "--collector.filesystem.ignored-mount-points=^/x$",
        "--collector.filesystem.ignored-fs-types=^y$",
        "--collector.filesystem.mount-timeout=1500ms",
    ])
    .unwrap();
    let f = cfg.flags::<filesystem::Flags>().unwrap();
    assert_eq!(f.mount_points_exclude, "^/x$");
    assert_eq!(f.fs_types_exclude, "^y$");
    assert_eq!(f.mount_timeout, Duration::from_millis(1500));
    let e = Config::from_args(&["--collector.filesystem.mount-timeout=soon"]).unwrap_err();
    assert!(format!("{e:#}").contains("mount-timeout"), "{e:#}");
}

#[test]
fn the_readme_lists_exactly_the_ignored_flags() {
    let readme = std::fs::read_to_string(README).unwrap();
    let section = readme
        .split("<!-- ignored-flags:begin -->")
        .nth(1)
        .and_then(|s| s.split("<!-- ignored-flags:end -->").next())
        .expect("README has an ignored-flags section");
    let listed: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.strip_prefix("--"))
        .map(|s| s.split('=').next().unwrap_or(s).to_string())
        .collect();
    let ignored: BTreeSet<String> = hpcmon_kit::registry::ignored_in_command(&command())
        .into_iter()
        .collect();
    assert!(!ignored.is_empty());
    let missing: Vec<_> = ignored.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&ignored).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README ignored-flags section out of date: missing {missing:?}, no longer ignored {stale:?}"
    );
}

#[test]
fn the_readme_lists_every_collector() {
    let readme = std::fs::read_to_string(README).unwrap();
    let missing: Vec<&str> = hpcmon_node_exporter::collector::REGISTRY
        .iter()
        .map(|r| r.name)
        .filter(|n| !readme.lines().any(|l| l.starts_with(&format!("| {n} "))))
        .collect();
    assert!(
        missing.is_empty(),
        "collectors without a README row: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Running both exporters.

/// `GET path`: (status, body). HTTP/1.0, so the body is not chunked.
fn get(port: u16, path: &str) -> (u16, String) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}

/// Starts `bin` on a free loopback port and waits until it answers on `/`.
fn start(bin: &str, name: &str, args: &[&str], dir: &Path) -> (Daemon, u16) {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args);
    let mut d = Daemon::spawn_logged(name, cmd, &dir.join(format!("{name}.log")));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_err()
    {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "{name} not listening after 20s\n{}",
            d.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (d, port)
}

fn families(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn collectors_reported(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| l.starts_with("node_scrape_collector_success{"))
        .filter_map(|l| l.split("collector=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn collect_filter_and_exporter_metrics_like_node_exporter() {
    require_program(THEIRS, "prom");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--collector.meminfo",
    ];
    let (_ours, op) = start(OURS, "ours", &args, dir.path());
    let (_theirs, tp) = start(THEIRS, "theirs", &args, dir.path());

    for (query, want_status, want_body) in [
        ("collect[]=nonesuch", 400, "Couldn't create filtered metrics handler: couldn't create collector: missing collector: nonesuch"),
        ("collect[]=cpu", 400, "Couldn't create filtered metrics handler: couldn't create collector: disabled collector: cpu"),
        ("collect[]=loadavg&collect[]=nonesuch", 400, "Couldn't create filtered metrics handler: couldn't create collector: missing collector: nonesuch"),
    ] {
        for (who, port) in [("ours", op), ("node_exporter", tp)] {
            let (status, body) = get(port, &format!("/metrics?{query}"));
            assert_eq!(status, want_status, "{who} {query}: {body}");
            assert_eq!(body.trim(), want_body, "{who} {query}");
        }
    }
    for (who, port) in [("ours", op), ("node_exporter", tp)] {
        let (status, body) = get(port, "/metrics?collect[]=loadavg");
        assert_eq!(status, 200, "{who}: {body}");
        assert_eq!(
            collectors_reported(&body),
            BTreeSet::from(["loadavg".to_string()]),
            "{who}"
        );
        assert!(body.contains("\nnode_load1 "), "{who}");
        assert!(!body.contains("node_memory_MemTotal_bytes"), "{who}");
        // Percent-encoded brackets and names, as clients send them.
        let (status, body) = get(port, "/metrics?collect%5B%5D=mem%69nfo");
        assert_eq!(status, 200, "{who}: {body}");
        assert_eq!(
            collectors_reported(&body),
            BTreeSet::from(["meminfo".to_string()]),
            "{who}"
        );
        // The exporter's own process metrics are there by default.
        let (_, body) = get(port, "/metrics");
        assert!(
            families(&body).contains("process_cpu_seconds_total"),
            "{who}"
        );
    }

    let args = [
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--web.disable-exporter-metrics",
    ];
    let (_ours, op) = start(OURS, "ours-noexp", &args, dir.path());
    let (_theirs, tp) = start(THEIRS, "theirs-noexp", &args, dir.path());
    for (who, port) in [("ours", op), ("node_exporter", tp)] {
        let (status, body) = get(port, "/metrics");
        assert_eq!(status, 200, "{who}");
        let f = families(&body);
        assert!(
            !f.iter()
                .any(|n| n.starts_with("process_") || n.starts_with("go_")),
            "{who}: {f:?}"
        );
        assert!(
            f.contains("node_load1") && f.contains("node_scrape_collector_success"),
            "{who}: {f:?}"
        );
    }
}

#[test]
fn ignored_flags_warn_once_each_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ours, port) = start(
        OURS,
        "ours-ignored",
        &[
            "--collector.disable-defaults",
            "--collector.loadavg",
            "--runtime.gomaxprocs=2",
            "--collector.wifi",
            "--no-collector.drbd",
            "--collector.ntp.server=127.0.0.1",
            "--web.max-requests=0",
        ],
        dir.path(),
    );
    for _ in 0..3 {
        let (status, body) = get(port, "/metrics");
        assert_eq!(status, 200);
        assert_eq!(
            collectors_reported(&body),
            BTreeSet::from(["loadavg".to_string()])
        );
    }
    ours.assert_running();
    let log = ours.log();
    for flag in [
        "--runtime.gomaxprocs",
        "--collector.wifi",
        "--no-collector.drbd",
        "--collector.ntp.server",
    ] {
        let n = log
            .lines()
            .filter(|l| l.contains("ignored") && l.contains(&format!("flag={flag} ")))
            .count();
        assert_eq!(n, 1, "one warning for {flag}:\n{log}");
    }
    let warnings = log.lines().filter(|l| l.contains("level=warn")).count();
    assert_eq!(warnings, 4, "{log}");
}
