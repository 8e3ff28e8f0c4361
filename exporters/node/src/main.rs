use std::process::ExitCode;

use hpcmon_kit::{App, KitArgs, Scraper};
use hpcmon_node_exporter::{collector, META};

/// Command line: the kit's flags plus the collectors' settings.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    kit: KitArgs,
    #[command(flatten)]
    config: collector::Config,
}

fn main() -> ExitCode {
    hpcmon_kit::main::<Cli>(META, collector::SPECS, |cli, enabled| {
        let mut scraper = Scraper::new(META.namespace);
        for name in enabled {
            scraper.add(name, collector::build(name, &cli.config)?);
        }
        Ok(App::new(scraper))
    })
}
