use std::process::ExitCode;

use hpcmon_gpu_exporter::collector::{Config, GpuFlags};
use hpcmon_gpu_exporter::{backend, gpus, options, EXPORTER};
use hpcmon_kit::{App, KitArgs};

/// Command line: the kit's flags plus the exporter's (the collectors' come from the registry).
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    kit: KitArgs,
    #[command(flatten)]
    gpu: GpuFlags,
}

fn main() -> ExitCode {
    // The exporter's async side only serves HTTP (collectors run on blocking threads and the
    // GPUs' own workers): two runtime workers instead of one per CPU. Set before any thread
    // starts; an operator's TOKIO_WORKER_THREADS wins.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        std::env::set_var("TOKIO_WORKER_THREADS", "2");
    }
    EXPORTER.main::<Cli>(
        |cli, collector_flags| {
            // One GPU set for every collector.
            let set = gpus::GpuSet::new(backend(&cli.gpu), options(&cli.gpu, &collector_flags));
            // Try once before serving so the first scrape already sees the GPUs; the
            // background thread keeps retrying (and re-initialises after driver reloads).
            if let Err(e) = set.init_now() {
                tracing::warn!(reason = e.reason(), error = %e, "NVML not available yet; serving gpu_nvml_up 0 and retrying in the background");
            }
            set.start();
            Ok(Config {
                gpus: set,
                collector_flags,
            })
        },
        |_cfg, scraper| Ok(App::new(scraper)),
    )
}
