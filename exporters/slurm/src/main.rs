use std::process::ExitCode;
use std::sync::Arc;

use hpcmon_kit::{App, KitArgs, Scraper};
use hpcmon_slurm_exporter::{collector, poller, META};

/// Command line: the kit's flags plus the poller's and the collectors' settings.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    kit: KitArgs,
    #[command(flatten)]
    poller: poller::Flags,
    #[command(flatten)]
    labels: collector::LabelFlags,
}

fn main() -> ExitCode {
    hpcmon_kit::main::<Cli>(META, collector::SPECS, |cli, enabled| {
        let sources = collector::sources_for(&enabled);
        let poller = poller::Poller::start(cli.poller.clone(), sources)?;
        let mut scraper = Scraper::new(META.namespace);
        for name in &enabled {
            scraper.add(*name, collector::build(name, &poller, &cli.labels)?);
        }
        let mut app = App::new(scraper);
        let p = poller.clone();
        app.ready = Some(Arc::new(move || {
            if p.polls() > 0 {
                Ok(())
            } else {
                Err("no Slurm snapshot taken yet".to_string())
            }
        }));
        Ok(app)
    })
}
