use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hpcmon_ipmi_exporter::collector::{self, Config, REGISTRY};
use hpcmon_ipmi_exporter::freeipmi::{ensure_private_dir, Runtime, DEFAULT_SDR_CACHE_DIR};
use hpcmon_ipmi_exporter::remote::{self, ConfigHolder, RemoteState};
use hpcmon_ipmi_exporter::room::{self, RoomState};
use hpcmon_ipmi_exporter::META;
use hpcmon_kit::registry::Exporter;
use hpcmon_kit::{App, KitArgs};

/// Whether `/metrics` reads the local BMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LocalMode {
    /// When /dev/ipmi0 (or /dev/ipmi/0, /dev/ipmidev/0) exists.
    Auto,
    /// Always (ipmi_up 0 when there is no BMC).
    On,
    /// Never; /metrics has only the environment sensors.
    Off,
}

/// Command line: the kit's flags plus the exporter's.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    kit: KitArgs,
    /// YAML modules for /ipmi (and `local` for /metrics); reloaded on SIGHUP and POST /-/reload.
    #[arg(long = "config.file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Most FreeIPMI processes (BMC sessions) running at once, over all targets.
    #[arg(long = "ipmi.max-concurrency", default_value_t = 16)]
    max_concurrency: usize,
    /// Directory for the per-target FreeIPMI SDR caches: created 0700 if missing; refused
    /// unless owned by this user and not writable by group or others.
    #[arg(long = "ipmi.sdr-cache-dir", value_name = "DIR", default_value = DEFAULT_SDR_CACHE_DIR)]
    sdr_cache_dir: PathBuf,
    /// Report ipmi_sensor_threshold series (one per readable threshold per sensor); a
    /// module's `sensor_thresholds` overrides this.
    #[arg(long = "ipmi.sensor-thresholds", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    sensor_thresholds: bool,
    /// Directory of the FreeIPMI tools; empty: search PATH.
    #[arg(long = "freeipmi.path", default_value = "/usr/sbin")]
    freeipmi_path: PathBuf,
    /// Read the local BMC (in-band) on /metrics.
    #[arg(long = "ipmi.local", value_enum, default_value = "auto")]
    local: LocalMode,
}

/// The exporter: who it is and the collectors of `/metrics`.
const EXPORTER: Exporter<Config> = Exporter {
    meta: META,
    registry: REGISTRY,
    ignored_flags: &[],
    ignored_collectors: &[],
};

fn main() -> ExitCode {
    EXPORTER.main::<Cli>(
        |cli, collector_flags| {
            let config = Arc::new(ConfigHolder::load(cli.config_file.clone())?);
            ensure_private_dir(&cli.sdr_cache_dir)?;
            let mut rt = Runtime::new(
                cli.max_concurrency,
                cli.sdr_cache_dir.clone(),
                cli.freeipmi_path.clone(),
            );
            rt.sensor_thresholds = cli.sensor_thresholds;
            let local = match cli.local {
                LocalMode::On => true,
                LocalMode::Off => false,
                LocalMode::Auto => collector::local_bmc_present(),
            };
            Ok(Config {
                rt: Arc::new(rt),
                config,
                local,
                max_timeout: cli.kit.scrape_timeout,
                collector_flags,
            })
        },
        |cfg, mut scraper| {
            let Config {
                rt,
                config,
                local,
                max_timeout,
                ..
            } = cfg.clone();
            scraper.up_metric(
                "ipmi_up",
                "'1' if a scrape of the IPMI device was successful, '0' otherwise.",
            );
            if !local {
                tracing::info!("no local IPMI device (or --ipmi.local=off): /metrics serves the environment sensors only");
            }
            remote::spawn_sighup_reloader(config.clone());
            let mut app = App::new(scraper);
            app.routes = remote::routes(Arc::new(RemoteState {
                rt,
                config: config.clone(),
                max_timeout,
            }))
            .merge(room::routes(Arc::new(RoomState {
                config,
                snmp: Default::default(),
                modbus: Default::default(),
                max_timeout,
            })));
            app.links.push((
                "/ipmi?target=127.0.0.1:623&module=default".into(),
                "Remote BMC (multi-target, /ipmi?target=HOST[:PORT]&module=NAME)".into(),
            ));
            app.links.push((
                "/snmp?target=127.0.0.1:161&module=ups_mib&auth=public_v2".into(),
                "UPS, PDU or environment probe over SNMP (multi-target, /snmp?target=HOST[:PORT]&module=NAME&auth=NAME)".into(),
            ));
            app.links.push((
                "/modbus?target=127.0.0.1:502&module=th_transmitter&sub_target=1".into(),
                "Room sensor, power meter or air conditioner over Modbus TCP (multi-target, /modbus?target=HOST[:PORT]&module=NAME&sub_target=UNIT)".into(),
            ));
            Ok(app)
        },
    )
}
