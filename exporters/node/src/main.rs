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
        // node's collectors are many and fast (tens of microseconds each): a few lanes
        // cost far fewer thread hand-offs per scrape than a thread per collector. Slow
        // ones (filesystem statfs) protect themselves with their own deadlines.
        let lanes = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        scraper.lanes(lanes);
        for name in enabled {
            scraper.add(name, collector::build(name, &cli.config)?);
        }
        Ok(App::new(scraper))
    })
}
