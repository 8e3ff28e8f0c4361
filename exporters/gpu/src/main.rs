use std::process::ExitCode;

use hpcmon_gpu_exporter::{backend, collector, gpus, options, scraper, META};
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
    // The exporter's async side only serves HTTP (collectors run on blocking threads and the
    // GPUs' own workers): two runtime workers instead of one per CPU. Set before any thread
    // starts; an operator's TOKIO_WORKER_THREADS wins.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        std::env::set_var("TOKIO_WORKER_THREADS", "2");
    }
    hpcmon_kit::main::<Cli>(META, collector::SPECS, |cli, enabled| {
        let set = gpus::GpuSet::new(backend(&cli.config), options(&cli.config, &enabled));
        // Try once before serving so the first scrape already sees the GPUs; the background
        // thread keeps retrying (and re-initialises after driver reloads).
        if let Err(e) = set.init_now() {
            tracing::warn!(reason = e.reason(), error = %e, "NVML not available yet; serving gpu_nvml_up 0 and retrying in the background");
        }
        set.start();
        Ok(App::new(scraper(&enabled, &cli.config, &set)?))
    })
}
