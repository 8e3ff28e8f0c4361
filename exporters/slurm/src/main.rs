use std::cell::OnceCell;
use std::process::ExitCode;
use std::sync::Arc;

use hpcmon_kit::registry::Exporter;
use hpcmon_kit::{App, KitArgs};
use hpcmon_slurm_exporter::collector::{self, Config, REGISTRY};
use hpcmon_slurm_exporter::poller::Source;
use hpcmon_slurm_exporter::{poller, sd, META};

/// Command line: the kit's flags plus the poller's, the label switches and service
/// discovery's (the collectors' own flags come from the registry).
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    kit: KitArgs,
    #[command(flatten)]
    poller: poller::Flags,
    #[command(flatten)]
    labels: collector::LabelFlags,
    #[command(flatten)]
    sd: sd::SdFlags,
}

/// The exporter: who it is and its collectors.
const EXPORTER: Exporter<Config> = Exporter {
    meta: META,
    registry: REGISTRY,
    ignored_flags: &[],
    ignored_collectors: &[],
};

fn main() -> ExitCode {
    // /sd/nodes shares the collectors' poller; its flags pass from the settings to the app.
    let sd_flags: OnceCell<sd::SdFlags> = OnceCell::new();
    EXPORTER.main::<Cli>(
        |cli, collector_flags| {
            // Started once the enabled collectors are built and have said what they read.
            let poller = poller::Poller::unstarted(cli.poller.clone());
            let _ = sd_flags.set(cli.sd);
            Ok(Config {
                poller,
                labels: cli.labels,
                collector_flags,
            })
        },
        |cfg, scraper| {
            let sd = sd_flags.get().filter(|sd| sd.enabled);
            // /sd/nodes needs the node list (sinfo) and the cluster name (scontrol show config).
            let sd_sources: &[Source] = match sd {
                Some(_) => &[Source::Sinfo, Source::Config],
                None => &[],
            };
            let poller = cfg.poller.clone();
            poller.start_needed(sd_sources)?;
            let mut app = App::new(scraper);
            if let Some(sd) = sd {
                app.routes = sd::routes(poller.clone(), sd.clone());
                app.links.push((
                    "/sd/nodes".to_string(),
                    "Prometheus service discovery: node exporters (?exporter=gpu, ?exporter=ipmi)"
                        .to_string(),
                ));
            }
            let p = poller.clone();
            app.ready = Some(Arc::new(move || {
                if p.polls() > 0 {
                    Ok(())
                } else {
                    Err("no Slurm snapshot taken yet".to_string())
                }
            }));
            Ok(app)
        },
    )
}
