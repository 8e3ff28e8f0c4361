//! Fake-backed tests of every collector and failure mode, and the golden outputs in
//! `testdata/` (regenerate with `UPDATE_GOLDEN=1 cargo test -p hpcmon-gpu-exporter`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hpcmon_kit::Collector;

use crate::backend::{GpuError, XidEvent};
use crate::collector::testutil::{fast, render, render_with, set_with, sort_samples, value};
use crate::collector::{self, Config, SPECS};
use crate::fake::{FakeBackend, FakeGpu, FakeWorld};
use crate::gpus::GpuSet;

fn all() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

fn col(name: &str, set: &Arc<GpuSet>) -> Arc<dyn Collector> {
    collector::build(name, &Config::default(), set).unwrap()
}

/// A full scrape through the kit's scraper, without the (timing) duration series.
fn scrape(set: &Arc<GpuSet>, cfg: &Config, timeout: Duration) -> String {
    let scraper = crate::scraper(&all(), cfg, set).unwrap();
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

fn golden(name: &str, actual: &str) {
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
    w.gpus[1].processes = vec![crate::backend::Process {
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
    let (_b, set) = set_with(world.clone());
    wait_until("event watch", Duration::from_secs(5), || {
        set.xids.watching()
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
    let cfg = Config {
        job_map_dir: Some(fx.map.clone()),
        procfs: fx.procfs.clone(),
        pcie_throughput: true,
        fake_devices: None,
    };
    let text = scrape(&set, &cfg, Duration::from_secs(5));
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
            &[("uuid", u0), ("xid", "79")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "gpu_last_xid", &[("uuid", u0)]), Some(79.0));
    // MIG: parent metrics keep working, MIG devices are listed with their memory.
    assert_eq!(
        value(&text, "gpu_mig_mode_enabled", &[("uuid", u1)]),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "gpu_utilization_ratio", &[("uuid", u1)]),
        Some(0.87)
    );
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
    for s in SPECS {
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
    let text = scrape(&set, &Config::default(), Duration::from_secs(2));
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
    let w = FakeWorld::with_gpus(2);
    let (b, set) = set_with(w.clone());
    b.edit(|w| {
        for m in [
            "memory_temperature",
            "total_energy",
            "remapped_rows",
            "nvlink_active",
        ] {
            w.gpus[1].errors.insert(m, GpuError::NotSupported);
        }
    });
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
        value(&t, "gpu_nvlink_up", &[("uuid", u0), ("link", "2")]),
        Some(0.0)
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

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
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
            world.events.push_back(XidEvent {
                uuid: w.gpus[1].uuid.clone(),
                xid: Some(x),
            });
        }
        world.events.push_back(XidEvent {
            uuid: w.gpus[0].uuid.clone(),
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
        value(&t, "gpu_xid_errors_total", &[("uuid", u1), ("xid", "13")]),
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
}

#[test]
fn allocated_gpu_without_processes_is_attributed_through_the_map_dir() {
    let mut w = FakeWorld::with_gpus(2);
    for g in &mut w.gpus {
        g.processes.clear();
    }
    let fx = fixture(&w);
    let (_b, set) = set_with(w.clone());
    let cfg = Config {
        job_map_dir: Some(fx.map.clone()),
        procfs: fx.procfs.clone(),
        ..Config::default()
    };
    let c = collector::build("slurm_job", &cfg, &set).unwrap();
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
    let cfg = Config {
        procfs: fx.procfs.clone(),
        ..Config::default()
    };
    let (_, t) = render(&*collector::build("slurm_job", &cfg, &set).unwrap());
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
        assert_eq!(parse_map_file("12 0\n"), vec![j("12", "root", "")]);
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
