//! Fake-backed tests of every collector and failure mode, and the golden outputs in
//! `testdata/` (regenerate with `UPDATE_GOLDEN=1 cargo test -p hpcmon-gpu-exporter`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hpcmon_kit::Collector;

use crate::backend::{GpuError, Process, RawXid, XidEvent};
use crate::collector::testutil::{
    count, fast, render, render_with, set_with, set_with_opts, sort_samples, value, wait_until,
};
use crate::collector::{self, pcie, processes, slurm_job, Config, REGISTRY};
use crate::fake::{FakeBackend, FakeGpu, FakeWorld};
use crate::gpus::GpuSet;

fn all() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name).collect()
}

fn col(name: &str, set: &Arc<GpuSet>) -> Arc<dyn Collector> {
    collector::build(name, &Config::new(set.clone())).unwrap()
}

/// A full scrape of every collector through the kit's registry and scraper, without the
/// (timing) duration series.
fn scrape(cfg: &Config, timeout: Duration) -> String {
    let mut scraper = hpcmon_kit::Scraper::new("gpu");
    hpcmon_kit::registry::build_into(&mut scraper, REGISTRY, &all(), cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut ms, _) = rt.block_on(scraper.scrape(timeout));
    sort_samples(&mut ms);
    hpcmon_kit::metrics::encode_text(&ms)
        .lines()
        .filter(|l| !l.contains("gpu_scrape_collector_duration_seconds"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Compares with `testdata/NAME` (without the ages of background values: they vary, and
/// appear only once the first background read is done).
fn golden(name: &str, actual: &str) {
    let actual: String = actual
        .lines()
        .filter(|l| !l.contains("gpu_cached_values_age_seconds"))
        .map(|l| format!("{l}\n"))
        .collect();
    let actual = actual.as_str();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 to create)", path.display()));
    assert_eq!(
        actual, want,
        "golden {name} differs (UPDATE_GOLDEN=1 to update)"
    );
}

/// A procfs with two GPU processes: pid 4242 in a cgroup v1 Slurm job of uid 0, pid 4243
/// in a cgroup v2 Slurm job whose uid has no passwd entry; and a mapping directory in the
/// three layouts (jobstats `JOBID UID` by index, dcgm-exporter bare id by UUID, key=value
/// by MIG UUID).
struct Fixture {
    _dir: tempfile::TempDir,
    procfs: PathBuf,
    map: PathBuf,
}

const NOBODY_UID: u32 = 4_294_967_000;

fn fixture(world: &FakeWorld) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let procfs = dir.path().join("proc");
    let map = dir.path().join("map");
    std::fs::create_dir_all(procfs.join("4242")).unwrap();
    std::fs::create_dir_all(procfs.join("4243")).unwrap();
    std::fs::create_dir_all(&map).unwrap();
    std::fs::write(
        procfs.join("4242/cgroup"),
        "12:pids:/slurm/uid_0/job_1001/step_0/task_0\n\
         11:memory:/slurm/uid_0/job_1001/step_0/task_0\n\
         1:name=systemd:/system.slice/slurmd.service\n",
    )
    .unwrap();
    std::fs::write(
        procfs.join("4243/cgroup"),
        "0::/system.slice/slurmstepd.scope/job_1002/step_batch/user/task_0\n",
    )
    .unwrap();
    std::fs::write(
        procfs.join("4243/status"),
        format!("Name:\tpython\nUid:\t{NOBODY_UID}\t{NOBODY_UID}\t{NOBODY_UID}\t{NOBODY_UID}\n"),
    )
    .unwrap();
    // jobstats: by index, "JOBID UID" (+ our account column)
    std::fs::write(map.join("0"), "1001 0 physics\n").unwrap();
    // dcgm-exporter: by UUID (or index), bare job ids, one per line
    std::fs::write(map.join(&world.gpus[1].uuid), "1003\n").unwrap();
    // by MIG UUID, key=value
    if let Some(m) = world.gpus[1].mig.first() {
        std::fs::write(map.join(&m.uuid), "jobid=1004 user=alice account=bio\n").unwrap();
    }
    // junk is ignored
    std::fs::write(map.join("README"), "not a job\n").unwrap();
    std::fs::write(map.join("7"), "garbage here\n").unwrap();
    Fixture {
        _dir: dir,
        procfs,
        map,
    }
}

fn two_gpu_world() -> FakeWorld {
    let mut w = FakeWorld::with_gpus(2);
    w.gpus[1] = FakeGpu::h100(1).with_mig();
    w.gpus[1].processes = vec![Process {
        pid: 4243,
        used_memory: None,
    }];
    w.gpus[1].fans = vec![45];
    w
}

#[test]
fn golden_full_output_two_gpus_one_in_mig_mode() {
    let world = two_gpu_world();
    let fx = fixture(&world);
    let mut opts = fast();
    opts.cache.refresh_interval = Duration::from_millis(100);
    let (_b, set) = set_with_opts(world.clone(), opts);
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
    });
    // GPM needs two samples per GPU (and per MIG instance).
    wait_until("GPM readings", Duration::from_secs(5), || {
        set.snapshot().gpus.iter().all(|g| {
            g.dev
                .as_ref()
                .and_then(|d| d.gpm().ok())
                .is_some_and(|r| r.len() == if g.index == 1 { 3 } else { 1 })
        })
    });
    // XIDs recorded at fixed times (the event thread is tested below).
    set.xids.record_at(
        XidEvent {
            uuid: world.gpus[0].uuid.clone(),
            xid: Some(13),
        },
        1_700_000_000.0,
    );
    set.xids.record_at(
        XidEvent {
            uuid: world.gpus[0].uuid.clone(),
            xid: Some(79),
        },
        1_700_000_100.0,
    );
    let cfg = Config::new(set.clone())
        .with(slurm_job::Flags {
            job_map_dir: Some(fx.map.clone()),
            procfs: fx.procfs.clone(),
        })
        .with(pcie::Flags {
            pcie_throughput: true,
        });
    let text = scrape(&cfg, Duration::from_secs(5));
    golden("fake-2gpu.prom", &text);

    // Spot checks in base units.
    let u0 = world.gpus[0].uuid.as_str();
    let u1 = world.gpus[1].uuid.as_str();
    assert_eq!(value(&text, "gpu_nvml_up", &[]), Some(1.0));
    assert_eq!(
        value(&text, "gpu_utilization_ratio", &[("uuid", u0)]),
        Some(0.87)
    );
    assert_eq!(
        value(&text, "gpu_power_usage_watts", &[("uuid", u0)]),
        Some(412.5)
    );
    assert_eq!(
        value(&text, "gpu_energy_joules_total", &[("uuid", u0)]),
        Some(123456.789)
    );
    assert_eq!(
        value(&text, "gpu_clock_hertz", &[("uuid", u0), ("clock", "sm")]),
        Some(1.755e9)
    );
    assert_eq!(
        value(&text, "gpu_memory_total_bytes", &[("uuid", u0)]),
        Some(80.0 * 1073741824.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_throttle_reason_active",
            &[("uuid", u0), ("reason", "sw_power_cap")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_pcie_throughput_bytes_per_second",
            &[("uuid", u0), ("direction", "rx")]
        ),
        Some(2_560_000.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_xid_errors_total",
            &[
                ("uuid", u0),
                ("xid", "79"),
                ("description", "GPU has fallen off the bus")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "gpu_last_xid", &[("uuid", u0)]), Some(79.0));
    // Like a real H100: no retired pages (rows are remapped), 18 NVLinks, nine clock event
    // reasons, reserved frame buffer memory.
    assert!(!text.contains("gpu_retired_pages{"), "{text}");
    assert!(!text.contains("gpu_retired_pages_pending{"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("gpu_nvlink_up{") && l.contains(u0))
            .count(),
        18
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("gpu_throttle_reason_active{") && l.contains(u0))
            .count(),
        9
    );
    assert_eq!(
        value(&text, "gpu_memory_reserved_bytes", &[("uuid", u0)]),
        Some(542.0 * 1048576.0)
    );
    // Per process and per job memory.
    assert_eq!(
        value(
            &text,
            "gpu_process_memory_bytes",
            &[("uuid", u0), ("pid", "4242")]
        ),
        Some((30.0 * 1024.0 - 512.0) * 1048576.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_slurm_job_memory_used_bytes",
            &[("uuid", u0), ("jobid", "1001")]
        ),
        Some((30.0 * 1024.0 - 512.0) * 1048576.0)
    );
    // MIG: NVML gives no utilisation for the parent or its instances (like the real
    // driver); GPM does, per GPU instance. MIG devices are listed with their memory.
    assert_eq!(
        value(&text, "gpu_mig_mode_enabled", &[("uuid", u1)]),
        Some(1.0)
    );
    assert_eq!(value(&text, "gpu_utilization_ratio", &[("uuid", u1)]), None);
    assert_eq!(
        value(&text, "gpu_gpm_sm_activity_ratio", &[("uuid", u0)]),
        Some(0.815)
    );
    assert_eq!(
        value(
            &text,
            "gpu_mig_gpm_sm_activity_ratio",
            &[("uuid", u1), ("gpu_instance_id", "2")]
        ),
        Some(0.4075)
    );
    assert_eq!(
        value(&text, "gpu_xid_event_watched", &[("uuid", u1)]),
        Some(1.0)
    );
    assert!(!text.contains("gpu_field_unavailable"), "{text}");
    assert_eq!(
        value(
            &text,
            "gpu_mig_info",
            &[
                ("uuid", u1),
                ("profile", "3g.40gb"),
                ("gpu_instance_id", "2")
            ]
        ),
        Some(1.0)
    );
    assert!(
        !text.contains("gpu_mig_utilization_ratio"),
        "NotSupported on MIG is skipped"
    );
    // Job attribution from both sources, merged.
    assert_eq!(
        value(
            &text,
            "gpu_slurm_job_info",
            &[
                ("uuid", u0),
                ("jobid", "1001"),
                ("user", "root"),
                ("account", "physics")
            ]
        ),
        Some(1.0)
    );
    let nobody = NOBODY_UID.to_string();
    assert_eq!(
        value(
            &text,
            "gpu_slurm_job_info",
            &[("uuid", u1), ("jobid", "1002"), ("user", &nobody)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_slurm_job_info",
            &[("uuid", u1), ("jobid", "1003")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_slurm_job_info",
            &[
                ("uuid", u1),
                ("jobid", "1004"),
                ("user", "alice"),
                ("account", "bio")
            ]
        ),
        Some(1.0)
    );
    for s in REGISTRY {
        assert_eq!(
            value(
                &text,
                "gpu_scrape_collector_success",
                &[("collector", s.name)]
            ),
            Some(1.0),
            "{}",
            s.name
        );
    }
}

#[test]
fn golden_no_gpu() {
    let mut w = FakeWorld::with_gpus(0);
    w.init_failures = u32::MAX;
    w.init_error = GpuError::LibraryNotFound;
    let (_b, set) = set_with(w);
    let text = scrape(&Config::new(set.clone()), Duration::from_secs(2));
    golden("no-gpu.prom", &text);
    assert_eq!(value(&text, "gpu_nvml_up", &[]), Some(0.0));
    assert_eq!(
        value(
            &text,
            "gpu_nvml_up_reason",
            &[("reason", "library_not_found")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("gpu_info{"));
    assert_eq!(
        value(
            &text,
            "gpu_scrape_collector_success",
            &[("collector", "memory")]
        ),
        Some(1.0)
    );
}

#[test]
fn lost_and_reset_required_gpus_are_down_with_a_reason() {
    let mut w = FakeWorld::with_gpus(3);
    let (b, set) = set_with(w.clone());
    b.edit(|w| {
        w.gpus[1].lost = true;
        w.gpus[2].reset_required = true;
    });
    w.gpus[1].lost = true;
    let (r, text) = render(&*col("info", &set));
    r.unwrap();
    golden("fake-gpu-lost.prom", &text);
    let u = |i: usize| w.gpus[i].uuid.clone();
    assert_eq!(value(&text, "gpu_up", &[("uuid", &u(0))]), Some(1.0));
    assert_eq!(value(&text, "gpu_up", &[("uuid", &u(1))]), Some(0.0));
    assert_eq!(
        value(
            &text,
            "gpu_up_reason",
            &[("uuid", &u(1)), ("reason", "gpu_lost")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "gpu_up_reason",
            &[("uuid", &u(2)), ("reason", "reset_required")]
        ),
        Some(1.0)
    );
    assert!(!text.contains(&format!("gpu_up_reason{{uuid=\"{}\"", u(0))));
    // Other collectors keep serving the healthy GPU.
    let (r, text) = render(&*col("memory", &set));
    r.unwrap();
    assert!(value(&text, "gpu_memory_used_bytes", &[("uuid", &u(0))]).is_some());
    assert!(value(&text, "gpu_memory_used_bytes", &[("uuid", &u(1))]).is_none());

    // A GPU that is lost at enumeration keeps its UUID from before and is reported down.
    set.init_now().unwrap();
    let (_, text) = render(&*col("info", &set));
    assert_eq!(
        value(
            &text,
            "gpu_up_reason",
            &[("uuid", &u(1)), ("reason", "gpu_lost")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "gpu_devices", &[]), Some(3.0));
}

#[test]
fn not_supported_fields_are_skipped_per_gpu() {
    let mut w = FakeWorld::with_gpus(2);
    for m in [
        "memory_temperature",
        "total_energy",
        "remapped_rows",
        "nvlink_active",
    ] {
        w.gpus[1].errors.insert(m, GpuError::NotSupported);
    }
    let (_b, set) = set_with(w.clone());
    let (u0, u1) = (w.gpus[0].uuid.as_str(), w.gpus[1].uuid.as_str());
    let (r, t) = render(&*col("temperature", &set));
    r.unwrap();
    assert!(value(&t, "gpu_memory_temperature_celsius", &[("uuid", u0)]).is_some());
    assert!(value(&t, "gpu_memory_temperature_celsius", &[("uuid", u1)]).is_none());
    assert_eq!(
        value(&t, "gpu_temperature_celsius", &[("uuid", u1)]),
        Some(54.0)
    );
    let (_, t) = render(&*col("power", &set));
    assert!(value(&t, "gpu_energy_joules_total", &[("uuid", u1)]).is_none());
    assert!(value(&t, "gpu_power_usage_watts", &[("uuid", u1)]).is_some());
    let (_, t) = render(&*col("ecc", &set));
    assert!(value(&t, "gpu_remapped_rows", &[("uuid", u1)]).is_none());
    assert!(value(&t, "gpu_ecc_errors_total", &[("uuid", u1)]).is_some());
    let (_, t) = render(&*col("nvlink", &set));
    assert!(value(&t, "gpu_nvlink_up", &[("uuid", u1)]).is_none());
    assert_eq!(
        value(&t, "gpu_nvlink_up", &[("uuid", u0), ("link", "17")]),
        Some(1.0)
    );
    // The GPU is still up.
    let (_, t) = render(&*col("info", &set));
    assert_eq!(value(&t, "gpu_up", &[("uuid", u1)]), Some(1.0));
}

#[test]
fn a_hung_gpu_does_not_block_the_others() {
    let w = FakeWorld::with_gpus(3);
    let (b, set) = set_with(w.clone());
    b.edit(|w| w.gpus[1].hang = Some(Duration::from_millis(1500)));
    let hung = w.gpus[1].uuid.as_str();
    let info = col("info", &set);
    let util = col("utilization", &set);
    let (r, t) = render_with(&*util, Duration::from_millis(400));
    r.unwrap();
    assert!(value(&t, "gpu_utilization_ratio", &[("uuid", &w.gpus[0].uuid)]).is_some());
    assert!(value(&t, "gpu_utilization_ratio", &[("uuid", &w.gpus[2].uuid)]).is_some());
    assert!(value(&t, "gpu_utilization_ratio", &[("uuid", hung)]).is_none());
    let (r, t) = render_with(&*info, Duration::from_millis(400));
    r.unwrap();
    assert_eq!(value(&t, "gpu_up", &[("uuid", hung)]), Some(0.0));
    assert_eq!(
        value(
            &t,
            "gpu_up_reason",
            &[("uuid", hung), ("reason", "timeout")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&t, "gpu_up", &[("uuid", &w.gpus[0].uuid)]), Some(1.0));
    // While the hung read is outstanding, no second one is started: the GPU is reported
    // down at once, and the others are still served.
    let (_, t) = render_with(&*info, Duration::from_millis(400));
    assert_eq!(
        value(
            &t,
            "gpu_up_reason",
            &[("uuid", hung), ("reason", "timeout")]
        ),
        Some(1.0)
    );
    // Once the GPU answers again, it is up.
    b.edit(|w| w.gpus[1].hang = None);
    std::thread::sleep(Duration::from_millis(1700));
    let (_, t) = render(&*info);
    assert_eq!(value(&t, "gpu_up", &[("uuid", hung)]), Some(1.0));
}

#[test]
fn a_collector_fails_only_when_no_gpu_answers() {
    let (b, set) = set_with(FakeWorld::with_gpus(2));
    b.edit(|w| {
        for g in &mut w.gpus {
            g.hang = Some(Duration::from_millis(600));
        }
    });
    let (r, _) = render_with(&*col("memory", &set), Duration::from_millis(200));
    assert!(r.unwrap_err().to_string().contains("no GPU answered"));
}

#[test]
fn mig_off_reports_mode_only() {
    let w = FakeWorld::with_gpus(1);
    let (_b, set) = set_with(w.clone());
    let (r, t) = render(&*col("mig", &set));
    r.unwrap();
    assert_eq!(
        value(&t, "gpu_mig_mode_enabled", &[("uuid", &w.gpus[0].uuid)]),
        Some(0.0)
    );
    assert!(!t.contains("gpu_mig_info"));
}

#[test]
fn mig_utilization_where_the_driver_gives_it() {
    let mut w = FakeWorld::with_gpus(1);
    w.gpus[0] = FakeGpu::h100(0).with_mig();
    w.gpus[0].mig[0].utilization = Ok(crate::backend::Utilization { gpu: 25, memory: 5 });
    let (_b, set) = set_with(w.clone());
    let (_, t) = render(&*col("mig", &set));
    assert_eq!(
        value(
            &t,
            "gpu_mig_utilization_ratio",
            &[("mig_uuid", &w.gpus[0].mig[0].uuid)]
        ),
        Some(0.25)
    );
    assert_eq!(t.matches("gpu_mig_info{").count(), 2);
}

#[test]
fn init_fails_then_succeeds_when_the_driver_appears() {
    let mut w = FakeWorld::with_gpus(1);
    w.init_failures = 3;
    w.init_error = GpuError::DriverNotLoaded;
    let b = FakeBackend::new(w);
    let set = GpuSet::new(Arc::new(b.clone()), fast());
    assert_eq!(set.init_now(), Err(GpuError::DriverNotLoaded));
    let (_, t) = render(&*col("info", &set));
    assert_eq!(value(&t, "gpu_nvml_up", &[]), Some(0.0));
    assert_eq!(
        value(&t, "gpu_nvml_up_reason", &[("reason", "driver_not_loaded")]),
        Some(1.0)
    );
    set.start();
    wait_until("NVML up", Duration::from_secs(5), || set.snapshot().up);
    assert_eq!(b.inits.load(std::sync::atomic::Ordering::SeqCst), 4);
    let (_, t) = render(&*col("info", &set));
    assert_eq!(value(&t, "gpu_nvml_up", &[]), Some(1.0));
    assert_eq!(value(&t, "gpu_devices", &[]), Some(1.0));
    assert!(t.contains("driver_version=\"550.54.15\""));
    assert!(t.contains("cuda_version=\"12.4\""));
    set.stop();
}

#[test]
fn nvml_is_initialised_again_after_a_driver_reload() {
    let (b, set) = set_with(FakeWorld::with_gpus(1));
    set.start();
    assert_eq!(set.snapshot().inits, 1);
    // The driver goes away: the health check notices and NVML is down...
    b.edit(|w| {
        w.count_error = Some(GpuError::Uninitialized);
        w.init_failures = u32::MAX;
    });
    wait_until("NVML down", Duration::from_secs(5), || !set.snapshot().up);
    let (_, t) = render(&*col("info", &set));
    assert_eq!(value(&t, "gpu_nvml_up", &[]), Some(0.0));
    // ...and comes back (with one more GPU): re-initialised and re-enumerated.
    b.edit(|w| {
        w.count_error = None;
        w.init_failures = 0;
        w.gpus.push(FakeGpu::h100(1));
    });
    wait_until("NVML up again", Duration::from_secs(5), || {
        set.snapshot().up && set.snapshot().gpus.len() == 2
    });
    assert!(set.snapshot().inits >= 2);
    set.stop();
}

#[test]
fn a_read_that_needs_reinit_triggers_it() {
    let (b, set) = set_with(FakeWorld::with_gpus(1));
    let mut opts = fast();
    opts.health_interval = Duration::from_secs(3600); // only the kick can trigger it
    let set2 = GpuSet::new(Arc::new(b.clone()), opts);
    drop(set);
    set2.init_now().unwrap();
    set2.start();
    b.edit(|w| {
        w.gpus[0]
            .errors
            .insert("memory_info", GpuError::Uninitialized);
    });
    let (r, _) = render(&*col("memory", &set2));
    r.unwrap();
    wait_until("re-initialisation", Duration::from_secs(5), || {
        set2.snapshot().inits >= 2
    });
    set2.stop();
}

#[test]
fn gpu_count_change_re_enumerates() {
    let (b, set) = set_with(FakeWorld::with_gpus(1));
    set.start();
    b.edit(|w| w.gpus.push(FakeGpu::h100(1)));
    wait_until("two GPUs", Duration::from_secs(5), || {
        set.snapshot().gpus.len() == 2
    });
    set.stop();
}

#[test]
fn xid_events_are_counted_outside_the_scrape_path_and_survive_reinit() {
    let w = FakeWorld::with_gpus(2);
    let (b, set) = set_with(w.clone());
    let xid = col("xid", &set);
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
    });
    b.edit(|world| {
        for x in [79, 79, 13] {
            world.events.push_back(RawXid {
                index: Some(1),
                xid: Some(x),
            });
        }
        world.events.push_back(RawXid {
            index: Some(0),
            xid: None,
        });
    });
    wait_until("events consumed", Duration::from_secs(5), || {
        b.world.lock().unwrap().events.is_empty()
    });
    std::thread::sleep(Duration::from_millis(50));
    let (r, t) = render(&*xid);
    r.unwrap();
    let u1 = w.gpus[1].uuid.as_str();
    assert_eq!(value(&t, "gpu_xid_event_watch_up", &[]), Some(1.0));
    assert_eq!(
        value(&t, "gpu_xid_errors_total", &[("uuid", u1), ("xid", "79")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &t,
            "gpu_xid_errors_total",
            &[
                ("uuid", u1),
                ("xid", "13"),
                (
                    "description",
                    "Graphics engine exception (usually an application error)"
                )
            ]
        ),
        Some(1.0)
    );
    assert_eq!(value(&t, "gpu_last_xid", &[("uuid", u1)]), Some(13.0));
    assert_eq!(
        value(
            &t,
            "gpu_xid_errors_total",
            &[("uuid", &w.gpus[0].uuid), ("xid", "unknown")]
        ),
        Some(1.0)
    );
    let ts = value(&t, "gpu_last_xid_timestamp_seconds", &[("uuid", u1)]).unwrap();
    assert!(ts > 1.7e9);
    // Re-initialising NVML (a driver reload) keeps the counts.
    set.init_now().unwrap();
    let (_, t2) = render(&*xid);
    assert_eq!(
        value(&t2, "gpu_xid_errors_total", &[("uuid", u1), ("xid", "79")]),
        Some(2.0)
    );
    set.stop();
}

#[test]
fn xid_watch_down_when_events_are_not_supported() {
    let mut w = FakeWorld::with_gpus(1);
    w.events_supported = false;
    let (_b, set) = set_with(w);
    std::thread::sleep(Duration::from_millis(100));
    let (_, t) = render(&*col("xid", &set));
    assert_eq!(value(&t, "gpu_xid_event_watch_up", &[]), Some(0.0));
    assert_eq!(
        value(
            &t,
            "gpu_xid_event_watched_reason",
            &[("reason", "not_supported")]
        ),
        Some(1.0)
    );
}

#[test]
fn allocated_gpu_without_processes_is_attributed_through_the_map_dir() {
    let mut w = FakeWorld::with_gpus(2);
    for g in &mut w.gpus {
        g.processes.clear();
    }
    let fx = fixture(&w);
    let (_b, set) = set_with(w.clone());
    let cfg = Config::new(set.clone()).with(slurm_job::Flags {
        job_map_dir: Some(fx.map.clone()),
        procfs: fx.procfs.clone(),
    });
    let c = collector::build("slurm_job", &cfg).unwrap();
    let (r, t) = render(&*c);
    r.unwrap();
    assert_eq!(
        value(
            &t,
            "gpu_slurm_job_info",
            &[
                ("uuid", &w.gpus[0].uuid),
                ("jobid", "1001"),
                ("user", "root")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &t,
            "gpu_slurm_job_info",
            &[("uuid", &w.gpus[1].uuid), ("jobid", "1003")]
        ),
        Some(1.0)
    );
    assert_eq!(t.matches("gpu_slurm_job_info{").count(), 2);
    // The epilog removes the files: the attribution ends.
    std::fs::remove_file(fx.map.join("0")).unwrap();
    let (_, t) = render(&*c);
    assert!(value(&t, "gpu_slurm_job_info", &[("uuid", &w.gpus[0].uuid)]).is_none());
}

#[test]
fn processes_are_attributed_through_their_cgroups() {
    let w = two_gpu_world();
    let fx = fixture(&w);
    let (_b, set) = set_with(w.clone());
    let cfg = Config::new(set.clone()).with(slurm_job::Flags {
        procfs: fx.procfs.clone(),
        ..Default::default()
    });
    let (_, t) = render(&*collector::build("slurm_job", &cfg).unwrap());
    assert_eq!(
        value(
            &t,
            "gpu_slurm_job_info",
            &[
                ("uuid", &w.gpus[0].uuid),
                ("jobid", "1001"),
                ("user", "root"),
                ("account", "")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &t,
            "gpu_slurm_job_info",
            &[("uuid", &w.gpus[1].uuid), ("jobid", "1002")]
        ),
        Some(1.0)
    );
    assert_eq!(t.matches("gpu_slurm_job_info{").count(), 2);
}

mod parsers {
    use crate::collector::slurm_job::{job_from_cgroup, merge, parse_map_file, JobRef};
    use proptest::prelude::*;

    #[test]
    fn cgroup_v1_v2_and_non_slurm() {
        assert_eq!(
            job_from_cgroup("4:memory:/slurm/uid_1000/job_42/step_0/task_1\n"),
            Some(("42".into(), Some(1000)))
        );
        assert_eq!(
            job_from_cgroup("3:cpuset:/slurm_node7/uid_5/job_9/step_extern\n"),
            Some(("9".into(), Some(5)))
        );
        assert_eq!(
            job_from_cgroup("0::/system.slice/slurmstepd.scope/job_77/step_0/user/task_0\n"),
            Some(("77".into(), None))
        );
        assert_eq!(
            job_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n"),
            None
        );
        assert_eq!(job_from_cgroup("0::/docker/job_12\n"), None);
        assert_eq!(job_from_cgroup(""), None);
    }

    #[test]
    fn map_file_layouts() {
        let j = |id: &str, u: &str, a: &str| JobRef {
            jobid: id.into(),
            user: u.into(),
            account: a.into(),
        };
        assert_eq!(
            parse_map_file("12\n13\n"),
            vec![j("12", "", ""), j("13", "", "")]
        );
        assert_eq!(parse_map_file("12 root\n"), vec![j("12", "root", "")]);
        // A uid is resolved later, by the collector's cached lookup.
        assert_eq!(parse_map_file("12 0\n"), vec![j("12", "0", "")]);
        assert_eq!(
            parse_map_file("12_3 bob acct\n"),
            vec![j("12_3", "bob", "acct")]
        );
        assert_eq!(
            parse_map_file("# prolog\njobid=5 user=ann account=x\n"),
            vec![j("5", "ann", "x")]
        );
        assert!(parse_map_file("abc\n\n=\njobid=\n").is_empty());
    }

    #[test]
    fn merge_prefers_the_map_dir() {
        let m = merge(
            vec![JobRef {
                jobid: "1".into(),
                user: String::new(),
                account: "a".into(),
            }],
            vec![JobRef {
                jobid: "1".into(),
                user: "u".into(),
                account: String::new(),
            }],
        );
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].user.as_str(), m[0].account.as_str()), ("u", "a"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = job_from_cgroup(&s);
            for j in parse_map_file(&s) {
                prop_assert!(j.jobid.chars().all(|c| c.is_ascii_digit() || c == '_' || c == '+'));
            }
        }

        #[test]
        fn cgroup_lines_roundtrip(job in 1u64..1_000_000_000, uid in 0u32..100_000) {
            let v1 = format!("7:devices:/slurm/uid_{uid}/job_{job}/step_0\n");
            prop_assert_eq!(job_from_cgroup(&v1), Some((job.to_string(), Some(uid))));
            let v2 = format!("0::/system.slice/slurmstepd.scope/job_{job}\n");
            prop_assert_eq!(job_from_cgroup(&v2), Some((job.to_string(), None)));
        }
    }
}

#[test]
fn a_gpu_lost_at_enumeration_is_picked_up_after_its_reset_without_nvml_flapping() {
    let mut w = FakeWorld::with_gpus(2);
    w.gpus[1].lost = true;
    let (b, set) = set_with(w);
    set.start();
    assert!(set.snapshot().gpus[1].dev.is_none());
    // Re-enumerations happen every health interval; NVML stays up throughout.
    let end = Instant::now() + Duration::from_millis(200);
    while Instant::now() < end {
        assert!(set.snapshot().up);
        std::thread::sleep(Duration::from_millis(2));
    }
    b.edit(|w| w.gpus[1].lost = false);
    wait_until("GPU 1 back", Duration::from_secs(5), || {
        set.snapshot().gpus.get(1).is_some_and(|g| g.dev.is_some())
    });
    let (_, t) = render(&*col("info", &set));
    assert_eq!(t.matches("gpu_up{").count(), 2);
    assert!(!t.contains("gpu_up_reason{"), "{t}");
    set.stop();
}

// ---- Issue 14: one test per defect, each failing on the code before the fix. ----

/// The methods NVML answers slowly on a real GPU (H200: 150 µs to 3.3 ms each).
const SLOW: &[&str] = &[
    "total_energy",
    "max_clock",
    "pcie_replay_counter",
    "bar1_memory_info",
    "mig_enabled",
    "ecc_enabled",
    "fan_speeds",
    "nvlink_active",
    "nvlink_errors",
    "temperature_threshold",
    "supported_throttle_reasons",
    "pcie_link_max",
];

/// Calls of `method` made on the GPUs' worker threads (the scrape path), not on their
/// background refresh threads.
fn scrape_path_calls(b: &FakeBackend, method: &str) -> u64 {
    b.read(|w| w.calls(method, |t| t.starts_with("gpu") && !t.ends_with("-refresh")))
}

#[test]
fn a_scrape_pays_no_slow_nvml_call_after_the_first() {
    let mut w = FakeWorld::with_gpus(2);
    w.gpus = w
        .gpus
        .into_iter()
        .map(|g| g.with_measured_latency())
        .collect();
    let mut opts = fast();
    opts.cache.refresh_interval = Duration::from_secs(3600);
    opts.cache.pcie_throughput = true;
    let (b, set) = set_with_opts(w, opts);
    wait_until("first background refresh", Duration::from_secs(10), || {
        set.snapshot()
            .gpus
            .iter()
            .all(|g| g.dev.as_ref().is_some_and(|d| d.refreshes() >= 1))
    });
    let cfg = Config::new(set.clone()).with(pcie::Flags {
        pcie_throughput: true,
    });
    let first = scrape(&cfg, Duration::from_secs(10));
    let after_first: Vec<u64> = SLOW.iter().map(|m| scrape_path_calls(&b, m)).collect();
    let energy_in_refresh = b.read(|w| w.calls("total_energy", |t| t.ends_with("-refresh")));
    for _ in 0..5 {
        let t = scrape(&cfg, Duration::from_secs(10));
        assert_eq!(
            value(&t, "gpu_energy_joules_total", &[]),
            value(&first, "gpu_energy_joules_total", &[])
        );
    }
    for (m, before) in SLOW.iter().zip(after_first) {
        assert_eq!(
            scrape_path_calls(&b, m),
            before,
            "{m} was called by a scrape after the first"
        );
    }
    // The energy counter, replay counter, ECC and MIG mode, BAR1 and PCIe throughput never
    // were: they come from the background thread.
    for m in [
        "total_energy",
        "pcie_replay_counter",
        "ecc_enabled",
        "mig_enabled",
        "bar1_memory_info",
        "pcie_throughput",
    ] {
        assert_eq!(scrape_path_calls(&b, m), 0, "{m}");
    }
    assert_eq!(energy_in_refresh, 2, "one refresh per GPU");
    // Static values were read once per GPU: four maximum clocks each.
    assert_eq!(scrape_path_calls(&b, "max_clock"), 8);
    // NotSupported is asked once: retired pages (two causes) and pending, per GPU.
    assert_eq!(scrape_path_calls(&b, "retired_pages"), 4);
    assert_eq!(scrape_path_calls(&b, "retired_pages_pending"), 2);
    assert!(value(&first, "gpu_pcie_throughput_bytes_per_second", &[]).is_some());
}

#[test]
fn background_values_are_refreshed_and_served_no_older_than_three_intervals() {
    let mut opts = fast();
    opts.cache.refresh_interval = Duration::from_millis(30);
    let (b, set) = set_with_opts(FakeWorld::with_gpus(1), opts);
    let power = col("power", &set);
    let (_, t) = render(&*power);
    assert_eq!(value(&t, "gpu_energy_joules_total", &[]), Some(123456.789));
    b.edit(|w| w.gpus[0].energy = 200_000_000);
    wait_until("new energy value", Duration::from_secs(5), || {
        value(&render(&*power).1, "gpu_energy_joules_total", &[]) == Some(200_000.0)
    });
    let (_, t) = render(&*col("info", &set));
    assert!(value(&t, "gpu_cached_values_age_seconds", &[]).is_some_and(|a| a < 5.0));
    // A refresh stuck in the driver: the old value is not served past three intervals.
    b.edit(|w| {
        w.gpus[0]
            .latency
            .insert("total_energy", Duration::from_secs(2));
    });
    wait_until("stale energy dropped", Duration::from_secs(5), || {
        let (_, t) = render(&*power);
        value(&t, "gpu_energy_joules_total", &[]).is_none()
            && value(
                &t,
                "gpu_field_unavailable",
                &[("field", "total_energy"), ("reason", "timeout")],
            ) == Some(1.0)
    });
    b.edit(|w| {
        w.gpus[0].latency.clear();
    });
}

#[test]
fn utilisation_comes_back_when_mig_is_turned_off() {
    let mut w = FakeWorld::with_gpus(1);
    w.gpus[0] = FakeGpu::h100(0).with_mig();
    let mut opts = fast();
    opts.cache.refresh_interval = Duration::from_millis(30);
    let (b, set) = set_with_opts(w, opts);
    let util = col("utilization", &set);
    let (r, t) = render(&*util);
    r.unwrap();
    assert_eq!(value(&t, "gpu_utilization_ratio", &[]), None);
    b.edit(|w| w.gpus[0].mig_enabled = false);
    // The remembered NotSupported is forgotten when the refresh sees MIG mode change.
    wait_until("utilisation after MIG off", Duration::from_secs(5), || {
        value(&render(&*util).1, "gpu_utilization_ratio", &[]) == Some(0.87)
    });
}

#[test]
fn gpm_gives_utilisation_for_whole_gpus_and_mig_instances() {
    let mut w = FakeWorld::with_gpus(3);
    w.gpus[1] = FakeGpu::h100(1).with_mig();
    w.gpus[2].gpm = None; // a pre-Hopper GPU
    let mut opts = fast();
    opts.cache.refresh_interval = Duration::from_millis(30);
    let (_b, set) = set_with_opts(w.clone(), opts);
    let gpm = col("gpm", &set);
    let (u0, u1, u2) = (&w.gpus[0].uuid, &w.gpus[1].uuid, &w.gpus[2].uuid);
    wait_until("GPM values", Duration::from_secs(5), || {
        let (_, t) = render(&*gpm);
        value(&t, "gpu_mig_gpm_sm_activity_ratio", &[("uuid", u1)]).is_some()
            && value(&t, "gpu_gpm_sm_activity_ratio", &[("uuid", u0)]).is_some()
    });
    let (r, t) = render(&*gpm);
    r.unwrap();
    assert_eq!(
        value(&t, "gpu_gpm_sm_activity_ratio", &[("uuid", u0)]),
        Some(0.815)
    );
    assert_eq!(
        value(&t, "gpu_gpm_tensor_activity_ratio", &[("uuid", u0)]),
        Some(0.55)
    );
    assert_eq!(
        value(&t, "gpu_gpm_dram_activity_ratio", &[("uuid", u0)]),
        Some(0.33)
    );
    for (gi, sm) in [("1", 0.20375), ("2", 0.4075)] {
        assert_eq!(
            value(
                &t,
                "gpu_mig_gpm_sm_activity_ratio",
                &[("uuid", u1), ("gpu_instance_id", gi)]
            ),
            Some(sm),
            "{t}"
        );
    }
    assert!(!t.contains(u2.as_str()), "no GPM, nothing reported: {t}");
    // The fake (like NVML) refuses utilisation for the MIG parent and its devices.
    let (_, t) = render(&*col("utilization", &set));
    assert_eq!(value(&t, "gpu_utilization_ratio", &[("uuid", u1)]), None);
    assert!(value(&t, "gpu_utilization_ratio", &[("uuid", u0)]).is_some());
}

#[test]
fn gpm_is_off_by_default() {
    assert!(!REGISTRY
        .iter()
        .any(|r| r.name == "gpm" && r.default_enabled));
    let flags = collector::GpuFlags::default();
    let mut collectors = hpcmon_kit::registry::CollectorFlags::default();
    collectors.set(pcie::Flags {
        pcie_throughput: true,
    });
    collectors.set_enabled(&["info", "memory"]);
    let opts = crate::options(&flags, &collectors);
    assert!(!opts.cache.gpm);
    // --gpu.pcie-throughput reads the throughput only while the pcie collector runs.
    assert!(!opts.cache.pcie_throughput);
    collectors.set_enabled(&["gpm", "pcie"]);
    let opts = crate::options(&flags, &collectors);
    assert!(opts.cache.gpm && opts.cache.pcie_throughput);
}

#[test]
fn fields_nvml_refuses_to_a_non_root_user_are_reported_not_silently_missing() {
    let mut w = FakeWorld::with_gpus(2);
    w.gpus[1] = FakeGpu::h100(1).with_mig();
    for g in &mut w.gpus {
        for m in ["compute_processes", "mig_devices", "register_events"] {
            g.errors.insert(m, GpuError::NoPermission);
        }
    }
    let (_b, set) = set_with(w.clone());
    let (u0, u1) = (w.gpus[0].uuid.as_str(), w.gpus[1].uuid.as_str());
    let (r, t) = render(&*col("processes", &set));
    assert!(r.unwrap_err().to_string().contains("no_permission"));
    for u in [u0, u1] {
        assert_eq!(
            value(
                &t,
                "gpu_field_unavailable",
                &[
                    ("uuid", u),
                    ("collector", "processes"),
                    ("field", "compute_processes"),
                    ("reason", "no_permission")
                ]
            ),
            Some(1.0),
            "{t}"
        );
    }
    let (_, t) = render(&*col("mig", &set));
    assert_eq!(
        value(
            &t,
            "gpu_field_unavailable",
            &[
                ("uuid", u1),
                ("field", "mig_devices"),
                ("reason", "no_permission")
            ]
        ),
        Some(1.0),
        "{t}"
    );
    wait_until("XID watch statuses", Duration::from_secs(5), || {
        set.xids.status().values().all(|s| s.is_some())
            && set
                .xids
                .status()
                .values()
                .all(|s| *s == Some(GpuError::NoPermission))
    });
    let (_, t) = render(&*col("xid", &set));
    assert_eq!(value(&t, "gpu_xid_event_watch_up", &[]), Some(0.0));
    for u in [u0, u1] {
        assert_eq!(
            value(&t, "gpu_xid_event_watched", &[("uuid", u)]),
            Some(0.0)
        );
        assert_eq!(
            value(
                &t,
                "gpu_xid_event_watched_reason",
                &[("uuid", u), ("reason", "no_permission")]
            ),
            Some(1.0)
        );
    }
}

#[test]
fn a_collector_whose_every_field_failed_reports_failure() {
    let mut w = FakeWorld::with_gpus(2);
    for g in &mut w.gpus {
        for m in ["memory_info", "bar1_memory_info"] {
            g.errors.insert(m, GpuError::Other("Unknown Error".into()));
        }
    }
    let (b, set) = set_with(w);
    let memory = col("memory", &set);
    let (r, t) = render(&*memory);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("no GPU answered") && e.contains("error"), "{e}");
    assert_eq!(count(&t, "gpu_field_unavailable"), 4, "{t}");
    // One GPU answering is enough for the collector to succeed.
    b.edit(|w| {
        w.gpus[0]
            .errors
            .remove("memory_info")
            .map(|_| ())
            .unwrap_or(())
    });
    let (r, _) = render(&*memory);
    r.unwrap();
    // NotSupported is the GPU's answer, not a failure.
    let mut w = FakeWorld::with_gpus(1);
    w.gpus[0] = FakeGpu::h100_pcie(0);
    let (_b, set) = set_with(w);
    let (r, t) = render(&*col("nvlink", &set));
    r.unwrap();
    assert_eq!(count(&t, "gpu_nvlink_up"), 0);
}

#[test]
fn xid_watch_keeps_watching_the_gpus_whose_registration_works() {
    let mut w = FakeWorld::with_gpus(3);
    w.gpus[1]
        .errors
        .insert("register_events", GpuError::NotSupported);
    w.gpus[2]
        .errors
        .insert("register_events", GpuError::NoPermission);
    let (b, set) = set_with(w.clone());
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
    });
    b.edit(|world| {
        world.events.push_back(RawXid {
            index: Some(0),
            xid: Some(48),
        })
    });
    let xid = col("xid", &set);
    wait_until("XID 48 counted", Duration::from_secs(5), || {
        value(&render(&*xid).1, "gpu_xid_errors_total", &[("xid", "48")]) == Some(1.0)
    });
    let (_, t) = render(&*xid);
    assert_eq!(value(&t, "gpu_xid_event_watch_up", &[]), Some(1.0));
    assert_eq!(
        value(&t, "gpu_xid_event_watched", &[("uuid", &w.gpus[0].uuid)]),
        Some(1.0)
    );
    for (i, reason) in [(1, "not_supported"), (2, "no_permission")] {
        assert_eq!(
            value(
                &t,
                "gpu_xid_event_watched_reason",
                &[("uuid", &w.gpus[i].uuid), ("reason", reason)]
            ),
            Some(1.0),
            "{t}"
        );
    }
    assert_eq!(
        value(
            &t,
            "gpu_xid_errors_total",
            &[
                ("uuid", &w.gpus[0].uuid),
                ("description", "Double-bit (uncorrectable) ECC error")
            ]
        ),
        Some(1.0)
    );
    // NotSupported did not end the watch for the others, and nobody retries forever.
    assert_eq!(b.read(|w| w.event_sets_created), 1);
    set.stop();
}

#[test]
fn xid_79_keeps_the_uuid_of_a_gpu_that_fell_off_the_bus() {
    let w = FakeWorld::with_gpus(2);
    let (b, set) = set_with(w.clone());
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
    });
    b.edit(|world| {
        world.gpus[1].lost = true;
        world.events.push_back(RawXid {
            index: Some(1),
            xid: Some(79),
        });
    });
    let xid = col("xid", &set);
    wait_until("XID 79 counted", Duration::from_secs(5), || {
        value(&render(&*xid).1, "gpu_xid_errors_total", &[("xid", "79")]).is_some()
    });
    let (_, t) = render(&*xid);
    assert_eq!(
        value(
            &t,
            "gpu_xid_errors_total",
            &[("uuid", &w.gpus[1].uuid), ("xid", "79")]
        ),
        Some(1.0),
        "{t}"
    );
    assert_eq!(
        value(&t, "gpu_last_xid", &[("uuid", &w.gpus[1].uuid)]),
        Some(79.0)
    );
    set.stop();
}

#[test]
fn a_gpu_lost_under_the_event_watch_is_left_out_not_retried_forever() {
    let w = FakeWorld::with_gpus(2);
    let (b, set) = set_with(w.clone());
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
    });
    // GPU 1 falls off the bus: the wait fails with GpuLost.
    b.edit(|world| {
        world.gpus[1].lost = true;
        world.wait_errors.push_back(GpuError::GpuLost);
    });
    wait_until("GPU 1 left out", Duration::from_secs(5), || {
        set.xids.status().get(&w.gpus[1].uuid) == Some(&Some(GpuError::GpuLost))
    });
    wait_until("watching again", Duration::from_secs(5), || {
        set.xids.watching()
    });
    let regs = b.read(|w| w.registrations.get(&1).copied());
    std::thread::sleep(Duration::from_millis(300)); // many event_retry periods
    assert_eq!(b.read(|w| w.registrations.get(&1).copied()), regs);
    // GPU 0 is watched throughout.
    b.edit(|world| {
        world.events.push_back(RawXid {
            index: Some(0),
            xid: Some(94),
        })
    });
    let xid = col("xid", &set);
    wait_until("XID on GPU 0", Duration::from_secs(5), || {
        value(
            &render(&*xid).1,
            "gpu_xid_errors_total",
            &[("uuid", &w.gpus[0].uuid), ("xid", "94")],
        ) == Some(1.0)
    });
    // Once GPU 1 answers again (after a reset), the health check enumerates the GPUs again
    // (through the same NVML) and its XIDs are watched again.
    b.edit(|world| world.gpus[1].lost = false);
    set.start();
    wait_until("GPU 1 watched again", Duration::from_secs(5), || {
        set.xids.status().get(&w.gpus[1].uuid) == Some(&None)
    });
    assert_eq!(b.inits.load(Ordering::SeqCst), 1);
    set.stop();
}

#[test]
fn a_gpu_lost_at_enumeration_does_not_reinitialise_nvml() {
    let mut w = FakeWorld::with_gpus(2);
    w.gpus[1].lost = true;
    let (b, set) = set_with(w);
    set.start();
    // Many health intervals (20 ms) pass; NVML stays up and is not initialised again, and
    // the XID watch is not restarted.
    let end = Instant::now() + Duration::from_millis(400);
    while Instant::now() < end {
        assert!(set.snapshot().up);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(b.inits.load(Ordering::SeqCst), 1);
    assert_eq!(b.read(|w| w.event_sets_created), 1);
    // After its reset it is picked up through the same NVML.
    b.edit(|w| w.gpus[1].lost = false);
    wait_until("GPU 1 back", Duration::from_secs(5), || {
        set.snapshot().gpus.get(1).is_some_and(|g| g.dev.is_some())
    });
    assert_eq!(b.inits.load(Ordering::SeqCst), 1);
    set.stop();
}

#[test]
fn a_single_lost_gpu_backs_off_trying_a_fresh_nvml() {
    let (b, set) = set_with(FakeWorld::with_gpus(1));
    let info = col("info", &set);
    b.edit(|w| w.gpus[0].lost = true);
    let (_, t) = render(&*info); // the probe fails: every GPU failed
    assert_eq!(
        value(&t, "gpu_up_reason", &[("reason", "gpu_lost")]),
        Some(1.0)
    );
    set.start();
    // 600 ms at a 20 ms health interval: the old code initialised NVML ~30 times (new
    // nvmlInit, event thread and log line each). Now a fresh NVML is tried at 20, 40, 80,
    // 160, 320 ms... and, since the GPU does not answer through it either, dropped.
    std::thread::sleep(Duration::from_millis(600));
    assert!(b.inits.load(Ordering::SeqCst) <= 8, "{:?}", b.inits);
    assert_eq!(set.snapshot().inits, 1, "no fresh NVML adopted");
    assert_eq!(b.read(|w| w.event_sets_created), 1);
    assert!(set.snapshot().up);
    // A driver reload that brings the GPU back through a fresh NVML is adopted.
    b.edit(|w| w.gpus[0].lost = false);
    wait_until("fresh NVML adopted", Duration::from_secs(15), || {
        let _ = render(&*info);
        set.snapshot().inits >= 2 || value(&render(&*info).1, "gpu_up", &[]) == Some(1.0)
    });
    set.stop();
}

#[test]
fn slow_procfs_reads_do_not_mark_a_healthy_gpu_down() {
    let w = FakeWorld::with_gpus(1);
    let dir = tempfile::tempdir().unwrap();
    let procfs = dir.path().join("proc");
    std::fs::create_dir_all(procfs.join("4242")).unwrap();
    let fifo = procfs.join("4242/cgroup");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (_b, set) = set_with(w);
    let cfg = Config::new(set.clone()).with(slurm_job::Flags {
        procfs: procfs.clone(),
        ..Default::default()
    });
    let slurm = collector::build("slurm_job", &cfg).unwrap();
    // The slurm_job collector blocks reading the FIFO (like a hung /proc or NSS lookup).
    let t = std::thread::spawn(move || render_with(&*slurm, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(200));
    // The GPU's own reads are not held up: it is up and its values are served.
    let (r, t1) = render_with(&*col("info", &set), Duration::from_millis(500));
    r.unwrap();
    assert_eq!(value(&t1, "gpu_up", &[]), Some(1.0), "{t1}");
    let (r, t2) = render_with(&*col("memory", &set), Duration::from_millis(500));
    r.unwrap();
    assert!(value(&t2, "gpu_memory_used_bytes", &[]).is_some());
    // Unblock the reader.
    std::fs::write(&fifo, "0::/system.slice/slurmstepd.scope/job_77/step_0\n").unwrap();
    let (r, t3) = t.join().unwrap();
    r.unwrap();
    assert_eq!(
        value(&t3, "gpu_slurm_job_info", &[("jobid", "77")]),
        Some(1.0)
    );
}

static LOOKUPS: AtomicU64 = AtomicU64::new(0);

fn counting_lookup(uid: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    (uid == 0).then(|| "root".to_string())
}

#[test]
fn user_names_are_looked_up_once_per_uid() {
    let w = two_gpu_world();
    let fx = fixture(&w);
    let (_b, set) = set_with(w.clone());
    let cfg = Config::new(set.clone()).with(slurm_job::Flags {
        job_map_dir: Some(fx.map.clone()),
        procfs: fx.procfs.clone(),
    });
    let c = collector::slurm_job::SlurmJob::with_user_lookup(
        set,
        cfg.flags::<slurm_job::Flags>().unwrap(),
        counting_lookup,
    );
    let before = LOOKUPS.load(Ordering::SeqCst);
    for _ in 0..3 {
        let (r, t) = render(&c);
        r.unwrap();
        assert_eq!(
            value(
                &t,
                "gpu_slurm_job_info",
                &[("jobid", "1001"), ("user", "root")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                "gpu_slurm_job_info",
                &[("jobid", "1002"), ("user", &NOBODY_UID.to_string())]
            ),
            Some(1.0)
        );
    }
    // uid 0 (cgroup and map file) and NOBODY_UID (a miss, remembered too).
    assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 2);
}

#[test]
fn per_process_memory_is_capped_with_a_dropped_count() {
    let mut w = FakeWorld::with_gpus(1);
    let mib = 1u64 << 20;
    w.gpus[0].processes = (0..5)
        .map(|i| Process {
            pid: 100 + i,
            used_memory: Some((i as u64 + 1) * mib),
        })
        .chain([Process {
            pid: 999,
            used_memory: None,
        }])
        .collect();
    let (_b, set) = set_with(w);
    let cfg = Config::new(set.clone()).with(processes::Flags {
        process_series_limit: 2,
    });
    let (r, t) = render(&*collector::build("processes", &cfg).unwrap());
    r.unwrap();
    assert_eq!(value(&t, "gpu_processes", &[]), Some(6.0));
    assert_eq!(count(&t, "gpu_process_memory_bytes"), 2, "{t}");
    assert_eq!(
        value(&t, "gpu_process_memory_bytes", &[("pid", "104")]),
        Some(5.0 * mib as f64)
    );
    assert_eq!(
        value(&t, "gpu_process_memory_bytes", &[("pid", "103")]),
        Some(4.0 * mib as f64)
    );
    assert_eq!(value(&t, "gpu_process_series_dropped", &[]), Some(3.0));
}

#[test]
fn per_job_memory_through_the_pid_map() {
    let mut w = two_gpu_world();
    let gib = 1u64 << 30;
    // GPU 0: two processes of job 1001 (cgroup v1) and one in no Slurm cgroup, which counts
    // for the GPU's only job. GPU 1: job 1002 (cgroup v2) without memory figures, 1003 and
    // 1004 from the map directory.
    w.gpus[0].processes = vec![
        Process {
            pid: 4242,
            used_memory: Some(2 * gib),
        },
        Process {
            pid: 4244,
            used_memory: Some(gib),
        },
        Process {
            pid: 4245,
            used_memory: Some(gib),
        },
    ];
    let fx = fixture(&w);
    std::fs::create_dir_all(fx.procfs.join("4244")).unwrap();
    std::fs::write(
        fx.procfs.join("4244/cgroup"),
        "4:memory:/slurm/uid_0/job_1001/step_1/task_0\n",
    )
    .unwrap();
    let (_b, set) = set_with(w.clone());
    let cfg = Config::new(set.clone()).with(slurm_job::Flags {
        job_map_dir: Some(fx.map.clone()),
        procfs: fx.procfs.clone(),
    });
    let (r, t) = render(&*collector::build("slurm_job", &cfg).unwrap());
    r.unwrap();
    let (u0, u1) = (w.gpus[0].uuid.as_str(), w.gpus[1].uuid.as_str());
    assert_eq!(
        value(
            &t,
            "gpu_slurm_job_memory_used_bytes",
            &[("uuid", u0), ("jobid", "1001")]
        ),
        Some(4.0 * gib as f64)
    );
    for job in ["1002", "1003", "1004"] {
        assert_eq!(
            value(
                &t,
                "gpu_slurm_job_memory_used_bytes",
                &[("uuid", u1), ("jobid", job)]
            ),
            Some(0.0),
            "{job}: {t}"
        );
    }
}

#[test]
fn xid_descriptions_cover_the_common_xids() {
    for x in [
        13, 31, 43, 45, 48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120,
    ] {
        let d = crate::events::xid_description(Some(x));
        assert!(!d.contains("catalog"), "XID {x} has no description");
    }
    assert!(crate::events::xid_description(Some(4242)).contains("catalog"));
    assert!(!crate::events::xid_description(None).is_empty());
}

#[test]
fn fake_nvlinks_match_the_board() {
    let mut w = FakeWorld::with_gpus(3);
    w.gpus[1] = FakeGpu::h100_pcie(1);
    w.gpus[2] = FakeGpu::h100(2).with_nvlinks(4);
    let (_b, set) = set_with(w.clone());
    let (r, t) = render(&*col("nvlink", &set));
    r.unwrap();
    let links = |u: &str| {
        t.lines()
            .filter(|l| l.starts_with("gpu_nvlink_up{") && l.contains(u))
            .count()
    };
    assert_eq!(links(&w.gpus[0].uuid), 18);
    assert_eq!(links(&w.gpus[1].uuid), 0);
    assert_eq!(links(&w.gpus[2].uuid), 4);
    assert!(!t.contains("gpu_field_unavailable"), "{t}");
}

/// Pre-Ampere GPUs (V100, T4) retire pages instead of remapping rows: the family the GPU
/// dashboard's "Remapped rows" panel also plots for them.
#[test]
fn gpus_that_retire_pages_report_them_by_cause() {
    let mut w = FakeWorld::with_gpus(1);
    w.gpus[0].errors.remove("retired_pages");
    w.gpus[0].errors.remove("retired_pages_pending");
    w.gpus[0].retired = (3, 1, true);
    let u = w.gpus[0].uuid.clone();
    let (_b, set) = set_with(w);
    let (r, text) = render(&*col("ecc", &set));
    r.unwrap();
    golden("fake-retired-pages.prom", &text);
    let cause = |c: &str| value(&text, "gpu_retired_pages", &[("uuid", &u), ("cause", c)]);
    assert_eq!(cause("multiple_single_bit"), Some(3.0));
    assert_eq!(cause("double_bit"), Some(1.0));
    assert_eq!(
        value(&text, "gpu_retired_pages_pending", &[("uuid", &u)]),
        Some(1.0)
    );
}
