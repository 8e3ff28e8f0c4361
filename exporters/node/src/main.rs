use std::process::ExitCode;

use hpcmon_kit::App;
use hpcmon_node_exporter::cli::{self, Cli, EXPORTER};

fn main() -> ExitCode {
    // glibc gives every thread that allocates a malloc arena of its own (the scrape lane, the
    // async workers, the filesystem worker): each keeps freed memory resident. One arena is
    // enough for a scrape every few seconds and keeps RSS down (10.6 -> 10.0 MiB on the
    // default set, bench/node.sh).
    #[cfg(target_env = "gnu")]
    // SAFETY: called first in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    EXPORTER.main::<Cli>(
        |cli, flags| Ok(cli::config(cli, flags)),
        |_cfg, mut scraper| {
            // netclass keeps device attribute files open between scrapes.
            if let Err(e) = hpcmon_kit::raise_fd_limit(65536) {
                tracing::warn!(error = %e, "cannot raise the open files limit");
            }
            // node's collectors are many and fast (tens of microseconds each): one lane runs
            // them all with one thread hand-off per scrape. Slow ones (filesystem statfs)
            // protect themselves with their own deadlines.
            scraper.lanes(1);
            Ok(App::new(scraper))
        },
    )
}
