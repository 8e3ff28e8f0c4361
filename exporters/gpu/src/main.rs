use std::process::ExitCode;

use hpcmon_gpu_exporter::{backend, collector, gpus, scraper, META};
use hpcmon_kit::{App, KitArgs};

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
        let set = gpus::GpuSet::new(backend(&cli.config), gpus::Options::default());
        // Try once before serving so the first scrape already sees the GPUs; the background
        // thread keeps retrying (and re-initialises after driver reloads).
        if let Err(e) = set.init_now() {
            tracing::warn!(reason = e.reason(), error = %e, "NVML not available yet; serving gpu_nvml_up 0 and retrying in the background");
        }
        set.start();
        Ok(App::new(scraper(&enabled, &cli.config, &set)?))
    })
}
