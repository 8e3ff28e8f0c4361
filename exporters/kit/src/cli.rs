//! Flags every exporter shares, and the `--collector.NAME` / `--no-collector.NAME` flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::collector::CollectorSpec;

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `ts=... level=... msg=...`
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The kit's flags, flattened into each exporter's own `clap::Parser`.
#[derive(Debug, Clone, clap::Args)]
pub struct KitArgs {
    /// Addresses to listen on (repeatable), e.g. `127.0.0.1:9100` or `:9100`.
    #[arg(long = "web.listen-address", value_name = "ADDR", action = ArgAction::Append)]
    pub listen_addresses: Vec<String>,

    /// Exporter-toolkit web config (TLS, basic auth); re-read when it changes.
    /// An empty value (`--web.config.file=`, node_exporter's default) means none.
    #[arg(long = "web.config.file", value_name = "FILE", value_parser = parse_path_allow_empty)]
    pub web_config_file: Option<PathBuf>,

    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Maximum number of scrapes served at once; more get 503. 0: no limit.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,

    /// A client must send a request's complete header within this time (and an idle
    /// keep-alive connection its next request), or the connection is closed.
    // Explicit ids (the flag names): the binaries flatten these flags next to their own, and
    // a field name like `max_connections` is taken by the alert bridge's database pool.
    #[arg(id = "web.header-read-timeout", long = "web.header-read-timeout", default_value = "10s", value_parser = parse_duration_arg)]
    pub header_read_timeout: Duration,

    /// Maximum number of open connections; further ones are closed as soon as accepted.
    #[arg(
        id = "web.max-connections",
        long = "web.max-connections",
        default_value_t = 512
    )]
    pub max_connections: usize,

    /// Upper bound on a scrape's deadline; Prometheus' X-Prometheus-Scrape-Timeout-Seconds
    /// header lowers it.
    #[arg(long = "scrape.timeout", default_value = "10s", value_parser = parse_duration_arg)]
    pub scrape_timeout: Duration,

    /// Only log messages at or above this level (debug, info, warn, error).
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,

    /// Leave out the metrics about the exporter process itself (process_*).
    #[arg(
        id = "web.disable-exporter-metrics",
        long = "web.disable-exporter-metrics"
    )]
    pub disable_exporter_metrics: bool,
}

fn parse_path_allow_empty(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

/// Adds one `--collector.NAME` and `--no-collector.NAME` pair per collector, plus
/// `--collector.disable-defaults`.
pub fn with_collector_flags(mut cmd: Command, specs: &[CollectorSpec]) -> Command {
    cmd = cmd.arg(
        Arg::new("collector.disable-defaults")
            .long("collector.disable-defaults")
            .action(ArgAction::SetTrue)
            .help("Disable every collector that is enabled by default")
            .help_heading("Collectors"),
    );
    for s in specs {
        let on = format!("collector.{}", s.name);
        let off = format!("no-collector.{}", s.name);
        cmd = cmd
            .arg(
                Arg::new(on.clone())
                    .long(on.clone())
                    .action(ArgAction::SetTrue)
                    .overrides_with(off.clone())
                    .help(format!(
                        "Enable the {} collector: {} (default: {})",
                        s.name,
                        s.help,
                        if s.default_enabled {
                            "enabled"
                        } else {
                            "disabled"
                        }
                    ))
                    .help_heading("Collectors"),
            )
            .arg(
                Arg::new(off.clone())
                    .long(off)
                    .action(ArgAction::SetTrue)
                    .hide(true)
                    .overrides_with(on),
            );
    }
    cmd
}

/// Adds kingpin's negation `--no-X` (hidden) for every switch `--X` that lacks one, so that
/// command lines written for a Go exporter (`--no-collector.cpu.guest`,
/// `--no-web.disable-exporter-metrics`) parse. The later of the two wins, as in kingpin.
pub fn with_kingpin_negations(mut cmd: Command) -> Command {
    let longs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let switches: Vec<(String, String)> = cmd
        .get_arguments()
        .filter(|a| matches!(a.get_action(), ArgAction::SetTrue))
        .filter_map(|a| Some((a.get_id().to_string(), a.get_long()?.to_owned())))
        .filter(|(_, long)| !long.starts_with("no-") && !longs.contains(&format!("no-{long}")))
        .collect();
    for (id, long) in switches {
        let neg = format!("no-{long}");
        cmd = cmd.mut_arg(&id, |a| a.overrides_with(neg.clone())).arg(
            Arg::new(neg.clone())
                .long(neg)
                .action(ArgAction::SetTrue)
                .hide(true)
                .overrides_with(id),
        );
    }
    cmd
}

/// The collectors enabled by the flags, in spec order.
pub fn enabled_collectors(m: &ArgMatches, specs: &[CollectorSpec]) -> Vec<&'static str> {
    let no_defaults = m.get_flag("collector.disable-defaults");
    specs
        .iter()
        .filter(|s| {
            if m.get_flag(&format!("no-collector.{}", s.name)) {
                false
            } else if m.get_flag(&format!("collector.{}", s.name)) {
                true
            } else {
                s.default_enabled && !no_defaults
            }
        })
        .map(|s| s.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[CollectorSpec] = &[
        CollectorSpec {
            name: "cpu",
            default_enabled: true,
            help: "CPU",
        },
        CollectorSpec {
            name: "mem",
            default_enabled: true,
            help: "Memory",
        },
        CollectorSpec {
            name: "extra",
            default_enabled: false,
            help: "Extra",
        },
    ];

    fn enabled(args: &[&str]) -> Vec<&'static str> {
        let cmd = with_collector_flags(Command::new("t"), SPECS);
        let m = cmd.try_get_matches_from(args).unwrap();
        enabled_collectors(&m, SPECS)
    }

    #[test]
    fn an_empty_web_config_file_means_none() {
        #[derive(clap::Parser)]
        struct A {
            #[command(flatten)]
            kit: KitArgs,
        }
        let a = <A as clap::Parser>::try_parse_from(["t", "--web.config.file="]).unwrap();
        let holder = crate::webconfig::WebConfigHolder::new(a.kit.web_config_file).unwrap();
        assert!(holder.current().tls.is_none());
    }

    #[test]
    fn kingpin_negations_override_in_order() {
        let cmd = with_kingpin_negations(with_collector_flags(Command::new("t"), SPECS));
        let m = cmd
            .clone()
            .try_get_matches_from([
                "t",
                "--collector.disable-defaults",
                "--no-collector.disable-defaults",
            ])
            .unwrap();
        assert_eq!(enabled_collectors(&m, SPECS), vec!["cpu", "mem"]);
        let m = cmd
            .try_get_matches_from(["t", "--no-collector.cpu", "--collector.cpu"])
            .unwrap();
        assert_eq!(enabled_collectors(&m, SPECS), vec!["cpu", "mem"]);
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(enabled(&["t"]), vec!["cpu", "mem"]);
        assert_eq!(
            enabled(&["t", "--no-collector.cpu", "--collector.extra"]),
            vec!["mem", "extra"]
        );
        assert_eq!(
            enabled(&["t", "--collector.disable-defaults", "--collector.mem"]),
            vec!["mem"]
        );
    }
}
